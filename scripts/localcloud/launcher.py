"""Starts ``python -m <module> serve`` as a detached child and waits until it is healthy: the
one way ``python -m localcloud up`` and the private endpoints of the tests and the benchmark
(``endpoint_process.py``) start an endpoint.

The child runs in its own session with its output appended to a log file and ``scripts/`` and
``lambda_src/`` (the item format, for the control API's figures) on ``PYTHONPATH``. It is
healthy once the state directory's ``endpoint.json`` names its pid and ``/health`` answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from localcloud.state import EndpointInfo, running_endpoint

SCRIPTS_DIR = Path(__file__).resolve().parent.parent


class ServeExited(RuntimeError):
    """The child exited before it became healthy."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the endpoint exited with status {code}")
        self.code = code


class ServeNotHealthy(RuntimeError):
    """The child still runs but did not become healthy in time; the caller stops it."""

    def __init__(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        super().__init__(f"the endpoint did not become healthy within {timeout:.0f} s")
        self.proc = proc


def launch_serve(
    state_dir: Path,
    port: int,
    log_path: Path,
    *,
    timeout: float,
    host: str | None = None,
    module: str = "localcloud",
    environment: Mapping[str, str] | None = None,
    scripts_dir: Path = SCRIPTS_DIR,
) -> tuple[subprocess.Popen[bytes], EndpointInfo]:
    """The running child and what it wrote to ``endpoint.json``; ``ServeExited`` or
    ``ServeNotHealthy`` otherwise. ``scripts_dir`` is where the child imports ``module``
    from (with its checkout's ``lambda_src``): this checkout, or an earlier release's."""
    env = dict(os.environ)
    lambda_src = scripts_dir.parent / "lambda_src"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(scripts_dir), str(lambda_src), env.get("PYTHONPATH", "")) if p
    )
    env.update(environment or {})
    command = [sys.executable, "-m", module, "serve", "--state-dir", str(state_dir)]
    command += ["--port", str(port), *(["--host", host] if host is not None else [])]
    with open(log_path, "ab") as output:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            raise ServeExited(code)
        info = running_endpoint(state_dir)
        if info is not None and info.pid == proc.pid:
            return proc, info
        time.sleep(0.1)
    raise ServeNotHealthy(proc, timeout)
