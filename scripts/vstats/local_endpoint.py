"""What the tools send to and read from the local endpoint's control API
(``LOCALCLOUD_CONTROL_URL``, through ``localcloud.client.ControlClient``): the ``--faults``
option as a /faults body, and what happened between two /stats snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FAULT_KEYS = {
    "fail": "fail_invocation_rate",
    "kill": "kill_mid_batch_rate",
    "duplicate": "duplicate_batch_rate",
    "replay": "replay_rate",
}
NO_FAULTS: dict[str, Any] = {
    "fail_invocation_rate": 0.0,
    "kill_mid_batch_rate": 0.0,
    "duplicate_batch_rate": 0.0,
    "seed": None,
}


def parse_faults(text: str) -> dict[str, Any]:
    """``fail=0.1,kill=0.05,duplicate=0.05[,seed=7]`` -> the /faults body. ValueError if bad."""
    body: dict[str, Any] = dict(NO_FAULTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"{part!r} is not NAME=VALUE")
        if name == "seed":
            try:
                body["seed"] = int(value)
            except ValueError:
                raise ValueError(f"seed {value!r} is not a whole number") from None
            continue
        if name not in FAULT_KEYS:
            known = ", ".join([*FAULT_KEYS, "seed"])
            raise ValueError(f"unknown fault {name!r} (known: {known})")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"{name} rate {value!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} rate {value!r} must be between 0 and 1")
        body[FAULT_KEYS[name]] = rate
    return body


def counters_delta(
    before: Mapping[str, Any], after: Mapping[str, Any], table: str | None = None
) -> dict[str, Any]:
    """What happened between two /stats snapshots, summed over the mappings (of ``table``'s
    stream only, when given: other deployments may share the endpoint), plus the write
    requests and units of each table as counted at the endpoint."""
    totals: dict[str, Any] = {}
    fields = (
        "invocations",
        "batches",
        "records_read",
        "records_filtered_out",
        "function_errors",
        "retries",
        "records_to_failure_destination",
    )
    for name in fields:
        totals[name] = int(_sum_mappings(after, name, table) - _sum_mappings(before, name, table))
    writes_after = after.get("dynamodb") or {}
    writes_before = before.get("dynamodb") or {}
    tables: dict[str, dict[str, float]] = {}
    for name, stats in writes_after.items():
        if not isinstance(stats, dict):
            continue
        old = writes_before.get(name) or {}
        tables[name] = {
            key: _number(stats.get(key)) - _number(old.get(key))
            for key in ("write_requests", "write_request_units")
        }
    totals["dynamodb"] = tables
    return totals


def _sum_mappings(stats: Mapping[str, Any], name: str, table: str | None) -> float:
    total = 0.0
    for key, value in stats.items():
        if key == "dynamodb" or not isinstance(value, dict):
            continue
        source = str(value.get("event_source_arn", ""))
        if table is not None and f":table/{table}/stream/" not in source:
            continue
        total += _number(value.get(name))
    return total


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
