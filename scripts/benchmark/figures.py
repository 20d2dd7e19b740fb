"""The benchmark's arithmetic (pure, no I/O): lower bounds, per-event figures and the monthly
bill, from what one run of one configuration on one workload measured.

Definitions (the report repeats them):

* records: the base-table writes of the run (the workload's events plus the load test's delay
  probes), i.e. the stream records the pipeline exists for. "Per event" divides by it.
* invocations per 1,000 records; lower bound: one invocation per batch the mapping formed.
* summary writes: item writes to summary items, counted at the endpoint (an UpdateItem writes
  one item, a TransactWriteItems of two updates writes two); lower bound: per batch, one write
  per distinct summary key whose net change in that batch is not zero (a key whose changes
  cancel out needs no write).
* WRU: write request units at the endpoint (1 per KB written, 2 for a transactional item);
  lower bound: one plain (1 WRU) write per lower-bound write. GSI units are counted apart.
* monthly dollars for ``EVENTS_PER_DAY`` events a day over ``DAYS_PER_MONTH`` days at the
  prices of ``PRICE_SOURCES``: Lambda requests + GB-seconds (a duration model per invocation: the
  local engine does not measure AWS durations; ``benchmark.bill`` says how this project's is
  measured) + the summaries' WRU including their GSI writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, TypeVar

from video_stats.model import ItemType
from vstats.effects import batch_effect
from vstats.load_report import percentile

EVENTS_PER_DAY: Final = 1_000_000
DAYS_PER_MONTH: Final = 30
EVENTS_PER_MONTH: Final = EVENTS_PER_DAY * DAYS_PER_MONTH

T = TypeVar("T")


#: The one price table of the benchmark (us-east-1 list prices, USD, 30-day month, free tiers
#: not applied): field of ``Prices`` -> (unit, source). Checked 2026-12-06 with the project's
#: search tool against the AWS pricing pages named (where a page was not stored, against the
#: third-party copies named beside it). docs/design.md §6 repeats it.
PRICES_CHECKED: Final = "2026-12-06"
PRICE_SOURCES: Final = {
    "lambda_request_per_million": ("per million requests", "aws.amazon.com/lambda/pricing"),
    "gb_second_x86_64": ("per GB-second, x86_64", "aws.amazon.com/lambda/pricing"),
    "gb_second_arm64": ("per GB-second, arm64", "aws.amazon.com/lambda/pricing"),
    "wru_per_million": (
        "per million write request units (on-demand)",
        "aws.amazon.com/dynamodb/pricing/on-demand",
    ),
    "storage_gb_month": (
        "per GB-month of table storage (first 25 GB free, not applied)",
        "aws.amazon.com/dynamodb/pricing",
    ),
    "pitr_gb_month": (
        "per GB-month of table size with point-in-time recovery on",
        "aws.amazon.com/dynamodb/pricing/on-demand (continuous backups)",
    ),
    "custom_metric_month": (
        "per custom metric-month (first 10,000 metrics), prorated by the hour it is published",
        "aws.amazon.com/cloudwatch/pricing",
    ),
    "alarm_metric_month": (
        "per standard-resolution alarm metric-month (a metric-math alarm: per metric)",
        "aws.amazon.com/cloudwatch/pricing; infracost's CloudWatch resources (PR "
        "vreutova/infracost-idem-support#2)",
    ),
    "dashboard_month": (
        "per dashboard-month (3 free per account, not applied: list price)",
        "aws.amazon.com/cloudwatch/pricing",
    ),
    "log_ingestion_gb": (
        "per GB of logs ingested (standard class)",
        "aws.amazon.com/cloudwatch/pricing; c3x.dev CloudWatch Logs (us-east-1, June 2026)",
    ),
    "log_storage_gb_month": (
        "per GB-month of logs stored (archival)",
        "aws.amazon.com/cloudwatch/pricing; c3x.dev CloudWatch Logs (us-east-1, June 2026)",
    ),
    "sqs_request_per_million": (
        "per million standard-queue requests",
        "aws.amazon.com/sqs/pricing",
    ),
    "sns_publish_per_million": ("per million SNS publishes", "aws.amazon.com/sns/pricing"),
    "kms_key_month": ("per customer-managed KMS key-month", "aws.amazon.com/kms/pricing"),
}


@dataclass(frozen=True, slots=True)
class Prices:
    """The benchmark's prices (units and sources: ``PRICE_SOURCES``)."""

    lambda_request_per_million: float = 0.20
    gb_second_x86_64: float = 0.0000166667
    gb_second_arm64: float = 0.0000133334
    wru_per_million: float = 0.625
    storage_gb_month: float = 0.25
    pitr_gb_month: float = 0.20
    custom_metric_month: float = 0.30
    alarm_metric_month: float = 0.10
    dashboard_month: float = 3.00
    log_ingestion_gb: float = 0.50
    log_storage_gb_month: float = 0.03
    sqs_request_per_million: float = 0.40
    sns_publish_per_million: float = 0.50
    kms_key_month: float = 1.00

    def gb_second(self, architecture: str) -> float:
        if architecture == "arm64":
            return self.gb_second_arm64
        if architecture == "x86_64":
            return self.gb_second_x86_64
        raise ValueError(f"unknown architecture {architecture!r}")


PRICES: Final = Prices()


# --- the duration assumption -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DurationModel:
    """Billed milliseconds of one invocation: ``fixed_ms + per_write_ms * writes +
    per_record_ms * records`` (summary write requests and records of that invocation)."""

    fixed_ms: float
    per_write_ms: float = 0.0
    per_record_ms: float = 0.0

    def invocation_ms(
        self, writes_per_invocation: float, records_per_invocation: float = 0.0
    ) -> float:
        return (
            self.fixed_ms
            + self.per_write_ms * writes_per_invocation
            + self.per_record_ms * records_per_invocation
        )

    def describe(self) -> str:
        text = f"{self.fixed_ms:g} ms"
        if self.per_write_ms:
            text += f" + {self.per_write_ms:.3g} ms per summary write request"
        if self.per_record_ms:
            text += f" + {self.per_record_ms:.3g} ms per record"
        return text if text != f"{self.fixed_ms:g} ms" else f"{self.fixed_ms:g} ms per invocation"


_MODEL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:\+\s*(\d+(?:\.\d+)?)\s*(?:/w(?:rite)?)?)?\s*$")


def parse_duration_model(text: str) -> DurationModel:
    """``"25"`` or ``"30+0.5"`` (fixed ms + ms per summary write request). ValueError if bad."""
    match = _MODEL.match(text)
    if match is None:
        raise ValueError(f"duration model {text!r} is not MS or MS+MS_PER_WRITE (e.g. 30+0.5)")
    fixed, per_write = float(match.group(1)), float(match.group(2) or 0)
    if fixed <= 0 or fixed > 900_000:
        raise ValueError(f"duration model {text!r}: the fixed part must be in (0, 900000] ms")
    return DurationModel(fixed, per_write)


# --- lower bounds ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchBound:
    batches: int = 0
    records: int = 0
    distinct_keys: int = 0  # summed over batches: summary keys the batch's records touch
    changed_keys: int = 0  # summed over batches: keys whose net change is not zero

    def __add__(self, other: BatchBound) -> BatchBound:
        return BatchBound(
            self.batches + other.batches,
            self.records + other.records,
            self.distinct_keys + other.distinct_keys,
            self.changed_keys + other.changed_keys,
        )


def batch_bound(batches: Iterable[Sequence[Mapping[str, Any]]], item_type: ItemType) -> BatchBound:
    """The write lower bound of a sequence of batches of stream records (Lambda format) of one
    function, each merged by the handlers' own ``parse_batch``: one write per key whose net
    change in its batch is not zero."""
    total = BatchBound()
    for batch in batches:
        net = batch_effect(batch, item_type)
        changed = sum(1 for counters in net.values() if not counters.is_zero())
        total = total + BatchBound(1, len(batch), len(net), changed)
    return total


def split_batches(items: Sequence[T], sizes: Sequence[int]) -> list[Sequence[T]]:
    """Cut ``items`` (delivered in order) into consecutive batches of ``sizes``."""
    if any(size < 1 for size in sizes):
        raise ValueError("batch sizes must be >= 1")
    if sum(sizes) != len(items):
        raise ValueError(f"batch sizes add up to {sum(sizes)}, but {len(items)} records were read")
    batches: list[Sequence[T]] = []
    start = 0
    for size in sizes:
        batches.append(items[start : start + size])
        start += size
    return batches


def min_batches(delivered: int, batch_size: int) -> int:
    """Invocations if every batch were full (no batching window cut)."""
    return math.ceil(delivered / batch_size) if delivered else 0


# --- projection to the costed rate -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionStream:
    """One function's delivered records (in order) and its mapping settings."""

    records: Sequence[Mapping[str, Any]]
    item_type: ItemType
    batch_size: int
    window_seconds: float
    tumbling_window_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Projection:
    """The same records, batched as they would be at ``events_per_second``."""

    events_per_second: float
    batch_records: tuple[int, ...]  # per function
    invocations_per_event: float
    writes_per_event: float  # the lower bound of those batches
    batching_window_seconds: float = 0.0  # the longest of the functions' windows

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_per_second": round(self.events_per_second, 2),
            "batching_window_seconds": self.batching_window_seconds,
            "batch_records": list(self.batch_records),
            "invocations_per_1000_records": round(self.invocations_per_event * 1000, 3),
            "writes_per_event": round(self.writes_per_event, 4),
        }


def project(
    streams: Sequence[FunctionStream], records: int, events_per_second: float
) -> Projection | None:
    """Batch sizes at another arrival rate: a function receiving ``d`` records a second gets
    ``min(batch size, max(1, d * window))`` per invocation (the window fills a batch first at
    low rates); a tumbling window adds one closing call per window. Writes are the lower bound
    of those batches, which a design that meets its lower bound at the measured batching
    meets at any batching."""
    if records <= 0 or events_per_second <= 0:
        return None
    sizes: list[int] = []
    invocations = 0.0
    writes = 0
    for stream in streams:
        share = len(stream.records) / records * events_per_second
        size = max(1, min(stream.batch_size, round(share * stream.window_seconds)))
        sizes.append(size)
        batches = [stream.records[i : i + size] for i in range(0, len(stream.records), size)]
        bound = batch_bound(batches, stream.item_type)
        invocations += bound.batches
        writes += bound.changed_keys
        if stream.tumbling_window_seconds > 0 and stream.records:
            # Per record: closing calls a day / records a day.
            invocations += (
                records * (86_400 / stream.tumbling_window_seconds) / (events_per_second * 86_400)
            )
    window = max((stream.window_seconds for stream in streams), default=0.0)
    return Projection(
        events_per_second, tuple(sizes), invocations / records, writes / records, window
    )


# --- function logs -----------------------------------------------------------------------------


def parse_batch_sizes(log_text: str) -> list[int]:
    """Batch sizes in invocation order, from the ``received`` field of the handlers' "batch
    applied" log line (lambda_src/video_stats/handlers.py; a batch's volume is logged, not
    published as a metric, docs/design.md §6)."""
    sizes = []
    for line in log_text.splitlines():
        if '"batch applied"' not in line or not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        value = document.get("received") if isinstance(document, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            sizes.append(int(value))
    return sizes


_REPORT = re.compile(r"^REPORT RequestId: \S+\s+Duration: ([0-9.]+) ms")


def parse_report_durations(log_text: str) -> list[float]:
    """Milliseconds of each invocation, from the endpoint's REPORT lines."""
    return [float(m.group(1)) for line in log_text.splitlines() if (m := _REPORT.match(line))]


# --- percentiles and money ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthlyCost:
    lambda_requests: float
    lambda_compute: float
    dynamodb: float

    @property
    def total(self) -> float:
        return self.lambda_requests + self.lambda_compute + self.dynamodb

    def as_dict(self) -> dict[str, float]:
        return {
            "lambda_requests": round(self.lambda_requests, 2),
            "lambda_compute": round(self.lambda_compute, 2),
            "dynamodb": round(self.dynamodb, 2),
            "total": round(self.total, 2),
        }


def monthly_cost(
    *,
    invocations_per_event: float,
    ms_per_invocation: float,
    memory_mb: int,
    architecture: str,
    wru_per_event: float,
    events_per_month: int = EVENTS_PER_MONTH,
    prices: Prices = PRICES,
) -> MonthlyCost:
    invocations = invocations_per_event * events_per_month
    gb_seconds = invocations * ms_per_invocation / 1000.0 * memory_mb / 1024.0
    return MonthlyCost(
        lambda_requests=invocations * prices.lambda_request_per_million / 1e6,
        lambda_compute=gb_seconds * prices.gb_second(architecture),
        dynamodb=wru_per_event * events_per_month * prices.wru_per_million / 1e6,
    )


# --- one run's figures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionSettings:
    """What the bill depends on, per configuration (both functions alike)."""

    memory_mb: int
    architecture: str
    transactional: bool  # summary writes are TransactWriteItems (2 WRU per item)
    duration: DurationModel


@dataclass(slots=True)
class RunCounts:
    """Raw counts of one configuration on one workload (everything since the stats reset)."""

    events: int
    probes: int
    invocations: int
    batches: int
    records_delivered: int
    records_filtered_out: int
    summary_write_requests: int
    summary_item_writes: int
    summary_wru: int
    summary_gsi_wru: int
    base_wru: int  # the workload's own writes (identical for both designs), incl. GSI
    min_batches_at_batch_size: int = 0
    own_type_dropped: int = 0  # records of a function's own item type its filter dropped
    bound: BatchBound | None = None  # None: the batches could not be reconstructed
    bound_note: str | None = None
    retries: int = 0
    function_errors: int = 0
    write_seconds: float = 0.0
    achieved_rate: float = 0.0
    drain_seconds: float | None = None
    drained: bool = False
    probe_delays: list[float] = field(default_factory=list)
    invocation_delay: dict[str, float | None] = field(default_factory=dict)
    mismatches: int = 0
    loadtest_mismatches: int = 0
    touched_summaries: int = 0
    local_ms_per_invocation: float | None = None
    projection: Projection | None = None  # at EVENTS_PER_DAY
    events_by_kind: dict[str, int] = field(default_factory=dict)
    partitions: int = 1  # of the measured stream
    max_summary_item_bytes: int | None = None  # after the run, over the workload's summaries
    max_marks_per_item: int | None = None
    rejected_writes: int = 0  # conditional writes that failed (the endpoint's count)

    @property
    def records(self) -> int:
        return self.events + self.probes


def _ratio(numerator: float, denominator: float, scale: float = 1.0) -> float | None:
    return None if not denominator else numerator / denominator * scale


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def figures(counts: RunCounts, settings: FunctionSettings) -> dict[str, Any]:
    """Every figure of the report for one run (``results.json`` entry)."""
    records = counts.records
    bound = counts.bound
    writes_per_invocation = _ratio(counts.summary_write_requests, counts.invocations) or 0.0
    cost = monthly_cost(
        invocations_per_event=_ratio(counts.invocations, records) or 0.0,
        ms_per_invocation=settings.duration.invocation_ms(writes_per_invocation),
        memory_mb=settings.memory_mb,
        architecture=settings.architecture,
        wru_per_event=_ratio(counts.summary_wru + counts.summary_gsi_wru, records) or 0.0,
    )
    result: dict[str, Any] = {
        "events": counts.events,
        "probes": counts.probes,
        "records": records,
        "events_by_kind": dict(sorted(counts.events_by_kind.items())),
        "partitions": counts.partitions,
        "max_summary_item_bytes": counts.max_summary_item_bytes,
        "max_marks_per_item": counts.max_marks_per_item,
        "achieved_rate": _r(counts.achieved_rate, 1),
        "write_seconds": _r(counts.write_seconds, 2),
        "invocations": counts.invocations,
        "batches": counts.batches,
        # Invocations beyond the batches and their retries: a tumbling window's closing call.
        "window_closing_invocations": max(0, counts.invocations - counts.batches - counts.retries),
        "retries": counts.retries,
        "function_errors": counts.function_errors,
        "invocations_per_1000_records": _r(_ratio(counts.invocations, records, 1000.0), 3),
        "lower_bound_invocations_per_1000_records": _r(_ratio(counts.batches, records, 1000.0), 3),
        "full_batch_invocations_per_1000_records": _r(
            _ratio(counts.min_batches_at_batch_size, records, 1000.0), 3
        ),
        "records_delivered": counts.records_delivered,
        "records_filtered_out": counts.records_filtered_out,
        "own_type_records_dropped": counts.own_type_dropped,
        "summary_write_requests": counts.summary_write_requests,
        "summary_item_writes": counts.summary_item_writes,
        "write_requests_per_event": _r(_ratio(counts.summary_write_requests, records)),
        "writes_per_event": _r(_ratio(counts.summary_item_writes, records)),
        "lower_bound_writes": None,
        "distinct_keys": None,
        "lower_bound_writes_per_event": None,
        "distinct_keys_per_event": None,
        "lower_bound_note": counts.bound_note,
        "wru_per_event": _r(_ratio(counts.summary_wru, records)),
        "lower_bound_wru_per_event": None,
        "gsi_wru_per_event": _r(_ratio(counts.summary_gsi_wru, records)),
        "base_wru_per_event": _r(_ratio(counts.base_wru, records)),
        "drain_seconds": _r(counts.drain_seconds, 2),
        "drained": counts.drained,
        "probe_count": len(counts.probe_delays),
        "write_to_summary_p50_seconds": _r(percentile(counts.probe_delays, 50), 3),
        "write_to_summary_p95_seconds": _r(percentile(counts.probe_delays, 95), 3),
        "write_to_summary_p99_seconds": _r(percentile(counts.probe_delays, 99), 3),
        "write_to_invocation_seconds": counts.invocation_delay,
        "mismatches": counts.mismatches,
        "loadtest_mismatches": counts.loadtest_mismatches,
        "touched_summaries": counts.touched_summaries,
        "rejected_conditional_writes": counts.rejected_writes,
        "local_ms_per_invocation": _r(counts.local_ms_per_invocation, 1),
        "assumed_ms_per_invocation": _r(settings.duration.invocation_ms(writes_per_invocation), 2),
        "monthly_usd": cost.as_dict(),
        "lower_bound_monthly_usd": None,
        "base_writes_monthly_usd": round(
            (_ratio(counts.base_wru, records) or 0.0)
            * EVENTS_PER_MONTH
            * PRICES.wru_per_million
            / 1e6,
            2,
        ),
    }
    if bound is not None and records:
        lb_writes = bound.changed_keys / records
        # GSI units a plain write of a summary costs in this schema, as measured.
        plain_gsi = _ratio(counts.summary_gsi_wru, counts.summary_item_writes) or 0.0
        if settings.transactional:
            plain_gsi /= 2
        lb_writes_per_invocation = _ratio(bound.changed_keys, counts.batches) or 0.0
        lb_cost = monthly_cost(
            invocations_per_event=counts.batches / records,
            ms_per_invocation=settings.duration.invocation_ms(lb_writes_per_invocation),
            memory_mb=settings.memory_mb,
            architecture=settings.architecture,
            wru_per_event=lb_writes * (1.0 + plain_gsi),
        )
        result["lower_bound_writes"] = bound.changed_keys
        result["distinct_keys"] = bound.distinct_keys
        result["lower_bound_writes_per_event"] = _r(lb_writes)
        result["distinct_keys_per_event"] = _r(bound.distinct_keys / records)
        result["lower_bound_wru_per_event"] = _r(lb_writes)
        result["lower_bound_monthly_usd"] = lb_cost.as_dict()
    if counts.projection is not None:
        result["projected"] = _projected(counts, settings, counts.projection)
    return result


def _projected(
    counts: RunCounts, settings: FunctionSettings, projection: Projection
) -> dict[str, Any]:
    """The bill at ``EVENTS_PER_DAY``: the projected invocations and writes, each write costing
    what the measured summary writes cost on average (table WRU, GSI WRU, requests)."""
    items = counts.summary_item_writes
    wru_per_write = counts.summary_wru / items if items else 1.0
    gsi_per_write = counts.summary_gsi_wru / items if items else 0.0
    requests_per_write = counts.summary_write_requests / items if items else 1.0
    writes = projection.writes_per_event
    invocations = projection.invocations_per_event
    requests_per_invocation = writes * requests_per_write / invocations if invocations else 0.0
    cost = monthly_cost(
        invocations_per_event=invocations,
        ms_per_invocation=settings.duration.invocation_ms(requests_per_invocation),
        memory_mb=settings.memory_mb,
        architecture=settings.architecture,
        wru_per_event=writes * (wru_per_write + gsi_per_write),
    )
    result = {
        **projection.as_dict(),
        "wru_per_event": round(writes * wru_per_write, 4),
        "gsi_wru_per_event": round(writes * gsi_per_write, 4),
        "assumed_ms_per_invocation": round(
            settings.duration.invocation_ms(requests_per_invocation), 2
        ),
        "monthly_usd": cost.as_dict(),
    }
    if settings.transactional:
        # The endpoint bills a transaction's index writes at 2 WRU like its items; if AWS bills
        # them as standard writes (docs/design.md §6 counts the reference's GSI1 write once):
        saved = writes * gsi_per_write / 2 * EVENTS_PER_MONTH * PRICES.wru_per_million / 1e6
        result["monthly_usd_if_gsi_billed_once"] = round(cost.total - saved, 2)
    return result


def settings_dict(settings: FunctionSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["duration"] = settings.duration.describe()
    return data
