"""reconcile: the shared recount finds injected drift; --repair fixes it while the application
keeps writing, without losing or double-counting those writes (StreamConsumer stands in for
the mappings: it runs the handlers' code and keeps its stream position while paused)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from video_stats import model
from video_stats.lineage import Lineage, Shard
from video_stats.marks import encode_mark, shard_marks
from video_stats.model import Counters, SummaryKey, SummaryKind
from video_stats.store import SummaryStore
from vstats import deployment, drift, reconcile
from vstats.drift import compare, find_drift, index_faults, read_snapshot, settled_faults
from vstats.generator import EventGenerator
from vstats.pipeline import IN_FLIGHT_SECONDS, settled_age
from vstats.repair import repair
from vstats.stream_reader import Bound, StreamRecord, StreamTiming, read_stream
from vstats.summary_writes import rank, write_index
from vstats.tables import list_summaries, write_operation
from vstats.target_reads import live_check
from vstats.targets import corrections
from vstats_support import INDEX_SHARDS, StreamConsumer, TableEnv

VIDEO0 = SummaryKey(SummaryKind.VIDEO, "0")
FAST = StreamTiming(delay=0.0, margin=0.5, open_shard_seconds=0.2, poll_seconds=0.01)


@pytest.fixture(autouse=True)
def quick_cli_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's waits are sized for a running stack (an open shard polled 1.5 s for a record
    past the bound, an index fault re-read 1 s later); this table is quiet, so the same reads
    with shorter waits see the same items and keep the fast tier fast."""
    monkeypatch.setattr(reconcile, "LOCAL_TIMING", FAST)
    monkeypatch.setattr(drift, "INDEX_SETTLE_SECONDS", 0.05)


def write_traffic(table: TableEnv, generator: EventGenerator, events: int) -> None:
    for _ in range(events):
        op = generator.next()
        write_operation(table.client, table.name, op)


def inject_drift(table: TableEnv, key: SummaryKey, views: int) -> None:
    """A lost record, as it looks afterwards: the counter is off and no mark moved."""
    table.client.update_item(
        TableName=table.name,
        Key=model.summary_item_key(key),
        UpdateExpression="ADD #v :d",
        ExpressionAttributeNames={"#v": "views"},
        ExpressionAttributeValues={":d": {"N": str(views)}},
    )


@pytest.fixture
def settled(table: TableEnv, consumer: StreamConsumer) -> EventGenerator:
    """A table with traffic the consumer has applied: no drift."""
    generator = EventGenerator(users=5, videos=4, seed=11, skew=0.8)
    write_traffic(table, generator, 80)
    consumer.process()
    assert find_drift(table.client, table.name) == []
    return generator


def test_find_drift_reports_exactly_the_injected_drift(
    table: TableEnv, settled: EventGenerator
) -> None:
    before = model.summary_counters(
        table.client.get_item(TableName=table.name, Key=model.summary_item_key(VIDEO0))["Item"]
    )
    inject_drift(table, VIDEO0, 5)
    table.client.delete_item(
        TableName=table.name, Key=model.summary_item_key(SummaryKey(SummaryKind.USER, "3"))
    )
    drifts = find_drift(table.client, table.name, segments=3)
    assert [(d.key, d.exists) for d in drifts] == [
        (SummaryKey(SummaryKind.USER, "3"), False),
        (VIDEO0, True),
    ]
    video = drifts[1]
    assert video.expected == before
    assert video.difference == Counters(views=5)


def test_reconcile_cli_exit_status_and_table(
    table: TableEnv, settled: EventGenerator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reconcile.main(table.args()) == 0
    assert "No drift" in capsys.readouterr().out
    inject_drift(table, VIDEO0, -2)
    assert reconcile.main(["--segments", "2", *table.args()]) == 1
    out = capsys.readouterr().out
    assert "1 summaries drift" in out
    assert "VIDEO 0" in out
    assert "(-2)" in out
    assert reconcile.main(["--format", "json", *table.args()]) == 1
    (drift,) = json.loads(capsys.readouterr().out)["drift"]
    assert drift["difference"] == {"views": -2, "duration": 0, "likes": 0, "dislikes": 0}


def test_repair_keeps_writes_made_during_the_repair(
    table: TableEnv, consumer: StreamConsumer, settled: EventGenerator
) -> None:
    inject_drift(table, VIDEO0, 7)
    inject_drift(table, SummaryKey(SummaryKind.USER, "1"), -3)
    # While the mappings are paused the application keeps writing: new views and votes,
    # changed and removed ones, on the very summaries that drift.
    consumer.on_pause = lambda: write_traffic(table, settled, 120)
    result = repair(
        table.client, table.streams, table.name, table.stream_arn, consumer, timing=FAST
    )
    assert {d.key for d in result.drift_before} >= {VIDEO0, SummaryKey(SummaryKind.USER, "1")}
    assert result.paused == ["consumer"]
    assert not result.conflicts
    assert not consumer.paused
    # Once the consumer has caught up on what was written during the repair: exact.
    consumer.process()
    assert find_drift(table.client, table.name) == []


def test_setting_summaries_to_the_plain_recount_would_double_count(
    table: TableEnv, consumer: StreamConsumer, settled: EventGenerator
) -> None:
    """Why repair corrects for the records above the marks: without it, the writes made while
    paused are counted by the recount and again by the handlers."""
    consumer.pause()
    write_traffic(table, settled, 60)
    snapshot = read_snapshot(table.client, table.name, keep_base=True)
    assert snapshot.base_items is not None
    records = read_stream(
        table.streams, table.stream_arn, bound=Bound(time=time.time() + 1), timing=FAST
    ).records
    changes = corrections(
        records, snapshot.base_items, snapshot.summaries, table.stream_arn, estimate_positions=False
    ).changes
    assert any(not c.is_zero() for c in changes.values())
    # The summaries as they stand are exactly recount + corrections: nothing to repair.
    targets = dict(snapshot.recount)
    for key, change in changes.items():
        targets[key] = targets.get(key, model.ZERO) + change
    for key, item in snapshot.summaries.items():
        assert model.summary_counters(item) == targets.get(key, model.ZERO), key


def test_corrections_follow_the_lineage_not_the_sequence_numbers() -> None:
    """An item's records follow its partition's lineage; sequence numbers of a parent and its
    child are not comparable (the child's may be lower). Nothing is applied yet: the target must
    hold nothing of the item, which only the parent-first order gives."""
    created = model.view_item("u", "v", 10, datetime(2024, 1, 1, tzinfo=UTC))
    changed = {**created, "duration": {"N": "30"}}
    identity = (created["PK"]["S"], created["SK"]["S"])
    records = [
        StreamRecord("child", 100, identity, changed, created),  # MODIFY, lower number
        StreamRecord("parent", 900, identity, created, None),  # INSERT, came first
    ]
    lineage = Lineage.of([Shard("parent", None, True), Shard("child", "parent", False)], 0.0)
    changes = corrections(
        records, {identity: changed}, {}, "arn", lineage, estimate_positions=False
    ).changes
    recount = model.recount([changed])
    for key, counted in recount.items():
        assert counted + changes[key] == model.ZERO, key


def rotated_lineage_in_flight() -> tuple[list[StreamRecord], dict[Any, Any], dict[Any, Any]]:
    """Shard "parent" closed, "child" open; a batch of the child in flight has written the
    summaries of a later view (mark 20) but not yet those of an earlier one (record 10), which
    hold only the parent's mark: the state a scan can see on a running stack."""
    when = datetime(2024, 5, 1, tzinfo=UTC)
    earlier, later = model.view_item("1", "a", 10, when), model.view_item("2", "b", 10, when)
    records = [
        StreamRecord("child", 10, (earlier["PK"]["S"], earlier["SK"]["S"]), earlier, None),
        StreamRecord("child", 20, (later["PK"]["S"], later["SK"]["S"]), later, None),
    ]
    base = {record.identity: record.new for record in records}

    def summary(views: int, shard: str, seq: int) -> dict[str, Any]:
        mark = {shard_marks("views", shard).current: {"S": encode_mark(seq, when.timestamp())}}
        return {"views": {"N": str(views)}, "duration": {"N": str(10 * views)}, **mark}

    summaries = {
        SummaryKey(SummaryKind.USER, "1"): summary(0, "parent", 5),
        SummaryKey(SummaryKind.VIDEO, "a"): summary(0, "parent", 5),
        SummaryKey(SummaryKind.USER, "2"): summary(1, "child", 20),
        SummaryKey(SummaryKind.VIDEO, "b"): summary(1, "child", 20),
    }
    return records, base, summaries


ROTATED = Lineage.of([Shard("parent", None, True), Shard("child", "parent", False)], 0.0)


def test_a_check_on_a_running_stack_counts_unmarked_records_as_in_flight() -> None:
    """The check after the repair (and --live) runs while batches are in flight: another
    summary's mark in the new shard says nothing about a summary that has none there yet."""
    records, base, summaries = rotated_lineage_in_flight()
    args = (records, base, summaries, "arn", ROTATED)
    found = corrections(*args, estimate_positions=False)
    targets = model.recount(base.values())
    for key, change in found.changes.items():
        targets[key] = targets[key] + change
    assert compare(targets, summaries) == []
    assert found.marks == {}
    # The estimated position (right only while paused) takes record 10 as applied, so
    # USER 1 and VIDEO a would show as drift.
    assert corrections(*args, estimate_positions=True).changes == {}


def test_a_paused_repair_gives_the_estimated_position_as_a_mark() -> None:
    """Paused, the same state is a batch that failed for the earlier view's summaries and
    will be redelivered: the repair counts the record and writes the child's mark with it."""
    records, base, summaries = rotated_lineage_in_flight()
    found = corrections(records, base, summaries, "arn", ROTATED, estimate_positions=True)
    child = shard_marks("views", "child").current
    expected = summaries[SummaryKey(SummaryKind.USER, "2")][child]["S"]
    assert found.marks == {
        SummaryKey(SummaryKind.USER, "1"): {child: expected},
        SummaryKey(SummaryKind.VIDEO, "a"): {child: expected},
    }


def test_a_childs_mark_on_any_summary_means_its_parent_is_finished() -> None:
    """Lambda reads a parent shard before its children: once any summary holds a child's
    mark, every record of the parent was applied (or given up on), also on a running stack."""
    records, base, summaries = rotated_lineage_in_flight()
    moved = [StreamRecord("parent", r.seq, r.identity, r.new, r.old) for r in records[:1]]
    unmarked = {k: v for k, v in summaries.items() if k.id not in ("1", "a")}
    found = corrections(
        moved, base, unmarked, "arn", ROTATED, estimate_positions=False
    )  # USER 1 and VIDEO a deleted: the parent's view counts, so they drift
    assert found.changes == {}
    assert {d.key for d in compare(model.recount(base.values()), unmarked)} == {
        SummaryKey(SummaryKind.USER, "1"),
        SummaryKey(SummaryKind.VIDEO, "a"),
    }


def test_records_past_the_mappings_age_limit_count_as_applied() -> None:
    """A shard's mark is removed from a summary once its record is older than the handlers'
    retention (the mapping's record age + a margin), while the stream keeps the record for
    24 h. With no mark of the shard left anywhere, only the record's age says it was applied:
    without it the target would drop a view the summary rightly holds, and --repair would
    write that."""
    when = datetime(2024, 5, 1, tzinfo=UTC)
    view = model.view_item("1", "a", 10, when)
    identity = (view["PK"]["S"], view["SK"]["S"])
    records = [StreamRecord("old", 10, identity, view, None, created=when.timestamp())]
    summaries = {
        key: {"views": {"N": "1"}, "duration": {"N": "10"}}
        for key in (SummaryKey(SummaryKind.USER, "1"), SummaryKey(SummaryKind.VIDEO, "a"))
    }
    args = (records, {identity: view}, summaries, "arn")
    settled = when.timestamp() + 1
    for estimate in (False, True):
        assert corrections(*args, estimate_positions=estimate).changes != {}
        found = corrections(*args, estimate_positions=estimate, settled_before=settled)
        assert found.changes == {}
        assert found.marks == {}


def test_the_settled_age_is_the_longest_record_age_of_the_mappings() -> None:
    class Mappings:
        def __init__(self, *ages: int | None) -> None:
            self.ages = ages

        def list_event_source_mappings(self, **_: Any) -> dict[str, Any]:
            return {
                "EventSourceMappings": [
                    {} if age is None else {"MaximumRecordAgeInSeconds": age} for age in self.ages
                ]
            }

    assert settled_age(Mappings(21_600, 3_600), "arn") == 21_600 + IN_FLIGHT_SECONDS
    assert settled_age(Mappings(21_600, -1), "arn") is None  # kept as long as the stream
    assert settled_age(Mappings(21_600, None), "arn") is None
    assert settled_age(Mappings(), "arn") is None  # nothing reads the stream


def test_repair_cli_without_drift_leaves_the_mappings_alone(
    table: TableEnv, settled: EventGenerator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reconcile.main(["--repair", *table.args()]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_cli_against_the_lambda_api(
    table: TableEnv,
    consumer: StreamConsumer,
    settled: EventGenerator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI path: mappings found by stream ARN, disabled, waited for, re-enabled."""
    calls: list[tuple[str, Any]] = []

    class FakeLambda:
        state = "Enabled"

        def list_event_source_mappings(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs == {"EventSourceArn": table.stream_arn}
            return {
                "EventSourceMappings": [
                    {"UUID": "u-1", "State": self.state, "FunctionArn": "arn:x:function:views"}
                ]
            }

        def update_event_source_mapping(self, UUID: str, Enabled: bool) -> None:
            calls.append(("update", Enabled))
            self.state = "Enabled" if Enabled else "Disabled"
            consumer.paused = not Enabled

        def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:
            return {"State": self.state}

        def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
            calls.append(("timeout", FunctionName))
            return {"Timeout": 60}

    fake = FakeLambda()
    real_client = deployment.Deployment.client

    def client(self: Any, service: str, **kwargs: Any) -> Any:
        return fake if service == "lambda" else real_client(self, service, **kwargs)

    monkeypatch.setattr(deployment.Deployment, "client", client)
    inject_drift(table, VIDEO0, 4)
    code = reconcile.main(["--repair", "--grace", "0", "--format", "json", *table.args()])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["id"]) for r in doc["repaired"]] == [("VIDEO", "0")]
    assert doc["repaired"][0]["before"]["views"] == doc["repaired"][0]["after"]["views"] + 4
    assert doc["paused_mappings"] == ["u-1"]
    assert calls == [("update", False), ("update", True)]  # --grace 0: no timeout lookup
    assert doc["remaining_drift"] == []
    assert find_drift(table.client, table.name) == []


def test_live_drift_ignores_records_in_flight_but_not_real_drift(
    table: TableEnv, consumer: StreamConsumer, settled: EventGenerator
) -> None:
    consumer.pause()  # the mappings lag behind: records in flight
    write_traffic(table, settled, 60)
    assert find_drift(table.client, table.name) != []  # the plain check sees them
    args = (table.client, table.streams, table.name, table.stream_arn)
    assert live_check(*args, timing=FAST).drifts == []
    inject_drift(table, VIDEO0, 3)
    (drift,) = live_check(*args, timing=FAST).drifts
    assert drift.key == VIDEO0
    assert drift.difference == Counters(views=3)


def test_repair_restores_a_deleted_summary(
    table: TableEnv, consumer: StreamConsumer, settled: EventGenerator
) -> None:
    """A summary without marks (deleted here; or its records were lost): the records the
    mapping has passed count, so the repair rebuilds it from the recount."""
    user = SummaryKey(SummaryKind.USER, "2")
    table.client.delete_item(TableName=table.name, Key=model.summary_item_key(user))
    result = repair(
        table.client, table.streams, table.name, table.stream_arn, consumer, timing=FAST
    )
    assert [d.key for d in result.repaired] == [user]
    consumer.process()
    assert find_drift(table.client, table.name) == []


def test_repair_marks_what_it_counts_on_the_estimated_position(
    table: TableEnv, consumer: StreamConsumer, settled: EventGenerator
) -> None:
    """A batch written for one summary but not for another (partial batch response) is still
    pending when the pipeline pauses: the mapping will redeliver it, while the written
    summary's mark is past it. A summary with no mark of its own takes that mark as the
    mapping's position, so the repair counts the pending record: it must give the summary the
    mark too, or the redelivery counts it a second time."""
    newcomer = SummaryKey(SummaryKind.VIDEO, "newcomer")  # no mark yet, like a new shard's
    table.put(model.view_item("1", newcomer.id, 30, datetime(2024, 5, 1, tzinfo=UTC)))
    consumer.failing.add(newcomer)
    consumer.process()  # USER 1 written (mark past the view), the newcomer failed
    assert [d.key for d in find_drift(table.client, table.name)] == [newcomer]
    result = repair(
        table.client, table.streams, table.name, table.stream_arn, consumer, timing=FAST
    )
    assert [d.key for d in result.repaired] == [newcomer]
    consumer.failing.clear()
    consumer.process()  # the mapping retries the batch from the failed record
    assert find_drift(table.client, table.name) == []


def test_reconcile_cli_live(
    table: TableEnv,
    consumer: StreamConsumer,
    settled: EventGenerator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    consumer.pause()
    write_traffic(table, settled, 30)
    assert reconcile.main(table.args()) == 1
    capsys.readouterr()
    assert reconcile.main(["--live", *table.args()]) == 0
    assert "No drift" in capsys.readouterr().out


def unrank(table: TableEnv, key: SummaryKey, bucket: str | None = None) -> None:
    """A summary as the earlier release left it (no GSI2SK), or with a wrong bucket."""
    table.client.update_item(
        TableName=table.name,
        Key=model.summary_item_key(key),
        UpdateExpression="REMOVE #b" if bucket is None else "SET #b = :b",
        ExpressionAttributeNames={"#b": "GSI2SK"},
        **({} if bucket is None else {"ExpressionAttributeValues": {":b": {"S": bucket}}}),
    )


def ranked_keys(table: TableEnv) -> set[SummaryKey]:
    """What `make summary` lists (GSI2, never a scan)."""
    return {
        row.key
        for kind in SummaryKind
        for row in list_summaries(table.client, table.name, kind, shards=INDEX_SHARDS)
    }


def test_reconcile_reports_and_repair_sets_missing_gsi2sk(
    table: TableEnv, settled: EventGenerator, capsys: pytest.CaptureFixture[str]
) -> None:
    summaries = set(read_snapshot(table.client, table.name).summaries)
    assert ranked_keys(table) == summaries
    users = [SummaryKey(SummaryKind.USER, i) for i in ("1", "2")]
    for key in users:
        unrank(table, key)
    unrank(table, VIDEO0, bucket="40")  # ranked, but far above its views
    assert ranked_keys(table) == summaries - set(users)

    assert reconcile.main(table.args()) == 1
    out = capsys.readouterr().out
    assert "No drift" in out  # the counters are right: a finding of its own
    assert "2 summaries not ranked: missing GSI2SK" in out
    assert "1 summaries not ranked: wrong GSI2SK" in out
    assert reconcile.main(["--format", "json", *table.args()]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["drift"] == []
    assert [(f["kind"], f["id"], f["problems"]) for f in doc["unranked"]] == [
        ("USER", "1", ["missing GSI2SK"]),
        ("USER", "2", ["missing GSI2SK"]),
        ("VIDEO", "0", ["wrong GSI2SK"]),
    ]
    before = {
        k: model.summary_counters(i)
        for k, i in read_snapshot(table.client, table.name).summaries.items()
    }

    # No drift: the mappings are not touched (the CLI's Lambda client is never called).
    assert reconcile.main(["--repair", "--format", "json", *table.args()]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["ranked"]) == 3
    assert doc["paused_mappings"] == []
    assert doc["remaining_unranked"] == []
    assert ranked_keys(table) == summaries
    after = read_snapshot(table.client, table.name).summaries
    assert {k: model.summary_counters(i) for k, i in after.items()} == before
    assert reconcile.main(table.args()) == 0
    # Another shard count than the deployment's: the check says so, the repair refuses.
    assert reconcile.main(["--index-shards", "3", *table.args()]) == 1
    assert "wrong GSI2PK" in capsys.readouterr().out
    assert reconcile.main(["--repair", "--index-shards", "3", *table.args()]) != 0
    assert "pass the deployment's summary_index_shards" in capsys.readouterr().err
    assert reconcile.main(table.args()) == 0


def test_setting_the_index_races_safely_with_a_concurrent_update(table: TableEnv) -> None:
    """The write is conditional on the views read: a summary updated between the scan and the
    write is read again and ranked by its new views; one its writer ranked is left alone."""
    store = SummaryStore(table.client, table.name, INDEX_SHARDS)
    moved, fixed = SummaryKey(SummaryKind.VIDEO, "moved"), SummaryKey(SummaryKind.USER, "fixed")
    for key in (moved, fixed):
        table.put_summary(key, Counters(views=3, duration=30, likes=1))
        unrank(table, key)
    faults = index_faults(store, read_snapshot(table.client, table.name).summaries)
    assert [(f.key, f.views, f.problems) for f in faults] == [
        (fixed, 3, ("missing GSI2SK",)),
        (moved, 3, ("missing GSI2SK",)),
    ]
    # Concurrently: an earlier-release writer adds views to one (no bucket); a current handler
    # adds views to the other and ranks it itself.
    inject_drift(table, moved, 2_000)
    table.client.update_item(
        TableName=table.name,
        Key=model.summary_item_key(fixed),
        UpdateExpression="ADD #v :d SET #b = :b",
        ExpressionAttributeNames={"#v": "views", "#b": "GSI2SK"},
        ExpressionAttributeValues={
            ":d": {"N": "5"},
            ":b": {"S": model.summary_index_bucket(8)},
        },
    )
    assert write_index(table.client, store, faults[1]) is False  # stale views: not written
    assert "GSI2SK" not in store.read(moved)  # type: ignore[operator]

    ranked, gave_up = rank(table.client, store, faults)
    assert gave_up == []
    assert [(f.key, f.views) for f in ranked] == [(moved, 2_003)]
    item = store.read(moved)
    assert item is not None
    assert item["GSI2SK"] == {"S": model.summary_index_bucket(2_003)}
    assert model.summary_counters(item) == Counters(views=2_003, duration=30, likes=1)
    assert index_faults(store, read_snapshot(table.client, table.name).summaries) == []
    assert ranked_keys(table) == {moved, fixed}


class ScriptedStore(SummaryStore):
    """A summary store whose consistent reads return the given items in turn."""

    def __init__(self, reads: list[dict[str, Any]]) -> None:
        super().__init__(None, "table", INDEX_SHARDS)  # type: ignore[arg-type]
        self.reads = reads

    def read(self, key: SummaryKey) -> dict[str, Any] | None:
        return self.reads.pop(0)


@pytest.mark.parametrize(
    ("second_views", "second_bucket_of", "reported"),
    [
        (16, 16, False),  # the handler's follow-up moved it between the two reads
        (17, 15, False),  # written again meanwhile: that write's follow-up ranks it
        (16, 15, True),  # unchanged and still in the wrong bucket
    ],
)
def test_a_bucket_a_handler_is_moving_is_no_index_fault(
    second_views: int, second_bucket_of: int, reported: bool
) -> None:
    """A handler sets the bucket it expects, then moves the summary if the item it gets back
    shows other views (store.update): a scan or a read can land between the two writes."""
    key = SummaryKey(SummaryKind.VIDEO, "moving")
    store = ScriptedStore([])

    def item(views: int, bucket_of: int) -> dict[str, Any]:
        return {**store.index_attributes(key, bucket_of), "views": {"N": str(views)}}

    scanned = item(16, 15)  # views 16, still in the bucket of 15
    store.reads = [item(16, 15), item(second_views, second_bucket_of)]
    faults = settled_faults(store, {key: scanned}, settle_seconds=0.0)
    assert [f.key for f in faults] == ([key] if reported else [])
    assert store.reads == []
