"""The reads behind the recovery tools' targets (docs/design.md §9), each followed by a read
of the stream and the one target computation (``vstats.targets``):

* ``applied_targets``: one scan of the table (``reconcile --repair``, ``--live``);
* ``key_targets``: consistent reads of given summaries, what ``redrive`` writes;
* ``live_check``: the scan's drift, each confirmed by ``key_targets`` before it is reported
  (a scan is no snapshot: a batch can land between the partitions it reads).


Per round, for all keys at once: the base items (a user's: a consistent query of its
partition; a video's: GSI1, the only way to find them, which is eventually consistent), the
stream past those reads, each summary (consistent GetItem), the stream on to what the
summaries hold, then the one target computation (``vstats.targets.summary_target``); why in
that order: ``key_targets``. An item GSI1 does not show yet, or shows in an older state, was
written recently, so its records are in the stream (24 h), and its state is taken from its
last record there; GSI1 lags by seconds, never by the stream's 24 h.

The stream is read at least up to each shard's known tip (``known_tips``: the highest fresh
mark any summary read holds, and a failed range's end), whatever empty pages lie before it: a
record a summary has applied but the read did not reach would leave its item's state to the
read of the table, which may predate it, while the summary holds it. A read the page cap ends
short of a tip is never used to write: ``key_targets`` says so (``KeyTargets.short``, redrive
retries in its next round), ``applied_targets`` and ``confirmed`` refuse with one line
(``refuse_short``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from localcloud.writestats import item_size
from video_stats import model
from video_stats.lineage import Lineage, Shard
from video_stats.marks import decode_mark, shard_marks
from video_stats.model import AttributeMap, Counters, SummaryKey, SummaryKind
from video_stats.streams import describe_shards

from vstats.cli import ToolError
from vstats.drift import (
    DEFAULT_SEGMENTS,
    Drift,
    TableSnapshot,
    compare,
    item_identity,
    read_snapshot,
)
from vstats.effects import FUNCTION_OF_ITEM_TYPE, counted_contribution, is_base_item
from vstats.stream_reader import (
    AWS_TIMING,
    Bound,
    ShardRead,
    StreamRead,
    StreamRecord,
    StreamTiming,
    read_stream,
    read_to_tips,
)
from vstats.targets import Positions, corrections, marks_of, summary_target

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

READ_UNIT_BYTES: Final = 4096


@dataclass(slots=True)
class ReadCost:
    """What the query of one key's base items cost: items read (its summary among them), and
    read units by DynamoDB's rule for a Query ("All items returned are treated as a single
    read operation, where DynamoDB computes the total size of all items and then rounds up to
    the next 4 KB boundary"; an eventually consistent read, such as any on GSI1, costs half),
    computed from the items' sizes so that a local endpoint gives the figure AWS would bill."""

    items: int = 0
    read_units: float = 0.0

    def add(self, other: ReadCost) -> None:
        self.items += other.items
        self.read_units += other.read_units


@dataclass(frozen=True, slots=True)
class KeyTarget:
    key: SummaryKey
    summary: AttributeMap | None  # as read (consistent)
    expected: Counters  # for the records it has applied
    in_flight: tuple[tuple[str, int], ...]  # (shard id, sequence number) it has not applied
    cost: ReadCost

    @property
    def actual(self) -> Counters:
        return model.summary_counters(self.summary) if self.summary is not None else model.ZERO

    @property
    def drift(self) -> Drift:
        return Drift(self.key, self.expected, self.actual, self.summary is not None)


@dataclass(slots=True)
class KeyTargets:
    targets: dict[SummaryKey, KeyTarget]
    stream: StreamRead
    lineage: Lineage
    index: StreamIndex
    summaries: dict[SummaryKey, AttributeMap | None] = field(default_factory=dict)
    #: Each key's base items by identity and what reading them cost (kept for a later round).
    base: dict[SummaryKey, dict[tuple[str, str], AttributeMap]] = field(default_factory=dict)
    costs: dict[SummaryKey, ReadCost] = field(default_factory=dict)

    @property
    def short(self) -> list[ShardRead]:
        """Shards read short of their known tip: no target of this read may be written (which
        items a shard's unread records belong to is unknown, so this holds for every key)."""
        return self.stream.short


#: A mark vouches for its record only while the stream surely holds it: "Stream records whose
#: age exceeds this limit [24 hours] are subject to removal (trimming) from the stream"
#: (GetShardIterator, Streams API reference). Two hours to spare: the mark's creation hour is
#: rounded up (``Mark.created_by``), and the read takes time. An older mark (stale marks stay
#: on a summary until its next update) would send the read after a record that may be gone,
#: on to the page cap; the records it covers are settled anyway (``Positions.settled``).
TIP_AGE_SECONDS: Final = 22 * 3600


def known_tips(
    summaries: Iterable[AttributeMap | None],
    shards: Iterable[Shard],
    *,
    range_ends: Mapping[str, int] | None = None,
    now: float | None = None,
) -> dict[str, int]:
    """{shard id: a sequence number the shard is known to hold}: the highest mark of the
    shard (either function, either format: ``shard_marks``) any summary read holds, since the
    handler applied that record (a mark younger than ``TIP_AGE_SECONDS``), and the end of a
    failed range read back from it (``range_ends``, {shard id: sequence number}). A
    stream-wide mark (one per stream, without tumbling windows) names no shard: no tip."""
    oldest = (time.time() if now is None else now) - TIP_AGE_SECONDS
    owner = {
        name: shard.shard_id
        for shard in shards
        for function in FUNCTION_OF_ITEM_TYPE.values()
        for name in shard_marks(function, shard.shard_id).names()
    }
    tips: dict[str, int] = dict(range_ends or {})
    for item in summaries:
        for name, value in marks_of(item).items():
            shard_id = owner.get(name)
            if shard_id is None:
                continue
            mark = decode_mark(value, now)
            if mark.created_by is not None and mark.created_by >= oldest:
                tips[shard_id] = max(mark.seq, tips.get(shard_id, mark.seq))
    return tips


def holds_stream_mark(
    summaries: Iterable[AttributeMap | None], stream_arn: str, *, now: float | None = None
) -> bool:
    """Whether a summary read holds a fresh mark of the whole stream (either function, either
    format): the handlers' one mark per stream for events without ``shardId``
    (docs/design.md §8, step 3). It names no shard, so ``known_tips`` finds no tip for the
    records it holds; an older mark than ``TIP_AGE_SECONDS`` holds records written long
    before any read of the tools (a mark of unknown age counts as fresh)."""
    oldest = (time.time() if now is None else now) - TIP_AGE_SECONDS
    names = {
        name
        for function in FUNCTION_OF_ITEM_TYPE.values()
        for name in shard_marks(function, stream_arn).names()
    }
    for item in summaries:
        for name, value in marks_of(item).items():
            if name in names:
                created_by = decode_mark(value, now).created_by
                if created_by is None or created_by >= oldest:
                    return True
    return False


def refuse_short(stream: StreamRead, what: str) -> None:
    """One readable line (``ToolError``) when a shard was read short of its known tip: the
    tool writes and reports nothing from such a read."""
    if stream.short:
        first = stream.short[0]
        more = f" (and {len(stream.short) - 1} more shards)" if len(stream.short) > 1 else ""
        raise ToolError(f"{first.describe_short()}{more}: {what}; run it again")


def read_summary(client: DynamoDBClient, table: str, key: SummaryKey) -> AttributeMap | None:
    return client.get_item(
        TableName=table, Key=model.summary_item_key(key), ConsistentRead=True
    ).get("Item")


def base_items(
    client: DynamoDBClient, table: str, key: SummaryKey
) -> tuple[list[AttributeMap], ReadCost]:
    """The base items that can contribute to ``key`` under the data model's keys: a user's
    share its summary's partition (a consistent query); a video's share its summary's GSI1PK
    (GSI1 cannot be read consistently)."""
    request: dict[str, Any] = {"TableName": table}
    if key.kind is SummaryKind.USER:
        request |= {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": model.summary_item_key(key)["PK"]},
            "ConsistentRead": True,
        }
    else:
        request |= {
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": model.summary_identity(key, 1)["GSI1PK"]},
        }
    items: list[AttributeMap] = []
    cost = ReadCost()
    while True:
        page = client.query(**request)
        cost.items += len(page.get("Items", []))
        size = sum(item_size(item) for item in page.get("Items", []))
        cost.read_units += math.ceil(size / READ_UNIT_BYTES) * (
            1.0 if request.get("ConsistentRead") else 0.5
        )
        items += [item for item in page.get("Items", []) if is_base_item(item)]
        last = page.get("LastEvaluatedKey")
        if not last:
            return items, cost
        request["ExclusiveStartKey"] = last


class StreamIndex:
    """The stream's records by item and by the summary keys their images touch; ``add`` takes
    a later read of the stream (the records it has already are skipped)."""

    def __init__(self, records: Iterable[StreamRecord] = ()) -> None:
        self.by_item: dict[tuple[str, str], list[StreamRecord]] = {}
        self.by_key: dict[SummaryKey, list[StreamRecord]] = {}
        self._seen: set[tuple[str, int]] = set()
        self.add(records)

    def add(self, records: Iterable[StreamRecord]) -> None:
        for record in records:
            if (record.shard_id, record.seq) in self._seen:
                continue
            self._seen.add((record.shard_id, record.seq))
            self.by_item.setdefault(record.identity, []).append(record)
            touched: set[SummaryKey] = set()
            for item_type in FUNCTION_OF_ITEM_TYPE:
                for image in (record.new, record.old):
                    touched |= set(counted_contribution(image, item_type))
            for key in touched:
                self.by_key.setdefault(key, []).append(record)

    def relevant(self, key: SummaryKey, items: Iterable[tuple[str, str]]) -> list[StreamRecord]:
        """Every record of the items found for ``key`` and of any other item whose images
        touch it (deleted since, or not in GSI1 yet): all records of each such item, so that
        its state is its last record's."""
        identities = set(items) | {r.identity for r in self.by_key.get(key, [])}
        return [r for identity in identities for r in self.by_item.get(identity, [])]


def key_targets(
    client: DynamoDBClient,
    streams: Any,
    table: str,
    keys: Sequence[SummaryKey],
    *,
    stream_arn: str,
    timing: StreamTiming,
    processed_through: Mapping[tuple[str, str], int] | None = None,
    settled_age: float | None = None,
    earlier: KeyTargets | None = None,
    range_ends: Mapping[str, int] | None = None,
) -> KeyTargets:
    """Each key's exact target for the records it has applied, from consistent reads (see the
    module's docstring). ``processed_through``, ``settled_age``: ``vstats.targets``;
    ``range_ends``: failed ranges read back, known tips (``known_tips``). ``earlier``: a
    previous round (keys whose write lost a race): its base items and its stream, read on.

    The order, and why it is exact. A summary's write is conditional on the summary as read,
    so the time from that read to the write is what a busy (hot) summary must stay unchanged
    for; the summaries are read last, and only what they are known to hold is read after them:

    1. the base items (the long part: every view of a hot video). A later round keeps them:
       an item written since has its records in the stream, whose last one gives its state;
    2. the stream up to a time past those reads (first round): every record written before
       them is read, so an item's state is its last record's or, without one, the table's;
    3. the summaries (consistent GetItem);
    4. the stream read on to each shard's known tip (the summaries' marks: records they hold),
       and every shard closed meanwhile to its end (a finished parent a summary may count
       through a descendant's mark): ``read_to_tips``, no time bound, usually no call. A
       summary holding a mark of the whole stream (``holds_stream_mark``) names no tip, so
       then every open shard is read on to a time past these reads instead, with a wait.

    A record read in none of these, written after step 2's bound, was applied by no summary
    read (its mark would be a tip) and its item's state is the one before it: the summary and
    its target both leave it out, and the handler applies it later."""
    if earlier is None:
        base: dict[SummaryKey, dict[tuple[str, str], AttributeMap]] = {}
        costs: dict[SummaryKey, ReadCost] = {}
        for key in keys:
            listed, costs[key] = base_items(client, table, key)
            base[key] = {item_identity(item): item for item in listed}
        bound = Bound(time=time.time() + timing.margin)
        time.sleep(timing.delay)
        stream = read_stream(
            streams, stream_arn, bound=bound, timing=timing, at_least=dict(range_ends or {})
        )
        index = StreamIndex(stream.records)
    else:
        base, costs = earlier.base, earlier.costs
        stream, index = earlier.stream, earlier.index
    summaries = {key: read_summary(client, table, key) for key in keys}
    shards = describe_shards(streams, stream_arn)
    tips = known_tips(summaries.values(), shards, range_ends=range_ends)
    past: Bound | None = None
    if holds_stream_mark(summaries.values(), stream_arn):
        # A mark of the whole stream names no shard, so no tip covers what it holds: every
        # open shard is read on past these reads, as in step 2 (a wait, in that opt-out only).
        past = Bound(time=time.time() + timing.margin)
        time.sleep(timing.delay)
    stream = read_to_tips(
        streams, stream_arn, stream, tips, timing=timing, shards=shards, past=past
    )
    index.add(stream.records)
    lineage = Lineage.of(shards, time.time())
    settled_before = None if settled_age is None else time.time() - settled_age
    # Worked out once from every summary read: a shard is finished when any of them holds a
    # mark of a descendant (``targets``).
    positions = Positions.of(
        {key: item for key, item in summaries.items() if item is not None},
        stream_arn,
        lineage,
        estimate_positions=False,
        processed_through=processed_through,
        settled_before=settled_before,
    )
    targets: dict[SummaryKey, KeyTarget] = {}
    for key in keys:
        items = base[key]
        target = summary_target(key, items, index.relevant(key, items), positions)
        targets[key] = KeyTarget(key, summaries[key], target.expected, target.in_flight, costs[key])
    return KeyTargets(targets, stream, lineage, index, summaries, base, costs)


def confirmed(
    client: DynamoDBClient,
    streams: Any,
    table: str,
    drifts: Sequence[Drift],
    *,
    stream_arn: str,
    timing: StreamTiming,
    settled_age: float | None = None,
) -> list[Drift]:
    """The drifts (found by a scan on a running stack) that a consistent re-read of each
    summary and its base items, and the stream after them, confirms: the rest was a batch
    landing between the partitions the scan read."""
    if not drifts:
        return []
    again = key_targets(
        client,
        streams,
        table,
        [d.key for d in drifts],
        stream_arn=stream_arn,
        timing=timing,
        settled_age=settled_age,
    )
    refuse_short(again.stream, "no drift confirmed or reported")
    kept = [t.drift for t in again.targets.values() if t.actual != t.expected]
    return sorted(kept, key=lambda d: (d.key.kind.value, d.key.id))


@dataclass(slots=True)
class AppliedTargets:
    """Each summary's exact value for the records it has applied, from one scan and one read
    of the stream (``applied_targets``)."""

    snapshot: TableSnapshot
    targets: dict[SummaryKey, Counters]
    marks: dict[SummaryKey, dict[str, str]]  # Corrections.marks: to write with the targets
    stream_records: int  # records read from the stream
    capped_shards: int = 0  # open shards read to the reader's cap (stream_reader), none short

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
    pipeline is paused and drained. ``settled_age``: see ``settled_age``. ``ToolError`` when
    a shard is read short of its known tip (``refuse_short``)."""
    settled_before = None if settled_age is None else time.time() - settled_age
    snapshot = read_snapshot(client, table, segments=segments, keep_base=True)
    # Records created after the scan cannot be in what it saw, so the read ends there (plus a
    # margin for clock skew and creation times rounded to the second), even while the
    # application writes on. The pause lets the stream catch up with the scan.
    bound = Bound(time=time.time() + timing.margin)
    time.sleep(timing.delay)
    listed = describe_shards(streams_client, stream_arn)
    stream = read_stream(
        streams_client,
        stream_arn,
        bound=bound,
        timing=timing,
        shards=listed,
        at_least=known_tips(snapshot.summaries.values(), listed),
    )
    refuse_short(stream, "nothing written or reported")
    assert snapshot.base_items is not None
    # The listing after the scan names every shard a scanned summary's mark can name.
    lineage = Lineage.of(listed, time.time())
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


@dataclass(slots=True)
class LiveCheck:
    drifts: list[Drift]  # confirmed by the consistent re-read
    applied: AppliedTargets  # the scan's targets
    suspects: int  # summaries the scan showed drifting, before the re-read


def live_check(
    client: DynamoDBClient,
    streams_client: Any,
    table: str,
    stream_arn: str,
    *,
    settled_age: float | None = None,
    segments: int = DEFAULT_SEGMENTS,
    timing: StreamTiming = AWS_TIMING,
) -> LiveCheck:
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
    return LiveCheck(drifts, applied, len(suspects))
