"""Both designs' full monthly bill at the production shape (pure, no I/O): every cell of the
grid (events a day, partitions) projected (``benchmark.projection``) and billed line by line
(``benchmark.bill``), this project's fixed cost, and the events a day at which its bill breaks
even with the reference design's (docs/design.md §6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from localcloud.writestats import item_size
from video_stats.model import ItemType, SummaryKind

from benchmark.bill import (
    ITEM_OVERHEAD_BYTES,
    FunctionMonth,
    LogShape,
    StackResources,
    bill_total,
    break_even,
    fixed_lines,
    monthly_bill,
)
from benchmark.figures import PRICES, Prices
from benchmark.projection import (
    DAYS_PER_MONTH,
    EVENTS_PER_DAY_GRID,
    PARTITIONS_GRID,
    PRODUCTION_USERS,
    PRODUCTION_VIDEOS,
    Cell,
    Design,
    Sample,
    project_cell,
)

#: The full bill's grid: events a day (``EVENTS_PER_DAY_GRID`` from 10,000) and partitions.
FULL_BILL_EVENTS_PER_DAY: Final = (10_000, 100_000, *EVENTS_PER_DAY_GRID)
#: Where the break-even is looked for (events a day), and the bisection's steps within the
#: grid's bracket (7 steps: within 2 % across a decade).
BREAK_EVEN_RANGE: Final = (1_000.0, 100_000_000.0)
BREAK_EVEN_STEPS: Final = 7


@dataclass(frozen=True, slots=True)
class BillInputs:
    """What a design's full bill needs beyond its cells: its functions' measured log output
    (by item type) and what its stack holds."""

    logs: Mapping[ItemType, LogShape]
    resources: StackResources


@dataclass(frozen=True, slots=True)
class Production:
    """Settings billed alike for both designs: the production stack's (this project's)."""

    point_in_time_recovery: bool
    log_retention_days: int | None


def summary_storage_bytes(design: Design, partitions: int) -> float:
    """Bytes the design's summaries take at the production shape (every user and video has
    one), items and index copies, each with DynamoDB's 100 bytes of overhead."""
    counts = {SummaryKind.USER: PRODUCTION_USERS, SummaryKind.VIDEO: PRODUCTION_VIDEOS}
    total = 0.0
    for kind, count in counts.items():
        if kind not in design.summaries.items:
            continue
        item = design.summaries.item_after_a_day(kind, partitions)
        size = item_size(item) + ITEM_OVERHEAD_BYTES
        for index in design.summaries.indexes:
            if index.holds(item):
                size += item_size(index.project(item)) + ITEM_OVERHEAD_BYTES
        total += count * size
    return total


def cell_bill(
    cell: Cell,
    design: Design,
    inputs: BillInputs,
    production: Production,
    prices: Prices = PRICES,
    *,
    nonzero_metrics_only: bool = False,
) -> dict[str, float]:
    """``bill.monthly_bill`` of one design in one cell."""
    events = cell.events_per_day * DAYS_PER_MONTH
    gb_seconds = cell.gb_seconds_per_event(design)
    functions = [
        FunctionMonth(
            invocations=load.invocations * events,
            gb_seconds=gb * events,
            log=inputs.logs.get(consumer.item_type),
            memory_mb=design.settings.memory_mb,
        )
        for consumer, load, gb in zip(design.consumers, cell.consumers, gb_seconds, strict=True)
    ]
    return monthly_bill(
        functions=functions,
        wru=cell.wru_per_event(design) * events,
        architecture=design.settings.architecture,
        resources=inputs.resources,
        storage_bytes=summary_storage_bytes(design, cell.partitions),
        pitr=production.point_in_time_recovery,
        log_retention_days=production.log_retention_days,
        prices=prices,
        nonzero_metrics_only=nonzero_metrics_only,
    )


def full_bill(
    sample: Sample,
    designs: Mapping[str, tuple[Design, BillInputs]],
    production: Production,
    *,
    events_per_day: Sequence[int] = FULL_BILL_EVENTS_PER_DAY,
    partitions: Sequence[int] = PARTITIONS_GRID,
) -> dict[str, Any]:
    """results.json's full bill: ``rows`` (one per cell: both totals, their ratio and this
    project's fixed cost), ``lines`` (every line of both bills per cell),
    ``break_even_events_per_day`` per partition count and this project's ``fixed`` cost,
    itemized. ``designs``: ``baseline`` and ``ours``."""
    reference, ref_inputs = designs["baseline"]
    ours, our_inputs = designs["ours"]
    fixed = fixed_lines(our_inputs.resources)

    def bills(per_day: int, count: int) -> tuple[dict[str, float], dict[str, float]]:
        return (
            cell_bill(
                project_cell(sample, reference, per_day, count), reference, ref_inputs, production
            ),
            cell_bill(project_cell(sample, ours, per_day, count), ours, our_inputs, production),
        )

    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for per_day in events_per_day:
        for count in partitions:
            ref_bill, our_bill = bills(per_day, count)
            ref_total, our_total = bill_total(ref_bill), bill_total(our_bill)
            rows.append(
                {
                    "events_per_day": per_day,
                    "partitions": count,
                    "reference_usd_month": round(ref_total, 2),
                    "ours_usd_month": round(our_total, 2),
                    "ratio": round(ref_total / our_total, 2) if our_total else None,
                    "fixed_usd_month": round(bill_total(fixed), 2),
                }
            )
            nonzero = cell_bill(
                project_cell(sample, ours, per_day, count),
                ours,
                our_inputs,
                production,
                nonzero_metrics_only=True,
            )
            lines.append(
                {
                    "events_per_day": per_day,
                    "partitions": count,
                    "reference": {k: round(v, 4) for k, v in ref_bill.items()},
                    "ours": {k: round(v, 4) for k, v in our_bill.items()},
                    # What the metrics would cost if the handlers published no zero values.
                    "ours_custom_metrics_nonzero_only": round(nonzero["custom_metrics"], 4),
                }
            )

    def saving(count: int) -> Callable[[float], float]:
        def at(per_day: float) -> float:
            ref_bill, our_bill = bills(round(per_day), count)
            return bill_total(ref_bill) - bill_total(our_bill)

        return at

    def bracket(count: int) -> tuple[float, float]:
        """The grid's events a day around the first cell where ours is not dearer: the
        bisection then needs a few steps within it (each step simulates a cell)."""
        low, high = BREAK_EVEN_RANGE
        for row in rows:
            if row["partitions"] != count:
                continue
            if row["reference_usd_month"] >= row["ours_usd_month"]:
                return low, float(row["events_per_day"])
            low = float(row["events_per_day"])
        return low, high

    even = {
        str(count): _rounded(break_even(saving(count), *bracket(count), steps=BREAK_EVEN_STEPS))
        for count in partitions
    }
    return {
        "rows": rows,
        "lines": lines,
        "break_even_events_per_day": even,
        "fixed": {k: round(v, 2) for k, v in fixed.items()},
        "fixed_usd_month": round(bill_total(fixed), 2),
    }


def _rounded(value: float | None) -> int | None:
    """Events a day to three significant digits."""
    if value is None:
        return None
    digits = max(0, len(str(int(value))) - 3)
    return int(round(value, -digits))
