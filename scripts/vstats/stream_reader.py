"""The one reader of the table's stream, for every tool (repair, redrive, ``reconcile --live``,
the benchmark): the shards from ``video_stats.streams.describe_shards``, each read with
GetShardIterator / GetRecords up to a bound (docs/design.md §9, "Repair and live drift").

When a shard's read ends, and why (``ShardRead.ended``):

* ``closed``: GetRecords returned no ``NextShardIterator``. The Streams API reference: "If set
  to null, the shard has been closed and the requested iterator will not return any more
  data." A closed shard is always read to here, whatever its empty pages.
* ``bound``: a record past the bound was read (a sequence number above ``Bound.seq``, or a
  creation time after ``Bound.time``), or the record at ``Bound.seq`` itself.
* ``cap``: an open shard showed no record past the bound within the safety cap
  (``StreamTiming.open_shard_seconds`` of polling, and ``StreamTiming.max_pages``). An empty
  page proves nothing: GetRecords "returns an empty list" when "there are no stream records
  available in the portion of the shard that the iterator points to. Note that it might take
  multiple calls to get to a portion of the shard that contains stream records." So the
  number of empty pages never ends a read; only the cap does, and the result says so
  (``StreamRead.capped``).
* ``trimmed``: the shard's records are gone (TrimmedDataAccessException / ResourceNotFound).

Known tips. AWS does not bound how many empty pages lie before a shard's records, so a read
ended by the time cap may have left records unread. Where the caller knows a record exists
(``at_least``: a sequence number some summary's mark holds, since the handler applied it, or a
failed range's end), the time cap does not apply below it: that read ends at the bound, at the
shard's close, at a record at or past the known tip and then by the rules above, or at the page
cap. A read that the page cap ends below its known tip, or before a closed shard's end, is
*short* (``ShardRead.short``, ``StreamRead.short``): the tools write nothing from it
(docs/design.md §9). A capped read keeps GetRecords' next iterator, and ``read_to_tips`` goes
on from there, so a later read does not walk the same empty pages again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from botocore.exceptions import ClientError
from video_stats.lineage import Shard
from video_stats.model import AttributeMap
from video_stats.streams import describe_shards

GONE_CODES: Final = ("TrimmedDataAccessException", "ResourceNotFoundException")
EXPIRED: Final = "ExpiredIteratorException"
PAGE_LIMIT: Final = 1000  # GetRecords' largest page
MAX_PAGES: Final = 100_000  # a safety cap for closed shards too (1e8 records at most)
READERS: Final = 8  # shards read at once (GetRecords' limits are per shard)
_Job = TypeVar("_Job")


@dataclass(frozen=True, slots=True)
class StreamTiming:
    """How the tools read the stream after a read of the table.

    ``delay``: how long to let the stream catch up with the read; ``margin``: how far past the
    read's time to take records (clock skew, creation times rounded to the second);
    ``open_shard_seconds``: the safety cap of an open shard that shows no record past the bound
    (a quiet shard never does), not applied below a known tip; ``poll_seconds``: the pause
    after an empty page (GetRecords allows 5 calls per second per shard); ``max_pages``: the
    page cap of one shard's read, for every shard."""

    delay: float
    margin: float
    open_shard_seconds: float
    poll_seconds: float
    max_pages: int = MAX_PAGES


AWS_TIMING = StreamTiming(delay=1.0, margin=5.0, open_shard_seconds=10.0, poll_seconds=0.25)
LOCAL_TIMING = StreamTiming(delay=0.1, margin=1.0, open_shard_seconds=1.5, poll_seconds=0.05)


@dataclass(frozen=True, slots=True)
class StreamRecord:
    shard_id: str
    seq: int
    identity: tuple[str, str]  # (PK, SK) of the item
    new: AttributeMap | None
    old: AttributeMap | None
    created: float | None = None  # ApproximateCreationDateTime, epoch seconds
    raw: Mapping[str, Any] | None = field(default=None, compare=False)  # as GetRecords gave it


@dataclass(frozen=True, slots=True)
class Bound:
    """Where a read of an open shard may end: at the record with sequence number ``seq`` (or
    the first above it), or at the first record created after ``time`` (epoch seconds)."""

    seq: int | None = None
    time: float | None = None

    def passed_by(self, record: StreamRecord) -> bool:
        """The record lies beyond the bound (it is not part of the read)."""
        if self.seq is not None and record.seq > self.seq:
            return True
        return self.time is not None and record.created is not None and record.created > self.time

    def reached_by(self, record: StreamRecord) -> bool:
        """The record is the bound's last one (the read ends after it)."""
        return self.seq is not None and record.seq == self.seq


@dataclass(slots=True)
class ShardRead:
    shard: Shard
    records: list[StreamRecord] = field(default_factory=list)
    ended: str = "closed"  # closed | bound | cap | trimmed
    pages: int = 0
    empty_pages: int = 0
    at_least: int | None = None  # the known tip the read had to reach (module docstring)
    short: bool = False  # ended at the page cap below the known tip or a closed shard's end
    iterator: str | None = None  # where a capped read stopped (GetRecords' next iterator)
    reached: int | None = None  # the last sequence number read (this read or the one before)

    def describe_short(self) -> str:
        """One line for an operator: which shard, how far it was read, how far it reaches."""
        where = "nothing" if self.reached is None else f"sequence number {self.reached}"
        tip = "its end (closed)" if self.at_least is None else f"{self.at_least}"
        return (
            f"shard {self.shard.shard_id} was read to {where} only ({self.pages:,} pages, the "
            f"page cap), short of {tip}, which the stream is known to hold"
        )


@dataclass(slots=True)
class StreamRead:
    shards: list[ShardRead] = field(default_factory=list)

    @property
    def records(self) -> list[StreamRecord]:
        return [record for read in self.shards for record in read.records]

    @property
    def capped(self) -> list[ShardRead]:
        """Open shards read to the safety cap, not to a record past the bound."""
        return [read for read in self.shards if read.ended == "cap"]

    @property
    def short(self) -> list[ShardRead]:
        """Shards read to the page cap short of a record known to exist: nothing may be
        written from this read (module docstring)."""
        return [read for read in self.shards if read.short]

    @property
    def pages(self) -> int:
        return sum(read.pages for read in self.shards)


def created_at(ddb: Mapping[str, Any]) -> float | None:
    """ApproximateCreationDateTime as epoch seconds (boto3 gives a datetime)."""
    value = ddb.get("ApproximateCreationDateTime")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


def parse_record(shard_id: str, raw: Mapping[str, Any]) -> StreamRecord:
    ddb = raw.get("dynamodb", {})
    keys = ddb.get("Keys", {})
    return StreamRecord(
        shard_id=shard_id,
        seq=int(ddb["SequenceNumber"]),
        identity=(str(keys.get("PK", {}).get("S")), str(keys.get("SK", {}).get("S"))),
        new=ddb.get("NewImage"),
        old=ddb.get("OldImage"),
        created=created_at(ddb),
        raw=raw,
    )


def read_shard(
    client: Any,
    stream_arn: str,
    shard: Shard,
    *,
    bound: Bound,
    timing: StreamTiming,
    at: int | None = None,
    after: int | None = None,
    at_least: int | None = None,
    iterator: str | None = None,
) -> ShardRead:
    """One shard from TRIM_HORIZON (or ``at`` / ``after`` a sequence number, or on from a
    capped read's ``iterator``) to its end (closed) or its bound (open); below ``at_least``,
    a record known to exist, no time cap (see the module's docstring). ``ClientError`` of a
    trimmed range is raised only when a position (``at``/``after``) was asked for; otherwise
    ``ended`` says so."""
    read = ShardRead(shard, at_least=at_least, reached=after)

    def below_tip() -> bool:
        return at_least is not None and (read.reached is None or read.reached < at_least)

    def capped(where: str) -> ShardRead:
        read.ended, read.iterator = "cap", where
        read.short = shard.closed or below_tip()
        return read

    position: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
    if at is not None:
        position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": str(at)}
    elif after is not None:
        position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": str(after)}
    kept = iterator is not None
    if iterator is None:
        try:
            iterator = client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard.shard_id, **position
            ).get("ShardIterator")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if at is None and after is None and code in GONE_CODES:
                read.ended = "trimmed"
                return read
            raise
    started = time.monotonic()
    while iterator:
        if read.pages >= timing.max_pages:
            return capped(iterator)
        try:
            response = client.get_records(ShardIterator=iterator, Limit=PAGE_LIMIT)
        except ClientError as exc:
            # "A shard iterator expires 15 minutes after it is returned to the requester"
            # (GetShardIterator, Streams API reference): a kept one starts from the position.
            if not kept or exc.response.get("Error", {}).get("Code") != EXPIRED:
                raise
            return read_shard(
                client,
                stream_arn,
                shard,
                bound=bound,
                timing=timing,
                at=at,
                after=after,
                at_least=at_least,
            )
        kept = False
        read.pages += 1
        page = response.get("Records") or []
        for raw in page:
            record = parse_record(shard.shard_id, raw)
            if bound.passed_by(record):
                read.ended = "bound"
                return read
            read.records.append(record)
            read.reached = record.seq
            if bound.reached_by(record):
                read.ended = "bound"
                return read
        iterator = response.get("NextShardIterator")
        if iterator and not page:
            read.empty_pages += 1
            # The safety cap: only an open shard waits for a record past its bound, and not
            # below a record known to exist (its tip).
            waited = time.monotonic() - started >= timing.open_shard_seconds
            if (
                not shard.closed
                and waited
                and not below_tip()
                and (bound.time is None or time.time() >= bound.time)
            ):
                return capped(iterator)
            time.sleep(timing.poll_seconds)
    read.ended = "closed"
    return read


def read_stream(
    client: Any,
    stream_arn: str,
    *,
    bound: Bound,
    timing: StreamTiming,
    shards: Iterable[Shard] | None = None,
    after: Mapping[str, int] | None = None,
    at_least: Mapping[str, int] | None = None,
    iterators: Mapping[str, str] | None = None,
) -> StreamRead:
    """Every shard of the stream (``describe_shards``; in the order DynamoDB lists them,
    parents before their children), each from TRIM_HORIZON or after ``after[shard id]``
    (or on from ``iterators[shard id]``), with its known tip ``at_least[shard id]``, side by
    side (``_side_by_side``)."""
    listed = list(shards) if shards is not None else describe_shards(client, stream_arn)

    def one(shard: Shard) -> ShardRead:
        key = shard.shard_id
        return read_shard(
            client,
            stream_arn,
            shard,
            bound=bound,
            timing=timing,
            after=(after or {}).get(key),
            at_least=(at_least or {}).get(key),
            iterator=(iterators or {}).get(key),
        )

    return StreamRead(_side_by_side(one, listed))


def read_to_tips(
    client: Any,
    stream_arn: str,
    earlier: StreamRead,
    tips: Mapping[str, int],
    *,
    timing: StreamTiming,
    shards: Iterable[Shard],
    past: Bound | None = None,
) -> StreamRead:
    """``earlier``, with each open shard read on to its known tip (``tips``: a record the
    stream is known to hold, so no time cap applies) and no further, and each shard that has
    closed since read on to its end. No time bound: what a tool reads right after the
    summaries it will write, so the time from their read to the write stays short
    (``target_reads.key_targets``); a shard that has closed may be a finished parent whose
    records a summary counts through a descendant's mark. A shard already read to its tip,
    or to its end, costs no call. ``past``: every open shard is also read on to that bound
    (a summary holds records no tip names: a mark of the whole stream)."""
    before = {read.shard.shard_id: read for read in earlier.shards}
    listed = list(shards)
    jobs: list[tuple[Shard, Bound, int | None, ShardRead | None]] = []
    for shard in listed:
        old = before.get(shard.shard_id)
        if old is not None and old.ended in ("closed", "trimmed"):
            continue
        reached = None if old is None else old.reached
        tip = tips.get(shard.shard_id)
        if shard.closed:
            jobs.append((shard, Bound(), tip, old))
        elif past is not None:
            jobs.append((shard, past, tip, old))
        elif tip is not None and (reached is None or reached < tip):
            jobs.append((shard, Bound(seq=tip), tip, old))
    if not jobs:
        return StreamRead(list(earlier.shards))

    def one(job: tuple[Shard, Bound, int | None, ShardRead | None]) -> ShardRead:
        shard, bound, tip, old = job
        kept = old.iterator if old is not None and old.ended == "cap" else None
        return read_shard(
            client,
            stream_arn,
            shard,
            bound=bound,
            timing=timing,
            # With a kept iterator, where a restart after its expiry begins, and how far the
            # shard was read (so the time cap applies again once past the tip).
            after=None if old is None else old.reached,
            at_least=tip,
            iterator=kept,
        )

    fresh = _side_by_side(one, jobs)
    listed_ids = {shard.shard_id for shard in listed}
    order = listed + [
        read.shard for read in earlier.shards if read.shard.shard_id not in listed_ids
    ]
    return _merged(order, before, fresh)


def _side_by_side(read: Callable[[_Job], ShardRead], jobs: Sequence[_Job]) -> list[ShardRead]:
    """``read`` of each job, shards side by side (boto3 clients are thread-safe; GetRecords'
    limits are per shard), so quiet open shards wait for their safety cap together."""
    if len(jobs) <= 1:
        return [read(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(READERS, len(jobs))) as pool:
        return list(pool.map(read, jobs))


def _merged(
    order: Iterable[Shard], before: Mapping[str, ShardRead], fresh: Iterable[ShardRead]
) -> StreamRead:
    """One read per shard, in ``order``: an earlier read's records followed by a fresh read's
    (the fresh read alone when its shard's records were trimmed meanwhile); a shard with only
    one of the two keeps that one, a shard with neither is left out."""
    merged = {read.shard.shard_id: read for read in fresh}
    result = StreamRead()
    for shard in order:
        new, old = merged.get(shard.shard_id), before.get(shard.shard_id)
        if new is None or old is None:
            if (kept := new or old) is not None:
                result.shards.append(kept)
            continue
        records = (old.records if new.ended != "trimmed" else []) + new.records
        result.shards.append(replace(new, records=records))
    return result
