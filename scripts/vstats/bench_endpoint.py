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

    python -m vstats.bench_endpoint --state-dir DIR --port PORT     # foreground, like serve
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS_DIR = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0

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


# --- the endpoint process ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchEndpoint:
    endpoint_url: str
    control_url: str
    state_dir: Path
    pid: int


class EndpointProcess:
    """This module's ``main`` as a child process in its own session (Ctrl-C reaches only us;
    ``stop`` ends it)."""

    def __init__(self, state_dir: Path, port: int) -> None:
        self.state_dir = state_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BenchEndpoint:
        from localcloud.state import health, read_endpoint_info  # noqa: PLC0415

        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "endpoint.json").unlink(missing_ok=True)
        log_path = self.state_dir / "serve.log"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SCRIPTS_DIR), env.get("PYTHONPATH", "")) if p
        )
        with open(log_path, "ab") as log:
            proc = self.proc = subprocess.Popen(
                [sys.executable, "-m", "vstats.bench_endpoint", "--state-dir", str(self.state_dir),
                 "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
                raise RuntimeError(
                    f"the local endpoint exited with status {proc.returncode}: {tail}"
                )
            info = read_endpoint_info(self.state_dir)
            if info is not None and info.pid == proc.pid and health(info.control_url):
                return BenchEndpoint(info.endpoint_url, info.control_url, self.state_dir, proc.pid)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the local endpoint was not healthy within {START_TIMEOUT:.0f} s ({log_path})"
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vstats.bench_endpoint", description=__doc__)
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
