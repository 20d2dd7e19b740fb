"""One design's monthly bill, line by line (pure, no I/O): every line a deployed stack adds,
from what the benchmark measured (docs/design.md §6); ``benchmark.full_bill`` bills both designs
in every production cell with it.

Per design and production cell (events a day, partitions):

* Lambda requests and GB-seconds: the projection's invocations, each billed
  ``DurationModel.invocation_ms`` (this project: a fixed part plus the CPU time per record and
  per summary write request measured by ``make bench-handler`` on one full core, divided by
  the function's share of a vCPU, ``memory / 1,769 MB``: "at 1,769 MB, a function has the
  equivalent of one vCPU", Lambda developer guide, memory configuration);
* DynamoDB write units of every write the handlers make (``projection``);
* CloudWatch custom metrics: each metric the functions' EMF lines publish (namespace, name,
  dimension values) is billed for every hour it is published in (prorated hourly): a metric
  published by a share ``p`` of a function's invocations, at ``λ`` invocations an hour, is
  published in ``1 - exp(-λ p)`` of the hours (Poisson arrivals; ``p`` measured from the
  functions' own log output);
* alarms (per metric an alarm reads), dashboards, customer-managed KMS keys, SQS queues and SNS
  topics: counted on the deployed stack;
* log ingestion: the bytes per invocation the functions wrote in the measured run (their own
  output, EMF included) plus Lambda's START, END and REPORT lines in AWS's format; log storage:
  a retention period's ingestion, uncompressed (CloudWatch bills stored logs compressed: an
  upper bound), with the same retention for both designs;
* DynamoDB storage and point-in-time recovery of the summaries the design adds (each item plus
  DynamoDB's 100 bytes of overhead), PITR at the same setting for both designs.

GB are 10^9 bytes (the larger bill). Free tiers are not applied.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from benchmark.figures import PRICES, Prices

HOURS_PER_MONTH: Final = 24 * 30
GB: Final = 1e9
#: Memory at which a function has the equivalent of one vCPU (Lambda developer guide).
VCPU_MEMORY_MB: Final = 1769
#: Storage overhead DynamoDB adds to every item (developer guide, item sizes).
ITEM_OVERHEAD_BYTES: Final = 100
_REQUEST_ID = "0" * 8 + "-" + "0" * 4 + "-" + "0" * 4 + "-" + "0" * 4 + "-" + "0" * 12

#: A published metric: namespace, name and its dimension values.
MetricId = tuple[str, str, tuple[tuple[str, str], ...]]


def vcpu_share(memory_mb: int) -> float:
    """The share of a vCPU a function of ``memory_mb`` gets (at most one)."""
    return min(1.0, memory_mb / VCPU_MEMORY_MB)


def platform_log_bytes(memory_mb: int) -> int:
    """Bytes of Lambda's own START, END and REPORT lines of one invocation, in AWS's format
    (Lambda developer guide, function logs), with a typical duration and memory used."""
    lines = (
        f"START RequestId: {_REQUEST_ID} Version: $LATEST",
        f"END RequestId: {_REQUEST_ID}",
        f"REPORT RequestId: {_REQUEST_ID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: 99 MB\t",
    )
    return sum(len(line) + 1 for line in lines)


# --- what the functions logged ------------------------------------------------------------------


@dataclass(slots=True)
class LogShape:
    """One function's log output in a measured run: invocations, the bytes it wrote itself,
    and how many invocations published each metric (and with a value that is not zero)."""

    invocations: int = 0
    own_bytes: int = 0
    published: Counter[MetricId] = field(default_factory=Counter)
    nonzero: Counter[MetricId] = field(default_factory=Counter)

    @property
    def bytes_per_invocation(self) -> float:
        return self.own_bytes / self.invocations if self.invocations else 0.0

    def share(self, metric: MetricId, *, nonzero_only: bool = False) -> float:
        counts = self.nonzero if nonzero_only else self.published
        return min(1.0, counts[metric] / self.invocations) if self.invocations else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "invocations": self.invocations,
            "own_bytes_per_invocation": round(self.bytes_per_invocation, 1),
            "metrics": {
                _metric_label(m): {
                    "published_share": round(self.share(m), 4),
                    "nonzero_share": round(self.share(m, nonzero_only=True), 4),
                }
                for m in sorted(self.published)
            },
        }


def _metric_label(metric: MetricId) -> str:
    namespace, name, dims = metric
    return f"{namespace}/{name}" + "".join(f"[{k}={v}]" for k, v in dims)


_PLATFORM_PREFIXES: Final = ("START RequestId:", "END RequestId:", "REPORT RequestId:")


def parse_function_log(text: str) -> LogShape:
    """A function's log file on the local endpoint: its invocations (the endpoint's START
    lines), the bytes of every other line (the function's own output) and the metrics of its
    EMF documents (one per invocation that published any)."""
    shape = LogShape()
    for line in text.splitlines():
        if line.startswith(_PLATFORM_PREFIXES):
            shape.invocations += line.startswith("START ")
            continue
        shape.own_bytes += len(line.encode()) + 1
        if line.startswith("{") and '"_aws"' in line:
            published, nonzero = emf_metrics(line)
            shape.published.update(published)
            shape.nonzero.update(nonzero)
    return shape


def emf_metrics(line: str) -> tuple[set[MetricId], set[MetricId]]:
    """The metrics one EMF document publishes (every dimension set of every directive), and
    those with a value other than zero."""
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return set(), set()
    directives = ((document.get("_aws") or {}) if isinstance(document, dict) else {}).get(
        "CloudWatchMetrics"
    ) or []
    published: set[MetricId] = set()
    nonzero: set[MetricId] = set()
    for directive in directives:
        namespace = str(directive.get("Namespace", ""))
        for dimension_set in directive.get("Dimensions") or [[]]:
            dims = tuple((str(d), str(document.get(d, ""))) for d in dimension_set)
            for metric in directive.get("Metrics") or []:
                name = str(metric.get("Name", ""))
                metric_id = (namespace, name, dims)
                published.add(metric_id)
                value = document.get(name)
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, int | float) and v != 0 for v in values):
                    nonzero.add(metric_id)
    return published, nonzero


def metric_hours(
    shape: LogShape, invocations_per_hour: float, *, nonzero_only: bool = False
) -> float:
    """Metric-hours a month of one function's custom metrics (see the module notes)."""
    return sum(
        HOURS_PER_MONTH
        * (1.0 - math.exp(-invocations_per_hour * shape.share(m, nonzero_only=nonzero_only)))
        for m in shape.published
    )


# --- what the stack creates ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackResources:
    """What a deployed stack holds that is billed by the month, read from the endpoint."""

    alarm_metrics: int = 0  # metrics its alarms read (a metric-math alarm: each)
    alarms: int = 0
    dashboards: int = 0
    kms_keys: int = 0  # customer-managed keys its resources use
    queues: int = 0
    topics: int = 0
    log_retention_days: int | None = None  # None: never expire
    point_in_time_recovery: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "alarms": self.alarms,
            "alarm_metrics": self.alarm_metrics,
            "dashboards": self.dashboards,
            "customer_managed_kms_keys": self.kms_keys,
            "sqs_queues": self.queues,
            "sns_topics": self.topics,
            "log_retention_days": self.log_retention_days,
            "point_in_time_recovery": self.point_in_time_recovery,
        }


def fixed_lines(resources: StackResources, prices: Prices = PRICES) -> dict[str, float]:
    """What the stack costs a month with no traffic: alarms, dashboards, KMS keys (queues and
    topics cost per request only)."""
    return {
        "alarms": resources.alarm_metrics * prices.alarm_metric_month,
        "dashboard": resources.dashboards * prices.dashboard_month,
        "kms": resources.kms_keys * prices.kms_key_month,
    }


# --- one design in one cell ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionMonth:
    """One function of a design in one production cell, a month."""

    invocations: float
    gb_seconds: float
    log: LogShape | None  # None: nothing measured (no custom metrics, platform lines only)
    memory_mb: int


BILL_LINES: Final = (
    "lambda_requests",
    "lambda_compute",
    "dynamodb_writes",
    "custom_metrics",
    "alarms",
    "dashboard",
    "log_ingestion",
    "log_storage",
    "sqs",
    "sns",
    "kms",
    "dynamodb_storage",
    "pitr",
)


def monthly_bill(
    *,
    functions: Iterable[FunctionMonth],
    wru: float,
    architecture: str,
    resources: StackResources,
    storage_bytes: float,
    pitr: bool,
    log_retention_days: int | None,
    prices: Prices = PRICES,
    nonzero_metrics_only: bool = False,
) -> dict[str, float]:
    """Every line of ``BILL_LINES`` in USD a month. ``nonzero_metrics_only``: bill only the
    metric values that are not zero (what the handlers publish once zero counters are not)."""
    invocations = gb_seconds = metric_hour_total = log_bytes = 0.0
    for fn in functions:
        invocations += fn.invocations
        gb_seconds += fn.gb_seconds
        per_invocation = float(platform_log_bytes(fn.memory_mb))
        if fn.log is not None:
            per_invocation += fn.log.bytes_per_invocation
            metric_hour_total += metric_hours(
                fn.log, fn.invocations / HOURS_PER_MONTH, nonzero_only=nonzero_metrics_only
            )
        log_bytes += fn.invocations * per_invocation
    retention = 30 if log_retention_days is None else log_retention_days
    stored_log_gb = log_bytes / GB / 30 * retention
    lines = {
        "lambda_requests": invocations * prices.lambda_request_per_million / 1e6,
        "lambda_compute": gb_seconds * prices.gb_second(architecture),
        "dynamodb_writes": wru * prices.wru_per_million / 1e6,
        "custom_metrics": metric_hour_total / HOURS_PER_MONTH * prices.custom_metric_month,
        "log_ingestion": log_bytes / GB * prices.log_ingestion_gb,
        "log_storage": stored_log_gb * prices.log_storage_gb_month,
        # Queues and topics are used only on failures and alarms: no steady-state requests.
        "sqs": 0.0,
        "sns": 0.0,
        "dynamodb_storage": storage_bytes / GB * prices.storage_gb_month,
        "pitr": storage_bytes / GB * prices.pitr_gb_month if pitr else 0.0,
        **fixed_lines(resources, prices),
    }
    return {name: lines[name] for name in BILL_LINES}


# --- break-even ---------------------------------------------------------------------------------


def break_even(
    saving: Callable[[float], float], low: float, high: float, *, steps: int = 24
) -> float | None:
    """The least events a day in ``[low, high]`` from which ``saving`` (reference minus ours,
    USD a month) is not negative, by bisection on a log scale; ``low`` if it already is,
    None if it is not at ``high``. Assumes one crossing (fixed costs against a per-event
    saving)."""
    if saving(low) >= 0:
        return low
    if saving(high) < 0:
        return None
    for _ in range(steps):
        middle = math.sqrt(low * high)
        if saving(middle) >= 0:
            high = middle
        else:
            low = middle
    return high


def bill_total(lines: Mapping[str, float]) -> float:
    return sum(lines.values())
