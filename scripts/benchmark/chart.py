"""The benchmark's chart (chart.png beside report.md): both designs per workload, and reference
÷ ours at the production shape (matplotlib, Agg; imported only when writing it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.targets import production_target
from benchmark.workloads import (
    CONFIG_TITLES,
    projected_cost,
    projected_window,
    projection_rows,
    workload_entries,
)


def write_chart(results: Mapping[str, Any], path: Path) -> None:
    import matplotlib  # noqa: PLC0415 - slow import, only when writing the chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    entries = workload_entries(results)
    workloads = list(dict.fromkeys(w for w, _, _ in entries))
    panels = (
        # (title, figure, lower bound, log scale, value labels)
        ("invocations / 1,000 records (log)", "invocations_per_1000_records",
         "lower_bound_invocations_per_1000_records", True, "{:,.1f}"),
        ("summary item writes / event", "writes_per_event", "lower_bound_writes_per_event",
         False, None),
        ("summary WRU / event (table, without GSI)", "wru_per_event",
         "lower_bound_wru_per_event", False, None),
        ("$ / month at 1 M events/day (projected)", "monthly_total", None, False, "${:,.0f}"),
        ("mismatched summaries after drain", "mismatches", None, False, "{:,.0f}"),
    )  # fmt: skip
    _, production = projection_rows(results)
    count = len(panels) + (1 if production else 0)
    fig, axes = plt.subplots(1, count, figsize=(3.9 * count, 4.0))
    colors = {"baseline": "#c0504d", "ours": "#4f81bd"}
    width = 0.38
    for ax, (title, name, bound, log, labels) in zip(axes[: len(panels)], panels, strict=True):
        for offset, config in ((-width / 2, "baseline"), (width / 2, "ours")):
            xs, values, bounds = [], [], []
            for index, workload in enumerate(workloads):
                entry = (results.get(config) or {}).get(workload)
                if entry is None:
                    continue
                xs.append(index + offset)
                values.append(_chart_value(entry, name) or 0.0)
                bounds.append(_chart_value(entry, bound))
            if not xs:
                continue
            bars = ax.bar(xs, values, width, label=CONFIG_TITLES[config], color=colors[config])
            if labels:
                ax.bar_label(bars, labels=[labels.format(v) for v in values], fontsize=7)
            lb_x = [x for x, b in zip(xs, bounds, strict=True) if b is not None]
            lb_y = [b for b in bounds if b is not None]
            ax.scatter(lb_x, lb_y, marker="_", s=400, color="black", zorder=3,
                       label="lower bound" if config == "ours" else None)  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(workloads)), workloads)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    if production:
        _production_panel(axes[-1], production)
    axes[0].legend(fontsize=8)
    fig.suptitle("reference design vs this project (make bench, local endpoint)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _production_panel(ax: Any, rows: list[Mapping[str, Any]]) -> None:
    """Reference ÷ ours at the production shape, one bar per (events/day, partitions), with
    each cell's target."""
    labels = [f"{row['events_per_day'] / 1e6:g}M/{row['partitions']}p" for row in rows]
    ratios = [float(row.get("ratio") or 0.0) for row in rows]
    xs = range(len(rows))
    bars = ax.bar(xs, ratios, 0.6, color="#4f81bd")
    ax.bar_label(bars, labels=[f"{r:.1f}x" for r in ratios], fontsize=7)
    wanted = [production_target(row["events_per_day"], row["partitions"]) for row in rows]
    ax.scatter(xs, wanted, marker="_", s=300, color="black", zorder=3, label="target")
    ax.axhline(1.0, color="#c0504d", linewidth=0.8)
    ax.set_xticks(list(xs), labels, rotation=60, fontsize=7)
    window = projected_window(rows)
    at = "" if window is None else f", {window:g} s window"
    ax.set_title(f"reference ÷ ours, production shape (projected{at})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def _chart_value(entry: Mapping[str, Any], name: str | None) -> float | None:
    if name is None:
        return None
    if name == "monthly_total":
        return projected_cost(entry)
    value = entry.get(name)
    return float(value) if isinstance(value, int | float) else None
