"""The benchmark's two Terraform deployments on its private endpoint (I/O adapter): the stacks
of both designs (``design_stacks``), deployed in parallel (``deploy_stacks``) and destroyed
(``destroy_stacks``).

Each stack has its own data dir (``TF_DATA_DIR``) and state file under the work dir, so the
benchmark never touches the repository's own ``.terraform`` or workspaces; both run through
``scripts/tf local`` (provider mirror, dummy credentials, endpoint from ``LOCAL_ENDPOINT_URL``).
Terraform's output goes to a log file per step; a failure is one line with the log's path.
The stacks are set by their ``Stack.variables`` only: ``TF_VAR_*`` of the caller's environment
(e.g. the Makefile's local window) are dropped, so ``configured_default`` reads the module's own
default.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstats.cli import ToolError

REPO_ROOT = Path(__file__).resolve().parents[2]
TF_WRAPPER = REPO_ROOT / "scripts" / "tf"


@dataclass(frozen=True, slots=True)
class Stack:
    key: str  # "baseline" or "ours"
    config_dir: Path  # the Terraform root module
    variables: dict[str, str]
    work_dir: Path  # data dir, state, logs

    @property
    def state_file(self) -> Path:
        return self.work_dir / "terraform.tfstate"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"


@dataclass(slots=True)
class Terraform:
    endpoint_url: str
    log_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        stack: Stack,
        step: str,
        args: list[str],
        timeout: float = 600.0,
        stdin: bytes | None = None,
    ) -> str:
        """``scripts/tf local -chdir=<config> <args>`` (``stdin`` fed to it); returns stdout.
        On Ctrl-C, Terraform (same process group) stops gracefully; we wait for it so its
        state is written."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"terraform-{stack.key}-{step}.log"
        env = {name: value for name, value in os.environ.items() if not name.startswith("TF_VAR_")}
        env.update(
            LOCAL_ENDPOINT_URL=self.endpoint_url,
            TF_DATA_DIR=str(stack.data_dir),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            NO_COLOR="1",
        )
        env.pop("TF_WORKSPACE", None)
        command = [str(TF_WRAPPER), "local", f"-chdir={stack.config_dir}", *args]
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=REPO_ROOT,
            )
            try:
                stdout, _ = proc.communicate(stdin, timeout=timeout)
            except KeyboardInterrupt:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise ToolError(
                    f"terraform {step} of {stack.key} took over {timeout:.0f} s (see {log_path})"
                ) from None
            log.write(stdout)
        self.timings[f"{stack.key}:{step}"] = round(time.monotonic() - started, 1)
        if proc.returncode != 0:
            raise ToolError(
                f"terraform {step} of {stack.key} failed: {_last_error(log_path)} (see {log_path})"
            )
        return stdout.decode(errors="replace")

    def _var_args(self, stack: Stack, without: str | None = None) -> list[str]:
        return [
            f"-var={name}={value}"
            for name, value in sorted(stack.variables.items())
            if name != without
        ]

    def deploy(self, stack: Stack) -> dict[str, Any]:
        """init + apply; returns the outputs (``terraform output -json``, values only)."""
        self.init(stack)
        return self.apply(stack)

    def init(self, stack: Stack) -> None:
        stack.work_dir.mkdir(parents=True, exist_ok=True)
        self.run(stack, "init", ["init", "-input=false", "-lockfile=readonly", "-no-color"])

    def configured_default(self, stack: Stack, variable: str) -> Any:
        """The value of the root module's ``variable`` when nobody sets it (its default, every
        optional attribute filled in), read with ``terraform console`` after ``init``: the
        stack's other variables, not this one, and a state file that does not exist, so
        nothing is locked or read while the stack is applied."""
        raw = self.run(
            stack,
            f"console-{variable}",
            [
                "console",
                f"-state={stack.work_dir / 'no-state.tfstate'}",
                *self._var_args(stack, without=variable),
            ],
            timeout=120.0,
            stdin=f"jsonencode(var.{variable})\n".encode(),
        )
        return parse_console_json(raw, f"var.{variable} of {stack.key}")

    def apply(self, stack: Stack) -> dict[str, Any]:
        """apply; returns the outputs (``terraform output -json``, values only)."""
        self.run(
            stack,
            "apply",
            [
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                f"-state={stack.state_file}",
                *self._var_args(stack),
            ],
        )
        raw = self.run(
            stack, "output", ["output", "-json", "-no-color", f"-state={stack.state_file}"]
        )
        try:
            outputs = json.loads(raw)
        except json.JSONDecodeError:
            raise ToolError(f"terraform output of {stack.key} is not JSON") from None
        return {name: entry.get("value") for name, entry in outputs.items()}

    def destroy(self, stack: Stack) -> None:
        if not stack.state_file.exists():
            return
        self.run(
            stack,
            "destroy",
            [
                "destroy",
                "-auto-approve",
                "-input=false",
                "-no-color",
                f"-state={stack.state_file}",
                *self._var_args(stack),
            ],
        )


def measured_stream_mapping(window_seconds: int) -> str:
    """``-var=stream_mapping=...`` (HCL) of the measured run: only the batching window is set,
    every other attribute keeps the root module's default."""
    return f"{{maximum_batching_window_in_seconds={window_seconds}}}"


def design_stacks(zips: dict[str, Path], work_dir: Path, batching_window: int) -> dict[str, Stack]:
    """The stack of each design ``zips`` packages (``baseline``: bench/reference; ``ours``: the
    root module), under ``work_dir/tf/<key>``, with names of their own."""
    suffix = uuid.uuid4().hex[:6]
    stacks: dict[str, Stack] = {}
    if "baseline" in zips:
        stacks["baseline"] = Stack(
            "baseline",
            REPO_ROOT / "bench" / "reference",
            {"name_prefix": f"bench-ref-{suffix}", "package_file": str(zips["baseline"])},
            work_dir / "tf" / "baseline",
        )
    if "ours" in zips:
        # The root module with its defaults; only what an ephemeral copy needs is set, and
        # the measured run's batching window (the projection reads the production one).
        stacks["ours"] = Stack(
            "ours",
            REPO_ROOT,
            {
                "name_prefix": f"bench-ours-{suffix}",
                "package_file": str(zips["ours"]),
                "deletion_protection": "false",
                "stream_mapping": measured_stream_mapping(batching_window),
            },
            work_dir / "tf" / "ours",
        )
    return stacks


@dataclass(frozen=True, slots=True)
class Deployed:
    outputs: dict[str, dict[str, Any]]  # stack key -> its outputs
    # The root module's stream_mapping when nobody sets it (``ours`` deployed), else None.
    production_mapping: dict[str, Any] | None


def deploy_stacks(terraform: Terraform, stacks: dict[str, Stack]) -> Deployed:
    """Every stack deployed in parallel; beside ``ours``' apply, ``terraform console`` reads
    the root module's production stream_mapping (the configuration only, on a state file of
    its own)."""
    production: list[dict[str, Any]] = []

    def deploy_ours(stack: Stack) -> dict[str, Any]:
        terraform.init(stack)
        with ThreadPoolExecutor(max_workers=1) as pool:
            reading = pool.submit(terraform.configured_default, stack, "stream_mapping")
            outputs = terraform.apply(stack)
            mapping = _result(reading)
        if not isinstance(mapping, dict):
            raise ToolError(f"var.stream_mapping of the root module is {mapping!r}")
        production.append(mapping)
        return outputs

    with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
        futures = {
            key: pool.submit(deploy_ours, stack)
            if key == "ours"
            else pool.submit(terraform.deploy, stack)
            for key, stack in stacks.items()
        }
        outputs = {key: _result(future) for key, future in futures.items()}
    return Deployed(outputs, production[0] if production else None)


def destroy_stacks(terraform: Terraform, stacks: dict[str, Stack]) -> list[str]:
    """Every stack destroyed in parallel; the failures, one line each (the others go on)."""
    failures: list[str] = []
    with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
        futures = [pool.submit(terraform.destroy, stack) for stack in stacks.values()]
        for future in futures:
            try:
                _result(future)
            except ToolError as exc:
                failures.append(str(exc))
    return failures


def _result(future: Future[Any]) -> Any:
    return future.result()


def parse_console_json(stdout: str, what: str) -> Any:
    """The value of ``jsonencode(...)`` as ``terraform console`` prints it: a quoted string
    (JSON escapes) holding the JSON. ToolError, one line, if it is not that."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        text = json.loads(lines[-1]) if lines else None
        if not isinstance(text, str):
            raise ValueError("not a string")
        return json.loads(text)
    except ValueError:
        shown = lines[-1][:120] if lines else "nothing"
        raise ToolError(f"terraform console printed {shown!r} for {what}, not JSON") from None


def _last_error(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    for index, line in enumerate(lines):
        if "Error:" in line:
            detail = " ".join(part.strip("│ ").strip() for part in lines[index : index + 4])
            return " ".join(detail.split())[:300]
    tail = [line.strip() for line in lines if line.strip()][-1:]
    return tail[0][:300] if tail else "no output"
