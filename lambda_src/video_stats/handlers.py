"""Lambda entry points: ``update_view_counters`` (VIEW records) and ``update_vote_counters``
(VOTE records). Thin: parse + merge (``records``), apply (``apply`` via ``store``), then log,
emit metrics and answer with ``batchItemFailures``.

Environment: TABLE_NAME, SUMMARY_INDEX_SHARDS (default 4), POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE, POWERTOOLS_LOG_LEVEL, MARK_RETENTION_SECONDS (the mapping's
MaximumRecordAgeInSeconds + a margin, set by modules/stream_function; default 90000 = 25 h);
optional APPLY_CONCURRENCY (default 16), ALLOW_EVENTS_WITHOUT_SHARD_ID and LINEAGE_PRUNING.

``LINEAGE_PRUNING=false`` switches lineage pruning and the replay guard off (``marks``): they
rest on Lambda reading a parent shard to its end before its children, which DynamoDB's guide
requires of every consumer and Lambda's FAQ implies ("strictly serialized, per shard") but
Lambda's guide does not state in so many words. Off, marks are one per shard of the last
retention period (bigger items, the same exactness as before).

Events without ``shardId``: only tumbling-window events name their shard, and the
exactly-once marks are per shard (``marks``), so such an event raises (the batch fails and is
retried, then goes to the on-failure queue): a mapping without a window would otherwise count
records of different shards against one mark and lose some. ``ALLOW_EVENTS_WITHOUT_SHARD_ID=
true`` is the explicit opt-out for a stream with exactly one shard at a time (a unit test, a
local endpoint with one partition): the marks then fall back to one per stream.

The final invocation of a tumbling window (``isFinalInvokeForWindow``) without records is
answered before anything else: Lambda holds the shard until it succeeds. No AWS page says a final
invocation carries no records, so one that does is processed like any batch; if a key fails in
it, the invocation raises instead of answering ``batchItemFailures`` (what Lambda does with a
partial failure of a final invocation is not documented): Lambda retries it and the marks make
the retry exact (docs/design.md §8, step 11).

Lineage (``lineage``) is fail-safe: when DescribeStream keeps failing and no snapshot vouches
for the shard's descendants, the batch is reported as failed from its first record (metric
``LineageErrors``) and retried by Lambda, never applied without the replay guard.

Custom metrics cost $0.30 a month each for every hour they are published in, so the handlers
publish (EMF) only counters that a healthy pipeline leaves at zero, and only when non-zero:
``RecordsSkippedInvalid`` (its alarm), ``RecordsSuppressedDuplicate``, ``RecordsRetried``,
``LineageErrors``, and the integrity signals ``RecordsOutOfOrder``, ``KeysReplayGuarded``,
``UnknownShard``, summed in ``IntegrityEvents`` (one alarm per function). The volume of a batch
(records received and applied, summary writes and reads, the oldest record's age) is in its
"batch applied" log line, which the dashboard queries with Logs Insights; Lambda's own
``IteratorAge`` watches the lag (docs/design.md §6, §9).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from video_stats import streams
from video_stats.apply import Applier, ApplyConfig, BatchResult, StaleMarkCache, SummaryWriter
from video_stats.lineage import Lineage, LineageCache, LineageUnavailable
from video_stats.marks import DEFAULT_RETENTION_SECONDS, names_of, shard_marks
from video_stats.model import ItemType
from video_stats.records import Batch, MalformedEvent, parse_batch, parse_sequence_number
from video_stats.store import SummaryStore

logger = Logger()
# Counters are published only when non-zero (``_count``), so an invocation that counted nothing
# (an empty final window invocation) is normal, not worth Powertools' warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
# A default namespace: without one Powertools raises after the writes, and the batch would
# fail (and be retried) although it was applied.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "VideoStats"))

FUNCTIONS: Final[dict[ItemType, str]] = {"VIEW": "views", "VOTE": "votes"}
MAX_SKIP_LOGS: Final = 50  # per batch; the metric still counts every skipped record
#: How many of a shard's nearest ancestors / descendants one UpdateItem names (REMOVE / must be
#: absent). On AWS a shard lives ~4 h and the stream keeps 24 h, so 8 generations cover every
#: shard whose records can still be delivered, and the bound keeps the expression far below
#: DynamoDB's limits (4 KB, 300 operators) however long a lineage grows (a local stream rotating
#: every few seconds is never trimmed). Older ancestors' marks that an item still holds are
#: found on the item the update returns and removed like stale marks (docs/design.md §8).
MAX_NAMED_ANCESTORS: Final = 8
MAX_NAMED_DESCENDANTS: Final = 16  # nearest first: room for a split or two
#: Window-state key: the record the last invocation asked Lambda to resume the shard from.
RESUME_FROM: Final = "resumeFrom"


class MissingShardId(MalformedEvent):
    """An event without ``shardId`` while the opt-out is off."""


class FinalInvocationIncomplete(RuntimeError):
    """A final window invocation that carried records could not apply all of them: raised so
    that Lambda retries the invocation (the marks suppress what was applied)."""


@dataclass
class Runtime:
    """What survives between invocations of one container (built on first use)."""

    writer: SummaryWriter
    executor: Executor | None
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    cache: StaleMarkCache = field(default_factory=StaleMarkCache)
    #: None: no lineage source (tests), as with LINEAGE_PRUNING=false
    lineage: LineageCache | None = None
    allow_missing_shard_id: bool = False
    lineage_pruning: bool = True
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
                lineage=_lineage_cache(),
                allow_missing_shard_id=_flag("ALLOW_EVENTS_WITHOUT_SHARD_ID"),
                lineage_pruning=_flag("LINEAGE_PRUNING", default=True),
            )
        return _runtime


def _flag(name: str, *, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes")


def _lineage_cache() -> LineageCache:
    client = streams.client_from_env()
    return LineageCache(
        lambda stream_arn: streams.describe_shards(client, stream_arn),
        fetch_children=lambda stream_arn, shard: streams.describe_children(
            client, stream_arn, shard
        ),
    )


def _stream_arn(event: Mapping[str, Any], records: list[Any]) -> str | None:
    arn = event.get("eventSourceARN") or (records[0].get("eventSourceARN") if records else None)
    return arn if isinstance(arn, str) and arn else None


def _shard_config(
    event: Mapping[str, Any], records: list[Any], runtime: Runtime, function: str
) -> tuple[str, ApplyConfig]:
    """The shard's mark names, and its ancestors' and descendants' (lineage pruning, replay
    guard)."""
    shard_id = event.get("shardId")
    arn = _stream_arn(event, records)
    if not (isinstance(shard_id, str) and shard_id):
        if not runtime.allow_missing_shard_id:
            raise MissingShardId(
                "event has no shardId: the event source mapping needs a tumbling window "
                "(TumblingWindowInSeconds > 0); set ALLOW_EVENTS_WITHOUT_SHARD_ID=true only "
                "for a stream with a single shard"
            )
        if not runtime.warned_no_shard:
            runtime.warned_no_shard = True
            logger.warning("event has no shardId: one exactly-once mark per stream (opt-out)")
        identity = arn or "stream"
        return identity, ApplyConfig(function, shard_marks(function, identity))
    lineage = Lineage()
    if arn and runtime.lineage_pruning and runtime.lineage is not None:
        lineage = runtime.lineage.get(arn, shard_id)
        if not lineage.knows(shard_id):
            # A fresh listing lacks the shard: its lineage is unknowable, so it is applied like
            # a shard without relatives (exact, unpruned, unguarded) and counted loudly.
            _count("UnknownShard", 1, integrity=True)
            logger.warning("shard not found by DescribeStream: marks not pruned", shard=shard_id)
    ancestors = lineage.ancestors(shard_id)
    return shard_id, ApplyConfig(
        function,
        shard_marks(function, shard_id),
        retention_seconds=runtime.retention_seconds,
        drop=names_of(function, ancestors[:MAX_NAMED_ANCESTORS]),
        forbid=names_of(function, lineage.descendants(shard_id)[:MAX_NAMED_DESCENDANTS]),
        obsolete=frozenset(names_of(function, ancestors[MAX_NAMED_ANCESTORS:])),
    )


def handle(event: Mapping[str, Any], context: Any, item_type: ItemType) -> dict[str, Any]:
    """Process one stream batch; returns the partial batch response."""
    windowed = "window" in event or "shardId" in event
    final = event.get("isFinalInvokeForWindow") is True
    records = event.get("Records")
    if final and not records:
        # Answered first: Lambda suspends the shard until this invocation succeeds.
        return {"batchItemFailures": [], "state": {}}
    if not isinstance(records, list):
        raise MalformedEvent("event has no Records list")
    runtime = _get_runtime()
    response: dict[str, Any] = {"batchItemFailures": []}
    if windowed:
        response["state"] = {}  # a tumbling-window response must carry a state
    if not records:
        return response

    function = FUNCTIONS[item_type]
    try:
        shard, config = _shard_config(event, records, runtime, function)
    except LineageUnavailable as err:
        return _retry_without_lineage(records, response, windowed, final, str(err))
    finally:
        _report_lineage_errors(runtime)
    batch = parse_batch(records, item_type)
    for skipped in batch.skipped[:MAX_SKIP_LOGS]:
        logger.warning(
            "record skipped",
            sequence_number=skipped.sequence_number,
            reason=skipped.reason,
        )
    if len(batch.skipped) > MAX_SKIP_LOGS:
        logger.warning("more records skipped", count=len(batch.skipped) - MAX_SKIP_LOGS)
    _check_resume_point(shard, event.get("state"), records)

    applier = Applier(runtime.writer, config, executor=runtime.executor, cache=runtime.cache)
    result = applier.apply(batch, _remaining_seconds(context))
    _report(len(records), batch, result)
    if result.failure is not None:
        reason = f"records from {result.failure} not applied"
        return _resume_from(result.failure, response, windowed, final, reason)
    return response


def _resume_from(
    identifier: str, response: dict[str, Any], windowed: bool, final: bool, reason: str
) -> dict[str, Any]:
    """Ask Lambda to resume the shard at ``identifier``: the partial batch response, and the
    window state the shard's next invocation checks (``_check_resume_point``). A final window
    invocation raises instead (what Lambda does with its partial failure is not documented; a
    function error it retries)."""
    if final:
        raise FinalInvocationIncomplete(f"final window invocation: {reason}")
    response["batchItemFailures"] = [{"itemIdentifier": identifier}]
    if windowed:
        response["state"] = {RESUME_FROM: identifier}
    return response


def _retry_without_lineage(
    records: list[Any], response: dict[str, Any], windowed: bool, final: bool, error: str
) -> dict[str, Any]:
    """No snapshot vouches for the shard's descendants: nothing is applied and Lambda is asked
    to retry the whole batch (a final invocation raises, which Lambda retries too)."""
    first = min(
        (r["dynamodb"]["SequenceNumber"] for r in records),
        key=parse_sequence_number,
    )
    logger.warning("shard lineage unavailable: batch retried", error=error, retry_from=first)
    return _resume_from(first, response, windowed, final, f"lineage unavailable: {error}")


def _check_resume_point(shard: str, state: object, records: list[Any]) -> None:
    """After an invocation reported a failure at F, Lambda must resume the shard at F. The
    window state carries F to the next invocation of the shard (Lambda keeps the state per
    shard and window, whichever container runs it; if it drops the state of a partly failed
    invocation, nothing is checked, and nothing is flagged wrongly). A batch starting above F
    is the one delivery order the marks cannot make exact (``marks``): count it loudly so an
    alarm fires and ``reconcile --repair`` is run."""
    text = state.get(RESUME_FROM) if isinstance(state, Mapping) else None
    if not isinstance(text, str) or not text.isdigit():
        return
    expected = int(text)
    first = min(parse_sequence_number(r["dynamodb"]["SequenceNumber"]) for r in records)
    if first > expected:
        _count("RecordsOutOfOrder", len(records), integrity=True)
        logger.error(
            "batch starts after the record the function asked to resume from",
            shard=shard,
            expected=str(expected),
            first=str(first),
        )


def _remaining_seconds(context: Any) -> Callable[[], float] | None:
    get_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get_ms):
        return None
    return lambda: float(get_ms()) / 1000.0


def _count(name: str, value: float, *, integrity: bool = False) -> None:
    """Publish a metric only when it is non-zero: a custom metric is billed for every hour it
    is published in, and an alarm on a missing counter treats it as not breaching."""
    if value <= 0:
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if integrity:
        metrics.add_metric(name="IntegrityEvents", unit=MetricUnit.Count, value=value)


def _report_lineage_errors(runtime: Runtime) -> None:
    lineage = runtime.lineage
    if lineage is not None and lineage.errors:
        _count("LineageErrors", lineage.errors)
        logger.warning("DescribeStream failed", error=lineage.last_error, failures=lineage.errors)
        lineage.errors = 0


def _report(received: int, batch: Batch, result: BatchResult) -> None:
    for key, error in result.failed_keys[:MAX_SKIP_LOGS]:
        logger.error("summary update failed", summary=f"{key.kind}#{key.id}"[:200], error=error)
    _count("RecordsSkippedInvalid", len(batch.skipped))
    _count("RecordsSuppressedDuplicate", result.suppressed_records)
    _count("RecordsRetried", result.retried_records)
    # A replayed record that a descendant's mark suppressed: right for a replay, but also what
    # a parent record arriving after its child would look like (the premise of §8, step 8).
    _count("KeysReplayGuarded", result.replayed_keys, integrity=True)
    oldest = batch.oldest_created
    logger.info(
        "batch applied",
        received=received,
        keys=result.keys,
        writes=result.writes,
        reads=result.reads,
        applied=result.applied_records,
        suppressed=result.suppressed_records,
        retried=result.retried_records,
        skipped=len(batch.skipped),
        oldest_age_seconds=None if oldest is None else round(max(0.0, time.time() - oldest), 3),
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


#: The deployed ``handler`` setting of each entry point and the item type it counts (tools
#: tell a mapping's item type from its function's handler).
ENTRY_POINTS: Final[dict[str, ItemType]] = {
    f"{__name__}.{update_view_counters.__name__}": "VIEW",
    f"{__name__}.{update_vote_counters.__name__}": "VOTE",
}
