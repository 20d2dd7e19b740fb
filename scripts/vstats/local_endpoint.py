"""What the tools send to and read from the local endpoint's control API
(``LOCALCLOUD_CONTROL_URL``, through ``localcloud.client.ControlClient``): the ``--faults``
option as a /faults body, and what happened between two /stats snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localcloud.faults import FaultConfig, merge_config

# Short names for --faults; every full setting name of localcloud.faults works as well.
FAULT_KEYS = {
    "fail": "fail_invocation_rate",
    "kill": "kill_mid_batch_rate",
    "duplicate": "duplicate_batch_rate",
    "replay": "replay_rate",
    "throttle": "describe_stream_throttle_rate",
    "empty_pages": "getrecords_empty_pages",
    "gsi_lag": "gsi_lag_seconds",
    "final_records": "final_invoke_records",
    "skew": "clock_skew_seconds",
    "bisect_order": "bisect_out_of_order",
}
#: The /faults body a run starts from: every fault off.
NO_FAULTS: dict[str, Any] = FaultConfig().to_json()
_WORDS = {"true": True, "false": False}


def parse_faults(text: str) -> dict[str, Any]:
    """``fail=0.1,kill=0.05,throttle=0.5,final_invoke_records=1[,seed=7]`` -> the /faults
    body (every fault not named is off). ValueError with a readable reason if bad."""
    body: dict[str, Any] = dict(NO_FAULTS)
    known = set(NO_FAULTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = (x.strip() for x in part.partition("="))
        if not sep:
            raise ValueError(f"{part!r} is not NAME=VALUE")
        key = FAULT_KEYS.get(name, name)
        if key not in known:
            names = ", ".join([*FAULT_KEYS, *sorted(known)])
            raise ValueError(f"unknown fault {name!r} (known: {names})")
        body[key] = _value(name, value)
    merge_config(FaultConfig(), body)  # the endpoint's own checks, before the run starts
    return body


def _value(name: str, text: str) -> Any:
    """A number, true/false, null, or the text itself (merge_config says if it fits)."""
    word = text.lower()
    if word in _WORDS:
        return _WORDS[word]
    if word in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


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
