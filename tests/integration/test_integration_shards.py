"""The deployed stack on a stream of many shards that rotate every few seconds (local only):
a load test with faults crosses shards and generations, and every summary still equals the
recount of the base items. The report shows the shards and generations crossed and the largest
summary item (bytes, exactly-once marks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from it_support import (
    Stack,
    assert_exact,
    engine_delta,
    record_figure,
)
from vstats.load_report import Report
from vstats.load_run import LoadTest, LoadTestConfig

pytestmark = pytest.mark.integration

ROTATION_SECONDS = 3.0
FAULTS = {
    "fail_invocation_rate": 0.2,
    "kill_mid_batch_rate": 0.2,
    "duplicate_batch_rate": 0.2,
}


@pytest.fixture
def rotating(no_faults: Stack) -> Iterator[Stack]:
    """The stack's stream with its shards closing every few seconds, for this test only."""
    stack = no_faults
    if not stack.target.is_local:
        pytest.skip("shard rotation on demand exists only on the local endpoint")
    control = stack.target.control
    assert control is not None
    settings = control.streams()["tables"][stack.table]["settings"]
    assert settings["partitions"] >= 4, "the local stream should have 4 partitions by default"
    control.set_streams({"table": stack.table, "rotation_seconds": ROTATION_SECONDS})
    try:
        yield stack
    finally:
        control.set_streams({"table": stack.table, **settings})


def _load(stack: Stack, **config: Any) -> Report:
    settings: dict[str, Any] = {
        "rate": 120.0,
        "writers": 4,
        "users": 30,
        "videos": 60,
        "probe_interval": 0.0,
        "drain_timeout": 180.0,
        **config,
    }
    report = LoadTest(
        stack.client("dynamodb"),
        stack.table,
        LoadTestConfig(**settings),
        control=stack.target.control,
    ).run()
    assert report.failed_writes == 0, report.first_error
    return report


def test_rotating_shards_with_faults_stay_exact(rotating: Stack) -> None:
    stack = rotating
    report = _load(stack, events=900, seed=31, id_prefix="shards-", faults={**FAULTS, "seed": 32})
    assert report.ok, f"mismatches: {[m.as_dict() for m in report.mismatches[:5]]}"
    exact = assert_exact(stack)
    local = report.local or {}
    assert local["shards"] >= 4
    assert local["shard_generations"] >= 2, local
    assert local["max_summary_item_bytes"] > 0
    assert local["max_marks_per_item"] >= 1
    record_figure(
        "5 rotating shards",
        events=report.events,
        shards=local["shards"],
        generations=local["shard_generations"],
        invocations=local.get("invocations"),
        summary_writes=local.get("summary_writes"),
        max_summary_item_bytes=local["max_summary_item_bytes"],
        max_marks_per_item=local["max_marks_per_item"],
        summaries=exact.summaries,
    )


def test_replayed_ranges_stay_exact(rotating: Stack) -> None:
    """Re-delivered ranges of processed batches, of a shard and of a parent after its child
    started (what a mapping re-created at TRIM_HORIZON reads)."""
    stack = rotating
    with engine_delta(stack) as delta:
        report = _load(
            stack, events=400, seed=41, id_prefix="replay-", faults={"replay_rate": 0.3, "seed": 42}
        )
        assert report.ok, f"mismatches: {[m.as_dict() for m in report.mismatches[:5]]}"
        assert_exact(stack)
        replayed = delta().total(stack.mapping_uuids, "replayed_batches")
        of_parents = delta().total(stack.mapping_uuids, "replayed_parent_batches")
    assert replayed > 0, "no range was replayed"
    assert of_parents > 0, "no parent shard was replayed after its child started"
    record_figure(
        "5 replays", events=report.events, replayed_batches=replayed, of_parents=of_parents
    )
