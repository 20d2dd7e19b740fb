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
The item's current state is its last record's, or the scan's when it has none
(``vstats.targets``, the one target computation of the tools).

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
older than the mappings' record age + 900 s (``pipeline.settled_age``) counts as applied: no
mapping delivers it any more, and its summaries' marks may have expired. A drift a scan shows
on a running stack is reported only once a consistent re-read of the summary and its base
items confirms it (``live_check``, ``vstats.key_targets``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from video_stats import model
from video_stats.lineage import Lineage
from video_stats.marks import mark_value
from video_stats.model import Counters, SummaryKey
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
    read_snapshot,
)
from vstats.key_targets import confirmed
from vstats.pipeline import Pipeline
from vstats.stream_reader import AWS_TIMING, Bound, StreamTiming, read_stream
from vstats.targets import corrections

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# --- the rewrite ------------------------------------------------------------------------------


@dataclass(slots=True)
class RepairResult:
    drift_before: list[Drift]  # the estimated targets' drift before pausing
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
    capped_shards: int = 0  # open shards read to the reader's safety cap (stream_reader)

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
    bound = Bound(time=time.time() + timing.margin)
    time.sleep(timing.delay)
    stream = read_stream(streams_client, stream_arn, bound=bound, timing=timing)
    assert snapshot.base_items is not None
    lineage = Lineage.of(describe_shards(streams_client, stream_arn), time.time())
    found = corrections(
        stream.records,
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
    return AppliedTargets(snapshot, targets, found.marks, len(stream.records), len(stream.capped))


def live_check(
    client: DynamoDBClient,
    streams_client: Any,
    table: str,
    stream_arn: str,
    *,
    settled_age: float | None = None,
    segments: int = DEFAULT_SEGMENTS,
    timing: StreamTiming = AWS_TIMING,
) -> tuple[list[Drift], AppliedTargets]:
    """Drift that records in flight cannot explain, safe to run while the stack is busy, and
    the scan it came from. A drift the scan shows is reported only when a consistent re-read
    of the summary and its base items confirms it (``key_targets``): a scan reads partitions
    one after another, and a batch can land between them.

    Blind to a lost record newer than everything its summary applied, and to a summary that
    holds no mark of a shard whose records it lacks (deleted; see ``targets.corrections``);
    ``find_drift`` at a quiescent moment sees those too."""
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
    suspects = compare(applied.targets, applied.snapshot.summaries)
    drifts = confirmed(
        client,
        streams_client,
        table,
        suspects,
        stream_arn=stream_arn,
        timing=timing,
        settled_age=settled_age,
    )
    return drifts, applied


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
