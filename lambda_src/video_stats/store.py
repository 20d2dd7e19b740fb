"""The one DynamoDB adapter: conditional summary updates with exactly-once marks.

Every summary write is a plain UpdateItem (no transaction):

    SET <identity: type, id, GSI2PK [, GSI1PK, GSI1SK]>, #mark = :mark,
        #gsi2sk = if_not_exists(#gsi2sk, :bucket)
    ADD #views :views, #duration :duration, #likes :likes, #dislikes :dislikes
    REMOVE <this shard's old-format mark> [, ancestors' marks] [, stale marks]
    IF <this shard's marks below the first record, or equal to what was seen>
       AND <no descendant's mark> AND <each stale mark still has the value seen>

``ADD`` creates the item and the counters on first use, so all four counters always exist.
``ReturnValues=ALL_NEW`` and ``ReturnValuesOnConditionCheckFailure=ALL_OLD`` cost no capacity
and save the reads the exactly-once protocol would otherwise need.

GSI2, the ranking index, is keyed by ``GSI2PK`` and ``GSI2SK`` = the power-of-two bucket of
``views`` (``model.summary_index_bucket``) and projects only keys. DynamoDB writes an index
only when a projected attribute changes, so an update that leaves the bucket alone costs
GSI2 nothing (with ``views`` as the range key, every view cost a delete and a put: 2 index
writes). The bucket cannot be computed inside the update (the new ``views`` is known only
after it), so the update *predicts* it: from the ``views`` this container last saw on the item
(every update returns the item) plus the delta; without such a memory, a new summary gets the
bucket of its first delta (``if_not_exists``: exact, since ADD starts from 0). When the
returned item shows a wrong bucket (another shard changed ``views`` meanwhile, or the
container had no memory of an existing item), one follow-up UpdateItem fixes it, conditional
on ``views`` still being in that bucket (a concurrent writer that moved it again fixes it
itself). A rejected update fixes a wrong bucket it finds the same way (a function that died
between an update and its fix leaves it for the redelivery, whose update is rejected). A
summary's views feed from one shard at a time per partition, so the prediction is usually right:
a user summary (one partition) moves about log2(views) times in its life with no extra write;
a hot video costs at most one fix per feeding shard and bucket change.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from video_stats.apply import Rejected, UpdateRequest, Written
from video_stats.model import (
    AttributeMap,
    SummaryKey,
    summary_identity,
    summary_index_bucket,
    summary_item_key,
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


#: Summaries whose last-seen ``views`` a container remembers to predict the GSI2 bucket.
VIEWS_MEMORY = 100_000


def client_from_env() -> DynamoDBClient:
    """A DynamoDB client; boto3 itself honours AWS_ENDPOINT_URL and the usual AWS_* vars."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


class SummaryStore:
    """Summary reads and writes on one table (implements ``apply.SummaryWriter``)."""

    def __init__(self, client: DynamoDBClient, table_name: str, index_shards: int = 4) -> None:
        if index_shards < 1:
            raise ValueError("index_shards must be at least 1")
        self._client = client
        self._views_seen: OrderedDict[SummaryKey, int] = OrderedDict()  # for the GSI2 bucket
        self._seen_lock = threading.Lock()
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

    def identity_attributes(self, key: SummaryKey) -> dict[str, dict[str, str]]:
        """What every writer of a summary sets besides its counters and marks (type, id, GSI1
        keys of a video, GSI2 hash key); ``GSI2SK`` follows ``views``."""
        return summary_identity(key, self._shards)

    def index_attributes(self, key: SummaryKey, views: int) -> dict[str, dict[str, str]]:
        """Everything a summary with ``views`` must carry to be found through the indexes: its
        identity and the GSI2 range key (the bucket of ``views``). The one definition the
        handlers' writes, reconcile's check and its repair share."""
        return {**self.identity_attributes(key), "GSI2SK": {"S": summary_index_bucket(views)}}

    def update(self, request: UpdateRequest) -> Written | Rejected:
        key = request.key
        names: dict[str, str] = {
            "#mark": request.marks.current,
            "#legacy": request.marks.legacy,
            "#gsi2sk": "GSI2SK",
            "#views": "views",
            "#duration": "duration",
            "#likes": "likes",
            "#dislikes": "dislikes",
        }
        delta = request.delta
        values: dict[str, dict[str, str]] = {
            ":mark": {"S": request.mark_value},
            ":views": {"N": str(delta.views)},
            ":duration": {"N": str(delta.duration)},
            ":likes": {"N": str(delta.likes)},
            ":dislikes": {"N": str(delta.dislikes)},
        }
        sets = ["#mark = :mark"]
        seen = self._seen(key)
        if delta.views and seen is not None:  # votes never move the bucket: leave it alone
            values[":bucket"] = {"S": summary_index_bucket(seen + delta.views)}
            sets.append("#gsi2sk = :bucket")
        else:
            values[":bucket"] = {"S": summary_index_bucket(delta.views)}
            sets.append("#gsi2sk = if_not_exists(#gsi2sk, :bucket)")
        sets += set_clauses(self.identity_attributes(key), "id", names, values)
        expression = (
            f"SET {', '.join(sets)} "
            "ADD #views :views, #duration :duration, #likes :likes, #dislikes :dislikes"
        )

        expect = request.expect
        conditions = []
        for placeholder, bound in (("#mark", expect.value), ("#legacy", expect.legacy)):
            token = placeholder.replace("#", ":x")
            if expect.kind == "below":
                values[token] = {"S": bound or ""}
                conditions.append(
                    f"(attribute_not_exists({placeholder}) OR {placeholder} < {token})"
                )
            elif bound is None:
                conditions.append(f"attribute_not_exists({placeholder})")
            else:
                values[token] = {"S": bound}
                conditions.append(f"{placeholder} = {token}")
        removes = ["#legacy"]  # converts this shard's old-format mark (its value is compared)
        own = set(request.marks.names())
        stale = {n: v for n, v in request.remove.items() if n not in own}
        for number, (name, stale_value) in enumerate(sorted(stale.items())):
            names[f"#stale{number}"] = name
            values[f":stale{number}"] = {"S": stale_value}
            removes.append(f"#stale{number}")
            conditions.append(f"#stale{number} = :stale{number}")
        taken = own | set(stale)
        for number, name in enumerate(n for n in dict.fromkeys(request.drop) if n not in taken):
            names[f"#drop{number}"] = name
            removes.append(f"#drop{number}")
        taken |= set(request.drop)
        for number, name in enumerate(n for n in dict.fromkeys(request.forbid) if n not in taken):
            names[f"#child{number}"] = name
            conditions.append(f"attribute_not_exists(#child{number})")
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
            if is_condition_failure(err):
                item = err.response.get("Item")
                old = item if isinstance(item, Mapping) else None
                self._remember(key, old)
                # A function that died between an update and its bucket fix left the bucket
                # wrong; the redelivery is rejected, so the fix is made here.
                return Rejected(old, self._move_in_index(key, old))
            raise
        item = response.get("Attributes")
        self._remember(key, item)
        return Written(item, self._move_in_index(key, item))

    def _seen(self, key: SummaryKey) -> int | None:
        with self._seen_lock:
            return self._views_seen.get(key)

    def _remember(self, key: SummaryKey, item: AttributeMap | None) -> None:
        text = ((item or {}).get("views") or {}).get("N")
        if not isinstance(text, str):
            return
        with self._seen_lock:
            self._views_seen[key] = int(Decimal(text))
            self._views_seen.move_to_end(key)
            while len(self._views_seen) > VIEWS_MEMORY:
                self._views_seen.popitem(last=False)

    def _move_in_index(self, key: SummaryKey, item: AttributeMap | None) -> int:
        """Move the summary to its views bucket in GSI2 if the update took it out of it;
        returns the number of extra writes (0 or 1). Best effort: a failure leaves the item
        ranked by its old bucket until its next update, counters are unaffected."""
        views_attr = (item or {}).get("views") or {}
        text = views_attr.get("N")
        if not isinstance(text, str):
            return 0
        views = int(Decimal(text))
        bucket = summary_index_bucket(views)
        current = ((item or {}).get("GSI2SK") or {}).get("S")
        if current == bucket:
            return 0
        low, high = (
            (0, 0) if views <= 0 else (1 << (views.bit_length() - 1), (1 << views.bit_length()) - 1)
        )
        condition = "#views BETWEEN :low AND :high"
        if views <= 0:
            condition = "#views <= :high"
        # A failed condition: moved again meanwhile (its writer fixes it); or throttled.
        with contextlib.suppress(ClientError):
            self._client.update_item(
                TableName=self._table,
                Key=summary_item_key(key),
                UpdateExpression="SET #gsi2sk = :bucket",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#gsi2sk": "GSI2SK", "#views": "views"},
                ExpressionAttributeValues={
                    ":bucket": {"S": bucket},
                    ":high": {"N": str(high)},
                    **({":low": {"N": str(low)}} if views > 0 else {}),
                },
            )
        return 1

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
        return conditional_update(
            self._client,
            TableName=self._table,
            Key=summary_item_key(key),
            UpdateExpression="REMOVE " + ", ".join(names),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def set_clauses(
    attributes: Mapping[str, Any], prefix: str, names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """An UpdateExpression's SET clauses for ``attributes`` ({name: value}), under numbered
    placeholders ``#<prefix>N`` / ``:<prefix>N`` added to ``names`` and ``values``."""
    clauses = []
    for number, (name, value) in enumerate(attributes.items()):
        names[f"#{prefix}{number}"] = name
        values[f":{prefix}{number}"] = value
        clauses.append(f"#{prefix}{number} = :{prefix}{number}")
    return clauses


def conditional_update(client: DynamoDBClient, **request: Any) -> bool:
    """One conditional ``UpdateItem``; False when its condition failed."""
    try:
        client.update_item(**request)
    except ClientError as err:
        if is_condition_failure(err):
            return False
        raise
    return True


def is_condition_failure(err: ClientError) -> bool:
    """A conditional write that was refused (it still costs its write units)."""
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
