"""The one client of the control API (README.md in this folder has the contract): drained,
statistics, reset, stream settings and fault injection. Used by the operator tools
(``vstats``), the benchmark and the tests alike; AWS has no equivalent, so the tools fall back
to polling the table there.

Errors are ``ControlAPIError`` with one readable line (the tools print it as it is).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ControlAPIError(RuntimeError):
    """The control API answered with an error, not JSON, or not at all."""


@dataclass(frozen=True, slots=True)
class ControlClient:
    url: str
    timeout: float = 10.0
    # A GET only reads, so one that times out (an endpoint busy with a load on 2 cores) is
    # asked again; a refused connection is not (the endpoint is down) and nor is a write.
    get_attempts: int = 3

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One request; returns the decoded JSON answer (None for an empty one)."""
        attempts = self.get_attempts if method == "GET" else 1
        for _ in range(attempts - 1):
            try:
                return self._call_once(method, path, body)
            except TimeoutError:
                continue
        try:
            return self._call_once(method, path, body)
        except TimeoutError:
            raise ControlAPIError(
                f"local control API {method} {path}: no answer in {self.timeout:g} s "
                f"({attempts} attempt{'s' if attempts > 1 else ''}): is the machine overloaded?"
            ) from None

    def _call_once(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except TimeoutError:
            raise
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise ControlAPIError(
                f"local control API {method} {path}: HTTP {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise TimeoutError(str(reason)) from None
            raise ControlAPIError(
                f"local control API at {self.url} unreachable ({reason}): is the local "
                "endpoint running ('make local-up')?"
            ) from None
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            raise ControlAPIError(f"local control API {method} {path}: not JSON") from None

    def drained(self) -> bool:
        """Every mapping has read its shards to the tip and has nothing in flight."""
        return bool(self.call("GET", "/drained").get("drained"))

    def wait_drained(self, timeout: float, interval: float = 0.2) -> bool:
        """Poll /drained until true (True) or until ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.drained():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)

    def stats(self) -> dict[str, Any]:
        result = self.call("GET", "/stats")
        return result if isinstance(result, dict) else {}

    def reset_stats(self) -> None:
        """Zero the mapping and write counters (a benchmark run starts from nothing)."""
        self.call("POST", "/stats/reset")

    def streams(self) -> dict[str, Any]:
        """Stream settings in force, and per table its shards and summary-item figures."""
        result = self.call("GET", "/streams")
        return result if isinstance(result, dict) else {}

    def set_streams(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /streams``: ``{"table"?: name, "rotation_seconds"?: s, ...}``."""
        result = self.call("PUT", "/streams", settings)
        return result if isinstance(result, dict) else {}

    def faults(self) -> dict[str, Any]:
        result = self.call("GET", "/faults")
        return result if isinstance(result, dict) else {}

    def set_faults(self, faults: Mapping[str, Any]) -> dict[str, Any]:
        result = self.call("PUT", "/faults", faults)
        return result if isinstance(result, dict) else dict(faults)
