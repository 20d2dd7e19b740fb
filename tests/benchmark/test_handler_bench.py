"""``make bench-handler``'s input: the load test generator's stream records with a few views
spoiled, which the handlers' parse skips and counts (pure; no endpoint, no timings)."""

from __future__ import annotations

import argparse

import pytest
from benchmark.handler import benchmark_records, run
from video_stats.records import parse_batch


def test_the_records_are_the_generators_with_a_few_malformed_views() -> None:
    records = benchmark_records(4_000, seed=3)

    assert len(records) == 4_000
    assert records == benchmark_records(4_000, seed=3)  # deterministic
    names = {r["eventName"] for r in records}
    assert names == {"INSERT", "MODIFY", "REMOVE"}
    spoiled = [
        r for r in records if (r["dynamodb"].get("NewImage") or {}).get("duration") == {"N": "12.5"}
    ]
    assert 0 < len(spoiled) < 0.02 * len(records)
    views = [
        r for r in records if (r["dynamodb"].get("NewImage") or {}).get("type") == {"S": "VIEW"}
    ]
    assert len(parse_batch(views, "VIEW").skipped) == len(spoiled)


def test_run_prints_the_throughput_last(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(records=2_000, batch_size=500, repeat=1, seed=7)

    assert run(args) == 0

    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("records: 2000 in ")
    assert lines[-1].startswith("records/s: ")
