"""Replay what the on-failure queues hold: make the summaries exact for every batch that Lambda
gave up on, then delete its message (docs/design.md §9).

    python -m vstats.redrive              # every queue of the table's mappings
    python -m vstats.redrive --dry-run    # what it would do; nothing written, nothing deleted
    python -m vstats.redrive --json       # counts and one entry per message

A message (Lambda's ``DDBStreamBatchInfo``) names a shard and a sequence range; the records are
still in the stream for 24 h. A run:

1. Receives every message of the table's mappings' SQS on-failure queues and reads each range
   back from the stream. If the stream no longer holds all of it (trimmed, or the shard is
   gone), the message is reported with ``make reconcile ARGS=--repair`` and kept.
2. Collects the summary keys the ranges' records touch (for the function whose queue it is, by
   the handlers' own contribution rule, ``vstats.effects``).
3. Makes each of those summaries exact (below), in one pass for all messages.
4. Only then deletes the messages.

Why not re-apply the records through the handler
------------------------------------------------
The handlers keep one high-water mark per (summary, function, shard) (``video_stats.marks``).
Two things make a plain re-application inexact: later batches of the shard moved the marks past
the failed range, so the handler would suppress the records as duplicates; and the failed
attempts may have applied some keys already (a partial batch response, a crash after some
writes, an error raised after the writes), so forcing the records in would count those twice.
A mark cannot tell "applied in the failed attempt" from "skipped over by a later batch".

What is exact instead: the truth per summary
--------------------------------------------
A summary's exact value is the recount of its base items, adjusted for the records the
summary has not applied yet (``vstats.repair.pending_corrections``, the ``reconcile --repair``
machinery, which stays exact while the stack writes on). Per key K:

* read K (consistent GetItem: counters and marks), then its base items (a consistent query of
  ``PK = USER#<id>`` for a user summary, the GSI1 partition ``VIDEO#<id>`` for a video one),
  then the stream;
* target = recount of those items + corrections for the records K has not applied, where the
  failed range counts as processed: every record of the shard up to the message's
  ``endSequenceNumber`` was applied or given up on, because Lambda reads a shard in order and
  has moved past the range (``processed_through``);
* write the target and raise K's mark for (function, shard) to the range's end in one
  conditional UpdateItem (``repair.write_target``: conditional on the counters and the mark as
  read). If an invocation changed K in between, the condition fails and K is recomputed.

Raising the mark records that K now holds the range: later records of the shard are above it
and apply normally, and a later ``reconcile --repair`` does not mistake the redriven records
for records still to come. A summary that already holds a mark of one of the shard's
descendants needs none (lineage pruning, ``video_stats.marks``: every record of the shard
counts as applied to it), and the current mark format is written, beside any legacy mark.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from video_stats import model
from video_stats.lineage import Lineage
from video_stats.marks import covered_seq, encode_mark, mark_value, names_of, shard_marks
from video_stats.model import AttributeMap, Counters, ItemType, SummaryKey, SummaryKind
from video_stats.streams import describe_shards

from vstats import cli, deployment
from vstats.drift import Drift, item_identity
from vstats.effects import FUNCTION_OF_ITEM_TYPE, ITEM_TYPE_OF_HANDLER, counted_contribution
from vstats.repair import (
    AWS_TIMING,
    LOCAL_TIMING,
    LambdaPipeline,
    StreamRecord,
    StreamTiming,
    pending_corrections,
    read_stream,
    stream_arn_of,
    write_target,
)

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
    status: str  # redriven | trimmed | would-redrive | conflict | invalid
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


@dataclass(frozen=True, slots=True)
class FailureQueue:
    url: str
    item_type: ItemType


def failure_queues(lambda_client: Any, sqs: Any, stream_arn: str) -> list[FailureQueue]:
    """The SQS on-failure destination of each mapping of the stream, with its item type."""
    found: list[FailureQueue] = []
    for mapping in LambdaPipeline(lambda_client, stream_arn).mappings():
        arn = (mapping.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        if not arn or arn.split(":")[2] != "sqs":
            continue
        handler = lambda_client.get_function_configuration(FunctionName=mapping["FunctionArn"])[
            "Handler"
        ]
        item_type = ITEM_TYPE_OF_HANDLER.get(handler)
        if item_type is None:
            raise cli.ToolError(f"mapping {mapping['UUID']}: unknown handler {handler}")
        parts = arn.split(":")
        url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
        found.append(FailureQueue(url, item_type))
    return found


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


def stream_shards(streams: Any, stream_arn: str) -> set[str]:
    """The shard ids the stream still describes (a shard goes once its records are trimmed)."""
    shards: set[str] = set()
    request: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**request)["StreamDescription"]
        shards |= {s["ShardId"] for s in description.get("Shards", [])}
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        request["ExclusiveStartShardId"] = last


def read_range(streams: Any, batch: FailedBatch, *, empty_polls: int = 3) -> list[StreamRecord]:
    """The records of ``batch``'s shard from its start to its end sequence number."""
    if batch.shard_id not in stream_shards(streams, batch.stream_arn):
        raise Trimmed(f"the stream no longer has shard {batch.shard_id}")
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch.stream_arn,
            ShardId=batch.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=str(batch.start),
        ).get("ShardIterator")
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("TrimmedDataAccessException", "ResourceNotFoundException"):
            raise Trimmed(f"{code}: the stream no longer holds the range") from None
        raise
    records: list[StreamRecord] = []
    empty = 0
    while iterator and empty < empty_polls:
        response = streams.get_records(ShardIterator=iterator, Limit=1000)
        page = response.get("Records", [])
        for raw in page:
            ddb = raw.get("dynamodb", {})
            seq = int(ddb["SequenceNumber"])
            if not records and seq != batch.start:
                raise Trimmed(f"the shard starts at {seq} now, after the range's start")
            if seq > batch.end:
                return records
            records.append(
                StreamRecord(
                    shard_id=batch.shard_id,
                    seq=seq,
                    identity=item_identity(ddb.get("Keys", {})),
                    new=ddb.get("NewImage"),
                    old=ddb.get("OldImage"),
                )
            )
            if seq == batch.end:
                return records
        empty = 0 if page else empty + 1
        iterator = response.get("NextShardIterator")
    if not records or records[-1].seq != batch.end:
        raise Trimmed("the range's end is not in the stream")
    return records


def touched_keys(records: Iterable[StreamRecord], item_type: ItemType) -> list[SummaryKey]:
    keys: set[SummaryKey] = set()
    for record in records:
        for image in (record.new, record.old):  # a malformed image is skipped by the handler
            keys |= set(counted_contribution(image, item_type))
    return sorted(keys, key=lambda k: (k.kind.value, k.id))


# --- one summary ------------------------------------------------------------------------------


def read_summary(client: DynamoDBClient, table: str, key: SummaryKey) -> AttributeMap | None:
    item = client.get_item(
        TableName=table, Key=model.summary_item_key(key), ConsistentRead=True
    ).get("Item")
    return item


def base_items(client: DynamoDBClient, table: str, key: SummaryKey) -> list[AttributeMap]:
    """The base items that can contribute to ``key`` under the data model's keys: a user's
    items share ``PK = USER#<id>``; a video's share ``GSI1PK = VIDEO#<id>``."""
    request: dict[str, Any] = {"TableName": table}
    if key.kind is SummaryKind.USER:
        request |= {
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"USER#{key.id}"}},
            "ConsistentRead": True,
        }
    else:
        request |= {
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"VIDEO#{key.id}"}},
        }
    items: list[AttributeMap] = []
    while True:
        page = client.query(**request)
        items += [
            item for item in page.get("Items", []) if model.item_type_of(item) in ("VIEW", "VOTE")
        ]
        last = page.get("LastEvaluatedKey")
        if not last:
            return items
        request["ExclusiveStartKey"] = last


@dataclass(slots=True)
class KeyResult:
    key: SummaryKey
    drift: Drift | None  # written (dry run: to write); None: the counters were exact
    marks_raised: int


class StreamIndex:
    """The stream's records by item and by the summary keys their images touch."""

    def __init__(self, records: Iterable[StreamRecord]) -> None:
        self.by_item: dict[tuple[str, str], list[StreamRecord]] = {}
        self.by_key: dict[SummaryKey, list[StreamRecord]] = {}
        for record in records:
            self.by_item.setdefault(record.identity, []).append(record)
            touched: set[SummaryKey] = set()
            for item_type in FUNCTION_OF_ITEM_TYPE:
                for image in (record.new, record.old):
                    touched |= set(counted_contribution(image, item_type))
            for key in touched:
                self.by_key.setdefault(key, []).append(record)

    def relevant(self, key: SummaryKey, items: Iterable[tuple[str, str]]) -> list[StreamRecord]:
        """Records of the items found for ``key`` plus those of any other item whose images
        touch it (deleted since, or not yet in GSI1)."""
        found = {(r.shard_id, r.seq): r for r in self.by_key.get(key, [])}
        for identity in items:
            found |= {(r.shard_id, r.seq): r for r in self.by_item.get(identity, [])}
        return list(found.values())


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
) -> dict[SummaryKey, KeyResult]:
    """Write each key's exact value and raise its marks for the shards of the batches that
    touch it, in one conditional write per key; keys that invocations changed under us are
    recomputed. One pass over the stream per round, for all keys."""
    results: dict[SummaryKey, KeyResult] = {}
    pending = list(touched_by)
    for _ in range(MAX_ATTEMPTS):
        # Summary first, then its base items, then the stream (see repair.applied_targets):
        # any change after the summary was read has a record above its marks.
        summaries = {key: read_summary(client, table, key) for key in pending}
        items = {key: base_items(client, table, key) for key in pending}
        until = time.time() + timing.margin
        time.sleep(timing.delay)
        stream = StreamIndex(read_stream(streams, stream_arn, until=until))
        lineage = Lineage.of(describe_shards(streams, stream_arn), time.time())
        changed: list[SummaryKey] = []
        for key in pending:
            summary = summaries[key]
            found = {item_identity(item): item for item in items[key]}
            target = model.recount(found.values()).get(key, model.ZERO) + pending_corrections(
                stream.relevant(key, found),
                found,
                {key: summary} if summary is not None else {},
                stream_arn,
                lineage,
                processed_through=processed_through,
            ).get(key, model.ZERO)
            actual = model.summary_counters(summary) if summary is not None else model.ZERO
            marks = _raised_marks(summary, touched_by[key], target, lineage)
            drift = Drift(key, target, actual, summary is not None)
            result = KeyResult(key, drift if actual != target else None, len(marks))
            nothing_to_write = actual == target and not marks
            if (
                nothing_to_write
                or dry_run
                or write_target(client, table, drift, index_shards, marks=marks or None)
            ):
                results[key] = result
            else:
                changed.append(key)
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

    def counts(self) -> dict[str, int]:
        statuses = [o.status for o in self.outcomes]
        return {
            "messages": len(self.outcomes) + len(self.invalid),
            "redriven": statuses.count("redriven"),
            "would_redrive": statuses.count("would-redrive"),
            "trimmed": statuses.count("trimmed"),
            "invalid": len(self.invalid),
            "records": sum(o.records for o in self.outcomes),
            "summaries_checked": len({k for o in self.outcomes for k in o.keys}),
            "summaries_rewritten": len(self.rewritten),
            "marks_raised": self.marks_raised,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "messages": [o.as_dict() for o in self.outcomes],
            "invalid_messages": self.invalid,
            "repair_command": REPAIR_COMMAND if self.needs_repair else None,
        }

    @property
    def needs_repair(self) -> bool:
        return any(o.status == "trimmed" for o in self.outcomes)


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
    try:
        # 1. Each range back from the stream: the keys it touches (or it is trimmed).
        touched_by: dict[SummaryKey, list[FailedBatch]] = {}
        readable: list[tuple[FailedBatch, int, list[SummaryKey]]] = []
        for batch, _ in received:
            try:
                records = read_range(streams, batch)
            except Trimmed as exc:
                report.outcomes.append(
                    BatchOutcome(batch, "trimmed", detail=f"{exc}: run `{REPAIR_COMMAND}`")
                )
                continue
            keys = touched_keys(records, batch.item_type)
            readable.append((batch, len(records), keys))
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
        )
        report.rewritten = [r.drift for r in results.values() if r.drift is not None]
        report.marks_raised = sum(r.marks_raised for r in results.values())
        # 3. Only now are the messages done with.
        for batch, records_read, keys in readable:
            if not dry_run:
                sqs.delete_message(QueueUrl=batch.queue_url, ReceiptHandle=batch.receipt_handle)
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
        if dry_run:  # put the messages back at once
            for batch, receipt in received:
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
        style = {"redriven": "green", "would-redrive": "yellow", "trimmed": "bold red"}[o.status]
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
    return cli.EXIT_FAILURE if report.needs_repair else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
