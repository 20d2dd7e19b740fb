"""The Lambda Runtime API (``/2018-06-01``) one worker process polls: ``next`` hands it the
invocation, ``response`` / ``error`` / ``init/error`` report back. One small HTTP server per
worker; the worker side behind it is anything with ``RuntimeApiBackend``'s methods.

Besides the AWS paths, ``GET /2018-06-01/localcloud/invocation/<id>`` tells the worker's
bootstrap the fault injected into that invocation (kill after N writes).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from localcloud.invocation import Invocation

API = "/2018-06-01"


class RuntimeApiBackend(Protocol):
    """What the Runtime API server asks of the worker it serves."""

    current: Invocation | None

    def next_invocation(self) -> Invocation | None: ...

    def complete(self, request_id: str, ok: bool, body: bytes) -> None: ...

    def init_failed(self, body: bytes) -> None: ...


class RuntimeApiHandler(BaseHTTPRequestHandler):
    server: RuntimeApiServer
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


class RuntimeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    worker: RuntimeApiBackend


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"


def error_fields(body: bytes) -> tuple[str, str]:
    """``errorType`` and ``errorMessage`` of an error document a worker posted."""
    try:
        error = json.loads(body)
    except ValueError:
        return "Unhandled", body.decode(errors="replace")[:1000]
    if not isinstance(error, dict):
        return "Unhandled", str(error)[:1000]
    return str(error.get("errorType") or "Unhandled"), str(error.get("errorMessage") or "")
