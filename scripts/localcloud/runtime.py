"""Runs deployed functions the way Lambda does, without containers.

Each function runs in warm worker processes: ``python -S worker_bootstrap.py <handler>``,
which starts the real Runtime Interface Client (awslambdaric) against a Lambda Runtime API
served here, one small HTTP server per worker. The worker sees what a Lambda sandbox shows:
the deployed zip extracted as its task root (cached by CodeSha256), the function's
environment plus the reserved variables, and only the packages the Lambda Python runtime
provides (boto3, botocore, awslambdaric and their dependencies: ``-S`` keeps the rest of
this virtual environment out of reach). Its AWS clients reach the local endpoint through
``AWS_ENDPOINT_URL`` and dummy credentials.

A worker serves one invocation at a time. An invocation that outlives the function's
timeout kills the worker (a function error, like Lambda's ``Sandbox.Timedout``); so does a
worker that exits. A redeployed function (new code or configuration) gets fresh workers;
idle workers of the old version are stopped. Output goes to ``logs/functions/<name>.log``
with Lambda's START / END / REPORT lines.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("localcloud.runtime")

API = "/2018-06-01"
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
BOOTSTRAP = Path(__file__).with_name("worker_bootstrap.py")


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What decides whether a warm worker may serve an invocation: any change means a new
    version of the function, hence fresh workers."""

    arn: str
    name: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: tuple[tuple[str, str], ...]
    code_sha256: str  # hex
    region: str
    account: str


def function_spec(function: Any) -> FunctionSpec:
    """From moto's ``LambdaFunction`` (what Terraform deployed)."""
    sha = getattr(function, "code_sha_256", "") or ""
    try:
        code_hex = base64.b64decode(sha).hex() if sha else ""
    except ValueError:
        code_hex = sha
    env = function.environment_vars or {}
    return FunctionSpec(
        arn=function.function_arn.split(":$LATEST")[0],
        name=function.function_name,
        handler=function.handler or "",
        runtime=function.run_time or "python3.12",
        timeout=float(function.timeout or 3),
        memory=int(function.memory_size or 128),
        environment=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        code_sha256=code_hex,
        region=function.region,
        account=function.account_id,
    )


@dataclass
class InvokeResult:
    ok: bool
    request_id: str
    payload: Any = None  # the decoded response when ok
    error_type: str | None = None
    error_message: str | None = None
    duration: float = 0.0
    worker_exited: bool = False


@dataclass
class Invocation:
    request_id: str
    body: bytes
    function_arn: str
    timeout: float
    kill_after_writes: int | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: InvokeResult | None = None
    started_at: float | None = None  # monotonic, when the worker took it
    deadline_ms: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, result: InvokeResult) -> None:
        """First outcome wins (a late response after a timeout is ignored)."""
        with self._lock:
            if self.done.is_set():
                return
            if self.started_at is not None:
                result.duration = time.monotonic() - self.started_at
            self.result = result
            self.done.set()


class _RuntimeApiHandler(BaseHTTPRequestHandler):
    server: _RuntimeApiServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        worker = self.server.worker
        if self.path == f"{API}/runtime/invocation/next":
            invocation = worker.next_invocation()
            if invocation is None:
                self._reply(HTTPStatus.GONE, b'{"errorMessage":"worker stopping"}')
                return
            self._reply(
                HTTPStatus.OK,
                invocation.body,
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                    # The native client crashes without a trace id.
                    "Lambda-Runtime-Trace-Id": _trace_id(),
                },
            )
            return
        prefix = f"{API}/localcloud/invocation/"
        if self.path.startswith(prefix):
            invocation = worker.current
            request_id = self.path[len(prefix) :]
            kill = None
            if invocation is not None and invocation.request_id == request_id:
                kill = invocation.kill_after_writes
            self._reply(HTTPStatus.OK, json.dumps({"kill_after_writes": kill}).encode())
            return
        self._reply(HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        worker = self.server.worker
        body = self._body()
        parts = self.path.split("/")
        # /2018-06-01/runtime/invocation/<id>/(response|error)
        if len(parts) == 6 and parts[2:4] == ["runtime", "invocation"]:
            request_id, kind = parts[4], parts[5]
            if kind in ("response", "error"):
                worker.complete(request_id, kind == "response", body)
                self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                return
        if self.path == f"{API}/runtime/init/error":
            worker.init_failed(body)
            self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
            return
        self._reply(HTTPStatus.NOT_FOUND)


class _RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    worker: Worker


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"


def _error_fields(body: bytes) -> tuple[str, str]:
    try:
        error = json.loads(body)
    except ValueError:
        return "Unhandled", body.decode(errors="replace")[:1000]
    if not isinstance(error, dict):
        return "Unhandled", str(error)[:1000]
    return str(error.get("errorType") or "Unhandled"), str(error.get("errorMessage") or "")


class Worker:
    """One warm sandbox: a Runtime API server and the process that polls it."""

    def __init__(
        self,
        spec: FunctionSpec,
        code_dir: Path,
        runtime_site: Path,
        log_file: IO[bytes],
        endpoint_url: str,
    ) -> None:
        self.spec = spec
        self.code_dir = code_dir
        self.runtime_site = runtime_site
        self.log_file = log_file
        self.endpoint_url = endpoint_url
        self.inbox: queue.Queue[Invocation] = queue.Queue()
        self.current: Invocation | None = None
        self.init_error: tuple[str, str] | None = None
        self.closed = threading.Event()
        self.last_used = time.monotonic()
        self.server = _RuntimeApiServer(("127.0.0.1", 0), _RuntimeApiHandler)
        self.server.worker = self
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def environment(self) -> dict[str, str]:
        spec = self.spec
        env = dict(spec.environment)
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "PYTHONPATH": f"{self.code_dir}{os.pathsep}{self.runtime_site}",
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "LAMBDA_RUNTIME_DIR": str(self.runtime_site),
                "_HANDLER": spec.handler,
                "AWS_LAMBDA_RUNTIME_API": self.api_address,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]")
                + uuid.uuid4().hex,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_SESSION_TOKEN": "test",
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "LOCALCLOUD_PARENT_PID": str(os.getpid()),
            }
        )
        return env

    def start(self) -> None:
        threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"runtime-api-{self.spec.name}",
            daemon=True,
        ).start()
        self.proc = subprocess.Popen(
            [sys.executable, "-S", str(BOOTSTRAP), self.spec.handler],
            cwd=self.code_dir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def submit(self, invocation: Invocation) -> None:
        self.last_used = time.monotonic()
        self.inbox.put(invocation)

    def next_invocation(self) -> Invocation | None:
        """Blocks the worker's ``next`` call until there is work (checks for shutdown)."""
        self.current = None
        while not self.closed.is_set():
            try:
                invocation = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            invocation.started_at = time.monotonic()
            invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
            self.current = invocation
            return invocation
        return None

    def complete(self, request_id: str, ok: bool, body: bytes) -> None:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            return
        if ok:
            try:
                payload = json.loads(body) if body else None
            except ValueError:
                payload = body.decode(errors="replace")
            invocation.finish(InvokeResult(True, request_id, payload=payload))
        else:
            error_type, message = _error_fields(body)
            invocation.finish(InvokeResult(False, request_id, None, error_type, message))

    def init_failed(self, body: bytes) -> None:
        self.init_error = _error_fields(body)

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        """Kills the process (and anything it started) and the Runtime API server."""
        self.closed.set()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        threading.Thread(target=self._close_server, daemon=True).start()

    def _close_server(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
