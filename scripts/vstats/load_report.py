"""What one load test run found (``Report``, written as JSON by ``--json``) and the summaries
that did not end where the writes said they would (``Mismatch``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from video_stats.model import Counters, SummaryKey


@dataclass(frozen=True, slots=True)
class Mismatch:
    key: SummaryKey
    baseline: Counters
    expected: Counters
    actual: Counters

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind.value,
            "id": self.key.id,
            "baseline": asdict(self.baseline),
            "expected": asdict(self.expected),
            "actual": asdict(self.actual),
        }


@dataclass(slots=True)
class Report:
    table: str
    events: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    failed_writes: int = 0
    first_error: str | None = None
    target_rate: float | None = None
    write_seconds: float = 0.0
    drain_seconds: float | None = None
    drained: bool = False
    verified: bool = False
    interrupted: bool = False
    touched_summaries: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    probes: int = 0
    probe_timeouts: int = 0
    delays: list[float] = field(default_factory=list)
    faults: dict[str, Any] | None = None
    local: dict[str, Any] | None = None
    seed: int | None = None

    @property
    def achieved_rate(self) -> float:
        return self.events / self.write_seconds if self.write_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.verified and not self.mismatches and not self.failed_writes

    def delay(self, q: float) -> float | None:
        return percentile(self.delays, q)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "events": self.events,
            "events_by_kind": dict(sorted(self.events_by_kind.items())),
            "failed_writes": self.failed_writes,
            "first_error": self.first_error,
            "target_rate": self.target_rate,
            "achieved_rate": round(self.achieved_rate, 2),
            "write_seconds": round(self.write_seconds, 3),
            "drain_seconds": _round(self.drain_seconds),
            "drained": self.drained,
            "verified": self.verified,
            "interrupted": self.interrupted,
            "touched_summaries": self.touched_summaries,
            "mismatches": len(self.mismatches),
            "mismatched_summaries": [m.as_dict() for m in self.mismatches[:1000]],
            "probes": self.probes,
            "probe_timeouts": self.probe_timeouts,
            "delay_p50": _round(self.delay(50)),
            "delay_p95": _round(self.delay(95)),
            "delay_p99": _round(self.delay(99)),
            "faults": self.faults,
            "local": self.local,
            "seed": self.seed,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
