"""``python -m localcloud up|down|serve|status``: the local AWS endpoint's lifecycle.

    up      --state-dir DIR --port PORT   start in the background (or reuse), wait until healthy
    down    --state-dir DIR               stop it (its data is lost)
    serve   --state-dir DIR --port PORT   run in the foreground

``up`` and ``serve`` take ``--stream-partitions N`` (open shards per stream, default 4) and
``--shard-rotation-seconds S`` (a shard closes and hands over to a child after S seconds;
0 = never; default 45); ``up`` on a running endpoint applies them to it.
    status  --state-dir DIR               print what is running (exit 1 if nothing)

Every wait is bounded; failures are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from localcloud.launcher import ServeExited, ServeNotHealthy, launch_serve
from localcloud.state import (
    ENDPOINT_FILE,
    health,
    pid_alive,
    port_is_free,
    read_endpoint_info,
    running_endpoint,
)

SETTING_VARIABLES = {
    "partitions": "LOCALCLOUD_STREAM_PARTITIONS",
    "rotation_seconds": "LOCALCLOUD_SHARD_ROTATION_SECONDS",
}
DEFAULT_HOST = "127.0.0.1"


def _error(message: str) -> int:
    print(f"localcloud: {message}", file=sys.stderr)
    return 1


@contextlib.contextmanager
def _state_lock(state_dir: Path, timeout: float) -> Iterator[None]:
    """Serializes up/down on one state directory (bounded wait)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / ".lock", "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{state_dir} is locked by another localcloud command"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_localcloud(pid: int) -> bool:
    """Guards against a recycled pid: only ever signal our own server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"localcloud" in cmdline and b"serve" in cmdline


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait, then SIGKILL; True once the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _stream_flags(args: argparse.Namespace) -> dict[str, float | int]:
    settings: dict[str, float | int] = {}
    if args.stream_partitions is not None:
        settings["partitions"] = args.stream_partitions
    if args.shard_rotation_seconds is not None:
        settings["rotation_seconds"] = args.shard_rotation_seconds
    return settings


def _apply_stream_settings(control_url: str, settings: dict[str, float | int]) -> str | None:
    """PUT /streams on a running endpoint; an error message, or None."""
    request = urllib.request.Request(
        f"{control_url}/streams", data=json.dumps(settings).encode(), method="PUT"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"stream settings rejected: {exc.read().decode(errors='replace').strip()}"
    except OSError as exc:
        return f"stream settings not applied: {exc}"
    return None


def up(
    state_dir: Path,
    port: int,
    host: str,
    timeout: float,
    stream_settings: dict[str, float | int] | None = None,
) -> int:
    stream_settings = stream_settings or {}
    with _state_lock(state_dir, timeout):
        current = running_endpoint(state_dir)
        if current is not None:
            if current.port != port:
                print(
                    f"localcloud: already running on port {current.port} (not {port}); reusing it",
                    file=sys.stderr,
                )
            if stream_settings:
                error = _apply_stream_settings(current.control_url, stream_settings)
                if error:
                    return _error(error)
            print(current.endpoint_url)
            return 0
        stale = read_endpoint_info(state_dir)
        if stale is not None:
            if pid_alive(stale.pid) and _is_localcloud(stale.pid):
                _terminate(stale.pid, 5.0)  # ours, but not answering
            (state_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        if not port_is_free(host, port):
            return _error(
                f"port {port} on {host} is in use by another program: stop it or pick another "
                "port (LOCAL_PORT=... for make)"
            )
        log_dir = state_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        serve_log = log_dir / "serve.log"
        settings = {SETTING_VARIABLES[name]: str(value) for name, value in stream_settings.items()}
        try:
            _, info = launch_serve(
                state_dir, port, serve_log, timeout=timeout, host=host, environment=settings
            )
        except ServeExited as exited:
            return _error(f"{exited}: {_tail(serve_log)}")
        except ServeNotHealthy as slow:
            _terminate(slow.proc.pid, 3.0)
            return _error(f"{slow} (see {serve_log})")
        print(info.endpoint_url)
        return 0


def down(state_dir: Path, timeout: float) -> int:
    with _state_lock(state_dir, timeout):
        info = read_endpoint_info(state_dir)
        if info is None:
            print("localcloud: not running")
            return 0
        if pid_alive(info.pid) and _is_localcloud(info.pid) and not _terminate(info.pid, timeout):
            return _error(f"could not stop process {info.pid}")
        (state_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        print(f"localcloud: stopped {info.endpoint_url}")
        return 0


def status(state_dir: Path) -> int:
    info = read_endpoint_info(state_dir)
    alive = info is not None and pid_alive(info.pid)
    details = health(info.control_url) if info is not None and alive else None
    report = {
        "running": details is not None,
        "state_dir": str(state_dir),
        **(
            {"pid": info.pid, "endpoint_url": info.endpoint_url, "control_url": info.control_url}
            if info
            else {}
        ),
        **({"health": details} if details else {}),
    }
    print(json.dumps(report, indent=2))
    return 0 if details is not None else 1


def _partitions(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "serve"):
        command = sub.add_parser(name)
        command.add_argument("--state-dir", type=Path, required=True)
        command.add_argument("--port", type=int, required=True)
        command.add_argument("--host", default=DEFAULT_HOST)
        command.add_argument(
            "--stream-partitions",
            type=_partitions,
            help="open shards per stream (default 4, or LOCALCLOUD_STREAM_PARTITIONS)",
        )
        command.add_argument(
            "--shard-rotation-seconds",
            type=_seconds,
            help="close each shard after this long, a child continues it (0: never; default "
            "45, or LOCALCLOUD_SHARD_ROTATION_SECONDS)",
        )
        if name == "up":
            command.add_argument(
                "--timeout", type=float, default=60.0, help="seconds to wait until healthy"
            )
        else:
            command.add_argument("--control-port", type=int, default=0, help="0: any free port")
    stop = sub.add_parser("down")
    stop.add_argument("--state-dir", type=Path, required=True)
    stop.add_argument("--timeout", type=float, default=15.0)
    show = sub.add_parser("status")
    show.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    state_dir = args.state_dir.resolve()
    try:
        if args.command == "up":
            return up(state_dir, args.port, args.host, args.timeout, _stream_flags(args))
        if args.command == "down":
            return down(state_dir, args.timeout)
        if args.command == "status":
            return status(state_dir)
        # Imported here: moto takes seconds to import, and up/down/status do not need it.
        from localcloud.server import (  # noqa: PLC0415
            PortInUse,
            serve,
            stream_settings_from_environment,
        )
        from localcloud.shards import merge_settings  # noqa: PLC0415

        try:
            settings = merge_settings(stream_settings_from_environment(), _stream_flags(args))
        except ValueError as exc:
            return _error(str(exc))
        try:
            return serve(state_dir, args.port, args.host, args.control_port, settings)
        except PortInUse as exc:
            return _error(f"{exc}: stop the program using it or pick another port")
    except TimeoutError as exc:
        return _error(str(exc))
