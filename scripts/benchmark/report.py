"""The benchmark's Markdown from ``results.json``: the report (report.md) and the summary table
docs/benchmark.md holds. Pure. The targets are ``benchmark.targets``, the chart
``benchmark.chart``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from benchmark.bill import BILL_LINES
from benchmark.figures import DAYS_PER_MONTH, EVENTS_PER_DAY, PRICE_SOURCES, PRICES, PRICES_CHECKED
from benchmark.formatting import fmt_num, fmt_per_day, fmt_seconds, fmt_usd, fmt_usd4
from benchmark.targets import Target, evaluate_targets, production_target
from benchmark.workloads import (
    CONFIG_TITLES,
    CONFIGS,
    measured_window,
    projected_cost,
    projected_window,
    projection_rows,
    total_cost,
    workload_entries,
)

# --- the summary table of docs/benchmark.md ------------------------------------------------------


#: The one place the generated tables live: between these markers of docs/benchmark.md.
DOCS_TABLE_START, DOCS_TABLE_END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


def with_docs_table(document: str, table: str) -> str:
    """``document`` with the text between its bench-table markers replaced by ``table``;
    ValueError if the markers are missing."""
    start, end = document.find(DOCS_TABLE_START), document.find(DOCS_TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"no {DOCS_TABLE_START} ... {DOCS_TABLE_END} section")
    return f"{document[: start + len(DOCS_TABLE_START)]}\n{table.strip()}\n{document[end:]}"


def readme_table(results: Mapping[str, Any]) -> str:
    """The summary table of docs/benchmark.md (Markdown), one row per workload and design."""
    lines = [
        "| workload | design | invocations / 1,000 records | summary writes / event "
        "(lower bound) | WRU / event (+ GSI) | mismatches after drain | drain | "
        "write-to-summary p50 / p99 | $ / month at 1 M events/day (projected) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload, config, entry in workload_entries(results):
        lines.append(
            "| "
            + " | ".join(
                [
                    workload,
                    CONFIG_TITLES.get(config, config),
                    fmt_num(entry.get("invocations_per_1000_records"), 1),
                    f"{fmt_num(entry.get('writes_per_event'))} "
                    f"({fmt_num(entry.get('lower_bound_writes_per_event'))})",
                    f"{fmt_num(entry.get('wru_per_event'))} "
                    f"(+ {fmt_num(entry.get('gsi_wru_per_event'))})",
                    fmt_num(entry.get("mismatches")),
                    f"{fmt_num(entry.get('drain_seconds'), 1)} s",
                    f"{fmt_num(entry.get('write_to_summary_p50_seconds'), 1)} / "
                    f"{fmt_num(entry.get('write_to_summary_p99_seconds'), 1)} s",
                    fmt_usd(projected_cost(entry)),
                ]
            )
            + " |"
        )
    meta = results.get("meta") or {}
    measured = measured_window(results)
    _, rows = projection_rows(results)
    production = projected_window(rows)
    lines.append("")
    lines.append(
        f"Measured by `make bench` on the local endpoint ({meta.get('generated_at', '?')}) at "
        f"{fmt_num(meta.get('rate'), 0)} events/s"
        + ("" if measured is None else f", this project's batching window {measured:g} s")
        + "; dollars from docs/design.md §6 prices for the same records batched as 1 M events a "
        "day would be"
        + ("" if production is None else f" at this project's production window ({production:g} s)")
        + ", with an assumed duration per invocation (see build/bench/report.md)."
    )
    table = production_table(results)
    if table:
        lines += [
            "",
            "At the production shape (aggregation cost a month, projected"
            + ("" if production is None else f" at the production window of {production:g} s")
            + "):",
            "",
            *table,
        ]
    by_window = window_table(results)
    if by_window:
        lines += ["", "Reference ÷ ours by this project's batching window:", "", *by_window]
    full = full_bill_table(results)
    if full:
        lines += ["", "The full bill a month (every line each stack adds; build/bench/report.md):"]
        lines += ["", *full, "", *fixed_cost_lines(results)]
    return "\n".join(lines)


def targets_table(targets: Sequence[Target]) -> list[str]:
    """The targets (``benchmark.targets.evaluate_targets``) as scored on a run (Markdown): met
    or not and the measured figure."""
    lines = ["| target | workload | met | measured |", "|---|---|---|---|"]
    for target in targets:
        met = {True: "yes", False: "**NO**", None: "-"}[target.met]
        lines.append(f"| {target.name} | {target.workload} | {met} | {target.detail} |")
    return lines


def docs_section(results: Mapping[str, Any]) -> str:
    """What ``--write-docs`` puts between docs/benchmark.md's markers: the summary tables, then
    the run's targets and the write rates its writers achieved, so that no prose outside the
    generated block has to quote a run's figure (and drift from it)."""
    targets = evaluate_targets(results)
    counts = [t.met for t in targets]
    unmeasured = counts.count(None)
    lines = [
        readme_table(results),
        "",
        f"The targets (`scripts/benchmark/targets.py`) on this run: {counts.count(True)} met, "
        f"{counts.count(False)} missed"
        + (f", {unmeasured} not measured" if unmeasured else "")
        + ":",
        "",
        *targets_table(targets),
    ]
    offered = fmt_num((results.get("meta") or {}).get("rate"), 0)
    rates = [
        f"{workload}, {CONFIG_TITLES.get(config, config)}: {fmt_num(entry.get('achieved_rate'), 1)}"
        for workload, config, entry in workload_entries(results)
    ]
    if rates:
        lines += [
            "",
            f"Write rates the load test's writers achieved (events/s, {offered} offered; the "
            "local endpoint serializes DynamoDB requests, so a lower rate means smaller measured "
            "batches): " + "; ".join(rates) + ".",
        ]
    return "\n".join(lines)


# --- the full bill ------------------------------------------------------------------------------

LINE_TITLES: Final = {
    "lambda_requests": "Lambda requests",
    "lambda_compute": "Lambda GB-seconds",
    "dynamodb_writes": "DynamoDB write units (every summary write)",
    "custom_metrics": "CloudWatch custom metrics (metric-hours published)",
    "alarms": "CloudWatch alarms (per metric read)",
    "dashboard": "CloudWatch dashboard (list price)",
    "log_ingestion": "CloudWatch Logs ingestion",
    "log_storage": "CloudWatch Logs storage",
    "sqs": "SQS",
    "sns": "SNS",
    "kms": "KMS (customer-managed keys)",
    "dynamodb_storage": "DynamoDB storage (summaries)",
    "pitr": "DynamoDB point-in-time recovery (summaries)",
}


def full_bill_table(results: Mapping[str, Any]) -> list[str]:
    """The full bill (Markdown): both designs' totals a month per cell, their ratio and this
    project's fixed cost; then the break-even per partition count."""
    rows = results.get("full_bill") or []
    if not rows:
        return []
    lines = [
        "| events/day | partitions | reference $ / month | this project $ / month | "
        "reference ÷ ours | of which fixed (this project) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['events_per_day']:,} | {row['partitions']} | "
            f"{fmt_usd(row.get('reference_usd_month'))} | {fmt_usd(row.get('ours_usd_month'))} | "
            f"**{fmt_num(row.get('ratio'))}x** | {fmt_usd(row.get('fixed_usd_month'))} |"
        )
    even = results.get("break_even_events_per_day") or {}
    lines += [
        "",
        "Break-even (this project no more expensive than the reference from): "
        + "; ".join(
            f"{count} partition(s): "
            + ("never up to 100 M/day" if value is None else f"{value:,} events/day")
            for count, value in even.items()
        )
        + ".",
    ]
    return lines


def fixed_cost_lines(results: Mapping[str, Any]) -> list[str]:
    """This project's fixed cost a month, itemized, with what the stacks hold."""
    detail = results.get("full_bill_detail") or {}
    fixed = detail.get("fixed") or {}
    if not fixed:
        return []
    resources = (detail.get("resources") or {}).get("ours") or {}
    items = ", ".join(f"{LINE_TITLES.get(k, k)} {fmt_usd(v)}" for k, v in fixed.items())
    total = fmt_usd(detail.get("fixed_usd_month"))
    return [
        f"Fixed cost of this project's stack with no traffic: **{total}** a month ({items}); "
        f"the stack holds {resources.get('alarms', '?')} alarms reading "
        f"{resources.get('alarm_metrics', '?')} metrics, {resources.get('dashboards', '?')} "
        f"dashboard(s), {resources.get('customer_managed_kms_keys', '?')} customer-managed KMS "
        f"key(s), {resources.get('sqs_queues', '?')} SQS queue(s) and "
        f"{resources.get('sns_topics', '?')} SNS topic(s) (read from the deployed stack). "
        "Custom metrics cost only in hours they are published: none without traffic."
    ]


def _itemized_bill(results: Mapping[str, Any]) -> list[str]:
    """Every line of both bills in a few cells (Markdown)."""
    detail = results.get("full_bill_detail") or {}
    cells = [
        c
        for c in detail.get("lines") or []
        if (c["events_per_day"], c["partitions"])
        in {(100_000, 4), (1_000_000, 4), (100_000_000, 4)}
    ]
    if not cells:
        return []
    header = "| line | " + " | ".join(
        f"{fmt_per_day(c['events_per_day'])}/day, {c['partitions']} p: reference | ours"
        for c in cells
    )
    lines = [header + " |", "|---|" + "---:|---:|" * len(cells)]
    for name in BILL_LINES:
        lines.append(
            f"| {LINE_TITLES.get(name, name)} | "
            + " | ".join(
                f"{fmt_usd4(c['reference'].get(name))} | {fmt_usd4(c['ours'].get(name))}"
                for c in cells
            )
            + " |"
        )
    lines.append(
        "| … custom metrics if zero values were not published | "
        + " | ".join(f"- | {fmt_usd4(c.get('ours_custom_metrics_nonzero_only'))}" for c in cells)
        + " |"
    )
    lines.append(
        "| **total** | "
        + " | ".join(
            f"**{fmt_usd(sum(c['reference'].values()))}** | **{fmt_usd(sum(c['ours'].values()))}**"
            for c in cells
        )
        + " |"
    )
    return lines


def _prices_table() -> list[str]:
    lines = ["| price | USD | unit | source |", "|---|---:|---|---|"]
    for name, (unit, source) in PRICE_SOURCES.items():
        lines.append(f"| `{name}` | {getattr(PRICES, name):g} | {unit} | {source} |")
    return lines


def _full_bill_section(results: Mapping[str, Any]) -> list[str]:
    table = full_bill_table(results)
    if not table:
        return []
    detail = results.get("full_bill_detail") or {}
    production = detail.get("production") or {}
    duration = detail.get("duration") or {}
    cpu = detail.get("cpu_full_core") or {}
    logs = detail.get("logs") or {}
    log_notes = []
    for config, functions in logs.items():
        for item_type, shape in functions.items():
            published = shape.get("metrics") or {}
            log_notes.append(
                f"{CONFIG_TITLES.get(config, config)} {item_type}: "
                f"{fmt_num(shape.get('own_bytes_per_invocation'), 0)} B of its own log output per "
                f"invocation over {fmt_num(shape.get('invocations'))} invocations, "
                f"{len(published)} custom metric(s) published"
            )
    return [
        "## The full bill (every line each stack adds)",
        "",
        f"From the {detail.get('workload', '?')} workload's measured write costs and log "
        "output, at the production batching; us-east-1 list prices, 30-day month, no free "
        "tiers; the application's own view and vote writes and base items are the same for "
        "both designs and left out.",
        "",
        *table,
        "",
        *fixed_cost_lines(results),
        "",
        "Every line in three cells (4 partitions):",
        "",
        *_itemized_bill(results),
        "",
        "How each line is measured (docs/design.md §6):",
        "",
        f"- Lambda duration: reference {duration.get('baseline', '?')}; this project "
        f"{duration.get('ours', '?')} (the CPU time bench-handler measures on one full core, "
        f"{cpu.get('ms_per_write_request', '?')} ms per summary write request and "
        f"{cpu.get('ms_per_record', '?')} ms per record, divided by the function's share of a "
        "vCPU: memory / 1,769 MB; the writes run 16 at a time, so the network wait hides behind "
        "the CPU at 256 MB).",
        "- DynamoDB: every write the handlers make, simulated with their own merge: one per key "
        "of a batch (also keys whose records net to zero: a mark-only write), the GSI2 bucket "
        "moves and the follow-up fixes of a mispredicted bucket as `video_stats.store` "
        "predicts it per shard's container, each summary starting the cell with a month of "
        "its traffic; rejected conditional writes at the measured run's rate; the reference's "
        "transaction of two items.",
        "- Custom metrics: each metric (namespace, name, dimensions) the functions' EMF lines "
        "published in the measured run, billed for the share of hours it is published in at "
        "the cell's invocation rate; " + "; ".join(log_notes) + ".",
        "- Logs: the functions' own output per invocation as measured plus Lambda's START, END "
        "and REPORT lines in AWS's format; stored for "
        f"{production.get('log_retention_days') or 'never-expire (30 days billed)'} days "
        "(this project's setting, for both), uncompressed (an upper bound).",
        "- Alarms, dashboards, queues, topics, KMS keys: read from each deployed stack; point-"
        f"in-time recovery {'on' if production.get('point_in_time_recovery') else 'off'} for "
        "both (this project's table's setting); storage of the summaries (100,000 users, "
        "1,000 videos) with their index copies.",
        "",
        f"Prices (checked {PRICES_CHECKED}):",
        "",
        *_prices_table(),
        "",
    ]


# --- the report ----------------------------------------------------------------------------------

ROWS: Final = (
    # (label, figure, lower-bound figure, digits)
    ("invocations / 1,000 records", "invocations_per_1000_records",
     "lower_bound_invocations_per_1000_records", 2),
    ("… if every batch were full", "full_batch_invocations_per_1000_records", None, 2),
    ("invocations", "invocations", "batches", 0),
    ("… closing calls of tumbling windows", "window_closing_invocations", None, 0),
    ("retries", "retries", None, 0),
    ("function errors", "function_errors", None, 0),
    ("summary write requests / event", "write_requests_per_event", None, 3),
    ("summary item writes / event", "writes_per_event", "lower_bound_writes_per_event", 3),
    ("summary item writes", "summary_item_writes", "lower_bound_writes", 0),
    ("distinct summary keys per batch / event", "distinct_keys_per_event", None, 3),
    ("summary WRU / event (table)", "wru_per_event", "lower_bound_wru_per_event", 3),
    ("summary GSI WRU / event", "gsi_wru_per_event", None, 3),
    ("workload's own WRU / event (incl. GSI)", "base_wru_per_event", None, 3),
    ("records delivered", "records_delivered", None, 0),
    ("records filtered out (all mappings)", "records_filtered_out", None, 0),
    ("own-type records the filter dropped", "own_type_records_dropped", None, 0),
    ("achieved write rate (events/s)", "achieved_rate", None, 1),
    ("time to drain after the last write (s)", "drain_seconds", None, 1),
    ("write-to-summary p50 (s, probes)", "write_to_summary_p50_seconds", None, 2),
    ("write-to-summary p95 (s, probes)", "write_to_summary_p95_seconds", None, 2),
    ("write-to-summary p99 (s, probes)", "write_to_summary_p99_seconds", None, 2),
    ("probes", "probe_count", None, 0),
    ("write-to-invocation p50 / p99 (s, all records)", "write_to_invocation_seconds", None, 2),
    ("mismatched summaries (recount)", "mismatches", None, 0),
    ("mismatched touched summaries (load test)", "loadtest_mismatches", None, 0),
    ("summaries the workload touched", "touched_summaries", None, 0),
    ("local ms / invocation (not AWS)", "local_ms_per_invocation", None, 1),
    ("assumed billed ms / invocation", "assumed_ms_per_invocation", None, 1),
)  # fmt: skip


def _cell(entry: Mapping[str, Any], name: str | None, digits: int) -> str:
    if name is None:
        return ""
    value = entry.get(name)
    if isinstance(value, Mapping):  # write_to_invocation: the worse of the two functions
        return f"{fmt_num(value.get('p50'), digits)} / {fmt_num(value.get('p99'), digits)}"
    return fmt_num(value, digits)


def _workload_table(results: Mapping[str, Any], workload: str) -> list[str]:
    present = [c for c in CONFIGS if workload in (results.get(c) or {})]
    header = ["figure"]
    for config in present:
        header += [CONFIG_TITLES[config], "lower bound"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for label, name, bound, digits in ROWS:
        row = [label]
        for config in present:
            entry = results[config][workload]
            row += [_cell(entry, name, digits), _cell(entry, bound, digits)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _cost_table(results: Mapping[str, Any]) -> list[str]:
    lines = [
        "| workload | design | Lambda requests | Lambda GB-s | DynamoDB WRU (summaries + GSI) "
        "| total | lower bound | workload's own writes (same for both) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for workload, config, entry in workload_entries(results):
        cost = entry.get("monthly_usd") or {}
        lines.append(
            f"| {workload} | {CONFIG_TITLES.get(config, config)} | "
            f"{fmt_usd(cost.get('lambda_requests'))} | {fmt_usd(cost.get('lambda_compute'))} | "
            f"{fmt_usd(cost.get('dynamodb'))} | **{fmt_usd(cost.get('total'))}** | "
            f"{fmt_usd(total_cost(entry, 'lower_bound_monthly_usd'))} | "
            f"{fmt_usd(entry.get('base_writes_monthly_usd'))} |"
        )
    return lines


def _projection_notes(results: Mapping[str, Any]) -> list[str]:
    """What the targets look like at 1 M events a day, and where the rates differed."""
    notes = []
    baseline, ours = results.get("baseline") or {}, results.get("ours") or {}
    for workload, entry in ours.items():
        ref = baseline.get(workload)
        if ref is None:
            continue
        p_ours, p_ref = entry.get("projected") or {}, ref.get("projected") or {}
        ours_rate = p_ours.get("invocations_per_1000_records")
        ref_rate = p_ref.get("invocations_per_1000_records")
        if ours_rate and ref_rate:
            window = p_ours.get("batching_window_seconds")
            windows = "windows" if window is None else f"{window:g} s windows"
            notes.append(
                f"- {workload}, projected to {EVENTS_PER_DAY:,} events a day (about "
                f"{fmt_num(p_ours.get('events_per_second'), 1)} events/s, this project's "
                f"production {windows} close with "
                f"{', '.join(fmt_num(n) for n in p_ours.get('batch_records') or [])} records): "
                f"{fmt_num(ref_rate, 1)} vs {fmt_num(ours_rate, 1)} invocations per 1,000 records "
                f"({ref_rate / ours_rate:,.0f}x), {fmt_usd(total_cost(p_ref))} vs "
                f"{fmt_usd(total_cost(p_ours))} a month"
                + (
                    f" ({fmt_usd(p_ref['monthly_usd_if_gsi_billed_once'])} for the reference "
                    "design if AWS bills a transaction's GSI write as a standard write)."
                    if p_ref.get("monthly_usd_if_gsi_billed_once") is not None
                    else "."
                )
            )
        rates = (ref.get("achieved_rate"), entry.get("achieved_rate"))
        if all(isinstance(r, int | float) and r for r in rates) and abs(
            rates[0] - rates[1]
        ) > 0.1 * max(rates):
            notes.append(
                f"- {workload}: the writers achieved {fmt_num(rates[0], 1)} events/s against the "
                f"reference design and {fmt_num(rates[1], 1)} against this project (the local "
                "endpoint serializes every DynamoDB request); a lower rate means smaller "
                "batches for this project, so its figures are, if anything, pessimistic."
            )
    return [*notes, ""] if notes else []


def _windows_note(results: Mapping[str, Any]) -> list[str]:
    """Which batching window each figure used: the measured runs, the projections."""
    mapping = (results.get("meta") or {}).get("stream_mapping") or {}
    production = mapping.get("production") or {}
    measured = measured_window(results)
    if measured is None and not production:
        return []
    window = fmt_seconds(production.get("maximum_batching_window_in_seconds"))
    tumbling = fmt_seconds(production.get("tumbling_window_in_seconds"))
    return [
        f"This project's batching window: {fmt_seconds(measured)} s in the measured runs "
        f"(`-var=stream_mapping={mapping.get('measured_variable') or '?'}`: the delay target "
        f"holds it); {window} s, batch size {fmt_num(production.get('batch_size'))} and tumbling "
        f"window {tumbling} s in every projection (the root module's production defaults, read "
        "with `terraform console`).",
        "",
    ]


def _projection_table(results: Mapping[str, Any]) -> list[str]:
    lines = [
        "| workload | design | records per batch (views, votes) | invocations / 1,000 records "
        "| summary writes / event | WRU / event (+ GSI) | assumed ms / invocation | "
        "Lambda requests | Lambda GB-s | DynamoDB | total |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload, config, entry in workload_entries(results):
        p = entry.get("projected")
        if not isinstance(p, Mapping):
            continue
        cost = p.get("monthly_usd") or {}
        sizes = ", ".join(fmt_num(n) for n in p.get("batch_records") or [])
        lines.append(
            f"| {workload} | {CONFIG_TITLES.get(config, config)} | {sizes} | "
            f"{fmt_num(p.get('invocations_per_1000_records'), 2)} | "
            f"{fmt_num(p.get('writes_per_event'), 3)} | {fmt_num(p.get('wru_per_event'), 3)} "
            f"(+ {fmt_num(p.get('gsi_wru_per_event'), 3)}) | "
            f"{fmt_num(p.get('assumed_ms_per_invocation'), 1)} | "
            f"{fmt_usd(cost.get('lambda_requests'))} | {fmt_usd(cost.get('lambda_compute'))} | "
            f"{fmt_usd(cost.get('dynamodb'))} | **{fmt_usd(cost.get('total'))}** |"
        )
    return lines


def production_table(results: Mapping[str, Any]) -> list[str]:
    """The production shape (Markdown): both designs' monthly aggregation cost per events a
    day and partitions, projected (``benchmark.projection``)."""
    workload, rows = projection_rows(results)
    if not rows:
        return []
    lines = [
        "| events/day | partitions | records per batch per shard (views, votes) | "
        "invocations / 1,000 records (reference, ours) | summary writes / event "
        "(reference, ours) | WRU / event incl. indexes (reference, ours) | video summary after "
        "a day (bytes, marks) | reference $ / month | this project $ / month | reference ÷ ours "
        "| target |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        sizes = ", ".join(fmt_num(n) for n in row.get("ours_batch_records") or [])
        wanted = production_target(row["events_per_day"], row["partitions"])
        lines.append(
            f"| {fmt_per_day(row['events_per_day'])} | {row['partitions']} | {sizes} | "
            f"{fmt_num(row.get('reference_invocations_per_1000_records'), 1)}, "
            f"{fmt_num(row.get('ours_invocations_per_1000_records'), 1)} | "
            f"{fmt_num(row.get('reference_writes_per_event'), 2)}, "
            f"{fmt_num(row.get('ours_writes_per_event'), 2)} | "
            f"{fmt_num(row.get('reference_wru_per_event'), 2)}, "
            f"{fmt_num(row.get('ours_wru_per_event'), 2)} | "
            f"{fmt_num(row.get('ours_video_summary_bytes'))}, "
            f"{fmt_num(row.get('ours_marks_per_video_summary'))} | "
            f"{fmt_usd(row.get('reference_usd_month'))} | {fmt_usd(row.get('ours_usd_month'))} | "
            f"**{fmt_num(row.get('ratio'))}x** | ≥ {wanted:g}x |"
        )
    projection = (results.get("meta") or {}).get("projection") or {}
    lines += [
        "",
        f"Projected from the {workload} workload's measured write costs: "
        f"{fmt_num(projection.get('operations_simulated'))} operations of the load test's "
        f"generator ({fmt_num(projection.get('users'))} users, {fmt_num(projection.get('videos'))} "
        "videos, Zipf, the default mix) cut into each shard's batches and merged by the "
        f"handlers' own code. {projection.get('note', '')}",
    ]
    return lines


def window_table(results: Mapping[str, Any]) -> list[str]:
    """The cost/freshness trade-off (Markdown): reference ÷ ours per cell at each batching
    window of ``projection_by_window`` (the shown workload's), with the cell's target."""
    workload, _ = projection_rows(results)
    entry = ((results.get("ours") or {}).get(workload or "")) or {}
    rows = entry.get("projection_by_window")
    if not isinstance(rows, list) or not rows:
        return []
    windows = sorted({float(r["batching_window_seconds"]) for r in rows})
    cells = list(dict.fromkeys((r["events_per_day"], r["partitions"]) for r in rows))
    ratio = {(r["batching_window_seconds"], r["events_per_day"], r["partitions"]): r.get("ratio")
             for r in rows}  # fmt: skip
    measured = measured_window(results)
    production = projected_window(entry.get("projection") or [])

    def title(window: float) -> str:
        roles = [name for name, w in (("measured", measured), ("production", production))
                 if w is not None and float(w) == window]  # fmt: skip
        return f"{window:g} s" + (f" ({', '.join(roles)})" if roles else "")

    lines = [
        "| events/day | partitions | " + " | ".join(title(w) for w in windows) + " | target |",
        "|---:|---:|" + "---:|" * len(windows) + "---:|",
    ]
    for per_day, partitions in cells:
        values = [ratio.get((w, per_day, partitions)) for w in windows]
        lines.append(
            f"| {fmt_per_day(per_day)} | {partitions} | "
            + " | ".join("-" if v is None else f"{fmt_num(v)}x" for v in values)
            + f" | ≥ {production_target(per_day, partitions):g}x |"
        )
    lines += [
        "",
        "Same projection, only this project's batching window changed (batch size and tumbling "
        "window as in production). On AWS a summary lags its writes by up to the window: the "
        "window buys batches, and so cost, with freshness.",
    ]
    return lines


def _settings_section(meta: Mapping[str, Any]) -> list[str]:
    lines = []
    for config, data in (meta.get("configurations") or {}).items():
        function = data.get("function") or {}
        writes = "TransactWriteItems" if function.get("transactional") else "UpdateItem"
        lines.append(f"**{CONFIG_TITLES.get(config, config)}** (`{config}`): "
                     f"{function.get('memory_mb')} MB, {function.get('architecture')}, summary "
                     f"writes {writes}; assumed duration {function.get('duration')}.")  # fmt: skip
        lines.append("")
        lines.append("| function | batch size | window (s) | start | retries | record age | "
                     "bisect | partial batch | parallel | tumbling window (s) | on failure | "
                     "filters |")  # fmt: skip
        lines.append("|---|---:|---:|---|---:|---:|---|---|---:|---:|---|---|")
        for mapping in data.get("mappings") or []:
            s = mapping.get("settings") or {}
            filters = "<br>".join(f"`{f}`" for f in s.get("Filters") or [])
            lines.append(
                f"| {mapping.get('function_name')} | {s.get('BatchSize')} | "
                f"{s.get('MaximumBatchingWindowInSeconds') or 0} | {s.get('StartingPosition')} | "
                f"{s.get('MaximumRetryAttempts')} | {s.get('MaximumRecordAgeInSeconds')} | "
                f"{fmt_num(bool(s.get('BisectBatchOnFunctionError')))} | "
                f"{fmt_num('ReportBatchItemFailures' in (s.get('FunctionResponseTypes') or []))} | "
                f"{s.get('ParallelizationFactor')} | {s.get('TumblingWindowInSeconds') or 0} | "
                f"{fmt_num(s.get('OnFailure'))} | {filters} |"
            )
        lines.append("")
    return lines


def render_report(results: Mapping[str, Any]) -> str:
    meta = results.get("meta") or {}
    workloads = meta.get("workloads") or {}
    lines = [
        "# Benchmark: the blog's reference design vs this project",
        "",
        f"Generated {meta.get('generated_at', '?')} by `make bench` in "
        f"{fmt_num(meta.get('total_seconds'), 0)} s on the local endpoint (moto server + the "
        "Docker-free stream engine), seed "
        f"{meta.get('seed')}, target rate {fmt_num(meta.get('rate'), 0)} events/s with "
        f"{meta.get('writers')} writers, the load test's default mix.",
        "",
        "## Targets",
        "",
        *targets_table(evaluate_targets(results)),
        "",
    ]
    lines += _full_bill_section(results)
    lines += _projection_notes(results)
    lines += _windows_note(results)
    lines += ["", "## Summary (the table of docs/benchmark.md)", "", readme_table(results), ""]
    lines += ["## Workloads", ""]
    for key, workload in workloads.items():
        lines.append(
            f"- **{key}**: {workload.get('title')}; {fmt_num(workload.get('events'))} events, "
            f"ids prefixed `{workload.get('id_prefix')}`."
        )
    skipped = results.get("skipped") or meta.get("skipped") or []
    for item in skipped:
        lines.append(f"- skipped: {item}")
    lines += ["", "## Configurations (as deployed, read back from the Lambda API)", ""]
    lines += _settings_section(meta)
    for workload in workloads:
        if not any(workload in (results.get(c) or {}) for c in CONFIGS):
            continue
        lines += [f"## Results: {workload}", ""]
        lines += _workload_table(results, workload)
        lines.append("")
        for config in CONFIGS:
            entry = (results.get(config) or {}).get(workload)
            if entry and entry.get("lower_bound_note"):
                lines.append(f"- {config}: {entry['lower_bound_note']}")
        lines.append("")
    lines += [
        f"## Monthly cost at {EVENTS_PER_DAY:,} events a day ({DAYS_PER_MONTH} days)",
        "",
        f"### Projected: the same records, batched as {EVENTS_PER_DAY:,} events a day would be",
        "",
        "At about 11.6 events a second a batching window closes with other batches than at the "
        "benchmark's rate and the measured run's window, so this project's invocations and "
        "writes per event differ from the measured ones; the reference design's batch size 1 "
        "does not depend on the rate. The projection rebatches each function's delivered "
        "records of the run at min(batch size, its share of the rate x window) records, with "
        "this project's production batch size, window and tumbling window (the root module's "
        "defaults, not the measured run's window), counts "
        "one write per changed key per batch (the lower bound, met exactly at the measured "
        "batching above), costs each write what the measured summary writes cost on average "
        "(table WRU, GSI WRU), and adds a tumbling window's closing call per window. This is "
        "the figure of docs/benchmark.md's summary table.",
        "",
        *_projection_table(results),
        "",
        f"### At the benchmark's batching ({fmt_num(meta.get('rate'), 0)} events/s), per event "
        "as measured",
        "",
        *_cost_table(results),
        "",
        f"Prices (docs/design.md §6): ${PRICES.lambda_request_per_million} per million requests, "
        f"${PRICES.gb_second_x86_64} per GB-s (x86_64) and ${PRICES.gb_second_arm64} (arm64), "
        f"${PRICES.wru_per_million} per million WRU. The local engine does not measure AWS "
        "durations: each invocation is billed at the assumed duration shown per configuration "
        "(change it with --baseline-duration / --ours-duration); the local figure is shown for "
        "comparison only. Reading the stream and filtering cost nothing.",
        "",
        "![chart](chart.png)",
        "",
        "## Definitions",
        "",
        "- *records*: the base-table writes of a run, i.e. the workload's events plus the load "
        "test's delay probes (one view a second); every *per event* figure divides by it.",
        "- *lower bound of invocations*: one per batch the mapping formed; *if every batch were "
        "full*: ceil(delivered / batch size) per function.",
        "- *lower bound of writes*: per batch, one write per distinct summary key whose net "
        "change in the batch is not zero, recomputed from the stream records each function "
        'received (batches rebuilt from the stream and the handlers\' "batch applied" log lines, '
        "or one record per batch at batch size 1); *distinct keys* also counts keys whose "
        "changes cancel out. Lower bound of WRU: one plain write (1 WRU) each.",
        "- *WRU*: counted at the endpoint per table: 1 per KB per item, 2 for a transactional "
        "item; GSI units apart (the endpoint also doubles a transaction's GSI units; "
        "docs/design.md §6 counts the reference's GSI1 write once). The workload's own writes "
        "are the same for both designs and are not part of the designs' columns.",
        "- *mismatches*: summaries of the workload that differ from a full recount of the base "
        "items (`vstats.drift.find_drift`) after the pipeline drained. The reference design "
        "never applies deletes or changed votes, so it drifts by design.",
        "- *write-to-summary*: the load test's probes (a view of a probe video every second, "
        "timed until its summary shows it; sequential, so few samples when the pipeline lags).",
        "",
    ]
    notes = meta.get("notes") or []
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(lines)
