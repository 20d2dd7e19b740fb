"""Per-mapping counters for ``GET /stats`` (thread-safe)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

COUNTERS = (
    "records_read",
    "records_filtered_out",
    "records_delivered",
    "batches",
    "invocations",
    "function_errors",
    "invalid_responses",
    "partial_failures",
    "retries",
    "bisections",
    "records_discarded",
    "records_to_failure_destination",
    "failure_messages",
    "duplicate_deliveries",
    "injected_failures",
    "injected_kills",
    "replayed_batches",
    "replayed_parent_batches",
    "window_final_invocations",
    "window_final_records",  # records a final invocation carried (final_invoke_records fault)
    "out_of_order_deliveries",  # second halves delivered first (bisect_out_of_order fault)
)
SHARD_COUNTERS = ("records_delivered", "invocations", "function_errors", "records_discarded")
DELAY_SAMPLES = 20_000


class MappingStats:
    def __init__(self, uuid: str, function_name: str) -> None:
        self.uuid = uuid
        self.function_name = function_name
        self._lock = threading.Lock()
        self._counters = dict.fromkeys(COUNTERS, 0)
        # Per shard: its counters, iterator age (seconds behind, as Lambda's IteratorAge) and
        # whether the mapping has finished it (closed, read to its end, every batch done).
        self._shards: dict[str, dict[str, Any]] = {}
        self._delays: deque[float] = deque(maxlen=DELAY_SAMPLES)
        self._delay_max = 0.0
        self._delay_sum = 0.0
        self._delay_count = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def _shard(self, shard_id: str) -> dict[str, Any]:
        shard = self._shards.get(shard_id)
        if shard is None:
            shard = self._shards[shard_id] = _new_shard()
        return shard

    def shard_seen(self, shard_id: str) -> None:
        with self._lock:
            self._shard(shard_id)

    def shard_add(self, shard_id: str, name: str, amount: int = 1) -> None:
        """Counts for the mapping and for the shard."""
        with self._lock:
            self._counters[name] += amount
            self._shard(shard_id)[name] += amount

    def shard_finished(self, shard_id: str) -> None:
        with self._lock:
            self._shard(shard_id)["finished"] = True

    def record_age(self, shard_id: str, age: float) -> None:
        with self._lock:
            self._shard(shard_id)["age_seconds"] = round(age, 3)

    def delivered(self, delays: list[float]) -> None:
        """Delays (seconds from write to invocation) of records delivered the first time."""
        with self._lock:
            self._delays.extend(delays)
            self._delay_count += len(delays)
            self._delay_sum += sum(delays)
            self._delay_max = max([self._delay_max, *delays])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            delays = sorted(self._delays)
            result: dict[str, Any] = {"function_name": self.function_name, **self._counters}
            result["shards"] = {k: dict(v) for k, v in self._shards.items()}
            result["delay_seconds"] = {
                "count": self._delay_count,
                "mean": round(self._delay_sum / self._delay_count, 4) if delays else None,
                "p50": _quantile(delays, 0.50),
                "p99": _quantile(delays, 0.99),
                "max": round(self._delay_max, 4) if delays else None,
            }
            return result

    def reset(self) -> None:
        with self._lock:
            self._counters = dict.fromkeys(COUNTERS, 0)
            self._shards = {
                k: {**_new_shard(), "finished": v["finished"]} for k, v in self._shards.items()
            }
            self._delays.clear()
            self._delay_max = self._delay_sum = 0.0
            self._delay_count = 0


def _new_shard() -> dict[str, Any]:
    return {**dict.fromkeys(SHARD_COUNTERS, 0), "age_seconds": None, "finished": False}


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)


class StatsRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mappings: dict[str, MappingStats] = {}

    def mapping(self, uuid: str, function_name: str) -> MappingStats:
        with self._lock:
            stats = self._mappings.get(uuid)
            if stats is None:
                stats = self._mappings[uuid] = MappingStats(uuid, function_name)
            stats.function_name = function_name
            return stats

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            mappings = list(self._mappings.values())
        return {m.uuid: m.snapshot() for m in mappings}

    def reset(self) -> None:
        with self._lock:
            mappings = list(self._mappings.values())
        for m in mappings:
            m.reset()
