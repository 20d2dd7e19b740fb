"""Fault injection for tests and load tests; everything off by default.

``PUT /faults`` merges a JSON object into the current settings:

* ``fail_invocation_rate`` — share of invocations reported as a function error. With
  ``fail_invocation_mode = "after"`` (default) the handler runs and its result is then
  discarded (its writes happened: the retry is a duplicate delivery); with ``"before"`` the
  handler is not run at all.
* ``kill_mid_batch_rate`` — share of invocations whose worker is killed (``os._exit``)
  right after the handler's k-th completed DynamoDB write, k drawn from 1..batch size; an
  invocation that writes fewer than k items is not killed.
* ``duplicate_batch_rate`` — share of successful batches delivered a second time,
  unchanged, before the shard moves on.
* ``replay_rate`` — share of successful batches after which a range of batches the shard
  already processed is delivered again, in order, as first sent: of the shard itself, or
  (every other replay, starting with the first, when it has one) of its parent shard after
  the child has started — what a mapping re-created at ``TRIM_HORIZON`` would re-read.
* ``seed`` — seeds the random draws (null: not reproducible).
* ``clock_offset_seconds`` — added to the engine's clock for record ages, so that tests of
  ``MaximumRecordAgeInSeconds`` need not wait a minute.
"""

from __future__ import annotations

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
)
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
    return replace(current, **changes)


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

    def duplicate_batch(self) -> bool:
        config = self._config
        if not config.duplicate_batch_rate:
            return False
        with self._lock:
            return self._rng.random() < config.duplicate_batch_rate

    def replay_range(self) -> bool:
        config = self._config
        if not config.replay_rate:
            return False
        with self._lock:
            return self._rng.random() < config.replay_rate
