"""Traffic scenarios against the applied environment. Each ends with the tools' own
check (``vstats.drift``: one scan, ``model.recount``, compare): every video and user summary
equals the recount of the base items.

Each scenario uses ids of its own (a prefix), so the others' items never matter to its
specific assertions; the exactness check always covers the whole table.
"""

from __future__ import annotations

import contextlib
import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from it_support import (
    FAULT_COUNTERS,
    FAULTS,
    FUNCTION_ROLES,
    FunctionLog,
    Stack,
    assert_exact,
    engine_delta,
    read_stream,
    record_figure,
    run_loadtest,
    wait_drained,
)
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind
from vstats.effects import ITEM_TYPE_OF_FUNCTION
from vstats.generator import MIX_KEYS
from vstats.load_report import Report
from vstats.tables import get_summaries, list_summaries
from waiting import wait_until

pytestmark = pytest.mark.integration

POISON = "itPoison"  # marks the poison items this test writes (an attribute DynamoDB keeps)


def local_only(stack: Stack, what: str) -> None:
    if not stack.target.is_local:
        pytest.skip(f"{what} exists only on the local endpoint")


# --- 1. mixed events -------------------------------------------------------------------------


def test_mixed_events_match_the_recount(no_faults: Stack) -> None:
    stack = no_faults
    report = run_loadtest(stack, events=300, seed=1, id_prefix="mix-")
    kinds = report.events_by_kind
    assert report.events == 300
    missing = [k for k in MIX_KEYS if kinds.get(k, 0) == 0]
    assert not missing, f"the mix lacked {missing}: {kinds}"
    exact = assert_exact(stack)
    local = report.local or {}
    record_figure(
        "1 mixed events",
        events=report.events,
        kinds=dict(sorted(kinds.items())),
        invocations=local.get("invocations"),
        batches=local.get("batches"),
        summaries=exact.summaries,
    )


# --- 2. fault injection ----------------------------------------------------------------------


def test_faults_do_not_change_the_aggregates(no_faults: Stack) -> None:
    """Failed invocations (the handler ran, its answer is lost), workers killed after the k-th
    summary write, duplicate batches: the summaries stay exact (exactly-once marks)."""
    stack = no_faults
    local_only(stack, "fault injection")
    uuids = stack.mapping_uuids
    reports: list[Report] = []
    with engine_delta(stack) as delta:
        # A fault is a draw per invocation: a slower rate makes more batches, and a few more
        # events follow until each kind has happened.
        for round_ in range(4):
            reports.append(
                run_loadtest(
                    stack,
                    events=300 if round_ == 0 else 100,
                    seed=20 + round_,
                    rate=75.0,
                    # More summaries per batch: a kill comes after the k-th write, k drawn
                    # from 1..records in the batch, so it needs batches that write a lot.
                    users=30,
                    videos=60,
                    id_prefix="faults-",
                    # A seed per round: the same seed would replay the same draws.
                    faults={**FAULTS, "seed": 60 + round_},
                )
            )
            if all(delta().total(uuids, name) > 0 for name in FAULT_COUNTERS):
                break
        exact = assert_exact(stack)
        seen = delta()
    counts = {
        name: seen.total(uuids, name)
        for name in (
            *FAULT_COUNTERS,
            "function_errors",
            "retries",
            "bisections",
            "invocations",
            "batches",
            "records_to_failure_destination",
        )
    }
    for name in (*FAULT_COUNTERS, "function_errors", "retries"):
        assert counts[name] > 0, f"no {name} happened: {counts}"
    assert counts["records_to_failure_destination"] == 0, counts
    events = sum(r.events for r in reports)
    kinds: dict[str, int] = {}
    for r in reports:
        for kind, n in r.events_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + n
    assert all(kinds.get(k, 0) > 0 for k in MIX_KEYS), kinds
    record_figure(
        "2 faults",
        events=events,
        rounds=len(reports),
        **counts,
        summaries=exact.summaries,
    )


# --- 3. poison records -----------------------------------------------------------------------


def test_poison_records_are_skipped_logged_and_counted(no_faults: Stack) -> None:
    stack = no_faults
    ddb = stack.client("dynamodb")
    functions = stack.function_names
    logs = {role: FunctionLog(stack, functions[role]).start() for role in FUNCTION_ROLES}
    with _maybe_engine_delta(stack) as delta:
        writes = write_poison_scenario(stack)
        exact = assert_exact(stack)
        stats = delta()

    # Every good record applied (the check above), the last one included: the shard moved on.
    last = get_summaries(ddb, stack.table, [SummaryKey(SummaryKind.VIDEO, "poison-last")])
    assert last[SummaryKey(SummaryKind.VIDEO, "poison-last")] == Counters(1, 7, 0, 0)

    # Every poison record logged with its sequence number, and counted in the EMF metric.
    records = [r for r in read_stream(stack) if _key_of(r).startswith("USER#poison-")]
    timeout = 15.0 if stack.target.is_local else 180.0
    figures: dict[str, Any] = {"writes": writes}
    for role in FUNCTION_ROLES:
        item_type = ITEM_TYPE_OF_FUNCTION[role]
        mine = [r for r in records if _image_type(r) == item_type]
        poison = sorted(r["dynamodb"]["SequenceNumber"] for r in mine if _is_poison(r))
        assert len(poison) >= 4, f"the scenario wrote too few {item_type} poison records"
        log, expected = logs[role], len(poison)
        wait_until(
            functools.partial(_logged_skips_reach, log, expected),
            timeout,
            interval=0.2,
            what=f"{role} function's skipped-record logs",
        )
        assert sorted(log.skipped_sequence_numbers()) == poison
        assert log.metric_sum("RecordsSkippedInvalid") == len(poison)
        figures[f"{role}_poison"] = len(poison)
        figures[f"{role}_records"] = len(mine)
        if stats is not None:
            uuid = stack.mapping_uuids[role]
            # Delivered and done: every record of the type, poison included, exactly once.
            assert stats.of(uuid, "records_delivered") == len(mine)
            for name in ("function_errors", "retries", "records_to_failure_destination"):
                assert stats.of(uuid, name) == 0, f"{role}: {name}"
            figures[f"{role}_invocations"] = stats.of(uuid, "invocations")

    # No failure was reported, no retry was exhausted: nothing in the failure queues.
    sqs = stack.client("sqs")
    for role in FUNCTION_ROLES:
        received = sqs.receive_message(
            QueueUrl=stack.queue_urls[role], MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        assert received.get("Messages", []) == [], f"{role} failure queue is not empty"
    record_figure("3 poison", **figures, summaries=exact.summaries)


def write_poison_scenario(stack: Stack) -> int:
    """Good items, then poison ones (invalid new items, valid items overwritten with invalid
    ones, invalid items deleted), then good ones again; returns the number of writes."""
    ddb = stack.client("dynamodb")
    table = stack.table
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    writes = 0

    def put(item: dict[str, Any], poison: bool = False) -> None:
        nonlocal writes
        ddb.put_item(TableName=table, Item={**item, POISON: {"BOOL": True}} if poison else item)
        writes += 1

    def delete(item: dict[str, Any]) -> None:
        nonlocal writes
        ddb.delete_item(TableName=table, Key={"PK": item["PK"], "SK": item["SK"]})
        writes += 1

    def view(user: int, video: int, seconds: int, n: int) -> dict[str, Any]:
        return model.view_item(
            f"poison-u{user}", f"poison-v{video}", seconds, t0 + timedelta(seconds=n)
        )

    def vote(user: int, video: int, vote_type: str = "LIKE") -> dict[str, Any]:
        return model.vote_item(f"poison-u{user}", f"poison-v{video}", vote_type)  # type: ignore[arg-type]

    for n in range(10):
        put(view(n % 3, n % 4, 10 + n, n))
    for user in range(3):
        put(vote(user, user, "LIKE" if user % 2 else "DISLIKE"))

    # VIEW poison: a negative, a string-typed and a missing field; a valid view overwritten
    # with a fractional duration (its old contribution must still go); a poison item deleted.
    negative = {**view(0, 0, 1, 100), "duration": {"N": "-5"}}
    put(negative, poison=True)
    put({**view(1, 1, 1, 101), "duration": {"S": "300"}}, poison=True)
    no_user = view(2, 2, 1, 102)
    del no_user["userId"]
    put(no_user, poison=True)
    overwritten = view(0, 3, 40, 103)
    put(overwritten)
    put({**overwritten, "duration": {"N": "12.5"}}, poison=True)
    delete(negative)

    # VOTE poison: an unknown and a lower-case vote type, a valid vote overwritten with an
    # invalid one, a poison vote deleted.
    maybe = vote(0, 3, "MAYBE")
    put(maybe, poison=True)
    put(vote(1, 3, "like"), poison=True)
    put(vote(2, 3, "LIKE"))
    put(vote(2, 3, "MEH"), poison=True)
    delete(maybe)

    for n in range(10):
        put(view(n % 3, n % 4, 20 + n, 200 + n))
    put(vote(0, 1, "LIKE"))
    put(model.view_item("poison-u0", "poison-last", 7, t0 + timedelta(seconds=300)))
    return writes


# --- 4. summary writes never invoke ----------------------------------------------------------


def test_summary_writes_never_cause_an_invocation(no_faults: Stack) -> None:
    stack = no_faults
    local_only(stack, "the engine's statistics")
    ddb = stack.client("dynamodb")
    table = stack.table
    uuids = stack.mapping_uuids
    wait_drained(stack)

    # (a) Summary items written directly: created, changed, deleted.
    fresh = [SummaryKey(kind, f"quiet-{i}") for kind in SummaryKind for i in range(4)]
    existing = [
        row.key for kind in SummaryKind for row in list_summaries(ddb, table, kind, shards=4, top=3)
    ]
    with engine_delta(stack) as delta:
        records = 0
        for key in fresh:
            ddb.put_item(TableName=table, Item=_zero_summary(key))
            records += 1
        for key in [*fresh, *existing]:
            _set_note(ddb, table, key, "touched")
            records += 1
        for key in existing:  # put them back as they were
            _set_note(ddb, table, key, None)
            records += 1
        for key in fresh:
            ddb.delete_item(TableName=table, Key=model.summary_item_key(key))
            records += 1
        wait_until(
            lambda: all(delta().of(u, "records_read") >= records for u in uuids.values()),
            30.0,
            what="the engine to read the summary records",
        )
        wait_drained(stack)
        direct = delta()
    for role, uuid in uuids.items():
        assert direct.of(uuid, "records_read") == records, role
        assert direct.of(uuid, "records_filtered_out") == records, role
        # A shard that rotates meanwhile closes its open tumbling window: that final
        # invocation carries no record, so it is not one the summary writes caused.
        assert direct.of(uuid, "invocations") == direct.of(uuid, "window_final_invocations"), role
        assert direct.of(uuid, "records_delivered") == 0, role

    # (b) Summaries written by the handlers: base items go in, summary records come back on
    # the stream, and both mappings drop every one of them.
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    views = [
        model.view_item(f"quiet-u{n % 4}", f"quiet-v{n % 6}", 5 + n, t0 + timedelta(seconds=n))
        for n in range(20)
    ]
    votes = [model.vote_item(f"quiet-u{n % 4}", f"quiet-v{n}", "LIKE") for n in range(10)]
    with engine_delta(stack) as delta:
        for item in [*views, *votes]:
            ddb.put_item(TableName=table, Item=item)
        wait_drained(stack)
        # Both mappings read the same stream: wait until both counted all of it.
        wait_until(
            lambda: len({delta().of(u, "records_read") for u in uuids.values()}) == 1,
            10.0,
            what="both mappings to count the same records",
        )
        handled = delta()
    base = {"views": len(views), "votes": len(votes)}
    read = handled.of(uuids["views"], "records_read")
    summary_records = read - len(views) - len(votes)
    touched = {k for item in [*views, *votes] for k in model.contribution(item)}
    assert summary_records >= len(touched), (summary_records, len(touched))
    for role, uuid in uuids.items():
        assert handled.of(uuid, "records_delivered") == base[role], role
        assert handled.of(uuid, "records_filtered_out") == read - base[role], role
        assert handled.of(uuid, "invocations") == handled.of(uuid, "batches") + handled.of(
            uuid, "window_final_invocations"
        ), role
    exact = assert_exact(stack)
    record_figure(
        "4 summary writes",
        direct_summary_records=records,
        direct_invocations=direct.total(uuids, "invocations"),
        handler_summary_records=summary_records,
        base_records=len(views) + len(votes),
        invocations=handled.per_mapping(uuids, "invocations"),
        summaries=exact.summaries,
    )


# --- helpers ---------------------------------------------------------------------------------


def _maybe_engine_delta(stack: Stack) -> Any:
    """The engine's statistics where they exist (local); on AWS a delta of None."""
    if stack.target.is_local:
        return engine_delta(stack)
    return contextlib.nullcontext(lambda: None)


def _zero_summary(key: SummaryKey) -> dict[str, Any]:
    return {
        **model.summary_item_key(key),
        "type": {"S": model.summary_type(key.kind)},
        model.summary_id_attribute(key.kind): {"S": key.id},
        "views": {"N": "0"},
        "duration": {"N": "0"},
        "likes": {"N": "0"},
        "dislikes": {"N": "0"},
        "GSI2PK": {"S": model.summary_index_partition(key, 4)},
    }


def _set_note(ddb: Any, table: str, key: SummaryKey, note: str | None) -> None:
    if note is None:
        ddb.update_item(
            TableName=table, Key=model.summary_item_key(key), UpdateExpression="REMOVE itNote"
        )
    else:
        ddb.update_item(
            TableName=table,
            Key=model.summary_item_key(key),
            UpdateExpression="SET itNote = :n",
            ExpressionAttributeValues={":n": {"S": note}},
        )


def _logged_skips_reach(log: FunctionLog, expected: int) -> bool:
    log.read()
    return len(log.skipped_sequence_numbers()) >= expected


def _key_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["PK"]["S"])


def _image_type(record: dict[str, Any]) -> str | None:
    for name in ("NewImage", "OldImage"):
        image = record["dynamodb"].get(name)
        if image and "type" in image:
            return str(image["type"].get("S"))
    return None


def _is_poison(record: dict[str, Any]) -> bool:
    return any(POISON in (record["dynamodb"].get(n) or {}) for n in ("NewImage", "OldImage"))
