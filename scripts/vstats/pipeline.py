"""The pipeline adapter of the tools (status, redrive, repair, the load test): the table's
stream, the event source mappings reading it, pausing and resuming them, and their on-failure
queues (docs/design.md §9). One place for each of these lookups."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from localcloud.client import ControlClient
from video_stats.model import ItemType

from vstats.cli import ToolError
from vstats.effects import ITEM_TYPE_OF_HANDLER

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACTIVE_STATES = ("Enabled", "Enabling", "Updating", "Creating")


class Pipeline(Protocol):
    """Pause and resume the stream consumers of one table."""

    def pause(self) -> list[str]:
        """Stop every enabled consumer and return once nothing is in flight; returns what to
        resume."""

    def resume(self, paused: list[str]) -> None:
        """Start again what ``pause`` stopped."""


@dataclass(slots=True)
class LambdaPipeline:
    """The table's event source mappings, through the Lambda API (moto or AWS)."""

    lambda_client: Any
    stream_arn: str
    control: ControlClient | None = None
    grace_seconds: float | None = None  # AWS: None = longest function timeout + 5 s
    timeout: float = 300.0
    log: Callable[[str], None] = lambda _message: None
    poll: float = 0.2

    def mappings(self) -> list[dict[str, Any]]:
        return stream_mappings(self.lambda_client, self.stream_arn)

    def longest_batching_window(self) -> float:
        """The longest ``MaximumBatchingWindowInSeconds`` of the mappings (0 without any): how
        long a record can wait in Lambda before a function sees it."""
        windows = [float(m.get("MaximumBatchingWindowInSeconds") or 0) for m in self.mappings()]
        return max(windows, default=0.0)

    def pause(self) -> list[str]:
        active = [m for m in self.mappings() if m.get("State") in ACTIVE_STATES]
        paused: list[str] = []
        try:
            for mapping in active:
                self.lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
                paused.append(mapping["UUID"])
                self.log(f"disabled mapping {mapping['UUID']} ({function_name(mapping)})")
            self._wait_states(paused, "Disabled")
            self._wait_idle(active)
        except BaseException:
            self.resume(paused)
            raise
        return paused

    def resume(self, paused: list[str]) -> None:
        for uuid in paused:
            self.lambda_client.update_event_source_mapping(UUID=uuid, Enabled=True)
            self.log(f"re-enabled mapping {uuid}")
        self._wait_states(paused, "Enabled")

    def _wait_states(self, uuids: Iterable[str], state: str) -> None:
        deadline = time.monotonic() + self.timeout
        pending = set(uuids)
        while pending:
            for uuid in list(pending):
                if self.lambda_client.get_event_source_mapping(UUID=uuid).get("State") == state:
                    pending.discard(uuid)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise ToolError(f"mappings {sorted(pending)} did not reach {state} in time")
            time.sleep(self.poll)

    def _wait_idle(self, mappings: list[dict[str, Any]]) -> None:
        if self.control is not None:
            # The engine: no invocation in flight for any mapping.
            if not self.control.wait_drained(self.timeout, self.poll):
                raise ToolError("the local engine did not drain after disabling the mappings")
            return
        grace = self.grace_seconds
        if grace is None:
            timeouts = [
                float(
                    self.lambda_client.get_function_configuration(
                        FunctionName=m["FunctionArn"]
                    ).get("Timeout", 60)
                )
                for m in mappings
            ]
            grace = max(timeouts, default=0.0) + 5.0
        if mappings and grace > 0:
            # Lambda lets an invocation that started before the disable run to completion.
            self.log(f"waiting {grace:g} s for invocations still in flight")
            time.sleep(grace)


def stream_mappings(lambda_client: Any, stream_arn: str) -> list[dict[str, Any]]:
    """The event source mappings reading the stream (every page)."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {"EventSourceArn": stream_arn}
    while True:
        response = lambda_client.list_event_source_mappings(**request)
        found += response.get("EventSourceMappings", [])
        marker = response.get("NextMarker")
        if not marker:
            return found
        request["Marker"] = marker


#: Lambda's longest function timeout: a batch read just before its records' age limit may
#: still be in flight this long after.
IN_FLIGHT_SECONDS: Final = 900.0


def settled_age(lambda_client: Any, stream_arn: str) -> float | None:
    """Seconds after which a record of the stream is processed or given up on by every mapping
    reading it: the largest ``MaximumRecordAgeInSeconds`` + ``IN_FLIGHT_SECONDS``. None when
    no mapping reads it or one keeps records for as long as the stream does (-1).

    The handlers keep a mark ``MARK_RETENTION_SECONDS`` = that age + a margin of at least
    900 s (docs/design.md §8, step 9), so a summary can have lost a shard's mark to retention
    only for records older than this."""
    ages = [m.get("MaximumRecordAgeInSeconds") for m in stream_mappings(lambda_client, stream_arn)]
    limits = [float(a) for a in ages if isinstance(a, int | float) and a >= 0]
    if not ages or len(limits) < len(ages):
        return None
    return max(limits) + IN_FLIGHT_SECONDS


def stream_arn_of(client: DynamoDBClient, table: str) -> str:
    description = client.describe_table(TableName=table)["Table"]
    arn = description.get("LatestStreamArn")
    if not arn or not description.get("StreamSpecification", {}).get("StreamEnabled", True):
        raise ToolError(f"table {table} has no stream: nothing feeds the summaries")
    return str(arn)


def function_name(mapping: Mapping[str, Any]) -> str:
    """The mapping's function, by name (the last part of its ARN)."""
    return str(mapping.get("FunctionArn", "?")).rsplit(":", 1)[-1]


def on_failure_destination(mapping: Mapping[str, Any]) -> str | None:
    """The ARN of the mapping's on-failure destination (an SQS queue or an SNS topic), if any."""
    destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
        "Destination"
    )
    return str(destination) if destination else None


def queue_url(sqs: Any, queue_arn: str) -> str | None:
    """The URL of an SQS queue from its ARN (``arn:aws:sqs:<region>:<account>:<name>``); None
    for any other ARN (an SNS destination)."""
    parts = queue_arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        return None
    return str(sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])


@dataclass(frozen=True, slots=True)
class FailureQueue:
    url: str
    item_type: ItemType


def failure_queues(lambda_client: Any, sqs: Any, stream_arn: str) -> list[FailureQueue]:
    """The SQS on-failure destination of each mapping of the stream, with its item type."""
    found: list[FailureQueue] = []
    for mapping in stream_mappings(lambda_client, stream_arn):
        arn = on_failure_destination(mapping)
        url = queue_url(sqs, arn) if arn else None
        if url is None:
            continue
        handler = lambda_client.get_function_configuration(FunctionName=mapping["FunctionArn"])[
            "Handler"
        ]
        item_type = ITEM_TYPE_OF_HANDLER.get(handler)
        if item_type is None:
            raise ToolError(f"mapping {mapping['UUID']}: unknown handler {handler}")
        found.append(FailureQueue(url, item_type))
    return found
