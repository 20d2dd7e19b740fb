"""A small DynamoDB Streams API client (JSON over HTTP) for the engine's pollers.

Not boto3: the engine runs in the endpoint's own process, and botocore's response parsing
would take a good share of the one interpreter lock that moto also needs. This client keeps
the wire format as is (numbers as strings, binaries as base64, ``ApproximateCreationDateTime``
as epoch seconds), which is exactly what Lambda puts in the event.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from localcloud.faults import ENGINE_HEADER

TARGET_PREFIX = "DynamoDBStreams_20120810."


class StreamsError(Exception):
    def __init__(self, error_type: str, message: str, status: int) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.status = status


class StreamsClient:
    """One per thread (keeps one connection open)."""

    def __init__(self, endpoint_url: str, region: str, account: str, timeout: float = 30.0):
        parts = urlsplit(endpoint_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        day = time.strftime("%Y%m%d", time.gmtime())
        self._headers = {
            "Content-Type": "application/x-amz-json-1.0",
            # moto routes by the credential scope (region) and this header (account).
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=test/{day}/{region}/dynamodb/aws4_request, "
                "SignedHeaders=host;x-amz-target, Signature=0"
            ),
            "x-moto-account-id": account,
            # Lambda's own pollers: exempt from the Streams API faults (faults.py).
            ENGINE_HEADER: "1",
        }

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        headers = {**self._headers, "X-Amz-Target": TARGET_PREFIX + operation}
        for attempt in (1, 2):
            conn = self._conn or http.client.HTTPConnection(
                self._host, self._port, timeout=self._timeout
            )
            self._conn = conn
            try:
                conn.request("POST", "/", payload, headers)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                # A kept-alive connection the server closed: reconnect once.
                conn.close()
                self._conn = None
                if attempt == 2:
                    raise
                continue
            if response.status >= 400:
                try:
                    error = json.loads(raw)
                except ValueError:
                    error = {}
                error_type = str(error.get("__type", f"HTTP{response.status}")).split("#")[-1]
                raise StreamsError(
                    error_type, str(error.get("message", raw[:200])), response.status
                )
            result: dict[str, Any] = json.loads(raw) if raw else {}
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def describe_stream(self, stream_arn: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("DescribeStream", {"StreamArn": stream_arn})[
            "StreamDescription"
        ]
        return result

    def describe_all_shards(
        self, stream_arn: str, on_description: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every shard of the stream, page by page (``LastEvaluatedShardId``)."""
        shards: list[dict[str, Any]] = []
        body: dict[str, Any] = {"StreamArn": stream_arn}
        while True:
            description = self.call("DescribeStream", body)["StreamDescription"]
            if on_description is not None:
                on_description(description)
            shards += description.get("Shards") or []
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            body["ExclusiveStartShardId"] = last

    def get_shard_iterator(
        self, stream_arn: str, shard_id: str, iterator_type: str, sequence_number: str | None
    ) -> str:
        body: dict[str, Any] = {
            "StreamArn": stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": iterator_type,
        }
        if sequence_number is not None:
            body["SequenceNumber"] = sequence_number
        return str(self.call("GetShardIterator", body)["ShardIterator"])

    def get_records(self, iterator: str, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        result = self.call("GetRecords", {"ShardIterator": iterator, "Limit": limit})
        return list(result.get("Records") or []), result.get("NextShardIterator")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
