"""The measured runs projected to the production shape: per workload, both designs'
projection tables (``benchmark.projection``) from that workload's measured write costs, and
both designs' full bill (``benchmark.full_bill``) from the first workload both ran, with what it
was computed from (results.json's ``projection``, ``projection_by_window``, ``full_bill`` and
``meta.projection``). Pure, apart from the progress lines it prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from video_stats.model import AttributeMap, ItemType, SummaryKind

from benchmark.bill import LogShape, StackResources
from benchmark.deployed_design import DeployedDesign, deployed_batching, projected_design
from benchmark.figures import RunCounts
from benchmark.full_bill import BillInputs, Production, full_bill
from benchmark.handler import CpuCost
from benchmark.options import Options
from benchmark.projection import (
    PRODUCTION_USERS,
    PRODUCTION_VIDEOS,
    Design,
    Sample,
    batching_window,
    production_operations,
    projection_by_window,
    projection_table,
    sensitivity_windows,
    stream_records,
)

Tables = dict[str, dict[str, list[dict[str, Any]]]]  # workload -> table name -> rows


def project_runs(
    runs: Mapping[str, Mapping[str, RunCounts]],
    deployments: Mapping[str, DeployedDesign],
    *,
    summary_items: Mapping[tuple[str, str], dict[SummaryKind, AttributeMap]],
    log_shapes: Mapping[tuple[str, str], dict[ItemType, LogShape]],
    resources: Mapping[str, StackResources],
    cpu: CpuCost | None,
    options: Options,
    console: Console,
) -> tuple[Tables, dict[str, Any]]:
    """Per workload: both designs at the production shape, from that workload's measured
    write costs; and the full bill of the first workload of ``large``, ``tiny`` both designs
    ran. Nothing (``{}, {}``) unless both designs ran a workload. ``summary_items`` and
    ``log_shapes`` are per (design, workload): the largest summary items a run left and its
    functions' log output."""
    if not {"baseline", "ours"} <= deployments.keys():
        return {}, {}
    workloads = [w for w in runs.get("ours", {}) if w in runs.get("baseline", {})]
    if not workloads:
        return {}, {}
    console.print("projecting both designs to the production shape ...")
    operations = production_operations(options.projection_operations, options.seed)
    sample = Sample(list(stream_records(operations)))
    consumers = {key: deployments[key].projected_consumers() for key in ("baseline", "ours")}
    measured = max(deployed_batching(m).window_seconds for m in deployments["ours"].mappings)
    tables: Tables = {}
    bill: dict[str, Any] = {}
    for workload in workloads:
        reference, ours = (
            projected_design(
                deployments[key],
                consumers[key],
                summary_items.get((key, workload)),
                options.partitions,
                runs[key][workload],
            )
            for key in ("baseline", "ours")
        )
        windows = sensitivity_windows(measured, batching_window(ours))
        tables[workload] = {
            "projection": projection_table(sample, reference, ours),
            # Cells are merged once per sample and batching: the other workloads only
            # re-cost them.
            "projection_by_window": projection_by_window(sample, reference, ours, windows),
        }
        if not bill:
            console.print(f"the full bill, from the {workload} workload ...")
            bill = _full_bill(
                sample,
                workload,
                {"baseline": reference, "ours": ours},
                logs={key: log_shapes.get((key, workload), {}) for key in ("baseline", "ours")},
                resources=resources,
                cpu=cpu,
            )
    return tables, bill


def _full_bill(
    sample: Sample,
    workload: str,
    designs: dict[str, Design],
    *,
    logs: Mapping[str, Mapping[ItemType, LogShape]],
    resources: Mapping[str, StackResources],
    cpu: CpuCost | None,
) -> dict[str, Any]:
    """Both designs' full bill (``benchmark.full_bill``) from ``workload``'s run: its write
    costs and its functions' log output; PITR and log retention as this project's stack sets
    them, for both."""
    ours = resources["ours"]
    production = Production(ours.point_in_time_recovery, ours.log_retention_days)
    inputs = {key: BillInputs(logs[key], resources[key]) for key in designs}
    result = full_bill(sample, {key: (designs[key], inputs[key]) for key in designs}, production)
    result.update(
        {
            "workload": workload,
            "production": {
                "point_in_time_recovery": production.point_in_time_recovery,
                "log_retention_days": production.log_retention_days,
            },
            "resources": {key: r.as_dict() for key, r in resources.items()},
            "logs": {
                key: {t: shape.as_dict() for t, shape in inputs[key].logs.items()} for key in inputs
            },
            "duration": {key: d.settings.duration.describe() for key, d in designs.items()},
            "cpu_full_core": cpu.as_dict() if cpu else None,
        }
    )
    return result


def projection_meta(options: Options, production_mapping: Mapping[str, Any]) -> dict[str, Any]:
    """results.json's ``meta.projection``: how the projection was made."""
    return {
        "operations_simulated": options.projection_operations,
        "seed": options.seed,
        "users": PRODUCTION_USERS,
        "videos": PRODUCTION_VIDEOS,
        "measured_partitions": options.partitions,
        "rotation_seconds": options.rotation_seconds,
        "batching_window_seconds": production_mapping.get("maximum_batching_window_in_seconds"),
        "note": "Batches simulated with the load test's generator and merged by the "
        "handlers' parse_batch. Each summary write is costed by the endpoint's write-unit "
        "rules on the largest summary item of its kind the run left "
        f"({options.partitions} partition(s)), its exactly-once marks replaced by "
        "the number lineage pruning leaves, injected (one per function and open "
        "lineage: every partition for a video summary, its user's for a user summary), "
        "each as long as a 40-digit sequence number (the API's longest: the reading "
        "least favourable to this project). The reference design's index writes are "
        "billed at 1 WRU.",
    }
