"""The state directory: ``endpoint.json`` and the checks on a running endpoint."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ENDPOINT_FILE = "endpoint.json"


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    pid: int
    endpoint_url: str
    control_url: str

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])


def write_endpoint_info(state_dir: Path, info: EndpointInfo) -> None:
    """Atomic: readers never see half a file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    staging = state_dir / f".{ENDPOINT_FILE}.{os.getpid()}"
    staging.write_text(json.dumps(asdict(info), indent=2) + "\n")
    staging.replace(state_dir / ENDPOINT_FILE)


def read_endpoint_info(state_dir: Path) -> EndpointInfo | None:
    try:
        data = json.loads((state_dir / ENDPOINT_FILE).read_text())
        return EndpointInfo(int(data["pid"]), str(data["endpoint_url"]), str(data["control_url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def health(control_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{control_url}/health", timeout=timeout) as response:
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return data if isinstance(data, dict) and data.get("status") == "ok" else None


def running_endpoint(state_dir: Path) -> EndpointInfo | None:
    """The endpoint recorded in ``state_dir`` if its process is alive and healthy."""
    info = read_endpoint_info(state_dir)
    if info is None or not pid_alive(info.pid):
        return None
    status = health(info.control_url)
    if status is None or status.get("pid") != info.pid:
        return None
    return info


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
