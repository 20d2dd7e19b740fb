"""``python -m benchmark``: the one entry point of the benchmark (``make bench``,
``make bench-handler``).

    python -m benchmark designs                   # both designs, both workloads
    python -m benchmark designs --quick           # small workloads, a smoke test
    python -m benchmark designs --events-large 20000 --rate 60
    python -m benchmark designs --quick --partitions 4 --rotation-seconds 45   # production shape
    python -m benchmark designs --batching-window 60   # measure at a longer window
    python -m benchmark designs --strict          # exit 1 when a target is missed
    python -m benchmark designs --readme-table    # the tables and targets from results.json
    python -m benchmark designs --write-docs      # ... written into docs/benchmark.md
    python -m benchmark handler                   # parse-and-merge throughput of the handlers
    python -m benchmark engine                    # is the local engine the bottleneck?
    python -m benchmark marks                     # summary item bytes and WRU per update (§6)

``designs``: the blog's reference design against this project, side by side, on a private
local endpoint: invocations, summary writes and WRU per event, delay, exactness and the monthly
bill, each with its lower bound. Writes build/bench/{report.md,chart.png,results.json}.
How: start a private endpoint (``benchmark.endpoint``), deploy ``bench/reference`` (the
reference design: batch size 1, the blog's filters, one transaction per record) and the
repository's root module with its production defaults but the batching window
(``--batching-window``, default 5 s like the local target: the runs stay short; the
projections use the production window, read from the module with ``terraform console``),
each with its own Terraform data dir and state under build/bench/tf/; then run the load test
with a fixed seed on each configuration in turn (a large Zipf key space and the blog's tiny
one), every run starting from a drained pipeline and reset counters; finally destroy both and
stop the endpoint, also after a failure or Ctrl-C (``benchmark.run``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from rich.console import Console
from vstats import cli

from benchmark import engine_bench, handler, mark_budget, options
from benchmark.deploy import REPO_ROOT
from benchmark.report import docs_section, with_docs_table
from benchmark.results import load_results
from benchmark.run import Bench

PROG = "benchmark"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog=PROG, description="The benchmarks of video-stats.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    designs = commands.add_parser(
        "designs",
        help="the reference design against this project (make bench)",
        description="Benchmark the blog's reference design against this project on a private "
        "local endpoint; writes report.md, chart.png and results.json.",
    )
    options.add_arguments(designs)
    handler.add_arguments(
        commands.add_parser(
            "handler",
            help="parse-and-merge throughput of the handler code (make bench-handler)",
            description=handler.__doc__.splitlines()[0] if handler.__doc__ else None,
        )
    )
    engine_bench.add_arguments(
        commands.add_parser(
            "engine",
            help="raw write rate against the local engine's delivery rate",
            description=engine_bench.__doc__.splitlines()[0] if engine_bench.__doc__ else None,
        )
    )
    mark_budget.add_arguments(
        commands.add_parser(
            "marks",
            help="a summary item's bytes and WRU per update after a day of shard rotation "
            "(make bench-marks)",
            description="A summary item's bytes and the WRU of one update after a simulated "
            "day of shard rotation, design lever by lever (docs/design.md §6).",
        )
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    if args.command == "handler":
        return handler.run(args)
    if args.command == "engine":
        return engine_bench.run(args)
    if args.command == "marks":
        return mark_budget.run(args)
    return _designs(args)


def _designs(args: argparse.Namespace) -> int:
    if args.readme_table or args.write_docs:
        table = docs_section(load_results(args.results))
        if not args.write_docs:
            print(table)
            return cli.EXIT_OK
        docs = REPO_ROOT / "docs" / "benchmark.md"
        try:
            docs.write_text(with_docs_table(docs.read_text(encoding="utf-8"), table), "utf-8")
        except ValueError as err:
            raise cli.UsageError(f"{docs.relative_to(REPO_ROOT)}: {err}") from None
        print(f"wrote the tables of {args.results} into {docs.relative_to(REPO_ROOT)}")
        return cli.EXIT_OK
    chosen = options.options_from_args(args)
    if "ours" in chosen.configs and not options.OURS_ZIP.is_file():
        raise cli.UsageError(
            f"{options.OURS_ZIP.relative_to(REPO_ROOT)} is missing: run 'make package'"
        )
    if shutil.which("terraform") is None:
        raise cli.ToolError("terraform not found on PATH: install Terraform >= 1.7")
    _terminate_on_sigterm()
    outcome = Bench(chosen, Console(stderr=True)).run()
    # Plain print: a console would wrap the Markdown table.
    print(outcome.summary)
    for name, path in (
        ("report", outcome.report_path),
        ("chart", outcome.chart_path),
        ("results", outcome.results_path),
    ):
        print(f"{name}: {path}")
    # A completed measurement succeeds; missed targets fail it only when asked (--strict).
    if chosen.strict and not outcome.targets_met:
        print("targets missed (--strict)", file=sys.stderr)
        return cli.EXIT_FAILURE
    return cli.EXIT_OK


def _terminate_on_sigterm() -> None:
    """SIGTERM takes the Ctrl-C path, so the stacks are destroyed and the endpoint stopped."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


if __name__ == "__main__":
    sys.exit(main())
