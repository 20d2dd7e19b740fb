"""Recount every summary from the base items and report (or repair) the drift.

    python -m vstats.reconcile                   # exit 1 when any summary drifts
    python -m vstats.reconcile --segments 8 --format json
    python -m vstats.reconcile --repair          # pause the mappings, rewrite, resume

The plain check is exact at a quiescent moment; while records are in flight the summaries they
have not reached show as drift. --live compares each summary with the records it has applied
(it reads the stream as well), so a busy stack shows no false drift; --repair uses the same.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from localcloud.client import ControlClient
from rich.console import Console
from rich.table import Table
from rich.text import Text
from video_stats.model import Counters

from vstats import cli, deployment
from vstats.drift import DEFAULT_SEGMENTS, Drift, find_drift
from vstats.repair import (
    AWS_TIMING,
    LOCAL_TIMING,
    LambdaPipeline,
    RepairResult,
    live_drift,
    repair,
    stream_arn_of,
)

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
        if args.live:
            drifts = live_drift(
                client,
                target.client("dynamodbstreams"),
                target.table,
                stream_arn_of(client, target.table),
                segments=args.segments,
                timing=timing,
            )
        else:
            drifts = find_drift(client, target.table, segments=args.segments)
        if args.format == "json":
            print(json.dumps({"drift": [d.as_dict() for d in drifts]}))
        elif drifts:
            console.print(drift_table(drifts, f"{len(drifts):,} summaries drift"))
        else:
            console.print(Text("No drift: every summary equals the recount.", style="green"))
        return cli.EXIT_FAILURE if drifts else cli.EXIT_OK

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
        segments=args.segments,
        index_shards=target.index_shards,
        timing=timing,
        log=lambda message: err.print(f"[dim]{message}[/]"),
    )
    remaining: list[Drift] | None = None
    if result.paused:  # check the repair, safely while the stack runs
        remaining = live_drift(
            client, streams, target.table, stream_arn, segments=args.segments, timing=timing
        )
    return _report_repair(result, remaining, args.format, console)


def _report_repair(
    result: RepairResult, remaining: list[Drift] | None, fmt: str, console: Console
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
                    "paused_mappings": result.paused,
                    "seconds": round(result.seconds, 3),
                    "remaining_drift": None
                    if remaining is None
                    else [d.as_dict() for d in remaining],
                }
            )
        )
    elif not result.drift_before:
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
        if result.conflicts:
            console.print(
                Text(
                    f"{len(result.conflicts)} summaries changed during the repair and were left "
                    "alone: run --repair again.",
                    style="bold red",
                )
            )
        console.print(
            f"mappings paused and resumed: {len(result.paused)}; took {result.seconds:.1f} s"
        )
        if remaining:
            console.print(drift_table(remaining, "still drifting after the repair"))
        elif remaining is not None:
            console.print(Text("Verified: every summary is exact.", style="green"))
    return cli.EXIT_FAILURE if result.conflicts or remaining else cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
