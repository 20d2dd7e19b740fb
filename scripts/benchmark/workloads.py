"""What the designs benchmark compares (the two designs, the workloads) and how the report,
the targets and the chart read a results.json: entries in report order, an entry's monthly cost,
the batching windows, the production-shape projection shown. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

CONFIGS: Final = ("baseline", "ours")
CONFIG_TITLES: Final = {
    "baseline": "reference design (blog)",
    "ours": "this project",
}


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    title: str
    events: int
    users: int
    videos: int
    skew: float  # Zipf exponent of user and video popularity (0 = uniform)
    id_prefix: str  # isolates the workloads' summaries in one table

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


WORKLOADS: Final = {
    "large": Workload(
        "large", "large key space: 1,000 videos, 10,000 users, Zipf 1.0", 10_000, 10_000, 1_000,
        1.0, "large-",
    ),
    "tiny": Workload(
        "tiny", "the blog's tiny key space: 10 videos, 5 users, uniform", 5_000, 5, 10, 0.0,
        "tiny-",
    ),
}  # fmt: skip


def total_cost(entry: Mapping[str, Any], key: str = "monthly_usd") -> float | None:
    cost = entry.get(key)
    return cost.get("total") if isinstance(cost, Mapping) else None


def projected_cost(entry: Mapping[str, Any]) -> float | None:
    """The bill at 1 M events a day: projected batching when known, else as measured."""
    projected = entry.get("projected")
    if isinstance(projected, Mapping):
        return total_cost(projected)
    return total_cost(entry)


def workload_entries(results: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(workload, config, figures) in report order."""
    workloads: list[str] = []
    for config in CONFIGS:
        for workload in results.get(config) or {}:
            if workload not in workloads:
                workloads.append(workload)
    order = [w for w in WORKLOADS if w in workloads] + [w for w in workloads if w not in WORKLOADS]
    return [
        (workload, config, results[config][workload])
        for workload in order
        for config in CONFIGS
        if workload in (results.get(config) or {})
    ]


def measured_window(results: Mapping[str, Any]) -> float | None:
    """This project's batching window in the measured runs: its mappings as deployed (read
    back from the Lambda API), the longest if they differ."""
    configuration = ((results.get("meta") or {}).get("configurations") or {}).get("ours") or {}
    windows = [
        float((m.get("settings") or {}).get("MaximumBatchingWindowInSeconds") or 0)
        for m in configuration.get("mappings") or []
    ]
    return max(windows) if windows else None


def projected_window(rows: list[Mapping[str, Any]]) -> float | None:
    """This project's batching window in the production projection (its production default)."""
    windows = [r["batching_window_seconds"] for r in rows if "batching_window_seconds" in r]
    return max(windows) if windows else None


def projection_rows(results: Mapping[str, Any]) -> tuple[str | None, list[Mapping[str, Any]]]:
    """The production-shape projection to show: the large workload's (its measured write
    costs), else the first workload that has one."""
    ours = results.get("ours") or {}
    for workload in ("large", *ours):
        rows = (ours.get(workload) or {}).get("projection")
        if isinstance(rows, list) and rows:
            return workload, rows
    return None, []
