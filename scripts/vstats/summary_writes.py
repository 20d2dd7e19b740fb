"""The recovery tools' conditional writes of a summary (docs/design.md §9): its counters as
absolute values with the marks a target relied on (``write_target``, repair and redrive), and
its index attributes (``write_index`` / ``rank``, safe while the handlers run). Each write is
conditional on what was read, so an invocation that changed the summary meanwhile wins and
the caller recomputes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from video_stats import model
from video_stats.model import SummaryKey
from video_stats.store import SummaryStore, conditional_update, set_clauses

from vstats.drift import Drift, IndexFault, index_fault

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def write_target(
    client: DynamoDBClient,
    table: str,
    drift: Drift,
    index_shards: int,
    *,
    marks: Mapping[str, tuple[str | None, str]] | None = None,
) -> bool:
    """SET the four counters of one summary to absolute values, conditional on them still
    being what was read (a late invocation would make the target stale). Marks untouched,
    except ``marks`` ({name: (value read or None, new value)}), set in the same write and
    conditional on the value read. False when the condition failed."""
    key = drift.key
    target = drift.expected
    names = {"#views": "views", "#duration": "duration", "#likes": "likes", "#dislikes": "dislikes"}
    values: dict[str, Any] = {
        ":views": {"N": str(target.views)},
        ":duration": {"N": str(target.duration)},
        ":likes": {"N": str(target.likes)},
        ":dislikes": {"N": str(target.dislikes)},
    }
    sets = ["#views = :views", "#duration = :duration", "#likes = :likes", "#dislikes = :dislikes"]
    identity = SummaryStore(client, table, index_shards).index_attributes(key, target.views)
    sets += set_clauses(identity, "id", names, values)
    mark_conditions = []
    for number, (name, (old_mark, new_mark)) in enumerate(sorted((marks or {}).items())):
        names[f"#mark{number}"] = name
        values[f":mark{number}"] = {"S": new_mark}
        sets.append(f"#mark{number} = :mark{number}")
        if old_mark is None:
            mark_conditions.append(f"attribute_not_exists(#mark{number})")
        else:
            values[f":old_mark{number}"] = {"S": old_mark}
            mark_conditions.append(f"#mark{number} = :old_mark{number}")
    if drift.exists:
        conditions = list(mark_conditions)
        for name in ("views", "duration", "likes", "dislikes"):
            old = getattr(drift.actual, name)
            values[f":old_{name}"] = {"N": str(old)}
            # A missing counter reads as 0 (model.summary_counters).
            clause = f"#{name} = :old_{name}"
            conditions.append(
                f"({clause} OR attribute_not_exists(#{name}))" if old == 0 else clause
            )
        condition = "attribute_exists(PK) AND " + " AND ".join(conditions)
    else:
        condition = "attribute_not_exists(PK)"
    return conditional_update(
        client,
        TableName=table,
        Key=model.summary_item_key(key),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def write_index(client: DynamoDBClient, store: SummaryStore, fault: IndexFault) -> bool:
    """SET a summary's index attributes for the ``views`` read, conditional on ``views``
    unchanged (a handler that moved it meanwhile sets the bucket itself; ``store.update``).
    Counters and marks untouched. False when the condition failed."""
    names: dict[str, str] = {"#views": "views"}
    values: dict[str, Any] = {":views": {"N": str(fault.views)}}
    sets = set_clauses(store.index_attributes(fault.key, fault.views), "ix", names, values)
    # A summary without a views attribute reads as 0 (model.summary_counters).
    condition = "#views = :views" + (" OR attribute_not_exists(#views)" if not fault.views else "")
    return conditional_update(
        client,
        TableName=store.table_name,
        Key=model.summary_item_key(fault.key),
        UpdateExpression="SET " + ", ".join(sets),
        ConditionExpression=f"attribute_exists(PK) AND ({condition})",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def rank(
    client: DynamoDBClient, store: SummaryStore, faults: Iterable[IndexFault], *, attempts: int = 3
) -> tuple[list[IndexFault], list[SummaryKey]]:
    """Set the index attributes of each faulty summary; safe while the handlers run. When
    ``views`` changed since the read, read the summary again (consistent) and retry with what
    it holds now: its writer may have ranked it already. Returns (written, gave up on)."""
    ranked: list[IndexFault] = []
    gave_up: list[SummaryKey] = []
    for fault in faults:
        current: IndexFault | None = fault
        for _ in range(attempts):
            if current is None or write_index(client, store, current):
                break
            item = store.read(fault.key)
            current = None if item is None else index_fault(store, fault.key, item)
        else:
            gave_up.append(fault.key)
            continue
        if current is not None:
            ranked.append(current)
    return ranked, gave_up
