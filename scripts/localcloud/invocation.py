"""What a local function invocation is: the function version it runs (``FunctionSpec``, read
from what Terraform deployed into moto), the invocation in flight and its outcome.

Shared by the Runtime API server, the worker processes and the pool; imports none of them.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from typing import Any


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
