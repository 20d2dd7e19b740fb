"""A private local endpoint: ``serve`` in a subprocess on a free port, waited for until
healthy and stopped afterwards (``EndpointProcess``), plus boto3 clients for it.

Used by the ``local_endpoint`` fixture in tests/conftest.py, by the tests that need an
endpoint of their own, and by the benchmark (``scripts/benchmark``):
``from localcloud.endpoint_process import LocalEndpoint, aws_client``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud.client import ControlClient
from localcloud.launcher import SCRIPTS_DIR, ServeExited, ServeNotHealthy, launch_serve

REGION = "us-east-1"
START_TIMEOUT = 60.0
#: The role policy every local test function (and the engine benchmark's) is created with.
LAMBDA_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def aws_client(service: str, endpoint_url: str, config: Config | None = None) -> Any:
    """A boto3 client for the local endpoint (dummy credentials, us-east-1); ``config``
    (retries, connection pool) as the caller needs, botocore's defaults without it."""
    make_client: Any = boto3.client  # the service name is only known at run time
    return make_client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )


@dataclass(frozen=True)
class LocalEndpoint:
    endpoint_url: str
    control_url: str
    state_dir: Path
    pid: int

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint_url)

    def control(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Calls the control API; returns the decoded JSON."""
        return ControlClient(self.control_url, timeout).call(method, path, body)

    def wait_drained(self, timeout: float = 30.0) -> None:
        if not ControlClient(self.control_url).wait_drained(timeout, interval=0.1):
            raise AssertionError(f"local endpoint not drained within {timeout} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EndpointProcess:
    """``python -m <server_module> serve`` on a free port, as a child process in its own session.

    ``server_module`` is ``localcloud``, or a module whose ``serve`` command wraps it (the
    benchmark's ``benchmark.endpoint``). ``scripts_dir`` is where it is imported from: this
    checkout, or an earlier release's (the upgrade test deploys that release as it was).
    """

    def __init__(
        self,
        state_dir: Path,
        server_module: str = "localcloud",
        environment: dict[str, str] | None = None,
        scripts_dir: Path = SCRIPTS_DIR,
    ) -> None:
        self.state_dir = state_dir
        self.server_module = server_module
        self.scripts_dir = scripts_dir
        # e.g. {"LOCALCLOUD_STREAM_PARTITIONS": "1"}: the endpoint's stream settings
        self.environment = dict(environment or {})
        self.log_path = state_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, attempts: int = 3) -> LocalEndpoint:
        for attempt in range(attempts):  # a free port can be taken before the child binds it
            try:
                return self._start_once()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self) -> LocalEndpoint:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.proc, info = launch_serve(
                self.state_dir,
                free_port(),
                self.log_path,
                timeout=START_TIMEOUT,
                module=self.server_module,
                environment=self.environment,
                scripts_dir=self.scripts_dir,
            )
        except ServeExited as exited:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"local endpoint exited with {exited.code}:\n{tail}") from None
        except ServeNotHealthy as slow:
            self.proc = slow.proc
            self.stop()
            raise RuntimeError(
                f"local endpoint not healthy within {START_TIMEOUT} s ({self.log_path})"
            ) from None
        return LocalEndpoint(info.endpoint_url, info.control_url, self.state_dir, self.proc.pid)

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
