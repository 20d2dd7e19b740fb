"""The one DynamoDB adapter: conditional summary updates with exactly-once marks.

Every summary write is a plain UpdateItem (no transaction):

    SET #type = :type, #id = :id, #gsi2pk = :gsi2pk, #mark = :mark
        [, #gsi1pk = :gsi1pk, #gsi1sk = :gsi1sk]          (video summary only)
    ADD #views :views, #duration :duration, #likes :likes, #dislikes :dislikes
    [REMOVE #stale0, ...]                                  (old marks, each conditional)

``ADD`` creates the item and the counters on first use, so all four counters always exist
(``views`` is also the GSI2 range key). ``ReturnValues=ALL_NEW`` and
``ReturnValuesOnConditionCheckFailure=ALL_OLD`` cost no capacity and save the reads the
exactly-once protocol would otherwise need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from video_stats.apply import Rejected, UpdateRequest, Written
from video_stats.model import (
    AttributeMap,
    SummaryKey,
    SummaryKind,
    summary_id_attribute,
    summary_index_partition,
    summary_item_key,
    summary_type,
)

if TYPE_CHECKING:  # pragma: no cover
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

#: Enough connections for the apply thread pool; a few SDK retries for throttling before the
#: key is reported as failed (and Lambda retries it from the stream).
CLIENT_CONFIG = Config(
    max_pool_connections=32,
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3,
    read_timeout=5,
)


def client_from_env() -> DynamoDBClient:
    """A DynamoDB client; boto3 itself honours AWS_ENDPOINT_URL and the usual AWS_* vars."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


class SummaryStore:
    """Summary reads and writes on one table (implements ``apply.SummaryWriter``)."""

    def __init__(self, client: DynamoDBClient, table_name: str, index_shards: int = 4) -> None:
        if index_shards < 1:
            raise ValueError("index_shards must be at least 1")
        self._client = client
        self._table = table_name
        self._shards = index_shards

    @classmethod
    def from_env(cls, client: DynamoDBClient | None = None) -> SummaryStore:
        return cls(
            client if client is not None else client_from_env(),
            os.environ["TABLE_NAME"],
            int(os.environ.get("SUMMARY_INDEX_SHARDS", "4")),
        )

    @property
    def table_name(self) -> str:
        return self._table

    def update(self, request: UpdateRequest) -> Written | Rejected:
        key = request.key
        names: dict[str, str] = {
            "#type": "type",
            "#id": summary_id_attribute(key.kind),
            "#gsi2pk": "GSI2PK",
            "#mark": request.mark_name,
            "#views": "views",
            "#duration": "duration",
            "#likes": "likes",
            "#dislikes": "dislikes",
        }
        delta = request.delta
        values: dict[str, dict[str, str]] = {
            ":type": {"S": summary_type(key.kind)},
            ":id": {"S": key.id},
            ":gsi2pk": {"S": summary_index_partition(key, self._shards)},
            ":mark": {"S": request.mark_value},
            ":views": {"N": str(delta.views)},
            ":duration": {"N": str(delta.duration)},
            ":likes": {"N": str(delta.likes)},
            ":dislikes": {"N": str(delta.dislikes)},
        }
        sets = ["#type = :type", "#id = :id", "#gsi2pk = :gsi2pk", "#mark = :mark"]
        if key.kind is SummaryKind.VIDEO:
            names["#gsi1pk"] = "GSI1PK"
            names["#gsi1sk"] = "GSI1SK"
            values[":gsi1pk"] = {"S": f"VIDEO#{key.id}"}
            values[":gsi1sk"] = {"S": "SUMMARY"}
            sets += ["#gsi1pk = :gsi1pk", "#gsi1sk = :gsi1sk"]
        expression = (
            f"SET {', '.join(sets)} "
            "ADD #views :views, #duration :duration, #likes :likes, #dislikes :dislikes"
        )

        expect = request.expect
        if expect.kind == "below":
            values[":below"] = {"S": expect.value or ""}
            conditions = ["(attribute_not_exists(#mark) OR #mark < :below)"]
        elif expect.value is None:
            conditions = ["attribute_not_exists(#mark)"]
        else:
            values[":expected"] = {"S": expect.value}
            conditions = ["#mark = :expected"]
        removes = []
        for number, (name, value) in enumerate(sorted(request.remove.items())):
            names[f"#stale{number}"] = name
            values[f":stale{number}"] = {"S": value}
            removes.append(f"#stale{number}")
            conditions.append(f"#stale{number} = :stale{number}")
        if removes:
            expression += f" REMOVE {', '.join(removes)}"

        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=summary_item_key(key),
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if _is_condition_failure(err):
                item = err.response.get("Item")
                return Rejected(item if isinstance(item, Mapping) else None)
            raise
        return Written(response.get("Attributes"))

    def read(self, key: SummaryKey) -> AttributeMap | None:
        response = self._client.get_item(
            TableName=self._table, Key=summary_item_key(key), ConsistentRead=True
        )
        item = response.get("Item")
        return item if item else None

    def remove_marks(self, key: SummaryKey, marks: Mapping[str, str]) -> bool:
        if not marks:
            return True
        names: dict[str, str] = {}
        values: dict[str, dict[str, str]] = {}
        conditions = []
        for number, (name, value) in enumerate(sorted(marks.items())):
            names[f"#m{number}"] = name
            values[f":m{number}"] = {"S": value}
            conditions.append(f"#m{number} = :m{number}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key=summary_item_key(key),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if _is_condition_failure(err):
                return False
            raise
        return True


def _is_condition_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
