"""The benchmark's arithmetic: lower bounds, per-event figures, WRU and monthly dollars."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from benchmark.figures import (
    EVENTS_PER_MONTH,
    PRICES,
    BatchBound,
    DurationModel,
    FunctionSettings,
    FunctionStream,
    Projection,
    RunCounts,
    batch_bound,
    figures,
    min_batches,
    monthly_cost,
    parse_batch_sizes,
    parse_duration_model,
    parse_report_durations,
    project,
    split_batches,
)
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind
from vstats.effects import record_effect

TS = datetime(2022, 1, 2, 17, 5, 29, 123000, tzinfo=UTC)
VIDEO = SummaryKind.VIDEO
USER = SummaryKind.USER


SEQUENCE = itertools.count(1)


def record(
    name: str, new: dict[str, Any] | None = None, old: dict[str, Any] | None = None
) -> dict[str, Any]:
    images: dict[str, Any] = {"SequenceNumber": str(next(SEQUENCE))}
    if new is not None:
        images["NewImage"] = new
    if old is not None:
        images["OldImage"] = old
    return {"eventName": name, "dynamodb": images}


def view(user: str, video: str, seconds: int) -> dict[str, Any]:
    return model.view_item(user, video, seconds, TS)


# --- record effects and the write lower bound ----------------------------------------------------


def test_record_effect_of_insert_remove_and_modify() -> None:
    assert record_effect(record("INSERT", new=view("u", "v", 30)), "VIEW") == {
        SummaryKey(VIDEO, "v"): Counters(views=1, duration=30),
        SummaryKey(USER, "u"): Counters(views=1, duration=30),
    }
    assert record_effect(record("REMOVE", old=view("u", "v", 30)), "VIEW") == {
        SummaryKey(VIDEO, "v"): Counters(views=-1, duration=-30),
        SummaryKey(USER, "u"): Counters(views=-1, duration=-30),
    }
    changed = record(
        "MODIFY",
        new=model.vote_item("u", "v", "DISLIKE"),
        old=model.vote_item("u", "v", "LIKE"),
    )
    assert record_effect(changed, "VOTE")[SummaryKey(VIDEO, "v")] == Counters(likes=-1, dislikes=1)


def test_record_effect_ignores_other_types_summaries_and_malformed_items() -> None:
    assert record_effect(record("INSERT", new=view("u", "v", 30)), "VOTE") == {}
    summary = {"PK": {"S": "VIDEO#v"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"}}
    assert record_effect(record("MODIFY", new=summary, old=summary), "VIEW") == {}
    broken = view("u", "v", 30) | {"duration": {"N": "-1"}}
    assert record_effect(record("INSERT", new=broken), "VIEW") == {}


def test_batch_bound_counts_one_write_per_changed_key_per_batch() -> None:
    insert = record("INSERT", new=view("u1", "v", 30))
    remove = record("REMOVE", old=view("u1", "v", 30))
    other = record("INSERT", new=view("u2", "v", 10))
    again = record("INSERT", new=view("u2", "v", 10))
    # Batch 1: u1 +1 then -1 (cancels), u2 +1, v +1 -1 +1 -> changed: u2, v.
    # Batch 2: the same video again -> a second write of v.
    bound = batch_bound([[insert, remove, other], [again]], "VIEW")
    assert bound == BatchBound(batches=2, records=4, distinct_keys=3 + 2, changed_keys=2 + 2)


def test_batch_size_one_bound_is_two_writes_per_record() -> None:
    records = [record("INSERT", new=view(f"u{i}", "v", 5)) for i in range(3)]
    bound = batch_bound(split_batches(records, [1, 1, 1]), "VIEW")
    assert (bound.batches, bound.changed_keys) == (3, 6)


def test_split_batches_checks_the_sizes() -> None:
    assert split_batches([1, 2, 3, 4], [3, 1]) == [[1, 2, 3], [4]]
    with pytest.raises(ValueError, match="add up to 3"):
        split_batches([1, 2, 3, 4], [2, 1])
    with pytest.raises(ValueError, match=">= 1"):
        split_batches([1], [1, 0])


def test_min_batches() -> None:
    assert min_batches(0, 1000) == 0
    assert min_batches(1000, 1000) == 1
    assert min_batches(1001, 1000) == 2
    assert min_batches(7, 1) == 7


# --- log parsing ---------------------------------------------------------------------------------


def test_parse_batch_sizes_reads_the_batch_log_line_in_order() -> None:
    def applied(received: object) -> str:
        return json.dumps({"level": "INFO", "message": "batch applied", "received": received})

    emf = {"_aws": {"CloudWatchMetrics": [{"Metrics": [{"Name": "RecordsRetried"}]}]}}
    lines = [
        "START RequestId: a Version: $LATEST",
        applied(308),
        json.dumps({**emf, "RecordsRetried": [2.0]}),
        "END RequestId: a",
        json.dumps({"level": "INFO", "message": "record skipped", "received": 5}),
        "not json {",
        '{"message": "batch applied", broken',
        applied(True),
        applied(12),
    ]
    assert parse_batch_sizes("\n".join(lines)) == [308, 12]


def test_parse_report_durations() -> None:
    text = (
        "START RequestId: x Version: $LATEST\n"
        "REPORT RequestId: x\tDuration: 12.50 ms\tMemory Size: 128 MB\n"
        "REPORT RequestId: y\tDuration: 7.00 ms\tMemory Size: 128 MB\tError: Unhandled\n"
    )
    assert parse_report_durations(text) == [12.5, 7.0]


# --- duration model and money --------------------------------------------------------------------


def test_parse_duration_model() -> None:
    assert parse_duration_model("25") == DurationModel(25.0, 0.0)
    assert parse_duration_model("30+0.5") == DurationModel(30.0, 0.5)
    assert parse_duration_model(" 30 + 0.5/write ") == DurationModel(30.0, 0.5)
    assert DurationModel(30, 0.5).invocation_ms(100) == 80.0
    for bad in ("", "fast", "-3", "0", "30+", "1e9"):
        with pytest.raises(ValueError, match="duration model"):
            parse_duration_model(bad)


def test_monthly_cost_of_the_reference_design_by_hand() -> None:
    # docs/design.md §6: per event one invocation and a transaction of two updates (4 WRU) plus a
    # GSI1 write; 1 M events a day for 30 days, 128 MB x86_64 at 25 ms.
    cost = monthly_cost(
        invocations_per_event=1.0,
        ms_per_invocation=25.0,
        memory_mb=128,
        architecture="x86_64",
        wru_per_event=5.0,
    )
    assert cost.lambda_requests == pytest.approx(30e6 * 0.20 / 1e6)  # $6.00
    assert cost.lambda_compute == pytest.approx(30e6 * 0.025 * 0.125 * 0.0000166667)
    assert cost.dynamodb == pytest.approx(30e6 * 5 * 0.625 / 1e6)  # $93.75
    assert cost.total == pytest.approx(6.0 + 1.5625 + 93.75, rel=1e-4)


def test_monthly_cost_uses_the_architecture_price() -> None:
    def compute(arch: str) -> float:
        return monthly_cost(
            invocations_per_event=0.01,
            ms_per_invocation=1000.0,
            memory_mb=1024,
            architecture=arch,
            wru_per_event=0.0,
        ).lambda_compute

    assert compute("arm64") == pytest.approx(EVENTS_PER_MONTH * 0.01 * PRICES.gb_second_arm64)
    assert compute("x86_64") == pytest.approx(EVENTS_PER_MONTH * 0.01 * PRICES.gb_second_x86_64)
    with pytest.raises(ValueError, match="architecture"):
        compute("sparc")


# --- figures -------------------------------------------------------------------------------------


def counts(**overrides: Any) -> RunCounts:
    base: dict[str, Any] = {
        "events": 990,
        "probes": 10,
        "invocations": 4,
        "batches": 3,  # plus one closing call of a tumbling window
        "records_delivered": 1000,
        "records_filtered_out": 2000,
        "summary_write_requests": 600,
        "summary_item_writes": 600,
        "summary_wru": 600,
        "summary_gsi_wru": 900,
        "base_wru": 2000,
        "min_batches_at_batch_size": 2,
        "bound": BatchBound(batches=3, records=1000, distinct_keys=700, changed_keys=600),
        "drain_seconds": 4.5,
        "drained": True,
        "probe_delays": [5.0, 6.0],
    }
    base.update(overrides)
    return RunCounts(**base)


OURS = FunctionSettings(256, "arm64", transactional=False, duration=DurationModel(30, 0.5))
REFERENCE = FunctionSettings(128, "x86_64", transactional=True, duration=DurationModel(10, 15))


def test_figures_per_1000_records_per_event_and_bounds() -> None:
    result = figures(counts(), OURS)
    assert result["records"] == 1000
    assert result["invocations_per_1000_records"] == 4.0
    assert result["lower_bound_invocations_per_1000_records"] == 3.0
    assert result["full_batch_invocations_per_1000_records"] == 2.0
    assert result["writes_per_event"] == 0.6
    assert result["lower_bound_writes"] == 600
    assert result["lower_bound_writes_per_event"] == 0.6
    assert result["distinct_keys_per_event"] == 0.7
    assert result["wru_per_event"] == 0.6
    assert result["lower_bound_wru_per_event"] == 0.6
    assert result["gsi_wru_per_event"] == 0.9
    assert result["write_to_summary_p50_seconds"] == 5.5
    # 600 write requests over 4 invocations: 30 + 0.5 * 150 = 105 ms each.
    assert result["assumed_ms_per_invocation"] == 105.0
    monthly = result["monthly_usd"]
    assert monthly["lambda_requests"] == pytest.approx(
        0.004 * EVENTS_PER_MONTH * 0.2 / 1e6, abs=0.01
    )
    assert monthly["dynamodb"] == pytest.approx(1.5 * EVENTS_PER_MONTH * 0.625 / 1e6, abs=0.01)
    assert result["lower_bound_monthly_usd"]["total"] <= monthly["total"]


def test_figures_of_a_transactional_design() -> None:
    result = figures(
        counts(
            invocations=800,
            batches=800,
            summary_write_requests=800,
            summary_item_writes=1600,
            summary_wru=3200,
            summary_gsi_wru=1600,
            bound=BatchBound(800, 800, 1600, 1600),
        ),
        REFERENCE,
    )
    assert result["write_requests_per_event"] == 0.8
    assert result["writes_per_event"] == 1.6
    assert result["wru_per_event"] == 3.2  # 2 WRU per transactional item
    assert result["lower_bound_wru_per_event"] == 1.6  # the same writes, plain
    # The lower bound bills the GSI units of a plain write: half the transactional ones.
    lower = result["lower_bound_monthly_usd"]["dynamodb"]
    assert lower == pytest.approx(1.6 * 1.5 * EVENTS_PER_MONTH * 0.625 / 1e6, abs=0.01)
    assert result["monthly_usd"]["dynamodb"] == pytest.approx(
        4.8 * EVENTS_PER_MONTH * 0.625 / 1e6, abs=0.01
    )


def test_figures_without_a_bound_or_records() -> None:
    result = figures(counts(bound=None, bound_note="retries"), OURS)
    assert result["lower_bound_writes_per_event"] is None
    assert result["lower_bound_monthly_usd"] is None
    assert result["lower_bound_note"] == "retries"
    empty = figures(counts(events=0, probes=0, bound=None), OURS)
    assert empty["invocations_per_1000_records"] is None
    assert empty["monthly_usd"]["total"] == 0.0


# --- projection to 1 M events a day --------------------------------------------------------------


def test_projection_rebatches_at_the_window_of_the_lower_rate() -> None:
    # 100 view records of 2 keys each, all for the same user and video: one write per key per
    # batch. At 2 events/s with a 5 s window a function gets 10 records per batch.
    views = [record("INSERT", new=view("u", "v", 1)) for _ in range(100)]
    stream = FunctionStream(views, "VIEW", batch_size=1000, window_seconds=5.0)
    projection = project([stream], records=100, events_per_second=2.0)
    assert projection is not None
    assert projection.batch_records == (10,)
    assert projection.invocations_per_event == pytest.approx(10 / 100)
    assert projection.writes_per_event == pytest.approx(10 * 2 / 100)


def test_projection_caps_at_the_batch_size_and_counts_closing_calls() -> None:
    views = [record("INSERT", new=view("u", "v", 1)) for _ in range(80)]
    full = FunctionStream(
        views[:50], "VIEW", batch_size=20, window_seconds=5.0, tumbling_window_seconds=900
    )
    single = FunctionStream(views[50:], "VIEW", batch_size=1, window_seconds=0.0)
    projection = project([full, single], records=100, events_per_second=100.0)
    assert projection is not None
    assert projection.batch_records == (20, 1)
    closing = 1 / (900 * 100.0)  # one call per 900 s window, per event at 100 events/s
    assert projection.invocations_per_event == pytest.approx((3 + 30) / 100 + closing)
    assert projection.writes_per_event == pytest.approx((3 * 2 + 30 * 2) / 100)
    assert project([full], records=0, events_per_second=1.0) is None


def test_figures_carry_the_projected_bill() -> None:
    projection = Projection(11.57, (38, 20), invocations_per_event=0.04, writes_per_event=1.5)
    result = figures(counts(projection=projection), OURS)
    projected = result["projected"]
    assert projected["invocations_per_1000_records"] == 40.0
    assert projected["wru_per_event"] == 1.5  # 1 WRU per measured write
    assert projected["gsi_wru_per_event"] == 2.25  # 900 GSI units per 600 writes
    assert projected["monthly_usd"]["dynamodb"] == pytest.approx(
        3.75 * EVENTS_PER_MONTH * 0.625 / 1e6, abs=0.01
    )
