"""Reads of the table the tools share: summaries by key, summaries through the GSI2 ranking
index, GSI1 access patterns and parallel scans. All in AttributeValue form (client API)."""

from __future__ import annotations

import base64
import binascii
import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from video_stats import model
from video_stats.model import AttributeMap, Counters, SummaryKey, SummaryKind

from vstats.cli import UsageError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from vstats.generator import Operation

GSI1 = "GSI1"
GSI2 = "GSI2"
COUNTERS = ("views", "duration", "likes", "dislikes")
CounterName = Literal["views", "duration", "likes", "dislikes"]
_BATCH_GET_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SummaryRow:
    key: SummaryKey
    counters: Counters

    def as_dict(self) -> dict[str, Any]:
        return {
            model.summary_id_attribute(self.key.kind): self.key.id,
            "views": self.counters.views,
            "duration": self.counters.duration,
            "likes": self.counters.likes,
            "dislikes": self.counters.dislikes,
        }


def counter_value(counters: Counters, name: str) -> int:
    value: int = getattr(counters, name)
    return value


# --- summaries by key -----------------------------------------------------------------------


def get_summaries(
    client: DynamoDBClient, table: str, keys: Iterable[SummaryKey]
) -> dict[SummaryKey, Counters]:
    """Consistent reads of the given summaries (BatchGetItem); an absent summary is zero."""
    wanted = list(dict.fromkeys(keys))
    result = dict.fromkeys(wanted, model.ZERO)
    for start in range(0, len(wanted), _BATCH_GET_LIMIT):
        chunk = wanted[start : start + _BATCH_GET_LIMIT]
        request: dict[str, Any] = {
            table: {"Keys": [model.summary_item_key(k) for k in chunk], "ConsistentRead": True}
        }
        delay = 0.05
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                key = model.summary_key_of(item)
                if key is not None:
                    result[key] = model.summary_counters(item)
            request = dict(response.get("UnprocessedKeys") or {})
            if request:  # throttled: back off before asking for the rest
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
    return result


# --- summaries through the GSI2 ranking index -------------------------------------------------


def list_summaries(
    client: DynamoDBClient,
    table: str,
    kind: SummaryKind,
    *,
    shards: int,
    by: CounterName = "views",
    top: int | None = None,
) -> list[SummaryRow]:
    """Summaries of one kind, ranked by ``by`` (descending, then id), at most ``top``.

    Reads the sparse GSI2 (one partition per index shard) and the summaries by key, never
    scans. GSI2 holds only keys, ordered by the power-of-two bucket of ``views``
    (``model.summary_index_bucket``; see modules/dynamodb_table for why). For the top N by
    views, each partition is read from its highest bucket down until N entries have been seen,
    plus the rest of the bucket of the Nth: a summary in the top N of its partition has at
    least the Nth's views, so its bucket is at or above the Nth's. The exact counters of those
    candidates are then read with BatchGetItem (consistent) and ranked. Other counters (and
    ``top=None``) need every summary of the kind. The index lags the table by a moment, as
    every GSI does; the counters shown are the table's.
    """
    keys: list[SummaryKey] = []
    for shard in range(shards):
        partition = f"{model.summary_type(kind)}#{shard}"
        limit = top if by == "views" else None
        keys.extend(_index_candidates(client, table, partition, kind, limit))
    counters = get_summaries(client, table, keys)
    rows = [SummaryRow(key, value) for key, value in counters.items()]
    ranked = sorted(rows, key=lambda row: (-counter_value(row.counters, by), id_order(row.key.id)))
    return ranked[:top] if top is not None else ranked


def id_order(identifier: str) -> tuple[int, int, str]:
    """Ties in a ranking: numeric ids in numeric order (2 before 11), then the others."""
    if identifier.isascii() and identifier.isdigit():
        return (0, int(identifier), identifier)
    return (1, 0, identifier)


def _index_candidates(
    client: DynamoDBClient, table: str, partition: str, kind: SummaryKind, limit: int | None
) -> Iterator[SummaryKey]:
    """Keys of one GSI2 partition from the highest views bucket down: all of them, or the
    first ``limit`` and the rest of the last one's bucket."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": GSI2,
        "KeyConditionExpression": "GSI2PK = :p",
        "ExpressionAttributeValues": {":p": {"S": partition}},
        "ScanIndexForward": False,
    }
    if limit is not None:
        request["Limit"] = max(2 * limit, 50)
    returned = 0
    last_bucket: str | None = None
    while True:
        response = client.query(**request)
        for item in response.get("Items", []):
            bucket = item.get("GSI2SK", {}).get("S")
            if last_bucket is not None and bucket != last_bucket:
                return
            key = model.summary_key_of(item)
            if key is None or key.kind != kind:
                continue
            returned += 1
            yield key
            if limit is not None and returned >= limit and last_bucket is None:
                last_bucket = bucket
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        request["ExclusiveStartKey"] = last


# --- GSI1 access patterns ---------------------------------------------------------------------

ListingName = Literal["views", "likes", "dislikes"]
LISTING_PREFIX: dict[str, str] = {"views": "VIEW#", "likes": "LIKE#", "dislikes": "DISLIKE#"}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


def encode_token(last_key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, sort_keys=True).encode()).decode()


def decode_token(token: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise UsageError(f"invalid --next-token {token[:40]!r}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise UsageError(f"invalid --next-token {token[:40]!r}")
    return value


def query_video_listing(
    client: DynamoDBClient,
    table: str,
    video_id: str,
    listing: ListingName,
    *,
    limit: int | None = None,
    next_token: str | None = None,
) -> Page:
    """One page of a video's views, likes or dislikes through GSI1 (begins_with on GSI1SK)."""
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": GSI1,
        "KeyConditionExpression": "GSI1PK = :pk AND begins_with(GSI1SK, :prefix)",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"VIDEO#{video_id}"},
            ":prefix": {"S": LISTING_PREFIX[listing]},
        },
    }
    if limit is not None:
        request["Limit"] = limit
    if next_token:
        request["ExclusiveStartKey"] = decode_token(next_token)
    response = client.query(**request)
    last = response.get("LastEvaluatedKey")
    items = [dict(item) for item in response.get("Items", [])]
    return Page(items, encode_token(last) if last else None)


def get_summary_item(client: DynamoDBClient, table: str, key: SummaryKey) -> dict[str, Any] | None:
    response = client.get_item(
        TableName=table, Key=model.summary_item_key(key), ConsistentRead=True
    )
    item = response.get("Item")
    return dict(item) if item else None


# --- parallel scan ---------------------------------------------------------------------------

_DONE = object()


def scan_items(
    client: DynamoDBClient, table: str, segments: int, *, consistent: bool = True
) -> Iterator[AttributeMap]:
    """Every item of the table, read by ``segments`` parallel Scan segments.

    Items are yielded as pages arrive, so a caller that folds them (a recount) never holds the
    whole table. The first error of any segment is raised here.
    """
    pages: queue.Queue[Any] = queue.Queue(maxsize=segments * 4)
    stop = threading.Event()

    def worker(segment: int) -> None:
        try:
            request: dict[str, Any] = {
                "TableName": table,
                "Segment": segment,
                "TotalSegments": segments,
                "ConsistentRead": consistent,
            }
            while not stop.is_set():
                response = client.scan(**request)
                _put(pages, stop, response.get("Items", []))
                last = response.get("LastEvaluatedKey")
                if not last:
                    break
                request["ExclusiveStartKey"] = last
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put(pages, stop, exc)
        finally:
            _put(pages, stop, _DONE)

    threads = [
        threading.Thread(target=worker, args=(s,), name=f"scan-{s}", daemon=True)
        for s in range(segments)
    ]
    for thread in threads:
        thread.start()
    running = segments
    try:
        while running:
            page = pages.get()
            if page is _DONE:
                running -= 1
            elif isinstance(page, BaseException):
                raise page
            else:
                yield from page
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def _put(pages: queue.Queue[Any], stop: threading.Event, value: Any) -> None:
    while not stop.is_set():
        try:
            pages.put(value, timeout=0.1)
            return
        except queue.Full:
            continue


def write_operation(
    client: DynamoDBClient, table: str, operation: Operation
) -> AttributeMap | None:
    """Put or delete one generated operation, as the application would; returns the item it
    replaced or deleted (``ReturnValues=ALL_OLD``), None if there was none."""
    if operation.action == "put":
        assert operation.item is not None
        response = client.put_item(TableName=table, Item=operation.item, ReturnValues="ALL_OLD")
    else:
        response = client.delete_item(TableName=table, Key=operation.key, ReturnValues="ALL_OLD")
    return response.get("Attributes")
