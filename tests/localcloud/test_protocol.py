"""Partial batch responses, the on-failure payload, fault settings and write accounting:
pure rules, no endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from localcloud.faults import FaultConfig, Faults, merge_config
from localcloud.protocol import (
    FailedBatch,
    event_record,
    failure_record,
    parse_batch_response,
)
from localcloud.writestats import (
    IndexShape,
    WriteStats,
    index_write_units,
    item_size,
    write_cost,
    write_units,
)

SEQS = ["100", "200", "300"]


def _failures(*ids: Any) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


@pytest.mark.parametrize(
    ("response", "failed_from", "invalid"),
    [
        (None, None, False),  # null response: success
        ({}, None, False),  # empty response
        ({"batchItemFailures": None}, None, False),
        ({"batchItemFailures": []}, None, False),
        ({"other": 1}, None, False),
        (_failures("200"), 1, False),
        (_failures("300", "200"), 1, False),  # the lowest sequence number wins
        (_failures("100"), 0, False),
        (_failures(""), None, True),  # empty identifier
        (_failures(None), None, True),  # null identifier
        ({"batchItemFailures": [{"sequenceNumber": "200"}]}, None, True),  # bad key name
        (_failures("999"), None, True),  # not in the batch
        ({"batchItemFailures": "200"}, None, True),
        ("ok", None, True),  # not an object
        ([1], None, True),
    ],
)
def test_batch_response_rules(response: Any, failed_from: int | None, invalid: bool) -> None:
    parsed = parse_batch_response(response, SEQS, report_item_failures=True)
    assert parsed.failed_from == failed_from
    assert (parsed.invalid is not None) is invalid


def test_batch_response_ignored_unless_turned_on() -> None:
    parsed = parse_batch_response(_failures("999"), SEQS, report_item_failures=False)
    assert parsed.failed_from is None
    assert parsed.invalid is None


def test_failure_record_shape() -> None:
    batch = FailedBatch("shardId-1", "arn:stream", "100", "300", 1700000000.4, 1700000001.9, 3)
    record = failure_record(
        batch=batch,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        condition="RetryAttemptsExhausted",
        invoke_count=4,
        function_error="Unhandled",
        request_id="req-1",
        now=1700000100.25,
    )
    assert record == {
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2023-11-14T22:15:00.250Z",
        "DDBStreamBatchInfo": {
            "shardId": "shardId-1",
            "startSequenceNumber": "100",
            "endSequenceNumber": "300",
            "approximateArrivalOfFirstRecord": "2023-11-14T22:13:20Z",
            "approximateArrivalOfLastRecord": "2023-11-14T22:13:21Z",
            "batchSize": 3,
            "streamArn": "arn:stream",
        },
    }


def test_event_record_adds_source_and_region() -> None:
    raw = {
        "eventID": "e",
        "eventName": "INSERT",
        "eventVersion": "1.0",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"SequenceNumber": "1"},
    }
    record = event_record(raw, "arn:stream", "eu-west-1")
    assert record["eventSourceARN"] == "arn:stream"
    assert record["awsRegion"] == "eu-west-1"
    assert record["dynamodb"] == {"SequenceNumber": "1"}


def test_fault_settings_merge_and_validate() -> None:
    config = merge_config(FaultConfig(), {"fail_invocation_rate": 0.5, "seed": 3})
    assert config.fail_invocation_rate == 0.5
    assert config.seed == 3
    assert merge_config(config, {"kill_mid_batch_rate": 1}).fail_invocation_rate == 0.5
    bad_bodies: list[Any] = [
        {"fail_invocation_rate": 2},
        {"duplicate_batch_rate": "x"},
        {"seed": 1.5},
        {"fail_invocation_mode": "sometimes"},
        {"unknown": 1},
        [],
    ]
    for bad in bad_bodies:
        with pytest.raises(ValueError, match=r"."):
            merge_config(config, bad)


def test_faults_are_reproducible_with_a_seed() -> None:
    def draws() -> list[Any]:
        faults = Faults()
        faults.update({"fail_invocation_rate": 0.5, "kill_mid_batch_rate": 0.5, "seed": 11})
        return [faults.plan_invocation(10) for _ in range(20)]

    first = draws()
    assert first == draws()
    assert any(plan.fail_after for plan in first)
    assert all(1 <= (plan.kill_after_writes or 1) <= 10 for plan in first)


def test_no_faults_by_default() -> None:
    faults = Faults()
    assert faults.plan_invocation(5) == faults.plan_invocation(5)
    assert not faults.plan_invocation(5).fail_after
    assert not faults.duplicate_batch()


VIEW = {
    "PK": {"S": "USER#u1"},
    "SK": {"S": "VIDEO#v1#VIEW#2022-01-02T17:05:29.123+00:00"},
    "type": {"S": "VIEW"},
    "duration": {"N": "300"},
    "GSI1PK": {"S": "VIDEO#v1"},
    "GSI1SK": {"S": "VIEW#2022-01-02T17:05:29.123+00:00#USER#u1"},
}
GSI1 = IndexShape("GSI1", ("GSI1PK", "GSI1SK"), ("PK", "SK"), "ALL")
GSI2 = IndexShape(
    "GSI2", ("GSI2PK", "views"), ("PK", "SK"), "INCLUDE", ("type", "likes", "duration")
)


def test_item_size_and_units() -> None:
    assert item_size({"a": {"S": "xyz"}}) == 4
    assert item_size({"n": {"N": "12345"}}) == 1 + 4  # about one byte per two digits
    assert item_size({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert write_units(0) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2


def test_write_cost_of_an_insert_into_an_index() -> None:
    cost = write_cost(None, VIEW, [GSI1, GSI2], transactional=False)
    assert cost.units == 1
    assert cost.index_units == {"GSI1": 1}  # GSI2 is sparse: no GSI2PK
    assert write_cost(None, VIEW, [GSI1], transactional=True).units == 2


def test_index_writes_follow_the_projection() -> None:
    summary = {"PK": {"S": "VIDEO#v1"}, "SK": {"S": "SUMMARY"}, "GSI2PK": {"S": "VIDEO_SUMMARY#1"}}
    before = {**summary, "views": {"N": "1"}, "likes": {"N": "0"}, "note": {"S": "a"}}
    not_projected = {**before, "note": {"S": "b"}}
    projected = {**before, "likes": {"N": "1"}}
    key_change = {**before, "views": {"N": "2"}}
    assert index_write_units(GSI2, before, not_projected) == 0
    assert index_write_units(GSI2, before, projected) == 1
    assert index_write_units(GSI2, before, key_change) == 2  # delete + put
    assert index_write_units(GSI2, None, summary) == 0  # not in the index: no "views"
    assert index_write_units(GSI2, before, None) == 1


def test_write_stats_counts_requests_items_and_units() -> None:
    stats = WriteStats()
    stats.record_request("t", "BatchWriteItem")
    for _ in range(3):
        stats.record_write("t", "BatchWriteItem", write_cost(None, VIEW, [GSI1], False))
    stats.record_write("t", "UpdateItem", write_cost(VIEW, None, [], False), condition_failed=True)
    snapshot = stats.snapshot()["t"]
    assert snapshot["write_requests"] == 1
    assert snapshot["items_written"] == 3
    assert snapshot["write_request_units"] == 4
    assert snapshot["conditional_check_failures"] == 1
    assert snapshot["gsi_write_units"] == {"GSI1": 3}
    assert snapshot["by_operation"]["BatchWriteItem"] == {
        "requests": 1,
        "items": 3,
        "write_request_units": 3,
    }
    stats.reset()
    assert stats.snapshot() == {}
