"""The item-size budget of docs/design.md §6, measured with the endpoint's own accounting
(``make bench-marks``): after a simulated day of shard rotation a hot video summary fed by 16
partitions stays within 1 KB, and one update of it costs 2 WRU in all (table + GSI1), against
28 before. Then the command line: its table, its one-line errors, its help."""

from __future__ import annotations

import pytest
from benchmark import cli
from benchmark.mark_budget import AFTER, BEFORE, LEVERS, measure
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


# --- command line --------------------------------------------------------------------------------


def test_the_command_prints_one_row_per_summary_partitions_digits_and_design(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["marks", "--seq-digits", "21", "--partitions", "4", "16"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("| video |", "| user |"))]
    # Levers: 2 partition counts x 2 summaries x 6 designs; alone: 2 x video x 5 designs.
    assert len(rows) == 2 * 2 * len(LEVERS) + 2 * 5
    assert "| video | 16 | 21 | 5. + GSI1 INCLUDE data model (after) | 32 |" in out
    assert out.rstrip().endswith("1 WRU at 1,024 bytes, 2 at 1,025.")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seq-digits", "20"], "must be 21 to 40 digits"),
        (["--seq-digits", "41"], "must be 21 to 40 digits"),
        (["--seq-digits", "x"], "not a whole number"),
        (["--partitions", "0"], "must be a whole number >= 1"),
        (["--partitions", "1025"], "at most 1,024 partitions"),
        (["--hours", "0.5"], "must be 1 to 168 hours"),
        (["--hours", "nan"], "not a finite number"),
        (["--nonsense"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["marks", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_help_names_every_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["marks", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--seq-digits", "--partitions", "--hours"):
        assert option in out
