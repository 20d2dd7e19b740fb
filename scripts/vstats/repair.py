"""``reconcile --repair``: make every summary exact again while the stack runs.

The procedure:

1. Pause the pipeline: disable both event source mappings (found by the table's stream ARN),
   wait until they report Disabled and nothing is in flight (local: the engine's ``/drained``;
   AWS: state Disabled plus a grace period of the longest function timeout).
2. Scan the table (recount + summaries), then read the stream.
3. Work out each summary's exact target, *as of the records it has applied*, and rewrite the
   drifting counters as absolute values (SET, conditional on the values just read). Marks
   stay untouched, except where the target relied on an estimated position (below).
4. Resume: re-enable the mappings (always, also after an error).

Why step 3 is not simply "set the summary to the recount": the application keeps writing
while the mappings are paused. Those writes are in the table (so in the recount) *and* in the
stream beyond the mappings' position, so the handlers apply them after step 4; a summary set
to the full recount would count them twice. A summary item says which records it holds: its
exactly-once marks (``video_stats.marks``: per function and shard, the highest sequence number
applied). So for summary K, the records after K's mark are not in K yet, and K's target is the
recount of each base item *as it was before its first such record* (that record's OldImage).
Everything else about the item (its current state) is what the scan saw.

A record at or below a summary's mark is in it; one above is either still to come (after the
resume) or was given up on (sent to the failure queue) or the summary was reset. Marks cannot
tell the last two from the first: a lost record newer than everything its summary applied is
repaired only once a later record of that summary has been applied (run --repair again then).
A summary without a mark of a shard (deleted; or new in the shard, e.g. after a rotation,
and a batch that failed for it but not for others awaits its retry) uses the mapping's
position, estimated while paused as the highest mark of the shard any summary holds, and the
rewrite gives it that mark: the records the target counts are then covered by its own mark,
so a redelivery cannot count them again. The estimate is wrong on a running stack (a batch in
flight has marked some summaries, not yet others), so the checks made while it runs (the
verification after the resume, ``--live``) count such records as in flight instead. A record
older than the mappings' record age (``settled_age``) counts as applied: no mapping delivers
it any more, and its summaries' marks may have expired.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError
from localcloud.client import ControlClient
from video_stats import model
from video_stats.lineage import Lineage
from video_stats.marks import decode_mark, encode_mark, mark_value, names_of, shard_marks
from video_stats.model import AttributeMap, Counters, SummaryKey
from video_stats.store import SummaryStore, is_condition_failure
from video_stats.streams import describe_shards

from vstats.cli import ToolError
from vstats.drift import (
    DEFAULT_SEGMENTS,
    Drift,
    IndexFault,
    TableSnapshot,
    compare,
    index_fault,
    index_faults,
    item_identity,
    read_snapshot,
)
from vstats.effects import FUNCTION_OF_ITEM_TYPE, counted_contribution

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIVE_STATES = ("Enabled", "Enabling", "Updating", "Creating")


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How long to let the stream catch up with a scan (``delay``), and how far past the scan
    to read it (``margin``: clock skew, creation times rounded to the second)."""

    delay: float
    margin: float


AWS_TIMING = StreamTiming(delay=1.0, margin=5.0)
LOCAL_TIMING = StreamTiming(delay=0.1, margin=1.0)  # an emulator on this machine, same clock


# --- pausing the pipeline ---------------------------------------------------------------------


class Pipeline(Protocol):
    """Pause and resume the stream consumers of one table."""

    def pause(self) -> list[str]:
        """Stop every enabled consumer and return once nothing is in flight; returns what to
        resume."""

    def resume(self, paused: list[str]) -> None:
        """Start again what ``pause`` stopped."""


@dataclass(slots=True)
class LambdaPipeline:
    """The table's event source mappings, through the Lambda API (moto or AWS)."""

    lambda_client: Any
    stream_arn: str
    control: ControlClient | None = None
    grace_seconds: float | None = None  # AWS: None = longest function timeout + 5 s
    timeout: float = 300.0
    log: Callable[[str], None] = lambda _message: None
    poll: float = 0.2

    def mappings(self) -> list[dict[str, Any]]:
        return stream_mappings(self.lambda_client, self.stream_arn)

    def longest_batching_window(self) -> float:
        """The longest ``MaximumBatchingWindowInSeconds`` of the mappings (0 without any): how
        long a record can wait in Lambda before a function sees it."""
        windows = [float(m.get("MaximumBatchingWindowInSeconds") or 0) for m in self.mappings()]
        return max(windows, default=0.0)

    def pause(self) -> list[str]:
        active = [m for m in self.mappings() if m.get("State") in ACTIVE_STATES]
        paused: list[str] = []
        try:
            for mapping in active:
                self.lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
                paused.append(mapping["UUID"])
                self.log(f"disabled mapping {mapping['UUID']} ({_function(mapping)})")
            self._wait_states(paused, "Disabled")
            self._wait_idle(active)
        except BaseException:
            self.resume(paused)
            raise
        return paused

    def resume(self, paused: list[str]) -> None:
        for uuid in paused:
            self.lambda_client.update_event_source_mapping(UUID=uuid, Enabled=True)
            self.log(f"re-enabled mapping {uuid}")
        self._wait_states(paused, "Enabled")

    def _wait_states(self, uuids: Iterable[str], state: str) -> None:
        deadline = time.monotonic() + self.timeout
        pending = set(uuids)
        while pending:
            for uuid in list(pending):
                if self.lambda_client.get_event_source_mapping(UUID=uuid).get("State") == state:
                    pending.discard(uuid)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ToolError(f"mappings {sorted(pending)} did not reach {state} in time")
            time.sleep(self.poll)

    def _wait_idle(self, mappings: list[dict[str, Any]]) -> None:
        if self.control is not None:
            # The engine: no invocation in flight for any mapping.
            if not self.control.wait_drained(self.timeout, self.poll):
                raise ToolError("the local engine did not drain after disabling the mappings")
            return
        grace = self.grace_seconds
        if grace is None:
            timeouts = [
                float(
                    self.lambda_client.get_function_configuration(
                        FunctionName=m["FunctionArn"]
                    ).get("Timeout", 60)
                )
                for m in mappings
            ]
            grace = max(timeouts, default=0.0) + 5.0
        if mappings and grace > 0:
            # Lambda lets an invocation that started before the disable run to completion.
            self.log(f"waiting {grace:g} s for invocations still in flight")
            time.sleep(grace)


def stream_mappings(lambda_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """The event source mappings reading the stream (every page)."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"EventSourceArn": stream_arn}
    while True:
        response = lambda_client.list_event_source_mappings(**request)
        found += response.get("EventSourceMappings", [])
        marker = response.get("NextMarker")
        if not marker:
            return found
        request["Marker"] = marker


#: Lambda's longest function timeout: a batch read just before its records' age limit may
#: still be in flight this long after.
IN_FLIGHT_SECONDS: Final = 900.0


def settled_age(lambda_client: Any, stream_arn: str) -> float | None:
    """Seconds after which a record of the stream is processed or given up on by every mapping
    reading it: the largest ``MaximumRecordAgeInSeconds`` + ``IN_FLIGHT_SECONDS``. None when
    no mapping reads it or one keeps records for as long as the stream does (-1).

    The handlers keep a mark ``MARK_RETENTION_SECONDS`` = that age + a margin of at least
    900 s (docs/design.md §8, step 9), so a summary can have lost a shard's mark to retention
    only for records older than this."""
    ages = [m.get("MaximumRecordAgeInSeconds") for m in stream_mappings(lambda_client, stream_arn)]
    limits = [float(a) for a in ages if isinstance(a, int | float) and a >= 0]
    if not ages or len(limits) < len(ages):
        return None
    return max(limits) + IN_FLIGHT_SECONDS


def _function(mapping: Mapping[str, Any]) -> str:
    return str(mapping.get("FunctionArn", "?")).rsplit(":", 1)[-1]


# --- the stream -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRecord:
    shard_id: str
    seq: int
    identity: tuple[str, str]  # (PK, SK) of the item
    new: AttributeMap | None
    old: AttributeMap | None
    created: float | None = None  # ApproximateCreationDateTime, epoch seconds


def read_stream(
    streams_client: Any,
    stream_arn: str,
    *,
    until: float | None = None,
    empty_polls: int = 2,
    pause: float = 0.2,
) -> Iterator[StreamRecord]:
    """The records of every shard from TRIM_HORIZON, up to the tip or ``until``.

    ``until`` (epoch seconds): a shard is read up to its first record created after it, so a
    stream that keeps growing (the application writes on) still ends. An open shard also ends
    when ``empty_polls`` reads in a row return nothing (DynamoDB Streams has no tip marker); a
    closed one when its iterator does.
    """
    for shard_id in [shard.shard_id for shard in describe_shards(streams_client, stream_arn)]:
        try:
            iterator = streams_client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            ).get("ShardIterator")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TrimmedDataAccessException":
                continue
            raise
        empty = 0
        past_cutoff = False
        while iterator and empty < empty_polls and not past_cutoff:
            response = streams_client.get_records(ShardIterator=iterator, Limit=1000)
            records = response.get("Records", [])
            for record in records:
                ddb = record.get("dynamodb", {})
                if until is not None and _created(ddb) > until:
                    past_cutoff = True
                    break
                keys = ddb.get("Keys", {})
                yield StreamRecord(
                    shard_id=shard_id,
                    seq=int(ddb["SequenceNumber"]),
                    identity=item_identity(keys),
                    new=ddb.get("NewImage"),
                    old=ddb.get("OldImage"),
                    created=created if (created := _created(ddb)) != float("-inf") else None,
                )
            iterator = response.get("NextShardIterator")
            if records:
                empty = 0
            else:
                empty += 1
                if iterator and empty < empty_polls:
                    time.sleep(pause)


def _created(ddb: Mapping[str, Any]) -> float:
    """ApproximateCreationDateTime as epoch seconds (boto3 gives a datetime); a record without
    one never ends a read early."""
    value = ddb.get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return float("-inf")


# --- the targets ------------------------------------------------------------------------------


def marks_of(item: AttributeMap | None) -> dict[str, str]:
    """``{mark name: value}`` of a summary item (values that are not marks left out)."""
    found: dict[str, str] = {}
    for name, attr in (item or {}).items():
        if not model.is_mark_attribute(name):
            continue
        value = attr.get("S")
        if isinstance(value, str):
            try:
                decode_mark(value)
            except ValueError:
                continue
            found[name] = value
    return found


@dataclass(slots=True)
class Corrections:
    """What ``corrections`` found: ``changes`` to add to the recount, and the marks a rewrite
    must give the summaries whose target counts records on the estimated position alone."""

    changes: dict[SummaryKey, Counters] = field(default_factory=dict)
    #: {summary: {mark name: value}}: the mapping's estimated position in a shard, for a
    #: summary that holds no mark of that shard's lineage yet counts some of its records.
    marks: dict[SummaryKey, dict[str, str]] = field(default_factory=dict)


ALL_APPLIED: Final = 1 << 160  # above every sequence number (at most 40 digits)


def corrections(
    records: Iterable[StreamRecord],
    base_items: Mapping[tuple[str, str], AttributeMap],
    summaries: Mapping[SummaryKey, AttributeMap],
    stream_arn: str,
    lineage: Lineage | None = None,
    *,
    estimate_positions: bool,
    processed_through: Mapping[tuple[str, str], int] | None = None,
    settled_before: float | None = None,
) -> Corrections:
    """What to add to the recount so that each summary's target holds only the records it has
    applied: for each summary K and base item I with a record K has not applied, replace I's
    scanned contribution to K by its contribution before the first such record.

    Which records of shard S (function F) K has applied, from what is certain to what is not:

    * K holds a mark of S's descendant, or any summary does: S is finished for F (Lambda reads
      a parent before its children), so all of them.
    * K holds S's mark: the records up to it (invariant P, docs/design.md §8).
    * K holds no mark of S's lineage: ``estimate_positions`` takes the mapping's position as
      the highest mark of S any summary holds, and ``marks`` names it for K, to be written
      with K's target: then whatever the mapping does with those records (a batch that failed
      for K is redelivered), K's mark covers what the target counts. The estimate is right
      only while the pipeline is paused and drained; on a running stack a batch in flight has
      marked some summaries and not yet others, and a scan is not a snapshot. Without it, K's
      records of S count as in flight: the check finds no false drift, and misses a deleted
      summary until its next update (the plain recount at a quiescent moment sees it).

    ``processed_through`` ({(function, shard id): sequence number}) says what the caller knows
    the mapping has done with a shard: every record up to that number was applied or given up
    on (redrive: the end of a batch on the failure queue), so each summary's target counts it.
    So does every record created before ``settled_before`` (epoch seconds; ``settled_age``):
    the mappings no longer deliver it, and its summaries' marks may have expired."""
    by_item: dict[tuple[str, str], list[StreamRecord]] = defaultdict(list)
    for record in records:
        by_item[record.identity].append(record)
    lineage = lineage or Lineage()
    marks = {key: marks_of(item) for key, item in summaries.items()}
    highest: dict[str, tuple[int, str]] = {}  # {mark name: (seq, value)} over every summary
    for held in marks.values():
        for name, value in held.items():
            seq = decode_mark(value).seq
            if name not in highest or seq > highest[name][0]:
                highest[name] = (seq, value)
    result = Corrections()
    finished: dict[tuple[str, str], bool] = {}  # (function, shard id): a descendant marked

    def applied_up_to(key: SummaryKey, function: str, shard_id: str) -> tuple[int | None, bool]:
        """(K's applied position in the shard or None for nothing, whether it is estimated).
        Per shard with tumbling-window events, else one mark per stream (handlers.py); either
        mark format (marks.py)."""
        if (function, shard_id) not in finished:
            descendants = names_of(function, lineage.descendants(shard_id))
            finished[function, shard_id] = any(name in highest for name in descendants)
        if finished[function, shard_id]:
            return ALL_APPLIED, False
        held = marks.get(key, {})
        floor = (processed_through or {}).get((function, shard_id))
        for name in names_of(function, (shard_id, stream_arn)):
            if name in held:
                seq = decode_mark(held[name]).seq
                return (seq if floor is None else max(seq, floor)), False
        if estimate_positions:
            for identity in (shard_id, stream_arn):
                for name in shard_marks(function, identity).names():
                    if name in highest and (floor is None or highest[name][0] > floor):
                        return highest[name][0], True
        return floor, False

    def estimated_mark(function: str, shard_id: str) -> tuple[str, str]:
        """The estimated position as a mark of K, in the current format."""
        for identity in (shard_id, stream_arn):
            names = shard_marks(function, identity)
            for name in names.names():
                if name in highest:
                    created_by = decode_mark(highest[name][1]).created_by
                    created = None if created_by is None else created_by - 1
                    return names.current, encode_mark(highest[name][0], created)
        raise AssertionError("no estimate")  # only called after applied_up_to found one

    # An item's records follow its partition's lineage: a parent's before its child's.
    # Sequence numbers order records within one shard only (docs/design.md §5).
    depth = {r.shard_id: len(lineage.ancestors(r.shard_id)) for rs in by_item.values() for r in rs}
    for identity, item_records in by_item.items():
        item_records.sort(key=lambda r: (depth[r.shard_id], r.seq))
        scanned = base_items.get(identity)
        for item_type, function in FUNCTION_OF_ITEM_TYPE.items():
            now = counted_contribution(scanned, item_type)
            keys = set(now)
            for record in item_records:
                keys |= set(counted_contribution(record.new, item_type))
                keys |= set(counted_contribution(record.old, item_type))
            for key in keys:
                before = now.get(key, model.ZERO)
                for record in item_records:
                    if (
                        settled_before is not None
                        and record.created is not None
                        and record.created < settled_before
                    ):
                        continue
                    position, estimated = applied_up_to(key, function, record.shard_id)
                    if position is None or record.seq > position:
                        before = counted_contribution(record.old, item_type).get(key, model.ZERO)
                        break
                    if estimated and counted_contribution(record.old, item_type).get(
                        key, model.ZERO
                    ) != counted_contribution(record.new, item_type).get(key, model.ZERO):
                        name, value = estimated_mark(function, record.shard_id)
                        result.marks.setdefault(key, {})[name] = value
                change = before - now.get(key, model.ZERO)
                if not change.is_zero():
                    result.changes[key] = result.changes.get(key, model.ZERO) + change
    return result


def pending_corrections(
    records: Iterable[StreamRecord],
    base_items: Mapping[tuple[str, str], AttributeMap],
    summaries: Mapping[SummaryKey, AttributeMap],
    stream_arn: str,
    lineage: Lineage | None = None,
    *,
    estimate_positions: bool = False,
    processed_through: Mapping[tuple[str, str], int] | None = None,
) -> dict[SummaryKey, Counters]:
    """``corrections(...).changes``: what to add to the recount (see there)."""
    return corrections(
        records,
        base_items,
        summaries,
        stream_arn,
        lineage,
        estimate_positions=estimate_positions,
        processed_through=processed_through,
    ).changes


# --- the rewrite ------------------------------------------------------------------------------


@dataclass(slots=True)
class RepairResult:
    drift_before: list[Drift]  # live_drift before pausing
    repaired: list[Drift] = field(default_factory=list)  # target (expected) vs what was there
    conflicts: list[SummaryKey] = field(default_factory=list)  # changed under us: not written
    # counters right, but counted on an estimated position: the mark written (corrections)
    marked: list[SummaryKey] = field(default_factory=list)
    unranked_before: list[IndexFault] = field(default_factory=list)
    ranked: list[IndexFault] = field(default_factory=list)  # index attributes set
    stream_records: int = 0  # records read from the stream
    paused: list[str] = field(default_factory=list)
    seconds: float = 0.0


def write_target(
    client: DynamoDBClient,
    table: str,
    drift: Drift,
    index_shards: int,
    *,
    marks: Mapping[str, tuple[str | None, str]] | None = None,
) -> bool:
    """SET the four counters of one summary to absolute values, conditional on them still
    being what was read (a late invocation would make the target stale). Marks untouched,
    except ``marks`` ({name: (value read or None, new value)}), set in the same write and
    conditional on the value read. False when the condition failed."""
    key = drift.key
    target = drift.expected
    names = {"#views": "views", "#duration": "duration", "#likes": "likes", "#dislikes": "dislikes"}
    values: dict[str, Any] = {
        ":views": {"N": str(target.views)},
        ":duration": {"N": str(target.duration)},
        ":likes": {"N": str(target.likes)},
        ":dislikes": {"N": str(target.dislikes)},
    }
    sets = ["#views = :views", "#duration = :duration", "#likes = :likes", "#dislikes = :dislikes"]
    identity = SummaryStore(client, table, index_shards).index_attributes(key, target.views)
    for number, (name, value) in enumerate(identity.items()):
        names[f"#id{number}"] = name
        values[f":id{number}"] = value
        sets.append(f"#id{number} = :id{number}")
    mark_conditions = []
    for number, (name, (old_mark, new_mark)) in enumerate(sorted((marks or {}).items())):
        names[f"#mark{number}"] = name
        values[f":mark{number}"] = {"S": new_mark}
        sets.append(f"#mark{number} = :mark{number}")
        if old_mark is None:
            mark_conditions.append(f"attribute_not_exists(#mark{number})")
        else:
            values[f":old_mark{number}"] = {"S": old_mark}
            mark_conditions.append(f"#mark{number} = :old_mark{number}")
    if drift.exists:
        conditions = list(mark_conditions)
        for name in ("views", "duration", "likes", "dislikes"):
            old = getattr(drift.actual, name)
            values[f":old_{name}"] = {"N": str(old)}
            # A missing counter reads as 0 (model.summary_counters).
            clause = f"#{name} = :old_{name}"
            conditions.append(
                f"({clause} OR attribute_not_exists(#{name}))" if old == 0 else clause
            )
        condition = "attribute_exists(PK) AND " + " AND ".join(conditions)
    else:
        condition = "attribute_not_exists(PK)"
    return _update_if(
        client,
        TableName=table,
        Key=model.summary_item_key(key),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def _update_if(client: DynamoDBClient, **request: Any) -> bool:
    """One conditional ``UpdateItem``; False when its condition failed."""
    try:
        client.update_item(**request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


def write_index(client: DynamoDBClient, store: SummaryStore, fault: IndexFault) -> bool:
    """SET a summary's index attributes for the ``views`` read, conditional on ``views``
    unchanged (a handler that moved it meanwhile sets the bucket itself; ``store.update``).
    Counters and marks untouched. False when the condition failed."""
    names: dict[str, str] = {"#views": "views"}
    values: dict[str, Any] = {":views": {"N": str(fault.views)}}
    sets = []
    attributes = store.index_attributes(fault.key, fault.views)
    for number, (name, value) in enumerate(attributes.items()):
        names[f"#ix{number}"] = name
        values[f":ix{number}"] = value
        sets.append(f"#ix{number} = :ix{number}")
    # A summary without a views attribute reads as 0 (model.summary_counters).
    condition = "#views = :views" + (" OR attribute_not_exists(#views)" if not fault.views else "")
    return _update_if(
        client,
        TableName=store.table_name,
        Key=model.summary_item_key(fault.key),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=f"attribute_exists(PK) AND ({condition})",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def rank(
    client: DynamoDBClient, store: SummaryStore, faults: Iterable[IndexFault], *, attempts: int = 3
) -> tuple[list[IndexFault], list[SummaryKey]]:
    """Set the index attributes of each faulty summary; safe while the handlers run. When
    ``views`` changed since the read, read the summary again (consistent) and retry with what
    it holds now: its writer may have ranked it already. Returns (written, gave up on)."""
    ranked: list[IndexFault] = []
    gave_up: list[SummaryKey] = []
    for fault in faults:
        current: IndexFault | None = fault
        for _ in range(attempts):
            if current is None or write_index(client, store, current):
                break
            item = store.read(fault.key)
            current = None if item is None else index_fault(store, fault.key, item)
        else:
            gave_up.append(fault.key)
            continue
        if current is not None:
            ranked.append(current)
    return ranked, gave_up


@dataclass(slots=True)
class AppliedTargets:
    """Each summary's exact value for the records it has applied, from one scan and one read
    of the stream (``applied_targets``)."""

    snapshot: TableSnapshot
    targets: dict[SummaryKey, Counters]
    marks: dict[SummaryKey, dict[str, str]]  # Corrections.marks: to write with the targets
    stream_records: int  # records read from the stream

    def drift(self) -> list[Drift]:
        """The summaries whose counters differ from their target, then those whose counters
        equal it but count records on an estimated position: the rewrite gives them the
        mark (``Corrections.marks``)."""
        drifts = compare(self.targets, self.snapshot.summaries)
        drifting = {d.key for d in drifts}
        for key in sorted(self.marks.keys() - drifting, key=lambda k: (k.kind.value, k.id)):
            item = self.snapshot.summaries.get(key)
            counters = model.summary_counters(item) if item is not None else model.ZERO
            drifts.append(Drift(key, self.targets.get(key, model.ZERO), counters, item is not None))
        return drifts


def applied_targets(
    client: DynamoDBClient,
    streams_client: Any,
    table: str,
    stream_arn: str,
    *,
    estimate_positions: bool,
    settled_age: float | None = None,
    segments: int = DEFAULT_SEGMENTS,
    timing: StreamTiming = AWS_TIMING,
) -> AppliedTargets:
    """Scan, then read the stream: each summary's exact value for the records it has applied
    (recount + corrections). ``estimate_positions``: see ``corrections``; right only while the
    pipeline is paused and drained. ``settled_age``: see ``settled_age``."""
    settled_before = None if settled_age is None else time.time() - settled_age
    snapshot = read_snapshot(client, table, segments=segments, keep_base=True)
    # Records created after the scan cannot be in what it saw, so the read ends there (plus a
    # margin for clock skew and creation times rounded to the second), even while the
    # application writes on. The pause lets the stream catch up with the scan.
    until = time.time() + timing.margin
    time.sleep(timing.delay)
    records = list(read_stream(streams_client, stream_arn, until=until))
    assert snapshot.base_items is not None
    lineage = Lineage.of(describe_shards(streams_client, stream_arn), time.time())
    found = corrections(
        records,
        snapshot.base_items,
        snapshot.summaries,
        stream_arn,
        lineage,
        estimate_positions=estimate_positions,
        settled_before=settled_before,
    )
    targets = dict(snapshot.recount)
    for key, change in found.changes.items():
        targets[key] = targets.get(key, model.ZERO) + change
    return AppliedTargets(snapshot, targets, found.marks, len(records))


def live_drift(
    client: DynamoDBClient,
    streams_client: Any,
    table: str,
    stream_arn: str,
    *,
    settled_age: float | None = None,
    segments: int = DEFAULT_SEGMENTS,
    timing: StreamTiming = AWS_TIMING,
) -> list[Drift]:
    """Drift that records in flight cannot explain: safe to run while the stack is busy.

    Blind to a lost record newer than everything its summary applied, and to a summary that
    holds no mark of a shard whose records it lacks (deleted; see ``corrections``);
    ``find_drift`` at a quiescent moment sees those too.
    """
    applied = applied_targets(
        client,
        streams_client,
        table,
        stream_arn,
        estimate_positions=False,
        settled_age=settled_age,
        segments=segments,
        timing=timing,
    )
    return compare(applied.targets, applied.snapshot.summaries)


def repair(
    client: DynamoDBClient,
    streams_client: Any,
    table: str,
    stream_arn: str,
    pipeline: Pipeline,
    *,
    settled_age: float | None = None,
    segments: int = DEFAULT_SEGMENTS,
    index_shards: int = 4,
    timing: StreamTiming = AWS_TIMING,
    log: Callable[[str], None] = lambda _message: None,
) -> RepairResult:
    started = time.monotonic()

    def note(message: str) -> None:
        log(f"[{time.monotonic() - started:5.1f} s] {message}")

    def estimated_targets() -> AppliedTargets:
        """The targets with the mappings' positions estimated (before and while paused)."""
        return applied_targets(
            client,
            streams_client,
            table,
            stream_arn,
            estimate_positions=True,
            settled_age=settled_age,
            segments=segments,
            timing=timing,
        )

    # Checked while the stack runs: records in flight are no reason to pause it. The estimated
    # positions find summaries without marks (deleted, a batch that failed for them); what it
    # wrongly takes for drift on a running stack costs a pause, and the paused pass decides.
    before = estimated_targets()
    result = RepairResult(drift_before=compare(before.targets, before.snapshot.summaries))
    # The index attributes need no pause: each write is conditional on the views it is for.
    store = SummaryStore(client, table, index_shards)
    result.unranked_before = index_faults(store, before.snapshot.summaries)
    moved = [f for f in result.unranked_before if "wrong GSI2PK" in f.problems]
    if moved:
        # Most likely --index-shards differs from the deployment's: rewriting would take
        # every summary out of the partitions `make summary` reads.
        raise ToolError(
            f"{len(moved)} summaries have a GSI2PK other than for {index_shards} index shards "
            f"(e.g. {moved[0].key.kind.value} {moved[0].key.id}): pass the deployment's "
            "summary_index_shards as --index-shards; nothing was changed"
        )
    if result.unranked_before:
        result.ranked, gave_up = rank(client, store, result.unranked_before)
        result.conflicts += gave_up
        note(f"set the index attributes of {len(result.ranked)} summaries")
    if not result.drift_before:
        note("no drift: nothing to repair, the mappings were not touched")
        result.seconds = time.monotonic() - started
        return result
    note(f"{len(result.drift_before)} summaries drift: pausing the pipeline")
    result.paused = pipeline.pause()
    note(f"paused {len(result.paused)} mappings")
    try:
        note("scanning the table and reading the stream")
        paused = estimated_targets()
        result.stream_records = paused.stream_records
        note(
            f"scanned {paused.snapshot.items_read:,} items, read {paused.stream_records:,} "
            "stream records; rewriting the drifting summaries"
        )
        for drift in paused.drift():
            marks = {
                name: (mark_value(paused.snapshot.summaries.get(drift.key), name), value)
                for name, value in paused.marks.get(drift.key, {}).items()
            }
            if not write_target(client, table, drift, index_shards, marks=marks):
                result.conflicts.append(drift.key)
            elif drift.actual != drift.expected:
                result.repaired.append(drift)
            else:
                result.marked.append(drift.key)
        note(
            f"rewrote {len(result.repaired)} summaries, marked {len(result.marked)} more; resuming"
        )
    finally:
        pipeline.resume(result.paused)
    result.seconds = time.monotonic() - started
    note("resumed")
    return result


def stream_arn_of(client: DynamoDBClient, table: str) -> str:
    description = client.describe_table(TableName=table)["Table"]
    arn = description.get("LatestStreamArn")
    if not arn or not description.get("StreamSpecification", {}).get("StreamEnabled", True):
        raise ToolError(f"table {table} has no stream: nothing feeds the summaries")
    return str(arn)
