"""The bench endpoint's TransactWriteItems patch changes moto's speed, not its behaviour: the
same operations give the same items and the same stream records with and without it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from benchmark.endpoint import install_fast_transactions
from benchmark.engine_bench import create_keys_only_table
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "bench-patch"

Outcome = tuple[dict[str, int | None], list[tuple[str, str]]]


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def add(key: str, condition: str | None = None) -> dict[str, Any]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"PK": {"S": key}, "SK": {"S": "SUMMARY"}},
        "UpdateExpression": "ADD #v :one",
        "ExpressionAttributeNames": {"#v": "views"},
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return {"Update": update}


def views(client: Any, key: str) -> int | None:
    response = client.get_item(TableName=TABLE, Key={"PK": {"S": key}, "SK": {"S": "SUMMARY"}})
    item = response.get("Item")
    return None if item is None else int(item.get("views", {"N": "0"})["N"])


def stream() -> list[tuple[str, str]]:
    shard: Any = dynamodb_backends[ACCOUNT][REGION].tables[TABLE].stream_shard
    return [(r.record["eventName"], r.record["dynamodb"]["SequenceNumber"]) for r in shard.items]


def scenario(steps: Callable[[Any], None]) -> Outcome:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_keys_only_table(client, TABLE)
        steps(client)
        return {k: views(client, k) for k in ("a", "b", "c", "new")}, stream()


def both(steps: Callable[[Any], None]) -> tuple[Outcome, Outcome]:
    stock = scenario(steps)
    undo = install_fast_transactions()
    try:
        patched = scenario(steps)
    finally:
        undo()
    return stock, patched


def transactions(client: Any) -> None:
    for _ in range(3):
        client.transact_write_items(TransactItems=[add("a"), add("b")])


def cancelled(client: Any) -> None:
    client.transact_write_items(TransactItems=[add("a")])
    client.put_item(TableName=TABLE, Item={"PK": {"S": "c"}, "SK": {"S": "SUMMARY"}})
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[add("a"), add("new"), add("c", "attribute_not_exists(PK)")]
        )
    client.transact_write_items(TransactItems=[add("a")])


def test_successful_transactions_are_unchanged() -> None:
    stock, patched = both(transactions)
    assert patched == stock
    assert patched[0]["a"] == patched[0]["b"] == 3


def test_a_cancelled_transaction_is_rolled_back_as_before() -> None:
    stock, patched = both(cancelled)
    assert patched == stock
    counters, records = patched
    assert counters["a"] == 2  # updated in place, restored, then updated again
    assert counters["new"] is None  # created, then removed again
    sequence = [int(seq) for _, seq in records]
    assert sequence == list(range(sequence[0], sequence[0] + len(sequence)))  # dense


def test_undo_restores_moto() -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

    stock = DynamoDBBackend.transact_write_items
    undo = install_fast_transactions()
    assert DynamoDBBackend.transact_write_items is not stock
    undo()
    assert DynamoDBBackend.transact_write_items is stock
    assert "__deepcopy__" not in Table.__dict__
