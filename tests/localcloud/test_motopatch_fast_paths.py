"""The endpoint's shortcuts through moto (motopatch._patch_hot_paths): with the parsed-expression
cache the handlers' own updates give the same answers and items, the shared tree is never
changed and the cache is bounded; the plain-JSON answers read like moto's serializer's. In
process (moto's mock_aws), no server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from localcloud import motopatch
from moto import mock_aws
from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
from moto.dynamodb.responses import DynamoHandler
from stream_fakes import create_table
from video_stats.apply import Expect, UpdateRequest
from video_stats.marks import shard_marks
from video_stats.model import Counters, SummaryKey, SummaryKind
from video_stats.store import SummaryStore

TABLE = "parse-cache"
SHARD_A = "shardId-00000001700000000000-aaaaaaaa"
SHARD_B = "shardId-00000001700000000001-bbbbbbbb"


class RecordingClient:
    """A boto3 client that remembers every UpdateExpression it sends."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.expressions: list[str] = []

    def update_item(self, **kwargs: Any) -> Any:
        self.expressions.append(kwargs["UpdateExpression"])
        return self._client.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def requests() -> list[UpdateRequest]:
    """The shapes the handlers send: first writes, increments, a replay the condition rejects,
    negative deltas, stale marks removed on their value, ancestors dropped, children
    forbidden, and a second shard's mark on the same summary."""
    video, user = SummaryKey(SummaryKind.VIDEO, "v1"), SummaryKey(SummaryKind.USER, "u1")
    a, b = shard_marks("views", SHARD_A), shard_marks("views", SHARD_B)

    def update(key: SummaryKey, marks: Any, seq: int, delta: Counters, **kw: Any) -> Any:
        expect = kw.pop("expect", Expect.below(seq))
        kw.setdefault("remove", {})
        return UpdateRequest(key, delta, marks, Expect.below(seq).value or "", expect, **kw)

    return [
        update(video, a, 10, Counters(views=1, duration=30)),
        update(user, a, 11, Counters(views=1, duration=30)),
        update(video, a, 12, Counters(likes=1)),
        update(video, a, 12, Counters(views=5)),  # replay of 12: rejected
        update(video, b, 20, Counters(views=-1, duration=-30), drop=(a.current,)),
        update(video, b, 21, Counters(dislikes=1), forbid=("views_child_mark",)),
        update(user, b, 22, Counters(views=2), remove={a.current: Expect.below(11).value or ""}),
        update(user, b, 23, Counters(views=1), remove={a.current: "not-its-value"}),  # rejected
        update(
            video, b, 24, Counters(views=3), expect=Expect("equals", Expect.below(22).value)
        ),  # an equals check against a wrong value: rejected
    ]


def run(use_cache: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], list[str]]:
    """The requests' outcomes, the table afterwards and the expressions sent."""
    with monkeypatch.context() as patch:
        if use_cache:
            patch.setattr(UpdateExpressionParser, "make", motopatch.CACHED_MAKE)
        with mock_aws():
            raw = boto3.client("dynamodb", region_name="us-east-1")
            create_table(raw, TABLE)
            client = RecordingClient(raw)
            store = SummaryStore(client, TABLE)  # type: ignore[arg-type]
            outcomes: list[Any] = [store.update(request) for request in requests()]
            outcomes.append(bad_expression(raw))
            outcomes.append(bad_expression(raw))  # a syntax error is not remembered as a result
            items = sorted(raw.scan(TableName=TABLE)["Items"], key=lambda i: str(i["PK"]))
    return outcomes, items, client.expressions


def bad_expression(client: Any) -> str:
    try:
        client.update_item(
            TableName=TABLE,
            Key={"PK": {"S": "x"}, "SK": {"S": "x"}},
            UpdateExpression="SET #a = = :a",
            ExpressionAttributeNames={"#a": "a"},
            ExpressionAttributeValues={":a": {"S": "a"}},
        )
    except ClientError as err:
        return str(err)
    return "accepted"


def shape(node: Any) -> Any:
    """A node's whole tree as plain values (type, attributes, children), to compare trees."""
    if isinstance(node, Node):
        fields = {k: shape(v) for k, v in vars(node).items() if k not in ("parent", "children")}
        return (type(node).__name__, fields, [shape(c) for c in node.children or []])
    if isinstance(node, list | tuple):
        return [shape(c) for c in node]
    own_repr: Any = type(node).__repr__
    return repr(node) if own_repr is not object.__repr__ else type(node).__name__


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    motopatch.parse_update_expression.cache_clear()
    yield
    motopatch.parse_update_expression.cache_clear()


def test_cached_parse_gives_the_same_outcomes_and_items(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = run(use_cache=False, monkeypatch=monkeypatch)
    cached = run(use_cache=True, monkeypatch=monkeypatch)
    assert cached[0] == plain[0]
    assert cached[1] == plain[1]
    assert [type(o).__name__ for o in plain[0]].count("Rejected") == 3
    assert "ValidationException" in str(plain[0][-1])
    # Each UpdateItem parses its expression twice (request check, backend): from the second on,
    # the cache answers, and every distinct text was parsed once.
    info = motopatch.parse_update_expression.cache_info()
    texts = set(cached[2])
    assert info.currsize == len(texts)
    assert info.hits == 2 * len(cached[2]) - len(texts)


def test_the_shared_tree_is_not_changed_by_updates(
    fresh_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, texts = run(use_cache=True, monkeypatch=monkeypatch)
    for text in set(texts):
        cached = motopatch.parse_update_expression(text)
        assert shape(cached) == shape(motopatch._ORIGINAL_MAKE(text)), text


def test_the_cache_is_bounded(fresh_cache: None) -> None:
    first = motopatch.parse_update_expression("SET #a0 = :v")
    assert motopatch.parse_update_expression("SET #a0 = :v") is first
    for number in range(motopatch.PARSED_EXPRESSIONS + 50):
        motopatch.parse_update_expression(f"SET #a{number} = :v ADD #n :one")
    assert motopatch.parse_update_expression.cache_info().currsize == motopatch.PARSED_EXPRESSIONS


def test_moto_modules_listed_once() -> None:
    assert list(motopatch._moto_modules()) == list(motopatch._ORIGINAL_LIST_OF_MOTO_MODULES())
    assert "dynamodb" in motopatch._moto_modules()


def item_operations(client: Any) -> list[Any]:
    """Every item operation in PLAIN_RESPONSES, with each attribute type, each ReturnValues,
    capacity, paging and an error; the answers as the client parsed them."""
    every_type = {
        "PK": {"S": "p"},
        "SK": {"S": "1"},
        "n": {"N": "12.50"},
        "b": {"B": b"\x00\xffbin"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b"x", b"\x01"]},
        "m": {"M": {"s": {"S": "x"}, "l": {"L": [{"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
        "empty": {"S": ""},
    }
    answers: list[Any] = []

    def call(name: str, **kwargs: Any) -> None:
        try:
            answer = getattr(client, name)(TableName=TABLE, **kwargs)
            answer.pop("ResponseMetadata", None)
            answers.append(answer)
        except ClientError as err:
            answers.append((err.response["Error"], err.response.get("Item")))

    key = {"PK": {"S": "p"}, "SK": {"S": "1"}}
    call("put_item", Item=every_type)
    call("put_item", Item={**every_type, "n": {"N": "1"}}, ReturnValues="ALL_OLD")
    call("put_item", Item=every_type, ReturnConsumedCapacity="TOTAL")
    call("get_item", Key=key)
    call("get_item", Key={"PK": {"S": "none"}, "SK": {"S": "1"}})
    call("get_item", Key=key, ProjectionExpression="m.l, b", ReturnConsumedCapacity="INDEXES")
    for values in ("NONE", "ALL_NEW", "ALL_OLD", "UPDATED_NEW", "UPDATED_OLD"):
        call(
            "update_item",
            Key=key,
            UpdateExpression="ADD n :one SET bs2 = :b",
            ExpressionAttributeValues={":one": {"N": "1"}, ":b": {"BS": [b"y"]}},
            ReturnValues=values,
        )
    call(
        "update_item",
        Key=key,
        UpdateExpression="SET n = :one",
        ConditionExpression="attribute_not_exists(PK)",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    for number in range(5):
        call("put_item", Item={"PK": {"S": "q"}, "SK": {"S": str(number)}, "v": {"N": "1"}})
    query = {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "q"}}}
    call("query", **query)
    call("query", **query, Limit=2, ReturnConsumedCapacity="TOTAL")
    call("query", **query, Select="COUNT")
    call("query", **query, ExclusiveStartKey={"PK": {"S": "q"}, "SK": {"S": "2"}})
    call("query", IndexName="GSI1", **query)  # an error: answered by moto
    call("delete_item", Key=key, ReturnValues="ALL_OLD")
    call("delete_item", Key=key, ReturnValues="ALL_OLD")
    return answers


def test_plain_responses_read_like_motos(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = []
    for plain in (False, True):
        with monkeypatch.context() as patch:
            if plain:
                patch.setattr(DynamoHandler, "serialized", motopatch._serialized)
            with mock_aws():
                client = boto3.client("dynamodb", region_name="us-east-1")
                create_table(client, TABLE)
                answers.append(item_operations(client))
    assert answers[1] == answers[0]
    assert sum(isinstance(a, tuple) for a in answers[0]) == 2
