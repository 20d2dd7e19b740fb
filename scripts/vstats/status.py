"""The one screen an operator reads first: is the pipeline healthy? (docs/design.md §9)

    python -m vstats.status                 # tables; exit 1 when anything needs attention
    python -m vstats.status --minutes 60 --json

Everything comes from the AWS APIs and CloudWatch, found from the table alone: the table's
stream, the event source mappings reading it (state, last processing result, on-failure
destination), each function's ``AWS/Lambda`` metrics over the last N minutes (invocations,
errors, the highest iterator age), each on-failure queue's depth, and the alarms named after
each function (``<function>-<kind>``, modules/monitoring). Locally the endpoint publishes the
same metrics and evaluates the alarms (scripts/localcloud/metrics_publisher.py), so the tool
runs unchanged against AWS and the local endpoint.

"Needs attention" (exit 1): a mapping that is not Enabled, a failure queue holding a message,
or an alarm in ALARM.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from vstats import cli, deployment
from vstats.pipeline import (
    function_name,
    on_failure_destination,
    queue_url,
    stream_arn_of,
    stream_mappings,
)

PROG = "status"
DEFAULT_MINUTES = 15


@dataclass(slots=True)
class AlarmStatus:
    name: str
    state: str
    metric: str
    updated: str | None


@dataclass(slots=True)
class MappingStatus:
    uuid: str
    function: str
    state: str
    last_result: str | None
    invocations: float
    errors: float
    iterator_age_max_seconds: float | None
    failure_queue: str | None
    failure_queue_depth: int | None
    alarms: list[AlarmStatus] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return (
            self.state == "Enabled"
            and not self.failure_queue_depth
            and all(a.state != "ALARM" for a in self.alarms)
        )


@dataclass(slots=True)
class Status:
    table: str
    stream_arn: str
    minutes: int
    mappings: list[MappingStatus]

    @property
    def healthy(self) -> bool:
        return bool(self.mappings) and all(m.healthy for m in self.mappings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "stream_arn": self.stream_arn,
            "minutes": self.minutes,
            "healthy": self.healthy,
            "mappings": [asdict(m) | {"healthy": m.healthy} for m in self.mappings],
        }


def _metric(
    cloudwatch: Any, function: str, name: str, statistic: str, *, start: datetime, end: datetime
) -> float | None:
    """One statistic of an AWS/Lambda metric over [start, end) (None: no data)."""
    seconds = int((end - start).total_seconds())
    period = max(60, (seconds + 59) // 60 * 60)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=name,
        Dimensions=[{"Name": "FunctionName", "Value": function}],
        StartTime=start,
        EndTime=end,
        Period=period,
        Statistics=[statistic],
    ).get("Datapoints", [])
    values = [float(p[statistic]) for p in points if statistic in p]
    if not values:
        return None
    return max(values) if statistic == "Maximum" else sum(values)


def _queue_depth(sqs: Any, queue_arn: str) -> int | None:
    url = queue_url(sqs, queue_arn)
    if url is None:
        return None  # an SNS destination has no depth
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    ).get("Attributes", {})
    return int(attributes.get("ApproximateNumberOfMessages", 0))


def _alarms(cloudwatch: Any, function: str) -> list[AlarmStatus]:
    found: list[AlarmStatus] = []
    paginator = cloudwatch.get_paginator("describe_alarms")
    for page in paginator.paginate(AlarmNamePrefix=f"{function}-", AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            updated = alarm.get("StateUpdatedTimestamp")
            found.append(
                AlarmStatus(
                    name=alarm["AlarmName"],
                    state=alarm.get("StateValue", "?"),
                    metric=f"{alarm.get('Namespace')}/{alarm.get('MetricName')}",
                    updated=updated.isoformat() if isinstance(updated, datetime) else None,
                )
            )
    return sorted(found, key=lambda a: a.name)


def collect(target: deployment.Deployment, minutes: int, now: datetime | None = None) -> Status:
    dynamodb = target.dynamodb()
    stream_arn = stream_arn_of(dynamodb, target.table)
    lambda_client = target.client("lambda")
    cloudwatch = target.client("cloudwatch")
    sqs = target.client("sqs")
    end = now or datetime.now(UTC)
    start = end - timedelta(minutes=minutes)
    mappings: list[MappingStatus] = []
    for mapping in stream_mappings(lambda_client, stream_arn):
        function = function_name(mapping)
        destination = on_failure_destination(mapping)
        age_ms = _metric(cloudwatch, function, "IteratorAge", "Maximum", start=start, end=end)
        mappings.append(
            MappingStatus(
                uuid=mapping["UUID"],
                function=function,
                state=str(mapping.get("State", "?")),
                last_result=mapping.get("LastProcessingResult"),
                invocations=_metric(
                    cloudwatch, function, "Invocations", "Sum", start=start, end=end
                )
                or 0,
                errors=_metric(cloudwatch, function, "Errors", "Sum", start=start, end=end) or 0,
                iterator_age_max_seconds=None if age_ms is None else age_ms / 1000.0,
                failure_queue=destination.rsplit(":", 1)[-1] if destination else None,
                failure_queue_depth=_queue_depth(sqs, destination) if destination else None,
                alarms=_alarms(cloudwatch, function),
            )
        )
    return Status(target.table, stream_arn, minutes, sorted(mappings, key=lambda m: m.function))


STATE_STYLE = {"ALARM": "bold red", "OK": "green", "INSUFFICIENT_DATA": "yellow"}


def render(status: Status) -> list[Any]:
    verdict = (
        Text("Healthy: every mapping enabled, no failed batch queued, no alarm.", style="green")
        if status.healthy
        else Text("Needs attention (see below).", style="bold red")
    )
    mappings = Table(
        title=f"mappings of {status.table} (metrics: last {status.minutes} min)",
        title_justify="left",
        header_style="bold",
    )
    for column in ("function", "state", "last result", "invocations", "errors"):
        mappings.add_column(
            column, justify="right" if column in ("invocations", "errors") else "left"
        )
    mappings.add_column("max iterator age", justify="right")
    mappings.add_column("failure queue", justify="right")
    for m in status.mappings:
        age = "-" if m.iterator_age_max_seconds is None else f"{m.iterator_age_max_seconds:.1f} s"
        depth = "-" if m.failure_queue_depth is None else f"{m.failure_queue_depth:,}"
        mappings.add_row(
            m.function,
            Text(m.state, style="green" if m.state == "Enabled" else "bold red"),
            m.last_result or Text("not reported", style="dim"),
            f"{m.invocations:,.0f}",
            Text(f"{m.errors:,.0f}", style="bold red" if m.errors else ""),
            age,
            Text(depth, style="bold red" if m.failure_queue_depth else ""),
        )
    alarms = Table(title="alarms", title_justify="left", header_style="bold")
    alarms.add_column("alarm")
    alarms.add_column("state")
    alarms.add_column("metric")
    alarms.add_column("since")
    for m in status.mappings:
        for a in m.alarms:
            alarms.add_row(
                a.name,
                Text(a.state, style=STATE_STYLE.get(a.state, "")),
                a.metric,
                a.updated or "-",
            )
    lines: list[Any] = [verdict, mappings, alarms]
    if not any(m.alarms for m in status.mappings):
        lines.append(
            Text("No alarms named after the functions: deploy modules/monitoring.", style="yellow")
        )
    if any(m.failure_queue_depth for m in status.mappings):
        lines.append(Text("Failed batches are queued: `make redrive` replays them.", style="bold"))
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Mappings, metrics, failure queues and alarms of the deployment; exit 1 "
        "when something needs attention.",
    )
    parser.add_argument(
        "--minutes",
        type=_minutes,
        default=DEFAULT_MINUTES,
        help=f"metrics window in minutes (default {DEFAULT_MINUTES}, at most 1440)",
    )
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    deployment.add_arguments(parser)
    return parser


def _minutes(text: str) -> int:
    value = cli.positive_int(text)
    if value > 1440:
        raise argparse.ArgumentTypeError(f"at most 1440 minutes, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    status = collect(deployment.resolve(args), args.minutes)
    if args.json:
        print(json.dumps(status.as_dict()))
    else:
        cli.print_lines(render(status))
    return cli.EXIT_OK if status.healthy else cli.EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
