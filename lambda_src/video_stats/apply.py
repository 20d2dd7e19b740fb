"""Apply a merged batch to the summaries: one conditional UpdateItem per key, concurrently.

Pure orchestration (no boto3): the DynamoDB calls go through a ``SummaryWriter`` (``store.py``
in production, fakes in tests). The exactly-once argument (invariant P, lineage pruning, the
replay guard, retention) is in ``marks``; this module adds the partial-failure rule:

Every key of the batch is written, also a key whose records net to zero (its write only moves
the mark). So once a key's write succeeded, every record of the batch for that key is covered
by its mark. When some keys fail (throttling, a network error, anything but a condition
check), the batch reports ``batchItemFailures`` = the lowest sequence number ``F`` among the
records that failed keys still need; Lambda checkpoints before ``F`` and redelivers from ``F``.
Below ``F`` every key applied every record (a failed key's first unapplied record is at or
above ``F``), so the checkpoint never passes an unapplied record; at and above ``F`` the
written keys' marks suppress what they already hold. That keeps invariant P, and with it
exactness under any redelivery of acknowledged records, in any order (``marks``). Writing
zero-net keys costs one write where the previous version read the item, and only when a view
or vote is created and undone inside one batch; in exchange no record is ever left
"acknowledged but not covered by a mark", which an out-of-order duplicate could re-apply.

Cost, per batch and key (docs/design.md §6): one UpdateItem, sized by the summary item (1 WRU
while it stays under 1 KB, which compact marks and lineage pruning keep it for up to 16
partitions), plus the index writes it causes: GSI1 (video summaries; projects only the data
model's attributes, so one write when a counter changes and none for mark changes) and GSI2
(only when the views bucket moves, see ``store``). A redelivered key costs one rejected
conditional write.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Literal, Protocol

from video_stats.marks import (
    DEFAULT_RETENTION_SECONDS,
    ShardMarks,
    covered_seq,
    encode_mark,
    encode_seq,
    legacy_encode_seq,
    mark_value,
    stale_marks,
)
from video_stats.model import AttributeMap, Counters, SummaryKey
from video_stats.records import Batch, RawKey, summary_key

# --- the adapter's interface ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """Condition on the shard's mark, in both formats (``marks``): ``below`` = each absent or
    lower than its bound (``value`` compact, ``legacy`` previous format; normal path, no
    read); ``equals`` = each exactly its value (absent if None), after the item was seen."""

    kind: Literal["below", "equals"]
    value: str | None
    legacy: str | None = None

    @classmethod
    def below(cls, seq: int) -> Expect:
        return cls("below", encode_seq(seq), legacy_encode_seq(seq))


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    key: SummaryKey
    delta: Counters
    marks: ShardMarks  # this shard's mark names; the legacy one is removed by the update
    mark_value: str
    expect: Expect
    remove: Mapping[str, str]  # stale marks to drop, each conditional on its value
    drop: tuple[str, ...] = ()  # ancestors' marks: removed unconditionally (lineage pruning)
    forbid: tuple[str, ...] = ()  # descendants' marks: must be absent (replay guard)

    @property
    def mark_name(self) -> str:
        return self.marks.current


@dataclass(frozen=True, slots=True)
class Written:
    item: AttributeMap | None  # the item after the update (ReturnValues=ALL_NEW)
    index_writes: int = 0  # extra UpdateItem calls made to move the item in GSI2


@dataclass(frozen=True, slots=True)
class Rejected:
    item: AttributeMap | None  # the item that failed the condition, if DynamoDB returned it
    index_writes: int = 0  # extra UpdateItem calls made to move the item in GSI2


class SummaryWriter(Protocol):
    def update(self, request: UpdateRequest) -> Written | Rejected:
        """One conditional UpdateItem; raises for anything but a failed condition."""

    def read(self, key: SummaryKey) -> AttributeMap | None:
        """Strongly consistent read of a summary item (None if absent); used only when a
        rejected update did not return the item."""

    def remove_marks(self, key: SummaryKey, marks: Mapping[str, str]) -> bool:
        """Drop marks, each conditional on its value; False if a condition failed."""


# --- configuration and results ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyConfig:
    function: str  # "views" or "votes": the mark namespace of this function
    marks: ShardMarks  # the shard's mark names (``marks.shard_marks``)
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    max_attempts: int = 5  # conditional attempts per key before it counts as failed
    eager_prune: int = 3  # this many stale marks on an item: remove them at once (1 write)
    deadline_margin_seconds: float = 3.0  # stop starting keys this close to the timeout
    drop: tuple[str, ...] = ()  # marks of the shard's nearest ancestors (both formats)
    forbid: tuple[str, ...] = ()  # marks of the shard's nearest descendants (both formats)
    #: every known ancestor's marks: found on a returned item, removed like stale marks
    obsolete: frozenset[str] = frozenset()

    @property
    def mark(self) -> str:
        return self.marks.current


#: applied: every record of the key is covered by its mark; failed: the update failed, its
#: pending records are redelivered.
State = Literal["applied", "failed"]


@dataclass(slots=True)
class KeyOutcome:
    key: RawKey
    state: State
    pending: list[int]  # record indices not covered by the mark (failed keys)
    expect: Expect  # the condition a further write of this key must use
    suppressed: list[int] = field(default_factory=list)  # found already applied
    writes: int = 0
    reads: int = 0
    replayed: bool = False  # a descendant's mark was found: the shard is being replayed
    error: str | None = None


@dataclass(slots=True)
class BatchResult:
    failure: str | None  # the batchItemFailures itemIdentifier, or None
    keys: int
    writes: int  # UpdateItem calls (a rejected conditional update costs a write unit too)
    reads: int  # GetItem calls (a rejection that returned no item)
    applied_records: int
    suppressed_records: int
    retried_records: int
    failed_keys: list[tuple[SummaryKey, str]]
    replayed_keys: int = 0  # keys whose records were suppressed by the replay guard


class StaleMarkCache:
    """Per container: stale marks seen on items, removed inside the key's next update."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[RawKey, dict[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: RawKey) -> dict[str, str]:
        with self._lock:
            return self._entries.pop(key, {})

    def put(self, key: RawKey, marks: dict[str, str]) -> None:
        with self._lock:
            self._entries[key] = marks
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# --- the applier ------------------------------------------------------------------------------


class Applier:
    def __init__(
        self,
        writer: SummaryWriter,
        config: ApplyConfig,
        executor: Executor | None = None,
        cache: StaleMarkCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._writer = writer
        self._config = config
        self._executor = executor
        self._cache = cache if cache is not None else StaleMarkCache()
        self._clock = clock

    def apply(self, batch: Batch, remaining: Callable[[], float] | None = None) -> BatchResult:
        """Apply every key of ``batch``; ``remaining`` gives the seconds left before the
        function times out (keys not started by then fail and are retried by Lambda)."""
        items = [(key, delta.records, delta.counters()) for key, delta in batch.keys.items()]
        outcomes: list[KeyOutcome]
        if self._executor is None or len(items) <= 1:
            outcomes = [
                self._start_key(batch, key, rec, delta, remaining) for key, rec, delta in items
            ]
        else:
            futures: list[Future[KeyOutcome]] = [
                self._executor.submit(self._start_key, batch, key, rec, delta, remaining)
                for key, rec, delta in items
            ]
            outcomes = _gather(futures)
        failure_seq = self._settle(batch, outcomes)
        return self._result(batch, outcomes, failure_seq)

    # one key

    def _start_key(
        self,
        batch: Batch,
        key: RawKey,
        indices: list[int],
        delta: Counters,
        remaining: Callable[[], float] | None,
    ) -> KeyOutcome:
        expect = Expect.below(batch.records[indices[0]].seq)
        if remaining is not None and remaining() < self._config.deadline_margin_seconds:
            return KeyOutcome(key, "failed", list(indices), expect, error="deadline")
        return self._apply_key(batch, key, list(indices), expect, delta)

    def _apply_key(
        self,
        batch: Batch,
        key: RawKey,
        pending: list[int],
        expect: Expect,
        delta: Counters | None = None,
    ) -> KeyOutcome:
        config = self._config
        outcome = KeyOutcome(key, "applied", pending, expect)
        remove = self._cache.take(key)
        skey = summary_key(key)
        attempts = 0
        while True:
            if delta is None:
                delta = batch.sum_delta(key, outcome.pending)
            if attempts >= config.max_attempts:
                outcome.state = "failed"
                outcome.error = f"condition failed {attempts} times"
                return outcome
            try:
                # Written even when the delta is zero: the mark must cover every record.
                attempts += 1
                outcome.writes += 1
                last = batch.records[outcome.pending[-1]]
                request = UpdateRequest(
                    skey,
                    delta,
                    config.marks,
                    encode_mark(last.seq, last.created),
                    outcome.expect,
                    remove,
                    config.drop,
                    config.forbid,
                )
                result = self._writer.update(request)
                if isinstance(result, Written):
                    outcome.state = "applied"
                    outcome.pending = []
                    outcome.expect = Expect("equals", request.mark_value)
                    outcome.writes += result.index_writes
                    self._prune_later(key, skey, result.item, outcome)
                    return outcome
                outcome.writes += result.index_writes
                item = result.item
                if item is None:  # DynamoDB did not return the old item (or it is gone)
                    outcome.reads += 1
                    item = self._writer.read(skey)
                if item is not None and any(name in item for name in config.forbid):
                    # A descendant of this shard already wrote the item: this is a replay of
                    # records the item holds (marks: the replay guard).
                    outcome.replayed = True
                    outcome.suppressed.extend(outcome.pending)
                    outcome.pending = []
                    return outcome
                covered = covered_seq(item, config.marks)
            except Exception as err:  # throttling, network, a corrupt mark: retry via Lambda
                outcome.state = "failed"
                outcome.error = f"{type(err).__name__}: {err}"
                return outcome
            # Records at or below the mark were applied by an earlier delivery: keep only the
            # ones above it, and make the next write conditional on exactly this mark.
            records = batch.records
            outcome.suppressed.extend(i for i in outcome.pending if records[i].seq <= covered)
            outcome.pending = [i for i in outcome.pending if records[i].seq > covered]
            outcome.expect = Expect(
                "equals",
                mark_value(item, config.marks.current),
                mark_value(item, config.marks.legacy),
            )
            remove = stale_marks(
                item,
                config.function,
                config.marks.names(),
                self._clock(),
                config.retention_seconds,
                obsolete=config.obsolete,
            )
            delta = None
            if not outcome.pending:
                outcome.state = "applied"
                if remove:
                    self._cache.put(key, remove)
                return outcome

    def _prune_later(
        self, key: RawKey, skey: SummaryKey, item: AttributeMap | None, outcome: KeyOutcome
    ) -> None:
        config = self._config
        stale = stale_marks(
            item,
            config.function,
            config.marks.names(),
            self._clock(),
            config.retention_seconds,
            obsolete=config.obsolete,
        )
        if not stale:
            return
        if len(stale) < config.eager_prune:
            self._cache.put(key, stale)
            return
        try:
            outcome.writes += 1
            self._writer.remove_marks(skey, stale)
        except Exception:  # best effort: the marks are only dead weight
            self._cache.put(key, stale)

    # partial failure

    def _settle(self, batch: Batch, outcomes: list[KeyOutcome]) -> int | None:
        """The lowest sequence number to redeliver (None: the whole batch is done). Every key
        that did not fail covers all its records, so it is the first record a failed key
        still needs."""
        records = batch.records
        failed = [records[o.pending[0]].seq for o in outcomes if o.state == "failed"]
        return min(failed) if failed else None

    def _result(
        self, batch: Batch, outcomes: Iterable[KeyOutcome], limit: int | None
    ) -> BatchResult:
        records = batch.records
        suppressed: set[int] = set()
        writes = reads = replayed = 0
        failed_keys: list[tuple[SummaryKey, str]] = []
        for outcome in outcomes:
            suppressed.update(outcome.suppressed)
            writes += outcome.writes
            reads += outcome.reads
            replayed += outcome.replayed
            if outcome.state == "failed":
                failed_keys.append((summary_key(outcome.key), outcome.error or "failed"))
        # Disjoint counts: a record with a malformed image is counted as skipped (by the
        # handler) even though its other image was applied.
        retried = 0 if limit is None else sum(1 for r in records if r.seq >= limit)
        done = [
            i for i, r in enumerate(records) if not r.invalid and (limit is None or r.seq < limit)
        ]
        done_suppressed = sum(1 for i in done if i in suppressed)
        failure = None
        if limit is not None:
            failure = next(r.sequence_number for r in records if r.seq == limit)
        return BatchResult(
            failure=failure,
            keys=len(batch.keys),
            writes=writes,
            reads=reads,
            applied_records=len(done) - done_suppressed,
            suppressed_records=done_suppressed,
            retried_records=retried,
            failed_keys=failed_keys,
            replayed_keys=replayed,
        )


def _gather(futures: list[Future[KeyOutcome]]) -> list[KeyOutcome]:
    # Wait for every future before raising, so no write is still in flight when we return.
    outcomes: list[KeyOutcome] = []
    fatal: BaseException | None = None
    for future in futures:
        try:
            outcomes.append(future.result())
        except BaseException as err:  # only non-Exception errors get here (see _apply_key)
            fatal = fatal or err
    if fatal is not None:
        raise fatal
    return outcomes
