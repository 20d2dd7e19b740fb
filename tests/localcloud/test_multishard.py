"""Streams of many shards, through the endpoint: the Streams API (routing, lineage, closed-shard
iteration, sequence numbers that do not compare across shards) and the engine (parent before
child, per-shard batching, windows closing at shard end, ParallelizationFactor keeping each
key in order, per-shard retries and on-failure messages, the replay fault)."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lc_support import (
    Pipeline,
    describe_shards,
    read_shard,
    shard_of_sequence,
)
from localcloud.shards import partition_hash


def rotate(pipeline: Pipeline) -> None:
    pipeline.endpoint.control("POST", "/streams/rotate", {"table": pipeline.table})


def keys_of(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["Keys"]["PK"]["S"] for r in records]


# --- the Streams API ---------------------------------------------------------------------------


@pytest.mark.stream(partitions=4)
def test_describe_stream_lists_every_shard_with_its_lineage(pipeline: Pipeline) -> None:
    first = describe_shards(pipeline)
    assert len(first) == 4
    assert all("ParentShardId" not in s for s in first)
    assert all("EndingSequenceNumber" not in s["SequenceNumberRange"] for s in first)
    pipeline.put_many(*(f"k{i}" for i in range(20)))
    rotate(pipeline)
    shards = describe_shards(pipeline)
    closed = [s for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    children = [s for s in shards if "ParentShardId" in s]
    assert len(closed) == len(children) == 4  # 20 keys reach every partition
    assert sorted(c["ParentShardId"] for c in children) == sorted(s["ShardId"] for s in closed)
    for shard in closed:
        records, ended = read_shard(pipeline, shard["ShardId"])
        numbers = shard["SequenceNumberRange"]
        assert ended
        assert records[0]["dynamodb"]["SequenceNumber"] == numbers["StartingSequenceNumber"]
        assert records[-1]["dynamodb"]["SequenceNumber"] == numbers["EndingSequenceNumber"]
    paged, request = [], {"StreamArn": pipeline.stream_arn, "Limit": 3}
    while True:
        page = pipeline.streams.describe_stream(**request)["StreamDescription"]
        paged += [s["ShardId"] for s in page["Shards"]]
        if "LastEvaluatedShardId" not in page:
            break
        request["ExclusiveStartShardId"] = page["LastEvaluatedShardId"]
    assert paged == [s["ShardId"] for s in shards]


@pytest.mark.stream(partitions=1)
def test_closed_shard_iteration_and_every_iterator_type(pipeline: Pipeline) -> None:
    pipeline.put_many("a", "b", "c")
    rotate(pipeline)
    pipeline.put("d")
    parent, child = describe_shards(pipeline)
    assert child["ParentShardId"] == parent["ShardId"]
    records, ended = read_shard(pipeline, parent["ShardId"])
    assert keys_of(records) == ["a", "b", "c"]
    assert ended  # GetRecords gave no NextShardIterator at the end of the closed shard
    b, c = (r["dynamodb"]["SequenceNumber"] for r in records[1:])
    at = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": b}
    after = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": b}
    assert keys_of(read_shard(pipeline, parent["ShardId"], **at)[0]) == ["b", "c"]
    assert keys_of(read_shard(pipeline, parent["ShardId"], **after)[0]) == ["c"]
    past_end = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": c}
    assert read_shard(pipeline, parent["ShardId"], **past_end) == ([], True)
    assert read_shard(pipeline, parent["ShardId"], ShardIteratorType="LATEST") == ([], True)
    child_records, child_ended = read_shard(pipeline, child["ShardId"])
    assert keys_of(child_records) == ["d"]
    assert not child_ended  # an open shard never ends
    assert keys_of(read_shard(pipeline, child["ShardId"], ShardIteratorType="LATEST")[0]) == []
    # Sequence numbers mean something within their shard only.
    d = child_records[0]["dynamodb"]["SequenceNumber"]
    assert len(d) != len(c)
    with pytest.raises(ClientError, match="ValidationException"):
        read_shard(
            pipeline, child["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=c
        )
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        read_shard(pipeline, "shardId-00000000000000000000-00000000")


@pytest.mark.stream(partitions=4)
def test_records_go_to_the_shard_of_their_partition_key_in_order(pipeline: Pipeline) -> None:
    for round_ in range(3):
        pipeline.put_many(*((f"k{i}", {"n": str(round_)}) for i in range(12)))
    homes: dict[str, set[str]] = defaultdict(set)
    order: dict[str, list[str]] = defaultdict(list)
    for shard in describe_shards(pipeline):
        for record in read_shard(pipeline, shard["ShardId"])[0]:
            key = record["dynamodb"]["Keys"]["PK"]["S"]
            homes[key].add(shard["ShardId"])
            order[key].append(record["dynamodb"]["NewImage"]["n"]["S"])
    assert all(len(shards) == 1 for shards in homes.values())
    assert len(set().union(*homes.values())) > 1
    assert all(values == ["0", "1", "2"] for values in order.values())


# --- the engine --------------------------------------------------------------------------------


@pytest.mark.stream(partitions=2, rotation_records=4)
def test_parent_before_child_and_the_window_closes_at_shard_end(pipeline: Pipeline) -> None:
    pipeline.create_mapping(TumblingWindowInSeconds=900, BatchSize=2)
    keys = pipeline.put_many(*(f"k{i:02d}" for i in range(20)))
    pipeline.endpoint.wait_drained()
    calls = pipeline.invocations()  # in the order the function ran
    shards = {s["ShardId"]: s for s in describe_shards(pipeline)}
    home = shard_of_sequence(pipeline)
    assert max(len(s.get("ParentShardId", "")) > 0 for s in shards.values())
    by_shard: dict[str, list[int]] = defaultdict(list)
    for position, call in enumerate(calls):
        event = call.event
        by_shard[event["shardId"]].append(position)
        for record in event["Records"]:  # every event carries its own shard's id
            key = (record["dynamodb"]["Keys"]["PK"]["S"], record["dynamodb"]["SequenceNumber"])
            assert home[key] == event["shardId"]
        assert len(event["Records"]) <= 2
    for shard_id, positions in by_shard.items():
        parent = shards[shard_id].get("ParentShardId")
        if parent in by_shard:
            assert min(positions) > max(by_shard[parent]), "a child ran before its parent ended"
        if "EndingSequenceNumber" in shards[shard_id]["SequenceNumberRange"]:
            last = calls[positions[-1]].event
            assert last["isFinalInvokeForWindow"] is True
            assert last["Records"] == []
            # The 900 s window ended with its shard, unless the run crossed the window's own
            # end (windows are aligned to the clock: a run at :14:59 ends one at :15:00).
            window_end = datetime.fromisoformat(last["window"]["end"].replace("Z", "+00:00"))
            assert last["isWindowTerminatedEarly"] is True or window_end <= datetime.now(UTC)
            assert last["state"]["count"] == sum(len(calls[p].event["Records"]) for p in positions)
    delivered = [k for c in calls for k in keys_of(c.event["Records"])]
    assert sorted(delivered) == sorted(keys)


@pytest.mark.stream(partitions=4)
def test_batches_are_per_shard(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(BatchSize=100, MaximumBatchingWindowInSeconds=1)
    pipeline.put_many(*(f"k{i:02d}" for i in range(40)))
    pipeline.endpoint.wait_drained()
    home = shard_of_sequence(pipeline)
    calls = pipeline.invocations()
    per_shard = Counter(home.values())
    assert len(per_shard) == 4
    assert len(calls) == 4  # one batch per shard: each holds about a quarter of the records
    for call in calls:
        shards = {
            home[(r["dynamodb"]["Keys"]["PK"]["S"], r["dynamodb"]["SequenceNumber"])]
            for r in call.event["Records"]
        }
        assert len(shards) == 1
    stats = pipeline.stats(uuid)
    assert {s: v["records_delivered"] for s, v in stats["shards"].items()} == dict(per_shard)
    assert all(v["invocations"] == 1 for v in stats["shards"].values())


@pytest.mark.stream(partitions=1)
def test_parallelization_factor_keeps_each_partition_key_in_order(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(ParallelizationFactor=4, BatchSize=3)
    keys = [f"k{i}" for i in range(8)]
    for n, key in itertools.product(range(4), keys):
        pipeline.put(key, n=str(n))
    pipeline.endpoint.wait_drained()
    seen: dict[str, list[str]] = defaultdict(list)
    lanes_used = set()
    for call in pipeline.invocations():
        lanes = {partition_hash({"S": k}) % 4 for k in keys_of(call.event["Records"])}
        assert len(lanes) == 1  # a batch holds the keys of one lane only
        lanes_used |= lanes
        for record in call.event["Records"]:
            seen[record["dynamodb"]["Keys"]["PK"]["S"]].append(
                record["dynamodb"]["NewImage"]["n"]["S"]
            )
    assert len(lanes_used) > 1
    assert all(values == ["0", "1", "2", "3"] for values in seen.values()), seen
    assert pipeline.stats(uuid)["parallelization_factor"] == 4


@pytest.mark.stream(partitions=4)
def test_a_failing_shard_retries_and_reports_alone(pipeline: Pipeline) -> None:
    uuid = pipeline.create_mapping(
        MaximumRetryAttempts=1, MaximumBatchingWindowInSeconds=1, BatchSize=100
    )
    pipeline.put_many(("bad", {"mode": "fail"}), *(f"k{i:02d}" for i in range(30)))
    (message,) = pipeline.failure_messages(1)
    pipeline.endpoint.wait_drained()
    home = shard_of_sequence(pipeline)
    bad_shard = next(shard for (key, _), shard in home.items() if key == "bad")
    info = message["DDBStreamBatchInfo"]
    assert info["shardId"] == bad_shard  # the message names the shard
    assert info["batchSize"] == sum(1 for s in home.values() if s == bad_shard)
    shards = pipeline.stats(uuid)["shards"]
    assert shards[bad_shard]["function_errors"] == 2  # the first attempt and one retry
    assert shards[bad_shard]["records_discarded"] == info["batchSize"]
    for shard_id, counts in shards.items():
        if shard_id != bad_shard:  # the other shards went on, unharmed
            assert counts["function_errors"] == counts["records_discarded"] == 0
            assert counts["records_delivered"] == sum(1 for s in home.values() if s == shard_id)


@pytest.mark.stream(partitions=1, rotation_records=6)
def test_replay_redelivers_processed_ranges_including_the_parent(pipeline: Pipeline) -> None:
    pipeline.endpoint.control("PUT", "/faults", {"replay_rate": 1.0, "seed": 7})
    uuid = pipeline.create_mapping(BatchSize=2)
    for i in range(12):
        pipeline.put(f"k{i:02d}")
    pipeline.endpoint.wait_drained()
    pipeline.endpoint.control("PUT", "/faults", {"replay_rate": 0.0})
    parent, child, _ = describe_shards(pipeline)
    parent_keys = set(keys_of(read_shard(pipeline, parent["ShardId"])[0]))
    child_keys = set(keys_of(read_shard(pipeline, child["ShardId"])[0]))
    calls = [keys for keys in pipeline.batches() if keys]
    first_child_call = next(i for i, keys in enumerate(calls) if set(keys) <= child_keys)
    assert any(set(keys) <= parent_keys for keys in calls[first_child_call:])
    assert Counter(k for keys in calls for k in keys).most_common(1)[0][1] > 1
    assert pipeline.stats(uuid)["replayed_batches"] > 0
