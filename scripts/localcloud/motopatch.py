"""What the local endpoint changes in moto (in process, before the server starts).

* Moto's synchronous stream delivery (Docker) off; the stream itself is many shards, with
  rotation and lineage, and the Streams API answers from them (``motostreams``).
* Event source mappings are validated like Lambda does (filter patterns, ranges) and the
  engine hears about every create, update and delete at once. ``LATEST`` starts at each
  open shard's tip when the mapping is created.
* DynamoDB writes are counted per table (``writestats``) with their write request units.
* ``Invoke`` runs the function in the engine's workers instead of moto's Docker path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

from localcloud import motostreams
from localcloud.filters import PatternError, compile_filter_criteria
from localcloud.writestats import IndexShape, WriteStats, write_cost

MAX_SHARD_ITERATORS = 10_000
LATEST_POSITIONS_ATTR = "_localcloud_latest_positions"
WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
TRANSACTIONAL = frozenset({"TransactWriteItems", "ExecuteTransaction"})


# Runs a function (moto's LambdaFunction) on an event; returns (ok, payload bytes).
Invoker = Callable[[Any, bytes], tuple[bool, bytes]]


class _Hooks:
    installed = False
    listeners: ClassVar[list[Callable[[], None]]] = []
    write_stats: WriteStats | None = None
    invoker: Invoker | None = None


_context = threading.local()


def install(
    write_stats: WriteStats,
    on_mappings_changed: Callable[[], None],
    invoker: Invoker | None = None,
) -> None:
    """Idempotent; the last ``write_stats`` and ``invoker`` and every listener are used."""
    _Hooks.write_stats = write_stats
    _Hooks.invoker = invoker
    _Hooks.listeners.append(on_mappings_changed)
    if _Hooks.installed:
        return
    _Hooks.installed = True
    _patch_stream_delivery()
    _patch_invoke()
    motostreams.install()
    _patch_mappings()
    _patch_writes()


def _notify() -> None:
    for listener in list(_Hooks.listeners):
        listener()


def _patch_invoke() -> None:
    original = LambdaFunction.invoke

    def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        invoker = _Hooks.invoker
        if invoker is None:
            return original(self, body, request_headers, response_headers)
        payload = body.encode() if isinstance(body, str) else (body or b"{}")
        kind = request_headers.get("x-amz-invocation-type", "RequestResponse")
        if kind == "DryRun":
            return b""
        if kind == "Event":  # asynchronous: accepted now, run in the background
            threading.Thread(target=invoker, args=(self, payload), daemon=True).start()
            return b""
        ok, result = invoker(self, payload)
        if not ok:
            response_headers["x-amz-function-error"] = "Unhandled"
        return result

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]


# --- streams ---------------------------------------------------------------------------


def _patch_stream_delivery() -> None:

    def send_dynamodb_items(self: Any, function_arn: str, items: Any, source: str) -> None:
        return None

    LambdaBackend.send_dynamodb_items = send_dynamodb_items  # type: ignore[method-assign,assignment]


# --- event source mappings -----------------------------------------------------------------


def validate_mapping_spec(spec: Mapping[str, Any], for_stream: bool) -> None:
    """Lambda's checks for a DynamoDB stream mapping; ValueError with Lambda's wording."""
    ranges = {
        "BatchSize": (1, 10_000),
        "MaximumBatchingWindowInSeconds": (0, 300),
        "MaximumRetryAttempts": (-1, 10_000),
        "ParallelizationFactor": (1, 10),
        "TumblingWindowInSeconds": (0, 900),
    }
    for name, (low, high) in ranges.items():
        value = spec.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
    age = spec.get("MaximumRecordAgeInSeconds")
    if age is not None and not (age == -1 or (isinstance(age, int) and 60 <= age <= 604_800)):
        raise ValueError(f"MaximumRecordAgeInSeconds must be -1 or 60..604800, got {age!r}")
    types = spec.get("FunctionResponseTypes") or []
    if any(t != "ReportBatchItemFailures" for t in types):
        raise ValueError(f"unsupported FunctionResponseTypes {types!r}")
    position = spec.get("StartingPosition")
    if for_stream and position is not None and position not in ("TRIM_HORIZON", "LATEST"):
        raise ValueError(f"StartingPosition {position!r} is not valid for a DynamoDB stream")
    if "FilterCriteria" in spec:
        try:
            compile_filter_criteria(spec.get("FilterCriteria"))
        except PatternError as exc:
            raise ValueError(f"Invalid filter pattern definition: {exc}") from None


def _latest_positions(event_source_arn: str, account: str, region: str) -> dict[str, Any] | None:
    """Where ``LATEST`` starts, per shard, when the mapping is created: after the last record
    of each open shard (None: its first record); closed shards are not read at all."""
    try:
        region, account = event_source_arn.split(":")[3:5]
    except ValueError:
        return None
    stream = motostreams.stream_of(event_source_arn, account, region)
    if stream is None:
        return None
    positions: dict[str, Any] = {"closed": [], "open": {}}
    for shard in stream.shards():
        if shard.closed:
            positions["closed"].append(shard.shard_id)
        else:
            last = len(shard.records) - 1
            positions["open"][shard.shard_id] = (
                str(shard.sequence_number(last)) if last >= 0 else None
            )
    return positions


def _patch_mappings() -> None:

    original_create = LambdaBackend.create_event_source_mapping
    original_update = LambdaBackend.update_event_source_mapping
    original_delete = LambdaBackend.delete_event_source_mapping

    def is_stream(arn: str | None) -> bool:
        return bool(arn) and ":dynamodb:" in str(arn)

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        stream = is_stream(spec.get("EventSourceArn"))
        if stream:
            try:
                validate_mapping_spec(spec, for_stream=True)
            except ValueError as exc:
                raise InvalidParameterValueException(str(exc)) from None
        esm = original_create(self, spec)
        if stream:
            positions = _latest_positions(esm.event_source_arn, self.account_id, self.region_name)
            setattr(esm, LATEST_POSITIONS_ATTR, positions)
        _notify()
        return esm

    def update_event_source_mapping(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
        existing = self.get_event_source_mapping(uuid)
        if existing is not None and is_stream(existing.event_source_arn):
            try:
                validate_mapping_spec(spec, for_stream=True)
            except ValueError as exc:
                raise InvalidParameterValueException(str(exc)) from None
        esm = original_update(self, uuid, spec)
        _notify()
        return esm

    def delete_event_source_mapping(self: Any, uuid: str) -> Any:
        esm = original_delete(self, uuid)
        _notify()
        return esm

    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore[method-assign]
    LambdaBackend.update_event_source_mapping = update_event_source_mapping  # type: ignore[method-assign]
    LambdaBackend.delete_event_source_mapping = delete_event_source_mapping  # type: ignore[method-assign]


# --- write accounting ------------------------------------------------------------------


def _index_shapes(table: Any) -> list[IndexShape]:
    shapes = []
    for index in getattr(table, "global_indexes", None) or []:
        projection = index.projection or {}
        shapes.append(
            IndexShape(
                name=index.name,
                keys=tuple(k["AttributeName"] for k in index.schema),
                table_keys=tuple(table.table_key_attrs),
                projection=projection.get("ProjectionType", "ALL"),
                non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
            )
        )
    return shapes


def _attributes(item: Any) -> dict[str, Any] | None:
    if item is None:
        return None
    attributes: dict[str, Any] = item.to_json()["Attributes"]
    return attributes


def _current_item(backend: Any, table: Any, key: Mapping[str, Any]) -> dict[str, Any] | None:
    try:
        return _attributes(backend.get_item(table.name, dict(key)))
    except Exception:  # a malformed key fails the write itself; nothing to count
        return None


def _record(
    table: Any,
    default_operation: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    condition_failed: bool = False,
) -> None:
    stats = _Hooks.write_stats
    if stats is None:
        return
    operation = getattr(_context, "operation", None) or default_operation
    # A failed condition writes nothing, so no index either; the item's units are charged.
    indexes = [] if condition_failed else _index_shapes(table)
    cost = write_cost(old, new, indexes, operation in TRANSACTIONAL)
    stats.record_write(table.name, operation, cost, condition_failed)
    touched = getattr(_context, "tables", None)
    if touched is not None:
        touched.add(table.name)


def _patch_writes() -> None:

    original_put = DynamoDBBackend.put_item
    original_update = DynamoDBBackend.update_item
    original_delete = DynamoDBBackend.delete_item
    original_call_action = DynamoHandler.call_action

    def key_of(table: Any, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {k: attrs[k] for k in table.table_key_attrs if k in attrs}

    def put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old = _current_item(self, table, key_of(table, item_attrs))
        try:
            item = original_put(self, table_name, item_attrs, *a, **kw)
        except ConditionalCheckFailed:
            _record(table, "PutItem", old, None, condition_failed=True)
            raise
        _record(table, "PutItem", old, _attributes(item))
        return item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old = _current_item(self, table, key)
        try:
            item = original_update(self, table_name, key, *a, **kw)
        except ConditionalCheckFailed:
            _record(table, "UpdateItem", old, None, condition_failed=True)
            raise
        _record(table, "UpdateItem", old, _attributes(item))
        return item

    def delete_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old = _current_item(self, table, key)
        try:
            item = original_delete(self, table_name, key, *a, **kw)
        except ConditionalCheckFailed:
            _record(table, "DeleteItem", old, None, condition_failed=True)
            raise
        if old is not None:  # deleting nothing writes nothing, but still costs a unit
            _record(table, "DeleteItem", old, None)
        else:
            _record(table, "DeleteItem", None, None)
        return item

    def call_action(self: Any) -> Any:
        try:
            operation = self._get_action()
        except Exception:
            operation = None
        if operation not in WRITE_OPERATIONS:
            return original_call_action(self)
        _context.operation = operation
        _context.tables = set()
        try:
            return original_call_action(self)
        finally:
            tables = _context.tables
            _context.operation = None
            _context.tables = None
            stats = _Hooks.write_stats
            if stats is not None:
                for table in tables:
                    stats.record_request(table, operation)

    DynamoDBBackend.put_item = put_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    DynamoDBBackend.delete_item = delete_item  # type: ignore[method-assign]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
