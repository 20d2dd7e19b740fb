"""The DynamoDB Streams -> Lambda event source mapping engine (Docker-free).

A supervisor thread reads the mappings from moto's Lambda backend (in process) and keeps
one runner per DynamoDB stream mapping, picking up created, updated and deleted mappings
as they happen. A runner keeps one thread per shard; the shard thread polls the Streams
API from the mapping's starting position, filters, batches and invokes the function, in
order and with one batch in flight, with Lambda's error handling (design.md §5):

* function error, timeout, crash or invalid partial-batch response: retry, up to
  ``MaximumRetryAttempts`` (-1: until the record is too old), with a short backoff; with
  ``BisectBatchOnFunctionError`` the batch is split in two first (splitting does not use up
  retries); ``ReportBatchItemFailures`` checkpoints before the lowest failed record;
* records older than ``MaximumRecordAgeInSeconds`` (or the stream's 24 h retention) are
  dropped; dropped records are reported to the on-failure destination (SQS or SNS) with
  Lambda's payload, and the shard moves on.

With ``TumblingWindowInSeconds`` the event carries ``shardId``, ``eventSourceARN``,
``window`` (aligned on multiples of the window length, by the records' creation time),
``state``, ``isFinalInvokeForWindow`` and ``isWindowTerminatedEarly``; batches never span
two windows; each successful response must return a ``state``, which the next invocation of
the window receives; once the window has closed, a final invocation with no records and
``isFinalInvokeForWindow = true`` is made, retried until it succeeds, and the state is
dropped (AWS Lambda developer guide, "Using tumbling windows with DynamoDB").
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.awslambda.models import lambda_backends
from moto.dynamodb.models import dynamodb_backends

from localcloud import protocol
from localcloud.faults import FaultPlan, Faults
from localcloud.filters import CompiledFilters, PatternError, compile_filter_criteria
from localcloud.metrics_publisher import NO_METRICS, InvocationSink
from localcloud.motopatch import START_SEQUENCE_ATTR
from localcloud.runtime import InvokeResult, WorkerPool, function_spec
from localcloud.stats import MappingStats, StatsRegistry
from localcloud.streams import StreamsClient, StreamsError

log = logging.getLogger("localcloud.engine")

IDLE_POLL_SECONDS = 0.25  # Lambda polls a shard about four times a second
READ_LIMIT = 1000
PAYLOAD_LIMIT = 6 * 1024 * 1024
RECORD_OVERHEAD = 400  # event fields around the "dynamodb" part, for the payload limit
STREAM_RETENTION_SECONDS = 24 * 3600
SHARD_REFRESH_SECONDS = 2.0
SUPERVISOR_INTERVAL = 1.0


def retry_delay(attempt: int) -> float:
    return float(min(1.0, 0.05 * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True, slots=True)
class MappingConfig:
    uuid: str
    account: str
    region: str
    function_arn: str
    function_name: str
    stream_arn: str
    enabled: bool
    batch_size: int
    window: float
    starting_position: str
    start_sequence: int | None
    filters: CompiledFilters
    max_retries: int
    max_age: int
    bisect: bool
    report_failures: bool
    destination_arn: str | None
    tumbling_window: int = 0


def mapping_config(esm: Any) -> MappingConfig | None:
    """From moto's ``EventSourceMapping``; None for other sources or invalid filters."""
    source = str(esm.event_source_arn)
    if ":dynamodb:" not in source or "/stream/" not in source:
        return None
    try:
        filters = compile_filter_criteria(esm.filter_criteria)
    except PatternError as exc:
        log.error("mapping %s: invalid filter criteria ignored (%s)", esm.uuid, exc)
        return None
    destination = ((esm.destination_config or {}).get("OnFailure") or {}).get("Destination")
    enabled = esm.enabled
    if isinstance(enabled, str):
        enabled = enabled.lower() == "true"
    return MappingConfig(
        uuid=esm.uuid,
        account=esm.account_id,
        region=esm.region,
        function_arn=esm.function_arn,
        function_name=esm.function_arn.split(":")[6],
        stream_arn=source,
        enabled=bool(enabled),
        batch_size=int(esm.batch_size or 100),
        window=float(esm.max_batch_window or 0),
        starting_position=str(esm.starting_position or "TRIM_HORIZON"),
        start_sequence=getattr(esm, START_SEQUENCE_ATTR, None),
        filters=filters,
        max_retries=-1 if esm.max_retry_attempts is None else int(esm.max_retry_attempts),
        max_age=-1 if esm.max_record_age is None else int(esm.max_record_age),
        bisect=bool(esm.bisect_on_error),
        report_failures="ReportBatchItemFailures" in (esm.function_response_types or []),
        destination_arn=destination or None,
        tumbling_window=int(esm.tumbling_window or 0),
    )


def _iter_mappings() -> Iterator[Any]:

    for _ in range(3):  # moto may add a backend while we look
        try:
            backends = [
                b for regions in list(lambda_backends.values()) for b in list(regions.values())
            ]
            break
        except RuntimeError:
            continue
    else:
        return
    for backend in backends:
        yield from list(backend._event_source_mappings.values())


def _stream_shard(stream_arn: str, account: str, region: str) -> Any:

    try:
        table_name = stream_arn.split(":", 5)[5].split("/")[1]
        table = dynamodb_backends[account][region].tables.get(table_name)
    except (IndexError, KeyError):
        return None
    return getattr(table, "stream_shard", None)


def _lookup_function(cfg: MappingConfig) -> Any:

    return lambda_backends[cfg.account][cfg.region].get_function(cfg.function_arn)


@dataclass(slots=True)
class Record:
    seq: str
    seq_int: int
    event: dict[str, Any]
    created: float  # epoch seconds
    read_at: float  # monotonic
    size: int


@dataclass
class Outcome:
    result: InvokeResult
    plan: FaultPlan = field(default_factory=FaultPlan)


class ShardWorker:
    """Reads one shard for one mapping and drives its invocations, one batch at a time."""

    def __init__(self, runner: MappingRunner, shard_id: str) -> None:
        self.runner = runner
        self.engine = runner.engine
        self.shard_id = shard_id
        cfg = runner.config
        self.client = StreamsClient(self.engine.endpoint_url, cfg.region, cfg.account)
        self.pending: deque[Record] = deque()
        self.read_seq: int | None = None  # last sequence number read from the stream
        self.iterator: str | None = None
        self.closed = False  # the shard has no more records (NextShardIterator absent)
        self.next_poll = 0.0
        self.segments: deque[int] = deque()  # pinned sizes of the next batches (retries)
        self.attempts = 0  # failed attempts of the records at the head
        self.invoke_count = 0
        self.last_request_id: str | None = None
        self.retry_at = 0.0
        self.in_flight = False
        self.delivered_through = -1
        self.caught_up = False  # the last read returned nothing
        # Tumbling window: the open window and the state the function returned for it.
        self.window: tuple[float, float] | None = None
        self.window_state: Any = {}
        self.final_attempts = 0
        self.stop_event = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"shard-{cfg.function_name}-{shard_id[-8:]}", daemon=True
        )
        self._destinations: dict[str, Callable[[str], None]] = {}
        self._last_error = ""

    @property
    def stats(self) -> MappingStats:
        return self.runner.stats

    def start(self) -> None:
        self.stats.shard_seen(self.shard_id)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    # --- reading ---------------------------------------------------------------------

    def _start_sequence(self, cfg: MappingConfig) -> int | None:
        """The first sequence number this worker will read (None: the shard's first)."""
        if self.read_seq is not None:
            return self.read_seq + 1
        if cfg.starting_position == "LATEST":
            return cfg.start_sequence
        return None

    def _new_iterator(self, cfg: MappingConfig) -> str:
        if self.read_seq is not None:
            return self.client.get_shard_iterator(
                cfg.stream_arn, self.shard_id, "AFTER_SEQUENCE_NUMBER", str(self.read_seq)
            )
        if cfg.starting_position == "LATEST" and cfg.start_sequence is not None:
            return self.client.get_shard_iterator(
                cfg.stream_arn, self.shard_id, "AT_SEQUENCE_NUMBER", str(cfg.start_sequence)
            )
        kind = "LATEST" if cfg.starting_position == "LATEST" else "TRIM_HORIZON"
        return self.client.get_shard_iterator(cfg.stream_arn, self.shard_id, kind, None)

    def _poll(self, cfg: MappingConfig) -> None:
        """At most one GetRecords call, when due and when there is room for more."""
        now = time.monotonic()
        if self.closed or now < self.next_poll or len(self.pending) >= cfg.batch_size + READ_LIMIT:
            return
        try:
            if self.iterator is None:
                self.iterator = self._new_iterator(cfg)
            raw_records, next_iterator = self.client.get_records(self.iterator, READ_LIMIT)
        except StreamsError as exc:
            # Expired iterator: start again after the last record read. Stream gone: wait.
            self.iterator = None
            expired = exc.error_type == "ExpiredIteratorException"
            self.next_poll = now + (0.05 if expired else 1.0)
            if not expired and str(exc) != self._last_error:
                log.warning("mapping %s shard %s: %s", cfg.uuid, self.shard_id, exc)
            self._last_error = str(exc)
            return
        self._last_error = ""
        self.iterator = next_iterator
        self.caught_up = not raw_records
        if next_iterator is None:
            self.closed = True
        read_at = time.monotonic()
        filtered = 0
        last = self.read_seq
        for raw in raw_records:
            dynamodb = raw.get("dynamodb") or {}
            event = protocol.event_record(raw, cfg.stream_arn, cfg.region)
            seq = str(dynamodb.get("SequenceNumber"))
            last = int(seq)
            if not cfg.filters.matches(event):
                filtered += 1
                continue
            self.pending.append(
                Record(
                    seq=seq,
                    seq_int=int(seq),
                    event=event,
                    created=float(dynamodb.get("ApproximateCreationDateTime") or time.time()),
                    read_at=read_at,
                    size=int(dynamodb.get("SizeBytes") or 0) + RECORD_OVERHEAD,
                )
            )
        # Records are queued before the read position moves on (see drained()).
        self.read_seq = last
        if raw_records:
            self.stats.add("records_read", len(raw_records))
            if filtered:
                self.stats.add("records_filtered_out", filtered)
            if len(raw_records) == filtered and not self.pending:
                self.stats.record_age(self.shard_id, self._now(cfg) - _created(raw_records[-1]))
        # Lambda polls a shard 4 times a second, and at once while it is behind (a full page).
        self.next_poll = read_at if len(raw_records) >= READ_LIMIT else read_at + IDLE_POLL_SECONDS

    def at_tip(self, cfg: MappingConfig) -> bool:
        shard = _stream_shard(cfg.stream_arn, cfg.account, cfg.region)
        if shard is None or shard.id != self.shard_id:
            return True
        tip = int(shard.starting_sequence_number) + len(shard.items)
        start = self._start_sequence(cfg)
        if start is None:
            start = int(shard.starting_sequence_number)
        return start >= tip

    def drained(self) -> bool:
        cfg = self.runner.config
        return not self.in_flight and not self.pending and self.at_tip(cfg)

    # --- the loop --------------------------------------------------------------------

    def _now(self, cfg: MappingConfig) -> float:
        return time.time() + self.engine.faults.config.clock_offset_seconds

    def _run(self) -> None:
        while not self.stop_event.is_set():
            cfg = self.runner.config
            try:
                if not cfg.enabled:
                    self.stop_event.wait(0.2)
                    continue
                self._poll(cfg)
                if self._window_closed(cfg):
                    self._finalize_window(cfg)
                    continue
                batch = self._next_batch(cfg)
                if batch:
                    self._process(cfg, batch)
                else:
                    self.stop_event.wait(self._idle_time(cfg))
            except Exception:
                log.exception("mapping %s shard %s: engine error", cfg.uuid, self.shard_id)
                self.in_flight = False
                self.stop_event.wait(0.5)
        self.client.close()

    def _idle_time(self, cfg: MappingConfig) -> float:
        now = time.monotonic()
        wake = [self.next_poll, now + IDLE_POLL_SECONDS]
        if self.pending:
            wake.append(self.pending[0].read_at + cfg.window)
            wake.append(self.retry_at)
        if self.window is not None:
            wake.append(now + max(self.window[1] - self._now(cfg), self.retry_at - now))
        return max(0.005, min(wake) - now)

    def _drop_head(self, count: int) -> list[Record]:
        dropped = [self.pending.popleft() for _ in range(min(count, len(self.pending)))]
        remaining = len(dropped)
        while remaining and self.segments:
            take = min(remaining, self.segments[0])
            self.segments[0] -= take
            remaining -= take
            if self.segments[0] == 0:
                self.segments.popleft()
        return dropped

    def _next_batch(self, cfg: MappingConfig) -> list[Record]:
        self._expire(cfg)
        if not self.pending or time.monotonic() < self.retry_at:
            return []
        window = None
        if cfg.tumbling_window > 0:
            window = _window_of(self.pending[0], cfg.tumbling_window)
            if self.window is not None and window != self.window:
                return []  # the open window gets its final invocation first
        if self.segments:
            return list(self.pending)[: self.segments[0]]
        count, size = 0, 0
        for record in self.pending:
            if count >= cfg.batch_size or (count and size + record.size > PAYLOAD_LIMIT):
                break
            if window is not None and _window_of(record, cfg.tumbling_window) != window:
                break  # a batch never spans two tumbling windows
            count += 1
            size += record.size
        ready = (
            count >= cfg.batch_size
            or count < len(self.pending)  # the payload limit or the window's end cut it
            or cfg.window <= 0
            or time.monotonic() >= self.pending[0].read_at + cfg.window
        )
        return list(self.pending)[:count] if ready else []

    def _window_closed(self, cfg: MappingConfig) -> bool:
        """The open tumbling window has ended and holds no more records."""
        if self.window is None:
            return False
        if cfg.tumbling_window <= 0:  # turned off while a window was open
            self.window, self.window_state = None, {}
            return False
        if self.pending and _window_of(self.pending[0], cfg.tumbling_window) == self.window:
            return False
        if time.monotonic() < self.retry_at:
            return False
        # Records are stamped when written: once the clock is past the end (and the reader
        # has caught up), nothing more can fall into the window.
        return self._now(cfg) >= self.window[1] and (self.caught_up or bool(self.pending))

    def _window_fields(
        self, cfg: MappingConfig, window: tuple[float, float], final: bool
    ) -> dict[str, Any]:
        return {
            "shardId": self.shard_id,
            "eventSourceARN": cfg.stream_arn,
            "window": {"start": _iso(window[0]), "end": _iso(window[1])},
            "state": self.window_state,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": False,
        }

    def _finalize_window(self, cfg: MappingConfig) -> None:
        assert self.window is not None
        self.in_flight = True
        try:
            event = {"Records": [], **self._window_fields(cfg, self.window, final=True)}
            if self.final_attempts:
                self.stats.add("retries")
            outcome = self._invoke(cfg, json.dumps(event).encode(), 0)
            self.engine.metrics.invoked(cfg.function_arn, outcome.result, None)
            if outcome.result.ok:
                self.window, self.window_state, self.final_attempts = None, {}, 0
                return
            # Lambda holds the shard until the final invocation succeeds.
            self.stats.add("function_errors")
            self.final_attempts += 1
            self.retry_at = time.monotonic() + retry_delay(self.final_attempts)
        finally:
            self.in_flight = False

    def _expire(self, cfg: MappingConfig) -> None:
        limit = STREAM_RETENTION_SECONDS if cfg.max_age < 0 else cfg.max_age
        now = self._now(cfg)
        expired = 0
        for record in self.pending:
            if now - record.created <= limit:
                break
            expired += 1
        if expired:
            self._give_up(cfg, list(self.pending)[:expired], protocol.RECORD_AGE_EXCEEDED)

    def _process(self, cfg: MappingConfig, batch: list[Record]) -> None:
        self.in_flight = True
        try:
            retry = self.invoke_count > 0
            self.stats.add("retries" if retry else "batches")
            now = self._now(cfg)
            fresh = [r for r in batch if r.seq_int > self.delivered_through]
            if fresh:
                self.stats.delivered([max(0.0, now - r.created) for r in fresh])
                self.delivered_through = fresh[-1].seq_int
            body: dict[str, Any] = {"Records": [r.event for r in batch]}
            if cfg.tumbling_window > 0:
                self.window = self.window or _window_of(batch[0], cfg.tumbling_window)
                body.update(self._window_fields(cfg, self.window, final=False))
            event = json.dumps(body).encode()
            outcome = self._invoke(cfg, event, len(batch))
            self.engine.metrics.invoked(cfg.function_arn, outcome.result, now - batch[-1].created)
            self.invoke_count += 1
            self.last_request_id = outcome.result.request_id
            self._handle(cfg, batch, event, outcome)
        finally:
            self.in_flight = False

    def _invoke(self, cfg: MappingConfig, event: bytes, size: int) -> Outcome:
        plan = self.engine.faults.plan_invocation(size)
        self.stats.add("invocations")
        if plan.fail_before:
            self.stats.add("injected_failures")
            return Outcome(_injected_failure(), plan)
        try:
            function = _lookup_function(cfg)
        except Exception as exc:
            return Outcome(InvokeResult(False, "", None, "ResourceNotFoundException", str(exc)))
        spec = function_spec(function)
        handle = self.engine.pool.invoke(
            spec, lambda: bytes(function.code_bytes), event, plan.kill_after_writes
        )
        # Keep reading while the function runs (Lambda reads ahead, too).
        while not handle.wait(0.05):
            self._poll(cfg)
        result = handle.result
        if plan.kill_after_writes is not None and result.worker_exited:
            self.stats.add("injected_kills")
        if plan.fail_after and result.ok:
            self.stats.add("injected_failures")
            result = _injected_failure(result.request_id)
        return Outcome(result, plan)

    def _handle(
        self, cfg: MappingConfig, batch: list[Record], event: bytes, outcome: Outcome
    ) -> None:
        result = outcome.result
        if result.ok:
            response = protocol.parse_batch_response(
                result.payload, [r.seq for r in batch], cfg.report_failures
            )
            if cfg.tumbling_window > 0 and response.invalid is None:
                if isinstance(result.payload, dict) and "state" in result.payload:
                    self.window_state = result.payload["state"]
                else:
                    response = protocol.BatchResponse(
                        invalid="a tumbling-window response has no state"
                    )
            if response.invalid is None and response.failed_from is None:
                self._succeeded(cfg, batch, event)
                return
            if response.invalid is None:
                assert response.failed_from is not None
                self._partially_failed(cfg, batch, response.failed_from)
                return
            self.stats.add("invalid_responses")
            log.warning("mapping %s: invalid batch response: %s", cfg.uuid, response.invalid)
        else:
            self.stats.add("function_errors")
            log.info(
                "mapping %s: %s: %s",
                cfg.uuid,
                result.error_type,
                (result.error_message or "")[:300],
            )
        self._failed(cfg, batch)

    def _succeeded(self, cfg: MappingConfig, batch: list[Record], event: bytes) -> None:
        self._drop_head(len(batch))
        self._done(cfg, batch)
        self.attempts = self.invoke_count = 0
        self.retry_at = 0.0
        if self.engine.faults.duplicate_batch():
            self.stats.add("duplicate_deliveries")
            self.stats.add("invocations")
            try:
                function = _lookup_function(cfg)
                handle = self.engine.pool.invoke(
                    function_spec(function), lambda: bytes(function.code_bytes), event
                )
                while not handle.wait(0.05):
                    self._poll(cfg)
            except Exception:
                log.exception("mapping %s: duplicate delivery failed", cfg.uuid)

    def _done(self, cfg: MappingConfig, records: list[Record]) -> None:
        if records:
            self.stats.add("records_delivered", len(records))
            self.stats.record_age(self.shard_id, self._now(cfg) - records[-1].created)

    def _partially_failed(self, cfg: MappingConfig, batch: list[Record], failed_from: int) -> None:
        self.stats.add("partial_failures")
        succeeded = batch[:failed_from]
        self._drop_head(failed_from)
        self._done(cfg, succeeded)
        remaining = batch[failed_from:]
        self.attempts += 1
        if cfg.max_retries >= 0 and self.attempts > cfg.max_retries:
            self._give_up(cfg, remaining, protocol.RETRY_ATTEMPTS_EXHAUSTED)
            return
        # With bisect on, Lambda retries exactly the remaining records; without, it
        # re-reads from the checkpoint (the failed record) and batches as usual.
        if cfg.bisect and not self.segments:
            self.segments.appendleft(len(remaining))
        self.retry_at = time.monotonic() + retry_delay(self.attempts)

    def _failed(self, cfg: MappingConfig, batch: list[Record]) -> None:
        size = len(batch)
        if cfg.bisect and size > 1:
            self.stats.add("bisections")
            first = (size + 1) // 2
            if self.segments:
                self.segments.popleft()  # the failed batch's own pinned size
            self.segments.extendleft([size - first, first])
            self.retry_at = time.monotonic()
            return
        self.attempts += 1
        if cfg.max_retries >= 0 and self.attempts > cfg.max_retries:
            self._give_up(cfg, batch, protocol.RETRY_ATTEMPTS_EXHAUSTED)
            return
        if not self.segments:
            self.segments.append(size)  # retry the same batch
        self.retry_at = time.monotonic() + retry_delay(self.attempts)

    def _give_up(
        self, cfg: MappingConfig, records: list[Record], condition: protocol.Condition
    ) -> None:
        self._drop_head(len(records))
        failed_invocation = self.attempts > 0
        message = protocol.failure_record(
            batch=protocol.FailedBatch(
                shard_id=self.shard_id,
                stream_arn=cfg.stream_arn,
                first_sequence_number=records[0].seq,
                last_sequence_number=records[-1].seq,
                first_arrival=records[0].created,
                last_arrival=records[-1].created,
                size=len(records),
            ),
            function_arn=cfg.function_arn,
            condition=condition,
            invoke_count=self.invoke_count,
            function_error="Unhandled" if failed_invocation else None,
            request_id=self.last_request_id,
            now=self._now(cfg),
        )
        self.stats.add("records_discarded", len(records))
        self.stats.record_age(self.shard_id, self._now(cfg) - records[-1].created)
        if cfg.destination_arn:
            try:
                self._send(cfg, cfg.destination_arn, json.dumps(message))
                self.stats.add("records_to_failure_destination", len(records))
                self.stats.add("failure_messages")
            except Exception:
                log.exception("mapping %s: sending to %s failed", cfg.uuid, cfg.destination_arn)
        log.info(
            "mapping %s: %s, %d record(s) %s..%s given up",
            cfg.uuid, condition, len(records), records[0].seq, records[-1].seq,
        )  # fmt: skip
        self.attempts = self.invoke_count = 0
        self.retry_at = 0.0

    def _send(self, cfg: MappingConfig, arn: str, message: str) -> None:
        sender = self._destinations.get(arn)
        if sender is None:
            sender = self._destinations[arn] = self._make_sender(cfg, arn)
        sender(message)

    def _make_sender(self, cfg: MappingConfig, arn: str) -> Callable[[str], None]:
        parts = arn.split(":")
        service, region, account, name = parts[2], parts[3], parts[4], parts[5]
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        if service == "sqs":
            sqs = session.client("sqs", endpoint_url=self.engine.endpoint_url)
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            return lambda body: sqs.send_message(QueueUrl=url, MessageBody=body) and None
        if service == "sns":
            sns = session.client("sns", endpoint_url=self.engine.endpoint_url)
            return lambda body: sns.publish(TopicArn=arn, Message=body) and None
        raise ValueError(f"unsupported on-failure destination {arn}")


def _window_of(record: Record, length: int) -> tuple[float, float]:
    start = record.created // length * length
    return start, start + length


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _created(raw: dict[str, Any]) -> float:
    return float((raw.get("dynamodb") or {}).get("ApproximateCreationDateTime") or time.time())


def _injected_failure(request_id: str = "") -> InvokeResult:
    return InvokeResult(
        False, request_id, None, "LocalCloud.InjectedFailure", "fault injection: invocation failed"
    )


class MappingRunner:
    def __init__(self, engine: Engine, config: MappingConfig) -> None:
        self.engine = engine
        self.config = config
        self.stats = engine.stats.mapping(config.uuid, config.function_name)
        self.shards: dict[str, ShardWorker] = {}
        self._lock = threading.Lock()
        self._shards_checked = 0.0

    def update(self, config: MappingConfig) -> None:
        if config != self.config:
            log.info("mapping %s updated", config.uuid)
        self.config = config
        self.stats.function_name = config.function_name

    def sync_shards(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shards_checked < SHARD_REFRESH_SECONDS:
            return
        self._shards_checked = now
        cfg = self.config
        client = StreamsClient(self.engine.endpoint_url, cfg.region, cfg.account)
        try:
            shards = client.describe_stream(cfg.stream_arn).get("Shards") or []
        except (StreamsError, OSError) as exc:
            log.debug("mapping %s: stream not readable: %s", cfg.uuid, exc)
            return
        finally:
            client.close()
        with self._lock:
            for shard in shards:
                shard_id = shard["ShardId"]
                if shard_id not in self.shards:
                    worker = self.shards[shard_id] = ShardWorker(self, shard_id)
                    worker.start()

    def drained(self) -> bool:
        if not self.config.enabled:
            return True
        self.sync_shards(force=True)
        with self._lock:
            workers = list(self.shards.values())
        if not workers:
            # No shard seen (yet): drained only if the stream holds nothing to read.
            shard = _stream_shard(self.config.stream_arn, self.config.account, self.config.region)
            return shard is None or not shard.items
        return all(worker.drained() for worker in workers)

    def stop(self) -> None:
        with self._lock:
            workers = list(self.shards.values())
        for worker in workers:
            worker.stop()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in list(self.shards.values()):
            worker.thread.join(max(0.0, deadline - time.monotonic()))


class Engine:
    def __init__(self, endpoint_url: str, pool: WorkerPool, stats: StatsRegistry, faults: Faults):
        self.endpoint_url = endpoint_url
        self.pool = pool
        self.stats = stats
        self.faults = faults
        self.metrics: InvocationSink = NO_METRICS  # the server installs a MetricsPublisher
        self.runners: dict[str, MappingRunner] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sync_lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="esm-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A mapping was created, updated or deleted."""
        self._wake.set()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SUPERVISOR_INTERVAL)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.sync()
                self.pool.reap_idle()
            except Exception:
                log.exception("supervisor error")

    def sync(self) -> None:
        with self._sync_lock:
            configs: dict[str, MappingConfig] = {}
            for esm in _iter_mappings():
                cfg = mapping_config(esm)
                if cfg is not None:
                    configs[cfg.uuid] = cfg
            for uuid, cfg in configs.items():
                runner = self.runners.get(uuid)
                if runner is None:
                    log.info("mapping %s: %s -> %s", uuid, cfg.stream_arn, cfg.function_name)
                    runner = self.runners[uuid] = MappingRunner(self, cfg)
                else:
                    runner.update(cfg)
                runner.sync_shards()
            for uuid in [u for u in self.runners if u not in configs]:
                log.info("mapping %s deleted", uuid)
                self.runners.pop(uuid).stop()

    def drained(self) -> bool:
        self.sync()
        return all(runner.drained() for runner in list(self.runners.values()))

    def mapping_details(self) -> dict[str, dict[str, Any]]:
        return {
            uuid: {
                "enabled": runner.config.enabled,
                "event_source_arn": runner.config.stream_arn,
                "batch_size": runner.config.batch_size,
                "maximum_batching_window_seconds": runner.config.window,
            }
            for uuid, runner in list(self.runners.items())
        }

    def stop(self, timeout: float = 5.0) -> None:
        """Stops polling, kills the workers (ending invocations in flight), then joins."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        runners = list(self.runners.values())
        for runner in runners:
            runner.stop()
        self.pool.shutdown()
        deadline = time.monotonic() + timeout
        for runner in runners:
            with contextlib.suppress(Exception):
                runner.join(max(0.0, deadline - time.monotonic()))
