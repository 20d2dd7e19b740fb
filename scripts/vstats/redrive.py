"""Replay what the on-failure queues hold: make the summaries exact for every batch that Lambda
gave up on, then delete its message (docs/design.md §9).

    python -m vstats.redrive              # every queue of the table's mappings
    python -m vstats.redrive --dry-run    # what it would do and read; nothing written or deleted
    python -m vstats.redrive --json       # counts and one entry per message

A message (Lambda's ``DDBStreamBatchInfo``) names a shard and a sequence range; the records are
still in the stream for 24 h. A run:

1. Receives every message of the table's mappings' SQS on-failure queues and reads each range
   back from the stream. If the stream no longer holds all of it (trimmed, or the shard is
   gone), the message is reported with ``make reconcile ARGS=--repair`` and kept. The range's
   end is a record known to exist, so its read has no time cap (``stream_reader``, known
   tips); a read the page cap ends first is reported "not read to its end yet" and kept for
   the next run.
2. Collects the summary keys the ranges' records touch (for the function whose queue it is, by
   the handlers' own contribution rule, ``vstats.effects``).
3. Makes each of those summaries exact (docs/design.md §9), in one pass for all messages.
4. Only then deletes the messages.

Why it does not re-apply the records through the handler, and how each summary is made
exact instead (the reads of ``vstats.target_reads.key_targets``, the one target computation
of ``vstats.targets``, one conditional write per summary that also raises its mark for the
failed range's shard to the range's end): docs/design.md §9, "Redrive".

Idempotent: a second run, or a run after one killed half-way, finds each touched summary
already equal to its target and its mark at or above the range's end, writes nothing, and
deletes what is left. Messages are deleted only after all their keys are exact; a message
received by a run that died reappears after its visibility timeout (5 minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from video_stats.lineage import Lineage, Shard
from video_stats.marks import covered_seq, encode_mark, mark_value, names_of, shard_marks
from video_stats.model import AttributeMap, Counters, ItemType, SummaryKey
from video_stats.streams import describe_shards

from vstats import cli, deployment
from vstats.drift import Drift
from vstats.effects import FUNCTION_OF_ITEM_TYPE, counted_contribution
from vstats.pipeline import FailureQueue, failure_queues, settled_age, stream_arn_of
from vstats.stream_reader import (
    AWS_TIMING,
    GONE_CODES,
    LOCAL_TIMING,
    Bound,
    StreamRecord,
    StreamTiming,
    read_shard,
)
from vstats.summary_writes import write_target
from vstats.target_reads import KeyTargets, ReadCost, key_targets

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PROG = "redrive"
REPAIR_COMMAND = "make reconcile ARGS=--repair"
VISIBILITY_SECONDS = 300  # a message is hidden from other consumers while it is redriven
MAX_ATTEMPTS = 8  # recomputations of one key whose summary changed under us


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """One message of an on-failure queue."""

    queue_url: str
    message_id: str
    receipt_handle: str
    item_type: ItemType
    shard_id: str
    stream_arn: str
    start: int
    end: int
    size: int
    last_arrival: float | None

    @property
    def function(self) -> str:
        return FUNCTION_OF_ITEM_TYPE[self.item_type]


@dataclass(slots=True)
class BatchOutcome:
    batch: FailedBatch
    status: str  # redriven | trimmed | not-read-yet | would-redrive
    records: int = 0
    keys: list[SummaryKey] = field(default_factory=list)
    rewritten: list[Drift] = field(default_factory=list)  # of its keys (shared with others)
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        b = self.batch
        return {
            "queue": b.queue_url.rsplit("/", 1)[-1],
            "message_id": b.message_id,
            "function": b.function,
            "shard_id": b.shard_id,
            "start_sequence_number": str(b.start),
            "end_sequence_number": str(b.end),
            "batch_size": b.size,
            "status": self.status,
            "records": self.records,
            "keys": [f"{k.kind.value}#{k.id}" for k in self.keys],
            "rewritten": [d.as_dict() for d in self.rewritten],
            "detail": self.detail,
        }


# --- the queues -------------------------------------------------------------------------------


def parse_message(queue: FailureQueue, message: Mapping[str, Any]) -> FailedBatch:
    """ValueError when the body is not an on-failure record of a DynamoDB stream batch."""
    try:
        body = json.loads(message["Body"])
        info = body["DDBStreamBatchInfo"]
        arrival = info.get("approximateArrivalOfLastRecord")
        return FailedBatch(
            queue_url=queue.url,
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            item_type=queue.item_type,
            shard_id=str(info["shardId"]),
            stream_arn=str(info["streamArn"]),
            start=int(info["startSequenceNumber"]),
            end=int(info["endSequenceNumber"]),
            size=int(info.get("batchSize", 0)),
            last_arrival=_epoch(arrival) if arrival else None,
        )
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a DynamoDB stream on-failure record ({exc})") from None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def receive_all(sqs: Any, queue_url: str, visibility: int) -> Iterator[dict[str, Any]]:
    """Every message visible now, each once (received messages stay hidden for ``visibility``
    seconds)."""
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


# --- the stream range -------------------------------------------------------------------------


class Trimmed(Exception):
    """The stream no longer holds the whole range."""


class NotReadYet(Exception):
    """The read of the range ended at the page cap before its end (a record known to exist):
    the message is kept for the next run."""


NOT_READ_YET = "not read to its end yet"


def read_range(
    streams: Any,
    batch: FailedBatch,
    timing: StreamTiming,
    shards: Iterable[Shard] | None = None,
) -> list[StreamRecord]:
    """The records of ``batch``'s shard from its start to its end sequence number (the one
    stream reader, bounded by the range's end, which it is known to reach: no time cap).
    ``shards``: the stream's listing, when the caller has one for many ranges."""
    listed = describe_shards(streams, batch.stream_arn) if shards is None else shards
    shard = next((s for s in listed if s.shard_id == batch.shard_id), None)
    if shard is None:
        raise Trimmed(f"the stream no longer has shard {batch.shard_id}")
    try:
        read = read_shard(
            streams,
            batch.stream_arn,
            shard,
            bound=Bound(seq=batch.end),
            timing=timing,
            at=batch.start,
            at_least=batch.end,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in GONE_CODES:
            raise Trimmed(f"{code}: the stream no longer holds the range") from None
        raise
    records = read.records
    if read.short:
        raise NotReadYet(f"{NOT_READ_YET}: {read.describe_short()}")
    if records and records[0].seq != batch.start:
        raise Trimmed(f"the shard starts at {records[0].seq} now, after the range's start")
    if not records or records[-1].seq != batch.end:
        raise Trimmed(f"the range's end is not in the stream (read ended: {read.ended})")
    return records


def touched_keys(records: Iterable[StreamRecord], item_type: ItemType) -> list[SummaryKey]:
    keys: set[SummaryKey] = set()
    for record in records:
        for image in (record.new, record.old):  # a malformed image is skipped by the handler
            keys |= set(counted_contribution(image, item_type))
    return sorted(keys, key=lambda k: (k.kind.value, k.id))


# --- one summary ------------------------------------------------------------------------------


@dataclass(slots=True)
class KeyResult:
    key: SummaryKey
    drift: Drift | None  # written (dry run: to write); None: the counters were exact
    marks_raised: int
    cost: ReadCost  # what reading its base items took (the last round)
    in_flight: int = 0  # its records left to the handlers (not applied, not in a failed range)
    capped_shards: int = 0  # open shards its round's stream read ended at the cap
    #: Why it was not written: the rounds ran out on stream reads short of a known tip.
    held_back: str = ""


def make_exact(
    client: DynamoDBClient,
    streams: Any,
    table: str,
    touched_by: Mapping[SummaryKey, Sequence[FailedBatch]],
    *,
    stream_arn: str,
    processed_through: Mapping[tuple[str, str], int],
    index_shards: int,
    timing: StreamTiming,
    dry_run: bool,
    settled_age: float | None = None,
    range_ends: Mapping[str, int] | None = None,
    log: Callable[[str], None] = lambda _message: None,
) -> dict[SummaryKey, KeyResult]:
    """Write each key's exact value (``vstats.target_reads``) and raise its marks for the shards
    of the batches that touch it, in one conditional write per key; keys that invocations
    changed under us are recomputed. One pass over the stream per round, for all keys. A
    round whose stream read is short of a known tip writes nothing and the next reads on;
    when the rounds run out so, the keys left come back ``held_back`` (nothing written)."""
    results: dict[SummaryKey, KeyResult] = {}
    pending = list(touched_by)
    earlier: KeyTargets | None = None  # the stream read on from round to round: short rounds
    for attempt in range(1, MAX_ATTEMPTS + 1):
        started = time.monotonic()
        found = key_targets(
            client,
            streams,
            table,
            pending,
            stream_arn=stream_arn,
            timing=timing,
            processed_through=processed_through,
            settled_age=settled_age,
            earlier=earlier,
            range_ends=range_ends,
        )
        earlier = found
        capped = len(found.stream.capped)
        if found.short:
            # Any key may have records in what was not read: none is written from this read.
            reason = f"{NOT_READ_YET}: {found.short[0].describe_short()}"
            log(f"round {attempt}: {reason}; nothing written, reading on")
            if attempt == MAX_ATTEMPTS:
                for key in pending:
                    target = found.targets[key]
                    results[key] = KeyResult(
                        key, None, 0, target.cost, capped_shards=capped, held_back=reason
                    )
                return results
            continue
        changed: list[SummaryKey] = []
        for key in pending:
            target = found.targets[key]
            marks = _raised_marks(target.summary, touched_by[key], target.expected, found.lineage)
            drift = target.drift
            result = KeyResult(
                key,
                drift if target.actual != target.expected else None,
                len(marks),
                target.cost,
                len(target.in_flight),
                capped_shards=capped,
            )
            nothing_to_write = target.actual == target.expected and not marks
            if (
                nothing_to_write
                or dry_run
                or write_target(client, table, drift, index_shards, marks=marks or None)
            ):
                results[key] = result
            else:
                changed.append(key)
        log(
            f"round {attempt}: {len(pending):,} summaries, {len(found.stream.records):,} stream "
            f"records, {len(changed):,} changed under us (recomputed), {capped} open shards "
            f"read to the cap, {time.monotonic() - started:.1f} s"
        )
        if not changed:
            return results
        pending = changed
    raise cli.ToolError(f"{len(pending)} summaries kept changing during the redrive; run it again")


def _raised_marks(
    summary: AttributeMap | None,
    batches: Sequence[FailedBatch],
    target: Counters,
    lineage: Lineage,
) -> dict[str, tuple[str | None, str]]:
    """{mark name: (value read, new value)} for each (function, shard) whose mark on the summary
    is below the end of the last failed range there. None for a summary that does not exist
    and stays zero (nothing to write), nor for a shard whose descendant already marked the
    summary (lineage pruning: its records all count as applied, marks.py)."""
    if summary is None and target.is_zero():
        return {}
    last: dict[tuple[str, str], FailedBatch] = {}
    for batch in batches:
        where = (batch.function, batch.shard_id)
        if where not in last or batch.end > last[where].end:
            last[where] = batch
    raised: dict[str, tuple[str | None, str]] = {}
    for (function, shard_id), batch in last.items():
        if any(mark_value(summary, n) for n in names_of(function, lineage.descendants(shard_id))):
            continue
        marks = shard_marks(function, shard_id)
        try:
            covered = covered_seq(summary, marks)
        except ValueError:  # a corrupt mark: leave it to the handler, which fails the key
            continue
        if covered < batch.end:
            raised[marks.current] = (
                mark_value(summary, marks.current),
                encode_mark(batch.end, batch.last_arrival),
            )
    return raised


# --- the run ----------------------------------------------------------------------------------


@dataclass(slots=True)
class RedriveReport:
    outcomes: list[BatchOutcome] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # message ids that are not batch records
    dry_run: bool = False
    rewritten: list[Drift] = field(default_factory=list)  # distinct summaries (to) rewrite
    marks_raised: int = 0
    #: What the targets read (per round, the last one): the base items of every touched
    #: summary, and the read units DynamoDB reported for them; the largest key.
    reads: ReadCost = field(default_factory=ReadCost)
    in_flight: int = 0  # (summary, record) pairs left to the handlers
    largest: tuple[SummaryKey, ReadCost] | None = None
    capped_shards: int = 0  # open shards the targets' last stream read ended at the cap

    def counts(self) -> dict[str, int]:
        statuses = [o.status for o in self.outcomes]
        return {
            "messages": len(self.outcomes) + len(self.invalid),
            "redriven": statuses.count("redriven"),
            "would_redrive": statuses.count("would-redrive"),
            "trimmed": statuses.count("trimmed"),
            "not_read_yet": statuses.count("not-read-yet"),
            "invalid": len(self.invalid),
            "records": sum(o.records for o in self.outcomes),
            "summaries_checked": len({k for o in self.outcomes for k in o.keys}),
            "summaries_rewritten": len(self.rewritten),
            "marks_raised": self.marks_raised,
            "items_read": self.reads.items,
            "records_in_flight": self.in_flight,
            "capped_shards": self.capped_shards,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "messages": [o.as_dict() for o in self.outcomes],
            "invalid_messages": self.invalid,
            "read_units": round(self.reads.read_units, 1),
            "largest_read": None
            if self.largest is None
            else {
                "summary": f"{self.largest[0].kind.value}#{self.largest[0].id}",
                "items": self.largest[1].items,
                "read_units": round(self.largest[1].read_units, 1),
            },
            "repair_command": REPAIR_COMMAND if self.needs_repair else None,
        }

    @property
    def needs_repair(self) -> bool:
        return any(o.status == "trimmed" for o in self.outcomes)

    @property
    def unfinished(self) -> bool:
        """Messages kept because the stream was not read to what they need yet."""
        return any(o.status == "not-read-yet" for o in self.outcomes)


def redrive(
    target: deployment.Deployment,
    *,
    dry_run: bool = False,
    timing: StreamTiming = AWS_TIMING,
    log: Any = lambda _message: None,
) -> RedriveReport:
    client = target.dynamodb()
    streams = target.client("dynamodbstreams")
    sqs = target.client("sqs")
    stream_arn = stream_arn_of(client, target.table)
    # Records older than this count as applied (their marks may have expired): vstats.targets.
    record_age = settled_age(target.client("lambda"), stream_arn)
    report = RedriveReport(dry_run=dry_run)
    received: list[tuple[FailedBatch, str]] = []  # with the receipt handle, for dry runs
    for queue in failure_queues(target.client("lambda"), sqs, stream_arn):
        for message in receive_all(sqs, queue.url, VISIBILITY_SECONDS):
            try:
                received.append((parse_message(queue, message), message["ReceiptHandle"]))
            except ValueError as exc:
                report.invalid.append(str(message.get("MessageId")))
                log(f"{queue.url}: message {message.get('MessageId')} left alone: {exc}")
    # Every shard range on the queues was processed (applied or given up) by its mapping.
    processed_through: dict[tuple[str, str], int] = {}
    for batch, _ in received:
        where = (batch.function, batch.shard_id)
        processed_through[where] = max(batch.end, processed_through.get(where, batch.end))
    deleted: set[str] = set()  # message ids
    try:
        # 1. Each range back from the stream: the keys it touches (or it is trimmed).
        touched_by: dict[SummaryKey, list[FailedBatch]] = {}
        readable: list[tuple[FailedBatch, int, list[SummaryKey]]] = []
        range_ends: dict[str, int] = {}
        listings: dict[str, list[Shard]] = {}  # one DescribeStream per stream, not per range
        for batch, _ in received:
            if batch.stream_arn not in listings:
                listings[batch.stream_arn] = describe_shards(streams, batch.stream_arn)
            try:
                records = read_range(streams, batch, timing, listings[batch.stream_arn])
            except Trimmed as exc:
                report.outcomes.append(
                    BatchOutcome(batch, "trimmed", detail=f"{exc}: run `{REPAIR_COMMAND}`")
                )
                continue
            except NotReadYet as exc:
                report.outcomes.append(BatchOutcome(batch, "not-read-yet", detail=str(exc)))
                continue
            keys = touched_keys(records, batch.item_type)
            readable.append((batch, len(records), keys))
            # Read back just now: the stream holds its end, a known tip of the shard.
            range_ends[batch.shard_id] = max(batch.end, range_ends.get(batch.shard_id, batch.end))
            for key in keys:
                touched_by.setdefault(key, []).append(batch)
        # 2. Every touched summary exact, in one pass (one stream read per round).
        results = make_exact(
            client,
            streams,
            target.table,
            touched_by,
            stream_arn=stream_arn,
            processed_through=processed_through,
            index_shards=target.index_shards,
            timing=timing,
            dry_run=dry_run,
            settled_age=record_age,
            range_ends=range_ends,
            log=log,
        )
        report.rewritten = [r.drift for r in results.values() if r.drift is not None]
        report.capped_shards = max((r.capped_shards for r in results.values()), default=0)
        for result in results.values():
            report.reads.add(result.cost)
            report.in_flight += result.in_flight
            if report.largest is None or result.cost.items > report.largest[1].items:
                report.largest = (result.key, result.cost)
        report.marks_raised = sum(r.marks_raised for r in results.values())
        # 3. Only now are the messages done with (not those whose keys were held back).
        for batch, records_read, keys in readable:
            held = next((results[k].held_back for k in keys if results[k].held_back), "")
            if held:
                report.outcomes.append(
                    BatchOutcome(
                        batch, "not-read-yet", records=records_read, keys=keys, detail=held
                    )
                )
                continue
            if not dry_run:
                sqs.delete_message(QueueUrl=batch.queue_url, ReceiptHandle=batch.receipt_handle)
                deleted.add(batch.message_id)
            report.outcomes.append(
                BatchOutcome(
                    batch,
                    "would-redrive" if dry_run else "redriven",
                    records=records_read,
                    keys=keys,
                    rewritten=[d for k in keys if (d := results[k].drift) is not None],
                )
            )
        for outcome in report.outcomes:
            b = outcome.batch
            log(f"{b.function} …{b.shard_id[-8:]} {b.start}..{b.end}: {outcome.status}")
    finally:
        # Put back at once what is not done with (a dry run, a range left for --repair or not
        # read to its end yet, a run that stopped): the next run need not wait for the
        # visibility timeout.
        for batch, receipt in received:
            if batch.message_id not in deleted:
                sqs.change_message_visibility(
                    QueueUrl=batch.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
                )
    return report


# --- command line -----------------------------------------------------------------------------


def render(report: RedriveReport) -> list[Any]:
    counts = report.counts()
    if not counts["messages"]:
        return [Text("The failure queues are empty: nothing to redrive.", style="green")]
    table = Table(
        title="failed batches"
        + (" (dry run: nothing written or deleted)" if report.dry_run else ""),
        title_justify="left",
        header_style="bold",
    )
    for column in ("function", "shard", "sequence range", "records", "summaries", "rewritten"):
        table.add_column(
            column, justify="right" if column in ("records", "summaries", "rewritten") else "left"
        )
    table.add_column("status")
    for o in report.outcomes:
        b = o.batch
        style = {
            "redriven": "green",
            "would-redrive": "yellow",
            "trimmed": "bold red",
            "not-read-yet": "bold yellow",
        }[o.status]
        table.add_row(
            b.function,
            b.shard_id[-12:],
            f"{b.start}..{b.end}",
            f"{o.records:,}",
            f"{len(o.keys):,}",
            f"{len(o.rewritten):,}",
            Text(o.status + (f": {o.detail}" if o.detail else ""), style=style),
        )
    lines: list[Any] = [table]
    verb = "would rewrite" if report.dry_run else "rewrote"
    lines.append(
        Text(
            f"{counts['messages']} messages, {counts['records']:,} records, "
            f"{counts['summaries_checked']:,} summaries checked, {verb} "
            f"{counts['summaries_rewritten']:,}, marks raised {counts['marks_raised']:,}"
        )
    )
    reads = f"{counts['items_read']:,} items read ({report.reads.read_units:,.1f} read units)"
    if report.largest is not None:
        key, cost = report.largest
        reads += f"; the most: {key.kind.value} {key.id}, {cost.items:,} items"
    if report.dry_run:
        reads += " (a run reads as much, once per round)"
    lines.append(Text(reads))
    lines.append(Text(f"{report.capped_shards} open shards read to the safety cap"))
    if report.unfinished:
        lines.append(
            Text(
                f"{counts['not_read_yet']} messages kept on the queue, nothing written for "
                f"them: the stream was {NOT_READ_YET}; run `make redrive` again.",
                style="bold yellow",
            )
        )
    if report.needs_repair:
        lines.append(
            Text(
                f"Some ranges are no longer in the stream: run `{REPAIR_COMMAND}` "
                "(their messages are kept).",
                style="bold red",
            )
        )
    if report.invalid:
        lines.append(Text(f"{len(report.invalid)} messages are not batch records: left alone."))
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Make the summaries exact for every batch the on-failure queues hold, "
        "then delete the messages.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be done; write and delete nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    deployment.add_arguments(parser, index_shards=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    target = deployment.resolve(args)
    err = Console(stderr=True)
    report = redrive(
        target,
        dry_run=args.dry_run,
        timing=LOCAL_TIMING if target.endpoint_url else AWS_TIMING,
        log=lambda message: err.print(f"[dim]{message}[/]"),
    )
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        cli.print_lines(render(report))
    return cli.EXIT_FAILURE if report.needs_repair or report.unfinished else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
