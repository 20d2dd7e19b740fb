"""Lambda entry points: ``update_view_counters`` (VIEW records) and ``update_vote_counters``
(VOTE records). Thin: parse + merge (``records``), apply (``apply`` via ``store``), then log,
emit metrics and answer with ``batchItemFailures``.

Environment: TABLE_NAME, SUMMARY_INDEX_SHARDS (default 4), POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL; optional APPLY_CONCURRENCY (default 16)
and MARK_RETENTION_SECONDS (default 90000 = 25 h).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from video_stats.apply import Applier, ApplyConfig, BatchResult, StaleMarkCache, SummaryWriter
from video_stats.marks import DEFAULT_RETENTION_SECONDS, shard_tag
from video_stats.model import ItemType
from video_stats.records import MalformedEvent, parse_batch
from video_stats.store import SummaryStore

logger = Logger()
# A default namespace: without one Powertools raises after the writes, and the batch would
# fail (and be retried) although it was applied.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VideoStats"))

FUNCTIONS: Final[dict[ItemType, str]] = {"VIEW": "views", "VOTE": "votes"}
MAX_SKIP_LOGS: Final = 50  # per batch; the metric still counts every skipped record


@dataclass
class Runtime:
    """What survives between invocations of one container (built on first use)."""

    writer: SummaryWriter
    executor: Executor | None
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    cache: StaleMarkCache = field(default_factory=StaleMarkCache)
    warned_no_shard: bool = False


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def configure(runtime: Runtime | None) -> None:
    """Install a runtime (tests) or drop it so the next call builds one from the environment."""
    global _runtime  # noqa: PLW0603 - one runtime per container, by design
    with _runtime_lock:
        _runtime = runtime


def _get_runtime() -> Runtime:
    global _runtime  # noqa: PLW0603
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(
                writer=SummaryStore.from_env(),
                executor=ThreadPoolExecutor(
                    max_workers=int(os.environ.get("APPLY_CONCURRENCY", "16")),
                    thread_name_prefix="apply",
                ),
                retention_seconds=float(
                    os.environ.get("MARK_RETENTION_SECONDS", DEFAULT_RETENTION_SECONDS)
                ),
            )
        return _runtime


def _shard_tag(event: Mapping[str, Any], records: list[Any], runtime: Runtime) -> str:
    shard_id = event.get("shardId")
    if isinstance(shard_id, str) and shard_id:
        return shard_tag(shard_id)
    # No shardId: only tumbling-window events carry it. One mark per stream is exact only
    # while the stream has a single open shard (see marks.py).
    if not runtime.warned_no_shard:
        runtime.warned_no_shard = True
        logger.warning(
            "event has no shardId: exactly-once marks fall back to one per stream; "
            "set TumblingWindowInSeconds on the event source mapping"
        )
    arn = event.get("eventSourceARN") or (records[0].get("eventSourceARN") if records else None)
    return shard_tag(str(arn or "stream"))


def handle(event: Mapping[str, Any], context: Any, item_type: ItemType) -> dict[str, Any]:
    """Process one stream batch; returns the partial batch response."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("event has no Records list")
    runtime = _get_runtime()
    response: dict[str, Any] = {"batchItemFailures": []}
    if "window" in event or "shardId" in event:
        response["state"] = {}  # a tumbling-window response must carry a state
    metrics.add_metric(name="RecordsReceived", unit=MetricUnit.Count, value=len(records))
    if not records:
        return response

    batch = parse_batch(records, item_type)
    for skipped in batch.skipped[:MAX_SKIP_LOGS]:
        logger.warning(
            "record skipped",
            sequence_number=skipped.sequence_number,
            reason=skipped.reason,
        )
    if len(batch.skipped) > MAX_SKIP_LOGS:
        logger.warning("more records skipped", count=len(batch.skipped) - MAX_SKIP_LOGS)
    if batch.oldest_created is not None:
        metrics.add_metric(
            name="OldestRecordAgeSeconds",
            unit=MetricUnit.Seconds,
            value=max(0.0, time.time() - batch.oldest_created),
        )

    applier = Applier(
        runtime.writer,
        ApplyConfig(
            function=FUNCTIONS[item_type],
            shard_tag=_shard_tag(event, records, runtime),
            retention_seconds=runtime.retention_seconds,
        ),
        executor=runtime.executor,
        cache=runtime.cache,
    )
    result = applier.apply(batch, _remaining_seconds(context))
    _report(batch.skipped, result)
    if result.failure is not None:
        response["batchItemFailures"] = [{"itemIdentifier": result.failure}]
    return response


def _remaining_seconds(context: Any) -> Callable[[], float] | None:
    get_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get_ms):
        return None
    return lambda: float(get_ms()) / 1000.0


def _report(skipped: list[Any], result: BatchResult) -> None:
    for key, error in result.failed_keys[:MAX_SKIP_LOGS]:
        logger.error("summary update failed", summary=f"{key.kind}#{key.id}"[:200], error=error)
    metrics.add_metric(name="RecordsApplied", unit=MetricUnit.Count, value=result.applied_records)
    metrics.add_metric(name="RecordsSkippedInvalid", unit=MetricUnit.Count, value=len(skipped))
    metrics.add_metric(
        name="RecordsSuppressedDuplicate", unit=MetricUnit.Count, value=result.suppressed_records
    )
    metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=result.retried_records)
    metrics.add_metric(name="SummaryWrites", unit=MetricUnit.Count, value=result.writes)
    metrics.add_metric(name="SummaryReads", unit=MetricUnit.Count, value=result.reads)
    logger.info(
        "batch applied",
        keys=result.keys,
        writes=result.writes,
        reads=result.reads,
        applied=result.applied_records,
        suppressed=result.suppressed_records,
        skipped=len(skipped),
        retry_from=result.failure,
    )


@metrics.log_metrics
@logger.inject_lambda_context
def update_view_counters(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, "VIEW")


@metrics.log_metrics
@logger.inject_lambda_context
def update_vote_counters(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, "VOTE")
