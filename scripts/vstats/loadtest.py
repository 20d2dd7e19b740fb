"""Load test: writes view and vote items at a target rate, waits until the pipeline has
drained, and verifies that every summary it touched changed by exactly what it wrote.

    python -m vstats.loadtest --events 5000 --rate 200
    python -m vstats.loadtest --duration 60 --rate 100 --writers 8 --users 50 --videos 500
    python -m vstats.loadtest --events 2000 --faults fail=0.1,kill=0.05,duplicate=0.05
    python -m vstats.loadtest --events 2000 --faults throttle=0.5,final_records=1,skew=3
    python -m vstats.loadtest --events 1000 --seed 7 --json report.json

The command line; the run is ``vstats.load_run`` (reusable:
``LoadTest(client, table, LoadTestConfig(...)).run()`` returns a ``Report``), what it expects
``vstats.expectation``, the report ``vstats.load_report``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.client import ControlClient
from rich.console import Console
from rich.table import Table
from video_stats.model import Counters

from vstats import cli, deployment
from vstats.generator import DEFAULT_MIX, MAX_ENTITIES, parse_mix
from vstats.load_report import Report
from vstats.load_run import LoadTest, LoadTestConfig
from vstats.local_endpoint import NO_FAULTS, parse_faults
from vstats.pipeline import LambdaPipeline, stream_arn_of

PROG = "loadtest"


# --- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Write view and vote events at a target rate, wait until the pipeline has "
        "drained, and verify every touched summary.",
    )
    amount = parser.add_argument_group("how much")
    amount.add_argument(
        "--events",
        type=cli.positive_int,
        help="events to write (default 1000 without --duration; with it, whichever ends first)",
    )
    amount.add_argument("--duration", type=cli.positive_float, help="seconds to write for")
    amount.add_argument(
        "--rate",
        type=cli.positive_float,
        default=100.0,
        help="target events per second (default 100)",
    )
    amount.add_argument(
        "--max-rate", action="store_true", help="no target rate: as fast as the writers go"
    )
    amount.add_argument(
        "--writers",
        type=cli.positive_int_at_most(256, "writers"),
        default=4,
        help="concurrent writers (default 4)",
    )
    shape = parser.add_argument_group("what")
    shape.add_argument(
        "--users",
        type=cli.positive_int_at_most(MAX_ENTITIES),
        default=100,
        help="users (default 100)",
    )
    shape.add_argument(
        "--videos",
        type=cli.positive_int_at_most(MAX_ENTITIES),
        default=1000,
        help="videos (default 1000)",
    )
    shape.add_argument(
        "--skew",
        type=cli.non_negative_float,
        default=1.0,
        help="Zipf exponent of user and video popularity; 0 = uniform (default 1.0)",
    )
    shape.add_argument(
        "--mix",
        type=cli.value_type(parse_mix),
        default=parse_mix(DEFAULT_MIX),
        help=f"relative weights of the kinds of event (default {DEFAULT_MIX})",
    )
    shape.add_argument(
        "--seed", type=int, help="random seed: a fixed seed repeats the same operations"
    )
    shape.add_argument(
        "--id-prefix",
        type=_prefix,
        default="",
        help="prefix of generated user and video ids (isolates runs; default none)",
    )
    check = parser.add_argument_group("checking")
    check.add_argument(
        "--probe-interval",
        type=cli.non_negative_float,
        default=1.0,
        help="seconds between delay probes, 0 = none (default 1)",
    )
    check.add_argument(
        "--drain-timeout",
        type=cli.positive_float,
        help="longest wait for the pipeline to drain, seconds (default: the mappings' batching "
        "window + 300)",
    )
    check.add_argument(
        "--settle",
        type=cli.positive_float,
        help="AWS: summaries unchanged this long count as drained (default: the mappings' "
        "batching window + 20 s; records wait up to a window before Lambda invokes)",
    )
    check.add_argument(
        "--faults",
        type=cli.value_type(parse_faults),
        help="local only: fault injection during the run, NAME=VALUE,... e.g. "
        "fail=0.1,kill=0.05,duplicate=0.05,replay=0.05,throttle=0.5,final_records=1,skew=3,"
        "bisect_order=1,gsi_lag=2,empty_pages=2[,seed=N] (or the full names of "
        "scripts/localcloud/faults.py); the settings before the run are restored at the end",
    )
    check.add_argument("--json", type=_json_path, metavar="FILE", help="also write the report here")
    deployment.add_arguments(parser)
    return parser


def _prefix(text: str) -> str:
    if "#" in text or text != text.strip():
        raise argparse.ArgumentTypeError("the id prefix must not contain '#' or spaces")
    return text


def _json_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write a report to {text!r}")
    return path


def config_from_args(args: argparse.Namespace, batching_window: float = 0.0) -> LoadTestConfig:
    """The run's settings; the waits not given default to the deployed ``batching_window``
    plus a margin, since a record waits up to a window in Lambda before it is applied."""
    events = args.events
    if events is None and args.duration is None:
        events = 1000
    return LoadTestConfig(
        events=events,
        duration=args.duration,
        rate=None if args.max_rate else args.rate,
        writers=args.writers,
        users=args.users,
        videos=args.videos,
        skew=args.skew,
        mix=args.mix,
        seed=args.seed,
        id_prefix=args.id_prefix,
        probe_interval=args.probe_interval,
        drain_timeout=(
            args.drain_timeout if args.drain_timeout is not None else batching_window + 300.0
        ),
        settle_seconds=args.settle if args.settle is not None else batching_window + 20.0,
        probe_timeout=batching_window + 120.0,
        faults=args.faults,
    )


def render_report(report: Report) -> Table:
    table = Table(title="load test report", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(report.events_by_kind.items()))
    stopped = " [yellow]stopped early (Ctrl-C)[/]" if report.interrupted else ""
    written = f"{report.events:,}" + (f" ({kinds})" if kinds else "")
    table.add_row("events written", written + stopped)
    if report.failed_writes:
        table.add_row("failed writes", f"[red]{report.failed_writes:,}[/]: {report.first_error}")
    target = f" (target {report.target_rate:g}/s)" if report.target_rate else ""
    table.add_row("achieved rate", f"{report.achieved_rate:,.1f} events/s{target}")
    table.add_row("time to drain", seconds(report.drain_seconds))
    for q in (50, 95, 99):
        table.add_row(f"write-to-summary p{q}", seconds(report.delay(q)))
    probes = f"{report.probes:,}"
    if report.probe_timeouts:
        probes += f" ([yellow]{report.probe_timeouts} timed out[/])"
    table.add_row("probes", probes)
    if report.local is not None:
        local = report.local
        table.add_row("invocations (local)", _count(local.get("invocations")))
        table.add_row("summary writes (local)", _count(local.get("summary_writes")))
        extra = [
            f"{name.replace('_', ' ')} {_count(local.get(name))}"
            for name in ("function_errors", "retries", "records_to_failure_destination")
            if local.get(name)
        ]
        if extra:
            table.add_row("engine (local)", ", ".join(extra))
    if report.faults is not None:
        named = {k: v for k, v in report.faults.items() if NO_FAULTS.get(k, v) != v}
        table.add_row("faults", ", ".join(f"{k}={v}" for k, v in named.items()) or "none")
    table.add_row("touched summaries", f"{report.touched_summaries:,}")
    if report.interrupted and not report.verified:
        verdict = "[yellow]not verified (interrupted)[/]"
    elif not report.verified:
        verdict = f"[red]not drained within the timeout: {len(report.mismatches):,} differ[/]"
    elif report.mismatches:
        verdict = f"[red]{len(report.mismatches):,} MISMATCHES[/]"
    else:
        verdict = "[green]every touched summary is exact[/]"
    table.add_row("verification", verdict)
    return table


def render_mismatches(report: Report, limit: int = 20) -> Table:
    table = Table(title="mismatches (expected vs actual)", title_justify="left")
    for column in ("summary", "baseline", "expected", "actual"):
        table.add_column(column)

    def text(c: Counters) -> str:
        return f"v={c.views} d={c.duration} l={c.likes} dl={c.dislikes}"

    for m in report.mismatches[:limit]:
        table.add_row(
            f"{m.key.kind.value} {m.key.id}", text(m.baseline), text(m.expected), text(m.actual)
        )
    return table


def _count(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    target = deployment.resolve(args)
    if args.faults is not None and not target.is_local:
        raise cli.UsageError(
            "--faults needs the local endpoint's control API: set LOCALCLOUD_CONTROL_URL or "
            "--control-url (fault injection does not exist on AWS)"
        )
    console = Console(stderr=True)
    client = target.dynamodb(pool=args.writers + 4)
    stream_arn = stream_arn_of(client, target.table)  # fail fast, before any output
    window = LambdaPipeline(target.client("lambda"), stream_arn).longest_batching_window()
    config = config_from_args(args, window)
    control = ControlClient(target.control_url) if target.control_url else None
    test = LoadTest(
        client,
        target.table,
        config,
        control=control,
        console=console,
    )
    where = target.endpoint_url or "AWS"
    console.print(
        f"load test on [bold]{target.table}[/] at {where}: "
        + (f"{config.events:,} events" if config.events else f"{config.duration:g} s")
        + (f" at {config.rate:g}/s" if config.rate else " at full speed")
        + f", {config.writers} writers, started {datetime.now(UTC):%H:%M:%S} UTC; "
        f"batching window {window:g} s, so summaries trail writes by up to that long"
    )
    report = test.run()
    out = Console()
    out.print(render_report(report))
    if report.mismatches:
        out.print(render_mismatches(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if report.interrupted and not report.verified:
        return cli.EXIT_INTERRUPTED
    return cli.EXIT_OK if report.ok else cli.EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
