"""Shard lineage of a stream (which shard continues which), for the marks' lineage pruning and
replay guard (``marks``). Pure: the DescribeStream call is passed in (``streams``).

DescribeStream is rate-limited and each call costs the function time, so a container keeps one
snapshot per stream and refreshes it only when a batch comes from a shard it does not know, or
from a shard that was still open in a snapshot older than ``REFRESH_SECONDS`` (its children may
exist by now: the replay guard needs them), and never more often than ``MIN_INTERVAL_SECONDS``.
A failed refresh keeps the last snapshot: without lineage the marks are exact as before, only
not pruned (and replays of closed parents unguarded), so the stream is never blocked by it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

REFRESH_SECONDS: Final = 300.0
MIN_INTERVAL_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class Shard:
    shard_id: str
    parent_id: str | None
    closed: bool  # has an EndingSequenceNumber


@dataclass(slots=True)
class Lineage:
    """One DescribeStream snapshot."""

    shards: dict[str, Shard] = field(default_factory=dict)
    taken_at: float = float("-inf")
    _children: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, shards: Iterable[Shard], taken_at: float) -> Lineage:
        lineage = cls({s.shard_id: s for s in shards}, taken_at)
        for shard in lineage.shards.values():
            if shard.parent_id is not None:
                lineage._children.setdefault(shard.parent_id, []).append(shard.shard_id)
        return lineage

    def knows(self, shard_id: str) -> bool:
        return shard_id in self.shards

    def ancestors(self, shard_id: str) -> list[str]:
        """Parent, grandparent, ... as far as the snapshot goes (a parent trimmed from the
        stream is still named by its child's ParentShardId, so it is included)."""
        found: list[str] = []
        shard = self.shards.get(shard_id)
        while shard is not None and shard.parent_id is not None and shard.parent_id not in found:
            found.append(shard.parent_id)
            shard = self.shards.get(shard.parent_id)
        return found

    def descendants(self, shard_id: str) -> list[str]:
        found: list[str] = []
        queue = list(self._children.get(shard_id, ()))
        while queue:
            child = queue.pop(0)
            if child in found or child == shard_id:
                continue
            found.append(child)
            queue.extend(self._children.get(child, ()))
        return found


@dataclass(slots=True)
class LineageCache:
    """Per container: the last snapshot per stream, refreshed by the rule above."""

    fetch: Callable[[str], list[Shard]]
    clock: Callable[[], float] = time.monotonic
    refresh_seconds: float = REFRESH_SECONDS
    min_interval_seconds: float = MIN_INTERVAL_SECONDS
    snapshots: dict[str, Lineage] = field(default_factory=dict)
    last_attempt: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    errors: int = 0
    last_error: str | None = None

    def get(self, stream_arn: str, shard_id: str) -> Lineage:
        snapshot = self.snapshots.get(stream_arn, Lineage())
        now = self.clock()
        shard = snapshot.shards.get(shard_id)
        stale = shard is None or (
            not shard.closed and now - snapshot.taken_at > self.refresh_seconds
        )
        attempted = self.last_attempt.get(stream_arn, float("-inf"))
        if not stale or now - attempted < self.min_interval_seconds:
            return snapshot
        self.last_attempt[stream_arn] = now
        self.calls += 1
        try:
            shards = self.fetch(stream_arn)
        except Exception as err:  # throttled, no permission, endpoint without streams API
            self.errors += 1
            self.last_error = f"{type(err).__name__}: {err}"[:300]
            return snapshot
        snapshot = Lineage.of(shards, now)
        self.snapshots[stream_arn] = snapshot
        return snapshot
