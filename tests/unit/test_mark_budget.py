"""The item-size budget of issue 12, measured with the endpoint's own accounting
(tests/support/mark_budget.py): after a simulated day of shard rotation a hot video summary
fed by 16 partitions stays within 1 KB, and one update of it costs 2 WRU in all (table +
GSI1), against 28 before."""

from __future__ import annotations

import pytest
from mark_budget import AFTER, BEFORE, LEVERS, measure
from video_stats.model import SummaryKind

VIDEO = SummaryKind.VIDEO
USER = SummaryKind.USER


@pytest.mark.parametrize("partitions", [1, 4, 16])
@pytest.mark.parametrize("seq_digits", [21, 28])
def test_a_hot_video_summary_stays_within_one_write_unit(partitions: int, seq_digits: int) -> None:
    after = measure(AFTER, VIDEO, partitions, seq_digits)
    assert after.marks == 2 * partitions  # one per function and partition (lineage pruning)
    assert after.item_bytes <= 1024
    assert (after.table_wru, after.gsi1_wru, after.gsi2_wru) == (1, 1, 0)


def test_a_user_summary_carries_one_mark_per_function() -> None:
    after = measure(AFTER, USER, 16)
    assert after.marks == 2
    assert after.total_wru == 1  # no GSI1 (not a video), no GSI2 move


def test_the_design_as_built_grows_with_the_shards() -> None:
    before = measure(BEFORE, VIDEO, 16)
    assert before.marks > 200
    assert before.item_bytes > 12 * 1024
    assert before.total_wru >= 25


def test_every_lever_keeps_or_lowers_the_cost() -> None:
    for partitions in (4, 16):
        costs = [measure(design, VIDEO, partitions).total_wru for design in LEVERS]
        assert costs == sorted(costs, reverse=True), costs


def test_at_aws_longest_sequence_numbers_the_item_is_2_kb_at_most() -> None:
    # 40-digit sequence numbers (the API's maximum) take 23 base-64 digits: 1.2 KB at 16
    # partitions, 2 WRU for the item; GSI1 stays at 1 (it does not copy the marks).
    after = measure(AFTER, VIDEO, 16, seq_digits=40)
    assert 1024 < after.item_bytes <= 2048
    assert (after.table_wru, after.gsi1_wru, after.gsi2_wru) == (2, 1, 0)
