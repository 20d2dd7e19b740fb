"""Apply a merged batch to the summaries: one conditional UpdateItem per key, concurrently.

Pure orchestration (no boto3): the DynamoDB calls go through a ``SummaryWriter`` (``store.py``
in production, fakes in tests). The exactly-once argument is in ``marks``; this module adds the
partial-failure rule:

When some keys fail (throttling, a network error, anything but a condition check), the batch
reports ``batchItemFailures`` = the lowest sequence number ``F`` among the records that failed
keys still need; Lambda checkpoints before ``F`` and redelivers from ``F``. That is exact if,
for every key, the records below ``F`` that it has *not* applied sum to zero:

* a written key applied all its records (its mark covers them), so anything is fine;
* a failed key has no unapplied record below ``F`` (``F`` is at most its first one);
* a key whose net delta was zero is not written (no write for no change). Its mark is read
  first (a consistent GetItem, only on this rare path), because an earlier, partly failed
  delivery may have applied some of its records already (+1 applied, the -1 not): only the
  records above the mark may be skipped, and only if they sum to zero. If they straddle ``F``
  (say +1 below, -1 above), the part below ``F`` would be lost and the part above re-applied:
  such a key gets its records below ``F`` written (with the mark), and if that write fails too,
  ``F`` moves down to its first record; repeat until stable (``F`` only decreases, so this
  ends). That happens only on failure.
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
    decode_mark,
    encode_mark,
    encode_seq,
    mark_name,
    mark_value,
    stale_marks,
)
from video_stats.model import AttributeMap, Counters, SummaryKey
from video_stats.records import Batch, RawKey, summary_key

# --- the adapter's interface ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expect:
    """Condition on the mark: ``below`` = absent or lower than ``value`` (normal path, no read);
    ``equals`` = exactly ``value`` (absent if None), after the mark has been read."""

    kind: Literal["below", "equals"]
    value: str | None


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    key: SummaryKey
    delta: Counters
    mark_name: str
    mark_value: str
    expect: Expect
    remove: Mapping[str, str]  # stale marks to drop, each conditional on its value


@dataclass(frozen=True, slots=True)
class Written:
    item: AttributeMap | None  # the item after the update (ReturnValues=ALL_NEW)


@dataclass(frozen=True, slots=True)
class Rejected:
    item: AttributeMap | None  # the item that failed the condition, if DynamoDB returned it


class SummaryWriter(Protocol):
    def update(self, request: UpdateRequest) -> Written | Rejected:
        """One conditional UpdateItem; raises for anything but a failed condition."""

    def read(self, key: SummaryKey) -> AttributeMap | None:
        """Strongly consistent read of a summary item (None if absent)."""

    def remove_marks(self, key: SummaryKey, marks: Mapping[str, str]) -> bool:
        """Drop marks, each conditional on its value; False if a condition failed."""


# --- configuration and results ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyConfig:
    function: str  # "views" or "votes": the mark namespace of this function
    shard_tag: str
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    max_attempts: int = 5  # conditional attempts per key before it counts as failed
    eager_prune: int = 3  # this many stale marks on an item: remove them at once (1 write)
    deadline_margin_seconds: float = 3.0  # stop starting keys this close to the timeout

    @property
    def mark(self) -> str:
        return mark_name(self.function, self.shard_tag)


#: applied: every record of the key is covered by its mark; open: some are not, but their net
#: delta is zero so far (no write needed); failed: the update failed, records to redeliver.
State = Literal["applied", "open", "failed"]


@dataclass(slots=True)
class KeyOutcome:
    key: RawKey
    state: State
    pending: list[int]  # record indices not covered by the mark (open/failed)
    expect: Expect  # the condition a further write of this key must use
    suppressed: list[int] = field(default_factory=list)  # found already applied
    writes: int = 0
    reads: int = 0
    error: str | None = None


@dataclass(slots=True)
class BatchResult:
    failure: str | None  # the batchItemFailures itemIdentifier, or None
    keys: int
    writes: int  # UpdateItem calls (a rejected conditional update costs a write unit too)
    reads: int  # GetItem calls (zero-delta keys, or a rejection that returned no item)
    applied_records: int
    suppressed_records: int
    retried_records: int
    failed_keys: list[tuple[SummaryKey, str]]


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
        first = batch.records[indices[0]].seq
        expect = Expect("below", encode_seq(first))
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
            if delta.is_zero() and outcome.expect.kind == "equals":
                # Nothing to write, and the mark is known: every pending record is unapplied,
                # so skipping them all is exact (see _settle for a partial failure).
                outcome.state = "open"
                if remove:
                    self._cache.put(key, remove)
                return outcome
            if attempts >= config.max_attempts:
                outcome.state = "failed"
                outcome.error = f"condition failed {attempts} times"
                return outcome
            try:
                if delta.is_zero():
                    # A zero net delta may hide records applied by an earlier, partly failed
                    # delivery (+1 applied, the -1 not): read the mark instead of writing.
                    # Rare (an insert and its removal in one batch), and a read is cheaper.
                    outcome.reads += 1
                    item = self._writer.read(skey)
                else:
                    attempts += 1
                    outcome.writes += 1
                    last = batch.records[outcome.pending[-1]]
                    request = UpdateRequest(
                        skey,
                        delta,
                        config.mark,
                        encode_mark(last.seq, last.created),
                        outcome.expect,
                        remove,
                    )
                    result = self._writer.update(request)
                    if isinstance(result, Written):
                        outcome.state = "applied"
                        outcome.pending = []
                        outcome.expect = Expect("equals", request.mark_value)
                        self._prune_later(key, skey, result.item, outcome)
                        return outcome
                    item = result.item
                    if item is None:  # DynamoDB did not return the old item (or it is gone)
                        outcome.reads += 1
                        item = self._writer.read(skey)
                current = mark_value(item, config.mark)
                covered = decode_mark(current).seq if current is not None else -1
            except Exception as err:  # throttling, network, a corrupt mark: retry via Lambda
                outcome.state = "failed"
                outcome.error = f"{type(err).__name__}: {err}"
                return outcome
            # Records at or below the mark were applied by an earlier delivery: keep only the
            # ones above it, and make the next write conditional on exactly this mark.
            records = batch.records
            outcome.suppressed.extend(i for i in outcome.pending if records[i].seq <= covered)
            outcome.pending = [i for i in outcome.pending if records[i].seq > covered]
            outcome.expect = Expect("equals", current)
            remove = stale_marks(
                item, config.function, config.mark, self._clock(), config.retention_seconds
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
            item, config.function, config.mark, self._clock(), config.retention_seconds
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
        """The lowest sequence number to redeliver (None: the whole batch is done), after
        writing the below-the-limit part of any open key that would otherwise lose it."""
        records = batch.records
        failed = [records[o.pending[0]].seq for o in outcomes if o.state == "failed"]
        if not failed:
            return None
        limit = min(failed)
        changed = True
        while changed:
            changed = False
            for index, outcome in enumerate(outcomes):
                # A failed key's pending records are all at or above the limit by construction.
                if outcome.state == "failed" or not outcome.pending:
                    continue
                below = [i for i in outcome.pending if records[i].seq < limit]
                if not below or batch.sum_delta(outcome.key, below).is_zero():
                    continue
                above = outcome.pending[len(below) :]
                fixed = self._apply_key(batch, outcome.key, below, outcome.expect)
                fixed.suppressed[:0] = outcome.suppressed
                fixed.writes += outcome.writes
                fixed.reads += outcome.reads
                if fixed.state == "failed":
                    limit = min(limit, records[fixed.pending[0]].seq)
                    changed = True
                elif above:
                    fixed.state = "open"  # fixed.expect holds the mark it left
                fixed.pending = fixed.pending + above
                outcomes[index] = fixed
        return limit

    def _result(
        self, batch: Batch, outcomes: Iterable[KeyOutcome], limit: int | None
    ) -> BatchResult:
        records = batch.records
        suppressed: set[int] = set()
        writes = reads = 0
        failed_keys: list[tuple[SummaryKey, str]] = []
        for outcome in outcomes:
            suppressed.update(outcome.suppressed)
            writes += outcome.writes
            reads += outcome.reads
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
