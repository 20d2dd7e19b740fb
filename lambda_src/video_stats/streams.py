"""The DynamoDB Streams adapter: a stream's shards and their parents (DescribeStream)."""

from __future__ import annotations

from typing import Any

import boto3

from video_stats.lineage import Shard
from video_stats.store import CLIENT_CONFIG

#: No stubs for the streams client are pinned; it is used through two calls only.
DynamoDBStreamsClient = Any


def client_from_env() -> DynamoDBStreamsClient:
    return boto3.client("dynamodbstreams", config=CLIENT_CONFIG)


def describe_children(client: DynamoDBStreamsClient, stream_arn: str, shard_id: str) -> list[Shard]:
    """The children of one shard: DescribeStream with ``ShardFilter`` ``CHILD_SHARDS`` (one
    request however many shards the stream has). Only shards naming ``shard_id`` as their
    parent are kept, so an endpoint that ignores the filter still gives the right answer."""
    found = describe_shards(
        client, stream_arn, {"ShardFilter": {"Type": "CHILD_SHARDS", "ShardId": shard_id}}
    )
    return [shard for shard in found if shard.parent_id == shard_id]


def describe_shards(
    client: DynamoDBStreamsClient, stream_arn: str, extra: dict[str, Any] | None = None
) -> list[Shard]:
    """Every shard of the stream (DescribeStream, paginated with ExclusiveStartShardId);
    ``extra``: more request parameters (a ShardFilter)."""
    shards: list[Shard] = []
    request: dict[str, Any] = {"StreamArn": stream_arn, **(extra or {})}
    while True:
        description = client.describe_stream(**request)["StreamDescription"]
        for shard in description.get("Shards", []):
            numbers = shard.get("SequenceNumberRange") or {}
            shards.append(
                Shard(
                    shard["ShardId"],
                    shard.get("ParentShardId") or None,
                    "EndingSequenceNumber" in numbers,
                )
            )
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        request["ExclusiveStartShardId"] = last
