"""What the local endpoint changes in moto (in process, before the server starts).

* Moto's synchronous stream delivery (Docker) off; the stream itself is many shards, with
  rotation and lineage, and the Streams API answers from them (``motostreams``).
* Event source mappings are validated like Lambda does (filter patterns, ranges) and the
  engine hears about every create, update and delete at once. ``LATEST`` starts at each
  open shard's tip when the mapping is created.
* DynamoDB writes are counted per table (``writestats``) with their write request units.
* ``Invoke`` runs the function in the engine's workers instead of moto's Docker path.
* The ``gsi_lag_seconds`` fault (``faults.py``): Query and Scan on a global secondary index see
  each item as it was that many seconds ago — the state before its first write since then
  (missing if it did not exist). Writes keep the item's previous version while the fault is on;
  every reader of the endpoint sees the lag, the tools included.
* Parsed update expressions are cached by their text (``parse_update_expression``), moto's
  list of its own services is read once instead of on every request, and the item operations'
  answers are written as plain JSON (``PLAIN_RESPONSES``) instead of through moto's
  model-driven serializer (the profile behind this: README.md in this folder, "Performance").
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from moto import backends as moto_backends
from moto.awslambda.exceptions import InvalidParameterValueException
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.core.utils import get_service_model
from moto.dynamodb.exceptions import ConditionalCheckFailed
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler

from localcloud import motostreams
from localcloud.faults import Faults
from localcloud.filters import PatternError, compile_filter_criteria
from localcloud.motostreams import json_response  # the wire format's one encoder
from localcloud.writestats import IndexShape, WriteStats, write_cost

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
# Distinct update expression texts kept parsed. The handlers build a few dozen (placeholders,
# never values, vary with the number of marks); the bound keeps a stray client from growing it.
PARSED_EXPRESSIONS = 1024
# Successful answers written as plain JSON: the same body moto's serializer writes (only the
# output shape's members, no nulls, binaries base64), a tenth of the endpoint's CPU less.
PLAIN_RESPONSES = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"})


# Runs a function (moto's LambdaFunction) on an event; returns (ok, payload bytes).
Invoker = Callable[[Any, bytes], tuple[bool, bytes]]


class _Hooks:
    installed = False
    listeners: ClassVar[list[Callable[[], None]]] = []
    write_stats: WriteStats | None = None
    invoker: Invoker | None = None
    faults: Faults | None = None


_context = threading.local()


def install(
    write_stats: WriteStats,
    on_mappings_changed: Callable[[], None],
    invoker: Invoker | None = None,
    faults: Faults | None = None,
) -> None:
    """Idempotent; the last ``write_stats``, ``invoker`` and ``faults`` and every listener are
    used."""
    _Hooks.write_stats = write_stats
    _Hooks.invoker = invoker
    _Hooks.faults = faults
    if faults is not None:
        motostreams.use_faults(faults)
    _Hooks.listeners.append(on_mappings_changed)
    if _Hooks.installed:
        return
    _Hooks.installed = True
    _patch_stream_delivery()
    _patch_invoke()
    motostreams.install()
    _patch_mappings()
    _patch_writes()
    _patch_index_reads()
    _patch_hot_paths()


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


# --- hot paths (parsing, routing, answers) ---------------------------------------------

_ORIGINAL_MAKE = UpdateExpressionParser.make


@functools.lru_cache(maxsize=PARSED_EXPRESSIONS)
def parse_update_expression(text: str) -> Any:
    """moto's AST of an UpdateExpression, parsed once per text and shared. Safe because the
    parse depends on the text alone (names and values stay placeholders) and nobody changes
    the tree: moto's UpdateItem only reads it (``find_clauses``) and its validator works on a
    ``deepcopy`` (moto/dynamodb/parsing/validators.py, ``Validator.__init__``). A syntax error
    is raised again on every call (lru_cache keeps only results)."""
    return _ORIGINAL_MAKE(text)


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    return tuple(_ORIGINAL_LIST_OF_MOTO_MODULES())


_ORIGINAL_LIST_OF_MOTO_MODULES = moto_backends.list_of_moto_modules


# What replaces ``UpdateExpressionParser.make`` (a classmethod, like moto's).
CACHED_MAKE = classmethod(lambda cls, text: parse_update_expression(text))


def _patch_hot_paths() -> None:
    # moto parses the same UpdateExpression twice per UpdateItem (request check, then backend).
    UpdateExpressionParser.make = CACHED_MAKE
    # moto's server lists its package directory (one stat per service) to route each request.
    moto_backends.list_of_moto_modules = _moto_modules
    DynamoHandler.serialized = _serialized  # type: ignore[method-assign]


_ORIGINAL_SERIALIZED = DynamoHandler.serialized


@functools.cache
def _output_members(operation: str) -> frozenset[str]:
    shape = get_service_model("dynamodb").operation_model(operation).output_shape
    return frozenset(shape.members) if shape is not None else frozenset()


def _serialized(self: Any, action_result: Any) -> Any:
    """``PLAIN_RESPONSES`` answered with plain JSON; errors and everything else by moto."""
    result = action_result.result
    operation = self._get_action()
    if operation not in PLAIN_RESPONSES or not isinstance(result, dict):
        return _ORIGINAL_SERIALIZED(self, action_result)
    members = _output_members(operation)
    status, headers, body = json_response(
        {k: v for k, v in result.items() if k in members and v is not None}
    )
    headers.update(self.response_headers)
    return status, headers, body


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


def _stored_item(backend: Any, table: Any, key: Mapping[str, Any]) -> Any:
    """moto's item at ``key`` before a write, or None (also for a malformed key: the write
    itself fails then, and nothing is counted)."""
    try:
        return backend.get_item(table.name, dict(key))
    except Exception:
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

    def accounted(
        self: Any, table: Any, key: Mapping[str, Any], operation: str, write: Callable[[], Any]
    ) -> tuple[dict[str, Any] | None, Any]:
        """``write`` through moto, with the item before it, read once, kept for the write
        units and (while gsi_lag_seconds is on) for the lagging index; a rejected condition is
        counted and raised again. Returns (the item's attributes before, moto's answer)."""
        stored = _stored_item(self, table, key)
        old = _attributes(stored)
        previous = _IndexLag.before_write(table, stored)
        try:
            result = write()
        except ConditionalCheckFailed:
            _record(table, operation, old, None, condition_failed=True)
            raise
        _IndexLag.written(table, key, previous)
        return old, result

    def put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old, item = accounted(
            self,
            table,
            key_of(table, item_attrs),
            "PutItem",
            lambda: original_put(self, table_name, item_attrs, *a, **kw),
        )
        _record(table, "PutItem", old, _attributes(item))
        return item

    def update_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old, item = accounted(
            self, table, key, "UpdateItem", lambda: original_update(self, table_name, key, *a, **kw)
        )
        _record(table, "UpdateItem", old, _attributes(item))
        return item

    def delete_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        table = self.get_table(table_name)
        old, item = accounted(
            self, table, key, "DeleteItem", lambda: original_delete(self, table_name, key, *a, **kw)
        )
        _record(table, "DeleteItem", old, None)  # deleting nothing writes nothing, but costs a unit
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


# --- global secondary index lag (the gsi_lag_seconds fault) ------------------------------


_NOT_KEPT = object()  # the fault was off at the write: nothing to show instead


class _IndexLag:
    """Per table, per item key: (time of a write, the item before it), while the fault is on.
    DynamoDB requests run one at a time (server.serialize_dynamodb), so no lock."""

    writes: ClassVar[dict[tuple[str, str, str], dict[str, list[tuple[float, Any]]]]] = {}

    @staticmethod
    def lag() -> float:
        faults = _Hooks.faults
        return faults.config.gsi_lag_seconds if faults is not None else 0.0

    @staticmethod
    def before_write(table: Any, stored: Any) -> Any:
        """What to keep of the item before a write (``stored``: moto's item, or None)."""
        if not _IndexLag.lag():
            _IndexLag.writes.clear()  # the fault is off: nothing kept is needed any more
            return _NOT_KEPT
        if not getattr(table, "global_indexes", None):
            return _NOT_KEPT
        return copy.deepcopy(stored)

    @staticmethod
    def written(table: Any, key: Mapping[str, Any], previous: Any) -> None:
        if previous is _NOT_KEPT:
            return
        now = time.time()
        log = _IndexLag.writes.setdefault(_table_id(table), {})
        history = log.setdefault(_key_id(table, key), [])
        since = now - _IndexLag.lag()
        history[:] = [entry for entry in history if entry[0] > since]
        history.append((now, previous))

    @staticmethod
    def view(table: Any, items: list[Any]) -> list[Any]:
        """``items`` (the table now) as the index shows them: each item written within the
        lag in its state before the first of those writes."""
        log = _IndexLag.writes.get(_table_id(table))
        if not log:
            return items
        since = time.time() - _IndexLag.lag()
        shown = {_key_id(table, _item_key(table, item)): item for item in items}
        for key in list(log):
            history = [entry for entry in log[key] if entry[0] > since]
            if not history:
                del log[key]
                continue
            log[key] = history
            previous = history[0][1]
            if previous is None:
                shown.pop(key, None)
            else:
                shown[key] = previous
        return sorted(
            shown.values(),
            key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key,
        )


def _table_id(table: Any) -> tuple[str, str, str]:
    return (str(table.account_id), str(table.region_name), str(table.name))


def _item_key(table: Any, item: Any) -> dict[str, Any]:
    return {k: item.attrs[k].to_json() for k in table.table_key_attrs if k in item.attrs}


def _key_id(table: Any, key: Mapping[str, Any]) -> str:
    return json.dumps({k: key.get(k) for k in table.table_key_attrs}, sort_keys=True, default=str)


def _patch_index_reads() -> None:
    """Query and Scan on a global secondary index read the lagged view (``_IndexLag``)."""
    original_query = Table.query
    original_scan = Table.scan
    original_all_items = Table.all_items
    original_has_idx_items = Table.has_idx_items

    def lagged(table: Any, index_name: Any) -> bool:
        if not index_name or not _IndexLag.lag():
            return False
        return any(i.name == index_name for i in (table.global_indexes or []))

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[7] if len(args) > 7 else None)
        _context.index_lag = lagged(self, index_name)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _context.index_lag = False

    def scan(self: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[4] if len(args) > 4 else None)
        _context.index_lag = lagged(self, index_name)
        try:
            return original_scan(self, *args, **kwargs)
        finally:
            _context.index_lag = False

    def all_items(self: Any) -> Any:
        items = original_all_items(self)
        return _IndexLag.view(self, items) if getattr(_context, "index_lag", False) else items

    def has_idx_items(self: Any, index_name: str) -> Any:
        if not getattr(_context, "index_lag", False):
            return original_has_idx_items(self, index_name)
        columns = {k["AttributeName"] for k in self.get_index(index_name).schema}
        return [i for i in all_items(self) if columns.issubset(i.attrs)]

    Table.query = query  # type: ignore[method-assign]
    Table.scan = scan  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.has_idx_items = has_idx_items  # type: ignore[method-assign]
