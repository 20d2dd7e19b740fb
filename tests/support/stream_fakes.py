"""Stream fakes for tests and benchmarks: a base table that emits DynamoDB stream records.

Pure (no boto3). ``FakeStream`` applies puts and deletes to an in-memory copy of the table and
returns the stream record DynamoDB would emit (``NEW_AND_OLD_IMAGES``), with 21-digit, increasing
sequence numbers as a real shard has. Which records reach which function is
``vstats.filter_patterns.delivered_to`` (the deployed patterns, evaluated by the engine's code).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Final

from video_stats.model import DATA_MODEL_ATTRIBUTES, AttributeMap

STREAM_ARN: Final = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/test-data/stream/2024-01-01T00:00:00.000"
)
SHARD_ID: Final = "shardId-00000001700000000000-0a1b2c3d"
FIRST_SEQUENCE: Final = 100_000_000_000_000_000_000  # 21 digits, like a fresh shard


def _key(item: AttributeMap) -> tuple[str, str]:
    return (item["PK"]["S"], item["SK"]["S"])


class FakeStream:
    """One shard of a table's stream, fed by writes to an in-memory table."""

    def __init__(
        self,
        first_sequence: int = FIRST_SEQUENCE,
        start_time: float = 1_700_000_000.0,
        step: int = 1,
    ) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self._next = first_sequence
        self._step = step
        self._time = start_time

    def put(self, item: Mapping[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(dict(item))
        old = self.items.get(_key(new))
        self.items[_key(new)] = new
        return self._emit("MODIFY" if old is not None else "INSERT", new, old)

    def delete(self, key: tuple[str, str]) -> dict[str, Any] | None:
        old = self.items.pop(key, None)
        if old is None:
            return None  # deleting a missing item writes no stream record
        return self._emit("REMOVE", None, old)

    def _emit(
        self, name: str, new: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        image = new if new is not None else old
        assert image is not None
        seq = self._next
        self._next += self._step
        self._time += 0.001
        ddb: dict[str, Any] = {
            "ApproximateCreationDateTime": int(self._time),
            "Keys": {"PK": image["PK"], "SK": image["SK"]},
            "SequenceNumber": str(seq),
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            ddb["NewImage"] = copy.deepcopy(new)
        if old is not None:
            ddb["OldImage"] = copy.deepcopy(old)
        record = {
            "eventID": f"{seq:032x}"[-32:],
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": ddb,
            "eventSourceARN": STREAM_ARN,
        }
        self.records.append(record)
        return record


def stream_event(
    records: Iterable[Mapping[str, Any]], shard_id: str | None = SHARD_ID
) -> dict[str, Any]:
    """A Lambda event for one batch; with a ``shardId`` it is shaped like a tumbling-window
    event (the only DynamoDB event that names its shard)."""
    event: dict[str, Any] = {"Records": [copy.deepcopy(dict(r)) for r in records]}
    if shard_id is not None:
        event.update(
            {
                "shardId": shard_id,
                "eventSourceARN": STREAM_ARN,
                "window": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:15:00Z"},
                "state": {},
                "isFinalInvokeForWindow": False,
                "isWindowTerminatedEarly": False,
            }
        )
    return event


def create_table(client: Any, name: str) -> None:
    """Create the table as modules/dynamodb_table/main.tf does (keys, GSI1, GSI2, stream)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": kind}
            for attr, kind in (
                ("PK", "S"),
                ("SK", "S"),
                ("GSI1PK", "S"),
                ("GSI1SK", "S"),
                ("GSI2PK", "S"),
                ("GSI2SK", "S"),
            )
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": list(DATA_MODEL_ATTRIBUTES),
                },
            },
            {
                "IndexName": "GSI2",
                "KeySchema": [
                    {"AttributeName": "GSI2PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI2SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def scan_all(client: Any, name: str) -> list[dict[str, Any]]:
    """Every item of the table (client format)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class FakeStreamsClient:
    """The DynamoDB Streams API (DescribeStream, GetShardIterator, GetRecords) over
    ``FakeStream`` shards, for the tools' readers.

    ``empty_pages``: every new shard iterator first answers that many empty pages (with a next
    iterator), as the Streams API reference allows: "If there are no stream records available
    in the portion of the shard that the iterator points to, GetRecords returns an empty list.
    Note that it might take multiple calls to get to a portion of the shard that contains
    stream records." An open shard answers empty pages at its tip forever; a closed one ends
    with no ``NextShardIterator``."""

    def __init__(self, empty_pages: int = 0) -> None:
        self.shards: dict[str, tuple[FakeStream, str | None, bool]] = {}
        self.empty_pages = empty_pages
        self.get_records_calls = 0

    def add(self, shard_id: str, stream: FakeStream, parent: str | None = None) -> FakeStream:
        self.shards[shard_id] = (stream, parent, False)
        return stream

    def close(self, shard_id: str) -> None:
        stream, parent, _ = self.shards[shard_id]
        self.shards[shard_id] = (stream, parent, True)

    def describe_stream(self, StreamArn: str, **_: Any) -> dict[str, Any]:
        shards = []
        for shard_id, (stream, parent, closed) in self.shards.items():
            seqs = [r["dynamodb"]["SequenceNumber"] for r in stream.records] or ["1"]
            numbers = {"StartingSequenceNumber": seqs[0]}
            if closed:
                numbers["EndingSequenceNumber"] = seqs[-1]
            shard: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": numbers}
            if parent:
                shard["ParentShardId"] = parent
            shards.append(shard)
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": shards}}

    def get_shard_iterator(
        self,
        StreamArn: str,
        ShardId: str,
        ShardIteratorType: str,
        SequenceNumber: str | None = None,
    ) -> dict[str, Any]:
        records = self.shards[ShardId][0].records
        position = 0
        if ShardIteratorType != "TRIM_HORIZON":
            numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
            position = numbers.index(SequenceNumber)
            position += 1 if ShardIteratorType == "AFTER_SEQUENCE_NUMBER" else 0
        return {"ShardIterator": f"{ShardId}|{position}|{self.empty_pages}"}

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        self.get_records_calls += 1
        shard_id, position_text, empty_text = ShardIterator.split("|")
        position, empty = int(position_text), int(empty_text)
        stream, _, closed = self.shards[shard_id]
        if empty:
            return {"Records": [], "NextShardIterator": f"{shard_id}|{position}|{empty - 1}"}
        page = stream.records[position : position + Limit]
        position += len(page)
        response: dict[str, Any] = {"Records": copy.deepcopy(page)}
        if not (closed and position >= len(stream.records)):
            response["NextShardIterator"] = f"{shard_id}|{position}|0"
        return response
