"""One measured run: a workload's load test against one deployed design (I/O), and what is read
afterwards: the endpoint's counters, the stream records the run wrote, its functions' log
output, the summaries it left. Every run starts from a drained pipeline and reset counters, so
everything read belongs to that run (docs/benchmark.md, "Method").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from localcloud.client import ControlClient
from localcloud.endpoint_process import REGION
from rich.console import Console
from video_stats.model import AttributeMap, ItemType, SummaryKind
from vstats.drift import find_drift
from vstats.load_run import LoadTest, LoadTestConfig
from vstats.tables import scan_items

from benchmark.bill import LogShape, parse_function_log
from benchmark.collect import (
    DeployedMapping,
    base_gsi_units,
    endpoint_dynamodb,
    summary_sizes,
    table_writes,
)
from benchmark.deployed_design import DeployedDesign, deployed_batching
from benchmark.figures import (
    EVENTS_PER_DAY,
    BatchBound,
    FunctionStream,
    RunCounts,
    batch_bound,
    min_batches,
    parse_batch_sizes,
    parse_report_durations,
    project,
    split_batches,
)
from benchmark.options import Options
from benchmark.workloads import Workload

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(slots=True)
class MeasuredRun:
    counts: RunCounts
    log_shapes: dict[ItemType, LogShape]  # each function's log output, by its item type
    summary_items: dict[SummaryKind, AttributeMap]  # the largest summary item of each kind left
    seconds: float = 0.0  # the run, from waiting for the drained pipeline to the last read


def measure_run(
    endpoint_url: str,
    control: ControlClient,
    deployment: DeployedDesign,
    workload: Workload,
    options: Options,
    *,
    remaining: float,
    console: Console,
    notes: list[str],
) -> MeasuredRun:
    """``workload``'s load test on ``deployment``, within ``remaining`` seconds, from a drained
    pipeline and reset counters; what went wrong in the run is added to ``notes`` as it is
    found (a Ctrl-C keeps them)."""
    label = f"{deployment.key} on {workload.key}"
    console.rule(f"{label}: {workload.events:,} events at {options.rate:g}/s")
    t0 = time.monotonic()
    if not control.wait_drained(min(120.0, remaining)):
        notes.append(f"{label}: the pipeline was not drained before the run")
    control.reset_stats()
    deployment.cursor.read_new()  # skip what earlier runs wrote
    for tail in deployment.logs.values():
        tail.mark()
    client = endpoint_dynamodb(endpoint_url, options.writers + 4)
    test = LoadTest(
        client,
        deployment.table,
        LoadTestConfig(
            events=workload.events,
            rate=options.rate,
            writers=options.writers,
            users=workload.users,
            videos=workload.videos,
            skew=workload.skew,
            seed=options.seed,
            id_prefix=workload.id_prefix,
            probe_interval=options.probe_interval,
            drain_timeout=max(30.0, remaining - 60.0),
            poll_interval=0.1,
            verify_when_drained=True,
        ),
        control=control,
        console=console,
    )
    report = test.run()
    if report.interrupted:
        raise KeyboardInterrupt
    if not report.drained:
        notes.append(f"{label}: not drained within {test.config.drain_timeout:.0f} s")
    stats = control.stats()
    records = deployment.cursor.read_new()
    measured = _measured(
        deployment,
        workload=workload,
        report=report,
        stats=stats,
        records=records,
        client=client,
        partitions=options.partitions,
        notes=notes,
    )
    counts = measured.counts
    measured.seconds = round(time.monotonic() - t0, 1)
    console.print(
        f"{label}: {counts.invocations:,} invocations, {counts.summary_item_writes:,} "
        f"summary writes, drain {counts.drain_seconds or 0:.1f} s, "
        f"{counts.mismatches:,} mismatched summaries"
    )
    return measured


def _measured(
    deployment: DeployedDesign,
    *,
    workload: Workload,
    report: Any,
    stats: dict[str, Any],
    records: list[dict[str, Any]],
    client: DynamoDBClient,
    partitions: int,
    notes: list[str],
) -> MeasuredRun:
    label = f"{deployment.key} on {workload.key}"
    per_mapping = {m.uuid: dict(stats.get(m.uuid) or {}) for m in deployment.mappings}

    def total(name: str) -> int:
        return sum(int(s.get(name) or 0) for s in per_mapping.values())

    bound: BatchBound | None = BatchBound()
    problems: list[str] = []
    log_shapes: dict[ItemType, LogShape] = {}
    own_dropped = 0
    full_batches = 0
    durations: list[float] = []
    delays: dict[str, list[float]] = {"p50": [], "p99": [], "max": []}
    streams: list[FunctionStream] = []
    for mapping in deployment.mappings:
        mstats = per_mapping[mapping.uuid]
        delivered = mapping.delivered(records, REGION)
        own = sum(1 for r in records if _of_type(r, mapping.item_type))
        own_dropped += own - sum(1 for r in delivered if _of_type(r, mapping.item_type))
        full_batches += min_batches(len(delivered), mapping.batch_size)
        log_text = deployment.logs[mapping.uuid].read()
        log_shapes[mapping.item_type] = parse_function_log(log_text)
        durations += parse_report_durations(log_text)
        for name, values in delays.items():
            value = (mstats.get("delay_seconds") or {}).get(name)
            if isinstance(value, int | float):
                values.append(float(value))
        sizes = [1] * len(delivered) if mapping.batch_size == 1 else parse_batch_sizes(log_text)
        # Rebatched as the projection batches (this project: its production defaults).
        batching = deployment.projected_batching or deployed_batching(mapping)
        streams.append(
            FunctionStream(
                delivered,
                mapping.item_type,
                batching.batch_size,
                batching.window_seconds,
                batching.tumbling_window_seconds,
            )
        )
        problem = _batch_problem(mapping, mstats, delivered, sizes)
        if problem is None and deployment.cursor.shards_read > 1:
            # The function logs its batch sizes, not their shards: with several shards
            # the batches cannot be cut out of the records again.
            problem = f"{deployment.cursor.shards_read} shards: batches are per shard"
        if problem is not None:
            problems.append(f"{mapping.function_name}: {problem}")
            bound = None
        elif bound is not None:
            # Size 0: the closing invocation of a tumbling window (no records).
            batches = split_batches(delivered, [n for n in sizes if n])
            bound = bound + batch_bound(batches, mapping.item_type)
    writes = table_writes(stats, deployment.table)
    if writes.other_operations:
        notes.append(f"{label}: unexpected write operations {writes.other_operations}")
    base_gsi = base_gsi_units(records, deployment.shapes)
    drifts = [
        d for d in find_drift(client, deployment.table) if d.key.id.startswith(workload.id_prefix)
    ]
    item_sizes = summary_sizes(scan_items(client, deployment.table, 4), workload.id_prefix)
    bound_note = "; ".join(problems) if problems else None
    if bound_note:
        notes.append(f"{label}: lower bound of writes unavailable: {bound_note}")
    counts = RunCounts(
        events=report.events,
        probes=report.probes,
        invocations=total("invocations"),
        batches=total("batches"),
        records_delivered=total("records_delivered"),
        records_filtered_out=total("records_filtered_out"),
        summary_write_requests=writes.summary_requests,
        summary_item_writes=writes.summary_items,
        summary_wru=writes.summary_wru,
        summary_gsi_wru=max(0, writes.gsi_wru - base_gsi),
        rejected_writes=int(
            ((stats.get("dynamodb") or {}).get(deployment.table) or {}).get(
                "conditional_check_failures"
            )
            or 0
        ),
        base_wru=writes.base_wru + base_gsi,
        min_batches_at_batch_size=full_batches,
        own_type_dropped=own_dropped,
        bound=bound,
        bound_note=bound_note,
        retries=total("retries"),
        function_errors=total("function_errors"),
        write_seconds=report.write_seconds,
        achieved_rate=report.achieved_rate,
        drain_seconds=report.drain_seconds,
        drained=report.drained,
        probe_delays=list(report.delays),
        invocation_delay={name: max(v) if v else None for name, v in delays.items()},
        mismatches=len(drifts),
        loadtest_mismatches=len(report.mismatches),
        touched_summaries=report.touched_summaries,
        local_ms_per_invocation=sum(durations) / len(durations) if durations else None,
        projection=project(streams, report.events + report.probes, EVENTS_PER_DAY / 86_400),
        events_by_kind=dict(report.events_by_kind),
        partitions=partitions,
        max_summary_item_bytes=item_sizes.max_bytes,
        max_marks_per_item=item_sizes.max_marks,
    )
    return MeasuredRun(counts, log_shapes, item_sizes.largest)


def _of_type(record: dict[str, Any], item_type: str) -> bool:
    images = record.get("dynamodb") or {}
    return any(
        ((images.get(name) or {}).get("type") or {}).get("S") == item_type
        for name in ("NewImage", "OldImage")
    )


def _batch_problem(
    mapping: DeployedMapping,
    stats: dict[str, Any],
    delivered: list[dict[str, Any]],
    sizes: list[int],
) -> str | None:
    """Why the batches cannot be rebuilt exactly (retries, a count that does not add up)."""
    if int(stats.get("retries") or 0) or int(stats.get("duplicate_deliveries") or 0):
        return "retries or duplicate deliveries: batches are not one-to-one with invocations"
    if len(delivered) != int(stats.get("records_delivered") or 0):
        return (
            f"{len(delivered)} records match the filters, the engine delivered "
            f"{stats.get('records_delivered')}"
        )
    batches = sum(1 for n in sizes if n)
    # Only invocations with records count: a tumbling window's closing call need not log a
    # batch size (the handlers answer it before parsing anything).
    if batches != int(stats.get("batches") or 0) or sum(sizes) != len(delivered):
        return (
            f"the function logged {len(sizes)} invocations ({batches} with records, "
            f"{sum(sizes)} records), the engine made {stats.get('invocations')} invocations "
            f"({stats.get('batches')} batches, {len(delivered)} records)"
        )
    return None
