"""The benchmark's private local endpoint: ``localcloud``'s server plus one speed fix for moto.

moto backs up every table a ``TransactWriteItems`` touches with ``copy.deepcopy`` before it
runs, to roll back on failure: each transaction costs time in proportion to the table's size
(about 0.8 s at 1,500 items on the bench machine, 100 times an ``UpdateItem``). The reference
design writes one transaction per record, so its local drain time would measure moto's table
copies rather than its invocations. ``install_fast_transactions`` keeps moto's semantics and
rolls back only what a transaction can change: it snapshots the items it names and the
length of each stream shard, lets moto's own transaction code run against the live table
(its backup becomes the table itself), and restores the snapshot if the transaction fails.
Nothing else about the endpoint changes (same server, engine, write accounting).

    python -m benchmark.endpoint serve --state-dir DIR --port PORT   # foreground
"""

from __future__ import annotations

import argparse
import copy
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_local = threading.local()


@dataclass(frozen=True, slots=True)
class _Saved:
    table: Any
    hash_key: Any
    range_key: Any
    item: Any  # a deep copy of the item before the transaction, or None if absent


def _snapshot(
    backend: Any, transact_items: Sequence[Mapping[str, Any]]
) -> tuple[list[_Saved], dict[int, tuple[Any, int]]]:
    items: list[_Saved] = []
    shards: dict[int, tuple[Any, int]] = {}
    for entry in transact_items:
        ((op_type, op),) = entry.items()
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            attrs = op["Item"]
            key = {name: attrs[name] for name in table.table_key_attrs if name in attrs}
        else:
            key = op["Key"]
        hash_key, range_key = backend.get_keys_value(table, key)
        current = table.get_item(hash_key, range_key)
        items.append(_Saved(table, hash_key, range_key, copy.deepcopy(current)))
        shard = getattr(table, "stream_shard", None)
        if shard is not None and id(shard) not in shards:
            shards[id(shard)] = (shard, len(shard.items))
    return items, shards


def _restore(items: list[_Saved], shards: Mapping[int, tuple[Any, int]]) -> None:
    for saved in reversed(items):
        container = saved.table.items
        if saved.range_key is not None:
            if saved.item is None:
                container.get(saved.hash_key, {}).pop(saved.range_key, None)
            else:
                container[saved.hash_key][saved.range_key] = saved.item
        elif saved.item is None:
            container.pop(saved.hash_key, None)
        else:
            container[saved.hash_key] = saved.item
    for shard, length in shards.values():
        del shard.items[length:]  # sequence numbers derive from the length: they stay dense


def install_fast_transactions() -> Callable[[], None]:
    """Patch moto's ``TransactWriteItems`` (in this process); returns the undo."""
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto imports slowly
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    original = DynamoDBBackend.transact_write_items
    had_deepcopy = "__deepcopy__" in Table.__dict__
    previous_deepcopy = Table.__dict__.get("__deepcopy__")

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if getattr(_local, "share_tables", False):
            return self  # moto's pre-transaction backup: the snapshot below replaces it
        if previous_deepcopy is not None:
            return previous_deepcopy(self, memo)
        clone = Table.__new__(Table)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, copy.deepcopy(value, memo))
        return clone

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            items, shards = _snapshot(self, transact_items)
        except Exception:  # malformed input: moto's own code reports it, the slow way
            original(self, transact_items)
            return
        _local.share_tables = True
        try:
            original(self, transact_items)
        except BaseException:
            _restore(items, shards)
            raise
        finally:
            _local.share_tables = False

    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    def undo() -> None:
        DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        if had_deepcopy:
            Table.__deepcopy__ = previous_deepcopy  # type: ignore[attr-defined]
        else:
            del Table.__deepcopy__  # type: ignore[attr-defined]

    return undo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.endpoint", description=__doc__)
    # Same command line as `python -m localcloud serve`, so EndpointProcess starts either.
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from localcloud.server import PortInUse, serve  # noqa: PLC0415 - moto imports slowly

    install_fast_transactions()
    try:
        return serve(args.state_dir, args.port)
    except PortInUse as exc:
        print(f"bench endpoint: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
