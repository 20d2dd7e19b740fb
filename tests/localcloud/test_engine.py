"""The stream -> Lambda engine against a private local endpoint, each behaviour with a small
function deployed through the endpoint (see conftest.py for what the function does)."""

from __future__ import annotations

import json
import re
import time

import pytest
from botocore.exceptions import ClientError
from lc_support import Pipeline, function_zip
from localcloud.endpoint_process import LocalEndpoint
from vstats.filter_patterns import filter_criteria
from waiting import wait_until

# These tests assert the exact batches of records written under different keys, which only
# holds while every record is in one shard: their stream has one partition, no rotation.
# The multi-shard behaviour has its own tests (test_multishard.py).
ONE_SHARD = pytest.mark.stream(partitions=1)

VIEW_FILTERS = filter_criteria("VIEW")  # the project's deployed views filters


@ONE_SHARD
def test_records_stay_readable_through_the_streams_api(pipeline: Pipeline) -> None:
    """moto clears a shard on every write once a mapping exists; the endpoint must not."""
    pipeline.create_mapping(Enabled=False)
    keys = [pipeline.put(f"k{i}") for i in range(5)]
    shard = pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    iterator = pipeline.streams.get_shard_iterator(
        StreamArn=pipeline.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = pipeline.streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in records] == keys
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(set(numbers))


@ONE_SHARD
def test_stream_records_keep_every_attribute_type(pipeline: Pipeline) -> None:
    """GetRecords is answered by a fast path (see motopatch): same wire format as GetItem."""
    item = {
        "PK": {"S": "types"},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xffbin"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x", b"y"]},
        "m": {"M": {"inner": {"S": "v"}, "bin": {"B": b"z"}, "l": {"L": [{"N": "1"}]}}},
        "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]},
        "t": {"BOOL": False},
    }
    pipeline.ddb.put_item(TableName=pipeline.table, Item=item)
    stored = pipeline.ddb.get_item(TableName=pipeline.table, Key={"PK": {"S": "types"}})["Item"]
    shard = pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    iterator = pipeline.streams.get_shard_iterator(
        StreamArn=pipeline.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (record,) = pipeline.streams.get_records(ShardIterator=iterator)["Records"]
    assert record["dynamodb"]["NewImage"] == stored
    assert abs(record["dynamodb"]["ApproximateCreationDateTime"].timestamp() - time.time()) < 30


def test_event_shape_and_filters(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(FilterCriteria=VIEW_FILTERS, BatchSize=100)
    pipeline.put("view", type="VIEW")
    pipeline.put("vote", type="VOTE")
    pipeline.put("summary", type="VIDEO_SUMMARY")
    pipeline.ddb.delete_item(TableName=pipeline.table, Key={"PK": {"S": "view"}})
    pipeline.endpoint.wait_drained()
    calls = pipeline.invocations()
    delivered = [
        (r["eventName"], r["dynamodb"]["Keys"]["PK"]["S"])
        for c in calls
        for r in c.event["Records"]
    ]
    assert delivered == [("INSERT", "view"), ("REMOVE", "view")]
    record = calls[0].event["Records"][0]
    assert set(record) >= {
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "eventSourceARN",
        "dynamodb",
    }
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == pipeline.stream_arn
    assert record["awsRegion"] == "us-east-1"
    dynamodb = record["dynamodb"]
    assert dynamodb["Keys"] == {"PK": {"S": "view"}}
    assert dynamodb["NewImage"] == {"PK": {"S": "view"}, "type": {"S": "VIEW"}}
    assert dynamodb["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(dynamodb["ApproximateCreationDateTime"], float)
    assert isinstance(dynamodb["SizeBytes"], int)
    assert dynamodb["SequenceNumber"].isdigit()
    removed = calls[-1].event["Records"][-1]["dynamodb"]
    assert "NewImage" not in removed
    assert removed["OldImage"]["type"] == {"S": "VIEW"}
    stats = pipeline.stats(uuid)
    assert stats["records_read"] == 4
    assert stats["records_filtered_out"] == 2
    assert stats["records_delivered"] == 2


@ONE_SHARD
def test_batch_size_and_window(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(BatchSize=4, MaximumBatchingWindowInSeconds=1)
    keys = pipeline.put_many(*(f"k{i:02d}" for i in range(10)))
    pipeline.endpoint.wait_drained()
    batches = pipeline.batches()
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [k for b in batches for k in b] == keys
    stats = pipeline.stats(uuid)
    assert stats["batches"] == stats["invocations"] == 3
    # The last two records waited for the window to close, never less.
    assert stats["delay_seconds"]["max"] >= 0.95


def test_window_holds_a_lone_record(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(BatchSize=100, MaximumBatchingWindowInSeconds=2)
    written = time.time()
    pipeline.put("alone")
    wait_until(lambda: pipeline.batches() == [["alone"]], what="the lone record")
    assert time.time() - written >= 1.9
    assert pipeline.stats(uuid)["delay_seconds"]["max"] >= 1.9


@ONE_SHARD
def test_starting_position(pipeline: Pipeline) -> None:
    before = [pipeline.put(f"before{i}") for i in range(3)]
    latest = pipeline.create_mapping(StartingPosition="LATEST", BatchSize=100)
    after = [pipeline.put(f"after{i}") for i in range(2)]
    pipeline.endpoint.wait_drained()
    assert [k for b in pipeline.batches() for k in b] == after
    assert pipeline.stats(latest)["records_read"] == 2

    pipeline.lam.delete_event_source_mapping(UUID=latest)
    trim = pipeline.create_mapping(StartingPosition="TRIM_HORIZON", BatchSize=100)
    pipeline.endpoint.wait_drained()
    assert pipeline.stats(trim)["records_delivered"] == len(before + after)


@ONE_SHARD
def test_retries_then_on_failure_payload(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(MaximumRetryAttempts=2, MaximumBatchingWindowInSeconds=1)
    written = time.time()
    keys = pipeline.put_many(("bad0", {"mode": "fail"}), "bad1", "bad2")
    (message,) = pipeline.failure_messages(1)
    # First attempt plus two retries of the same batch, then the shard moves on.
    assert [c.keys for c in pipeline.invocations()] == [keys] * 3
    sequence_numbers = [
        r["dynamodb"]["SequenceNumber"] for r in pipeline.invocations()[0].event["Records"]
    ]
    assert message["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["timestamp"])
    context = message["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["functionArn"] == pipeline.function_arn
    assert context["approximateInvokeCount"] == 3
    assert context["requestId"] == pipeline.invocations()[-1].request_id
    assert message["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = message["DDBStreamBatchInfo"]
    assert info["shardId"].startswith("shardId-")
    assert info["startSequenceNumber"] == sequence_numbers[0]
    assert info["endSequenceNumber"] == sequence_numbers[-1]
    assert info["batchSize"] == 3
    assert info["streamArn"] == pipeline.stream_arn
    for name in ("approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info[name])
        arrival = time.mktime(time.strptime(info[name], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert abs(arrival - written) < 5

    pipeline.put("good")
    wait_until(lambda: pipeline.batches()[-1] == ["good"], what="the next record")
    stats = pipeline.stats(uuid)
    assert stats["function_errors"] == 3
    assert stats["retries"] == 2
    assert stats["records_to_failure_destination"] == 3
    assert stats["failure_messages"] == 1


@ONE_SHARD
def test_bisect_isolates_the_bad_record(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(
        BatchSize=4,
        MaximumBatchingWindowInSeconds=1,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
    )
    pipeline.put_many("r1", "r2", ("r3", {"mode": "fail"}), "r4")
    (message,) = pipeline.failure_messages(1)
    pipeline.endpoint.wait_drained()
    assert pipeline.batches() == [
        ["r1", "r2", "r3", "r4"],  # fails: split
        ["r1", "r2"],  # succeeds
        ["r3", "r4"],  # fails: split
        ["r3"],  # fails: a batch of one is retried (splitting used no retries)
        ["r3"],  # fails again: retries exhausted, to the failure queue
        ["r4"],
    ]
    info = message["DDBStreamBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    stats = pipeline.stats(uuid)
    assert stats["bisections"] == 2
    assert stats["records_delivered"] == 3
    assert stats["records_to_failure_destination"] == 1


@ONE_SHARD
def test_partial_batch_response(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(
        BatchSize=5,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    once = {"mode": "partial-once"}
    keys = pipeline.put_many("p1", "p2", ("p3", once), ("p4", once), "p5")
    pipeline.endpoint.wait_drained()
    # Both p3 and p4 are reported: checkpoint before the lowest, retry from there.
    assert pipeline.batches() == [keys, ["p3", "p4", "p5"]]
    stats = pipeline.stats(uuid)
    assert stats["partial_failures"] == 1
    assert stats["function_errors"] == 0
    assert stats["records_delivered"] == 5


@ONE_SHARD
def test_invalid_partial_response_fails_the_whole_batch(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    keys = pipeline.put_many("i1", ("i2", {"mode": "invalid-once"}), "i3")
    pipeline.endpoint.wait_drained()
    assert pipeline.batches() == [keys, keys]
    assert pipeline.stats(uuid)["invalid_responses"] == 1


@ONE_SHARD
def test_partial_response_ignored_without_report_batch_item_failures(pipeline: Pipeline) -> None:
    pipeline.create_mapping(BatchSize=2, MaximumBatchingWindowInSeconds=1)
    keys = pipeline.put_many(("n1", {"mode": "partial-once"}), "n2")
    pipeline.endpoint.wait_drained()
    assert pipeline.batches() == [keys]


@ONE_SHARD
def test_record_age_limit(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(MaximumRecordAgeInSeconds=60, BatchSize=10)
    pipeline.put_many(("old1", {"mode": "fail"}), "old2")
    wait_until(lambda: len(pipeline.invocations()) >= 2, what="retries")  # -1: until too old
    pipeline.endpoint.control("PUT", "/faults", {"clock_offset_seconds": 120})
    (message,) = pipeline.failure_messages(1)
    pipeline.endpoint.control("PUT", "/faults", {"clock_offset_seconds": 0})
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["DDBStreamBatchInfo"]["batchSize"] == 2
    pipeline.put("fresh")
    wait_until(lambda: pipeline.batches()[-1] == ["fresh"], what="the next record")
    assert pipeline.stats(uuid)["records_to_failure_destination"] == 2


@ONE_SHARD
def test_live_mapping_updates(pipeline: Pipeline) -> None:
    only = {
        "Filters": [{"Pattern": json.dumps({"dynamodb": {"NewImage": {"type": {"S": ["A"]}}}})}]
    }
    uuid = pipeline.create_mapping(FilterCriteria=only, BatchSize=100)
    pipeline.put("a1", type="A")
    pipeline.put("b1", type="B")
    pipeline.endpoint.wait_drained()
    assert pipeline.batches() == [["a1"]]

    pipeline.lam.update_event_source_mapping(
        UUID=uuid,
        FilterCriteria={
            "Filters": [{"Pattern": json.dumps({"dynamodb": {"NewImage": {"type": {"S": ["B"]}}}})}]
        },
        BatchSize=2,
        MaximumBatchingWindowInSeconds=1,
    )
    pipeline.put_many(*((key, {"type": key[0].upper()}) for key in ("a2", "b2", "b3", "b4")))
    pipeline.endpoint.wait_drained()
    assert pipeline.batches()[1:] == [["b2", "b3"], ["b4"]]

    pipeline.lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    pipeline.put("b5", type="B")
    time.sleep(0.8)
    assert len(pipeline.batches()) == 3
    pipeline.lam.update_event_source_mapping(UUID=uuid, Enabled=True, FilterCriteria={})
    pipeline.put("a6", type="A")
    pipeline.endpoint.wait_drained()
    assert [k for b in pipeline.batches()[3:] for k in b] == ["b5", "a6"]

    pipeline.lam.delete_event_source_mapping(UUID=uuid)
    delivered = len(pipeline.batches())
    pipeline.put("b7", type="B")
    time.sleep(0.8)
    assert len(pipeline.batches()) == delivered
    assert pipeline.endpoint.control("GET", "/stats")[uuid]["deleted"] is True


@ONE_SHARD
def test_tumbling_window(pipeline: Pipeline) -> None:
    pipeline.create_mapping(TumblingWindowInSeconds=2, BatchSize=2)
    time.sleep(2 - time.time() % 2 + 0.05)  # just after a window starts
    keys = pipeline.put_many("w0", "w1", "w2")
    wait_until(lambda: len(pipeline.invocations()) >= 3, what="the final invocation")
    calls = [c.event for c in pipeline.invocations()]
    assert [[r["dynamodb"]["Keys"]["PK"]["S"] for r in e["Records"]] for e in calls] == [
        keys[:2],
        keys[2:],
        [],
    ]
    assert [e["isFinalInvokeForWindow"] for e in calls] == [False, False, True]
    assert [e["state"] for e in calls] == [{}, {"count": 2}, {"count": 3}]
    first = calls[0]
    assert first["shardId"].startswith("shardId-")
    assert first["eventSourceARN"] == pipeline.stream_arn
    assert first["isWindowTerminatedEarly"] is False
    start = time.strptime(first["window"]["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = time.strptime(first["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
    assert time.mktime(end) - time.mktime(start) == 2
    assert all(e["window"] == first["window"] for e in calls)

    pipeline.put("next-window")
    wait_until(lambda: len(pipeline.invocations()) >= 4, what="the next window")
    following = pipeline.invocations()[3].event
    assert following["state"] == {}
    assert following["window"] != first["window"]


@pytest.mark.parametrize(
    "settings",
    [
        {"FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}},
        {"FilterCriteria": {"Filters": [{"Pattern": json.dumps({"a": [{"nope": 1}]})}]}},
        {"MaximumBatchingWindowInSeconds": 301},
        {"MaximumRecordAgeInSeconds": 30},
        {"StartingPosition": "AT_TIMESTAMP"},
    ],
)
def test_invalid_mapping_settings_are_rejected(
    pipeline: Pipeline, settings: dict[str, object]
) -> None:
    with pytest.raises(ClientError) as error:
        pipeline.create_mapping(**settings)
    assert error.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_timeout_and_redeploy(pipeline: Pipeline) -> None:
    pipeline.lam.update_function_configuration(FunctionName=pipeline.function_arn, Timeout=1)
    uuid = pipeline.create_mapping(MaximumRetryAttempts=0)
    pipeline.put("slow", mode="sleep", seconds="3")
    (message,) = pipeline.failure_messages(1)
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert pipeline.stats(uuid)["function_errors"] == 1

    pipeline.lam.update_function_code(
        FunctionName=pipeline.function_arn, ZipFile=function_zip("v2")
    )
    pipeline.put("after-redeploy")
    wait_until(lambda: pipeline.batches()[-1] == ["after-redeploy"], what="the redeployed code")
    assert [c.version for c in pipeline.invocations()] == ["v1", "v2"]


def test_fault_injection(pipeline: Pipeline, local_endpoint: LocalEndpoint) -> None:
    uuid = pipeline.create_mapping(BatchSize=1, MaximumRetryAttempts=0)
    local_endpoint.control("PUT", "/faults", {"kill_mid_batch_rate": 1.0, "seed": 7})
    pipeline.put("killed", mode="write")
    (message,) = pipeline.failure_messages(1)
    # k is drawn from 1..batch size = 1: the worker dies right after the handler's first
    # write (its invocation log item), before the three updates.
    assert [c.keys for c in pipeline.invocations()] == [["killed"]]
    assert pipeline.log_items("w#killed#") == []
    stats = pipeline.stats(uuid)
    assert stats["injected_kills"] == 1
    assert stats["function_errors"] == 1

    local_endpoint.control(
        "PUT", "/faults", {"kill_mid_batch_rate": 0.0, "duplicate_batch_rate": 1.0}
    )
    pipeline.put("twice")
    local_endpoint.wait_drained()
    assert pipeline.batches()[-2:] == [["twice"], ["twice"]]

    local_endpoint.control(
        "PUT",
        "/faults",
        {
            "duplicate_batch_rate": 0.0,
            "fail_invocation_rate": 1.0,
            "fail_invocation_mode": "before",
        },
    )
    pipeline.put("never-runs")
    assert len(pipeline.failure_messages(1)) == 1
    assert "never-runs" not in [k for b in pipeline.batches() for k in b]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_invoke_api_runs_the_function(pipeline: Pipeline) -> None:
    record = {"dynamodb": {"Keys": {"PK": {"S": "direct"}}, "SequenceNumber": "1"}}
    reply = pipeline.lam.invoke(
        FunctionName=pipeline.function_arn, Payload=json.dumps({"Records": [record]})
    )
    assert "FunctionError" not in reply
    assert json.loads(reply["Payload"].read()) == {"batchItemFailures": []}
    assert pipeline.batches() == [["direct"]]

    failing = {"dynamodb": {**record["dynamodb"], "NewImage": {"mode": {"S": "fail"}}}}
    reply = pipeline.lam.invoke(
        FunctionName=pipeline.function_arn, Payload=json.dumps({"Records": [failing]})
    )
    assert reply["FunctionError"] == "Unhandled"
    error = json.loads(reply["Payload"].read())
    assert error["errorType"] == "RuntimeError"
    assert "always failing direct" in error["errorMessage"]
