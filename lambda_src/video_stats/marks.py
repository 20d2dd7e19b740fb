"""Exactly-once marks: which stream records a summary item already holds.

Why per shard, and where the shard comes from
---------------------------------------------
Stream sequence numbers are unique and increase *within a shard*; nothing orders records of
different shards relative to each other's processing. A summary receives records from many
shards at once: a video summary is fed by the views of every user, and ``PK = USER#<userId>``
spreads those items over every partition, hence every shard, and Lambda processes the shards
concurrently. So a single "highest sequence number applied" per summary would wrongly suppress
an older record of a slower shard. One high-water mark per (summary, function, shard) is exact:

* Lambda delivers one shard's records in order, one batch at a time per shard (parallelization
  factor 1), and checkpoints only after a batch succeeds or before the lowest reported
  ``batchItemFailures`` sequence number. "Records are always processed in order the first time;
  if processed more than once, they might be processed out of order" (Lambda guide,
  services-ddb-windows). So when a record of shard S for summary K arrives for the first time,
  every earlier record of S for K has been applied (or is in this same batch), and a record at
  or below K's mark for S has been applied before: it is a duplicate.
* Each summary update is one conditional UpdateItem that adds the merged delta of K's records in
  the batch *and* sets the mark to the last of them: both happen, or neither. It is conditional
  on the mark being below the first of those records (normal path, no read). If the condition
  fails (a retry, a duplicate delivery, a crash after some keys were written), the current mark
  is read (``ReturnValuesOnConditionCheckFailure=ALL_OLD``, so usually without a read request),
  only K's records above it are re-merged, and the update is retried conditional on the mark
  being exactly that value.

A DynamoDB stream record does not carry its shard id (a Kinesis record's ``eventID`` does; a
DynamoDB one is an opaque id). The one documented place Lambda hands the shard id to the
function is the *tumbling window* event: with ``TumblingWindowInSeconds`` > 0 on the mapping the
event has a top-level ``shardId`` (and ``window``/``state``; the response must then carry a
``state``). A child shard is a new shard id with its own mark; the parent's mark is never
compared with it, so nothing depends on sequence numbers growing across shards. Without
``shardId`` the handler falls back to one mark per stream (tag of ``eventSourceARN``), which is
exact only while the stream has one open shard at a time (a small table, moto); it logs a
warning once per container.

Bounded size
------------
A mark is ``"<2-digit length><sequence number>|<epoch>"``: the length prefix makes plain string
comparison (all DynamoDB can do in a condition) order sequence numbers of any length, and a
longer suffix only ever compares greater, never less. The epoch is the creation time of the
record that set it. Stream records live 24 h, so a mark whose record is older than the retention
(25 h by default) can protect nothing: it is removed, conditional on its value, either inside a
later update of the same item (the item is returned by the update itself, ``ReturnValues=
ALL_NEW``, at no write cost) or, once several have piled up, by one extra UpdateItem. Mark names
carry an 8-character hash of the shard id, not the 40-70 character id, to keep the item (its
write units, and its copy in GSI1) small.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from video_stats.model import MARK_PREFIX

DEFAULT_RETENTION_SECONDS: Final = 25 * 3600


def shard_tag(shard_identity: str) -> str:
    """Short stable tag of a shard id (or, as a fallback, a stream ARN)."""
    digest = hashlib.blake2b(shard_identity.encode("utf-8"), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def mark_prefix(function: str) -> str:
    return f"{MARK_PREFIX}{function}#"


def mark_name(function: str, tag: str) -> str:
    """``applied#<views|votes>#<shard tag>``."""
    return f"{mark_prefix(function)}{tag}"


def encode_seq(seq: int) -> str:
    """Order-preserving string form of a sequence number: its length, then its digits."""
    digits = str(seq)
    return f"{len(digits):02d}{digits}"


def encode_mark(seq: int, created: float | None) -> str:
    epoch = int(created if created is not None else time.time())
    return f"{encode_seq(seq)}|{epoch}"


@dataclass(frozen=True, slots=True)
class Mark:
    seq: int
    epoch: int | None


def decode_mark(value: str) -> Mark:
    """Inverse of ``encode_mark``; raises ValueError for anything else."""
    head, _, tail = value.partition("|")
    if len(head) < 3 or not head.isascii() or not head.isdigit():
        raise ValueError(f"not a mark: {value[:80]!r}")
    length = int(head[:2])
    digits = head[2:]
    if len(digits) != length:
        raise ValueError(f"not a mark: {value[:80]!r}")
    epoch = int(tail) if tail.isascii() and tail.isdigit() else None
    return Mark(int(digits), epoch)


def mark_value(item: Mapping[str, Mapping[str, Any]] | None, name: str) -> str | None:
    if not item:
        return None
    attr = item.get(name)
    value = attr.get("S") if isinstance(attr, Mapping) else None
    return value if isinstance(value, str) else None


def stale_marks(
    item: Mapping[str, Mapping[str, Any]] | None,
    function: str,
    keep: str,
    now: float,
    retention_seconds: float,
) -> dict[str, str]:
    """This function's marks on ``item``, other than ``keep``, whose record is older than the
    retention: {name: value} (the value conditions their removal)."""
    if not item:
        return {}
    prefix = mark_prefix(function)
    stale: dict[str, str] = {}
    for name, attr in item.items():
        if name == keep or not name.startswith(prefix):
            continue
        value = attr.get("S")
        if not isinstance(value, str):
            continue
        try:
            epoch = decode_mark(value).epoch
        except ValueError:
            continue
        if epoch is not None and now - epoch > retention_seconds:
            stale[name] = value
    return stale
