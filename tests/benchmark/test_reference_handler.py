"""The reference design's handlers behave like the blog author's code (a fake client)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from video_stats import model

HANDLERS = (
    Path(__file__).resolve().parents[2]
    / "bench"
    / "reference"
    / "lambda_src"
    / "reference_design"
    / "handlers.py"
)
TS = datetime(2022, 1, 2, 17, 5, 29, 123000, tzinfo=UTC)


def load_handlers() -> Any:
    spec = importlib.util.spec_from_file_location("reference_design_handlers", HANDLERS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClient:
    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:
        self.transactions.append(TransactItems)


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_handlers()
    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setattr(module, "_client", FakeClient())
    return module


def event(name: str, new: Any = None, old: Any = None) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {}
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {"Records": [{"eventName": name, "dynamodb": dynamodb}]}


def update_of(transaction: list[dict[str, Any]], pk: str) -> dict[str, Any]:
    (update,) = [t["Update"] for t in transaction if t["Update"]["Key"]["PK"]["S"] == pk]
    found: dict[str, Any] = update
    return found


def test_a_view_is_one_transaction_adding_to_both_summaries(handlers: Any) -> None:
    handlers.update_view_counters(event("INSERT", new=model.view_item("u1", "v1", 42, TS)), None)
    (transaction,) = handlers._client.transactions
    assert len(transaction) == 2
    user, video = update_of(transaction, "USER#u1"), update_of(transaction, "VIDEO#v1")
    for update in (user, video):
        assert update["TableName"] == "t"
        assert update["Key"]["SK"] == {"S": "SUMMARY"}
        assert update["UpdateExpression"].startswith("ADD #views :views, #duration :duration SET")
        assert update["ExpressionAttributeValues"][":views"] == {"N": "1"}
        assert update["ExpressionAttributeValues"][":duration"] == {"N": "42"}
        assert "ConditionExpression" not in update
    assert user["ExpressionAttributeValues"][":type"] == {"S": "USER_SUMMARY"}
    assert video["ExpressionAttributeValues"][":gsi1pk"] == {"S": "VIDEO#v1"}
    assert video["ExpressionAttributeValues"][":gsi1sk"] == {"S": "SUMMARY"}
    assert not any("GSI2PK" in str(update) for update in (user, video))


def test_a_vote_adds_one_like_or_dislike(handlers: Any) -> None:
    handlers.update_like_counters(event("INSERT", new=model.vote_item("u", "v", "DISLIKE")), None)
    values = update_of(handlers._client.transactions[0], "VIDEO#v")["ExpressionAttributeValues"]
    assert (values[":likes"], values[":dislikes"]) == ({"N": "0"}, {"N": "1"})


def test_the_changed_vote_branch_the_filter_never_reaches(handlers: Any) -> None:
    changed = event(
        "MODIFY", new=model.vote_item("u", "v", "LIKE"), old=model.vote_item("u", "v", "DISLIKE")
    )
    handlers.update_like_counters(changed, None)
    values = update_of(handlers._client.transactions[0], "USER#u")["ExpressionAttributeValues"]
    assert (values[":likes"], values[":dislikes"]) == ({"N": "1"}, {"N": "-1"})


def test_only_the_first_record_is_handled(handlers: Any) -> None:
    batch = event("INSERT", new=model.view_item("u", "v", 1, TS))
    batch["Records"].append(batch["Records"][0])
    handlers.update_view_counters(batch, None)
    assert len(handlers._client.transactions) == 1


def test_a_remove_would_crash_it(handlers: Any) -> None:
    # The blog's filter never delivers one (no NewImage), so its code never handles deletes.
    with pytest.raises(KeyError):
        handlers.update_view_counters(event("REMOVE", old=model.view_item("u", "v", 1, TS)), None)
