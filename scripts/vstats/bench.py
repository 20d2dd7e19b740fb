"""``make bench``: the blog's reference design against this project, side by side, on a private
local endpoint: invocations, summary writes and WRU per event, delay, exactness and the monthly
bill, each with its lower bound. Writes build/bench/{report.md,chart.png,results.json}.

    python -m vstats.bench                           # both designs, both workloads (~10 min)
    python -m vstats.bench --quick                   # small workloads, a smoke test (~3 min)
    python -m vstats.bench --events-large 20000 --rate 60
    python -m vstats.bench --readme-table            # README summary table from results.json

How: start a private endpoint (``vstats.bench_endpoint``), deploy ``bench/reference`` (the
reference design: batch size 1, the blog's filters, one transaction per record) and the
repository's root module with its production defaults, each with its own Terraform data dir
and state under build/bench/tf/; then run the load test's generator with a fixed seed on each
configuration in turn (a large Zipf key space and the blog's tiny one), every run starting
from a drained pipeline and reset counters; finally destroy both and stop the endpoint, also
after a failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from vstats import cli
from vstats.bench_deploy import REPO_ROOT
from vstats.bench_math import (
    DurationModel,
    FunctionSettings,
    RunCounts,
    figures,
    parse_duration_model,
    settings_dict,
)
from vstats.bench_report import (
    CONFIGS,
    WORKLOADS,
    Workload,
    readme_table,
    render_report,
    write_chart,
)

PROG = "bench"
DEFAULT_OUTPUT = REPO_ROOT / "build" / "bench"
DEFAULT_RESULTS = DEFAULT_OUTPUT / "results.json"
OURS_ZIP = REPO_ROOT / "build" / "lambda.zip"
REFERENCE_SOURCE = REPO_ROOT / "bench" / "reference" / "lambda_src"
DEFAULT_SEED = 20220111  # the blog's publication date
TEARDOWN_RESERVE = 90.0  # seconds kept for destroy + endpoint stop
DEFAULT_DURATIONS = {"baseline": "10+15", "ours": "30+0.5"}


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
    probe_interval: float = 1.0


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Benchmark the blog's reference design against this project on a private "
        "local endpoint; writes report.md, chart.png and results.json.",
    )
    parser.add_argument(
        "--readme-table",
        action="store_true",
        help="print the README summary table (Markdown) from --results and exit",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help="results.json to read for --readme-table (default build/bench/results.json)",
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
        "endpoint sustains about 60 with this project's larger batches of summary writes)",
    )
    sizes.add_argument("--writers", type=_writers, default=4, help="concurrent writers (default 4)")
    sizes.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )
    money = parser.add_argument_group(
        "cost assumptions (the local engine measures no AWS durations)"
    )
    for key, default in DEFAULT_DURATIONS.items():
        money.add_argument(
            f"--{key}-duration",
            type=_duration,
            default=parse_duration_model(default),
            metavar="MS[+MS_PER_WRITE]",
            help=f"billed ms per invocation of {key} (default {default}: fixed + per summary "
            "write request)",
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
    return parser


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


def _writers(text: str) -> int:
    value = cli.positive_int(text)
    if value > 64:
        raise argparse.ArgumentTypeError(f"at most 64 writers, got {value}")
    return value


def _duration(text: str) -> DurationModel:
    try:
        return parse_duration_model(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        durations={"baseline": args.baseline_duration, "ours": args.ours_duration},
    )


# --- entry point ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    if args.readme_table:
        print(readme_table(_load_results(args.results)))
        return cli.EXIT_OK
    options = options_from_args(args)
    if "ours" in options.configs and not OURS_ZIP.is_file():
        raise cli.UsageError(f"{OURS_ZIP.relative_to(REPO_ROOT)} is missing: run 'make package'")
    if shutil.which("terraform") is None:
        raise cli.ToolError("terraform not found on PATH: install Terraform >= 1.7")
    _terminate_on_sigterm()
    # Imported here: moto and boto3 are only needed for a real run.
    from vstats.bench_run import Bench  # noqa: PLC0415

    console = Console(stderr=True)
    bench = Bench(options, console)
    outcome = bench.run()
    # Plain print: a console would wrap the Markdown table.
    print(outcome.summary)
    for name, path in (
        ("report", outcome.report_path),
        ("chart", outcome.chart_path),
        ("results", outcome.results_path),
    ):
        print(f"{name}: {path}")
    return cli.EXIT_OK if outcome.targets_met else cli.EXIT_FAILURE


def _load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise cli.UsageError(f"{path} not found: run 'make bench' first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise cli.ToolError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not any(k in data for k in CONFIGS):
        raise cli.ToolError(f"{path} is not a bench results file")
    return data


def _terminate_on_sigterm() -> None:
    """SIGTERM takes the Ctrl-C path, so the stacks are destroyed and the endpoint stopped."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@dataclass(slots=True)
class Outcome:
    summary: str
    report_path: Path
    chart_path: Path
    results_path: Path
    targets_met: bool
    extra: dict[str, Any] = field(default_factory=dict)


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


if __name__ == "__main__":
    sys.exit(main())
