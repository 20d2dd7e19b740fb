"""The benchmark's targets, scored against a results.json: exactness after the drain, the
delay, the aggregation cost at the production shape, the summary item's size and the full bill.
``make bench`` reports them; ``--strict`` fails when one is missed. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from benchmark.formatting import fmt_num, fmt_per_day, fmt_usd
from benchmark.workloads import measured_window, projection_rows

#: The full bill's targets (default deployment: monitoring on, the dashboard at list price):
#: break-even at most this many events a day on these partitions; reference ÷ ours at least
#: this ratio in these cells; this project's fixed cost a month at most this.
BREAK_EVEN_TARGET: Final = (100_000, (1, 4))
FULL_BILL_RATIO_TARGETS: Final = {
    (1_000_000, 1): 3.5,
    (1_000_000, 4): 2.75,
    (10_000_000, 4): 6.0,
    (100_000_000, 4): 6.0,
}
FIXED_COST_TARGET: Final = 4.50


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    workload: str
    met: bool | None  # None: not measured
    detail: str


def evaluate_targets(results: Mapping[str, Any]) -> list[Target]:
    """The current targets: exactness after the drain, the delay, the aggregation cost at the
    production shape, the summary item's size and the full bill (break-even, ratios, fixed
    cost). ``make bench`` reports them; ``--strict`` fails when one is missed."""
    targets = []
    for workload, entry in (results.get("ours") or {}).items():
        mismatches = entry.get("mismatches")
        targets.append(
            Target(
                "zero mismatches after drain",
                workload,
                mismatches == 0 and bool(entry.get("drained")),
                f"{fmt_num(mismatches)} mismatched summaries"
                + ("" if entry.get("drained") else " (not drained)"),
            )
        )
    return (
        targets
        + _delay_targets(results)
        + _production_targets(results)
        + full_bill_targets(results)
    )


def full_bill_targets(results: Mapping[str, Any]) -> list[Target]:
    """The full bill's targets (``BREAK_EVEN_TARGET``, ``FULL_BILL_RATIO_TARGETS``,
    ``FIXED_COST_TARGET``); none when no full bill was computed."""
    rows = results.get("full_bill") or []
    if not rows:
        return []
    workload = str((results.get("full_bill_detail") or {}).get("workload") or "-")
    targets = []
    most, partitions = BREAK_EVEN_TARGET
    even = results.get("break_even_events_per_day") or {}
    for count in partitions:
        value = even.get(str(count))
        targets.append(
            Target(
                f"full bill: never more expensive than the reference from {most:,} events/day "
                f"on {count} partition(s)",
                workload,
                value is not None and value <= most,
                "break-even " + ("never (up to 100 M)" if value is None else f"{value:,}/day"),
            )
        )
    by_cell = {(r["events_per_day"], r["partitions"]): r for r in rows}
    for (per_day, count), wanted in FULL_BILL_RATIO_TARGETS.items():
        row = by_cell.get((per_day, count))
        if row is None:
            continue
        ratio = row.get("ratio")
        targets.append(
            Target(
                f"full bill: reference ÷ ours ≥ {wanted:g}x at {fmt_per_day(per_day)} "
                f"events/day on {count} partition(s)",
                workload,
                None if ratio is None else ratio >= wanted,
                f"{fmt_num(ratio)}x ({fmt_usd(row.get('reference_usd_month'))} vs "
                f"{fmt_usd(row.get('ours_usd_month'))} a month)",
            )
        )
    fixed = rows[0].get("fixed_usd_month")
    items = (results.get("full_bill_detail") or {}).get("fixed") or {}
    targets.append(
        Target(
            f"fixed cost a month (no traffic) ≤ ${FIXED_COST_TARGET:.2f}",
            workload,
            None if fixed is None else fixed <= FIXED_COST_TARGET,
            f"{fmt_usd(fixed)} ({', '.join(f'{k} {fmt_usd(v)}' for k, v in items.items())})",
        )
    )
    return targets


def _delay_targets(results: Mapping[str, Any]) -> list[Target]:
    """This project's write-to-summary p99 within the measured run's batching window + 2 s
    (as deployed for the run, on the local stream)."""
    window = measured_window(results)
    if window is None:
        return []
    budget = window + 2.0
    targets = []
    for workload, entry in (results.get("ours") or {}).items():
        p99 = entry.get("write_to_summary_p99_seconds")
        targets.append(
            Target(
                f"write-to-summary p99 ≤ the measured run's batching window + 2 s ({budget:g} s)",
                workload,
                None if p99 is None else p99 <= budget,
                f"p99 {fmt_num(p99, 2)} s",
            )
        )
    return targets


def production_target(events_per_day: int, partitions: int) -> float:
    """The least reference ÷ ours ratio of aggregation cost asked for at the production shape:
    3x at 1 M events a day on 1 or 4 partitions, 2x on 16, 4x at 10 M and 100 M on 4 and 16;
    in every other cell, at least never more expensive (1x)."""
    if events_per_day <= 1_000_000:
        return 3.0 if partitions <= 4 else 2.0
    return 4.0 if partitions >= 4 else 1.0


def _production_targets(results: Mapping[str, Any]) -> list[Target]:
    """The ratios of the production projection (this project at its production batching
    window) and the size of a summary item after a day."""
    workload, rows = projection_rows(results)
    targets = []
    for row in rows:
        wanted = production_target(row["events_per_day"], row["partitions"])
        ratio = row.get("ratio")
        window = row.get("batching_window_seconds")
        at = "" if window is None else f", {window:g} s window"
        targets.append(
            Target(
                f"reference ÷ ours ≥ {wanted:g}x at {fmt_per_day(row['events_per_day'])} "
                f"events/day on {row['partitions']} partition(s) (projected{at})",
                workload or "-",
                None if ratio is None else ratio >= wanted,
                f"{fmt_num(ratio)}x ({fmt_usd(row.get('reference_usd_month'))} vs "
                f"{fmt_usd(row.get('ours_usd_month'))} a month)",
            )
        )
    sizes = [
        (row["partitions"], row.get("ours_video_summary_bytes"))
        for row in rows
        if row["events_per_day"] == rows[0]["events_per_day"]
    ]
    measured = [(count, size) for count, size in sizes if isinstance(size, int)]
    if measured:
        largest = max(measured, key=lambda pair: pair[1])
        targets.append(
            Target(
                "a summary item stays ≤ 1 KB after a day, up to 16 partitions (projected)",
                workload or "-",
                largest[1] <= 1024,
                ", ".join(f"{size:,} B at {count}" for count, size in measured),
            )
        )
    return targets
