"""The faults for what AWS allows and a healthy local run never shows (``localcloud.faults``):
their settings, the ``--faults`` option, and each one at the endpoint (moto + the engine,
the test function of lc_support.py)."""

from __future__ import annotations

import calendar
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lc_support import Pipeline, read_shard
from localcloud.endpoint_process import LocalEndpoint
from localcloud.faults import FaultConfig, Faults, merge_config
from localcloud.protocol import with_clock_skew
from vstats.local_endpoint import NO_FAULTS, parse_faults
from waiting import wait_until

ONE_SHARD = pytest.mark.stream(partitions=1)

# --- settings (pure) -------------------------------------------------------------------------


def test_new_fault_settings_merge_and_validate() -> None:
    config = merge_config(
        FaultConfig(),
        {
            "describe_stream_throttle_rate": 0.5,
            "getrecords_empty_pages": 2,
            "gsi_lag_seconds": 1.5,
            "final_invoke_records": True,
            "clock_skew_seconds": 2.5,
            "bisect_out_of_order": 1,
        },
    )
    assert config.final_invoke_records == 1.0
    assert config.getrecords_empty_pages == 2
    assert (config.gsi_lag_seconds, config.clock_skew_seconds) == (1.5, 2.5)
    assert merge_config(config, {"final_invoke_records": False}).final_invoke_records == 0.0
    bad_bodies: list[Any] = [
        {"describe_stream_throttle_rate": 1.5},
        {"getrecords_empty_pages": -1},
        {"getrecords_empty_pages": 1.5},
        {"gsi_lag_seconds": -0.1},
        {"clock_skew_seconds": "3"},
        {"final_invoke_records": 2},
        {"bisect_out_of_order": True},
    ]
    for bad in bad_bodies:
        with pytest.raises(ValueError, match=r"."):
            merge_config(config, bad)


def test_draws_follow_their_rates() -> None:
    faults = Faults()
    assert not faults.throttle_describe_stream()
    assert not faults.final_invoke_with_records()
    assert not faults.second_half_first()
    faults.update({"describe_stream_throttle_rate": 1, "final_invoke_records": True})
    assert faults.throttle_describe_stream()
    assert faults.final_invoke_with_records()


def test_faults_option_short_and_full_names() -> None:
    body = parse_faults(
        "fail=0.1,kill=0.05,describe_stream_throttle_rate=0.5,final_invoke_records=1,"
        "clock_skew_seconds=3"
    )
    assert body["fail_invocation_rate"] == 0.1
    assert body["describe_stream_throttle_rate"] == 0.5
    assert body["final_invoke_records"] == 1
    assert body["clock_skew_seconds"] == 3
    assert body["bisect_out_of_order"] == 0.0  # not named: off
    short = parse_faults("throttle=0.5,empty_pages=2,gsi_lag=2,final_records=true,skew=1.5")
    assert short["getrecords_empty_pages"] == 2
    assert short["gsi_lag_seconds"] == 2
    assert short["final_invoke_records"] is True
    assert short["clock_skew_seconds"] == 1.5
    assert parse_faults("bisect_order=1,seed=7")["seed"] == 7
    assert set(parse_faults("")) == set(NO_FAULTS) == set(FaultConfig().to_json())
    for bad in ("empty_pages=1.5", "skew=-1", "throttle=2", "nope=1", "fail", "fail=x"):
        with pytest.raises(ValueError, match=r"."):
            parse_faults(bad)


def test_clock_skew_shifts_only_the_copy() -> None:
    record: dict[str, Any] = {
        "eventID": "1",
        "dynamodb": {"ApproximateCreationDateTime": 1700000000},
    }
    skewed = with_clock_skew(record, 3)
    assert skewed["dynamodb"]["ApproximateCreationDateTime"] == 1700000003
    assert isinstance(skewed["dynamodb"]["ApproximateCreationDateTime"], int)
    assert with_clock_skew(record, 0.5)["dynamodb"]["ApproximateCreationDateTime"] == 1700000000.5
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1700000000
    assert with_clock_skew({"dynamodb": {}}, 3) == {"dynamodb": {}}


# --- at the endpoint -------------------------------------------------------------------------


def _faults(endpoint: LocalEndpoint, **settings: Any) -> None:
    endpoint.control("PUT", "/faults", settings)


def test_describe_stream_throttled_but_not_the_engine(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    _faults(local_endpoint, describe_stream_throttle_rate=1.0)
    with pytest.raises(ClientError) as error:
        pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)
    assert error.value.response["Error"]["Code"] == "LimitExceededException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The engine (Lambda's pollers) still finds its shards and delivers.
    pipeline.create_mapping()
    pipeline.put("through")
    wait_until(lambda: pipeline.batches() == [["through"]], what="the record")
    _faults(local_endpoint, describe_stream_throttle_rate=0.0)
    assert pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"]


@ONE_SHARD
def test_describe_stream_child_shards_filter(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    pipeline.put("before")
    local_endpoint.control("POST", "/streams/rotate", {"table": pipeline.table})
    shards = pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)["StreamDescription"][
        "Shards"
    ]
    parent = next(s["ShardId"] for s in shards if "ParentShardId" not in s)
    children = [s["ShardId"] for s in shards if s.get("ParentShardId") == parent]
    assert children

    def child_ids(shard_id: str) -> list[str]:
        description = pipeline.streams.describe_stream(
            StreamArn=pipeline.stream_arn,
            ShardFilter={"Type": "CHILD_SHARDS", "ShardId": shard_id},
        )["StreamDescription"]
        return [s["ShardId"] for s in description["Shards"]]

    assert child_ids(parent) == children
    assert child_ids(children[0]) == []


def test_getrecords_empty_pages_on_every_new_iterator(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    pipeline.put("k1")
    shard_id = next(
        s["ShardId"]
        for s in pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)[
            "StreamDescription"
        ]["Shards"]
        if read_shard(pipeline, s["ShardId"])[0]
    )
    _faults(local_endpoint, getrecords_empty_pages=2)
    # A reader that stops at the first empty page finds nothing now.
    assert read_shard(pipeline, shard_id) == ([], False)
    iterator = pipeline.streams.get_shard_iterator(
        StreamArn=pipeline.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    pages = []
    for _ in range(3):
        page = pipeline.streams.get_records(ShardIterator=iterator)
        pages.append(len(page["Records"]))
        iterator = page["NextShardIterator"]
    assert pages == [0, 0, 1]
    # The engine reads as before.
    pipeline.create_mapping()
    wait_until(lambda: pipeline.batches() == [["k1"]], what="the record")


def _index_table(ddb: Any, name: str) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "G", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_gsi_lag_shows_the_index_as_it_was(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    ddb, name = pipeline.ddb, f"{pipeline.name}-gsi"
    _index_table(ddb, name)

    def put(key: str, value: str) -> None:
        ddb.put_item(TableName=name, Item={"PK": {"S": key}, "G": {"S": "g"}, "v": {"S": value}})

    def index() -> dict[str, str]:
        items = ddb.query(
            TableName=name,
            IndexName="GSI",
            KeyConditionExpression="G = :g",
            ExpressionAttributeValues={":g": {"S": "g"}},
        )["Items"]
        scanned = ddb.scan(TableName=name, IndexName="GSI")["Items"]
        assert sorted(i["PK"]["S"] for i in scanned) == sorted(i["PK"]["S"] for i in items)
        return {i["PK"]["S"]: i["v"]["S"] for i in items}

    put("old", "1")
    put("gone", "1")
    _faults(local_endpoint, gsi_lag_seconds=600)
    put("new", "1")  # created within the lag: not in the index yet
    put("old", "2")  # changed within the lag: its previous state
    put("old", "3")
    ddb.delete_item(TableName=name, Key={"PK": {"S": "gone"}})  # still in the index
    assert index() == {"old": "1", "gone": "1"}
    # The table itself is read as it is.
    assert ddb.get_item(TableName=name, Key={"PK": {"S": "new"}})["Item"]["v"]["S"] == "1"
    assert len(ddb.scan(TableName=name)["Items"]) == 2
    _faults(local_endpoint, gsi_lag_seconds=0)
    assert index() == {"old": "3", "new": "1"}


def test_clock_skew_moves_the_records_creation_time(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    _faults(local_endpoint, clock_skew_seconds=3.5)
    pipeline.create_mapping()
    key = pipeline.put("skewed")
    wait_until(lambda: pipeline.batches() == [[key]], what="the record")
    (call,) = pipeline.invocations()
    delivered = call.event["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
    stored = next(
        record["dynamodb"]["ApproximateCreationDateTime"].timestamp()
        for shard in pipeline.streams.describe_stream(StreamArn=pipeline.stream_arn)[
            "StreamDescription"
        ]["Shards"]
        for record in read_shard(pipeline, shard["ShardId"])[0]
    )
    assert abs(delivered - stored - 3.5) < 0.01


@ONE_SHARD
def test_bisect_delivers_the_second_half_first(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    _faults(local_endpoint, bisect_out_of_order=1.0)
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
        ["r3", "r4"],  # the second half first: fails (delivered again in order)
        ["r1", "r2"],  # succeeds
        ["r3", "r4"],  # fails: split
        ["r4"],  # the second half first: succeeds, acknowledged
        ["r3"],  # fails: retried
        ["r3"],  # fails again: to the failure queue; r4 is then checkpointed, not re-sent
    ]
    assert message["DDBStreamBatchInfo"]["batchSize"] == 1
    stats = pipeline.stats(uuid)
    assert stats["out_of_order_deliveries"] == 2
    assert stats["records_delivered"] == 3
    assert stats["records_to_failure_destination"] == 1


@ONE_SHARD
def test_final_invocation_carries_the_waiting_records(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    _faults(local_endpoint, final_invoke_records=True)
    uuid = pipeline.create_mapping(
        TumblingWindowInSeconds=2,
        BatchSize=10,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    time.sleep(2 - time.time() % 2 + 0.05)  # just after a window starts
    pipeline.put("w0", mode="sleep", seconds="4")  # busy past its window's end
    wait_until(lambda: len(pipeline.invocations()) == 1, what="the first invocation")
    first = pipeline.invocations()[0].event
    end = calendar.timegm(time.strptime(first["window"]["end"], "%Y-%m-%dT%H:%M:%SZ"))
    time.sleep(max(0.0, end - time.time()) + 0.3)  # the next window
    # Waiting when the first window ends; n0 is reported failed once.
    pipeline.put_many(("n0", {"mode": "partial-once"}), "n1")
    wait_until(lambda: len(pipeline.invocations()) >= 4, what="the next window's final call")
    calls = [c.event for c in pipeline.invocations()]
    keys = [[r["dynamodb"]["Keys"]["PK"]["S"] for r in e["Records"]] for e in calls]
    assert keys == [["w0"], ["n0", "n1"], ["n0", "n1"], []]
    assert [e["isFinalInvokeForWindow"] for e in calls] == [False, True, False, True]
    assert calls[1]["window"] == first["window"]  # the first window's final invocation
    assert calls[1]["state"] == {"count": 1}
    assert calls[2]["window"] != first["window"]
    assert calls[2]["state"] == {}
    stats = pipeline.stats(uuid)
    assert stats["window_final_records"] == 2
    assert stats["partial_failures"] == 1
    assert stats["records_delivered"] == 3  # w0, then n0 and n1 once acknowledged


@ONE_SHARD
def test_final_invocation_at_shard_end_carries_its_last_records(
    pipeline: Pipeline, local_endpoint: LocalEndpoint
) -> None:
    _faults(local_endpoint, final_invoke_records=1.0)
    uuid = pipeline.create_mapping(TumblingWindowInSeconds=900, MaximumBatchingWindowInSeconds=2)
    pipeline.put("k0")  # opens the window
    wait_until(lambda: pipeline.batches() == [["k0"]], what="the first batch")
    pipeline.put_many("k1", "k2")  # waiting for the batching window when the shard ends
    local_endpoint.control("POST", "/streams/rotate", {"table": pipeline.table})
    wait_until(lambda: len(pipeline.invocations()) >= 2, what="the final invocation")
    pipeline.endpoint.wait_drained()
    calls = [c.event for c in pipeline.invocations()]
    keys = [[r["dynamodb"]["Keys"]["PK"]["S"] for r in e["Records"]] for e in calls]
    assert keys == [["k0"], ["k1", "k2"]]
    assert [e["isFinalInvokeForWindow"] for e in calls] == [False, True]
    assert calls[1]["isWindowTerminatedEarly"] is True
    assert calls[1]["state"] == {"count": 1}
    stats = pipeline.stats(uuid)
    assert stats["window_final_records"] == 2
    assert stats["records_delivered"] == 3
