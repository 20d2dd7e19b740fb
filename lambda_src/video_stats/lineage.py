"""Shard lineage of a stream (which shard continues which), for the marks' lineage pruning and
replay guard (``marks``). Pure: the DescribeStream calls are passed in (``streams``).

Fail-safe (docs/design.md §8, step 8): a batch of a shard is applied only with a snapshot that
*vouches* for the shard's descendants — one that knows the shard and was confirmed within the
refresh interval. ``LineageCache.get`` refreshes when it must and raises
``LineageUnavailable`` when DescribeStream keeps failing (throttling: "You can call
DescribeStream at a maximum rate of 10 times per second", DynamoDB Streams API reference);
the handler then reports the batch as failed and Lambda retries it, so no batch is ever
applied without the replay guard. Cost of the rule, kept low:

* each container confirms a shard at most once per ``REFRESH_SECONDS``, the interval drawn
  anew each time between 75 % and 100 % of it, so containers started together (a re-created
  mapping, a deployment) do not refresh in step;
* a shard that is a leaf of the snapshot is confirmed with the narrow call (``ShardFilter``
  ``CHILD_SHARDS``: one request, whatever the stream's size); only a shard the snapshot does
  not know, or one that got children, costs a full listing;
* calls for one stream are at least ``MIN_INTERVAL_SECONDS`` apart, each try after a failure
  waits a jittered backoff, and a failed refresh is retried ``ATTEMPTS`` times in all.

A shard that a *successful* full listing does not contain (the event's ``shardId`` not being
DescribeStream's ``ShardId`` is not ruled out by any AWS page) is remembered as unknown for one
refresh interval, so such a stream costs one listing per container and interval, not one per
batch; the handler applies its batches without pruning and guard and counts ``UnknownShard``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

REFRESH_SECONDS: Final = 300.0
MIN_INTERVAL_SECONDS: Final = 0.5
ATTEMPTS: Final = 3
BACKOFF_SECONDS: Final = 0.5  # first pause after a failure; doubled each try, jittered
JITTER_FLOOR: Final = 0.75  # a confirmation lasts 75-100 % of the refresh interval


class LineageUnavailable(Exception):
    """DescribeStream failed and no snapshot vouches for the shard's descendants."""


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
    """Per container: the last snapshot per stream and, per shard, until when it vouches for
    the shard's descendants (the rule above)."""

    fetch: Callable[[str], list[Shard]]
    #: the children of one shard (DescribeStream with ShardFilter CHILD_SHARDS); None: only
    #: full listings are made
    fetch_children: Callable[[str, str], list[Shard]] | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    refresh_seconds: float = REFRESH_SECONDS
    min_interval_seconds: float = MIN_INTERVAL_SECONDS
    attempts: int = ATTEMPTS
    backoff_seconds: float = BACKOFF_SECONDS
    snapshots: dict[str, Lineage] = field(default_factory=dict)
    confirmed_until: dict[tuple[str, str], float] = field(default_factory=dict)
    unknown_until: dict[tuple[str, str], float] = field(default_factory=dict)
    last_call: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    narrow_calls: int = 0
    errors: int = 0
    last_error: str | None = None

    def get(self, stream_arn: str, shard_id: str) -> Lineage:
        """A snapshot that vouches for ``shard_id``'s descendants, or one that a fresh listing
        showed not to contain the shard (``knows`` is then False). Raises
        ``LineageUnavailable`` when DescribeStream keeps failing."""
        key = (stream_arn, shard_id)
        snapshot = self.snapshots.get(stream_arn, Lineage())
        now = self.clock()
        if snapshot.knows(shard_id) and now < self.confirmed_until.get(key, float("-inf")):
            return snapshot
        if not snapshot.knows(shard_id) and now < self.unknown_until.get(key, float("-inf")):
            return snapshot
        for attempt in range(self.attempts):
            if attempt:
                pause = self.backoff_seconds * 2 ** (attempt - 1)
                self.sleep(pause * (0.5 + self.jitter()))
            wait = self.last_call.get(stream_arn, float("-inf")) + self.min_interval_seconds
            if wait > self.clock():
                self.sleep(wait - self.clock())
            try:
                return self._refresh(stream_arn, shard_id, snapshot)
            except Exception as err:  # throttled, no permission, endpoint without streams API
                self.errors += 1
                self.last_error = f"{type(err).__name__}: {err}"[:300]
        raise LineageUnavailable(self.last_error or "DescribeStream failed")

    def _interval(self) -> float:
        return self.refresh_seconds * (JITTER_FLOOR + (1 - JITTER_FLOOR) * self.jitter())

    def _refresh(self, stream_arn: str, shard_id: str, snapshot: Lineage) -> Lineage:
        key = (stream_arn, shard_id)
        if (
            self.fetch_children is not None
            and snapshot.knows(shard_id)
            and not snapshot.descendants(shard_id)
        ):
            self.last_call[stream_arn] = self.clock()
            self.calls += 1
            self.narrow_calls += 1
            if not self.fetch_children(stream_arn, shard_id):
                self.confirmed_until[key] = self.clock() + self._interval()
                return snapshot
        self.last_call[stream_arn] = self.clock()
        self.calls += 1
        shards = self.fetch(stream_arn)
        now = self.clock()
        snapshot = Lineage.of(shards, now)
        self.snapshots[stream_arn] = snapshot
        until = now + self._interval()
        # A full listing vouches for every shard in it (their descendants are all listed);
        # shards trimmed from the stream are forgotten.
        self.confirmed_until = {
            k: v for k, v in self.confirmed_until.items() if k[0] != stream_arn
        } | {(stream_arn, known): until for known in snapshot.shards}
        if not snapshot.knows(shard_id):
            self.unknown_until[key] = until
        return snapshot
