"""results.json: assembled from the runs' figures and the machine they ran on, written with the
report and chart beside it, and read back (``--readme-table``)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from vstats import cli

from benchmark.chart import write_chart
from benchmark.figures import FunctionSettings, RunCounts, figures, settings_dict
from benchmark.options import Options
from benchmark.report import render_report
from benchmark.workloads import CONFIGS


def write_outputs(
    output_dir: Path, results: dict[str, Any], console: Console | None = None
) -> tuple[Path, Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    results_path = output_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    chart_path = output_dir / "chart.png"
    write_chart(results, chart_path)
    report_path = output_dir / "report.md"
    report_path.write_text(render_report(results))
    if console is not None:
        console.print(f"wrote {report_path}, {chart_path}, {results_path}")
    return report_path, chart_path, results_path


def assemble_results(
    options: Options,
    runs: dict[str, dict[str, RunCounts]],
    settings: dict[str, FunctionSettings],
    mappings: dict[str, list[dict[str, Any]]],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """results.json: ``{"baseline": {workload: figures}, "ours": {...}, "meta": {...}}``."""
    results: dict[str, Any] = {}
    for config in options.configs:
        results[config] = {
            workload: figures(counts, settings[config])
            for workload, counts in runs.get(config, {}).items()
        }
    results["meta"] = {
        **meta,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": options.seed,
        "rate": options.rate,
        "writers": options.writers,
        "probe_interval_seconds": options.probe_interval,
        "workloads": {w.key: w.as_dict() for w in options.workloads},
        "configurations": {
            config: {
                "function": settings_dict(settings[config]),
                "mappings": mappings.get(config, []),
            }
            for config in options.configs
            if config in settings
        },
    }
    return results


def machine() -> dict[str, Any]:
    """The machine the benchmark ran on: its CPUs and load average (None where it has none)."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"cpus": os.cpu_count(), "load_average": load}


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise cli.UsageError(f"{path} not found: run 'make bench' first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise cli.ToolError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not any(k in data for k in CONFIGS):
        raise cli.ToolError(f"{path} is not a bench results file")
    return data
