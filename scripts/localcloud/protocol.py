"""What Lambda sends and expects for DynamoDB stream mappings. Pure.

* ``event_record``: a stream record as Lambda hands it to the function.
* ``parse_batch_response``: the function's response under ``ReportBatchItemFailures``
  (AWS Lambda developer guide, "Configuring partial batch response with DynamoDB").
* ``failure_record``: the message sent to the on-failure destination
  (guide, "Retaining discarded records for a DynamoDB event source").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

RETRY_ATTEMPTS_EXHAUSTED: Final = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED: Final = "RecordAgeExceeded"
Condition = Literal["RetryAttemptsExhausted", "RecordAgeExceeded"]


def event_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A record as GetRecords returns it (wire JSON) -> the record in the Lambda event."""
    record: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": raw.get("eventSource", "aws:dynamodb"),
        "awsRegion": region,
        "dynamodb": dict(raw["dynamodb"]),
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record


def with_clock_skew(record: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``record`` (an event record) with ``ApproximateCreationDateTime`` ``seconds`` later: the
    clock_skew_seconds fault (faults.py). The record itself is not changed."""
    dynamodb = record.get("dynamodb") or {}
    created = dynamodb.get("ApproximateCreationDateTime")
    if not seconds or isinstance(created, bool) or not isinstance(created, int | float):
        return record
    shifted = created + seconds
    if isinstance(created, int) and float(seconds).is_integer():
        shifted = int(shifted)
    return {**record, "dynamodb": {**dynamodb, "ApproximateCreationDateTime": shifted}}


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """``failed_from`` is the index of the lowest reported failure (None: all succeeded);
    ``invalid`` means the response broke the contract, which fails the whole batch."""

    failed_from: int | None = None
    invalid: str | None = None


COMPLETE_SUCCESS = BatchResponse()


def parse_batch_response(
    response: Any, sequence_numbers: Sequence[str], report_item_failures: bool
) -> BatchResponse:
    """Apply AWS's success and failure conditions to a successful invocation's response.

    Complete success: item failures not turned on, a null or empty response, a null or empty
    ``batchItemFailures`` list. Complete failure (``invalid``): an item without an
    ``itemIdentifier``, a null or empty identifier, one that is not in the batch, or a
    response that is not a JSON object.
    """
    if not report_item_failures or response is None:
        return COMPLETE_SUCCESS
    if not isinstance(response, Mapping):
        # Not an event response at all (a string, a list): the batch cannot be checkpointed.
        return BatchResponse(invalid="the response is not a JSON object")
    failures = response.get("batchItemFailures")
    if failures is None:
        return COMPLETE_SUCCESS
    if not isinstance(failures, list):
        return BatchResponse(invalid="batchItemFailures is not a list")
    if not failures:
        return COMPLETE_SUCCESS
    positions = {seq: i for i, seq in enumerate(sequence_numbers)}
    lowest: int | None = None
    for failure in failures:
        if not isinstance(failure, Mapping) or "itemIdentifier" not in failure:
            return BatchResponse(invalid="a batch item failure has no itemIdentifier")
        identifier = failure["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return BatchResponse(invalid="an itemIdentifier is null or empty")
        if identifier not in positions:
            return BatchResponse(invalid=f"itemIdentifier {identifier!r} is not in the batch")
        index = positions[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return BatchResponse(failed_from=lowest)


def _iso_millis(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso_seconds(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class FailedBatch:
    shard_id: str
    stream_arn: str
    first_sequence_number: str
    last_sequence_number: str
    first_arrival: float  # epoch seconds (ApproximateCreationDateTime)
    last_arrival: float
    size: int


def failure_record(
    *,
    batch: FailedBatch,
    function_arn: str,
    condition: Condition,
    invoke_count: int,
    function_error: str | None,
    request_id: str | None,
    now: float,
) -> dict[str, Any]:
    """The on-failure destination message: batch metadata, never the records."""
    return {
        "requestContext": {
            "requestId": request_id or str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": function_error,
        },
        "version": "1.0",
        "timestamp": _iso_millis(now),
        "DDBStreamBatchInfo": {
            "shardId": batch.shard_id,
            "startSequenceNumber": batch.first_sequence_number,
            "endSequenceNumber": batch.last_sequence_number,
            "approximateArrivalOfFirstRecord": _iso_seconds(batch.first_arrival),
            "approximateArrivalOfLastRecord": _iso_seconds(batch.last_arrival),
            "batchSize": batch.size,
            "streamArn": batch.stream_arn,
        },
    }
