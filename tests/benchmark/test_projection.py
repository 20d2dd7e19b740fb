"""The production-shape projection: the simulated stream, the batch formula, exact write counts
through the handlers' merge, the bill and the targets (pure; no endpoint)."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from benchmark.figures import DurationModel, FunctionSettings
from benchmark.projection import (
    Batching,
    Cell,
    Consumer,
    ConsumerLoad,
    Design,
    Sample,
    SummaryShape,
    batch_records,
    marks_after_a_day,
    partition_of,
    production_operations,
    project_cell,
    projection_by_window,
    projection_table,
    sensitivity_windows,
    stream_records,
    summary_writes,
    with_marks,
)
from benchmark.report import production_table
from benchmark.targets import evaluate_targets, production_target
from localcloud.writestats import IndexShape, item_size
from video_stats import model
from video_stats.marks import decode_mark, encode_mark
from vstats.filter_patterns import delivered_to
from vstats.generator import Operation

TS = datetime(2022, 1, 2, 17, 5, 29, 123000, tzinfo=UTC)
SETTINGS = FunctionSettings(1024, "arm64", False, DurationModel(30.0))
REFERENCE = FunctionSettings(128, "x86_64", True, DurationModel(10.0, 15.0))
VIDEO, USER = model.SummaryKind.VIDEO, model.SummaryKind.USER
UNMEASURED = SummaryShape({}, (), False)  # every write costs 1 WRU
GSI1 = IndexShape("GSI1", ("GSI1PK", "GSI1SK"), ("PK", "SK"), "ALL")
GSI2 = IndexShape("GSI2", ("GSI2PK", "views"), ("PK", "SK"), "INCLUDE", ("videoId", "userId"))


def of_type(item_type: str) -> Any:
    """The deployed filter of ``item_type`` (filter_patterns.json, the engine's filter code)."""
    return functools.partial(delivered_to, item_type=item_type)


def consumer(item_type: str, batch_size: int = 1000, window: float = 5.0) -> Consumer:
    return Consumer(item_type, batch_size, window, 0, of_type(item_type))  # type: ignore[arg-type]


def put(item: dict[str, Any]) -> Operation:
    return Operation("views", "put", {"PK": item["PK"], "SK": item["SK"]}, item)


def test_stream_records_follow_dynamodb() -> None:
    view = model.view_item("u", "v", 30, TS)
    longer = {**view, "duration": {"N": "45"}}
    key = {"PK": view["PK"], "SK": view["SK"]}
    operations = [
        put(view),
        put(view),  # unchanged: no record
        put(longer),
        Operation("removed-views", "delete", key),
        Operation("removed-views", "delete", key),  # nothing to delete: no record
    ]
    records = list(stream_records(operations))
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["OldImage"] == view
    assert records[1]["dynamodb"]["NewImage"] == longer
    assert records[2]["dynamodb"]["OldImage"] == longer
    assert "NewImage" not in records[2]["dynamodb"]
    assert [r["dynamodb"]["SequenceNumber"] for r in records] == ["1", "2", "3"]


def test_a_users_records_stay_on_one_partition() -> None:
    records = list(
        stream_records(
            put(model.view_item("u7", f"v{n}", 1, TS.replace(second=n))) for n in range(9)
        )
    )
    assert len({partition_of(r, 16) for r in records}) == 1
    assert {partition_of(r, 1) for r in records} == {0}


def test_batch_formula_clamps_to_one_and_to_the_batch_size() -> None:
    views = consumer("VIEW", batch_size=1000, window=5.0)
    # 1 M events a day, one partition, 70 % views: 11.574 * 0.7 * 5 = 40.51 records.
    assert batch_records(1_000_000, 1, 0.7, views) == 41
    assert batch_records(1_000_000, 16, 0.7, views) == 3
    assert batch_records(10_000, 16, 0.7, views) == 1
    assert batch_records(100_000_000, 1, 0.7, views) == 1000


def test_changed_keys_come_from_the_handlers_merge() -> None:
    first = model.view_item("u", "v", 30, TS)
    second = model.view_item("u", "v", 10, TS.replace(second=40))
    other = model.view_item("w", "v", 5, TS.replace(second=41))
    records = list(
        stream_records([put(first), put(second), put(other), Operation("x", "delete", _key(first))])
    )
    # u's video and user summaries, w's user summary: the delete nets out part of u's changes.
    assert summary_writes(records, "VIEW") == {(VIDEO, "views"): 1, (USER, "views"): 2}
    assert summary_writes(records[:1] + records[3:], "VIEW") == {}  # inserted and deleted
    assert summary_writes(records, "VOTE") == {}


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


def test_project_cell_counts_invocations_and_writes() -> None:
    # 8 views of one user and video: every batch writes 2 keys, whatever its size.
    records = list(
        stream_records(put(model.view_item("u", "v", 1, TS.replace(second=n))) for n in range(8))
    )
    ours = Design((consumer("VIEW", batch_size=4, window=5.0),), SETTINGS, UNMEASURED)
    cell = project_cell(Sample(records), ours, 100_000_000, 1)
    assert cell.batch_records == (4,)
    assert cell.invocations_per_event == pytest.approx(1 / 4)
    assert cell.writes_per_event == pytest.approx(2 / 4)
    tiny = project_cell(Sample(records), ours, 10_000, 1)  # a batch of one record
    assert tiny.writes_per_event == pytest.approx(2.0)


def test_the_reference_writes_two_items_per_delivered_record() -> None:
    records = list(
        stream_records(put(model.view_item("u", "v", 1, TS.replace(second=n))) for n in range(8))
    )
    reference = Design((Consumer("VIEW", 1, 0.0, 0, of_type("VIEW")),), REFERENCE, UNMEASURED)
    cell = project_cell(Sample(records), reference, 1_000_000, 16)
    assert cell.invocations_per_event == pytest.approx(1.0)
    assert cell.writes_per_event == pytest.approx(2.0)


def test_monthly_bill() -> None:
    writes = {(VIDEO, "views"): 1.0, (USER, "likes"): 1.0}
    load = ConsumerLoad(invocations=0.5, records=1.0, writes=writes)
    cell = Cell(1_000_000, 1, 0.5, writes=writes, batch_records=(1,), consumers=(load,))
    design = Design((), FunctionSettings(1024, "x86_64", False, DurationModel(100.0, 0.0)),
                    UNMEASURED)  # fmt: skip
    events = 30_000_000
    expected = (
        events * 0.5 * 0.20 / 1e6  # requests
        + events * 0.5 * 0.1 * 1.0 * 0.0000166667  # 100 ms at 1 GB
        + events * 2.0 * 1.0 * 0.625 / 1e6  # two writes of 1 WRU each
    )
    assert cell.monthly_usd(design) == pytest.approx(expected)


def test_projection_table_of_the_generator_is_deterministic() -> None:
    records = list(stream_records(production_operations(3000, seed=5)))
    assert records == list(stream_records(production_operations(3000, seed=5)))
    sample = Sample(records)
    ours = Design((consumer("VIEW"), consumer("VOTE")), SETTINGS, UNMEASURED)
    singles = tuple(Consumer(t, 1, 0.0, 0, of_type(t)) for t in ("VIEW", "VOTE"))
    reference = Design(singles, REFERENCE, UNMEASURED)
    rows = projection_table(sample, reference, ours)
    assert [(r["events_per_day"], r["partitions"]) for r in rows] == [
        (e, p) for e in (1_000_000, 10_000_000, 100_000_000) for p in (1, 4, 16)
    ]
    for row in rows:
        assert row["ratio"] == pytest.approx(
            row["reference_usd_month"] / row["ours_usd_month"], rel=0.01
        )
        assert row["reference_invocations_per_1000_records"] == pytest.approx(1000.0)
    # More partitions at the same rate: smaller batches, so more invocations per record.
    one, four, sixteen = rows[0], rows[1], rows[2]
    assert (
        one["ours_invocations_per_1000_records"]
        < four["ours_invocations_per_1000_records"]
        < sixteen["ours_invocations_per_1000_records"]
    )


def test_production_targets_and_table() -> None:
    assert production_target(1_000_000, 1) == production_target(1_000_000, 4) == 3.0
    assert production_target(1_000_000, 16) == 2.0
    assert production_target(10_000_000, 4) == production_target(100_000_000, 16) == 4.0
    assert production_target(10_000_000, 1) == 1.0
    rows = [
        {"events_per_day": 1_000_000, "partitions": 4, "reference_usd_month": 90.0,
         "ours_usd_month": 30.0, "ratio": 3.0, "ours_batch_records": [10, 5]},
        {"events_per_day": 10_000_000, "partitions": 16, "reference_usd_month": 900.0,
         "ours_usd_month": 300.0, "ratio": 3.0, "ours_batch_records": [24, 12]},
    ]  # fmt: skip
    results = {"ours": {"large": {"projection": rows}}, "meta": {}}
    table = production_table(results)
    assert table[2].startswith("| 1 M | 4 | 10, 5 |")
    assert table[2].count("|") == table[0].count("|")
    assert "**3.00x** | ≥ 4x |" in table[3]
    production = [t for t in evaluate_targets(results) if "projected" in t.name]
    assert [t.met for t in production] == [True, False]


def summary_item(marks: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "PK": {"S": "VIDEO#v1"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"},
        "videoId": {"S": "v1"}, "views": {"N": "7"}, "duration": {"N": "300"},
        "likes": {"N": "1"}, "dislikes": {"N": "0"}, "GSI1PK": {"S": "VIDEO#v1"},
        "GSI1SK": {"S": "SUMMARY"}, "GSI2PK": {"S": "VIDEO_SUMMARY#1"},
    }  # fmt: skip
    for n in range(marks):
        # A long mark value, so that 16 partitions' marks pass 1 KB.
        item[f"applied#views#tag{n}"] = {"S": encode_mark(10**30 + n, 1_700_000_000) * 2}
    return item


def test_marks_a_day_leaves_grow_with_partitions_for_videos_only() -> None:
    # Two functions, one open lineage per partition (lineage pruning).
    assert marks_after_a_day(VIDEO, 1) == 2
    assert marks_after_a_day(VIDEO, 16) == 32
    assert marks_after_a_day(USER, 16) == 2
    grown = with_marks(summary_item(1), 14)
    assert sum(1 for name in grown if model.is_mark_attribute(name)) == 14
    assert with_marks({**summary_item(0)}, 14) == summary_item(0)  # no marks to copy: none


def test_injected_marks_are_as_long_as_the_api_allows_whatever_the_run_drew() -> None:
    # The local stream draws 21-40 digits per shard; the projection must not depend on the draw.
    short = {**summary_item(0), "@vAAAAAA": {"S": encode_mark(10**20, 1_700_000_000)}}
    grown = with_marks(short, 32)
    values = [v["S"] for name, v in grown.items() if model.is_mark_attribute(name)]
    assert {decode_mark(v).seq for v in values} == {10**40 - 1}
    assert item_size(grown) > 1024  # 16 partitions' marks at 40 digits pass 1 KB
    shape = SummaryShape({VIDEO: short}, (GSI1, GSI2), transactional=False, measured_partitions=1)
    assert item_size(shape.item_after_a_day(VIDEO, 1)) == item_size(with_marks(short, 2))


def test_a_write_costs_what_the_item_after_a_day_weighs() -> None:
    shape = SummaryShape({VIDEO: summary_item(1)}, (GSI1, GSI2), transactional=False)
    one = shape.cost(VIDEO, change="views", partitions=1)
    sixteen = shape.cost(VIDEO, change="views", partitions=16)
    size = item_size(shape.item_after_a_day(VIDEO, 16))
    assert size > 1024
    assert sixteen.table_wru == -(-size // 1024)
    # GSI1 (ALL) copies the item; GSI2's key moved: a delete and a put of its small projection.
    assert sixteen.index_wru == sixteen.table_wru + 2
    assert one.table_wru < sixteen.table_wru
    unmoved = shape.cost(VIDEO, change="likes", partitions=16)
    assert unmoved.index_wru == sixteen.table_wru  # GSI2 projects no counter here: untouched
    transactional = SummaryShape({VIDEO: summary_item(0)}, (GSI1,), transactional=True)
    cost = transactional.cost(VIDEO, change="views", partitions=4)
    assert (cost.table_wru, cost.index_wru) == (2.0, 1.0)  # the index at 1x


# --- batching: the production defaults and the sensitivity to the window -------------------------


def test_batching_from_the_root_modules_stream_mapping() -> None:
    settings = {"batch_size": 1000, "maximum_batching_window_in_seconds": 300,
                "tumbling_window_in_seconds": 900, "enabled": True}  # fmt: skip
    batching = Batching.from_stream_mapping(settings)
    assert batching == Batching(1000, 300.0, 900)
    assert batching.as_dict() == {
        "batch_size": 1000,
        "maximum_batching_window_in_seconds": 300.0,
        "tumbling_window_in_seconds": 900,
    }
    views = consumer("VIEW", batch_size=10, window=5.0).batched_as(batching)
    assert (views.batch_size, views.window_seconds, views.tumbling_window_seconds) == (
        1000,
        300.0,
        900,
    )
    assert views.item_type == "VIEW"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"maximum_batching_window_in_seconds": 301}, "maximum_batching_window_in_seconds"),
        ({"maximum_batching_window_in_seconds": None}, "maximum_batching_window_in_seconds"),
        ({"batch_size": 0}, "batch_size"),
        ({"tumbling_window_in_seconds": True}, "tumbling_window_in_seconds"),
    ],
)
def test_batching_rejects_what_a_mapping_cannot_have(change: dict[str, Any], named: str) -> None:
    settings = {"batch_size": 1000, "maximum_batching_window_in_seconds": 300,
                "tumbling_window_in_seconds": 900, **change}  # fmt: skip
    with pytest.raises(ValueError, match=f"stream_mapping.{named} is"):
        Batching.from_stream_mapping(settings)


def test_sensitivity_windows_are_ordered_and_distinct() -> None:
    assert sensitivity_windows(5, 300) == [5.0, 60.0, 120.0, 300.0]
    assert sensitivity_windows(60, 60) == [60.0, 120.0]
    assert sensitivity_windows(300, 5) == [5.0, 60.0, 120.0, 300.0]


def test_projection_by_window_repeats_the_table_at_each_window() -> None:
    sample = Sample(list(stream_records(production_operations(3000, seed=5))))
    singles = tuple(Consumer(t, 1, 0.0, 0, of_type(t)) for t in ("VIEW", "VOTE"))
    reference = Design(singles, REFERENCE, UNMEASURED)
    ours = Design((consumer("VIEW", window=300.0), consumer("VOTE", window=300.0)), SETTINGS,
                  UNMEASURED)  # fmt: skip
    main = projection_table(sample, reference, ours)
    assert {row["batching_window_seconds"] for row in main} == {300.0}
    rows = projection_by_window(sample, reference, ours, [5.0, 300.0], partitions=(1, 16))
    assert [(r["batching_window_seconds"], r["partitions"]) for r in rows[:2]] == [
        (5.0, 1),
        (5.0, 16),
    ]
    assert len(rows) == 2 * 3 * 2
    by_cell = {(r["batching_window_seconds"], r["events_per_day"], r["partitions"]): r
               for r in rows}  # fmt: skip
    for row in main:
        if row["partitions"] in (1, 16):
            again = by_cell[(300.0, row["events_per_day"], row["partitions"])]
            assert again["ratio"] == row["ratio"]
            assert again["ours_usd_month"] == row["ours_usd_month"]
    # A longer window: larger batches, never a more expensive reference.
    short, long = by_cell[(5.0, 1_000_000, 16)], by_cell[(300.0, 1_000_000, 16)]
    assert short["reference_usd_month"] == long["reference_usd_month"]
    assert short["ours_batch_records"] < long["ours_batch_records"]
    assert short["ours_usd_month"] > long["ours_usd_month"]


def test_windows_that_give_the_same_batches_share_the_merge() -> None:
    records = list(
        stream_records(put(model.view_item("u", "v", 1, TS.replace(second=n))) for n in range(8))
    )
    sample = Sample(records)
    views = consumer("VIEW", batch_size=4)  # one filter, batched three ways
    capped = [
        Design((replace(views, window_seconds=window),), SETTINGS, UNMEASURED)
        for window in (60.0, 300.0)
    ]
    cells = [project_cell(sample, design, 100_000_000, 1) for design in capped]
    assert cells[0] == cells[1]  # both windows fill the 4-record batch: merged once
    assert len(sample.simulations) == 1
    larger = Design((replace(views, batch_size=1000),), SETTINGS, UNMEASURED)
    assert project_cell(sample, larger, 100_000_000, 1).batch_records == (1000,)
    assert len(sample.simulations) == 2
