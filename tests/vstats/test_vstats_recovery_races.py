"""The recovery tools (redrive, ``reconcile --live``) under what AWS allows and a quiet local
stack never shows (docs/design.md §9): a shard's mark expired on a summary, GSI1 not showing a
recent write yet, GetRecords answering empty pages before a shard's records (more than the
reader's caps allow, too), and a batch landing between the partitions a scan reads. moto holds
the table; the real handlers apply the batches; ``stream_fakes.FakeStreamsClient`` is the
stream (the Streams API over the writes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from rich.console import Console
from stream_fakes import (
    STREAM_ARN,
    FakeStream,
    FakeStreamsClient,
    create_table,
    scan_all,
    stream_event,
)
from video_stats import handlers
from video_stats.handlers import ENTRY_POINTS
from video_stats.lineage import LineageCache
from video_stats.marks import shard_marks
from video_stats.model import SummaryKey, SummaryKind, is_mark_attribute, summary_item_key
from video_stats.model import view_item as model_view_item
from video_stats.store import SummaryStore
from video_stats.streams import describe_shards
from vstats import reconcile, redrive
from vstats.cli import ToolError
from vstats.drift import find_drift
from vstats.pipeline import IN_FLIGHT_SECONDS
from vstats.repair import repair
from vstats.stream_reader import StreamTiming
from vstats.target_reads import live_check

VIDEO, USER = SummaryKind.VIDEO, SummaryKind.USER
RECORD_AGE = 21_600  # the mappings' MaximumRecordAgeInSeconds as deployed
SETTLED_AGE = RECORD_AGE + IN_FLIGHT_SECONDS  # what pipeline.settled_age gives for it
RETENTION = RECORD_AGE + 3_600  # the handlers' MARK_RETENTION_SECONDS as deployed
QUICK = StreamTiming(delay=0.0, margin=0.5, open_shard_seconds=0.05, poll_seconds=0.0)
#: The time cap ends an open shard's read at its first empty page: what a run of empty pages
#: longer than ``open_shard_seconds`` allows looks like, counted in pages, not raced.
AT_ONCE = StreamTiming(delay=0.0, margin=0.0, open_shard_seconds=0.0, poll_seconds=0.0)
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def view(user: str, video: str, duration: int) -> dict[str, Any]:
    return model_view_item(user, video, duration, WHEN)


@pytest.fixture(scope="module")
def dynamodb() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "test")
        env.setenv("AWS_SECRET_ACCESS_KEY", "test")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@dataclass
class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class World:
    """A table (moto), its stream (FakeStreamsClient) and the views function (the handler)."""

    client: Any
    table: str
    streams: FakeStreamsClient = field(default_factory=FakeStreamsClient)

    def shard(self, shard_id: str, *, first: int, start: float | None = None) -> FakeStream:
        stream = FakeStream(first_sequence=first, start_time=start or time.time())
        return self.streams.add(shard_id, stream)

    def write(self, shard: FakeStream, item: dict[str, Any]) -> dict[str, Any]:
        """The application's PutItem: the item in the table, its record in the shard."""
        self.client.put_item(TableName=self.table, Item=item)
        return shard.put(item)

    def apply(self, records: list[dict[str, Any]], shard_id: str) -> None:
        response = handlers.handle(stream_event(records, shard_id), Context(), "VIEW")
        assert response["batchItemFailures"] == []

    def summary(self, kind: SummaryKind, ident: str) -> dict[str, Any]:
        item: dict[str, Any] = self.client.get_item(
            TableName=self.table, Key=summary_item_key(SummaryKey(kind, ident)), ConsistentRead=True
        ).get("Item", {})
        return item

    def views(self, ident: str) -> tuple[int, int]:
        item = self.summary(VIDEO, ident)
        return int(item.get("views", {}).get("N", 0)), int(item.get("duration", {}).get("N", 0))

    def drift(self) -> list[str]:
        """The plain recount (exact once nothing is in flight)."""
        found = find_drift(self.client, self.table, segments=1)
        return [f"{d.key.kind.value} {d.key.id}: {d.actual} != {d.expected}" for d in found]

    def redrive(
        self,
        client: Any,
        given_up: dict[str, Any],
        shard_id: str,
        user: str,
        timing: StreamTiming = QUICK,
    ) -> dict[SummaryKey, redrive.KeyResult]:
        """``make redrive`` for the on-failure message of a batch of ``shard_id`` holding
        ``given_up``, from the step that reads and writes (``redrive.make_exact``)."""
        seq = int(given_up["dynamodb"]["SequenceNumber"])
        batch = redrive.FailedBatch(
            "queue", "message", "receipt", "VIEW", shard_id, STREAM_ARN, seq, seq, 1, None
        )
        video = given_up["dynamodb"]["NewImage"]["videoId"]["S"]
        return redrive.make_exact(
            client,
            self.streams,
            self.table,
            {SummaryKey(VIDEO, video): [batch], SummaryKey(USER, user): [batch]},
            stream_arn=STREAM_ARN,
            processed_through={("views", shard_id): seq},
            index_shards=4,
            timing=timing,
            dry_run=False,
            settled_age=SETTLED_AGE,
        )


_names = iter(range(10**6))


@pytest.fixture
def world(dynamodb: Any) -> Iterator[World]:
    name = f"races-{next(_names)}"
    create_table(dynamodb, name)
    made = World(dynamodb, name)
    handlers.configure(
        handlers.Runtime(
            SummaryStore(dynamodb, name),
            executor=None,
            retention_seconds=RETENTION,
            lineage=LineageCache(
                lambda arn: describe_shards(made.streams, arn), min_interval_seconds=0.0
            ),
        )
    )
    try:
        yield made
    finally:
        handlers.configure(None)
        handlers.metrics.clear_metrics()
        dynamodb.delete_table(TableName=name)


class LaggingGsi1:
    """A DynamoDB client whose GSI1 queries do not show ``hidden`` yet: a GSI is eventually
    consistent, while the table and the stream have the write."""

    def __init__(self, client: Any, hidden: set[tuple[str, str]]) -> None:
        self._client, self.hidden = client, hidden

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **request: Any) -> Any:
        page = self._client.query(**request)
        if request.get("IndexName") == "GSI1":
            shown = [i for i in page["Items"] if (i["PK"]["S"], i["SK"]["S"]) not in self.hidden]
            page = {**page, "Items": shown}
        return page


class ScanInTwoHalves:
    """A DynamoDB client whose Scan returns the table in two pages: every item but those of
    ``later`` partitions, then, after ``between`` ran, those. A scan reads partitions one after
    another, and a batch can land between two of them."""

    def __init__(
        self, client: Any, table: str, later: set[str], between: Callable[[], None]
    ) -> None:
        self._client, self._table, self._later, self._between = client, table, later, between

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def scan(self, **request: Any) -> dict[str, Any]:
        def late(item: dict[str, Any]) -> bool:
            return item["PK"]["S"] in self._later

        if "ExclusiveStartKey" not in request:
            first = [i for i in scan_all(self._client, self._table) if not late(i)]
            return {"Items": first, "LastEvaluatedKey": {"PK": {"S": "~"}, "SK": {"S": "~"}}}
        self._between()
        return {"Items": [i for i in scan_all(self._client, self._table) if late(i)]}


# --- R1: a shard's mark expired on the summary ------------------------------------------------


def test_redrive_counts_the_records_of_a_shard_whose_mark_expired(world: World) -> None:
    """Partition 1 wrote video v 9 h ago; partition 2's later writes find that mark past the
    handlers' retention and drop it, while the record is still in the stream (24 h). A batch of
    partition 2 is given up on. Redrive must count partition 1's view, older than the mappings'
    record age + 900 s (the settled-age rule), as applied, though no mark says so."""
    old = world.shard("p1", first=10**20, start=time.time() - 9 * 3600)
    new = world.shard("p2", first=2 * 10**20)
    world.apply([world.write(old, view("u1", "v", 10))], "p1")
    world.apply([world.write(new, view("u2", "v", 20))], "p2")
    world.apply([world.write(new, view("u3", "v", 30))], "p2")
    assert shard_marks("views", "p1").current not in world.summary(VIDEO, "v")
    given_up = world.write(new, view("u4", "v", 5))
    assert world.views("v") == (3, 60)

    world.redrive(world.client, given_up, "p2", "u4")

    assert world.views("v") == (4, 65)
    assert world.drift() == []


# --- R2: GSI1 does not show a recent write yet -----------------------------------------------


def test_redrive_takes_an_item_with_records_from_its_last_record_not_from_gsi1(
    world: World,
) -> None:
    """View a applied, view b's batch given up on, view c applied (the mapping moved on). GSI1
    does not show c yet; c's record is in the stream, and its state is taken from there."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    given_up = world.write(shard, view("u2", "v", 20))
    late = view("u3", "v", 30)
    world.apply([world.write(shard, late)], "s")
    assert world.views("v") == (2, 40)

    lagging = LaggingGsi1(world.client, {(late["PK"]["S"], late["SK"]["S"])})
    world.redrive(lagging, given_up, "s", "u2")

    assert world.views("v") == (3, 60)
    assert world.drift() == []


# --- R3: GetRecords answers empty pages before the records ------------------------------------


def test_redrive_reads_past_empty_pages_and_leaves_a_record_in_flight_to_the_handler(
    world: World,
) -> None:
    """View a applied, view b's batch given up on, view c written and not yet delivered. Every
    shard iterator first answers three empty pages. Redrive must still see c in flight (above
    every mark and the failed range) and leave it out; the handler adds it when it arrives."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    given_up = world.write(shard, view("u2", "v", 20))
    in_flight = world.write(shard, view("u3", "v", 30))
    world.streams.empty_pages = 3

    world.redrive(world.client, given_up, "s", "u2")
    assert world.views("v") == (2, 30)
    world.apply([in_flight], "s")

    assert world.views("v") == (3, 60)
    assert world.drift() == []


# --- R4: a batch lands between the partitions a scan reads ------------------------------------


def test_live_check_confirms_drift_before_reporting_it(world: World) -> None:
    """The scan reads user u2's partition (no view yet), u2's view of v is applied, the scan
    reads VIDEO#v: v's summary holds a record whose base item the scan did not see. The stack
    is exact; the consistent re-read of v and its items finds no drift."""
    s1 = world.shard("p1", first=10**20)
    s2 = world.shard("p2", first=2 * 10**20)
    world.apply([world.write(s1, view("u1", "v", 10))], "p1")

    def batch_lands() -> None:
        world.apply([world.write(s2, view("u2", "v", 20))], "p2")

    scan: Any = ScanInTwoHalves(world.client, world.table, {"VIDEO#v"}, batch_lands)
    found = live_check(
        scan, world.streams, world.table, STREAM_ARN, segments=1, timing=QUICK
    ).drifts

    assert world.drift() == []
    assert found == []


def test_live_check_rereads_a_summary_the_scan_saw_before_a_rotation_finished(
    world: World,
) -> None:
    """The scan reads USER#u1 before the parent shard's last batch (u1 views w) reaches it;
    then that batch is applied, the shard closes, its child's first batch (u2 views w) is
    applied, and the scan reads VIDEO#w, which holds the child's mark: the parent is finished,
    so u1's summary as scanned looks one view short. Only the consistent re-read shows it is
    not (a scan is no snapshot); without it, --live cries wolf."""
    parent = world.shard("parent", first=10**20)
    child = FakeStream(first_sequence=10**20 + 10, start_time=time.time())
    world.streams.add("child", child, parent="parent")
    first = world.write(parent, view("u1", "w", 10))

    def rotation() -> None:
        world.apply([first], "parent")
        world.streams.close("parent")
        world.apply([world.write(child, view("u2", "w", 20))], "child")

    scan: Any = ScanInTwoHalves(world.client, world.table, {"VIDEO#w"}, rotation)
    found = live_check(
        scan, world.streams, world.table, STREAM_ARN, segments=1, timing=QUICK
    ).drifts

    assert world.drift() == []
    assert found == []


def test_live_check_still_reports_real_drift(world: World) -> None:
    """The confirmation re-reads; it does not explain drift away: a summary written short
    (a lost view, nothing in flight) is still reported."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    world.apply([world.write(shard, view("u2", "v", 20))], "s")
    world.client.update_item(
        TableName=world.table,
        Key=summary_item_key(SummaryKey(VIDEO, "v")),
        UpdateExpression="SET #v = :v",
        ExpressionAttributeNames={"#v": "views"},
        ExpressionAttributeValues={":v": {"N": "1"}},
    )

    (drift,) = live_check(
        world.client, world.streams, world.table, STREAM_ARN, segments=1, timing=QUICK
    ).drifts

    assert (drift.key, drift.actual.views, drift.expected.views) == (SummaryKey(VIDEO, "v"), 1, 2)
    assert any(is_mark_attribute(name) for name in world.summary(VIDEO, "v"))


# --- R5: more empty pages than the reader's caps allow -----------------------------------------


def identity(item: dict[str, Any]) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


def applied_given_up_applied(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """Shard s: view a applied, view b's batch given up on, view c applied (v's mark is at c).
    Returns (b's record, c's item). v holds a and c: (2, 40); the recount is (3, 60)."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    given_up = world.write(shard, view("u2", "v", 20))
    late = view("u3", "v", 30)
    world.apply([world.write(shard, late)], "s")
    assert world.views("v") == (2, 40)
    return given_up, late


def test_redrive_reads_on_to_the_records_a_summary_holds_past_the_time_cap(world: World) -> None:
    """Five empty pages before the shard's records; the time cap alone ends the read at the
    first. GSI1 does not show c yet, and v holds c: without c's record the target takes c's
    state from GSI1 (absent) while v counts it, and redrive would write (2, 30). v's mark at
    c says the shard holds c: the read goes on to it, and the target is the recount."""
    given_up, late = applied_given_up_applied(world)
    world.streams.empty_pages = 5

    lagging = LaggingGsi1(world.client, {identity(late)})
    results = world.redrive(lagging, given_up, "s", "u2", timing=AT_ONCE)

    assert world.views("v") == (3, 60)
    assert world.drift() == []
    assert all(not r.held_back for r in results.values())


def test_redrive_writes_nothing_from_a_read_short_of_a_known_tip_and_reads_on(
    world: World,
) -> None:
    """Twenty empty pages, a page cap of three: each round's read ends short of c (v's mark),
    so it writes nothing; the next round goes on from where the read stopped, and the seventh
    reaches the records: exact."""
    given_up, late = applied_given_up_applied(world)
    lagging = LaggingGsi1(world.client, {identity(late)})
    world.streams.empty_pages = 20
    world.streams.get_records_calls = 0

    results = world.redrive(lagging, given_up, "s", "u2", timing=replace(AT_ONCE, max_pages=3))

    assert all(not r.held_back for r in results.values())
    assert world.streams.get_records_calls == 6 * 3 + 3  # 6 short rounds; 2 empty, the records
    assert world.views("v") == (3, 60)
    assert world.drift() == []


def test_redrive_holds_back_every_key_when_the_rounds_run_out_short(world: World) -> None:
    """More empty pages than the rounds can walk: every key is held back, nothing written."""
    given_up, late = applied_given_up_applied(world)
    lagging = LaggingGsi1(world.client, {identity(late)})
    world.streams.empty_pages = 100
    before = world.summary(VIDEO, "v")

    results = world.redrive(lagging, given_up, "s", "u2", timing=replace(AT_ONCE, max_pages=3))

    assert sorted(k.id for k, r in results.items() if r.held_back) == ["u2", "v"]
    assert all(r.drift is None for r in results.values())
    assert world.summary(VIDEO, "v") == before
    assert world.summary(USER, "u2") == {}


class HorizonEmptyPages(FakeStreamsClient):
    """Empty pages before a shard's records for a TRIM_HORIZON iterator only: an iterator at a
    sequence number (a failed range's start) lands on its record."""

    def get_shard_iterator(
        self,
        StreamArn: str,
        ShardId: str,
        ShardIteratorType: str,
        SequenceNumber: str | None = None,
    ) -> dict[str, Any]:
        found = super().get_shard_iterator(StreamArn, ShardId, ShardIteratorType, SequenceNumber)
        if ShardIteratorType != "TRIM_HORIZON":
            shard, position, _ = found["ShardIterator"].split("|")
            found["ShardIterator"] = f"{shard}|{position}|0"
        return found


@dataclass
class FakeLambda:
    """The views mapping of the stream: its on-failure queue, its function's handler."""

    queue_arn: str

    def list_event_source_mappings(self, **_: Any) -> dict[str, Any]:
        return {
            "EventSourceMappings": [
                {
                    "UUID": "m-1",
                    "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:views",
                    "MaximumRecordAgeInSeconds": RECORD_AGE,
                    "DestinationConfig": {"OnFailure": {"Destination": self.queue_arn}},
                }
            ]
        }

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        handler = next(h for h, item_type in ENTRY_POINTS.items() if item_type == "VIEW")
        return {"Handler": handler}


@dataclass
class Deployed:
    """What ``redrive.redrive`` needs of a deployment: moto's table and SQS, the fake stream,
    the fake Lambda API."""

    world: World
    sqs: Any
    queue_url: str
    index_shards: int = 4

    @property
    def table(self) -> str:
        return self.world.table

    def dynamodb(self) -> Any:
        return self.world.client

    def client(self, service: str) -> Any:
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        clients = {"dynamodbstreams": self.world.streams, "sqs": self.sqs}
        return clients.get(service) or FakeLambda(queue_arn)

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def redrive(self, timing: StreamTiming) -> redrive.RedriveReport:
        return redrive.redrive(self, timing=timing)  # type: ignore[arg-type]


def on_failure_queue(world: World, given_up: dict[str, Any], shard_id: str) -> Deployed:
    """The on-failure message Lambda sends for the batch holding ``given_up``."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"{world.table}-views-failures")["QueueUrl"]
    seq = given_up["dynamodb"]["SequenceNumber"]
    info = {
        "shardId": shard_id,
        "startSequenceNumber": seq,
        "endSequenceNumber": seq,
        "batchSize": 1,
        "streamArn": STREAM_ARN,
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"DDBStreamBatchInfo": info}))
    return Deployed(world, sqs, url)


def rendered(report: redrive.RedriveReport) -> str:
    return " ".join(str(line) for line in redrive.render(report))


def test_redrive_reads_a_failed_range_behind_more_empty_pages_than_the_time_cap(
    world: World,
) -> None:
    """The whole run: every iterator answers five empty pages first, and the time cap would
    end the range's read at the first (reported as trimmed, "not in the stream", before).
    The range's end is known to exist: it is read, v made exact, the message deleted; the
    report counts the open shard read to the cap (at its tip, past the records)."""
    given_up, _late = applied_given_up_applied(world)
    world.streams.empty_pages = 5
    deployed = on_failure_queue(world, given_up, "s")

    report = deployed.redrive(AT_ONCE)

    counts = report.counts()
    assert (counts["redriven"], counts["trimmed"], counts["not_read_yet"]) == (1, 0, 0)
    assert report.as_dict()["counts"]["capped_shards"] == 1
    assert "1 open shards read to the safety cap" in rendered(report)
    assert world.views("v") == (3, 60)
    assert world.drift() == []
    assert deployed.queued() == 0


def test_redrive_keeps_a_range_behind_more_empty_pages_than_the_page_cap(world: World) -> None:
    """Past the page cap the range is not read to its end: the message stays on the queue
    (visible again at once), reported "not read to its end yet", not trimmed; nothing is
    written."""
    given_up, _late = applied_given_up_applied(world)
    world.streams.empty_pages = 10
    deployed = on_failure_queue(world, given_up, "s")

    report = deployed.redrive(replace(AT_ONCE, max_pages=5))

    (outcome,) = report.outcomes
    assert (outcome.status, report.needs_repair, report.unfinished) == ("not-read-yet", False, True)
    assert "not read to its end yet: shard s" in outcome.detail
    assert report.counts()["not_read_yet"] == 1
    assert "run `make redrive` again" in rendered(report)
    assert world.views("v") == (2, 40)
    assert world.summary(USER, "u2") == {}
    assert deployed.queued() == 1


def test_redrive_keeps_the_messages_whose_summaries_were_held_back(world: World) -> None:
    """The range is read (its iterator lands on it), but every round's read of the whole
    stream ends short of v's mark: the message is kept and reported, nothing written."""
    world.streams = HorizonEmptyPages()
    given_up, _late = applied_given_up_applied(world)
    world.streams.empty_pages = 100
    deployed = on_failure_queue(world, given_up, "s")

    report = deployed.redrive(replace(AT_ONCE, max_pages=3))

    (outcome,) = report.outcomes
    assert (outcome.status, outcome.records) == ("not-read-yet", 1)
    assert "not read to its end yet: shard s" in outcome.detail
    assert report.counts()["not_read_yet"] == 1
    assert world.views("v") == (2, 40)
    assert world.summary(USER, "u2") == {}
    assert deployed.queued() == 1


@dataclass
class StillPipeline:
    """``vstats.pipeline.Pipeline`` for a stack whose batches the test applies itself."""

    calls: list[str] = field(default_factory=list)

    def pause(self) -> list[str]:
        self.calls.append("pause")
        return ["m-1"]

    def resume(self, paused: list[str]) -> None:
        self.calls.append("resume")


def short_views(world: World, views: int) -> None:
    world.client.update_item(
        TableName=world.table,
        Key=summary_item_key(SummaryKey(VIDEO, "v")),
        UpdateExpression="SET #v = :v",
        ExpressionAttributeNames={"#v": "views"},
        ExpressionAttributeValues={":v": {"N": str(views)}},
    )


def test_repair_reads_past_the_time_cap_and_reports_the_capped_shards(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Five empty pages before the records: the repair reads on to v's mark, rewrites the
    drifting summary to the recount, and its output counts the open shard read to the cap."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    world.apply([world.write(shard, view("u2", "v", 20))], "s")
    short_views(world, 1)
    world.streams.empty_pages = 5
    pipeline = StillPipeline()

    result = repair(
        world.client,
        world.streams,
        world.table,
        STREAM_ARN,
        pipeline,
        settled_age=SETTLED_AGE,
        segments=1,
        timing=AT_ONCE,
    )

    assert [(d.key, d.actual.views, d.expected.views) for d in result.repaired] == [
        (SummaryKey(VIDEO, "v"), 1, 2)
    ]
    assert (pipeline.calls, result.capped_shards) == (["pause", "resume"], 1)
    assert world.drift() == []
    reconcile._report_repair(result, [], [], "json", Console())
    assert json.loads(capsys.readouterr().out)["capped_shards"] == 1
    reconcile._report_repair(result, [], [], "table", Console(width=200))
    assert "1 open shards read to the safety cap" in capsys.readouterr().out


def test_repair_and_live_refuse_a_read_short_of_a_known_tip(world: World) -> None:
    """More empty pages than the page cap before the records v's mark holds: --repair stops
    with one line naming the shard before it pauses or writes anything; --live reports
    nothing from such a read."""
    shard = world.shard("s", first=10**20)
    world.apply([world.write(shard, view("u1", "v", 10))], "s")
    short_views(world, 0)
    world.streams.empty_pages = 10
    capped = replace(AT_ONCE, max_pages=5)
    pipeline = StillPipeline()
    message = r"shard s was read to nothing only \(5 pages, the page cap\), short of \d+"

    with pytest.raises(ToolError, match=message + ".*nothing written or reported"):
        repair(world.client, world.streams, world.table, STREAM_ARN, pipeline, timing=capped)
    with pytest.raises(ToolError, match=message):
        live_check(world.client, world.streams, world.table, STREAM_ARN, timing=capped)

    assert pipeline.calls == []
    assert world.views("v") == (0, 10)


# --- R6: a hot summary: batches land while the tool reads ---------------------------------------


class BusyTips(FakeStreamsClient):
    """A stream whose open shards get a new batch, applied by the handler, each time a reader
    waits at their tip (an empty page there): a hot video's summary, which a batch of some
    feeding shard changes every few seconds, while the tool polls the stream. At most
    ``landings`` batches."""

    def __init__(self, land: Callable[[str], None], landings: int) -> None:
        super().__init__()
        self._land, self.landings = land, landings

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        page = super().get_records(ShardIterator, Limit)
        if not page["Records"] and "NextShardIterator" in page and self.landings > 0:
            self.landings -= 1
            self._land(ShardIterator.split("|", maxsplit=1)[0])
        return page


class RacingWrites:
    """A DynamoDB client under which one batch lands on ``key`` right before the tool's first
    write of it (the conditional write then loses), and which counts GSI1 queries."""

    def __init__(self, client: Any, key: SummaryKey, land: Callable[[], None]) -> None:
        self._client, self._key, self._land = client, key, land
        self.gsi1_queries = 0
        self.raced = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def query(self, **request: Any) -> Any:
        self.gsi1_queries += request.get("IndexName") == "GSI1"
        return self._client.query(**request)

    def update_item(self, **request: Any) -> Any:
        if not self.raced and request["Key"] == summary_item_key(self._key):
            self.raced = True
            self._land()
        return self._client.update_item(**request)


def test_redrive_finishes_a_summary_that_batches_change_while_it_reads(world: World) -> None:
    """Every wait of the reader at the shard's tip lets a batch land on v. The summaries are
    read after the time-bounded read of the stream, and only the records they hold are read
    after them (none is waited for), so the write follows the read of v with no wait in
    between: redrive finishes in its first round and v equals the recount. Read first and
    waited on after, v changed before every write, and redrive gave up after its 8 rounds."""
    fresh = iter(range(100, 200))

    def land(shard_id: str) -> None:
        shard = world.streams.shards[shard_id][0]
        world.apply([world.write(shard, view(f"u{next(fresh)}", "v", 1))], shard_id)

    world.streams = BusyTips(land, landings=20)
    given_up, _ = applied_given_up_applied(world)
    logged: list[str] = []

    seq = int(given_up["dynamodb"]["SequenceNumber"])
    batch = redrive.FailedBatch("q", "m", "r", "VIEW", "s", STREAM_ARN, seq, seq, 1, None)
    redrive.make_exact(
        world.client,
        world.streams,
        world.table,
        {SummaryKey(VIDEO, "v"): [batch], SummaryKey(USER, "u2"): [batch]},
        stream_arn=STREAM_ARN,
        processed_through={("views", "s"): seq},
        index_shards=4,
        timing=AT_ONCE,
        dry_run=False,
        settled_age=SETTLED_AGE,
        log=logged.append,
    )

    assert [line.split(",")[2].strip() for line in logged] == ["0 changed under us (recomputed)"]
    assert world.streams.landings == 19  # one batch landed, during the time-bounded read
    assert world.views("v") == (4, 61)
    assert world.drift() == []


def test_a_summary_that_lost_its_write_race_is_recomputed_without_reading_its_items_again(
    world: World,
) -> None:
    """A batch lands on v between its read and its write: the conditional write loses, and
    the next round reads v again and the stream on to v's new mark, but not v's base items
    (a query of GSI1: every view of a hot video). Their state since is in the stream."""
    given_up, _ = applied_given_up_applied(world)
    shard = world.streams.shards["s"][0]
    racing = RacingWrites(
        world.client,
        SummaryKey(VIDEO, "v"),
        lambda: world.apply([world.write(shard, view("u9", "v", 7))], "s"),
    )

    results = world.redrive(racing, given_up, "s", "u2", timing=AT_ONCE)

    assert racing.raced
    assert racing.gsi1_queries == 1
    assert all(not r.held_back for r in results.values())
    assert world.views("v") == (4, 67)
    assert world.drift() == []


def test_redrive_reads_a_parent_that_closed_while_it_read_to_its_end(world: World) -> None:
    """While the reader waits at shard p's tip, p gets a last view x and closes, and its
    child c a view y; the handler applies both, and v's marks now name c (p is finished:
    its records count as applied through c's mark). x was written after the time-bounded
    read passed p's tip: the read after v's read takes p to its end, so x is counted, not
    left to a table read that predates it."""
    done: list[str] = []

    def land(shard_id: str) -> None:
        if done:
            return
        done.append(shard_id)
        parent = world.streams.shards["p"][0]
        world.apply([world.write(parent, view("u7", "v", 5))], "p")
        world.streams.close("p")
        child = FakeStream(first_sequence=2 * 10**20, start_time=time.time())
        world.streams.add("c", child, parent="p")
        world.apply([world.write(child, view("u8", "v", 6))], "c")

    world.streams = BusyTips(land, landings=1)
    parent = world.shard("p", first=10**20)
    world.apply([world.write(parent, view("u1", "v", 10))], "p")
    given_up = world.write(parent, view("u2", "v", 20))
    world.apply([world.write(parent, view("u3", "v", 30))], "p")

    world.redrive(world.client, given_up, "p", "u2", timing=AT_ONCE)

    assert done == ["p"]
    assert any(shard_marks("views", "c").current == n for n in world.summary(VIDEO, "v"))
    assert world.views("v") == (5, 71)
    assert world.drift() == []


# --- R7: a batch lands between the time-bounded read of the stream and the summaries' read ------


class LandsBeforeSummaryRead:
    """A DynamoDB client under which ``land`` runs once, right before the tool's first
    consistent read of a summary: after the time-bounded read of the stream, before the
    summaries are read (docs/design.md §9, "Redrive", between steps 2 and 3)."""

    def __init__(self, client: Any, land: Callable[[], None]) -> None:
        self._client, self._land = client, land
        self.landed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_item(self, **request: Any) -> Any:
        if not self.landed:
            self.landed = True
            self._land()
        return self._client.get_item(**request)


def without_shard_ids(world: World) -> Callable[[list[dict[str, Any]]], None]:
    """The handler as the opt-out of tumbling windows runs it (ALLOW_EVENTS_WITHOUT_SHARD_ID):
    events without ``shardId``, one mark per stream (docs/design.md §8, step 3)."""
    handlers.configure(
        handlers.Runtime(
            SummaryStore(world.client, world.table),
            executor=None,
            retention_seconds=RETENTION,
            allow_missing_shard_id=True,
        )
    )

    def apply(records: list[dict[str, Any]]) -> None:
        response = handlers.handle(stream_event(records, None), Context(), "VIEW")
        assert response["batchItemFailures"] == []

    return apply


def test_redrive_reads_the_records_a_stream_wide_mark_holds_after_the_summaries(
    world: World,
) -> None:
    """The opt-out of tumbling windows: one mark per stream, which names no shard and so is
    no known tip. View a applied, b's batch given up on, then c written and applied after
    the stream was read, before v is read: v holds c, its base items (read first) do not show
    it, and no tip sends the read after it. Without a read past v's read, the target leaves c
    out and the write drops it for good (v's mark covers it, so the handler never applies it
    again)."""
    apply = without_shard_ids(world)
    shard = world.shard("s", first=10**20)
    apply([world.write(shard, view("u1", "v", 10))])
    given_up = world.write(shard, view("u2", "v", 20))
    racing = LandsBeforeSummaryRead(
        world.client, lambda: apply([world.write(shard, view("u3", "v", 30))])
    )

    world.redrive(racing, given_up, "s", "u2", timing=AT_ONCE)

    assert racing.landed
    assert world.views("v") == (3, 60)
    assert world.drift() == []


def test_redrive_leaves_out_a_record_read_to_another_summarys_tip(world: World) -> None:
    """Between the stream's read and the summaries', partition t gets a batch [y, z]: y is
    u9's view of v, z is u2's view of w; v's key fails (throttled) and the others are written,
    so u2 holds t's mark at z and v no mark of t. The read to u2's tip reads y: a record v
    has not applied, in flight for it (its state before y is none), not counted. The retry of
    the batch then adds y to v, and everything equals the recount."""
    s = world.shard("s", first=10**20)
    t = world.shard("t", first=2 * 10**20)
    world.apply([world.write(s, view("u1", "v", 10))], "s")
    world.apply([world.write(t, view("u5", "w", 1))], "t")
    given_up = world.write(s, view("u2", "v", 20))
    batch: list[dict[str, Any]] = []

    def lands() -> None:
        batch.extend([world.write(t, view("u9", "v", 7)), world.write(t, view("u2", "w", 3))])
        world.apply(batch[1:], "t")  # as written by the batch whose v key failed

    racing = LandsBeforeSummaryRead(world.client, lands)
    world.redrive(racing, given_up, "s", "u2", timing=AT_ONCE)

    assert racing.landed
    assert world.views("v") == (2, 30)
    world.apply(batch, "t")  # Lambda retries the batch from y
    assert world.views("v") == (3, 37)
    assert world.drift() == []


def test_a_shard_mark_redrive_raised_beside_a_stream_wide_mark_counts_up_to_the_higher(
    world: World,
) -> None:
    """The opt-out of tumbling windows again. Redrive counts b and raises v's mark for shard
    s to b; the handler, which knows only the stream's mark, then applies c and moves that
    one. v now holds both, and has applied up to the higher: a target taking the first mark
    found (s's, at b) leaves c out as in flight, and --repair writes v without it, for good."""
    apply = without_shard_ids(world)
    shard = world.shard("s", first=10**20)
    apply([world.write(shard, view("u1", "v", 10))])
    given_up = world.write(shard, view("u2", "v", 20))
    world.redrive(world.client, given_up, "s", "u2", timing=AT_ONCE)
    apply([world.write(shard, view("u3", "v", 30))])
    assert shard_marks("views", "s").current in world.summary(VIDEO, "v")
    assert world.views("v") == (3, 60)

    result = repair(
        world.client,
        world.streams,
        world.table,
        STREAM_ARN,
        StillPipeline(),
        settled_age=SETTLED_AGE,
        segments=1,
        timing=AT_ONCE,
    )

    assert world.views("v") == (3, 60)
    assert result.repaired == []
    assert world.drift() == []
    live = live_check(world.client, world.streams, world.table, STREAM_ARN, timing=AT_ONCE)
    assert live.drifts == []
