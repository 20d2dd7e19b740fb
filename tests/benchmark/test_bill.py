"""The full bill's arithmetic (pure): prices, log and metric parsing, metric-hours, the lines,
break-even, and every summary write the handlers make (mark-only writes, GSI2 moves and fixes)."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from benchmark.bill import (
    BILL_LINES,
    HOURS_PER_MONTH,
    FunctionMonth,
    LogShape,
    StackResources,
    bill_total,
    break_even,
    emf_metrics,
    fixed_lines,
    metric_hours,
    monthly_bill,
    parse_function_log,
    platform_log_bytes,
    vcpu_share,
)
from benchmark.figures import PRICE_SOURCES, PRICES, DurationModel, FunctionSettings, Prices
from benchmark.full_bill import BillInputs, Production, full_bill
from benchmark.projection import (
    Consumer,
    Design,
    Sample,
    SummaryShape,
    Writes,
    changed_item,
    project_cell,
    stream_records,
)
from localcloud.writestats import IndexShape
from video_stats import model
from vstats.filter_patterns import delivered_to
from vstats.generator import Operation

VIDEO, USER = model.SummaryKind.VIDEO, model.SummaryKind.USER


def emf(service: str, **values: float) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "VideoStats",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                    }
                ],
            },
            "service": service,
            **values,
        }
    )


def metric(name: str, service: str = "update-views") -> Any:
    return ("VideoStats", name, (("service", service),))


# --- prices ------------------------------------------------------------------------------------


def test_every_price_has_a_unit_and_a_source() -> None:
    fields = {f.name for f in dataclasses.fields(Prices)}
    assert fields == set(PRICE_SOURCES)
    assert all(unit and source for unit, source in PRICE_SOURCES.values())


# --- the functions' logs -----------------------------------------------------------------------


def test_a_function_log_gives_invocations_own_bytes_and_published_metrics() -> None:
    first = emf("update-views", RecordsReceived=3, RecordsSkippedInvalid=0)
    second = emf("update-views", RecordsReceived=2, RecordsSkippedInvalid=1)
    info = '{"level":"INFO","message":"batch applied"}'
    text = "\n".join(
        [
            "START RequestId: a Version: $LATEST",
            info,
            first,
            "END RequestId: a",
            "REPORT RequestId: a\tDuration: 3.00 ms\tMemory Size: 256 MB",
            "START RequestId: b Version: $LATEST",
            second,
            "END RequestId: b",
            "REPORT RequestId: b\tDuration: 3.00 ms\tMemory Size: 256 MB",
        ]
    )
    shape = parse_function_log(text)
    assert shape.invocations == 2
    assert shape.own_bytes == len(info) + len(first) + len(second) + 3  # with their newlines
    assert shape.share(metric("RecordsReceived")) == 1.0
    assert shape.share(metric("RecordsSkippedInvalid")) == 1.0  # published, even when zero
    assert shape.share(metric("RecordsSkippedInvalid"), nonzero_only=True) == 0.5


def test_emf_dimension_sets_are_separate_metrics() -> None:
    document = json.loads(emf("update-votes", SummaryWrites=0))
    document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [["service"], []]
    published, nonzero = emf_metrics(json.dumps(document))
    assert published == {
        metric("SummaryWrites", "update-votes"),
        ("VideoStats", "SummaryWrites", ()),
    }
    assert nonzero == set()
    assert emf_metrics("{not json") == (set(), set())


def test_metric_hours_are_the_hours_a_metric_is_published_in() -> None:
    shape = LogShape(invocations=4)
    shape.published.update({metric("Always"): 4, metric("Rare"): 1})
    # Many invocations an hour: every metric every hour.
    assert metric_hours(shape, 10_000.0) == pytest.approx(2 * HOURS_PER_MONTH)
    # One invocation an hour: Poisson, 1 - e^-1 of the hours; the rare one 1 - e^-0.25.
    expected = HOURS_PER_MONTH * ((1 - math.exp(-1)) + (1 - math.exp(-0.25)))
    assert metric_hours(shape, 1.0) == pytest.approx(expected)
    assert metric_hours(shape, 0.0) == 0.0


def test_platform_lines_are_billed_in_awss_format() -> None:
    assert 250 < platform_log_bytes(256) < 300
    assert vcpu_share(256) == pytest.approx(256 / 1769)
    assert vcpu_share(4096) == 1.0


# --- the lines ---------------------------------------------------------------------------------


def test_fixed_cost_is_alarm_metrics_dashboards_and_customer_keys() -> None:
    resources = StackResources(alarm_metrics=12, alarms=12, dashboards=1, kms_keys=0, queues=2)
    assert fixed_lines(resources) == pytest.approx({"alarms": 1.2, "dashboard": 3.0, "kms": 0.0})


def test_monthly_bill_lines() -> None:
    log = LogShape(invocations=10, own_bytes=10 * 500)
    log.published.update({metric("RecordsReceived"): 10})
    function = FunctionMonth(invocations=1e6, gb_seconds=1000.0, log=log, memory_mb=256)
    quiet = FunctionMonth(invocations=1e6, gb_seconds=1000.0, log=None, memory_mb=256)
    resources = StackResources(alarm_metrics=12, dashboards=1)
    lines = monthly_bill(
        functions=[function, quiet],
        wru=2e6,
        architecture="arm64",
        resources=resources,
        storage_bytes=1e9,
        pitr=True,
        log_retention_days=30,
    )
    assert list(lines) == list(BILL_LINES)
    platform = platform_log_bytes(256)
    logged = 1e6 * (500 + platform) + 1e6 * platform
    assert lines["lambda_requests"] == pytest.approx(0.40)
    assert lines["lambda_compute"] == pytest.approx(2000 * PRICES.gb_second_arm64)
    assert lines["dynamodb_writes"] == pytest.approx(1.25)
    assert lines["custom_metrics"] == pytest.approx(0.30)  # one metric, every hour
    assert lines["log_ingestion"] == pytest.approx(logged / 1e9 * 0.50)
    assert lines["log_storage"] == pytest.approx(logged / 1e9 * 0.03)  # 30 days kept
    assert lines["dynamodb_storage"] == pytest.approx(0.25)
    assert lines["pitr"] == pytest.approx(0.20)
    assert (lines["alarms"], lines["dashboard"], lines["kms"]) == pytest.approx((1.2, 3.0, 0.0))
    assert bill_total(lines) == pytest.approx(sum(lines.values()))
    no_pitr = monthly_bill(
        functions=[quiet], wru=0, architecture="x86_64", resources=StackResources(),
        storage_bytes=1e9, pitr=False, log_retention_days=1,
    )  # fmt: skip
    assert no_pitr["pitr"] == 0.0
    assert no_pitr["log_storage"] == pytest.approx(1e6 * platform / 1e9 / 30 * 0.03)


def test_break_even_finds_the_crossing() -> None:
    # Fixed $5 against a saving of $1 per 10,000 events a day: even at 50,000.
    def saving(per_day: float) -> float:
        return per_day / 10_000 - 5.0

    even = break_even(saving, 1_000.0, 1e8, steps=40)
    assert even == pytest.approx(50_000, rel=1e-6)
    assert break_even(saving, 60_000.0, 1e8) == 60_000.0  # already cheaper
    assert break_even(lambda _: -1.0, 1_000.0, 1e8) is None  # never


# --- every write the handlers make ------------------------------------------------------------


GSI1 = IndexShape("GSI1", ("GSI1PK", "GSI1SK"), ("PK", "SK"), "INCLUDE", ("views", "likes"))
GSI2 = IndexShape("GSI2", ("GSI2PK", "GSI2SK"), ("PK", "SK"), "KEYS_ONLY")


def of_type(item_type: str) -> Any:
    return functools.partial(delivered_to, item_type=item_type)


def design(*, ours: bool) -> Design:
    """This project (batches of up to 100 records in a 5 s window) or the reference (one)."""
    consumers = tuple[Consumer, ...](
        Consumer(t, 100 if ours else 1, 5.0 if ours else 0.0, 0, of_type(t))
        for t in ("VIEW", "VOTE")
    )
    settings = FunctionSettings(256, "arm64", not ours, DurationModel(30.0, 2.0, 0.1))
    return Design(
        consumers, settings, SummaryShape({}, (), False), writes_every_key=ours,
        ranks_by_views=ours, items_per_request=1.0 if ours else 2.0,
    )  # fmt: skip


def view(user: str, video: str, second: int) -> dict[str, Any]:
    return model.view_item(user, video, 10, datetime(2022, 1, 1, 0, 0, second, tzinfo=UTC))


def ops(*items: tuple[Literal["put", "delete"], dict[str, Any]]) -> list[dict[str, Any]]:
    operations = [
        Operation(
            "views", action, {"PK": item["PK"], "SK": item["SK"]}, item if action == "put" else None
        )
        for action, item in items
    ]
    return list(stream_records(operations))


def test_a_key_that_nets_to_zero_costs_a_mark_only_write_in_ours_only() -> None:
    created = view("u1", "v1", 1)
    records = ops(("put", created), ("delete", created))
    ours = Writes(design(ours=True))
    ours.apply(records, "VIEW", consumer=0, shard=0)
    assert ours.counts == {(USER, "mark"): 1, (VIDEO, "mark"): 1}
    reference = Writes(design(ours=False))
    reference.apply(records, "VIEW", consumer=0, shard=0)
    assert reference.counts == {}


def test_gsi2_moves_and_fixes_follow_the_stores_prediction() -> None:
    writes = Writes(design(ours=True))
    first = ops(("put", view("u1", "v1", 1)))
    writes.apply(first, "VIEW", consumer=0, shard=0)  # new items: bucket of the first delta
    assert writes.counts == {(USER, "views"): 1, (VIDEO, "views"): 1}
    second = ops(("put", view("u2", "v1", 2)))
    writes.apply(second, "VIEW", consumer=0, shard=0)  # v1: 1 -> 2 views, predicted: a move
    assert writes.counts[(VIDEO, "bucket")] == 1
    assert writes.counts[(VIDEO, "fix")] == 0
    # Another shard's container never saw v1: if_not_exists keeps bucket "02", 3 views is
    # still "02"; the fourth view (bucket "03") from that shard is mispredicted: one fix.
    writes.apply(ops(("put", view("u3", "v1", 3))), "VIEW", consumer=0, shard=1)
    assert writes.counts[(VIDEO, "fix")] == 0
    writes.apply(ops(("put", view("u4", "v1", 4))), "VIEW", consumer=0, shard=2)
    assert writes.counts[(VIDEO, "fix")] == 1


def test_changed_items_keep_their_size() -> None:
    item = {"PK": {"S": "VIDEO#v"}, "SK": {"S": "SUMMARY"}, "views": {"N": "9"},
            "likes": {"N": "0"}, "GSI2SK": {"S": "04"}}  # fmt: skip
    assert changed_item(item, "fix")["GSI2SK"] != item["GSI2SK"]
    assert changed_item(item, "bucket")["views"] == {"N": "10"}
    assert changed_item(item, "likes")["likes"] == {"N": "1"}
    with pytest.raises(ValueError, match="unknown write change"):
        changed_item(item, "other")


def test_full_bill_rows_and_break_even_on_a_small_sample() -> None:
    records = ops(*(("put", view(f"u{n % 40}", f"v{n % 7}", n % 60)) for n in range(300)))
    sample = Sample(records)
    shape = LogShape(invocations=1, own_bytes=400)
    shape.published.update({metric("RecordsReceived"): 1})
    ours_inputs = BillInputs({"VIEW": shape}, StackResources(alarm_metrics=12, dashboards=1))
    ref_inputs = BillInputs({}, StackResources())
    result = full_bill(
        sample,
        {"baseline": (design(ours=False), ref_inputs), "ours": (design(ours=True), ours_inputs)},
        Production(point_in_time_recovery=True, log_retention_days=30),
        events_per_day=(10_000, 1_000_000),
        partitions=(1, 4),
    )
    assert [(r["events_per_day"], r["partitions"]) for r in result["rows"]] == [
        (10_000, 1), (10_000, 4), (1_000_000, 1), (1_000_000, 4)
    ]  # fmt: skip
    assert result["fixed"] == {"alarms": 1.2, "dashboard": 3.0, "kms": 0.0}
    assert all(r["fixed_usd_month"] == 4.2 for r in result["rows"])
    small, large = result["rows"][0], result["rows"][2]
    assert small["ratio"] < 1 < large["ratio"]  # fixed costs dominate at 10,000 a day only
    even = result["break_even_events_per_day"]["1"]
    assert 10_000 < even < 1_000_000
    cell = project_cell(sample, design(ours=True), even, 1)
    assert cell.writes_per_event > 0


def test_a_summary_with_a_history_rarely_moves_bucket() -> None:
    records = ops(*(("put", view(f"u{n}", "v1", n)) for n in range(3)))
    young = Writes(design(ours=True))
    young.apply(records, "VIEW", consumer=0, shard=0)
    # v1 goes 1 -> 2 -> 3 views inside one batch: merged, one write that creates it.
    assert young.counts[(VIDEO, "views")] == 1
    old = Writes(design(ours=True), history={model.SummaryKey(VIDEO, "v1"): 1000})
    old.apply(records, "VIEW", consumer=0, shard=0)
    assert old.counts[(VIDEO, "views")] == 1  # 1,000 -> 1,003: same bucket
    old.apply(ops(("put", view("u9", "v1", 9))), "VIEW", consumer=0, shard=1)
    assert old.counts[(VIDEO, "fix")] == 0  # a container that never wrote it knows its history
    moved = Writes(design(ours=True), history={model.SummaryKey(VIDEO, "v1"): 1023})
    moved.apply(records, "VIEW", consumer=0, shard=0)
    assert moved.counts[(VIDEO, "bucket")] == 1  # 1,023 -> 1,026 crosses 1,024


def test_rejected_writes_are_billed_as_the_run_measured_them() -> None:
    records = ops(*(("put", view(f"u{n % 5}", "v1", n)) for n in range(20)))
    sample = Sample(records)
    clean = project_cell(sample, design(ours=True), 1_000_000, 1)
    retried = dataclasses.replace(design(ours=True), rejected_per_write=0.5)
    cell = project_cell(sample, retried, 1_000_000, 1)
    made = {kind: n for kind, n in clean.writes.items() if kind[1] != "fix"}
    for summary in (USER, VIDEO):
        expected = 0.5 * sum(n for (k, _), n in made.items() if k is summary)
        assert cell.writes[(summary, "rejected")] == pytest.approx(expected)
    shape = SummaryShape({VIDEO: {"PK": {"S": "VIDEO#v1"}, "views": {"N": "3"}}}, (GSI1,), False)
    rejected = shape.cost(VIDEO, "rejected", 1)
    assert (rejected.table_wru, rejected.index_wru) == (1.0, 0.0)  # the item's units, no index
