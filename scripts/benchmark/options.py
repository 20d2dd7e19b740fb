"""``python -m benchmark designs``: its options (the workloads, the two configurations, the cost
assumptions) and where its inputs and outputs live."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vstats import cli

from benchmark.deploy import REPO_ROOT
from benchmark.figures import DurationModel, parse_duration_model
from benchmark.projection import MAX_BATCHING_WINDOW_SECONDS
from benchmark.workloads import CONFIGS, WORKLOADS, Workload

DEFAULT_OUTPUT = REPO_ROOT / "build" / "bench"
DEFAULT_RESULTS = DEFAULT_OUTPUT / "results.json"
OURS_ZIP = REPO_ROOT / "build" / "lambda.zip"
REFERENCE_SOURCE = REPO_ROOT / "bench" / "reference" / "lambda_src"
DEFAULT_SEED = 20220111  # the blog's publication date
TEARDOWN_RESERVE = 90.0  # seconds kept for destroy + endpoint stop
DEFAULT_DURATIONS = {"baseline": "10+15", "ours": "30"}
DEFAULT_BATCHING_WINDOW = 5  # seconds: the window `make deploy` uses on the local target


@dataclass(frozen=True, slots=True)
class Options:
    workloads: tuple[Workload, ...]
    configs: tuple[str, ...]
    rate: float
    writers: int
    seed: int
    output_dir: Path
    time_budget: float
    durations: dict[str, DurationModel]
    #: Add the measured CPU time per write request and record to ``durations["ours"]``.
    measure_cpu: bool = True
    strict: bool = False  # a missed target fails the command
    probe_interval: float = 1.0
    projection_operations: int = 100_000  # generator operations simulated for the projection
    partitions: int = 1  # open shards of each stream on the private endpoint
    rotation_seconds: float = 0.0  # a shard closes (a child continues) after this long; 0 never
    batching_window: int = DEFAULT_BATCHING_WINDOW  # this project's window in the measured run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m benchmark designs``."""
    parser.add_argument(
        "--readme-table",
        action="store_true",
        help="print the summary tables (Markdown) of docs/benchmark.md from --results and exit",
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="write that table into docs/benchmark.md (between its bench-table markers) and exit",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="results.json to read for --readme-table / --write-docs "
        "(default build/bench/results.json)",
    )
    sizes = parser.add_argument_group("workloads")
    sizes.add_argument(
        "--events-large",
        type=cli.positive_int,
        default=WORKLOADS["large"].events,
        help=f"events of the large workload (default {WORKLOADS['large'].events:,})",
    )
    sizes.add_argument(
        "--events-tiny",
        type=cli.positive_int,
        default=WORKLOADS["tiny"].events,
        help=f"events of the tiny workload (default {WORKLOADS['tiny'].events:,})",
    )
    sizes.add_argument(
        "--quick", action="store_true", help="1,000 and 500 events: a smoke test of the bench"
    )
    sizes.add_argument(
        "--workloads",
        type=_names(tuple(WORKLOADS)),
        default=tuple(WORKLOADS),
        help="comma-separated subset of: large,tiny",
    )
    sizes.add_argument(
        "--configs",
        type=_names(CONFIGS),
        default=CONFIGS,
        help="comma-separated subset of: baseline,ours",
    )
    sizes.add_argument(
        "--rate",
        type=cli.positive_float,
        default=80.0,
        help="target events per second offered to both designs (default 80; the local "
        "endpoint serializes DynamoDB requests, so the writers may reach less: "
        "docs/benchmark.md gives the rates a run achieved)",
    )
    sizes.add_argument(
        "--writers",
        type=cli.positive_int_at_most(64, "writers"),
        default=4,
        help="concurrent writers (default 4)",
    )
    sizes.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )
    money = parser.add_argument_group(
        "cost assumptions (the local engine measures no AWS durations)"
    )
    money.add_argument(
        "--baseline-duration",
        type=cli.value_type(parse_duration_model),
        default=parse_duration_model(DEFAULT_DURATIONS["baseline"]),
        metavar="MS[+MS_PER_WRITE]",
        help=f"billed ms per invocation of the reference design (default "
        f"{DEFAULT_DURATIONS['baseline']}: fixed + per summary write request, its transaction)",
    )
    money.add_argument(
        "--ours-duration",
        type=cli.value_type(parse_duration_model),
        default=None,
        metavar="MS[+MS_PER_WRITE]",
        help=f"billed ms per invocation of this project (default {DEFAULT_DURATIONS['ours']} "
        "ms + the CPU time per summary write request and per record that bench-handler "
        "measures on one core, divided by the function's share of a vCPU)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target is missed (default: report the targets, exit 0 once the "
        "measurement completed)",
    )
    stream = parser.add_argument_group(
        "stream shape (the private endpoint's; the exact write lower bound needs one shard)"
    )
    stream.add_argument(
        "--partitions",
        type=cli.positive_int_at_most(64, "partitions"),
        default=1,
        help="open shards per stream, e.g. 4 or 16 for the production shape (default 1)",
    )
    stream.add_argument(
        "--rotation-seconds",
        type=cli.non_negative_float,
        default=0.0,
        help="close every shard after this many seconds, a child continuing it, as DynamoDB "
        "Streams does every few hours (default 0: never)",
    )
    stream.add_argument(
        "--batching-window",
        type=_batching_window,
        default=DEFAULT_BATCHING_WINDOW,
        metavar="SECONDS",
        help="this project's maximum batching window in the measured runs, 0 to "
        f"{MAX_BATCHING_WINDOW_SECONDS} (default {DEFAULT_BATCHING_WINDOW}, the local target's "
        "window); the projection uses the root module's production default instead, read "
        "from the Terraform configuration",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"where everything goes (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    run.add_argument(
        "--time-budget",
        type=_budget,
        default=900.0,
        help="seconds for the whole bench; later runs are skipped past it (default 900)",
    )


def _names(known: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"{text!r}: choose from {', '.join(known)} (comma-separated)"
            )
        return tuple(n for n in known if n in names)

    return parse


def _batching_window(text: str) -> int:
    value = cli.non_negative_int(text)
    if value > MAX_BATCHING_WINDOW_SECONDS:
        raise argparse.ArgumentTypeError(
            f"a stream mapping's batching window is at most {MAX_BATCHING_WINDOW_SECONDS} s, "
            f"got {value}"
        )
    return value


def _budget(text: str) -> float:
    value = cli.positive_float(text)
    if value < 120:
        raise argparse.ArgumentTypeError(f"the time budget must be at least 120 s, got {text}")
    return value


def options_from_args(args: argparse.Namespace) -> Options:
    events = {"large": args.events_large, "tiny": args.events_tiny}
    if args.quick:
        events = {"large": 1000, "tiny": 500}
    workloads = tuple(replace(WORKLOADS[key], events=events[key]) for key in args.workloads)
    output_dir = args.output_dir.resolve()
    if output_dir.exists() and not output_dir.is_dir():
        raise cli.UsageError(f"--output-dir {args.output_dir} is not a directory")
    return Options(
        workloads=workloads,
        configs=args.configs,
        rate=args.rate,
        writers=args.writers,
        seed=args.seed,
        output_dir=output_dir,
        time_budget=args.time_budget,
        durations={
            "baseline": args.baseline_duration,
            "ours": args.ours_duration or parse_duration_model(DEFAULT_DURATIONS["ours"]),
        },
        measure_cpu=args.ours_duration is None,
        strict=args.strict,
        projection_operations=20_000 if args.quick else 100_000,
        partitions=args.partitions,
        rotation_seconds=args.rotation_seconds,
        batching_window=args.batching_window,
    )
