"""One warm sandbox of a local function: its Runtime API server and the
``python -S worker_bootstrap.py <handler>`` process that polls it, with the environment a
Lambda sandbox shows (the function's variables plus the reserved ones, and only the task root
and the runtime's packages on ``PYTHONPATH``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import IO

from localcloud.invocation import FunctionSpec, Invocation, InvokeResult
from localcloud.runtime_api import RuntimeApiHandler, RuntimeApiServer, error_fields

BOOTSTRAP = Path(__file__).with_name("worker_bootstrap.py")


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
        self.server = RuntimeApiServer(("127.0.0.1", 0), RuntimeApiHandler)
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
            error_type, message = error_fields(body)
            invocation.finish(InvokeResult(False, request_id, None, error_type, message))

    def init_failed(self, body: bytes) -> None:
        self.init_error = error_fields(body)

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
