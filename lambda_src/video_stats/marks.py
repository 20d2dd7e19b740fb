"""Exactly-once marks: which stream records a summary item already holds.

The argument (docs/design.md §8)
--------------------------------
Stream sequence numbers are unique and increase *within a shard*; nothing orders records of
different shards. A video summary is fed by every partition's shards at once, so a single
"highest sequence number applied" per summary would wrongly suppress a slower shard's records.
Each summary item therefore keeps one *mark* per (function, shard): the highest sequence number
of that shard whose effect the item holds. Invariant P, per (item K, function, shard S):

    the records of S that K has applied are exactly S's records for K at or below K's mark.

* Each summary update is one conditional UpdateItem that adds the merged delta of K's records
  in the batch *and* sets the mark to the last of them: both happen or neither. It is
  conditional on the mark being below the first of those records (normal path, no read). If
  the condition fails (a retry, a duplicate, a crash after some keys were written), DynamoDB
  returns the item (``ReturnValuesOnConditionCheckFailure=ALL_OLD``); only K's records above
  its mark are re-merged and the update is retried conditional on the mark being exactly that
  value. A key whose records net to zero is still written (mark only): a skipped record that
  the mark does not cover would break P under an out-of-order redelivery (below).
* P is kept by every write as long as the batch holds *every* record of K between K's mark and
  the batch's last record of K. A batch that starts at or below the shard's checkpoint does:
  Lambda checkpoints past a record only after every key applied it (``batchItemFailures`` =
  the lowest record a failed key still needs, see ``apply``). "Records are always processed in
  order the first time. If records are processed more than once, they might be processed out
  of order" (Lambda guide, DynamoDB tumbling windows): first deliveries start at the
  checkpoint; a redelivery (duplicate, retry from an older checkpoint, replay of a whole
  shard), in any order and any grouping, holds records the function already acknowledged:
  each is at or below every mark it affects, so it is suppressed, and any unacknowledged
  records it carries come after all acknowledged ones. **What P does not survive:** a range
  of a shard delivered while an *earlier, unacknowledged* range of that shard is still
  pending (e.g. the second half of a bisected batch before the first half succeeded). Its
  writes move marks past records not yet applied, which are then suppressed. The handler
  detects the case it can see — a batch of shard S that starts above the record the previous
  invocation asked Lambda to resume S from (carried in the window state) — and counts it
  (metric ``RecordsOutOfOrder``, an error log; ``make reconcile --repair`` restores the
  counters).

Where the shard comes from
--------------------------
A DynamoDB stream record does not carry its shard id. The one documented place Lambda hands
it to the function is the *tumbling window* event (``shardId``), so the mappings have a window
and the handler refuses an event without ``shardId`` (``handlers``).

Lineage pruning and the replay guard
------------------------------------
A shard closes every few hours and a child continues its key range; DynamoDB's guide: "an
application must always process a parent shard before it processes a child shard" (DynamoDB
developer guide, "DynamoDB Streams" / shard lineage), and Lambda reads a shard strictly in
order and its children only after it (Lambda FAQ: records "are strictly serialized, per
shard"). So when a child C writes summary K, every record of C's ancestors has been applied to
K (or acknowledged): their marks can protect only against a *replay* of an ancestor (a
re-created mapping starting at TRIM_HORIZON, a moved position). C's every write therefore
REMOVEs the marks of C's nearest ancestors (a REMOVE of an absent attribute is free), and
every write of a shard S is conditional on the *absence* of the marks of S's nearest
descendants: a record of S for an item that holds a descendant's mark is a replay and is
treated as applied. "Nearest": at most ``handlers.MAX_NAMED_ANCESTORS`` /
``MAX_NAMED_DESCENDANTS`` generations, more than a day of shards on AWS, so that one update's
expression stays bounded however long a lineage grows; a farther ancestor's mark found on the
returned item is removed like a stale mark (``stale_marks(obsolete=...)``). The guard's bound
means a replay of a shard more than 16 generations (~2.5 days on AWS) behind the item's newest
mark of its lineage is not recognised; Lambda cannot deliver records that old (24 h).
A hot summary then holds one mark per function and open lineage (per partition), not one per
shard of the last day. The lineage comes from DescribeStream (``lineage``), cached per container.
Lambda's guide does not state parent-before-child for DynamoDB sources in so many words, so
``LINEAGE_PRUNING=false`` (``handlers``) switches pruning and the guard off.

Unprotected: a replay of S reaching a summary that holds no mark of S (pruned) and whose
descendants' marks the handler does not know — the container's lineage snapshot predates S's
closing and is younger than its refresh interval (``lineage.REFRESH_SECONDS``), i.e. a replay
of S within that interval after S closed; or the descendants' marks expired (see retention).

Retention
---------
A mark whose last record is older than the mapping's ``MaximumRecordAgeInSeconds`` can protect
nothing: Lambda no longer delivers such records (it sends them to the on-failure queue). The
function gets ``MARK_RETENTION_SECONDS`` = that age + a margin (``modules/stream_function``);
older marks of other shards are removed, conditional on their value, inside a later update
of the item (``ReturnValues=ALL_NEW`` shows them at no cost). The cost of a shorter retention:
a mapping re-created with a *longer* record age (or a stream position moved back past the
retention) replays records whose marks are gone, and counts them twice; re-creating it with the
same age replays only records the marks still cover (each costs a rejected conditional write).

Format (compact)
----------------
Name: ``@`` + a function code (``v`` views, ``o`` votes) + a 6-character tag of the shard id
(36 bits of BLAKE2b; two shards feeding one item within the retention collide with odds of
about n²/2³⁷ for n shards — 10⁻⁸ for 50). Value (a string, so DynamoDB can compare it in a
condition): one character giving the number of digits, the sequence number in base 64 over an
alphabet in ASCII order (so plain string order is numeric order, for any length up to AWS's
40 decimal digits), then the record's hour (epoch hours mod 4096, 2 characters). A 21-digit
sequence number gives a 15-byte value and a 23-byte mark, against 63 bytes before.

The previous format (``applied#<views|votes>#<8-char tag>`` = ``<2-digit length><digits>|
<epoch>``) is still read: a live stack upgrades without double counting. A shard's write
compares against both of its names and removes the old one in the same update (conversion);
ancestors' and descendants' old names are dropped and guarded like the new ones; stale old
marks expire like new ones. After one retention period no old-format mark can matter.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from video_stats.model import LEGACY_MARK_PREFIX, MARK_PREFIX, is_mark_attribute

#: Fallback when the function gets no MARK_RETENTION_SECONDS: the stream's 24 h and a margin.
DEFAULT_RETENTION_SECONDS: Final = 25 * 3600
FUNCTION_CODES: Final[dict[str, str]] = {"views": "v", "votes": "o"}
TAG_LENGTH: Final = 6
#: 64 characters in ASCII order: string comparison of encoded numbers is numeric comparison.
DIGITS: Final = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_VALUE: Final = {c: i for i, c in enumerate(DIGITS)}
HOUR_MODULUS: Final = 64 * 64  # two characters; ages are taken modulo ~170 days
#: A stored hour up to this many hours *after* the reader's clock is a fresh mark (age 0): the
#: record's time comes from DynamoDB's clock, the reader's from the function's, and a second of
#: skew across an hour boundary must not read as a record 4,095 hours old (docs/design.md §8).
FUTURE_HOURS: Final = 24


def legacy_shard_tag(shard_identity: str) -> str:
    """The 8-character tag of the previous mark format."""
    digest = hashlib.blake2b(shard_identity.encode("utf-8"), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def shard_tag(shard_identity: str) -> str:
    """Short stable tag of a shard id (the first 36 bits of the legacy tag)."""
    return legacy_shard_tag(shard_identity)[:TAG_LENGTH]


def mark_prefix(function: str) -> str:
    return f"{MARK_PREFIX}{FUNCTION_CODES[function]}"


def legacy_mark_prefix(function: str) -> str:
    return f"{LEGACY_MARK_PREFIX}{function}#"


def mark_name(function: str, tag: str) -> str:
    """``@v<tag>`` / ``@o<tag>``."""
    return f"{mark_prefix(function)}{tag}"


@dataclass(frozen=True, slots=True)
class ShardMarks:
    """Both names a shard's mark may have on an item (current and previous format)."""

    current: str
    legacy: str

    def names(self) -> tuple[str, str]:
        return (self.current, self.legacy)


def shard_marks(function: str, shard_id: str) -> ShardMarks:
    return ShardMarks(
        mark_name(function, shard_tag(shard_id)),
        f"{legacy_mark_prefix(function)}{legacy_shard_tag(shard_id)}",
    )


def is_mark_name(name: str) -> bool:
    """True for a mark of either format (``model.is_mark_attribute``)."""
    return is_mark_attribute(name)


def names_of(function: str, shard_ids: Iterable[str]) -> tuple[str, ...]:
    """Every mark name (both formats) of these shards, for ``function``."""
    return tuple(name for shard in shard_ids for name in shard_marks(function, shard).names())


# --- values -----------------------------------------------------------------------------------


def _base64(number: int) -> str:
    if number == 0:
        return DIGITS[0]
    out = []
    while number:
        number, digit = divmod(number, 64)
        out.append(DIGITS[digit])
    return "".join(reversed(out))


def encode_seq(seq: int) -> str:
    """Order-preserving string form of a sequence number: its length, then its digits."""
    digits = _base64(seq)
    return DIGITS[len(digits)] + digits


def hour_of(created: float | None) -> int:
    return int((created if created is not None else time.time()) // 3600)


def encode_mark(seq: int, created: float | None) -> str:
    """The mark of a record: ``encode_seq`` + its creation hour (mod 4096, 2 characters)."""
    hour = hour_of(created) % HOUR_MODULUS
    return encode_seq(seq) + DIGITS[hour // 64] + DIGITS[hour % 64]


def legacy_encode_seq(seq: int) -> str:
    digits = str(seq)
    return f"{len(digits):02d}{digits}"


@dataclass(frozen=True, slots=True)
class Mark:
    seq: int
    #: Latest epoch second the record can have been created at (None: unknown).
    created_by: float | None


def decode_mark(value: str, now: float | None = None) -> Mark:
    """Either format; raises ValueError for anything else. ``now`` resolves the hour (mod
    4096) of a compact mark to an epoch: the latest such hour not after ``now``, unless the
    hour is at most ``FUTURE_HOURS`` ahead of ``now`` (a skewed clock: the mark is fresh)."""
    if "|" in value:  # the previous format always has "|<epoch>"; the compact one never
        return _decode_legacy(value)
    if len(value) < 4 or value[0] not in _VALUE:
        raise ValueError(f"not a mark: {value[:80]!r}")
    length = _VALUE[value[0]]
    digits, hour = value[1 : 1 + length], value[1 + length :]
    if len(digits) != length or length == 0 or len(hour) != 2:
        raise ValueError(f"not a mark: {value[:80]!r}")
    try:
        seq = 0
        for char in digits:
            seq = seq * 64 + _VALUE[char]
        stored = _VALUE[hour[0]] * 64 + _VALUE[hour[1]]
    except KeyError:
        raise ValueError(f"not a mark: {value[:80]!r}") from None
    current = hour_of(now)
    ahead = (stored - current) % HOUR_MODULUS
    if ahead <= FUTURE_HOURS:
        return Mark(seq, float((current + ahead + 1) * 3600))
    age_hours = (current - stored) % HOUR_MODULUS
    return Mark(seq, float((current - age_hours + 1) * 3600))


def _decode_legacy(value: str) -> Mark:
    head, _, tail = value.partition("|")
    if len(head) < 3 or not head.isascii() or not head.isdigit():
        raise ValueError(f"not a mark: {value[:80]!r}")
    length = int(head[:2])
    digits = head[2:]
    if len(digits) != length:
        raise ValueError(f"not a mark: {value[:80]!r}")
    epoch = float(tail) + 1 if tail.isascii() and tail.isdigit() else None
    return Mark(int(digits), epoch)


def covered_seq(item: Mapping[str, Mapping[str, Any]] | None, marks: ShardMarks) -> int:
    """The highest sequence number the item holds for this shard (-1: none); raises
    ValueError for a corrupt mark (the key then fails rather than guess)."""
    covered = -1
    for name in marks.names():
        value = mark_value(item, name)
        if value is not None:
            covered = max(covered, decode_mark(value).seq)
    return covered


def mark_value(item: Mapping[str, Mapping[str, Any]] | None, name: str) -> str | None:
    if not item:
        return None
    attr = item.get(name)
    value = attr.get("S") if isinstance(attr, Mapping) else None
    return value if isinstance(value, str) else None


def stale_marks(
    item: Mapping[str, Mapping[str, Any]] | None,
    function: str,
    keep: Iterable[str],
    now: float,
    retention_seconds: float,
    *,
    obsolete: Collection[str] = (),
) -> dict[str, str]:
    """This function's marks on ``item`` (both formats), other than ``keep``, whose record is
    older than the retention, or that are ``obsolete`` (an ancestor's mark that a write did not
    name): {name: value} (the value conditions their removal)."""
    if not item:
        return {}
    prefixes = (mark_prefix(function), legacy_mark_prefix(function))
    kept = set(keep)
    stale: dict[str, str] = {}
    for name, attr in item.items():
        if name in kept or not name.startswith(prefixes):
            continue
        value = attr.get("S")
        if not isinstance(value, str):
            continue
        if name in obsolete:
            stale[name] = value
            continue
        try:
            created_by = decode_mark(value, now).created_by
        except ValueError:
            continue
        if created_by is not None and now - created_by > retention_seconds:
            stale[name] = value
    return stale
