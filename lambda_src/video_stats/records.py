"""Parse a batch of DynamoDB stream records and merge it into one net delta per summary key.

Pure and allocation-light: this is the hot path (``make bench-handler``). A record's effect on
the summaries is ``contribution(NewImage) - contribution(OldImage)`` for the function's own item
type (see ``model``), which covers every row of docs/design.md §3:

* INSERT: only a NewImage, so +contribution;
* REMOVE: only an OldImage, so -contribution (duration and vote from the OldImage);
* MODIFY: new minus old, so a duration change or a changed vote nets out per counter, an
  unchanged item nets to zero, and a change of ``type`` to or from VIEW/VOTE counts as an
  insert or a removal.

An image that breaks the §2 format contributes nothing and the record is reported as invalid
(with its sequence number and the reason); its other image still counts, which is exactly what a
recount of the final item gives. A record with no image of the function's type (a summary item,
another type, a record that slipped through a filter) has no effect and is reported as well.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from video_stats.model import (
    Counters,
    InvalidItem,
    ItemType,
    SummaryKey,
    SummaryKind,
    Vector,
    contribution_vector,
)

#: Internal key form: (kind, id). Tuples hash and compare much faster than SummaryKey.
RawKey = tuple[str, str]

VIDEO: Final = SummaryKind.VIDEO.value
USER: Final = SummaryKind.USER.value


class MalformedEvent(ValueError):
    """The event cannot be attributed to records (no sequence number, not a stream event)."""


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record with an effect. ``seq`` orders records of one shard."""

    seq: int
    sequence_number: str  # verbatim from the event: the batchItemFailures identifier
    created: float | None  # ApproximateCreationDateTime (epoch seconds)
    new: Vector | None
    old: Vector | None
    invalid: bool = False  # one image was malformed (the record is also in Batch.skipped)

    def delta_for(self, key: RawKey) -> tuple[int, int, int, int]:
        """This record's effect on one summary key."""
        views = duration = likes = dislikes = 0
        for vector, sign in ((self.new, 1), (self.old, -1)):
            if vector is not None and key in _keys_of(vector):
                views += sign * vector[2]
                duration += sign * vector[3]
                likes += sign * vector[4]
                dislikes += sign * vector[5]
        return views, duration, likes, dislikes

    def summary_keys(self) -> set[RawKey]:
        found: set[RawKey] = set()
        for vector in (self.new, self.old):
            if vector is not None:
                found.update(_keys_of(vector))
        return found


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    sequence_number: str
    reason: str


@dataclass(slots=True)
class KeyDelta:
    """Net delta of one summary key over a batch, and which records contributed (in order)."""

    views: int = 0
    duration: int = 0
    likes: int = 0
    dislikes: int = 0
    records: list[int] = field(default_factory=list)  # indices into Batch.records

    def counters(self) -> Counters:
        return Counters(self.views, self.duration, self.likes, self.dislikes)


@dataclass(slots=True)
class Batch:
    received: int
    records: list[StreamRecord]  # records with an effect, in sequence order
    #: per summary key, the records that change it (a record whose effect on a key is zero,
    #: like an unchanged vote re-put, is not attached to it: applying or skipping it is the
    #: same, so a key with only such records is not written)
    keys: dict[RawKey, KeyDelta]
    skipped: list[SkippedRecord]  # invalid or not of this function's type (with reason)
    oldest_created: float | None

    def sum_delta(self, key: RawKey, indices: Iterable[int]) -> Counters:
        views = duration = likes = dislikes = 0
        for index in indices:
            dv, dd, dl, dx = self.records[index].delta_for(key)
            views += dv
            duration += dd
            likes += dl
            dislikes += dx
        return Counters(views, duration, likes, dislikes)


def _keys_of(vector: Vector) -> tuple[RawKey, RawKey]:
    return (VIDEO, vector[1]), (USER, vector[0])


def summary_key(key: RawKey) -> SummaryKey:
    return SummaryKey(SummaryKind(key[0]), key[1])


#: An ApproximateCreationDateTime above this is in milliseconds (in seconds it would be the
#: year 5138; in milliseconds it is 1973): Lambda's DynamoDB events carry epoch seconds, other
#: sources of the same record shape (Kinesis Data Streams for DynamoDB) carry milliseconds.
MILLISECONDS_ABOVE: Final = 1e11


def _epoch(value: object) -> float | None:
    """Epoch seconds of ApproximateCreationDateTime; None when it is not a plausible time.
    Lambda sends epoch seconds (a JSON number); a numeric string is tolerated, milliseconds
    are converted, anything else (not finite, not positive, beyond milliseconds) is unknown."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    if number > MILLISECONDS_ABOVE:
        number /= 1000.0
    return number if number <= MILLISECONDS_ABOVE else None


def parse_sequence_number(text: object) -> int:
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        raise MalformedEvent(f"record without a valid SequenceNumber: {str(text)[:60]!r}")
    return int(text)


def parse_batch(raw_records: Sequence[Mapping[str, Any]], item_type: ItemType) -> Batch:
    """Parse and merge one batch. Raises ``MalformedEvent`` only for a record that has no
    sequence number (it cannot be skipped or retried individually)."""
    records: list[StreamRecord] = []
    keys: dict[RawKey, KeyDelta] = {}
    skipped: list[SkippedRecord] = []
    oldest: float | None = None
    previous_seq = -1
    in_order = True
    # Bind hot names locally: this loop runs once per record.
    vector_of = contribution_vector
    get_delta = keys.get
    for raw in raw_records:
        try:
            ddb = raw["dynamodb"]
            text = ddb["SequenceNumber"]
        except (KeyError, TypeError):
            raise MalformedEvent("record without dynamodb.SequenceNumber") from None
        if text.__class__ is str and text.isdigit() and text.isascii():
            seq = int(text)
        else:
            seq = parse_sequence_number(text)
        if seq <= previous_seq:
            in_order = False
        previous_seq = seq
        created = ddb.get("ApproximateCreationDateTime")
        if created is not None:
            created = _epoch(created)
            if created is not None and (oldest is None or created < oldest):
                oldest = created

        reason: str | None = None
        try:
            new = vector_of(ddb.get("NewImage"), item_type)
        except InvalidItem as err:
            new, reason = None, f"NewImage: {err.reason}"
        try:
            old = vector_of(ddb.get("OldImage"), item_type)
        except InvalidItem as err:
            old = None
            reason = f"{reason}; OldImage: {err.reason}" if reason else f"OldImage: {err.reason}"
        if reason is not None:
            skipped.append(SkippedRecord(text, reason))
        if new is None and old is None:
            if reason is None:
                skipped.append(SkippedRecord(text, f"no {item_type} image"))
            continue

        index = len(records)
        record = StreamRecord(seq, text, created, new, old, reason is not None)
        if new is not None and old is not None and (new[0] == old[0] or new[1] == old[1]):
            # A MODIFY touching a summary on both sides: attach it only to the keys it
            # changes (an unchanged vote re-put by the application is no work for anyone).
            effects = [(key, record.delta_for(key)) for key in record.summary_keys()]
            effects = [(key, d) for key, d in effects if d != (0, 0, 0, 0)]
            if not effects:
                continue
            records.append(record)
            for key, (dv, dd, dl, dx) in effects:
                delta = get_delta(key)
                if delta is None:
                    delta = keys[key] = KeyDelta()
                delta.views += dv
                delta.duration += dd
                delta.likes += dl
                delta.dislikes += dx
                delta.records.append(index)
            continue
        records.append(record)
        for vector, sign in ((new, 1), (old, -1)):
            if vector is None:
                continue
            for key in ((VIDEO, vector[1]), (USER, vector[0])):
                delta = get_delta(key)
                if delta is None:
                    delta = keys[key] = KeyDelta()
                delta.views += sign * vector[2]
                delta.duration += sign * vector[3]
                delta.likes += sign * vector[4]
                delta.dislikes += sign * vector[5]
                indices = delta.records
                if not indices or indices[-1] != index:
                    indices.append(index)

    if not in_order:
        return _reparse_in_order(raw_records, item_type)
    return Batch(len(raw_records), records, keys, skipped, oldest)


def _reparse_in_order(raw_records: Sequence[Mapping[str, Any]], item_type: ItemType) -> Batch:
    # Lambda delivers a shard's records in order; tolerate any other order (and a record
    # repeated within one batch) by sorting and de-duplicating. Never taken in practice.
    by_seq: dict[int, Mapping[str, Any]] = {}
    for raw in raw_records:
        by_seq.setdefault(parse_sequence_number(raw["dynamodb"]["SequenceNumber"]), raw)
    batch = parse_batch([by_seq[seq] for seq in sorted(by_seq)], item_type)
    batch.received = len(raw_records)
    return batch
