"""What the benchmark reads: filtered deliveries, write accounting, log tails (no endpoint)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.collect import (
    DeployedMapping,
    LogTail,
    StreamCursor,
    base_gsi_units,
    table_writes,
)
from localcloud.filters import compile_filter_criteria
from localcloud.writestats import IndexShape
from video_stats import model
from vstats.filter_patterns import deployed_patterns
from vstats.stream_reader import StreamTiming

TS = datetime(2022, 1, 2, 17, 5, 29, 123000, tzinfo=UTC)
STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2022"
# The blog's view filter as bench/reference/main.tf deploys it (restated on the dynamodb key:
# INSERT only, as the blog's eventName version matched).
BLOG_VIEW_FILTER = {
    "dynamodb": {
        "NewImage": {"type": {"S": ["VIEW"]}},
        "OldImage": {"PK": {"S": [{"exists": False}]}},
    }
}
OUR_VIEW_FILTERS = deployed_patterns()["VIEW"]


def raw(name: str, seq: int, new: Any = None, old: Any = None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {
        "SequenceNumber": str(seq),
        "ApproximateCreationDateTime": TS,  # boto3 decodes it
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"eventID": str(seq), "eventName": name, "dynamodb": dynamodb}


def mapping(patterns: list[dict[str, Any]]) -> DeployedMapping:
    criteria = {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}
    return DeployedMapping(
        uuid="u",
        function_name="f",
        item_type="VIEW",
        batch_size=1,
        settings={"EventSourceArn": STREAM},
        filters=compile_filter_criteria(criteria),
        memory_mb=128,
        architecture="x86_64",
    )


VIEW = model.view_item("u", "v", 30, TS)
SUMMARY = {"PK": {"S": "VIDEO#v"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"}}
RECORDS = [
    raw("INSERT", 1, new=VIEW),
    raw("MODIFY", 2, new=VIEW | {"duration": {"N": "40"}}, old=VIEW),
    raw("REMOVE", 3, old=VIEW),
    raw("INSERT", 4, new=model.vote_item("u", "v", "LIKE")),
    raw("MODIFY", 5, new=SUMMARY, old=SUMMARY),
]


def test_the_blog_filter_delivers_inserts_only() -> None:
    delivered = mapping([BLOG_VIEW_FILTER]).delivered(RECORDS, "us-east-1")
    assert [r["eventName"] for r in delivered] == ["INSERT"]
    assert delivered[0]["eventSourceARN"] == STREAM


def test_our_filters_deliver_every_change_of_a_view_once() -> None:
    delivered = mapping(OUR_VIEW_FILTERS).delivered(RECORDS, "us-east-1")
    assert [r["dynamodb"]["SequenceNumber"] for r in delivered] == ["1", "2", "3"]


def test_base_gsi_units_cost_the_workload_writes_only() -> None:
    gsi1 = IndexShape("GSI1", ("GSI1PK", "GSI1SK"), ("PK", "SK"), "ALL")
    gsi2 = IndexShape("GSI2", ("GSI2PK", "views"), ("PK", "SK"), "INCLUDE", ("type",))
    vote = model.vote_item("u", "v", "LIKE")
    flipped = model.vote_item("u", "v", "DISLIKE")
    records = [
        raw("INSERT", 1, new=VIEW),  # 1 (GSI1 put)
        raw("REMOVE", 2, old=VIEW),  # 1 (GSI1 delete)
        raw("MODIFY", 3, new=flipped, old=vote),  # 2 (GSI1SK changes: delete + put)
        raw("MODIFY", 4, new=SUMMARY | {"GSI2PK": {"S": "x"}, "views": {"N": "1"}}),  # summary
    ]
    assert base_gsi_units(records, [gsi1, gsi2]) == 4


def test_table_writes_split_workload_and_summary_writes() -> None:
    stats = {
        "dynamodb": {
            "t": {
                "gsi_write_units": {"GSI1": 7, "GSI2": 5},
                "by_operation": {
                    "PutItem": {"requests": 10, "items": 10, "write_request_units": 10},
                    "DeleteItem": {"requests": 2, "items": 2, "write_request_units": 2},
                    "TransactWriteItems": {"requests": 3, "items": 6, "write_request_units": 12},
                    "UpdateItem": {"requests": 4, "items": 4, "write_request_units": 4},
                    "BatchWriteItem": {"requests": 1, "items": 1, "write_request_units": 1},
                },
            }
        }
    }
    writes = table_writes(stats, "t")
    assert (writes.base_requests, writes.base_wru) == (12, 12)
    assert (writes.summary_requests, writes.summary_items, writes.summary_wru) == (7, 10, 16)
    assert writes.gsi_wru == 12
    assert writes.other_operations == ("BatchWriteItem",)
    assert table_writes({}, "t").summary_items == 0


def test_log_tail_reads_what_was_appended_since_the_mark(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    tail = LogTail(path)
    tail.mark()
    assert tail.read() == ""
    path.write_text("old\n")
    tail.mark()
    with open(path, "a") as handle:
        handle.write("new\n")
    assert tail.read() == "new\n"


class TwoShards:
    """A Streams client stand-in: two shards (listed over two pages), records appended later."""

    def __init__(self) -> None:
        self.shards: dict[str, list[dict[str, Any]]] = {"parent": [], "child": []}

    def add(self, shard: str, seq: int) -> None:
        self.shards[shard].append({"dynamodb": {"SequenceNumber": str(seq)}})

    def describe_stream(self, **request: Any) -> dict[str, Any]:
        if "ExclusiveStartShardId" not in request:
            return {"StreamDescription": {"Shards": [{"ShardId": "parent"}],
                                          "LastEvaluatedShardId": "parent"}}  # fmt: skip
        return {"StreamDescription": {"Shards": [{"ShardId": "child"}]}}

    def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        records = self.shards[request["ShardId"]]
        start = 0
        if request["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER":
            seqs = [r["dynamodb"]["SequenceNumber"] for r in records]
            start = seqs.index(request["SequenceNumber"]) + 1
        return {"ShardIterator": (request["ShardId"], start)}

    def get_records(self, ShardIterator: Any, Limit: int) -> dict[str, Any]:
        shard, start = ShardIterator
        page = self.shards[shard][start : start + Limit]
        return {"Records": page, "NextShardIterator": (shard, start + len(page))}


def test_stream_cursor_reads_every_shard_from_where_it_stopped() -> None:
    client = TwoShards()
    quick = StreamTiming(delay=0.0, margin=0.0, open_shard_seconds=0.01, poll_seconds=0.0)
    cursor = StreamCursor(client, "arn", quick)
    client.add("parent", 1)
    client.add("parent", 2)
    client.add("child", 3)

    def seqs(records: list[dict[str, Any]]) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in records]

    assert seqs(cursor.read_new()) == ["1", "2", "3"]
    assert cursor.shards_read == 2
    client.add("child", 4)
    assert seqs(cursor.read_new()) == ["4"]
    assert cursor.shards_read == 1
    assert cursor.read_new() == []
