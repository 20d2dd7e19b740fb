"""The stream's shard structure (localcloud.shards), pure: routing, rotation, lineage, splits,
sequence numbers, transactions."""

from __future__ import annotations

import itertools

import pytest
from localcloud.shards import (
    MAX_DIGITS,
    MIN_DIGITS,
    SequenceError,
    ShardedStream,
    StreamSettings,
    merge_settings,
    partition_hash,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **settings: float) -> ShardedStream:
    return ShardedStream("acct/us-east-1/t/label", StreamSettings(**settings), clock or Clock())  # type: ignore[arg-type]


def put(stream: ShardedStream, key: str) -> str:
    """Appends a record for partition key ``key``; returns its shard id."""
    return stream.append({"S": key}, lambda seq: (key, seq)).shard_id


def test_p_open_shards_cover_the_hash_space_once() -> None:
    stream = make(partitions=4)
    shards = stream.shards()
    assert len(shards) == 4
    assert not any(s.closed for s in shards)
    bounds = sorted((s.hash_low, s.hash_high) for s in shards)
    assert bounds[0][0] == 0
    assert bounds[-1][1] == 1 << 64
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))


def test_one_key_always_goes_to_one_shard_and_keys_spread() -> None:
    stream = make(partitions=4)
    homes = {key: {put(stream, key) for _ in range(3)} for key in (f"USER#{i}" for i in range(40))}
    assert all(len(shards) == 1 for shards in homes.values())
    assert len({next(iter(s)) for s in homes.values()}) == 4  # 40 keys reach every shard
    assert partition_hash({"S": "a"}) == partition_hash({"S": "a"})


def test_sequence_numbers_grow_within_a_shard_and_are_not_comparable_across() -> None:
    stream = make(partitions=4, rotation_records=5)
    for i in range(200):
        put(stream, f"k{i % 13}")
    shards = stream.shards()
    lengths = set()
    for shard in shards:
        numbers = [seq for _, seq in shard.records]
        assert numbers == sorted(set(numbers))
        assert all(MIN_DIGITS <= len(str(n)) <= MAX_DIGITS for n in numbers)
        lengths.add(len(str(shard.first_sequence)))
    assert len(lengths) > 1  # different numbers of digits: comparing across shards is wrong
    child = next(s for s in shards if s.parent_id is not None)
    parent = stream.shard(child.parent_id or "")
    assert parent is not None
    assert len(str(child.first_sequence)) != len(str(parent.first_sequence))
    with pytest.raises(SequenceError):  # a number of one shard means nothing in another
        child.index_at(parent.records[-1][1])


def test_rotation_by_record_count_continues_the_hash_range_in_a_child() -> None:
    stream = make(partitions=2, rotation_records=3)
    for _ in range(7):
        put(stream, "same-key")
    lineage = [s for s in stream.shards() if s.records and s.records[0][0] == "same-key"]
    assert [len(s.records) for s in lineage] == [3, 3, 1]
    assert [s.closed for s in lineage] == [True, True, False]
    assert lineage[1].parent_id == lineage[0].shard_id
    assert lineage[2].parent_id == lineage[1].shard_id
    assert [s.generation for s in lineage] == [0, 1, 2]
    assert (lineage[2].hash_low, lineage[2].hash_high) == (
        lineage[0].hash_low,
        lineage[0].hash_high,
    )
    assert stream.lineage_depth() == 3


def test_rotation_by_time_counts_from_the_first_record_and_skips_empty_shards() -> None:
    clock = Clock()
    stream = make(clock, partitions=1, rotation_seconds=30)
    clock.now += 100  # idle: nothing rotates
    assert stream.rotate_due() == 0
    put(stream, "a")
    clock.now += 29
    assert stream.rotate_due() == 0
    clock.now += 2
    assert stream.rotate_due() == 1
    closed, child = stream.shards()
    assert closed.closed
    assert not child.closed
    assert child.parent_id == closed.shard_id
    described = closed.description()
    assert described["SequenceNumberRange"]["EndingSequenceNumber"] == str(closed.records[-1][1])
    assert "EndingSequenceNumber" not in child.description()["SequenceNumberRange"]
    assert child.description()["ParentShardId"] == closed.shard_id


def test_a_closed_shard_reads_to_its_end_then_ends() -> None:
    stream = make(partitions=1, rotation_records=3)
    for key in "abc":
        put(stream, key)
    shard = stream.shards()[0]
    records, index, ended = stream.read(shard, 0, 2)
    assert [r[0] for r in records] == ["a", "b"]
    assert not ended
    records, index, ended = stream.read(shard, index, 10)
    assert [r[0] for r in records] == ["c"]
    assert ended
    open_shard = stream.shards()[1]
    assert stream.read(open_shard, 0, 10) == ([], 0, False)  # open: never ends


def test_splits_halve_the_hash_range() -> None:
    stream = make(partitions=1, rotation_records=2, split_every=1)
    put(stream, "x")
    put(stream, "x")
    parent, left, right = stream.shards()
    assert parent.closed
    assert left.parent_id == right.parent_id == parent.shard_id
    assert (left.hash_low, left.hash_high, right.hash_high) == (0, right.hash_low, 1 << 64)


def test_a_cancelled_transaction_takes_its_records_back_and_rotates_nothing() -> None:
    stream = make(partitions=1, rotation_records=2)
    put(stream, "a")
    lengths = stream.begin_transaction()
    put(stream, "b")
    put(stream, "c")  # would rotate outside a transaction
    stream.end_transaction(lengths, committed=False)
    (shard,) = stream.shards()
    assert [r[0] for r in shard.records] == ["a"]
    lengths = stream.begin_transaction()
    put(stream, "d")
    stream.end_transaction(lengths, committed=True)
    assert [s.closed for s in stream.shards()] == [True, False]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"partitions": 0}, "partitions must be between 1 and 64"),
        ({"rotation_seconds": -1}, "rotation_seconds must be between"),
        ({"rotation_records": 1.5}, "rotation_records must be an integer"),
        ({"partitions": True}, "partitions must be a number"),
        ({"shards": 3}, "unknown keys: shards"),
        ([], "the body must be a JSON object"),
    ],
)
def test_invalid_settings_are_rejected(body: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        merge_settings(StreamSettings(), body)


def test_settings_merge() -> None:
    merged = merge_settings(StreamSettings(), {"partitions": 2, "rotation_seconds": 10})
    assert merged == StreamSettings(partitions=2, rotation_seconds=10.0)
