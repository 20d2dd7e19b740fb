"""Fault injection for tests and load tests; everything off by default.

``PUT /faults`` merges a JSON object into the current settings (``merge_config``), one key per
field of ``FaultConfig``. What each key does, and for the faults that AWS allows and a healthy
run never shows the AWS sentence that allows it, is the table "Fault injection" in
scripts/localcloud/README.md (docs/design.md §7), the one place it is written. The endpoint's own
stream engine (``localcloud.streams.StreamsClient``, which marks its requests with
``ENGINE_HEADER``) stands in for Lambda's pollers and is exempt from the two Streams API
faults (``describe_stream_throttle_rate``, ``getrecords_empty_pages``).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

RATE_KEYS = (
    "fail_invocation_rate",
    "kill_mid_batch_rate",
    "duplicate_batch_rate",
    "replay_rate",
    "describe_stream_throttle_rate",
    "bisect_out_of_order",
)
SECONDS_KEYS = ("clock_skew_seconds", "gsi_lag_seconds")  # numbers >= 0
ENGINE_HEADER = "X-LocalCloud-Engine"  # on the stream engine's own Streams API requests
MODES = ("after", "before")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    fail_invocation_rate: float = 0.0
    kill_mid_batch_rate: float = 0.0
    duplicate_batch_rate: float = 0.0
    replay_rate: float = 0.0
    seed: int | None = None
    fail_invocation_mode: str = "after"
    clock_offset_seconds: float = 0.0
    describe_stream_throttle_rate: float = 0.0
    getrecords_empty_pages: int = 0
    gsi_lag_seconds: float = 0.0
    final_invoke_records: float = 0.0
    clock_skew_seconds: float = 0.0
    bisect_out_of_order: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merge_config(current: FaultConfig, body: Any) -> FaultConfig:
    """``body`` merged into ``current``; ValueError with a readable reason if invalid."""
    if not isinstance(body, Mapping):
        raise ValueError("the body must be a JSON object")
    known = set(FaultConfig.__dataclass_fields__)
    unknown = set(body) - known
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for key in RATE_KEYS:
        if key in body:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{key} must be a number")
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{key} must be between 0 and 1")
            changes[key] = float(value)
    if "seed" in body:
        seed = body["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer or null")
        changes["seed"] = seed
    if "fail_invocation_mode" in body:
        if body["fail_invocation_mode"] not in MODES:
            raise ValueError(f"fail_invocation_mode must be one of {', '.join(MODES)}")
        changes["fail_invocation_mode"] = body["fail_invocation_mode"]
    if "clock_offset_seconds" in body:
        offset = body["clock_offset_seconds"]
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ValueError("clock_offset_seconds must be a number")
        changes["clock_offset_seconds"] = float(offset)
    for key in SECONDS_KEYS:
        if key in body:
            changes[key] = _non_negative(key, body[key])
    if "final_invoke_records" in body:
        value = body["final_invoke_records"]
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
            raise ValueError("final_invoke_records must be true, false or between 0 and 1")
        changes["final_invoke_records"] = float(value)
    if "getrecords_empty_pages" in body:
        pages = body["getrecords_empty_pages"]
        if isinstance(pages, float) and pages.is_integer():
            pages = int(pages)
        if isinstance(pages, bool) or not isinstance(pages, int) or pages < 0:
            raise ValueError("getrecords_empty_pages must be a whole number >= 0")
        changes["getrecords_empty_pages"] = pages
    return replace(current, **changes)


def _non_negative(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{key} must be a number")
    if value < 0:
        raise ValueError(f"{key} must be >= 0")
    return float(value)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to do to one invocation."""

    fail_before: bool = False
    fail_after: bool = False
    kill_after_writes: int | None = None


NO_FAULT = FaultPlan()


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random()

    @property
    def config(self) -> FaultConfig:
        return self._config

    def update(self, body: Any) -> FaultConfig:
        with self._lock:
            config = merge_config(self._config, body)
            if isinstance(body, Mapping) and "seed" in body:
                self._rng = random.Random(config.seed)
            self._config = config
            return config

    def plan_invocation(self, batch_size: int) -> FaultPlan:
        config = self._config
        if not (config.fail_invocation_rate or config.kill_mid_batch_rate):
            return NO_FAULT
        with self._lock:
            fail = self._rng.random() < config.fail_invocation_rate
            kill = self._rng.random() < config.kill_mid_batch_rate
            writes = self._rng.randint(1, max(1, batch_size)) if kill else None
        before = fail and config.fail_invocation_mode == "before"
        return FaultPlan(
            fail_before=before, fail_after=fail and not before, kill_after_writes=writes
        )

    def _draw(self, rate: float) -> bool:
        if not rate:
            return False
        with self._lock:
            return self._rng.random() < rate

    def duplicate_batch(self) -> bool:
        return self._draw(self._config.duplicate_batch_rate)

    def replay_range(self) -> bool:
        return self._draw(self._config.replay_rate)

    def throttle_describe_stream(self) -> bool:
        return self._draw(self._config.describe_stream_throttle_rate)

    def final_invoke_with_records(self) -> bool:
        return self._draw(self._config.final_invoke_records)

    def second_half_first(self) -> bool:
        return self._draw(self._config.bisect_out_of_order)
