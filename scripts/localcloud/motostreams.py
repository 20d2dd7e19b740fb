"""moto's DynamoDB Streams, made of many shards (``shards.ShardedStream``). Patched in process.

* A table's ``stream_shard`` (moto's one, never-closing shard) becomes a ``MotoStream``: moto's
  write paths still call ``stream_shard.add(old, new)``, and the record goes to the open shard
  of its partition key. Moto's own synchronous delivery (Docker) never runs.
* ``DescribeStream`` (paginated with ``Limit`` / ``ExclusiveStartShardId``),
  ``GetShardIterator`` (every iterator type, per shard; a sequence number of another shard is
  a ``ValidationException``) and ``GetRecords`` (plain JSON: moto's model-driven serializer
  spends about 1 ms per record; no ``NextShardIterator`` at the end of a closed shard) answer
  from the shards.
* A cancelled ``TransactWriteItems`` takes its records back out of the shards (moto restores a
  deep copy of the table; the stream is shared by the copy, never copied).
* Shard iterators are kept for the 10,000 most recent reads (moto keeps them all, forever);
  an unknown one is ``ExpiredIteratorException``.
* ``DescribeStream`` takes ``ShardFilter`` ``{"Type": "CHILD_SHARDS", "ShardId": parent}``:
  only the children of that shard (DynamoDB Streams API reference, ShardFilter: "Contains the
  shardId of the parent shard for which you are requesting child shards"; "Currently, the only
  value this parameter accepts is CHILD_SHARDS").
* Faults (``faults.py``): ``describe_stream_throttle_rate`` and ``getrecords_empty_pages`` for
  every caller except the endpoint's own engine (``ENGINE_HEADER``).

Settings: endpoint defaults (``--stream-partitions``, ``--shard-rotation-seconds``), changed
at run time through the control API (``PUT /streams``), for every stream or one table's.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time, utcnow
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.models.table import StreamRecord
from moto.dynamodbstreams.models import DynamoDBStreamsBackend
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

from localcloud.faults import ENGINE_HEADER, Faults
from localcloud.shards import SequenceError, Shard, ShardedStream, StreamSettings, merge_settings

MAX_SHARD_ITERATORS = 10_000
DESCRIBE_LIMIT = 100  # DescribeStream's default and maximum Limit


class _Faults:
    current: Faults | None = None


def use_faults(faults: Faults) -> None:
    _Faults.current = faults


_request = threading.local()  # what the handler knows and the backend method does not


def _from_engine(handler: Any) -> bool:
    headers = getattr(handler, "headers", None) or {}
    return bool(headers.get(ENGINE_HEADER))


class _Settings:
    default: ClassVar[StreamSettings] = StreamSettings()
    per_table: ClassVar[dict[str, StreamSettings]] = {}
    lock = threading.Lock()


def configure(settings: StreamSettings) -> None:
    """The endpoint's defaults, for streams created from now on."""
    with _Settings.lock:
        _Settings.default = settings


def settings_for(table_name: str) -> StreamSettings:
    with _Settings.lock:
        return _Settings.per_table.get(table_name, _Settings.default)


def update_settings(body: Any) -> dict[str, Any]:
    """``PUT /streams``: ``{"table"?: name, settings...}``. Without ``table`` the defaults
    change and every existing stream takes the new rotation settings; with it, that table's
    stream (and a stream it gets later). ``partitions`` apply to streams created afterwards.
    ValueError with a readable reason if invalid."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    body = dict(body)
    table = body.pop("table", None)
    if table is not None and not isinstance(table, str):
        raise ValueError("table must be a table name")
    with _Settings.lock:
        base = _Settings.per_table.get(table, _Settings.default) if table else _Settings.default
        settings = merge_settings(base, body)
        if table:
            _Settings.per_table[table] = settings
        else:
            _Settings.default = settings
    for name, stream in live_streams():
        if table is None or name == table:
            stream.settings = settings_for(name)
    return settings_document()


def settings_document() -> dict[str, Any]:
    with _Settings.lock:
        return {
            "defaults": _Settings.default.to_json(),
            "tables": {name: s.to_json() for name, s in _Settings.per_table.items()},
        }


class MotoStream:
    """What moto's tables hold as ``stream_shard``."""

    def __init__(self, account_id: str, table: Any) -> None:
        self.account_id = account_id
        self.table = table
        self.created_on = utcnow()
        label = f"{account_id}/{table.region_name}/{table.name}/{table.latest_stream_label}"
        self.stream = ShardedStream(label, settings_for(table.name))

    @property
    def id(self) -> str:  # moto reads it in a few places; the first shard stands for it
        return self.stream.shards()[0].shard_id

    @property
    def items(self) -> list[Any]:
        """Every record, shard by shard: a copy, for code written for moto's one shard (the
        benchmark's transaction patch counts them; rolling back is done here)."""
        return [record for shard in self.stream.shards() for record in shard.records]

    def add(self, old: Any, new: Any) -> None:
        view = self.table.stream_specification["StreamViewType"]
        event = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        item = old if old is not None else new
        table = self.table
        self.stream.append(
            item.hash_key.to_json(),
            lambda sequence: StreamRecord(table, view, event, old, new, sequence),
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> MotoStream:
        return self  # the table's transaction backup shares the stream (see _patch_transactions)


def live_tables() -> Iterator[tuple[str, Any, ShardedStream]]:
    """(table name, moto table, stream) of every table with a stream, in every account and
    region."""
    for regions in list(dynamodb_backends.values()):
        for backend in list(regions.values()):
            for name, table in list(backend.tables.items()):
                holder = getattr(table, "stream_shard", None)
                if isinstance(holder, MotoStream):
                    yield name, table, holder.stream


def live_streams() -> Iterator[tuple[str, ShardedStream]]:
    return ((name, stream) for name, _, stream in live_tables())


def stream_of(stream_arn: str, account: str, region: str) -> ShardedStream | None:
    """The live stream behind ``stream_arn`` (None: no such table or a newer stream)."""
    try:
        table_name, _, label = stream_arn.split(":", 5)[5].split("/")[1:4]
        table = dynamodb_backends[account][region].tables.get(table_name)
    except (IndexError, KeyError, ValueError):
        return None
    holder = getattr(table, "stream_shard", None)
    if not isinstance(holder, MotoStream) or holder.table.latest_stream_label != label:
        return None
    return holder.stream


class _Iterator:
    def __init__(  # noqa: PLR0917 - one call site per kind
        self,
        table_arn: str,
        label: str,
        stream: ShardedStream,
        shard: Shard,
        index: int,
        empty_pages: int = 0,
    ):
        self.id = base64.b64encode(os.urandom(48)).decode()
        self.table_arn, self.label = table_arn, label
        self.stream, self.shard, self.index = stream, shard, index
        self.empty_pages = empty_pages  # the getrecords_empty_pages fault: empty pages still due

    @property
    def arn(self) -> str:
        return f"{self.table_arn}/stream/{self.label}|1|{self.id}"


def _table_and_stream(backend: Any, arn: str) -> tuple[Any, MotoStream]:
    table = backend._get_table_from_arn(arn)
    holder = getattr(table, "stream_shard", None)
    if not isinstance(holder, MotoStream):
        raise JsonRESTError("ResourceNotFoundException", f"Stream {arn} not found")
    return table, holder


def _describe_stream(self: Any) -> tuple[int, dict[str, str], str]:
    arn = self._get_param("StreamArn")
    limit = int(self._get_param("Limit") or DESCRIBE_LIMIT)
    if not 1 <= limit <= DESCRIBE_LIMIT:
        raise JsonRESTError("ValidationException", f"Limit must be between 1 and {DESCRIBE_LIMIT}")
    start_after = self._get_param("ExclusiveStartShardId")
    shard_filter = self._get_param("ShardFilter")
    faults = _Faults.current
    if faults is not None and not _from_engine(self) and faults.throttle_describe_stream():
        raise JsonRESTError("LimitExceededException", "Rate exceeded for stream " + str(arn))
    table, holder = _table_and_stream(self.backend, arn)
    holder.stream.rotate_due()
    shards = holder.stream.shards()
    if shard_filter:
        if not isinstance(shard_filter, dict) or shard_filter.get("Type") != "CHILD_SHARDS":
            raise JsonRESTError("ValidationException", "ShardFilter Type must be CHILD_SHARDS")
        parent = shard_filter.get("ShardId")
        shards = [s for s in shards if s.parent_id is not None and s.parent_id == parent]
    if start_after:
        ids = [s.shard_id for s in shards]
        shards = shards[ids.index(start_after) + 1 :] if start_after in ids else []
    page = shards[:limit]
    description: dict[str, Any] = {
        "StreamArn": arn,
        "StreamLabel": table.latest_stream_label,
        "StreamStatus": "ENABLED",
        "StreamViewType": table.stream_specification["StreamViewType"],
        "CreationRequestDateTime": holder.created_on,
        "TableName": table.name,
        "KeySchema": table.schema,
        "Shards": [s.description() for s in page],
    }
    if len(shards) > limit:
        description["LastEvaluatedShardId"] = page[-1].shard_id
    return json_response({"StreamDescription": description})


def _get_shard_iterator(
    self: Any, arn: str, shard_id: str, iterator_type: str, sequence_number: int | None = None
) -> _Iterator:
    table, holder = _table_and_stream(self, arn)
    stream = holder.stream
    shard = stream.shard(shard_id)
    if shard is None:
        raise JsonRESTError("ResourceNotFoundException", f"Shard {shard_id} not found in {arn}")
    if iterator_type == "TRIM_HORIZON":
        index = 0
    elif iterator_type == "LATEST":
        index = len(shard.records)
    elif iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        if sequence_number is None:
            raise JsonRESTError("ValidationException", f"{iterator_type} needs a SequenceNumber")
        try:
            index = shard.index_at(int(sequence_number))
        except SequenceError as exc:
            raise JsonRESTError("ValidationException", str(exc)) from None
        if iterator_type == "AFTER_SEQUENCE_NUMBER" and shard.sequence_number(index) == int(
            sequence_number
        ):
            index += 1
    else:
        raise JsonRESTError("ValidationException", f"invalid ShardIteratorType {iterator_type}")
    faults = _Faults.current
    empty = faults.config.getrecords_empty_pages if faults is not None else 0
    if empty and getattr(_request, "from_engine", False):
        empty = 0
    iterator = _Iterator(table.table_arn, table.latest_stream_label, stream, shard, index, empty)
    self.shard_iterators[iterator.arn] = iterator
    return iterator


def _get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
    iterator = self.shard_iterators.get(iterator_arn)
    if not isinstance(iterator, _Iterator):
        raise JsonRESTError("ExpiredIteratorException", "Iterator expired or unknown")
    iterator.stream.rotate_due()
    records: list[Any] = []
    index, ended, empty = iterator.index, False, iterator.empty_pages - 1
    if not iterator.empty_pages:
        records, index, ended = iterator.stream.read(iterator.shard, iterator.index, limit)
        empty = 0
    result: dict[str, Any] = {"Records": [r.to_json() for r in records]}
    if not ended:
        following = _Iterator(
            iterator.table_arn, iterator.label, iterator.stream, iterator.shard, index, empty
        )
        self.shard_iterators[following.arn] = following
        result["NextShardIterator"] = following.arn
    _prune(self.shard_iterators)
    return result


_original_get_shard_iterator = DynamoDBStreamsHandler.get_shard_iterator


def _handle_get_shard_iterator(self: Any) -> Any:
    _request.from_engine = _from_engine(self)
    try:
        return _original_get_shard_iterator(self)
    finally:
        _request.from_engine = False


def _handle_get_records(self: Any) -> tuple[int, dict[str, str], str]:
    limit = int(self._get_param("Limit") or 1000)
    return json_response(self.backend.get_records(self._get_param("ShardIterator"), limit))


def json_response(body: Any) -> tuple[int, dict[str, str], str]:
    text = json.dumps(body, cls=_WireEncoder, separators=(",", ":"))
    return 200, {"Content-Type": "application/x-amz-json-1.0"}, text


class _WireEncoder(json.JSONEncoder):
    """What moto's serializer writes for stream records: epoch seconds, base64 binaries."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            return round(unix_time(o), 3)  # moto's datetimes are naive UTC
        if isinstance(o, bytes | bytearray):
            return base64.b64encode(o).decode()
        if hasattr(o, "to_json"):
            return o.to_json()
        return super().default(o)


def _prune(iterators: dict[str, Any]) -> None:
    excess = len(iterators) - MAX_SHARD_ITERATORS
    if excess > 0:
        for key in list(iterators)[: excess + MAX_SHARD_ITERATORS // 10]:
            iterators.pop(key, None)


def _patch_transactions() -> None:
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        streams: dict[int, tuple[ShardedStream, dict[str, int]]] = {}
        for entry in transact_items:
            try:
                ((_, op),) = entry.items()
                holder = getattr(self.tables.get(op.get("TableName")), "stream_shard", None)
            except (AttributeError, ValueError):
                continue  # malformed: moto's own code reports it
            if isinstance(holder, MotoStream) and id(holder.stream) not in streams:
                stream = holder.stream
                streams[id(stream)] = (stream, stream.begin_transaction())
        committed = False
        try:
            original(self, transact_items)
            committed = True
        finally:
            for stream, lengths in streams.values():
                stream.end_transaction(lengths, committed)

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def install() -> None:
    """Once per process (motopatch.install guards it)."""
    moto_table.StreamShard = MotoStream  # type: ignore[misc,assignment]
    DynamoDBStreamsHandler.describe_stream = _describe_stream  # type: ignore[method-assign,assignment]
    DynamoDBStreamsHandler.get_records = _handle_get_records  # type: ignore[method-assign,assignment]
    DynamoDBStreamsHandler.get_shard_iterator = _handle_get_shard_iterator  # type: ignore[method-assign]
    DynamoDBStreamsBackend.get_shard_iterator = _get_shard_iterator  # type: ignore[method-assign,assignment]
    DynamoDBStreamsBackend.get_records = _get_records  # type: ignore[method-assign]
    _patch_transactions()
