"""Support for the engine tests: a small pipeline per test, deployed through the local
endpoint with boto3 (no Terraform):
a source table with a stream, a log table, a test function, a failure queue, and mappings.

The test function records every invocation in the log table (request id, time, record keys,
the event) and then misbehaves as the records ask, through a ``mode`` attribute:
``fail`` (always raise), ``fail-once`` (raise the first time the record is seen),
``partial-once`` (report the record in ``batchItemFailures`` the first time),
``invalid-once`` (return an identifier that is not in the batch, once), ``sleep``
(sleep ``seconds``), ``write`` (three UpdateItem calls on the log table). In a tumbling
window it counts the window's records in the returned ``state``.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from localcloud.endpoint_process import LocalEndpoint

FUNCTION_SOURCE = """
import json, os, time
import boto3

VERSION = "{version}"
LOG = os.environ["LOG_TABLE"]
ddb = boto3.client("dynamodb")


def _attr(record, name):
    image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {{}}
    value = image.get(name)
    return next(iter(value.values())) if value else None


def _first_time(tag):
    try:
        ddb.put_item(TableName=LOG, Item={{"PK": {{"S": "once#" + tag}}}},
                     ConditionExpression="attribute_not_exists(PK)")
        return True
    except ddb.exceptions.ConditionalCheckFailedException:
        return False


def handler(event, context):
    records = event["Records"]
    keys = [r["dynamodb"]["Keys"]["PK"]["S"] for r in records]
    ddb.put_item(TableName=LOG, Item={{
        "PK": {{"S": "inv#" + context.aws_request_id}},
        "t": {{"N": str(time.time_ns())}},
        "keys": {{"L": [{{"S": k}} for k in keys]}},
        "version": {{"S": VERSION}},
        "event": {{"S": json.dumps(event)}},
    }})
    failures = []
    for record, key in zip(records, keys):
        mode = _attr(record, "mode")
        if mode == "fail":
            raise RuntimeError("always failing " + key)
        if mode == "fail-once" and _first_time("fail#" + key):
            raise RuntimeError("failing once " + key)
        if mode == "sleep":
            time.sleep(float(_attr(record, "seconds")))
        if mode == "write":
            for i in range(3):
                ddb.update_item(TableName=LOG, Key={{"PK": {{"S": "w#" + key + "#" + str(i)}}}},
                                UpdateExpression="ADD n :one",
                                ExpressionAttributeValues={{":one": {{"N": "1"}}}})
        if mode == "partial-once" and _first_time("partial#" + key):
            failures.append({{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}})
        if mode == "invalid-once" and _first_time("invalid#" + key):
            return {{"batchItemFailures": [{{"itemIdentifier": "not-in-this-batch"}}]}}
    if "window" in event:  # tumbling window: count the records of the window in the state
        state = dict(event["state"] or {{}})
        state["count"] = state.get("count", 0) + len(records)
        return {{"state": state, "batchItemFailures": failures}}
    return {{"batchItemFailures": failures}}
"""


def function_zip(version: str = "v1") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", FUNCTION_SOURCE.format(version=version))
    return buffer.getvalue()


@dataclass(frozen=True)
class Invocation:
    request_id: str
    keys: list[str]
    version: str
    event: dict[str, Any]


@dataclass
class Pipeline:
    endpoint: LocalEndpoint
    name: str
    table: str
    log_table: str
    stream_arn: str
    function_arn: str
    queue_url: str
    queue_arn: str
    ddb: Any
    lam: Any
    sqs: Any
    streams: Any
    mappings: list[str] = field(default_factory=list)

    def create_mapping(self, **settings: Any) -> str:
        params: dict[str, Any] = {
            "FunctionName": self.function_arn,
            "EventSourceArn": self.stream_arn,
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 0,
            "DestinationConfig": {"OnFailure": {"Destination": self.queue_arn}},
        }
        params.update(settings)
        mapping_uuid: str = self.lam.create_event_source_mapping(**params)["UUID"]
        self.mappings.append(mapping_uuid)
        return mapping_uuid

    def put(self, key: str, **attributes: str) -> str:
        """Writes an item; returns its key."""
        item = {"PK": {"S": key}, **{k: {"S": v} for k, v in attributes.items()}}
        self.ddb.put_item(TableName=self.table, Item=item)
        return key

    def put_many(self, *items: str | tuple[str, dict[str, str]]) -> list[str]:
        """Writes items in one BatchWriteItem: their records appear in the stream at once,
        in this order, so batching does not depend on timing. Returns the keys."""
        requests, keys = [], []
        for entry in items:
            key, attributes = (entry, {}) if isinstance(entry, str) else entry
            item = {"PK": {"S": key}, **{k: {"S": v} for k, v in attributes.items()}}
            requests.append({"PutRequest": {"Item": item}})
            keys.append(key)
        self.ddb.batch_write_item(RequestItems={self.table: requests})
        return keys

    def invocations(self) -> list[Invocation]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.log_table}
        while True:
            page = self.ddb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        calls = sorted((i for i in items if i["PK"]["S"].startswith("inv#")), key=_time)
        return [
            Invocation(
                c["PK"]["S"][4:],
                [k["S"] for k in c["keys"]["L"]],
                c["version"]["S"],
                json.loads(c["event"]["S"]),
            )
            for c in calls
        ]

    def batches(self) -> list[list[str]]:
        return [call.keys for call in self.invocations()]

    def log_items(self, prefix: str) -> list[dict[str, Any]]:
        items = self.ddb.scan(TableName=self.log_table)["Items"]
        return [i for i in items if i["PK"]["S"].startswith(prefix)]

    def stats(self, mapping_uuid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.endpoint.control("GET", "/stats")[mapping_uuid]
        return result

    def failure_messages(self, expected: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            reply = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in reply.get("Messages", []):
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return messages


def _time(item: dict[str, Any]) -> int:
    return int(item["t"]["N"])


def create_table(ddb: Any, name: str, stream: bool) -> None:
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        params["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    ddb.create_table(**params)


def describe_shards(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every shard of the pipeline's stream (DescribeStream, page by page)."""
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = {"StreamArn": pipeline.stream_arn}
    while True:
        description = pipeline.streams.describe_stream(**request)["StreamDescription"]
        shards += description["Shards"]
        if "LastEvaluatedShardId" not in description:
            return shards
        request["ExclusiveStartShardId"] = description["LastEvaluatedShardId"]


def read_shard(pipeline: Pipeline, shard_id: str, **position: Any) -> tuple[list[Any], bool]:
    """The records of one shard from ``position`` (default TRIM_HORIZON) to where it stops
    now, and whether it ended (a closed shard read to its end: no NextShardIterator)."""
    request = {"ShardIteratorType": "TRIM_HORIZON", **position}
    iterator = pipeline.streams.get_shard_iterator(
        StreamArn=pipeline.stream_arn, ShardId=shard_id, **request
    )["ShardIterator"]
    records: list[Any] = []
    while True:
        page = pipeline.streams.get_records(ShardIterator=iterator, Limit=2)
        records += page["Records"]
        iterator = page.get("NextShardIterator")
        if iterator is None:
            return records, True
        if not page["Records"]:
            return records, False


def shard_of_sequence(pipeline: Pipeline) -> dict[tuple[str, str], str]:
    """(partition key, sequence number) -> shard id, for every record of the stream. A
    sequence number alone does not name a record: two shards may hand out the same one."""
    home: dict[tuple[str, str], str] = {}
    for shard in describe_shards(pipeline):
        for record in read_shard(pipeline, shard["ShardId"])[0]:
            dynamodb = record["dynamodb"]
            home[(dynamodb["Keys"]["PK"]["S"], dynamodb["SequenceNumber"])] = shard["ShardId"]
    return home
