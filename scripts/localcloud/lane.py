"""One lane of a shard worker (``shardworker``): one sequence of batches of a shard, all of the
shard's records when ``ParallelizationFactor`` is 1. The worker's reader hands a lane the records
of its partition keys, in order; the lane invokes the function one batch at a time with
Lambda's batching, retry, bisect and partial-batch rules (``batching``, ``retrypolicy``),
record age, on-failure messages naming the shard, and tumbling windows (``windows``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from localcloud import batching, protocol, retrypolicy
from localcloud.batching import Record
from localcloud.faults import FaultPlan
from localcloud.invocation import InvokeResult, function_spec
from localcloud.mappingconfig import MappingConfig
from localcloud.shardreader import IDLE_POLL_SECONDS
from localcloud.windows import window_fields

if TYPE_CHECKING:
    from localcloud.shardworker import ShardWorker

log = logging.getLogger("localcloud.engine")

STREAM_RETENTION_SECONDS = 24 * 3600
REPLAY_ATTEMPTS = 3


def _injected_failure(request_id: str = "") -> InvokeResult:
    return InvokeResult(
        False, request_id, None, "LocalCloud.InjectedFailure", "fault injection: invocation failed"
    )


class Lane:
    """One sequence of batches of a shard; all of a shard's records when the factor is 1."""

    def __init__(self, worker: ShardWorker, number: int) -> None:
        self.worker = worker
        self.runner = worker.runner
        self.engine = worker.engine
        self.shard_id = worker.shard_id
        self.pending: deque[Record] = deque()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.retry = retrypolicy.RetryState()
        self.retry_at = 0.0
        self.in_flight = False
        # Held from reading the mapping's Enabled flag to the end of the invocation it allows:
        # a disabled mapping is drained once no lane holds it (``busy``).
        self.cycle = threading.Lock()
        self.delivered_through = -1  # shard index of the last record delivered once
        self.last_request_id: str | None = None
        # Tumbling window: the open window and the state the function returned for it.
        self.window: tuple[float, float] | None = None
        self.window_state: Any = {}
        self.final_attempts = 0
        self.final_draw: bool | None = None  # final_invoke_records, drawn once per window
        # Shard indices of records a bisected batch's second half delivered out of order and
        # acknowledged (bisect_out_of_order fault): checkpointed, not delivered, once reached.
        self.acked_early: set[int] = set()
        # When the current batching window began: "the next batching window begins as soon as
        # the previous function invocation completes" (design §7).
        self.window_began = time.monotonic()
        suffix = f"-{number}" if number else ""
        self.thread = threading.Thread(
            target=self._run, name=f"lane-{worker.shard_id[-8:]}{suffix}", daemon=True
        )

    @property
    def stats(self) -> Any:
        return self.runner.stats

    def idle(self, allow_window: bool = False) -> bool:
        return not self.in_flight and not self.pending and (allow_window or self.window is None)

    def _head(self, count: int) -> list[Record]:
        with self.lock:
            return [self.pending[i] for i in range(min(count, len(self.pending)))]

    def _drop_head(self, count: int) -> None:
        with self.lock:
            for _ in range(min(count, len(self.pending))):
                self.acked_early.discard(self.pending.popleft().index)
        self.retry = self.retry.consumed(count)

    def _events(self, records: list[Record]) -> list[dict[str, Any]]:
        """The records as the function gets them (shifted by the clock_skew_seconds fault)."""
        skew = self.engine.faults.config.clock_skew_seconds
        return [protocol.with_clock_skew(r.event, skew) for r in records]

    def _note_delivery(self, records: list[Record], now: float) -> None:
        """Delay figures count each record's first delivery only."""
        fresh = [r for r in records if r.index > self.delivered_through]
        if fresh:
            self.stats.delivered([max(0.0, now - r.created) for r in fresh])
            self.delivered_through = fresh[-1].index

    def _batching_window_start(self) -> float:
        """The start of the batching window the head record waits in (design §7)."""
        if not self.pending:
            return self.window_began
        return batching.window_start(self.window_began, self.pending[0].read_at)

    # --- the loop --------------------------------------------------------------------------

    def busy(self) -> bool:
        """An invocation is running or about to start (its Enabled check has passed)."""
        return self.cycle.locked()

    def _run(self) -> None:
        stop = self.worker.stop_event
        while not stop.is_set():
            try:
                with self.cycle:
                    cfg = self.runner.config
                    enabled = cfg.enabled
                    if enabled and self._window_due(cfg):
                        self._finalize_window(cfg)
                        continue
                    batch = self._next_batch(cfg) if enabled else []
                    if batch:
                        self._process(cfg, batch)
                        continue
                if not enabled:
                    stop.wait(0.2)
                    continue
                self.wake.wait(self._idle_time(cfg))
                self.wake.clear()
            except Exception:
                log.exception("mapping %s shard %s: engine error", cfg.uuid, self.shard_id)
                self.in_flight = False
                stop.wait(0.5)

    def _idle_time(self, cfg: MappingConfig) -> float:
        now = time.monotonic()
        wake = [now + IDLE_POLL_SECONDS]
        if self.pending:
            wake.append(self._batching_window_start() + cfg.window)
            wake.append(self.retry_at)
        if self.window is not None:
            wake.append(now + max(self.window[1] - self.worker.now(), self.retry_at - now))
        return max(0.005, min(wake) - now)

    def _next_batch(self, cfg: MappingConfig) -> list[Record]:
        self._expire(cfg)
        if not self.pending or time.monotonic() < self.retry_at:
            return []
        with self.lock:
            pending = list(self.pending)
        if (
            cfg.tumbling_window > 0
            and self.window is not None
            and batching.window_of(pending[0].created, cfg.tumbling_window) != self.window
        ):
            return []  # the open window gets its final invocation first
        count = batching.take(
            pending,
            batch_size=cfg.batch_size,
            batching_window=cfg.window,
            tumbling_window=cfg.tumbling_window,
            now=time.monotonic(),
            window_start=self._batching_window_start(),
            ended=self.worker.reader.ended,
            pinned=self.retry.pinned,
        )
        return pending[:count]

    # --- tumbling windows --------------------------------------------------------------------

    def _window_due(self, cfg: MappingConfig) -> bool:
        """The open window ended (by time, or with its shard) and holds no more records."""
        if self.window is None:
            return False
        if cfg.tumbling_window <= 0:  # turned off while a window was open
            self.window, self.window_state, self.final_draw = None, {}, None
            return False
        if time.monotonic() < self.retry_at:
            return False
        if self.pending:  # due once the next record belongs to a later window
            head = self.pending[0]
            if batching.window_of(head.created, cfg.tumbling_window) != self.window:
                return True
            # The shard ended and its last records, all of this window, fit one batch: under
            # the final_invoke_records fault they ride on the final invocation.
            return (
                self.worker.reader.ended
                and self.retry.pinned is None
                and len(self._final_batch(cfg)) == len(self.pending)
                and self._final_carries_records()
            )
        if self.worker.reader.ended:
            return True  # the shard ended: so does its window
        # Records are stamped when written: once the clock is past the end (and the reader
        # has caught up), nothing more can fall into the window.
        return self.worker.now() >= self.window[1] and self.worker.reader.caught_up

    def _final_carries_records(self) -> bool:
        if self.final_draw is None:
            self.final_draw = self.engine.faults.final_invoke_with_records()
        return self.final_draw

    def _final_records(self, cfg: MappingConfig) -> list[Record]:
        """The records a final invocation carries: none, or under the final_invoke_records
        fault the shard's records waiting at the window's end (the next window's first batch,
        or the shard's last records when the window ends with its shard)."""
        if not self.pending or not self._final_carries_records():
            return []
        return self._final_batch(cfg)

    def _final_batch(self, cfg: MappingConfig) -> list[Record]:
        """The head of the queue batched as usual, without waiting for a batching window."""
        with self.lock:
            pending = list(self.pending)
        count = batching.take(
            pending,
            batch_size=cfg.batch_size,
            batching_window=0,
            tumbling_window=cfg.tumbling_window,
            now=time.monotonic(),
            window_start=0.0,
            ended=True,
            pinned=self.retry.pinned,
        )
        return pending[:count]

    def _finalize_window(self, cfg: MappingConfig) -> None:
        assert self.window is not None
        self.in_flight = True
        try:
            records = self._final_records(cfg)
            now = self.worker.now()
            if self.final_attempts:
                self.stats.add("retries")
            self._note_delivery(records, now)
            payload, outcome = self._deliver(cfg, records, now, final=True)
            response = protocol.COMPLETE_SUCCESS
            if outcome.ok and records:
                response = protocol.parse_batch_response(
                    outcome.payload, [r.seq for r in records], cfg.report_failures
                )
            if outcome.ok and response.invalid is None:
                self.stats.add("window_final_invocations")
                self.runner.remember(self.shard_id, payload)
                self.window, self.window_state, self.final_attempts = None, {}, 0
                self.final_draw = None
                if records:
                    # Acknowledged like any batch: checkpoint past them, or before the lowest
                    # reported failure.
                    self.stats.add("window_final_records", len(records))
                    if response.failed_from is None:
                        self._drop_head(len(records))
                        self._done(cfg, records)
                        self.retry = self.retry.checkpointed()
                        self.retry_at = 0.0
                    else:
                        self._partially_failed(cfg, records, response.failed_from)
                return
            if outcome.ok:
                self.stats.add("invalid_responses")
            else:
                self.stats.shard_add(self.shard_id, "function_errors")
            # Lambda holds the shard until the final invocation succeeds.
            self.final_attempts += 1
            self.retry_at = time.monotonic() + retrypolicy.delay(self.final_attempts)
        finally:
            self.in_flight = False
            self.window_began = time.monotonic()

    # --- one batch ---------------------------------------------------------------------------

    def _expire(self, cfg: MappingConfig) -> None:
        limit = STREAM_RETENTION_SECONDS if cfg.max_age < 0 else cfg.max_age
        now = self.worker.now()
        expired = 0
        with self.lock:
            for record in self.pending:
                if now - record.created <= limit:
                    break
                expired += 1
        if expired:
            self._give_up(cfg, self._head(expired), protocol.RECORD_AGE_EXCEEDED)

    def _process(self, cfg: MappingConfig, batch: list[Record]) -> None:
        if self.acked_early and all(r.index in self.acked_early for r in batch):
            # Acknowledged when delivered out of order (bisect_out_of_order): checkpoint only.
            self._note_delivery(batch, self.worker.now())
            self._drop_head(len(batch))
            self._done(cfg, batch)
            self.retry = self.retry.checkpointed()
            self.retry_at = 0.0
            return
        self.in_flight = True
        try:
            self.stats.add("retries" if self.retry.invocations else "batches")
            now = self.worker.now()
            self._note_delivery(batch, now)
            if cfg.tumbling_window > 0:
                self.window = self.window or batching.window_of(
                    batch[0].created, cfg.tumbling_window
                )
            event, result = self._deliver(cfg, batch, now)
            self.retry = self.retry.invoked()
            self.last_request_id = result.request_id
            self._handle(cfg, batch, event, result)
        finally:
            self.in_flight = False
            self.window_began = time.monotonic()

    def _deliver(
        self, cfg: MappingConfig, records: list[Record], now: float, *, final: bool = False
    ) -> tuple[bytes, InvokeResult]:
        """One invocation with ``records``: the event (with the tumbling window's fields when
        the mapping has windows and one is open), the call, and its service metrics
        (IteratorAge: the age of the last record, none without records)."""
        body: dict[str, Any] = {"Records": self._events(records)}
        if cfg.tumbling_window > 0 and self.window is not None:
            body.update(
                window_fields(
                    shard_id=self.shard_id,
                    stream_arn=cfg.stream_arn,
                    window=self.window,
                    state=self.window_state,
                    final=final,
                    terminated_early=final and now < self.window[1],
                )
            )
        event = json.dumps(body).encode()
        result, _ = self._invoke(cfg, event, len(records))
        age = now - records[-1].created if records else None
        self.engine.metrics.invoked(cfg.function_arn, result, age)
        return event, result

    def _invoke(
        self, cfg: MappingConfig, event: bytes, size: int
    ) -> tuple[InvokeResult, FaultPlan]:
        plan = self.engine.faults.plan_invocation(size)
        self.stats.shard_add(self.shard_id, "invocations")
        if plan.fail_before:
            self.stats.add("injected_failures")
            return _injected_failure(), plan
        result = self._run_function(cfg, event, plan.kill_after_writes)
        if plan.kill_after_writes is not None and result.worker_exited:
            self.stats.add("injected_kills")
        if plan.fail_after and result.ok:
            self.stats.add("injected_failures")
            result = _injected_failure(result.request_id)
        return result, plan

    def _run_function(
        self, cfg: MappingConfig, event: bytes, kill_after_writes: int | None = None
    ) -> InvokeResult:
        try:
            function = self.runner.function()
        except Exception as exc:
            return InvokeResult(False, "", None, "ResourceNotFoundException", str(exc))
        handle = self.engine.pool.invoke(
            function_spec(function), lambda: bytes(function.code_bytes), event, kill_after_writes
        )
        while not handle.wait(0.5):
            pass
        return handle.result

    def _handle(
        self, cfg: MappingConfig, batch: list[Record], event: bytes, result: InvokeResult
    ) -> None:
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
            self.stats.shard_add(self.shard_id, "function_errors")
            log.info(
                "mapping %s shard %s: %s: %s",
                cfg.uuid,
                self.shard_id,
                result.error_type,
                (result.error_message or "")[:300],
            )
        self._apply(cfg, retrypolicy.after_batch_failure(
            self.retry, len(batch), cfg.bisect, cfg.max_retries
        ), batch)  # fmt: skip

    def _succeeded(self, cfg: MappingConfig, batch: list[Record], event: bytes) -> None:
        self._drop_head(len(batch))
        self._done(cfg, batch)
        self.retry = self.retry.checkpointed()
        self.retry_at = 0.0
        self.runner.remember(self.shard_id, event)
        faults = self.engine.faults
        if faults.duplicate_batch():
            self.stats.add("duplicate_deliveries")
            self.stats.shard_add(self.shard_id, "invocations")
            self._run_function(cfg, event)
        if faults.replay_range():
            self._replay(cfg)

    def _replay(self, cfg: MappingConfig) -> None:
        """Re-delivers a range of batches already processed, of this shard or its parent, as
        a mapping re-created at TRIM_HORIZON would (the events as first sent)."""
        events, from_parent = self.runner.replay_range(self.shard_id, self.worker.parent_id)
        if not events:
            return
        self.stats.add("replayed_batches", len(events))
        if from_parent:
            self.stats.add("replayed_parent_batches", len(events))
        for event in events:
            for _ in range(REPLAY_ATTEMPTS):
                self.stats.shard_add(self.shard_id, "invocations")
                if self._run_function(cfg, event).ok:
                    break

    def _done(self, cfg: MappingConfig, records: list[Record]) -> None:
        if records:
            self.stats.shard_add(self.shard_id, "records_delivered", len(records))
            self.stats.record_age(self.shard_id, self.worker.now() - records[-1].created)

    def _partially_failed(self, cfg: MappingConfig, batch: list[Record], failed_from: int) -> None:
        self.stats.add("partial_failures")
        self._done(cfg, batch[:failed_from])
        with self.lock:
            for _ in range(failed_from):
                self.pending.popleft()
        decision = retrypolicy.after_partial_failure(
            self.retry, failed_from, len(batch) - failed_from, cfg.bisect, cfg.max_retries
        )
        self._apply(cfg, decision, batch[failed_from:])

    def _apply(
        self, cfg: MappingConfig, decision: retrypolicy.Decision, failed: list[Record]
    ) -> None:
        self.retry = decision.state
        if decision.bisected:
            self.stats.add("bisections")
            if self.engine.faults.second_half_first():
                self._second_half_first(cfg, failed[decision.state.segments[0] :])
        if decision.give_up:
            self._give_up(cfg, failed[: decision.give_up], protocol.RETRY_ATTEMPTS_EXHAUSTED)
            return
        self.retry_at = time.monotonic() + decision.retry_after

    def _second_half_first(self, cfg: MappingConfig, second: list[Record]) -> None:
        """The bisect_out_of_order fault: the second half of a bisected batch is delivered
        before the first. If it succeeds its records are acknowledged (``acked_early``) and
        checkpointed, without another delivery, once the first half is done."""
        self.stats.add("out_of_order_deliveries")
        _, result = self._deliver(cfg, second, self.worker.now())
        if not result.ok:
            self.stats.shard_add(self.shard_id, "function_errors")
            return
        response = protocol.parse_batch_response(
            result.payload, [r.seq for r in second], cfg.report_failures
        )
        if response.invalid is not None or response.failed_from is not None:
            return  # delivered again, in order
        if cfg.tumbling_window > 0:
            if not (isinstance(result.payload, dict) and "state" in result.payload):
                return
            self.window_state = result.payload["state"]
        self.acked_early.update(r.index for r in second)

    def _give_up(
        self, cfg: MappingConfig, records: list[Record], condition: protocol.Condition
    ) -> None:
        self._drop_head(len(records))
        failed_invocation = self.retry.attempts > 0
        now = self.worker.now()
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
            invoke_count=self.retry.invocations,
            function_error="Unhandled" if failed_invocation else None,
            request_id=self.last_request_id,
            now=now,
        )
        self.stats.shard_add(self.shard_id, "records_discarded", len(records))
        self.stats.record_age(self.shard_id, now - records[-1].created)
        if cfg.destination_arn:
            try:
                self.engine.destinations.send(cfg.destination_arn, json.dumps(message))
                self.stats.add("records_to_failure_destination", len(records))
                self.stats.add("failure_messages")
            except Exception:
                log.exception("mapping %s: sending to %s failed", cfg.uuid, cfg.destination_arn)
        log.info(
            "mapping %s shard %s: %s, %d record(s) %s..%s given up",
            cfg.uuid, self.shard_id, condition, len(records), records[0].seq, records[-1].seq,
        )  # fmt: skip
        self.retry = self.retry.checkpointed()
        self.retry_at = 0.0
