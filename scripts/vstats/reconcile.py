"""Recount every summary from the base items and report (or repair) the drift.

    python -m vstats.reconcile                   # exit 1 when any summary drifts
    python -m vstats.reconcile --segments 8 --format json
    python -m vstats.reconcile --repair          # pause the mappings, rewrite, resume

The plain check is exact at a quiescent moment; while records are in flight the summaries they
have not reached show as drift. --live compares each summary with the records it has applied
(it reads the stream as well; records above a summary's own marks count as in flight), so a
busy stack shows no false drift; --repair verifies with the same.

Both also list the summaries the ranking index cannot list right (``GSI2SK`` missing, as on
the summaries an earlier release wrote, or not the bucket of their views; exit 1): --repair
sets their index attributes without pausing anything (the upgrade step: docs/operations.md,
"Upgrading a running stack").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from localcloud.client import ControlClient
from rich.console import Console
from rich.table import Table
from rich.text import Text
from video_stats.model import Counters
from video_stats.store import SummaryStore

from vstats import cli, deployment
from vstats.drift import (
    DEFAULT_SEGMENTS,
    Drift,
    IndexFault,
    compare,
    find_drift,
    read_snapshot,
    settled_faults,
)
from vstats.pipeline import LambdaPipeline, settled_age, stream_arn_of
from vstats.repair import RepairResult, repair
from vstats.stream_reader import AWS_TIMING, LOCAL_TIMING, StreamTiming
from vstats.target_reads import live_check

__all__ = ["Drift", "find_drift", "main"]

PROG = "reconcile"
FIELDS = ("views", "duration", "likes", "dislikes")


def drift_table(
    drifts: Sequence[Drift], title: str, *, repaired: bool = False, limit: int = 50
) -> Table:
    """One row per summary. Drift: a differing counter shows ``actual / recount (difference)``;
    repaired: ``before -> after``."""
    table = Table(title=title, title_justify="left", header_style="bold")
    table.caption = (
        "changed counters: before → after"
        if repaired
        else "differing counters: actual / recount (difference)"
    )
    table.add_column("summary", no_wrap=True)
    for name in FIELDS:
        table.add_column(name, justify="right")
    for drift in drifts[:limit]:
        cells: list[Text | str] = []
        for name in FIELDS:
            actual = getattr(drift.actual, name)
            expected = getattr(drift.expected, name)
            if actual == expected:
                cells.append(Text(f"{actual:,}", style="dim"))
            elif repaired:
                cells.append(Text(f"{actual:,} → {expected:,}", style="bold green"))
            else:
                cells.append(
                    Text(f"{actual:,} / {expected:,} ({actual - expected:+,})", style="bold red")
                )
        label = f"{drift.key.kind.value} {drift.key.id}" + ("" if drift.exists else " (missing)")
        table.add_row(label, *cells)
    if len(drifts) > limit:
        table.caption += f"; {len(drifts) - limit:,} more not shown (--format json lists all)"
    return table


def unranked_lines(faults: Sequence[IndexFault]) -> list[str]:
    """One line per kind of fault: "N summaries not ranked: missing GSI2SK"."""
    kinds = Counter(", ".join(f.problems) for f in faults)
    return [f"{count:,} summaries not ranked: {problems}" for problems, count in kinds.items()]


def check(
    client: Any,
    target: deployment.Deployment,
    *,
    segments: int,
    live: bool,
    timing: StreamTiming,
    log: Callable[[str], None] = lambda _message: None,
) -> tuple[list[Drift], list[IndexFault]]:
    """The drift (plain recount, or --live: as of the records applied) and the index faults,
    from one scan."""
    if live:
        stream_arn = stream_arn_of(client, target.table)
        # On a running stack a summary's records above its own marks may be in flight (no
        # estimated positions), and a drift the scan shows is confirmed by consistent reads.
        checked = live_check(
            client,
            target.client("dynamodbstreams"),
            target.table,
            stream_arn,
            settled_age=settled_age(target.client("lambda"), stream_arn),
            segments=segments,
            timing=timing,
        )
        log(
            f"--live: the scan showed {checked.suspects:,} summaries off their targets, the "
            f"consistent re-read confirmed {len(checked.drifts):,}; "
            f"{checked.applied.stream_records:,} stream records read, "
            f"{checked.applied.capped_shards} open shards read to the safety cap"
        )
        drifts, snapshot = checked.drifts, checked.applied.snapshot
    else:
        snapshot = read_snapshot(client, target.table, segments=segments)
        drifts = compare(snapshot.recount, snapshot.summaries)
    store = SummaryStore(client, target.table, target.index_shards)
    faults = settled_faults(store, snapshot.summaries)
    return drifts, faults


def _plain(counters: Counters) -> dict[str, int]:
    return {name: getattr(counters, name) for name in FIELDS}


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Recount every summary from the base items (parallel scan) and show the "
        "drift; --repair makes the summaries exact while the stack runs.",
    )
    parser.add_argument(
        "--segments",
        type=cli.positive_int_at_most(64, "segments"),
        default=DEFAULT_SEGMENTS,
        help=f"parallel scan segments (default {DEFAULT_SEGMENTS})",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="pause both mappings, rewrite drifting summaries as absolute values, resume",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="compare each summary with the records it has applied (reads the stream too): no "
        "false drift from records in flight while the stack is busy",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--grace",
        type=cli.non_negative_float,
        help="AWS, --repair: seconds to let in-flight invocations finish after disabling "
        "(default: the longest function timeout + 5)",
    )
    parser.add_argument(
        "--timeout",
        type=cli.positive_float,
        default=300.0,
        help="--repair: longest wait for the mappings to change state or drain (default 300 s)",
    )
    deployment.add_arguments(parser, index_shards=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    target = deployment.resolve(args)
    client = target.dynamodb(pool=args.segments + 4)
    console = Console()
    err = Console(stderr=True)
    # An endpoint URL means an emulator on this machine: its stream is immediate, same clock.
    timing = LOCAL_TIMING if target.endpoint_url else AWS_TIMING
    if not args.repair:
        drifts, faults = check(
            client,
            target,
            segments=args.segments,
            live=args.live,
            timing=timing,
            log=lambda message: err.print(f"[dim]{message}[/]"),
        )
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "drift": [d.as_dict() for d in drifts],
                        "unranked": [f.as_dict() for f in faults],
                    }
                )
            )
        else:
            if drifts:
                console.print(drift_table(drifts, f"{len(drifts):,} summaries drift"))
            else:
                console.print(Text("No drift: every summary equals the recount.", style="green"))
            for line in unranked_lines(faults):
                console.print(Text(line, style="bold red"))
            if faults:
                console.print("`make reconcile ARGS=--repair` sets them (no pause needed).")
        return cli.EXIT_FAILURE if drifts or faults else cli.EXIT_OK

    stream_arn = stream_arn_of(client, target.table)
    pipeline = LambdaPipeline(
        target.client("lambda"),
        stream_arn,
        control=ControlClient(target.control_url) if target.control_url else None,
        grace_seconds=args.grace,
        timeout=args.timeout,
        log=lambda message: err.print(f"[dim]{message}[/]"),
    )
    streams = target.client("dynamodbstreams")
    result = repair(
        client,
        streams,
        target.table,
        stream_arn,
        pipeline,
        settled_age=settled_age(pipeline.lambda_client, stream_arn),
        segments=args.segments,
        index_shards=target.index_shards,
        timing=timing,
        log=lambda message: err.print(f"[dim]{message}[/]"),
    )
    remaining: list[Drift] | None = None
    unranked: list[IndexFault] | None = None
    if result.paused or result.unranked_before:  # check the repair, safe while the stack runs
        remaining, unranked = check(
            client,
            target,
            segments=args.segments,
            live=True,
            timing=timing,
            log=lambda message: err.print(f"[dim]{message}[/]"),
        )
    return _report_repair(result, remaining, unranked, args.format, console)


def _report_repair(
    result: RepairResult,
    remaining: list[Drift] | None,
    unranked: list[IndexFault] | None,
    fmt: str,
    console: Console,
) -> int:
    if fmt == "json":
        print(
            json.dumps(
                {
                    "drift_before": [d.as_dict() for d in result.drift_before],
                    "repaired": [
                        {
                            "kind": d.key.kind.value,
                            "id": d.key.id,
                            "before": _plain(d.actual),
                            "after": _plain(d.expected),
                        }
                        for d in result.repaired
                    ],
                    "conflicts": [{"kind": k.kind.value, "id": k.id} for k in result.conflicts],
                    "marked": [{"kind": k.kind.value, "id": k.id} for k in result.marked],
                    "paused_mappings": result.paused,
                    "capped_shards": result.capped_shards,
                    "seconds": round(result.seconds, 3),
                    "remaining_drift": None
                    if remaining is None
                    else [d.as_dict() for d in remaining],
                    "unranked_before": [f.as_dict() for f in result.unranked_before],
                    "ranked": [f.as_dict() for f in result.ranked],
                    "remaining_unranked": None
                    if unranked is None
                    else [f.as_dict() for f in unranked],
                }
            )
        )
        return _repair_exit(result, remaining, unranked)
    for line in unranked_lines(result.unranked_before):
        console.print(line)
    if result.ranked:
        console.print(
            Text(
                f"set the index attributes (GSI2SK, ...) of {len(result.ranked):,} summaries",
                style="bold green",
            )
        )
    if not result.drift_before:
        console.print(Text("No drift: nothing to repair.", style="green"))
    else:
        if result.repaired:
            console.print(
                drift_table(
                    result.repaired,
                    f"repaired {len(result.repaired):,} summaries",
                    repaired=True,
                )
            )
        else:
            console.print(
                Text(
                    "The drift was records still in flight: every summary was exact for the "
                    "records it had applied; nothing rewritten.",
                    style="green",
                )
            )
        console.print(
            f"mappings paused and resumed: {len(result.paused)}; took {result.seconds:.1f} s; "
            f"{result.capped_shards} open shards read to the safety cap"
        )
    if result.marked:
        console.print(
            f"{len(result.marked):,} summaries with the right counters got the mapping's "
            "position as their exactly-once mark (their records were counted on it)"
        )
    if result.conflicts:
        console.print(
            Text(
                f"{len(result.conflicts)} summaries changed during the repair and were left "
                "alone: run --repair again.",
                style="bold red",
            )
        )
    if remaining:
        console.print(drift_table(remaining, "still drifting after the repair"))
    elif remaining is not None and result.drift_before:
        console.print(Text("Verified: every summary is exact.", style="green"))
    for line in unranked_lines(unranked or []):
        console.print(Text(f"still {line}", style="bold red"))
    if result.unranked_before and unranked == []:
        console.print(Text("Verified: every summary is ranked.", style="green"))
    return _repair_exit(result, remaining, unranked)


def _repair_exit(
    result: RepairResult, remaining: list[Drift] | None, unranked: list[IndexFault] | None
) -> int:
    return cli.EXIT_FAILURE if result.conflicts or remaining or unranked else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
