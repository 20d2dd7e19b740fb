"""The reference design's stream handlers, as the blog author's code behaves (benchmark only).

Each invocation carries one record (batch size 1) and writes both summaries in one
TransactWriteItems: ``ADD`` to the counters and ``SET`` of the identifying attributes, on the
user summary and on the video summary (which also gets GSI1PK/GSI1SK). Like the original:

* it reads ``NewImage`` only and always adds (+1 view and +duration, or +1 like / dislike);
  its filters never deliver a REMOVE, so a deleted view or vote is never subtracted;
* it would undo the opposite vote when an ``OldImage`` is present, but its filter drops
  every MODIFY, so that branch never runs and a changed vote is never counted;
* it handles ``Records[0]`` only, trusting the batch size of 1;
* the summaries carry no GSI2PK (the reference has no ranking index).

Only boto3 (provided by the Lambda runtime) is needed.
"""

from __future__ import annotations

import os
from typing import Any

import boto3

_client: Any = None


def _dynamodb() -> Any:
    global _client  # noqa: PLW0603 - one client per container, as in the reference
    if _client is None:
        _client = boto3.client("dynamodb")
    return _client


def summary_updates(
    table: str, user_id: str, video_id: str, increments: dict[str, int]
) -> list[dict[str, Any]]:
    """The two ``Update`` entries of the transaction: user summary, then video summary."""
    names = {f"#{name}": name for name in increments}
    values = {f":{name}": {"N": str(amount)} for name, amount in increments.items()}
    adds = ", ".join(f"#{name} :{name}" for name in increments)
    user = {
        "TableName": table,
        "Key": {"PK": {"S": f"USER#{user_id}"}, "SK": {"S": "SUMMARY"}},
        "UpdateExpression": f"ADD {adds} SET #type = :type, #userId = :userId",
        "ExpressionAttributeNames": {**names, "#type": "type", "#userId": "userId"},
        "ExpressionAttributeValues": {
            **values,
            ":type": {"S": "USER_SUMMARY"},
            ":userId": {"S": user_id},
        },
    }
    video = {
        "TableName": table,
        "Key": {"PK": {"S": f"VIDEO#{video_id}"}, "SK": {"S": "SUMMARY"}},
        "UpdateExpression": f"ADD {adds} SET #type = :type, #videoId = :videoId, "
        "#gsi1pk = :gsi1pk, #gsi1sk = :gsi1sk",
        "ExpressionAttributeNames": {
            **names,
            "#type": "type",
            "#videoId": "videoId",
            "#gsi1pk": "GSI1PK",
            "#gsi1sk": "GSI1SK",
        },
        "ExpressionAttributeValues": {
            **values,
            ":type": {"S": "VIDEO_SUMMARY"},
            ":videoId": {"S": video_id},
            ":gsi1pk": {"S": f"VIDEO#{video_id}"},
            ":gsi1sk": {"S": "SUMMARY"},
        },
    }
    return [{"Update": user}, {"Update": video}]


def view_increments(record: dict[str, Any]) -> tuple[str, str, dict[str, int]]:
    image = record["dynamodb"]["NewImage"]
    duration = int(image["duration"]["N"])
    return image["userId"]["S"], image["videoId"]["S"], {"views": 1, "duration": duration}


def vote_increments(record: dict[str, Any]) -> tuple[str, str, dict[str, int]]:
    image = record["dynamodb"]["NewImage"]
    like = image["voteType"]["S"] == "LIKE"
    likes, dislikes = (1, 0) if like else (0, 1)
    if "OldImage" in record["dynamodb"]:  # a changed vote: never delivered by the filter
        if like:
            dislikes -= 1
        else:
            likes -= 1
    return image["userId"]["S"], image["videoId"]["S"], {"likes": likes, "dislikes": dislikes}


def _apply(record: dict[str, Any], increments: Any) -> None:
    user_id, video_id, amounts = increments(record)
    print(f"Type: {record['eventName']} User: {user_id} Video: {video_id} {amounts}")
    _dynamodb().transact_write_items(
        TransactItems=summary_updates(os.environ["TABLE_NAME"], user_id, video_id, amounts)
    )


def update_view_counters(event: dict[str, Any], context: Any) -> None:
    _apply(event["Records"][0], view_increments)


def update_like_counters(event: dict[str, Any], context: Any) -> None:
    _apply(event["Records"][0], vote_increments)
