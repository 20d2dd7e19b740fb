"""The one target computation of the recovery tools (docs/design.md §9, "Repair and live
drift"), pure: from a summary, its base items, the stream's records for them and what is known
of the mappings' positions, the exact value the summary must hold for the records it has
applied, and which records are in flight for it. ``reconcile --repair`` and ``--live`` run it
over a scan of the table, ``redrive`` and the confirmation of a drift over consistent reads of
the keys (``vstats.target_reads``).

Three rules, decided here once for every tool:

* An item with records in the stream takes its state from its last record read (the reads of
  the table are not a snapshot, and GSI1 is eventually consistent); any other item from the
  read of the table.
* A shard is finished for a function (all its records applied or given up on) when any
  summary read holds a mark of one of its descendants (Lambda reads a parent before its
  children), or when the caller knows the mapping processed it (``processed_through``).
* A record older than the mappings' record age + 900 s (``settled_before``) counts as
  applied: no mapping delivers it any more, and its summaries' marks may have expired.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from video_stats import model
from video_stats.lineage import Lineage
from video_stats.marks import decode_mark, encode_mark, names_of, shard_marks
from video_stats.model import AttributeMap, Counters, SummaryKey

from vstats.effects import FUNCTION_OF_ITEM_TYPE, counted_contribution
from vstats.stream_reader import StreamRecord


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
    #: {summary: [(shard id, sequence number)]}: records that change it and that it has not
    #: applied (in flight, or given up on and not on a failure queue the caller named).
    in_flight: dict[SummaryKey, list[tuple[str, int]]] = field(default_factory=dict)
    #: {summary: {mark name: value}}: the mapping's estimated position in a shard, for a
    #: summary that holds no mark of that shard's lineage yet counts some of its records.
    marks: dict[SummaryKey, dict[str, str]] = field(default_factory=dict)


ALL_APPLIED: Final = 1 << 160  # above every sequence number (at most 40 digits)


@dataclass(slots=True)
class Positions:
    """What the tools know of the mappings' positions, decided once for every summary of a
    computation (see ``corrections`` for the rules)."""

    stream_arn: str
    lineage: Lineage
    marks: dict[SummaryKey, dict[str, str]]  # each summary's marks
    highest: dict[str, tuple[int, str]]  # {mark name: (seq, value)} over every summary read
    estimate: bool = False
    processed_through: Mapping[tuple[str, str], int] = field(default_factory=dict)
    settled_before: float | None = None
    _finished: dict[tuple[str, str], bool] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        summaries: Mapping[SummaryKey, AttributeMap],
        stream_arn: str,
        lineage: Lineage | None = None,
        *,
        estimate_positions: bool,
        processed_through: Mapping[tuple[str, str], int] | None = None,
        settled_before: float | None = None,
    ) -> Positions:
        marks = {key: marks_of(item) for key, item in summaries.items()}
        highest: dict[str, tuple[int, str]] = {}
        for held in marks.values():
            for name, value in held.items():
                seq = decode_mark(value).seq
                if name not in highest or seq > highest[name][0]:
                    highest[name] = (seq, value)
        return cls(
            stream_arn,
            lineage or Lineage(),
            marks,
            highest,
            estimate_positions,
            processed_through or {},
            settled_before,
        )

    def settled(self, record: StreamRecord) -> bool:
        """Older than the mappings' record age + 900 s: counts as applied everywhere."""
        return (
            self.settled_before is not None
            and record.created is not None
            and record.created < self.settled_before
        )

    def finished(self, function: str, shard_id: str) -> bool:
        """Any summary read holds a mark of one of the shard's descendants."""
        if (function, shard_id) not in self._finished:
            descendants = names_of(function, self.lineage.descendants(shard_id))
            self._finished[function, shard_id] = any(name in self.highest for name in descendants)
        return self._finished[function, shard_id]

    def applied_up_to(
        self, key: SummaryKey, function: str, shard_id: str
    ) -> tuple[int | None, bool]:
        """(K's applied position in the shard or None for nothing, whether it is estimated).
        Per shard with tumbling-window events, else one mark per stream (handlers.py); either
        mark format (marks.py)."""
        if self.finished(function, shard_id):
            return ALL_APPLIED, False
        held = self.marks.get(key, {})
        floor = self.processed_through.get((function, shard_id))
        # The highest of K's marks naming the shard or the stream: each says K applied up to
        # it, and two can coexist (redrive raises the shard's mark beside the stream's mark a
        # handler without ``shardId`` moves; docs/design.md §9, "Redrive").
        seqs = [
            decode_mark(held[name]).seq
            for name in names_of(function, (shard_id, self.stream_arn))
            if name in held
        ]
        if seqs:
            return (max(seqs) if floor is None else max(*seqs, floor)), False
        estimate = self._estimate(function, shard_id) if self.estimate else None
        if estimate is not None:
            return estimate[1], True
        return floor, False

    def estimated_mark(self, function: str, shard_id: str) -> tuple[str, str]:
        """The estimated position as a mark of K, in the current format."""
        estimate = self._estimate(function, shard_id)
        assert estimate is not None, "only called after applied_up_to found one"
        current, seq, value = estimate
        created_by = decode_mark(value).created_by
        return current, encode_mark(seq, None if created_by is None else created_by - 1)

    def _estimate(self, function: str, shard_id: str) -> tuple[str, int, str] | None:
        """The mapping's estimated position in the shard: the highest mark of the shard (or of
        the stream) any summary holds, above what the caller knows was processed; as (the
        current mark name, sequence number, mark value as held)."""
        floor = self.processed_through.get((function, shard_id))
        for identity in (shard_id, self.stream_arn):
            names = shard_marks(function, identity)
            for name in names.names():
                if name in self.highest and (floor is None or self.highest[name][0] > floor):
                    seq, value = self.highest[name]
                    return names.current, seq, value
        return None


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
    positions = Positions.of(
        summaries,
        stream_arn,
        lineage,
        estimate_positions=estimate_positions,
        processed_through=processed_through,
        settled_before=settled_before,
    )
    return corrections_at(records, base_items, positions)


def corrections_at(
    records: Iterable[StreamRecord],
    base_items: Mapping[tuple[str, str], AttributeMap],
    positions: Positions,
) -> Corrections:
    """``corrections`` with the positions worked out once (``Positions.of``), for callers that
    compute many summaries' targets over the same reads."""
    by_item: dict[tuple[str, str], list[StreamRecord]] = defaultdict(list)
    for record in records:
        by_item[record.identity].append(record)
    lineage = positions.lineage
    result = Corrections()
    # An item's records follow its partition's lineage: a parent's before its child's.
    # Sequence numbers order records within one shard only (docs/design.md §5).
    depth = {r.shard_id: len(lineage.ancestors(r.shard_id)) for rs in by_item.values() for r in rs}
    for identity, item_records in by_item.items():
        item_records.sort(key=lambda r: (depth[r.shard_id], r.seq))
        scanned = base_items.get(identity)
        # The item's state: its last record's (the reads of the table are no snapshot, and
        # GSI1 lags), so that every record up to that state is among ``item_records``.
        current = item_records[-1].new if item_records else scanned
        for item_type, function in FUNCTION_OF_ITEM_TYPE.items():
            read = counted_contribution(scanned, item_type)
            now = counted_contribution(current, item_type)
            keys = set(now) | set(read)
            for record in item_records:
                keys |= set(counted_contribution(record.new, item_type))
                keys |= set(counted_contribution(record.old, item_type))
            for key in keys:
                before = now.get(key, model.ZERO)
                for index, record in enumerate(item_records):
                    if positions.settled(record):
                        continue
                    position, estimated = positions.applied_up_to(key, function, record.shard_id)
                    if position is None or record.seq > position:
                        before = counted_contribution(record.old, item_type).get(key, model.ZERO)
                        result.in_flight.setdefault(key, []).extend(
                            (r.shard_id, r.seq)
                            for r in item_records[index:]
                            if counted_contribution(r.old, item_type).get(key)
                            != counted_contribution(r.new, item_type).get(key)
                        )
                        break
                    if estimated and counted_contribution(record.old, item_type).get(
                        key, model.ZERO
                    ) != counted_contribution(record.new, item_type).get(key, model.ZERO):
                        name, value = positions.estimated_mark(function, record.shard_id)
                        result.marks.setdefault(key, {})[name] = value
                change = before - read.get(key, model.ZERO)
                if not change.is_zero():
                    result.changes[key] = result.changes.get(key, model.ZERO) + change
    return result


@dataclass(frozen=True, slots=True)
class Target:
    """What one summary must hold for the records it has applied, and the records that change
    it and that it has not applied (in flight)."""

    expected: Counters
    in_flight: tuple[tuple[str, int], ...]  # (shard id, sequence number), sorted


def summary_target(
    key: SummaryKey,
    base_items: Mapping[tuple[str, str], AttributeMap],
    records: Iterable[StreamRecord],
    positions: Positions,
) -> Target:
    """The exact value of summary ``key``: the recount of its base items as read, corrected
    for the stream's records of them (``corrections_at``). ``positions`` holds the summary as
    read (consistently), with every other summary read beside it."""
    found = corrections_at(records, base_items, positions)
    recount = model.recount(base_items.values()).get(key, model.ZERO)
    return Target(
        recount + found.changes.get(key, model.ZERO),
        tuple(sorted(set(found.in_flight.get(key, [])))),
    )
