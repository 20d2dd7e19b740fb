"""Exactly-once under at-least-once delivery, against moto in-process.

Deterministic scenarios (duplicates, crashes between key writes, throttled keys, lost replies,
partial-failure checkpoints, shards with overlapping sequence numbers, mark pruning), then a
hypothesis property test that drives random base-table histories through a simulated event
source mapping with all of those faults and checks every summary against ``recount``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from stream_fakes import FakeStream, create_table, scan_all, stream_event
from video_stats import handlers
from video_stats.apply import (
    Applier,
    ApplyConfig,
    Rejected,
    StaleMarkCache,
    UpdateRequest,
    Written,
)
from video_stats.lineage import LineageCache, LineageUnavailable, Shard
from video_stats.marks import (
    decode_mark,
    encode_mark,
    legacy_encode_seq,
    mark_name,
    shard_marks,
    shard_tag,
)
from video_stats.model import (
    AttributeMap,
    Counters,
    ItemType,
    SummaryKey,
    SummaryKind,
    is_mark_attribute,
    recount,
    summary_counters,
    summary_item_key,
    summary_key_of,
    view_item,
    vote_item,
)
from video_stats.records import parse_batch
from video_stats.store import SummaryStore
from vstats.filter_patterns import delivered_to

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VIDEO = SummaryKind.VIDEO
USER = SummaryKind.USER
ZERO = Counters()


class Crash(BaseException):
    """The function dies (timeout, out of memory): nothing after it runs."""


def throttled() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
        "UpdateItem",
    )


class FaultyWriter:
    """Wraps the real store; injects faults per invocation."""

    def __init__(self, inner: SummaryStore) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.crash_after: int | None = None  # update calls allowed before the process dies
        self.throttle: set[SummaryKey] = set()  # fail before writing
        self.lost_reply: set[SummaryKey] = set()  # write, then fail (timeout after success)
        self.calls = 0

    def _tick(self) -> None:
        with self.lock:
            calls = self.calls
            self.calls += 1
        if self.crash_after is not None and calls >= self.crash_after:
            raise Crash

    def update(self, request: UpdateRequest) -> Written | Rejected:
        self._tick()
        if request.key in self.throttle:
            raise throttled()
        result = self.inner.update(request)
        if request.key in self.lost_reply:
            raise TimeoutError("read timeout after the write")
        return result

    def read(self, key: SummaryKey) -> AttributeMap | None:
        return self.inner.read(key)

    def remove_marks(self, key: SummaryKey, marks: Mapping[str, str]) -> bool:
        self._tick()
        return self.inner.remove_marks(key, marks)


@dataclass
class Context:
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """One moto session and client for the module: starting moto and building a client cost
    far more than a test; every world gets its own table instead."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@dataclass
class World:
    client: Any
    table: str
    writer: FaultyWriter
    updates: int = 0
    #: what DescribeStream answers (the handlers' lineage source); None: it fails
    shards: list[Shard] | None = field(default_factory=list)
    describe_calls: int = 0

    def describe(self, _stream_arn: str) -> list[Shard]:
        self.describe_calls += 1
        if self.shards is None:
            raise ClientError({"Error": {"Code": "LimitExceededException"}}, "DescribeStream")
        return list(self.shards)

    def marks(self, kind: SummaryKind, ident: str) -> list[str]:
        item = self.client.get_item(
            TableName=self.table, Key=summary_item_key(SummaryKey(kind, ident)), ConsistentRead=True
        ).get("Item", {})
        return sorted(name for name in item if is_mark_attribute(name))

    def handle(
        self, records: list[dict[str, Any]], item_type: ItemType, shard: str = "shard-a"
    ) -> str | None:
        """One invocation; returns the batchItemFailures identifier (None: all done)."""
        response = handlers.handle(stream_event(records, shard), Context(), item_type)
        failures = response["batchItemFailures"]
        assert len(failures) <= 1
        return failures[0]["itemIdentifier"] if failures else None

    def summary(self, kind: SummaryKind, ident: str) -> Counters:
        item = self.client.get_item(
            TableName=self.table,
            Key=summary_item_key(SummaryKey(kind, ident)),
            ConsistentRead=True,
        ).get("Item")
        return summary_counters(item) if item else ZERO

    def assert_exact(self, *streams: FakeStream) -> None:
        expected = recount(item for s in streams for item in s.items.values())
        actual = {}
        for item in scan_all(self.client, self.table):
            key = summary_key_of(item)
            if key is not None:
                actual[key] = summary_counters(item)
        for key in expected.keys() | actual.keys():
            assert actual.get(key, ZERO) == expected.get(key, ZERO), key


_tables = itertools.count()


@contextlib.contextmanager
def make_world(client: Any, workers: int = 0) -> Iterator[World]:
    table = f"test-data-{next(_tables)}"
    create_table(client, table)
    writer = FaultyWriter(SummaryStore(client, table))
    world = World(client, table, writer)

    def count(**_: Any) -> None:
        world.updates += 1

    client.meta.events.register("before-call.dynamodb.UpdateItem", count)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(workers)) if workers else None
        lineage = LineageCache(world.describe, min_interval_seconds=0.0, sleep=lambda _: None)
        handlers.configure(handlers.Runtime(writer, executor=pool, lineage=lineage))
        try:
            yield world
        finally:
            handlers.configure(None)
            handlers.metrics.clear_metrics()
            client.meta.events.unregister("before-call.dynamodb.UpdateItem", count)
            client.delete_table(TableName=table)


@pytest.fixture
def world(moto_client: Any) -> Iterator[World]:
    with make_world(moto_client) as w:
        yield w


def seq_of(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def views_of(stream: FakeStream) -> list[dict[str, Any]]:
    return [r for r in stream.records if delivered_to(r, "VIEW")]


def fresh_stream(first: int = 100_000_000_000_000_000_000) -> FakeStream:
    return FakeStream(first_sequence=first, start_time=time.time())


# --- duplicates and retries --------------------------------------------------------------------


def test_the_same_batch_twice_counts_once(world: World) -> None:
    s = fresh_stream()
    for n in range(5):
        s.put(view_item(f"u{n % 2}", "v", n + 1, TS + timedelta(seconds=n)))
    batch = views_of(s)
    assert world.handle(batch, "VIEW") is None
    before = world.updates
    assert world.handle(batch, "VIEW") is None
    assert world.updates - before == 3  # one rejected conditional update per key, nothing read
    world.assert_exact(s)


def test_a_retry_with_more_records_applies_only_the_new_ones(world: World) -> None:
    s = fresh_stream()
    for n in range(6):
        s.put(view_item("u", "v", 10, TS + timedelta(seconds=n)))
    batch = views_of(s)
    world.handle(batch[:2], "VIEW")
    world.handle(batch[:4], "VIEW")  # overlaps: 2 old + 2 new
    world.handle(batch, "VIEW")
    assert world.summary(VIDEO, "v") == Counters(views=6, duration=60)
    world.assert_exact(s)


@pytest.mark.parametrize("allowed", [0, 1, 2, 3])
def test_a_crash_between_key_writes_then_a_retry(world: World, allowed: int) -> None:
    s = fresh_stream()
    for n in range(6):
        s.put(view_item(f"u{n % 3}", f"v{n % 2}", n, TS + timedelta(seconds=n)))
    batch = views_of(s)
    world.writer.crash_after = allowed
    with pytest.raises(Crash):
        world.handle(batch, "VIEW")
    world.writer.reset()
    assert world.handle(batch, "VIEW") is None
    world.assert_exact(s)


def test_a_crash_then_bisected_retries(world: World) -> None:
    s = fresh_stream()
    item = view_item("u1", "v1", 4, TS)
    s.put(item)
    s.put(view_item("u2", "v1", 5, TS))
    s.delete((item["PK"]["S"], item["SK"]["S"]))
    s.put(view_item("u1", "v2", 6, TS))
    batch = views_of(s)
    world.writer.crash_after = 2
    with pytest.raises(Crash):
        world.handle(batch, "VIEW")
    world.writer.reset()
    assert world.handle(batch[:2], "VIEW") is None  # Lambda bisects a failed batch
    assert world.handle(batch[2:], "VIEW") is None
    world.assert_exact(s)


# --- partial failure --------------------------------------------------------------------------


def test_a_throttled_key_reports_its_first_record_and_the_retry_is_exact(world: World) -> None:
    s = fresh_stream()
    s.put(view_item("u1", "v1", 1, TS))
    s.put(view_item("u2", "v2", 2, TS))  # v2's first record
    s.put(view_item("u3", "v1", 3, TS))
    s.put(view_item("u2", "v2", 4, TS + timedelta(seconds=1)))
    batch = views_of(s)
    world.writer.throttle = {SummaryKey(VIDEO, "v2")}
    failure = world.handle(batch, "VIEW")
    assert failure == seq_of(batch[1])
    assert world.summary(VIDEO, "v1") == Counters(views=2, duration=4)
    assert world.summary(VIDEO, "v2") == ZERO
    world.writer.reset()
    assert world.handle(batch[1:], "VIEW") is None  # Lambda resumes at the reported record
    world.assert_exact(s)


def test_a_lost_reply_is_retried_without_double_counting(world: World) -> None:
    s = fresh_stream()
    s.put(vote_item("u1", "v1", "LIKE"))
    s.put(vote_item("u2", "v1", "DISLIKE"))
    batch = [r for r in s.records if delivered_to(r, "VOTE")]
    world.writer.lost_reply = {SummaryKey(USER, "u2")}
    failure = world.handle(batch, "VOTE")
    assert failure == seq_of(batch[1])
    world.writer.reset()
    assert world.handle(batch[1:], "VOTE") is None
    world.assert_exact(s)


@pytest.mark.parametrize("prefix_write_fails", [False, True])
def test_a_zero_net_key_straddling_the_failure_point(
    world: World, prefix_write_fails: bool
) -> None:
    s = fresh_stream()
    item = view_item("u1", "v1", 7, TS)
    s.put(item)  # v1 +1 ...
    s.put(view_item("u2", "v2", 1, TS))  # ... v2 will be throttled ...
    s.delete((item["PK"]["S"], item["SK"]["S"]))  # ... v1 -1: net zero, not written at first
    batch = views_of(s)
    world.writer.throttle = {SummaryKey(VIDEO, "v2")}
    if prefix_write_fails:
        world.writer.throttle.add(SummaryKey(VIDEO, "v1"))
    failure = world.handle(batch, "VIEW")
    expected_failure = batch[0] if prefix_write_fails else batch[1]
    assert failure == seq_of(expected_failure)
    if not prefix_write_fails:
        # v1's records net to zero and were written anyway (mark only): its mark covers both,
        # so the redelivered -1 is suppressed instead of landing on a summary without the +1.
        assert world.summary(VIDEO, "v1") == ZERO
    world.writer.reset()
    resume = batch.index(expected_failure)
    assert world.handle(batch[resume:], "VIEW") is None
    world.assert_exact(s)


def test_keys_not_started_before_the_deadline_are_retried(world: World) -> None:
    s = fresh_stream()
    s.put(view_item("u1", "v1", 1, TS))
    s.put(view_item("u2", "v2", 1, TS))
    batch = views_of(s)
    response = handlers.handle(stream_event(batch), Context(remaining_ms=1_000), "VIEW")
    assert response["batchItemFailures"] == [{"itemIdentifier": seq_of(batch[0])}]
    assert world.updates == 0
    assert world.handle(batch, "VIEW") is None
    world.assert_exact(s)


def test_a_corrupt_mark_fails_the_key_instead_of_guessing(world: World) -> None:
    s = fresh_stream()
    s.put(view_item("u1", "v1", 1, TS))
    batch = views_of(s)
    world.handle(batch, "VIEW")
    name = shard_marks("views", "shard-a").current
    world.client.update_item(
        TableName=world.table,
        Key=summary_item_key(SummaryKey(VIDEO, "v1")),
        UpdateExpression="SET #m = :bad",
        ExpressionAttributeNames={"#m": name},
        ExpressionAttributeValues={":bad": {"S": "zzz"}},
    )
    assert world.handle(batch, "VIEW") == seq_of(batch[0])
    assert world.summary(VIDEO, "v1") == Counters(views=1, duration=1)


# --- shards ----------------------------------------------------------------------------------


def test_marks_are_per_shard_even_when_sequence_numbers_overlap(world: World) -> None:
    # Two shards whose sequence numbers overlap, both feeding one video: a single mark per
    # summary would drop shard b's records as "already applied".
    a, b = fresh_stream(), fresh_stream()
    for n in range(3):
        a.put(view_item(f"a{n}", "hot", 1, TS + timedelta(seconds=n)))
        b.put(view_item(f"b{n}", "hot", 2, TS + timedelta(seconds=n)))
    assert world.handle(views_of(a)[:2], "VIEW", shard="shard-a") is None
    assert world.handle(views_of(b), "VIEW", shard="shard-b") is None
    assert world.handle(views_of(a), "VIEW", shard="shard-a") is None
    assert world.handle(views_of(b), "VIEW", shard="shard-b") is None  # duplicate
    assert world.summary(VIDEO, "hot") == Counters(views=6, duration=9)
    world.assert_exact(a, b)


# --- bounded marks -----------------------------------------------------------------------------


def test_stale_marks_are_pruned(world: World) -> None:
    store = world.writer.inner
    now = [time.time()]
    cache = StaleMarkCache()

    def applier(shard: str, eager: int = 3) -> Applier:
        config = ApplyConfig(
            "views", shard_marks("views", shard), retention_seconds=3600, eager_prune=eager
        )
        return Applier(store, config, cache=cache, clock=lambda: now[0])

    def marks() -> list[str]:
        item = store.read(SummaryKey(VIDEO, "v")) or {}
        return sorted(k for k in item if is_mark_attribute(k))

    def stream_at(first: int) -> FakeStream:
        stream = fresh_stream(first)
        stream._time = now[0]  # records created "now" on the test clock
        return stream

    shards = [stream_at(n * 1000) for n in range(1, 6)]
    for n, s in enumerate(shards):
        s.put(view_item(f"u{n}", "v", 1, TS))
        applier(f"s{n}").apply(parse_batch(views_of(s), "VIEW"))
    assert len(marks()) == 5
    # Three hours on (marks keep the hour, rounded up), shard s0 writes again and sees four
    # stale marks (>= eager_prune): one extra write drops them.
    now[0] += 3 * 3600
    s0 = stream_at(10**6)
    s0.put(view_item("x", "v", 1, TS))
    result = applier("s0").apply(parse_batch(views_of(s0), "VIEW"))
    assert result.writes == 2 + 1  # the video and the user summary, and the pruning
    assert marks() == [mark_name("views", shard_tag("s0"))]
    # Below the threshold, a stale mark is remembered and dropped inside the key's next update.
    s1 = stream_at(10**7)
    s1.put(view_item("y", "v", 1, TS))
    applier("s1").apply(parse_batch(views_of(s1), "VIEW"))
    assert len(marks()) == 2
    now[0] += 3 * 3600
    s0._time = now[0]
    s0.put(view_item("z", "v", 1, TS + timedelta(seconds=9)))
    result = applier("s0").apply(parse_batch(views_of(s0)[-1:], "VIEW"))
    # The 8th view moves v to the next GSI2 bucket (8-15): predicted, so no extra write.
    assert result.writes == 2
    assert len(marks()) == 2
    assert len(cache) == 1  # s1's mark, seen stale in the returned item
    s0.put(view_item("w", "v", 1, TS + timedelta(seconds=10)))
    result = applier("s0").apply(parse_batch(views_of(s0)[-1:], "VIEW"))
    assert result.writes == 2  # no extra write: the removal rode along
    assert marks() == [mark_name("views", shard_tag("s0"))]
    assert world.summary(VIDEO, "v") == Counters(views=9, duration=9)


@pytest.mark.parametrize(
    ("created", "clock"),
    [
        # The record's time comes from DynamoDB's clock (13:00:00, rounded down), the reader's
        # from the function's (12:59:58): 2 s of skew across an hour boundary.
        (476_268 * 3600.0, 476_268 * 3600.0 - 2.0),
        # ApproximateCreationDateTime in milliseconds.
        (1_714_565_000_000.0, 1_714_565_060.0),
    ],
    ids=["2s-skew-across-the-hour", "milliseconds"],
)
def test_a_fresh_mark_is_not_expired_by_another_shards_write(
    world: World, created: float, clock: float
) -> None:
    # Read as 4,095 hours old, s1's mark would be removed as stale by s2's writes, and a
    # duplicate delivery of s1's batch applied again.
    store = SummaryStore(world.client, world.table)
    cache = StaleMarkCache()

    def applier(shard: str) -> Applier:
        config = ApplyConfig("views", shard_marks("views", shard), retention_seconds=25_200)
        return Applier(store, config, cache=cache, clock=lambda: clock)

    s1, s2 = fresh_stream(), fresh_stream(first=2 * 10**20)
    first = s1.put(view_item("u1", "v", 10, TS))
    first["dynamodb"]["ApproximateCreationDateTime"] = created
    applier("s1").apply(parse_batch([first], "VIEW"))
    applier("s2").apply(parse_batch([s2.put(view_item("u2", "v", 20, TS))], "VIEW"))
    applier("s2").apply(parse_batch([s2.put(view_item("u3", "v", 30, TS))], "VIEW"))
    assert shard_marks("views", "s1").current in world.marks(VIDEO, "v")
    applier("s1").apply(parse_batch([first], "VIEW"))  # at least once: a duplicate
    assert world.summary(VIDEO, "v") == Counters(views=3, duration=60)
    world.assert_exact(s1, s2)


def test_a_mark_from_a_later_hour_is_fresh_and_an_old_one_still_ages() -> None:
    hour = 476_268
    mark = encode_mark(7, hour * 3600.0)
    assert decode_mark(mark, now=hour * 3600.0 - 2).created_by == (hour + 1) * 3600.0
    assert decode_mark(mark, now=(hour + 30) * 3600.0).created_by == (hour + 1) * 3600.0
    # 24 h ahead is still skew; 25 h ahead can only be a mark from ~170 days ago (mod 4096 h)
    assert decode_mark(mark, now=(hour - 24) * 3600.0).created_by == (hour + 1) * 3600.0
    assert decode_mark(mark, now=(hour - 25) * 3600.0).created_by == (hour - 25 - 4070) * 3600.0


def test_creation_times_in_milliseconds_or_nonsense_are_sanitised() -> None:
    s = fresh_stream()
    records = [s.put(view_item(f"u{n}", "v", 1, TS)) for n in range(4)]
    for record, value in zip(
        records, [1_714_565_000, 1_714_565_000_123, "NaN", 10**20], strict=True
    ):
        record["dynamodb"]["ApproximateCreationDateTime"] = value
    created = [r.created for r in parse_batch(records, "VIEW").records]
    assert created == [1_714_565_000.0, 1_714_565_000.123, None, None]


def test_mark_values_use_the_record_time() -> None:
    mark = decode_mark(encode_mark(42, 1_700_000_000.5), now=1_700_000_000.5)
    assert mark.created_by == (1_700_000_000 // 3600 + 1) * 3600


# --- the property ------------------------------------------------------------------------------

USERS = ["u0", "u1", "u2", "u3"]
VIDEOS = ["v0", "v1", "v2"]
SUMMARY_KEYS = [SummaryKey(USER, u) for u in USERS] + [SummaryKey(VIDEO, v) for v in VIDEOS]
DURATIONS = st.one_of(
    st.integers(min_value=0, max_value=50).map(str),
    st.sampled_from(["2.5", "-1", "NaN", "1e3"]),
)


@dataclass
class EsmSim:
    """One event source mapping on one shard: a cursor and its past checkpoints."""

    shard: int
    item_type: ItemType
    filtered: bool
    cursor: int = 0
    checkpoints: list[int] = field(default_factory=lambda: [0])
    bisect: int | None = None

    def visible(self, stream: FakeStream) -> list[dict[str, Any]]:
        if not self.filtered:
            return stream.records
        return [r for r in stream.records if delivered_to(r, self.item_type)]


def _write(data: st.DataObject, streams: list[FakeStream], clock: list[int]) -> None:
    kind = data.draw(st.sampled_from(["view", "view", "retime", "vote", "delete", "other"]))
    user = data.draw(st.sampled_from(USERS))
    stream = streams[zlib.crc32(f"USER#{user}".encode()) % len(streams)]
    existing = [key for key in stream.items if key[0] == f"USER#{user}"]
    if kind == "view":
        clock[0] += 1
        item = view_item(
            user, data.draw(st.sampled_from(VIDEOS)), 0, TS + timedelta(seconds=clock[0])
        )
        item["duration"] = {"N": data.draw(DURATIONS)}
        stream.put(item)
    elif kind == "retime" and existing:
        item = dict(stream.items[data.draw(st.sampled_from(sorted(existing)))])
        if item.get("type") == {"S": "VIEW"}:
            item["duration"] = {"N": data.draw(DURATIONS)}
        else:
            item["type"] = {"S": data.draw(st.sampled_from(["VIEW", "VOTE", "DRAFT"]))}
        stream.put(item)
    elif kind == "vote":
        vote = data.draw(st.sampled_from(["LIKE", "DISLIKE", "LIKE", "MEH"]))
        stream.put(vote_item(user, data.draw(st.sampled_from(VIDEOS)), vote))  # type: ignore[arg-type]
    elif kind == "delete" and existing:
        stream.delete(data.draw(st.sampled_from(sorted(existing))))
    elif kind == "other":
        stream.put({"PK": {"S": f"USER#{user}"}, "SK": {"S": "PROFILE"}, "type": {"S": "USER"}})


def _deliver(
    data: st.DataObject, world: World, esm: EsmSim, streams: list[FakeStream], faults: bool
) -> bool:
    """One invocation of the mapping; returns False when it had nothing to deliver."""
    records = esm.visible(streams[esm.shard])
    if esm.cursor >= len(records):
        return False
    size = data.draw(st.integers(min_value=1, max_value=8)) if faults else 10
    if esm.bisect is not None:
        size = min(size, esm.bisect)
    batch = records[esm.cursor : esm.cursor + size]
    fault = (
        data.draw(st.sampled_from(["none", "none", "crash", "throttle", "lost"]))
        if faults
        else "none"
    )
    if fault == "crash":
        world.writer.crash_after = data.draw(st.integers(min_value=0, max_value=4))
    elif fault == "throttle":
        world.writer.throttle = data.draw(st.sets(st.sampled_from(SUMMARY_KEYS), min_size=1))
    elif fault == "lost":
        world.writer.lost_reply = data.draw(st.sets(st.sampled_from(SUMMARY_KEYS), min_size=1))
    try:
        failure = world.handle(batch, esm.item_type, shard=f"shard-{esm.shard}")
    except Crash:
        esm.bisect = max(1, len(batch) // 2)  # BisectBatchOnFunctionError
        return True
    finally:
        world.writer.reset()
    esm.bisect = None
    if failure is None:
        esm.cursor += len(batch)
    else:
        esm.cursor += [seq_of(r) for r in batch].index(failure)
    esm.checkpoints.append(esm.cursor)
    return True


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_summaries_equal_the_recount_under_any_faults(
    moto_client: Any, data: st.DataObject
) -> None:
    workers = data.draw(st.sampled_from([0, 4]))
    with make_world(moto_client, workers) as world:
        # Two shards whose sequence numbers overlap; a user's items all live in one of them.
        streams = [fresh_stream(), fresh_stream()]
        esms = [
            EsmSim(shard, item_type, filtered=data.draw(st.booleans()))
            for shard in range(len(streams))
            for item_type in ("VIEW", "VOTE")
        ]
        clock = [0]
        for _ in range(data.draw(st.integers(min_value=1, max_value=50))):
            action = data.draw(st.sampled_from(["write", "write", "deliver", "deliver", "rewind"]))
            if action == "write":
                _write(data, streams, clock)
                continue
            esm = data.draw(st.sampled_from(esms))
            if action == "deliver":
                _deliver(data, world, esm, streams, faults=True)
            else:  # a lost checkpoint: redelivery from an earlier one (a duplicate delivery)
                earlier = [c for c in esm.checkpoints if c <= esm.cursor]
                esm.cursor = data.draw(st.sampled_from(earlier))
        for esm in esms:  # quiesce: no more faults, read every shard to its end
            for _ in range(1_000):
                if not _deliver(data, world, esm, streams, faults=False):
                    break
            assert esm.cursor == len(esm.visible(streams[esm.shard]))
        world.assert_exact(*streams)


# --- shard lineage: pruning, replays, upgrade -----------------------------------------------


def closed(shard_id: str, parent: str | None = None) -> Shard:
    return Shard(shard_id, parent, closed=True)


def opened(shard_id: str, parent: str | None = None) -> Shard:
    return Shard(shard_id, parent, closed=False)


def test_a_child_shard_drops_its_parents_mark_in_its_first_write(world: World) -> None:
    parent, child = fresh_stream(), fresh_stream(first=5 * 10**20)
    world.shards = [opened("p")]
    parent.put(view_item("u1", "hot", 1, TS))
    parent.put(view_item("u1", "hot", 1, TS + timedelta(seconds=1)))
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    assert world.marks(VIDEO, "hot") == [shard_marks("views", "p").current]
    # The parent closes; Lambda starts the child only after the parent's last record.
    world.shards = [closed("p"), opened("c", parent="p")]
    child.put(view_item("u2", "hot", 2, TS))
    before = world.updates
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert world.updates - before == 2  # no extra write: the REMOVE rode along
    assert world.marks(VIDEO, "hot") == [shard_marks("views", "c").current]
    assert world.summary(VIDEO, "hot") == Counters(views=3, duration=4)
    world.assert_exact(parent, child)


def test_a_replayed_parent_is_suppressed_by_its_childs_mark(world: World) -> None:
    # A re-created mapping (TRIM_HORIZON) reads the closed parent again after the child ran.
    parent, child = fresh_stream(), fresh_stream(first=10**20 + 1)  # overlapping numbers
    world.shards = [closed("p"), opened("c", parent="p")]
    for n in range(3):
        parent.put(view_item(f"u{n}", "hot", 1, TS + timedelta(seconds=n)))
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    child.put(view_item("u9", "hot", 1, TS))
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert shard_marks("views", "p").current not in world.marks(VIDEO, "hot")
    assert world.handle(views_of(parent), "VIEW", shard="p") is None  # the replay
    assert world.handle(views_of(parent)[1:], "VIEW", shard="p") is None  # a part of it
    assert world.summary(VIDEO, "hot") == Counters(views=4, duration=4)
    world.assert_exact(parent, child)


def test_a_split_parent_is_guarded_by_either_child(world: World) -> None:
    parent, left, right = fresh_stream(), fresh_stream(first=2 * 10**20), fresh_stream()
    world.shards = [closed("p"), opened("l", parent="p"), opened("r", parent="p")]
    parent.put(view_item("u1", "v", 1, TS))
    parent.put(view_item("u2", "w", 1, TS))
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    left.put(view_item("u3", "v", 1, TS))  # only the left child writes v
    right.put(view_item("u4", "w", 1, TS))  # only the right child writes w
    assert world.handle(views_of(left), "VIEW", shard="l") is None
    assert world.handle(views_of(right), "VIEW", shard="r") is None
    assert world.handle(views_of(parent), "VIEW", shard="p") is None  # replay
    assert world.marks(VIDEO, "v") == [shard_marks("views", "l").current]
    assert world.marks(VIDEO, "w") == [shard_marks("views", "r").current]
    world.assert_exact(parent, left, right)


def test_grandchildren_drop_every_known_ancestor(world: World) -> None:
    gens = [fresh_stream(first=(g + 1) * 10**20) for g in range(3)]
    world.shards = [closed("g0"), closed("g1", "g0"), opened("g2", "g1")]
    gens[0].put(view_item("u0", "v", 1, TS))
    world.handle(views_of(gens[0]), "VIEW", shard="g0")
    gens[1].put(view_item("u1", "x", 1, TS))  # g1 never writes v
    world.handle(views_of(gens[1]), "VIEW", shard="g1")
    gens[2].put(view_item("u2", "v", 1, TS))
    world.handle(views_of(gens[2]), "VIEW", shard="g2")
    assert world.marks(VIDEO, "v") == [shard_marks("views", "g2").current]
    world.assert_exact(*gens)


def test_a_deep_lineage_names_a_bounded_number_of_marks(world: World) -> None:
    # A local stream rotating every few seconds is never trimmed: after 200 generations one
    # UpdateItem must still name only the nearest ancestors (moto's expression parser fails
    # somewhere past 150 names; DynamoDB allows 300 operators); older ancestors' marks that
    # the item holds are found on the returned item and removed like stale marks.
    depth = 200
    world.shards = [closed(f"g{g}", f"g{g - 1}" if g else None) for g in range(depth)]
    world.shards.append(opened(f"g{depth}", f"g{depth - 1}"))
    longest: list[int] = []

    def measure(params: dict[str, Any], **_: Any) -> None:
        longest.append(len(params.get("ExpressionAttributeNames", {})))

    world.client.meta.events.register("provide-client-params.dynamodb.UpdateItem", measure)
    try:
        streams = {g: fresh_stream(first=(g + 1) * 10**20) for g in (3, 150, depth)}
        for n, g in enumerate((3, 150, depth, depth)):
            streams[g].put(view_item(f"u{n}", "v", 1, TS + timedelta(seconds=n)))
            assert world.handle(views_of(streams[g])[-1:], "VIEW", shard=f"g{g}") is None
    finally:
        world.client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", measure)
    bound = 2 * (handlers.MAX_NAMED_ANCESTORS + handlers.MAX_NAMED_DESCENDANTS) + 16
    assert max(longest) <= bound, max(longest)
    assert world.marks(VIDEO, "v") == [shard_marks("views", f"g{depth}").current]
    assert world.summary(VIDEO, "v") == Counters(views=4, duration=4)
    world.assert_exact(*streams.values())


def test_without_lineage_no_batch_is_applied_until_it_returns(world: World) -> None:
    world.shards = None  # DescribeStream throttled, on every try
    parent, child = fresh_stream(), fresh_stream(first=3 * 10**20)
    parent.put(view_item("u1", "v", 1, TS))
    child.put(view_item("u2", "v", 1, TS))
    handlers.metrics.clear_metrics()
    # The whole batch is handed back (from its first record) and nothing is written.
    assert world.handle(views_of(parent), "VIEW", shard="p") == seq_of(views_of(parent)[0])
    assert world.describe_calls == 3  # lineage.ATTEMPTS
    assert handlers.metrics.metric_set["LineageErrors"]["Value"] == [3]
    assert world.updates == 0
    world.shards = [closed("p"), opened("c", parent="p")]  # the throttling ends: Lambda retries
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert world.marks(VIDEO, "v") == [shard_marks("views", "c").current]  # pruned
    world.assert_exact(parent, child)


def test_a_replayed_parent_in_a_container_whose_lineage_is_throttled_is_not_applied(
    world: World,
) -> None:
    # The parent wrote v, its child wrote v and pruned the parent's mark. The mapping is
    # re-created at TRIM_HORIZON and the parent is replayed in a fresh container whose
    # DescribeStream is throttled: without lineage nothing tells it the child's mark guards v.
    parent, child = fresh_stream(), fresh_stream(first=10**20 + 1)
    world.shards = [closed("p"), opened("c", parent="p")]
    parent.put(view_item("u1", "v", 10, TS))
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    child.put(view_item("u2", "v", 20, TS))
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert world.marks(VIDEO, "v") == [shard_marks("views", "c").current]

    runtime = handlers._get_runtime()
    fresh = LineageCache(world.describe, min_interval_seconds=0.0, sleep=lambda _: None)
    handlers.configure(handlers.Runtime(runtime.writer, executor=None, lineage=fresh))
    world.shards = None
    assert world.handle(views_of(parent), "VIEW", shard="p") is not None  # handed back
    assert world.summary(VIDEO, "v") == Counters(views=2, duration=30)
    world.shards = [closed("p"), opened("c", parent="p")]
    handlers.metrics.clear_metrics()
    assert world.handle(views_of(parent), "VIEW", shard="p") is None  # the retry: guarded
    # v is guarded by the child's mark; u1's summary holds the parent's own mark (a duplicate).
    assert handlers.metrics.metric_set["KeysReplayGuarded"]["Value"] == [1]
    assert handlers.metrics.metric_set["IntegrityEvents"]["Value"] == [1]
    assert world.summary(VIDEO, "v") == Counters(views=2, duration=30)
    world.assert_exact(parent, child)


def test_a_shard_that_describe_stream_does_not_list_is_counted_and_applied(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing in AWS's documentation says the event's shardId equals DescribeStream's ShardId.
    world.shards = [opened("shardId-other")]
    s = fresh_stream()
    s.put(view_item("u1", "v", 1, TS))
    handlers.metrics.clear_metrics()
    assert world.handle(views_of(s), "VIEW", shard="unlisted") is None
    assert handlers.metrics.metric_set["UnknownShard"]["Value"] == [1]
    assert handlers.metrics.metric_set["IntegrityEvents"]["Value"] == [1]
    assert any("not found by DescribeStream" in r.getMessage() for r in caplog.records)
    s.put(view_item("u2", "v", 1, TS))
    assert world.handle(views_of(s), "VIEW", shard="unlisted") is None
    assert world.describe_calls == 1  # remembered for a refresh interval, not asked per batch
    world.assert_exact(s)


def test_a_final_invocation_whose_key_fails_raises_and_its_retry_is_exact(world: World) -> None:
    s = fresh_stream()
    for n in range(3):
        s.put(view_item(f"u{n}", f"v{n}", 1, TS))
    event = stream_event(views_of(s), "shard-a") | {"isFinalInvokeForWindow": True}
    world.writer.throttle = {SummaryKey(VIDEO, "v1")}
    # What Lambda does with batchItemFailures of a final invocation is not documented: a
    # function error makes it retry the invocation.
    with pytest.raises(handlers.FinalInvocationIncomplete):
        handlers.handle(event, Context(), "VIEW")
    world.writer.reset()
    assert handlers.handle(event, Context(), "VIEW") == {"batchItemFailures": [], "state": {}}
    world.assert_exact(s)


def test_lineage_pruning_can_be_switched_off(world: World) -> None:
    runtime = handlers._get_runtime()
    handlers.configure(
        handlers.Runtime(runtime.writer, None, lineage=runtime.lineage, lineage_pruning=False)
    )
    parent, child = fresh_stream(), fresh_stream(first=3 * 10**20)
    world.shards = [closed("p"), opened("c", parent="p")]
    parent.put(view_item("u1", "v", 1, TS))
    child.put(view_item("u2", "v", 1, TS))
    assert world.handle(views_of(parent), "VIEW", shard="p") is None
    assert world.handle(views_of(child), "VIEW", shard="c") is None
    assert len(world.marks(VIDEO, "v")) == 2  # the parent's mark stays
    assert world.describe_calls == 0  # and DescribeStream is never called
    world.assert_exact(parent, child)


def test_the_lineage_is_confirmed_rarely_and_narrowly() -> None:
    full: list[str] = []
    narrow: list[str] = []
    now = [0.0]
    listing = [opened("a"), closed("old")]
    children: dict[str, list[Shard]] = {}

    def fetch(arn: str) -> list[Shard]:
        full.append(arn)
        return list(listing)

    def fetch_children(_arn: str, shard: str) -> list[Shard]:
        narrow.append(shard)
        return children.get(shard, [])

    cache = LineageCache(
        fetch, fetch_children, clock=lambda: now[0], jitter=lambda: 1.0, refresh_seconds=300
    )
    assert cache.get("arn", "a").knows("a")
    now[0] = 200
    cache.get("arn", "a")
    cache.get("arn", "old")
    assert (len(full), narrow) == (1, [])  # both vouched for by the first listing
    now[0] = 301
    cache.get("arn", "a")  # a leaf, 301 s later: one narrow call confirms it has no children
    assert (len(full), narrow) == (1, ["a"])
    cache.get("arn", "a")
    assert (len(full), narrow) == (1, ["a"])
    now[0] = 650
    children["a"] = [opened("b", parent="a")]
    listing[:] = [closed("a"), opened("b", parent="a"), closed("old")]
    assert cache.get("arn", "a").descendants("a") == ["b"]  # children found: full listing
    assert len(full) == 2
    cache.get("arn", "new")  # unknown: listed again, and remembered as unknown
    cache.get("arn", "new")
    assert len(full) == 3


def test_a_confirmation_lasts_a_jittered_interval() -> None:
    calls: list[str] = []
    now = [0.0]

    def fetch(arn: str) -> list[Shard]:
        calls.append(arn)
        return [opened("a")]

    cache = LineageCache(
        fetch,
        clock=lambda: now[0],
        jitter=lambda: 0.0,
        refresh_seconds=300,
    )
    cache.get("arn", "a")
    now[0] = 224
    cache.get("arn", "a")
    assert len(calls) == 1
    now[0] = 226  # 75 % of the interval: containers started together refresh at different times
    cache.get("arn", "a")
    assert len(calls) == 2


def test_a_failing_describe_stream_is_retried_with_backoff_then_reported() -> None:
    pauses: list[float] = []
    cache = LineageCache(
        lambda _arn: (_ for _ in ()).throw(
            ClientError({"Error": {"Code": "LimitExceededException"}}, "DescribeStream")
        ),
        sleep=pauses.append,
        jitter=lambda: 0.5,
        min_interval_seconds=0.0,
    )
    with pytest.raises(LineageUnavailable, match="LimitExceededException"):
        cache.get("arn", "a")
    assert (cache.calls, cache.errors) == (3, 3)
    assert pauses == [0.5, 1.0]  # doubled, jittered


def test_an_old_format_mark_is_honoured_and_converted(world: World) -> None:
    # A live stack upgrades: the item holds the mark the previous version wrote.
    s = fresh_stream()
    for n in range(4):
        s.put(view_item(f"u{n}", "v", 1, TS + timedelta(seconds=n)))
    batch = views_of(s)
    old = legacy_encode_seq(int(seq_of(batch[1]))) + f"|{int(time.time())}"
    legacy = shard_marks("views", "shard-a").legacy
    world.client.put_item(
        TableName=world.table,
        Item={
            **summary_item_key(SummaryKey(VIDEO, "v")),
            "views": {"N": "2"},
            "duration": {"N": "2"},
            legacy: {"S": old},
        },
    )
    for n in range(2):  # the user summaries of the two applied records, as the old code left them
        world.client.put_item(
            TableName=world.table,
            Item={
                **summary_item_key(SummaryKey(USER, f"u{n}")),
                "views": {"N": "1"},
                "duration": {"N": "1"},
                legacy: {"S": legacy_encode_seq(int(seq_of(batch[n]))) + f"|{int(time.time())}"},
            },
        )
    assert world.handle(batch, "VIEW") is None  # redelivered from before the upgrade
    assert world.summary(VIDEO, "v") == Counters(views=4, duration=4)
    assert world.marks(VIDEO, "v") == [shard_marks("views", "shard-a").current]  # converted
    assert world.handle(batch, "VIEW") is None
    world.assert_exact(s)


def test_a_batch_starting_after_the_resume_point_is_counted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    s = fresh_stream()
    for n in range(4):
        s.put(view_item(f"u{n}", f"v{n}", 1, TS))
    batch = views_of(s)

    def invoke(records: list[dict[str, Any]], state: dict[str, Any]) -> dict[str, Any]:
        # Lambda hands the shard's next invocation the state the previous one returned.
        event = stream_event(records, "shard-a") | {"state": state}
        return handlers.handle(event, Context(), "VIEW")

    world.writer.throttle = {SummaryKey(VIDEO, "v1")}
    response = invoke(batch, {})
    assert response == {
        "batchItemFailures": [{"itemIdentifier": seq_of(batch[1])}],
        "state": {"resumeFrom": seq_of(batch[1])},
    }
    world.writer.reset()
    handlers.metrics.clear_metrics()
    assert invoke(batch[2:], response["state"])["state"] == {}  # v1's record skipped: detected
    assert handlers.metrics.metric_set["RecordsOutOfOrder"]["Value"] == [2]
    assert any("resume from" in r.getMessage() for r in caplog.records)
    handlers.metrics.clear_metrics()
    assert invoke(batch[1:], response["state"])["state"] == {}  # in order: nothing to report
    assert "RecordsOutOfOrder" not in handlers.metrics.metric_set
    world.assert_exact(s)


# --- the property, with shard rotation, lineage and out-of-order redelivery --------------------


@dataclass
class Partition:
    """One key range of the table: a chain of shards, parent before child."""

    index: int
    generations: list[FakeStream] = field(default_factory=list)

    def shard_id(self, generation: int) -> str:
        return f"shardId-p{self.index}-g{generation}"


@dataclass
class LineageEsm:
    """One mapping on one partition: reads generation after generation, each to its end."""

    partition: Partition
    item_type: ItemType
    generation: int = 0
    cursor: int = 0
    checkpoints: list[int] = field(default_factory=lambda: [0])

    def visible(self, generation: int) -> list[dict[str, Any]]:
        stream = self.partition.generations[generation]
        return [r for r in stream.records if delivered_to(r, self.item_type)]

    def advance(self) -> None:
        """Lambda moves to the child only once the parent is read to its end (and closed)."""
        while self.generation + 1 < len(self.partition.generations) and self.cursor >= len(
            self.visible(self.generation)
        ):
            self.generation += 1
            self.cursor = 0
            self.checkpoints = [0]


def _shards_of(partitions: list[Partition]) -> list[Shard]:
    shards = []
    for p in partitions:
        for g in range(len(p.generations)):
            parent = p.shard_id(g - 1) if g else None
            shards.append(Shard(p.shard_id(g), parent, closed=g + 1 < len(p.generations)))
    return shards


def _lineage_deliver(data: st.DataObject, world: World, esm: LineageEsm, faults: bool) -> bool:
    esm.advance()
    records = esm.visible(esm.generation)
    if esm.cursor >= len(records):
        return False
    size = data.draw(st.integers(min_value=1, max_value=6)) if faults else 10
    batch = records[esm.cursor : esm.cursor + size]
    fault = data.draw(st.sampled_from(["none", "none", "crash", "throttle"])) if faults else "none"
    if fault == "crash":
        world.writer.crash_after = data.draw(st.integers(min_value=0, max_value=3))
    elif fault == "throttle":
        world.writer.throttle = data.draw(st.sets(st.sampled_from(SUMMARY_KEYS), min_size=1))
    shard = esm.partition.shard_id(esm.generation)
    try:
        failure = world.handle(batch, esm.item_type, shard=shard)
    except Crash:
        return True
    finally:
        world.writer.reset()
    esm.cursor += len(batch) if failure is None else [seq_of(r) for r in batch].index(failure)
    esm.checkpoints.append(esm.cursor)
    return True


def _redeliver_out_of_order(data: st.DataObject, world: World, esm: LineageEsm) -> None:
    """Acknowledged records again, any subset, any order, any grouping: a duplicate delivery,
    a retry from an old checkpoint, or a re-created mapping replaying older generations."""
    acknowledged = [
        (g, r)
        for g in range(esm.generation + 1)
        for r in (esm.visible(g) if g < esm.generation else esm.visible(g)[: esm.cursor])
    ]
    if not acknowledged:
        return
    chosen = data.draw(st.lists(st.sampled_from(acknowledged), min_size=1, max_size=8))
    for generation in {g for g, _ in chosen}:
        records = [r for g, r in chosen if g == generation]
        with contextlib.suppress(Crash):
            world.handle(records, esm.item_type, shard=esm.partition.shard_id(generation))
        world.writer.reset()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_summaries_equal_the_recount_across_rotations_and_out_of_order_redelivery(
    moto_client: Any, data: st.DataObject
) -> None:
    with make_world(moto_client) as world:
        partitions = [Partition(p, [fresh_stream(first=10**20 + p)]) for p in range(2)]
        esms = [LineageEsm(p, t) for p in partitions for t in ("VIEW", "VOTE")]
        clock = [0]
        for _ in range(data.draw(st.integers(min_value=1, max_value=60))):
            world.shards = _shards_of(partitions)
            action = data.draw(
                st.sampled_from(["write", "write", "deliver", "deliver", "rotate", "redeliver"])
            )
            if action == "write":
                _write(data, [p.generations[-1] for p in partitions], clock)
            elif action == "rotate":
                p = data.draw(st.sampled_from(partitions))
                # Sequence numbers of different shards overlap and differ in length.
                first = data.draw(st.sampled_from([10**20, 10**20 + 3, 10**39]))
                p.generations.append(fresh_stream(first=first))
            elif action == "deliver":
                _lineage_deliver(data, world, data.draw(st.sampled_from(esms)), faults=True)
            else:
                _redeliver_out_of_order(data, world, data.draw(st.sampled_from(esms)))
        world.shards = _shards_of(partitions)
        for esm in esms:  # quiesce
            for _ in range(1_000):
                if not _lineage_deliver(data, world, esm, faults=False):
                    break
        for esm in esms:  # and a last out-of-order replay of everything acknowledged
            _redeliver_out_of_order(data, world, esm)
        world.assert_exact(*(s for p in partitions for s in p.generations))
        # Lineage pruning: at most one mark per function and partition on any summary.
        for key in SUMMARY_KEYS:
            marks = world.marks(key.kind, key.id)
            for prefix in ("@v", "@o"):
                assert len([m for m in marks if m.startswith(prefix)]) <= len(partitions), marks
