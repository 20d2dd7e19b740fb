"""CloudWatch metrics and alarm states for the local endpoint, so that ``make status`` and the
dashboard read real numbers locally through the same APIs as on AWS (docs/design.md §7, §9).

On AWS three services feed CloudWatch: Lambda publishes ``AWS/Lambda`` Invocations, Errors,
Duration and (for stream mappings) IteratorAge per function; CloudWatch Logs turns the
functions' embedded-metric-format (EMF) log lines into metrics; SQS publishes its queues'
depth. CloudWatch then evaluates the alarms. moto does none of this (its alarms stay in the
state they were created in), so this publisher does it, from a background thread:

* ``invoked()`` — called by the engine after each invocation — queues the Lambda metrics;
* the functions' log files (``logs/functions/<name>.log``, the workers' stdout) are tailed and
  every EMF line becomes the metrics it declares (namespace, dimension sets, values, timestamp);
* every queue's ``ApproximateNumberOfMessagesVisible`` is published;
* then every metric alarm is evaluated over its own period, evaluation periods, datapoints to
  alarm, statistic and missing-data treatment, and moved with ``SetAlarmState`` when its state
  changes (the reason says that the local endpoint evaluated it);
* and, as CloudWatch does with an alarm's actions, the change is published to every SNS topic
  in the actions of the new state (``AlarmActions`` for ALARM, ``OKActions`` for OK,
  ``InsufficientDataActions`` for INSUFFICIENT_DATA; not when ``ActionsEnabled`` is false),
  the message in CloudWatch's JSON (``alarm_message``). moto's ``SetAlarmState`` only records
  the state and publishes nothing, so nothing is sent twice; moto's SNS delivers to the
  topic's subscribers (an SQS queue in the same endpoint receives the SNS envelope).

Everything goes through the endpoint's own CloudWatch, SQS and SNS APIs (PutMetricData,
GetMetricStatistics, DescribeAlarms, SetAlarmState, Publish), as an outside publisher would.

Where this differs from AWS: periods are the last N periods ending now (AWS aligns them to the
minute and waits for late data), so a local alarm reacts within one publishing interval; the
SQS depth is sampled every interval instead of every minute.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import boto3

log = logging.getLogger("localcloud.metrics")

DEFAULT_INTERVAL = 5.0
PUT_CHUNK = 500  # PutMetricData takes at most 1,000 metric data per request
LOCAL_ACCOUNT = "123456789012"


class InvocationSink(Protocol):
    def invoked(self, function_arn: str, result: Any, iterator_age: float | None) -> None:
        """One invocation ended: ``result`` is an invocation.InvokeResult (ok, duration in s);
        ``iterator_age`` the age in seconds of the batch's last record (None: no records)."""


class _NoMetrics:
    def invoked(self, function_arn: str, result: Any, iterator_age: float | None) -> None:
        return None


NO_METRICS: InvocationSink = _NoMetrics()


# --- EMF --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Datum:
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    unit: str | None
    timestamp: float  # epoch seconds

    def as_metric_datum(self) -> dict[str, Any]:
        datum: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
            "Timestamp": datetime.fromtimestamp(self.timestamp, UTC),
            "Values": list(self.values),
        }
        if self.unit:
            datum["Unit"] = self.unit
        return datum


def parse_emf(line: str) -> list[Datum]:
    """The metrics one EMF log line declares (empty for any other line). EMF spec: a JSON
    object whose ``_aws.CloudWatchMetrics`` directives name a namespace, dimension sets and
    metrics whose values are the object's top-level members of those names."""
    line = line.strip()
    if not line.startswith("{") or '"_aws"' not in line:
        return []
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return []
    meta = document.get("_aws") if isinstance(document, dict) else None
    if not isinstance(meta, dict):
        return []
    timestamp = meta.get("Timestamp")
    when = float(timestamp) / 1000.0 if isinstance(timestamp, int | float) else time.time()
    found: list[Datum] = []
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str):
            continue
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name")
            raw = document.get(name)
            values = raw if isinstance(raw, list) else [raw]
            numbers = tuple(float(v) for v in values if isinstance(v, int | float))
            if not numbers:
                continue
            for names in dimension_sets:
                dims = tuple((str(n), str(document.get(n, ""))) for n in names)
                found.append(Datum(namespace, name, dims, numbers, metric.get("Unit"), when))
    return found


class LogTail:
    """New complete lines of the files in a directory since the last call."""

    def __init__(self, directory: Path, pattern: str = "*.log") -> None:
        self.directory = directory
        self.pattern = pattern
        self.offsets: dict[Path, int] = {}
        self.partial: dict[Path, bytes] = {}

    def lines(self) -> Iterable[str]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob(self.pattern)):
            offset = self.offsets.get(path, 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
            except OSError:
                continue
            if not chunk:
                continue
            self.offsets[path] = offset + len(chunk)
            data = self.partial.pop(path, b"") + chunk
            *complete, rest = data.split(b"\n")
            if rest:
                self.partial[path] = rest
            for raw in complete:
                yield raw.decode("utf-8", errors="replace")


# --- alarms -----------------------------------------------------------------------------------

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def alarm_state(
    values: Sequence[float | None],
    *,
    threshold: float,
    comparison: str,
    datapoints_to_alarm: int,
    treat_missing: str = "missing",
) -> str | None:
    """CloudWatch's verdict over the last N periods (``values``, None = no data): ALARM when at
    least ``datapoints_to_alarm`` of them breach, OK when enough do not, INSUFFICIENT_DATA
    when there is no data at all and missing data is "missing"; None keeps the current state
    ("ignore"). Missing periods count as breaching / not breaching per ``treat_missing``."""
    breach = COMPARE.get(comparison)
    if breach is None:
        return None
    if all(v is None for v in values):
        return {"breaching": "ALARM", "notBreaching": "OK", "ignore": None}.get(
            treat_missing, "INSUFFICIENT_DATA"
        )
    breaching = 0
    for value in values:
        if value is None:
            breaching += treat_missing == "breaching"
        elif breach(value, threshold):
            breaching += 1
    return "ALARM" if breaching >= datapoints_to_alarm else "OK"


# The actions CloudWatch takes when an alarm enters a state (PutMetricAlarm: AlarmActions,
# OKActions, InsufficientDataActions).
ACTIONS_OF_STATE = {
    "ALARM": "AlarmActions",
    "OK": "OKActions",
    "INSUFFICIENT_DATA": "InsufficientDataActions",
}
COMPARISON_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
REGION_NAMES = {"us-east-1": "US East (N. Virginia)"}  # as CloudWatch names it in messages


def state_reason(
    alarm: Mapping[str, Any], values: Sequence[float | None], state: str, now: float
) -> str:
    """CloudWatch's wording of a threshold crossing, plus who evaluated it."""
    shown = [f"{v:g}" for v in values if v is not None]
    words = COMPARISON_WORDS.get(str(alarm.get("ComparisonOperator")), "compared with")
    verb = "was" if state == "ALARM" else "was not"
    return (
        f"Threshold Crossed: {len(shown)} datapoint(s) [{', '.join(shown)}] of the last "
        f"{len(values)} {verb} {words} the threshold ({float(alarm.get('Threshold', 0.0)):g}). "
        f"Evaluated by the local endpoint at {_iso(now)}."
    )


def alarm_message(
    alarm: Mapping[str, Any], state: str, reason: str, now: float, region: str
) -> tuple[str, dict[str, Any]]:
    """The SNS subject and message CloudWatch publishes when ``alarm`` enters ``state`` (as
    DescribeAlarms returned it, before the change). Pure."""
    arn = str(alarm.get("AlarmArn", ""))
    account = arn.split(":")[4] if arn.count(":") >= 5 else LOCAL_ACCOUNT
    region_name = REGION_NAMES.get(region, region)
    updated = alarm.get("AlarmConfigurationUpdatedTimestamp")
    trigger: dict[str, Any] = {
        "MetricName": alarm.get("MetricName"),
        "Namespace": alarm.get("Namespace"),
        "StatisticType": "Statistic",
        "Statistic": _STATISTIC_NAMES.get(str(alarm.get("Statistic")), alarm.get("Statistic")),
        "Unit": alarm.get("Unit"),
        "Dimensions": [
            {"value": d.get("Value"), "name": d.get("Name")} for d in alarm.get("Dimensions") or []
        ],
        "Period": alarm.get("Period"),
        "EvaluationPeriods": alarm.get("EvaluationPeriods"),
        "DatapointsToAlarm": alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods"),
        "ComparisonOperator": alarm.get("ComparisonOperator"),
        "Threshold": alarm.get("Threshold"),
        "TreatMissingData": alarm.get("TreatMissingData") or "",
        "EvaluateLowSampleCountPercentile": "",
    }
    message = {
        "AlarmName": alarm.get("AlarmName"),
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _cloudwatch_time(updated)
        if isinstance(updated, datetime)
        else None,
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": _cloudwatch_time(datetime.fromtimestamp(now, UTC)),
        "Region": region_name,
        "AlarmArn": arn,
        "OldStateValue": alarm.get("StateValue"),
        "OKActions": list(alarm.get("OKActions") or []),
        "AlarmActions": list(alarm.get("AlarmActions") or []),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions") or []),
        "Trigger": trigger,
    }
    subject = f'{state}: "{alarm.get("AlarmName")}" in {region_name}'[:100]  # SNS: 100 max
    return subject, message


_STATISTIC_NAMES = {
    "Sum": "SUM",
    "Average": "AVERAGE",
    "Maximum": "MAXIMUM",
    "Minimum": "MINIMUM",
    "SampleCount": "SAMPLE_COUNT",
}


def _cloudwatch_time(when: datetime) -> str:
    """``2015-06-03T17:43:27.123+0000``, as in CloudWatch's messages."""
    when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def _statistic(point: Mapping[str, Any], statistic: str) -> float | None:
    value = point.get(statistic)
    return float(value) if isinstance(value, int | float) else None


# --- the publisher ----------------------------------------------------------------------------


class MetricsPublisher:
    def __init__(
        self,
        endpoint_url: str,
        function_log_dir: Path,
        *,
        region: str = "us-east-1",
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.interval = interval
        self.logs = LogTail(function_log_dir)
        self._queued: list[Datum] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        self.cloudwatch = session.client("cloudwatch", endpoint_url=endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=endpoint_url)
        self.sns = session.client("sns", endpoint_url=endpoint_url)

    # -- the engine's side (any thread) --

    def invoked(self, function_arn: str, result: Any, iterator_age: float | None) -> None:
        name = function_arn.split(":")[6] if function_arn.count(":") >= 6 else function_arn
        dims = (("FunctionName", name),)
        now = time.time()

        def datum(metric: str, value: float, unit: str) -> Datum:
            return Datum("AWS/Lambda", metric, dims, (value,), unit, now)

        data = [
            datum("Invocations", 1.0, "Count"),
            datum("Errors", 0.0 if result.ok else 1.0, "Count"),
            datum("Duration", float(result.duration) * 1000.0, "Milliseconds"),
        ]
        if iterator_age is not None:
            data.append(datum("IteratorAge", max(0.0, iterator_age) * 1000.0, "Milliseconds"))
        with self._lock:
            self._queued += data

    # -- the background thread --

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish_once()
            except Exception:
                log.exception("publishing metrics failed")

    def publish_once(self, now: float | None = None) -> None:
        """One round: queued Lambda metrics, new EMF lines, queue depths, then alarms."""
        with self._lock:
            data, self._queued = self._queued, []
        for line in self.logs.lines():
            data += parse_emf(line)
        data += self._queue_depths()
        self._put(data)
        self.evaluate_alarms(time.time() if now is None else now)

    def _queue_depths(self) -> list[Datum]:
        found: list[Datum] = []
        now = time.time()
        for url in self.sqs.list_queues().get("QueueUrls", []):
            # The queue attribute ApproximateNumberOfMessages is the metric
            # ApproximateNumberOfMessagesVisible (messages available for retrieval).
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            ).get("Attributes", {})
            depth = float(attributes.get("ApproximateNumberOfMessages", 0))
            name = url.rstrip("/").rsplit("/", 1)[-1]
            found.append(
                Datum(
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    (("QueueName", name),),
                    (depth,),
                    "Count",
                    now,
                )
            )
        return found

    def _put(self, data: list[Datum]) -> None:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for datum in data:
            by_namespace.setdefault(datum.namespace, []).append(datum.as_metric_datum())
        for namespace, metric_data in by_namespace.items():
            for start in range(0, len(metric_data), PUT_CHUNK):
                self.cloudwatch.put_metric_data(
                    Namespace=namespace, MetricData=metric_data[start : start + PUT_CHUNK]
                )

    def evaluate_alarms(self, now: float) -> None:
        paginator = self.cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmTypes=["MetricAlarm"]):
            for alarm in page.get("MetricAlarms", []):
                if not alarm.get("MetricName") or not alarm.get("Statistic"):
                    continue  # metric-math and extended-statistic alarms are not evaluated
                state, values = self._evaluate(alarm, now)
                if state is None or state == alarm.get("StateValue"):
                    continue
                reason = state_reason(alarm, values, state, now)
                self.cloudwatch.set_alarm_state(
                    AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason
                )
                self._notify(alarm, state, reason, now)

    def _notify(self, alarm: Mapping[str, Any], state: str, reason: str, now: float) -> None:
        """Publishes the state change to the SNS topics among the new state's actions."""
        if alarm.get("ActionsEnabled") is False:
            return
        topics = [
            a for a in alarm.get(ACTIONS_OF_STATE[state]) or [] if a.startswith("arn:aws:sns:")
        ]
        if not topics:
            return
        subject, message = alarm_message(alarm, state, reason, now, self.region)
        for topic in topics:
            try:
                self.sns.publish(TopicArn=topic, Subject=subject, Message=json.dumps(message))
            except Exception:  # a missing topic must not stop the other alarms
                log.exception("publishing alarm %s to %s failed", alarm.get("AlarmName"), topic)

    def _evaluate(
        self, alarm: Mapping[str, Any], now: float
    ) -> tuple[str | None, list[float | None]]:
        period = int(alarm.get("Period") or 60)
        periods = int(alarm.get("EvaluationPeriods") or 1)
        statistic = str(alarm["Statistic"])
        now = math.floor(now) + 1.0  # the APIs take whole seconds, EndTime exclusive
        # One request per period: each answers with at most one datapoint, whatever way the
        # server buckets (moto buckets from the first datum, not from StartTime).
        values: list[float | None] = []
        for index in range(periods, 0, -1):
            end = now - period * (index - 1)
            points = self.cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"],
                MetricName=alarm["MetricName"],
                Dimensions=alarm.get("Dimensions") or [],
                StartTime=datetime.fromtimestamp(end - period, UTC),
                EndTime=datetime.fromtimestamp(end, UTC),
                Period=period,
                Statistics=[statistic],
            ).get("Datapoints", [])
            found = [v for v in (_statistic(p, statistic) for p in points) if v is not None]
            values.append(_combine(found, statistic))
        state = alarm_state(
            values,
            threshold=float(alarm.get("Threshold", 0.0)),
            comparison=str(alarm.get("ComparisonOperator")),
            datapoints_to_alarm=int(alarm.get("DatapointsToAlarm") or periods),
            treat_missing=str(alarm.get("TreatMissingData") or "missing"),
        )
        return state, values


def _combine(values: list[float], statistic: str) -> float | None:
    if not values:
        return None
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    if statistic in ("Sum", "SampleCount"):
        return sum(values)
    return sum(values) / len(values)  # Average of (rarely more than one) bucket


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
