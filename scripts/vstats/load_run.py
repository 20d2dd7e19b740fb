"""One load test run (``LoadTest(client, table, LoadTestConfig(...)).run()`` returns a
``Report``): writers at a target rate, delay probes, then drain and verify every touched
summary against the ``Expectation``. The command line is ``vstats.loadtest``."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from localcloud.client import ControlClient
from localcloud.shard_lineage import run_figures
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind

from vstats import cli
from vstats.cli import aws_error_message
from vstats.effects import write_effect
from vstats.expectation import Expectation
from vstats.generator import EventGenerator, Operation
from vstats.load_report import Report
from vstats.local_endpoint import counters_delta
from vstats.tables import get_summaries, write_operation

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

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
    # Local only: after the writes, wait for the engine to report every mapping drained and
    # verify once then, with the drain timed from the writers' end. The default stops as soon
    # as the touched summaries match and polls them meanwhile, which loads a slow pipeline
    # (the benchmark drains both designs this way, so their drain times compare).
    verify_when_drained: bool = False


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


class LoadTest:
    """One load test run against ``table``; ``control`` is the local engine (None on AWS)."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        config: LoadTestConfig,
        *,
        control: ControlClient | None = None,
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
        self.writes_done_at: float | None = None  # monotonic: when the writers stopped
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
        # The writers' end, not the last probe's: the probe thread may wait for its summary.
        self.writes_done_at = start + self.report.write_seconds
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
        old = write_operation(self.client, self.table, operation)
        if operation.action == "put":
            # A view key is unique per run: finding the very same item means the SDK retried a
            # put that had already succeeded, and the write was an insert.
            retried = operation.kind == "views" and old == operation.item
            effect = write_effect(operation.item, old, retried_put=retried)
        else:
            effect = write_effect(None, old)
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
        if self.config.verify_when_drained and self.control is not None:
            self._verify_when_drained(self.control)
            return
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

    def _verify_when_drained(self, control: ControlClient) -> None:
        report = self.report
        if report.interrupted:
            return  # Ctrl-C while writing: the caller stops at once
        keys = self.expectation.touched()
        report.touched_summaries = len(keys)
        drained = control.wait_drained(self.config.drain_timeout, interval=0.1)
        drained_at = time.monotonic()
        start = self.writes_done_at if self.writes_done_at is not None else drained_at
        report.drain_seconds = max(0.0, drained_at - start)
        report.drained = report.verified = drained
        report.mismatches = self.expectation.mismatches(
            get_summaries(self.client, self.table, keys)
        )

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
