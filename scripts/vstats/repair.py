"""``reconcile --repair``: make every summary exact again while the stack runs.

The procedure:

1. Pause the pipeline: disable both event source mappings (found by the table's stream ARN),
   wait until they report Disabled and nothing is in flight (local: the engine's ``/drained``;
   AWS: state Disabled plus a grace period of the longest function timeout).
2. Scan the table (recount + summaries), then read the stream, every shard at least up to the
   highest mark of it any summary holds (``target_reads.known_tips``); a read the page cap
   ends short of that stops the repair with one line, before anything is written.
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
items confirms it (``vstats.target_reads.live_check``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from video_stats.marks import mark_value
from video_stats.model import SummaryKey
from video_stats.store import SummaryStore

from vstats.cli import ToolError
from vstats.drift import DEFAULT_SEGMENTS, Drift, IndexFault, compare, index_faults
from vstats.pipeline import Pipeline
from vstats.stream_reader import AWS_TIMING, StreamTiming
from vstats.summary_writes import rank, write_target
from vstats.target_reads import AppliedTargets, applied_targets

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


# --- the procedure ---------------------------------------------------------------------------


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
    capped_shards: int = 0  # open shards the (last) stream read ended at the cap
    paused: list[str] = field(default_factory=list)
    seconds: float = 0.0


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
    result = RepairResult(
        drift_before=compare(before.targets, before.snapshot.summaries),
        capped_shards=before.capped_shards,
    )
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
        result.capped_shards = paused.capped_shards
        note(
            f"scanned {paused.snapshot.items_read:,} items, read {paused.stream_records:,} "
            f"stream records ({paused.capped_shards} open shards read to the safety cap); "
            "rewriting the drifting summaries"
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
