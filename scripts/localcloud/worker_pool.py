"""The worker pool: runs deployed functions the way Lambda does, without containers.

Each function runs in warm worker processes: ``python -S worker_bootstrap.py <handler>``,
which starts the real Runtime Interface Client (awslambdaric) against a Lambda Runtime API
(``runtime_api.py``), one small HTTP server per worker (``function_worker.py``). The worker
sees what a Lambda sandbox shows: the deployed zip extracted as its task root (cached by
CodeSha256), the function's environment plus the reserved variables, and only the packages
the Lambda Python runtime provides (boto3, botocore, awslambdaric and their dependencies:
``-S`` keeps the rest of this virtual environment out of reach). Its AWS clients reach the
local endpoint through ``AWS_ENDPOINT_URL`` and dummy credentials.

A worker serves one invocation at a time. An invocation that outlives the function's
timeout kills the worker (a function error, like Lambda's ``Sandbox.Timedout``); so does a
worker that exits. A redeployed function (new code or configuration) gets fresh workers;
idle workers of the old version are stopped. Output goes to ``logs/functions/<name>.log``
with Lambda's START / END / REPORT lines.

This module is the pool (warm workers per function version, the code cache, the runtime's
packages) and ``InvocationHandle``, which enforces the timeout and notices dead workers.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from localcloud.function_worker import Worker
from localcloud.invocation import FunctionSpec, Invocation, InvokeResult

log = logging.getLogger("localcloud.worker_pool")

INIT_TIMEOUT = 20.0  # Lambda allows 10 s of init; two busy cores need some slack
IDLE_WORKER_SECONDS = 600.0
# What the Lambda Python runtime provides besides the standard library.
RUNTIME_MODULES = (
    "awslambdaric",
    "runtime_client",
    "simplejson",
    "snapshot_restore_py",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six",
    "urllib3",
)


class InvocationHandle:
    """An invocation in flight. ``wait`` enforces the timeout and notices dead workers, so
    the caller never blocks for long and never forever."""

    def __init__(self, pool: WorkerPool, worker: Worker, invocation: Invocation) -> None:
        self._pool = pool
        self._worker = worker
        self.invocation = invocation
        self._submitted = time.monotonic()
        self._settled = False

    @property
    def result(self) -> InvokeResult:
        assert self.invocation.result is not None
        return self.invocation.result

    def wait(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        inv, worker = self.invocation, self._worker
        while True:
            if inv.done.wait(max(0.0, min(0.05, end - time.monotonic()))):
                self._settle(kill=False)
                return True
            now = time.monotonic()
            code = worker.exited()
            if code is not None:
                # A result posted just before exiting still counts.
                if inv.done.wait(0.05):
                    self._settle(kill=False)
                    return True
                if inv.started_at is None and worker.init_error is not None:
                    error_type, message = worker.init_error
                else:
                    error_type = "Runtime.ExitError"
                    message = (
                        f"RequestId: {inv.request_id} Error: Runtime exited with error: "
                        f"exit status {code}"
                    )
                inv.finish(
                    InvokeResult(
                        False, inv.request_id, None, error_type, message, worker_exited=True
                    )
                )
                self._settle(kill=True)
                return True
            if inv.started_at is not None and now > inv.started_at + inv.timeout:
                message = (
                    f"RequestId: {inv.request_id} Error: Task timed out after "
                    f"{inv.timeout:.2f} seconds"
                )
                inv.finish(InvokeResult(False, inv.request_id, None, "Sandbox.Timedout", message))
                self._settle(kill=True)
                return True
            if inv.started_at is None and now > self._submitted + INIT_TIMEOUT:
                message = f"Init did not finish within {INIT_TIMEOUT:.0f} seconds"
                inv.finish(
                    InvokeResult(False, inv.request_id, None, "Runtime.InitTimeout", message)
                )
                self._settle(kill=True)
                return True
            if now >= end:
                return False

    def _settle(self, kill: bool) -> None:
        if self._settled:
            return
        self._settled = True
        self._pool.finished(self._worker, self.invocation, kill)


class WorkerPool:
    def __init__(self, state_dir: Path, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.code_root = state_dir / "cache" / "code"
        self.runtime_site = state_dir / "cache" / "runtime-site"
        self.log_dir = state_dir / "logs" / "functions"
        self.code_root.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._build_runtime_site()
        self._lock = threading.Lock()
        self._idle: dict[str, list[Worker]] = {}
        self._busy: set[Worker] = set()
        self._latest: dict[str, FunctionSpec] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._closed = False

    def _build_runtime_site(self) -> None:
        shutil.rmtree(self.runtime_site, ignore_errors=True)
        self.runtime_site.mkdir(parents=True)
        for name in RUNTIME_MODULES:
            spec = importlib.util.find_spec(name)
            if spec is None:
                log.warning("runtime module %s not installed", name)
                continue
            if spec.submodule_search_locations:
                source = Path(next(iter(spec.submodule_search_locations)))
            elif spec.origin:
                source = Path(spec.origin)
            else:  # pragma: no cover - namespace without files
                continue
            (self.runtime_site / source.name).symlink_to(source)

    def code_dir(self, spec: FunctionSpec, code_bytes: Callable[[], bytes]) -> Path:
        """The deployed zip, extracted once per CodeSha256."""
        if not spec.code_sha256:
            raise RuntimeError(f"function {spec.name} has no code package")
        target = self.code_root / spec.code_sha256
        if target.is_dir():
            return target
        staging = self.code_root / f".{spec.code_sha256}.{uuid.uuid4().hex}"
        with zipfile.ZipFile(io.BytesIO(code_bytes())) as archive:
            archive.extractall(staging)
        try:
            staging.rename(target)
        except OSError:  # another thread won the race
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def log_file(self, name: str) -> IO[bytes]:
        with self._lock:
            handle = self._logs.get(name)
            if handle is None:
                handle = self._logs[name] = open(self.log_dir / f"{name}.log", "ab", buffering=0)  # noqa: SIM115
            return handle

    def _log_line(self, name: str, line: str) -> None:
        self.log_file(name).write(line.encode() + b"\n")

    def invoke(
        self,
        spec: FunctionSpec,
        code_bytes: Callable[[], bytes],
        event: bytes,
        kill_after_writes: int | None = None,
    ) -> InvocationHandle:
        worker = self._acquire(spec, code_bytes)
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            body=event,
            function_arn=spec.arn,
            timeout=spec.timeout,
            kill_after_writes=kill_after_writes,
        )
        self._log_line(spec.name, f"START RequestId: {invocation.request_id} Version: $LATEST")
        worker.submit(invocation)
        return InvocationHandle(self, worker, invocation)

    def _acquire(self, spec: FunctionSpec, code_bytes: Callable[[], bytes]) -> Worker:
        stale: list[Worker] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is shut down")
            if self._latest.get(spec.arn) != spec:
                self._latest[spec.arn] = spec
                stale = [w for w in self._idle.pop(spec.arn, []) if w.spec != spec]
            idle = self._idle.get(spec.arn, [])
            worker = None
            while idle:
                candidate = idle.pop()
                if candidate.exited() is None:
                    worker = candidate
                    break
                stale.append(candidate)
            if worker is not None:
                self._busy.add(worker)
        for old in stale:
            old.stop()
        if worker is not None:
            return worker
        worker = Worker(
            spec,
            self.code_dir(spec, code_bytes),
            self.runtime_site,
            self.log_file(spec.name),
            self.endpoint_url,
        )
        with self._lock:
            self._busy.add(worker)
        worker.start()
        return worker

    def finished(self, worker: Worker, invocation: Invocation, kill: bool) -> None:
        result = invocation.result
        if result is not None:
            status = "" if result.ok else f"\tError: {result.error_type}"
            self._log_line(
                worker.spec.name,
                f"END RequestId: {invocation.request_id}\nREPORT RequestId: {invocation.request_id}"
                f"\tDuration: {result.duration * 1000:.2f} ms"
                f"\tMemory Size: {worker.spec.memory} MB{status}",
            )
        keep = False
        with self._lock:
            self._busy.discard(worker)
            if (
                not kill
                and not self._closed
                and worker.exited() is None
                and self._latest.get(worker.spec.arn) == worker.spec
            ):
                worker.last_used = time.monotonic()
                self._idle.setdefault(worker.spec.arn, []).append(worker)
                keep = True
        if not keep:
            worker.stop()

    def reap_idle(self, max_idle: float = IDLE_WORKER_SECONDS) -> None:
        now = time.monotonic()
        stale: list[Worker] = []
        with self._lock:
            for arn, workers in list(self._idle.items()):
                fresh = [w for w in workers if now - w.last_used < max_idle and w.exited() is None]
                stale.extend(w for w in workers if w not in fresh)
                self._idle[arn] = fresh
        for worker in stale:
            worker.stop()

    def worker_count(self) -> int:
        with self._lock:
            return len(self._busy) + sum(len(w) for w in self._idle.values())

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers = [*self._busy, *(w for ws in self._idle.values() for w in ws)]
            self._idle.clear()
            self._busy.clear()
            logs = list(self._logs.values())
            self._logs.clear()
        for worker in workers:
            worker.stop()
        for handle in logs:
            handle.close()
