"""Load test: writes view and vote items at a target rate, waits until the pipeline has
drained, and verifies that every summary it touched changed by exactly what it wrote.

    python -m vstats.loadtest --events 5000 --rate 200
    python -m vstats.loadtest --duration 60 --rate 100 --writers 8 --users 50 --videos 500
    python -m vstats.loadtest --events 2000 --faults fail=0.1,kill=0.05,duplicate=0.05
    python -m vstats.loadtest --events 1000 --seed 7 --json report.json

How it knows what to expect: every write asks DynamoDB for the item it replaced
(``ReturnValues=ALL_OLD``), so its effect on the summaries is exactly
``contribution(new) - contribution(old)`` whatever the table held before. The touched summaries
are read before the run (baseline) and must end at baseline + the sum of those effects.

Reusable: ``LoadTest(client, table, LoadTestConfig(...)).run()`` returns a ``Report``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from localcloud.lineage import run_figures
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind

from vstats import cli, deployment
from vstats.cli import aws_error_message
from vstats.control import LocalControl, counters_delta, parse_faults
from vstats.generator import (
    DEFAULT_MIX,
    MAX_ENTITIES,
    EventGenerator,
    Operation,
    parse_mix,
    write_effect,
)
from vstats.tables import get_summaries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PROG = "loadtest"
PROBE_ID = "probe"
PRE_DRAIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class LoadTestConfig:
    events: int | None = 1000
    duration: float | None = None
    rate: float | None = 100.0  # events per second; None: as fast as the writers go
    writers: int = 4
    users: int = 100
    videos: int = 1000
    skew: float = 1.0
    mix: Mapping[str, float] | None = None
    seed: int | None = None
    id_prefix: str = ""
    probe_interval: float = 1.0  # seconds between probe events; 0 disables probes
    probe_timeout: float = 120.0
    drain_timeout: float = 300.0
    settle_seconds: float = 20.0  # AWS: summaries unchanged this long count as drained
    poll_interval: float | None = None  # None: 0.1 s locally, 1 s on AWS
    faults: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Mismatch:
    key: SummaryKey
    baseline: Counters
    expected: Counters
    actual: Counters

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind.value,
            "id": self.key.id,
            "baseline": asdict(self.baseline),
            "expected": asdict(self.expected),
            "actual": asdict(self.actual),
        }


@dataclass(slots=True)
class Report:
    table: str
    events: int = 0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    failed_writes: int = 0
    first_error: str | None = None
    target_rate: float | None = None
    write_seconds: float = 0.0
    drain_seconds: float | None = None
    drained: bool = False
    verified: bool = False
    interrupted: bool = False
    touched_summaries: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    probes: int = 0
    probe_timeouts: int = 0
    delays: list[float] = field(default_factory=list)
    faults: dict[str, Any] | None = None
    local: dict[str, Any] | None = None
    seed: int | None = None

    @property
    def achieved_rate(self) -> float:
        return self.events / self.write_seconds if self.write_seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.verified and not self.mismatches and not self.failed_writes

    def delay(self, q: float) -> float | None:
        return percentile(self.delays, q)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "events": self.events,
            "events_by_kind": dict(sorted(self.events_by_kind.items())),
            "failed_writes": self.failed_writes,
            "first_error": self.first_error,
            "target_rate": self.target_rate,
            "achieved_rate": round(self.achieved_rate, 2),
            "write_seconds": round(self.write_seconds, 3),
            "drain_seconds": _round(self.drain_seconds),
            "drained": self.drained,
            "verified": self.verified,
            "interrupted": self.interrupted,
            "touched_summaries": self.touched_summaries,
            "mismatches": len(self.mismatches),
            "mismatched_summaries": [m.as_dict() for m in self.mismatches[:1000]],
            "probes": self.probes,
            "probe_timeouts": self.probe_timeouts,
            "delay_p50": _round(self.delay(50)),
            "delay_p95": _round(self.delay(95)),
            "delay_p99": _round(self.delay(99)),
            "faults": self.faults,
            "local": self.local,
            "seed": self.seed,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Pacer:
    """Hands out send times for a target rate. A writer that fell behind by more than a
    second does not burst to catch up: the schedule slips instead."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = clock()

    def slot(self) -> float:
        now = self._clock()
        if not self._interval:
            return now
        self._next = max(self._next, now - 1.0)
        slot = self._next
        self._next += self._interval
        return slot


class Expectation:
    """Baseline plus the sum of the effects of every write, per summary (thread-safe)."""

    def __init__(self, baseline: Mapping[SummaryKey, Counters]) -> None:
        self._lock = threading.Lock()
        self.baseline = dict(baseline)
        self.delta: dict[SummaryKey, Counters] = {}

    def add(self, effect: Mapping[SummaryKey, Counters]) -> None:
        with self._lock:
            for key, counters in effect.items():
                self.delta[key] = self.delta.get(key, model.ZERO) + counters

    def touched(self) -> list[SummaryKey]:
        with self._lock:
            return list(self.delta)

    def expected(self, key: SummaryKey) -> Counters:
        with self._lock:
            return self.baseline.get(key, model.ZERO) + self.delta.get(key, model.ZERO)

    def mismatches(self, actual: Mapping[SummaryKey, Counters]) -> list[Mismatch]:
        result = []
        for key in self.touched():
            expected = self.expected(key)
            got = actual.get(key, model.ZERO)
            if got != expected:
                result.append(Mismatch(key, self.baseline.get(key, model.ZERO), expected, got))
        return sorted(result, key=lambda m: (m.key.kind.value, m.key.id))


ProgressHook = Callable[[int, float], None]  # (events written so far, seconds since start)


class LoadTest:
    """One load test run against ``table``; ``control`` is the local engine (None on AWS)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        config: LoadTestConfig,
        *,
        control: LocalControl | None = None,
        generator: EventGenerator | None = None,
        console: Console | None = None,
    ) -> None:
        self.client = client
        self.table = table
        self.config = config
        self.control = control
        self.console = console or Console(stderr=True, quiet=True)
        self.generator = generator or EventGenerator(
            users=config.users,
            videos=config.videos,
            skew=config.skew,
            mix=config.mix,
            seed=config.seed,
            id_prefix=config.id_prefix,
        )
        self.probe_key = SummaryKey(SummaryKind.VIDEO, f"{config.id_prefix}{PROBE_ID}")
        self._gen_lock = threading.Lock()
        self._stop = threading.Event()
        self._writers_done = threading.Event()
        self._pacer = Pacer(config.rate)
        self._issued = 0
        self._deadline: float | None = None
        self._stats_lock = threading.Lock()
        self._by_kind: Counter[str] = Counter()
        self._own_writes = 0
        self.report = Report(table=table, target_rate=config.rate, seed=config.seed)
        self.expectation = Expectation({})

    @property
    def poll_interval(self) -> float:
        if self.config.poll_interval is not None:
            return self.config.poll_interval
        return 0.1 if self.control else 1.0

    # --- the run -----------------------------------------------------------------------------

    def run(self) -> Report:
        """Write, drain, verify. Ctrl-C while writing stops the writers and still verifies;
        Ctrl-C while draining reports without verifying (``interrupted``)."""
        report = self.report
        previous_faults: dict[str, Any] | None = None
        try:
            stats_before = self._prepare()
            if self.config.faults is not None and self.control is not None:
                previous_faults = self.control.faults()
                report.faults = self.control.set_faults(self.config.faults)
            self._write_phase()
            try:
                self._drain_and_verify()
            except KeyboardInterrupt:
                report.interrupted = True
                self.console.print("[yellow]interrupted while draining: not verified[/]")
            if self.control is not None and stats_before is not None:
                report.local = self._local_stats(stats_before)
        finally:
            self._stop.set()
            if previous_faults is not None and self.control is not None:
                self.control.set_faults(previous_faults)
        return report

    def _prepare(self) -> dict[str, Any] | None:
        stats_before = None
        if self.control is not None:
            # A quiescent start: otherwise earlier writes still moving would look like ours.
            wait = min(self.config.drain_timeout, PRE_DRAIN_SECONDS)
            if not self.control.wait_drained(wait):
                errors = counters_delta({}, self.control.stats(), self.table)["function_errors"]
                raise cli.ToolError(
                    f"the local pipeline is still busy after {wait:g} s, before the run "
                    f"({errors:,} function errors so far; see the function logs of the local "
                    "endpoint)"
                )
            stats_before = self.control.stats()
        keys = [*self.generator.all_summary_keys(), self.probe_key]
        keys.append(SummaryKey(SummaryKind.USER, self.probe_key.id))
        self.console.print(f"reading the baseline of {len(keys):,} summaries ...")
        self.expectation = Expectation(get_summaries(self.client, self.table, keys))
        return stats_before

    def _write_phase(self) -> None:
        config = self.config
        start = time.monotonic()
        if config.duration is not None:
            self._deadline = start + config.duration
        self._pacer = Pacer(config.rate)
        threads = [
            threading.Thread(target=self._writer, name=f"writer-{n}", daemon=True)
            for n in range(config.writers)
        ]
        if config.probe_interval > 0:
            threads.append(threading.Thread(target=self._prober, name="probe", daemon=True))
        for thread in threads:
            thread.start()
        writers = threads[: config.writers]
        total = config.events if config.events is not None else None
        progress = Progress(
            TextColumn("[bold]writing"),
            BarColumn(),
            MofNCompleteColumn() if total else TextColumn("{task.completed:,.0f} events"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        try:
            with progress:
                task = progress.add_task(
                    "write", total=total if total else config.duration, rate=""
                )
                while any(t.is_alive() for t in writers):
                    time.sleep(0.1)
                    elapsed = time.monotonic() - start
                    done = self.report.events
                    rate = done / elapsed if elapsed > 0 else 0.0
                    target = f" (target {config.rate:g}/s)" if config.rate else ""
                    shown = done if total else min(elapsed, config.duration or elapsed)
                    progress.update(task, completed=shown, rate=f"{rate:,.0f}/s{target}")
        except KeyboardInterrupt:
            self.report.interrupted = True
            self._stop.set()
            self.console.print("[yellow]stopping the writers (Ctrl-C) ...[/]")
        for thread in writers:
            thread.join()
        self.report.write_seconds = time.monotonic() - start
        self._writers_done.set()
        for thread in threads[config.writers :]:
            thread.join()

    # --- writers -----------------------------------------------------------------------------

    def _next_operation(self) -> tuple[Operation, float] | None:
        with self._gen_lock:
            if self._stop.is_set():
                return None
            if self.config.events is not None and self._issued >= self.config.events:
                return None
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return None
            self._issued += 1
            return self.generator.next(), self._pacer.slot()

    def _writer(self) -> None:
        while True:
            job = self._next_operation()
            if job is None:
                return
            operation, slot = job
            wait = slot - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            try:
                self._apply(operation)
            except (BotoCoreError, ClientError) as exc:
                with self._stats_lock:
                    self.report.failed_writes += 1
                    if self.report.first_error is None:
                        self.report.first_error = aws_error_message(exc)
                # Retries are botocore's job; an error that survived them ends the run.
                self._stop.set()
                return
            with self._stats_lock:
                self.report.events += 1
                self._by_kind[operation.kind] += 1
                self.report.events_by_kind = dict(self._by_kind)

    def _apply(self, operation: Operation) -> None:
        if operation.action == "put":
            assert operation.item is not None
            response = self.client.put_item(
                TableName=self.table, Item=operation.item, ReturnValues="ALL_OLD"
            )
            old = response.get("Attributes")
            # A view key is unique per run: finding the very same item means the SDK retried a
            # put that had already succeeded, and the write was an insert.
            retried = operation.kind == "views" and old == operation.item
            effect = write_effect(operation.item, old, retried_put=retried)
        else:
            response = self.client.delete_item(
                TableName=self.table, Key=operation.key, ReturnValues="ALL_OLD"
            )
            effect = write_effect(None, response.get("Attributes"))
        self.expectation.add(effect)
        with self._stats_lock:
            self._own_writes += 1

    # --- probes ------------------------------------------------------------------------------

    def _prober(self) -> None:
        """Now and then write a view of the probe video and time until its summary shows it."""
        interval = self.config.probe_interval
        probe = self.probe_key.id
        while not self._writers_done.is_set() and not self._stop.is_set():
            expected_views = self.expectation.expected(self.probe_key).views + 1
            with self._gen_lock:
                ts = self.generator.timestamp()
            item = model.view_item(probe, probe, 1, ts)
            started = time.monotonic()
            try:
                self._apply(Operation("probe", "put", {"PK": item["PK"], "SK": item["SK"]}, item))
            except (BotoCoreError, ClientError):
                return  # the writers report errors; a probe just stops
            with self._stats_lock:
                self.report.probes += 1
            delay = self._wait_for_views(expected_views, started)
            with self._stats_lock:
                if delay is None:
                    self.report.probe_timeouts += 1
                else:
                    self.report.delays.append(delay)
            rest = interval - (time.monotonic() - started)
            if rest > 0 and self._writers_done.wait(rest):
                return

    def _wait_for_views(self, views: int, started: float) -> float | None:
        deadline = started + self.config.probe_timeout
        key = model.summary_item_key(self.probe_key)
        while not self._stop.is_set():
            try:
                response = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
            except (BotoCoreError, ClientError):
                return None
            item = response.get("Item")
            if item is not None and model.summary_counters(item).views >= views:
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        return None

    # --- drain and verify ----------------------------------------------------------------------

    def _drain_and_verify(self) -> None:
        """Wait until the touched summaries match, or the pipeline has drained (local) or they
        stopped changing (AWS), or the timeout; then record what does not match."""
        report = self.report
        keys = self.expectation.touched()
        report.touched_summaries = len(keys)
        start = time.monotonic()
        deadline = start + self.config.drain_timeout
        last: dict[SummaryKey, Counters] | None = None
        stable_since = start
        self.console.print(f"waiting for the pipeline to drain ({len(keys):,} summaries) ...")
        while True:
            drained = self.control.drained() if self.control is not None else False
            actual = get_summaries(self.client, self.table, keys)
            mismatches = self.expectation.mismatches(actual)
            now = time.monotonic()
            if actual != last:
                last, stable_since = actual, now
            settled = self.control is None and now - stable_since >= self.config.settle_seconds
            if not mismatches or drained or settled or now >= deadline:
                report.drain_seconds = now - start
                report.drained = not mismatches or drained or settled
                report.verified = report.drained
                report.mismatches = mismatches
                return
            time.sleep(self.poll_interval)

    def _local_stats(self, before: Mapping[str, Any]) -> dict[str, Any]:
        assert self.control is not None
        after = self.control.stats()
        delta = counters_delta(before, after, self.table)
        table = delta.pop("dynamodb", {}).get(self.table, {})
        delta["table_writes"] = table
        writes = table.get("write_requests")
        delta["summary_writes"] = None if writes is None else max(0, int(writes) - self._own_writes)
        delta["base_writes"] = self._own_writes
        # Shards crossed and the summary items' growth (per-shard exactly-once marks).
        delta.update(run_figures(before, after, self.control.streams(), self.table))
        return delta


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
        "--writers", type=_writers, default=4, help="concurrent writers (default 4)"
    )
    shape = parser.add_argument_group("what")
    shape.add_argument("--users", type=_entities, default=100, help="users (default 100)")
    shape.add_argument("--videos", type=_entities, default=1000, help="videos (default 1000)")
    shape.add_argument(
        "--skew",
        type=cli.non_negative_float,
        default=1.0,
        help="Zipf exponent of user and video popularity; 0 = uniform (default 1.0)",
    )
    shape.add_argument(
        "--mix",
        type=_mix,
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
        default=300.0,
        help="longest wait for the pipeline to drain, seconds (default 300)",
    )
    check.add_argument(
        "--settle",
        type=cli.positive_float,
        default=20.0,
        help="AWS: summaries unchanged this long count as drained (default 20 s)",
    )
    check.add_argument(
        "--faults",
        type=_faults,
        help="local only: fault injection during the run, e.g. fail=0.1,kill=0.05,duplicate=0.05"
        "[,seed=N]; switched back off at the end",
    )
    check.add_argument("--json", type=_json_path, metavar="FILE", help="also write the report here")
    deployment.add_arguments(parser)
    return parser


def _writers(text: str) -> int:
    value = cli.positive_int(text)
    if value > 256:
        raise argparse.ArgumentTypeError(f"at most 256 writers, got {value}")
    return value


def _entities(text: str) -> int:
    value = cli.positive_int(text)
    if value > MAX_ENTITIES:
        raise argparse.ArgumentTypeError(f"at most {MAX_ENTITIES:,}, got {value:,}")
    return value


def _mix(text: str) -> dict[str, float]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _faults(text: str) -> dict[str, Any]:
    try:
        return parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _prefix(text: str) -> str:
    if "#" in text or text != text.strip():
        raise argparse.ArgumentTypeError("the id prefix must not contain '#' or spaces")
    return text


def _json_path(text: str) -> Path:
    path = Path(text)
    if path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write a report to {text!r}")
    return path


def config_from_args(args: argparse.Namespace) -> LoadTestConfig:
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
        drain_timeout=args.drain_timeout,
        settle_seconds=args.settle,
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
        table.add_row("faults", ", ".join(f"{k}={v}" for k, v in report.faults.items()))
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
    config = config_from_args(args)
    control = LocalControl(target.control_url) if target.control_url else None
    console = Console(stderr=True)
    client = target.dynamodb(pool=config.writers + 4)
    client.describe_table(TableName=target.table)  # fail fast, before any output
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
        + f", {config.writers} writers, started {datetime.now(UTC):%H:%M:%S} UTC"
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
