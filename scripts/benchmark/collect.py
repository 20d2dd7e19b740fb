"""What the benchmark reads besides the load test's report (I/O adapters):

* ``endpoint_client``: a boto3 client on the private endpoint;
* ``StreamCursor``: the stream records a run wrote, through the Streams API of the endpoint;
* ``Mapping``: a deployed event source mapping as Lambda reports it (settings, filters);
* ``LogTail``: the lines a function's log gained during a run (the endpoint's log files);
* write accounting: the endpoint's per-table counters, split into the workload's own writes
  and the summary writes, and the GSI units of the workload's writes recomputed from the
  stream images with the endpoint's own cost rules (``localcloud.writestats``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from localcloud.endpoint_process import aws_client
from localcloud.filters import CompiledFilters, compile_filter_criteria
from localcloud.protocol import event_record
from localcloud.writestats import IndexShape, index_write_units, item_size
from video_stats import model
from video_stats.model import AttributeMap
from vstats.effects import is_base_item
from vstats.pipeline import on_failure_destination
from vstats.stream_reader import LOCAL_TIMING, Bound, StreamTiming, read_stream

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BASE_OPERATIONS = ("PutItem", "DeleteItem")  # the load test writes base items only this way
SUMMARY_OPERATIONS = ("UpdateItem", "TransactWriteItems")


def endpoint_client(service: str, endpoint_url: str, pool: int = 10) -> Any:
    """A client on the private endpoint (``aws_client``'s): standard retries, and a
    connection pool as large as the caller's concurrency."""
    return aws_client(
        service,
        endpoint_url,
        Config(
            retries={"mode": "standard", "max_attempts": 10}, max_pool_connections=max(pool, 10)
        ),
    )


def endpoint_dynamodb(endpoint_url: str, pool: int) -> DynamoDBClient:
    client: DynamoDBClient = endpoint_client("dynamodb", endpoint_url, pool)
    return client


class StreamCursor:
    """Reads a table's stream from where it stopped, every shard (a stream of several
    partitions, and shards that rotate, have several): each shard's records in order, the
    shards in the order the stream lists them (parents before their children). The reading is
    ``vstats.stream_reader``'s: a closed shard to its end, an open one up to now."""

    def __init__(self, client: Any, stream_arn: str, timing: StreamTiming = LOCAL_TIMING) -> None:
        self._client = client
        self.stream_arn = stream_arn
        self.timing = timing
        self._last: dict[str, int] = {}  # shard id -> sequence number of its last record read
        self.shards_read: int = 0  # shards that had records in the last read_new()

    def read_new(self) -> list[dict[str, Any]]:
        """Every record written since the previous call (all of them the first time)."""
        read = read_stream(
            self._client,
            self.stream_arn,
            bound=Bound(time=time.time()),
            timing=self.timing,
            after=self._last,
        )
        records: list[dict[str, Any]] = []
        self.shards_read = 0
        for shard in read.shards:
            if shard.records:
                self.shards_read += 1
                self._last[shard.shard.shard_id] = shard.records[-1].seq
                records.extend(dict(r.raw or {}) for r in shard.records)
        return records


@dataclass(frozen=True, slots=True)
class DeployedMapping:
    """A deployed event source mapping and its function, as the Lambda API reports them."""

    uuid: str
    function_name: str
    item_type: model.ItemType
    batch_size: int
    settings: dict[str, Any]
    filters: CompiledFilters
    memory_mb: int
    architecture: str

    def delivered(self, records: Iterable[dict[str, Any]], region: str) -> list[dict[str, Any]]:
        """The records this mapping hands to its function, in stream order (Lambda format)."""
        events = (
            event_record(_wire(raw), self.settings["EventSourceArn"], region) for raw in records
        )
        return [event for event in events if self.filters.matches(event)]


def describe_mapping(lambda_client: Any, uuid: str, item_type: model.ItemType) -> DeployedMapping:
    esm = lambda_client.get_event_source_mapping(UUID=uuid)
    function = lambda_client.get_function_configuration(FunctionName=esm["FunctionArn"])
    settings = {
        name: esm.get(name)
        for name in (
            "EventSourceArn",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "StartingPosition",
            "ParallelizationFactor",
            "MaximumRetryAttempts",
            "MaximumRecordAgeInSeconds",
            "BisectBatchOnFunctionError",
            "FunctionResponseTypes",
            "TumblingWindowInSeconds",
        )
    }
    settings["Filters"] = [
        f["Pattern"] for f in (esm.get("FilterCriteria") or {}).get("Filters", [])
    ]
    settings["OnFailure"] = on_failure_destination(esm) is not None
    settings["Handler"] = function.get("Handler")
    settings["Runtime"] = function.get("Runtime")
    settings["Timeout"] = function.get("Timeout")
    architectures = function.get("Architectures") or ["x86_64"]
    return DeployedMapping(
        uuid=uuid,
        function_name=str(function["FunctionName"]),
        item_type=item_type,
        batch_size=int(esm.get("BatchSize") or 100),
        settings=settings,
        filters=compile_filter_criteria(esm.get("FilterCriteria")),
        memory_mb=int(function.get("MemorySize") or 128),
        architecture=str(architectures[0]),
    )


def _wire(raw: Mapping[str, Any]) -> dict[str, Any]:
    """boto3 decodes ApproximateCreationDateTime into a datetime; the filters never look at it."""
    dynamodb = dict(raw.get("dynamodb") or {})
    dynamodb.pop("ApproximateCreationDateTime", None)
    return {**raw, "dynamodb": dynamodb}


class LogTail:
    """The text a log file gained since ``mark()`` (the endpoint appends, never rewrites)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> str:
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")


# --- write accounting ----------------------------------------------------------------------------


def index_shapes(ddb_client: Any, table: str) -> list[IndexShape]:
    description = ddb_client.describe_table(TableName=table)["Table"]
    table_keys = tuple(k["AttributeName"] for k in description["KeySchema"])
    shapes = []
    for index in description.get("GlobalSecondaryIndexes") or []:
        projection = index.get("Projection") or {}
        shapes.append(
            IndexShape(
                name=index["IndexName"],
                keys=tuple(k["AttributeName"] for k in index["KeySchema"]),
                table_keys=table_keys,
                projection=projection.get("ProjectionType", "ALL"),
                non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            )
        )
    return shapes


def base_gsi_units(records: Iterable[Mapping[str, Any]], shapes: Sequence[IndexShape]) -> int:
    """GSI write units of the workload's own (non-transactional) writes: the stream records of
    VIEW and VOTE items, costed from their old and new images."""
    total = 0
    for raw in records:
        images = raw.get("dynamodb") or {}
        old, new = images.get("OldImage"), images.get("NewImage")
        if not is_base_item(new or old):
            continue
        total += sum(index_write_units(shape, old, new) for shape in shapes)
    return total


@dataclass(frozen=True, slots=True)
class TableWrites:
    base_requests: int
    base_wru: int
    summary_requests: int
    summary_items: int
    summary_wru: int
    gsi_wru: int  # every GSI unit the table was charged (workload and summaries)
    other_operations: tuple[str, ...]


def table_writes(stats: Mapping[str, Any], table: str) -> TableWrites:
    counters = (stats.get("dynamodb") or {}).get(table) or {}
    operations = counters.get("by_operation") or {}

    def total(names: Iterable[str], field: str) -> int:
        return sum(int((operations.get(name) or {}).get(field, 0)) for name in names)

    return TableWrites(
        base_requests=total(BASE_OPERATIONS, "requests"),
        base_wru=total(BASE_OPERATIONS, "write_request_units"),
        summary_requests=total(SUMMARY_OPERATIONS, "requests"),
        summary_items=total(SUMMARY_OPERATIONS, "items"),
        summary_wru=total(SUMMARY_OPERATIONS, "write_request_units"),
        gsi_wru=sum(int(v) for v in (counters.get("gsi_write_units") or {}).values()),
        other_operations=tuple(
            sorted(set(operations) - set(BASE_OPERATIONS) - set(SUMMARY_OPERATIONS))
        ),
    )


@dataclass(frozen=True, slots=True)
class SummarySizes:
    items: int
    max_bytes: int | None  # DynamoDB's item size (the endpoint's own rule)
    max_marks: int | None  # exactly-once bookkeeping attributes
    largest: dict[model.SummaryKind, AttributeMap]  # the largest summary item of each kind


def summary_sizes(items: Iterable[AttributeMap], id_prefix: str) -> SummarySizes:
    """The largest summary item of a workload (its ids start with ``id_prefix``) and the most
    marks one holds: a write costs one WRU per started KB of the item."""
    count = 0
    max_bytes = max_marks = None
    largest: dict[model.SummaryKind, AttributeMap] = {}
    for item in items:
        key = model.summary_key_of(item)
        if key is None or not key.id.startswith(id_prefix):
            continue
        count += 1
        size = item_size(item)
        marks = sum(1 for name in item if model.is_mark_attribute(name))
        max_bytes = size if max_bytes is None else max(max_bytes, size)
        max_marks = marks if max_marks is None else max(max_marks, marks)
        if key.kind not in largest or size > item_size(largest[key.kind]):
            largest[key.kind] = item
    return SummarySizes(count, max_bytes, max_marks, largest)
