# ruff: noqa: E501  (a table of cases reads best one per line)
"""Filter criteria by AWS's rules: a table of patterns against stream records (AWS Lambda
developer guide, "Control which events Lambda sends to your function" and "Using event filtering
with a DynamoDB event source"), the operators and keys a DynamoDB mapping may not use, and the
project's deployed patterns (filter_patterns.json) evaluated with the same code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lc_support import Pipeline
from localcloud.filters import (
    DYNAMODB_KEY_ONLY,
    LAMBDA_OPERATORS,
    NO_FILTERS,
    PatternError,
    compile_filter_criteria,
    compile_pattern,
    flatten,
)
from vstats.filter_patterns import deployed_patterns, filter_criteria


def _record(
    event_name: str, new: dict[str, Any] | None, old: dict[str, Any] | None
) -> dict[str, Any]:
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1678831218.0,
        "Keys": {"CustomerName": {"S": "AnyCompany Industries"}},
        "SequenceNumber": "111",
        "SizeBytes": 26,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        "dynamodb": dynamodb,
    }


VIEW = {
    "PK": {"S": "USER#u1"},
    "SK": {"S": "VIDEO#v1#VIEW#2022-01-02T17:05:29.123+00:00"},
    "type": {"S": "VIEW"},
    "duration": {"N": "300"},
    "AccountManager": {"S": "Pat Candella"},
    "PaymentTerms": {"S": "60 days"},
    "Active": {"BOOL": True},
    "Tags": {"SS": ["blue", "green"]},
    "Nothing": {"NULL": True},
    "Empty": {"S": ""},
    "Address": {"M": {"City": {"S": "Seattle"}}},
    "Ip": {"S": "10.0.0.7"},
}
VIEW_OLD = {**VIEW, "duration": {"N": "120"}}
SUMMARY = {"PK": {"S": "VIDEO#v1"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"}}

INSERT = _record("INSERT", VIEW, None)
MODIFY = _record("MODIFY", VIEW, VIEW_OLD)
REMOVE = _record("REMOVE", None, VIEW)
SUMMARY_INSERT = _record("INSERT", SUMMARY, None)

# The project's deployed filters (filter_patterns.json, deployed by filters.tf): NewImage
# (INSERT, MODIFY) and OldImage (MODIFY, REMOVE) of the function's item type.
NEW_VIEW, OLD_VIEW = deployed_patterns()["VIEW"]
# The patterns as they were, with eventName: a DynamoDB mapping no longer accepts them, but they
# compile as patterns, which shows that dropping eventName changes no delivery.
FORMER_VIEW = [
    {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"type": {"S": ["VIEW"]}}}},
    {"eventName": ["MODIFY", "REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["VIEW"]}}}},
]
# The blog's filter: a REMOVE has no NewImage, so it can never match (and it names eventName).
BLOG_VIEW = {"dynamodb": {"NewImage": {"type": {"S": ["VIEW"]}}}, "eventName": ["INSERT", "REMOVE"]}


def _new(rules: Any) -> dict[str, Any]:
    return {"dynamodb": {"NewImage": rules}}


CASES: list[tuple[str, Any, dict[str, Any], bool]] = [
    # equals, and every named field must exist
    ("key equals", {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}, INSERT, True),
    ("key differs", {"dynamodb": {"Keys": {"CustomerName": {"S": ["Other"]}}}}, INSERT, False),
    ("attribute OR values", _new({"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}), INSERT, True),
    ("case matters", _new({"AccountManager": {"S": ["pat candella"]}}), INSERT, False),
    ("AND across fields", {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}, "NewImage": {"type": {"S": ["VIEW"]}}}}, INSERT, True),
    ("AND fails on one field", {"dynamodb": {"Keys": {"CustomerName": {"S": ["Other"]}}, "NewImage": {"type": {"S": ["VIEW"]}}}}, INSERT, False),
    ("missing field never matches", _new({"Missing": {"S": ["x"]}}), INSERT, False),
    ("REMOVE has no NewImage", _new({"type": {"S": ["VIEW"]}}), REMOVE, False),
    ("REMOVE matched on OldImage", OLD_VIEW, REMOVE, True),
    ("INSERT matched on NewImage", NEW_VIEW, INSERT, True),
    ("INSERT has no OldImage", OLD_VIEW, INSERT, False),
    ("MODIFY has both images (new)", NEW_VIEW, MODIFY, True),
    ("MODIFY has both images (old)", OLD_VIEW, MODIFY, True),
    ("summary never matches new", NEW_VIEW, SUMMARY_INSERT, False),
    ("summary never matches old", OLD_VIEW, SUMMARY_INSERT, False),
    # numbers are strings: exact representation
    ("N exact string", _new({"duration": {"N": ["300"]}}), INSERT, True),
    ("N other representation", _new({"duration": {"N": ["300.0"]}}), INSERT, False),
    ("N is not a JSON number", _new({"duration": {"N": [300]}}), INSERT, False),
    ("JSON number equals", {"dynamodb": {"SizeBytes": [26]}}, INSERT, True),
    ("JSON number other repr", {"dynamodb": {"SizeBytes": [26.0]}}, INSERT, False),
    # numeric
    ("numeric range on N", _new({"duration": {"N": [{"numeric": [">", 10, "<=", 300]}]}}), INSERT, True),
    ("numeric range excludes", _new({"duration": {"N": [{"numeric": [">", 300]}]}}), INSERT, False),
    ("numeric equals", {"dynamodb": {"SizeBytes": [{"numeric": ["=", 26]}]}}, INSERT, True),
    ("numeric on S never", _new({"type": {"S": [{"numeric": [">", 0]}]}}), INSERT, False),
    ("numeric old image", {"dynamodb": {"OldImage": {"duration": {"N": [{"numeric": ["<", 200]}]}}}}, MODIFY, True),
    # boolean and null and empty
    ("BOOL true", _new({"Active": {"BOOL": [True]}}), INSERT, True),
    ("BOOL false", _new({"Active": {"BOOL": [False]}}), INSERT, False),
    ("NULL attribute", _new({"Nothing": {"NULL": [True]}}), INSERT, True),
    ("empty string", _new({"Empty": {"S": [""]}}), INSERT, True),
    ("empty string not", _new({"AccountManager": {"S": [""]}}), INSERT, False),
    ("null value", {"dynamodb": {"Extra": [None]}}, {**INSERT, "dynamodb": {**INSERT["dynamodb"], "Extra": None}}, True),
    ("null does not match missing", {"dynamodb": {"Extra": [None]}}, INSERT, False),
    ("null does not match value", {"dynamodb": {"SequenceNumber": [None]}}, INSERT, False),
    # anything-but
    ("anything-but value", _new({"type": {"S": [{"anything-but": ["VOTE"]}]}}), INSERT, True),
    ("anything-but excluded", _new({"type": {"S": [{"anything-but": ["VIEW", "VOTE"]}]}}), INSERT, False),
    ("anything-but single", {"dynamodb": {"StreamViewType": [{"anything-but": "KEYS_ONLY"}]}}, INSERT, True),
    ("anything-but needs field", _new({"Missing": {"S": [{"anything-but": ["x"]}]}}), INSERT, False),
    ("anything-but number", {"dynamodb": {"SizeBytes": [{"anything-but": [100]}]}}, INSERT, True),
    # exists
    ("exists true", _new({"type": {"S": [{"exists": True}]}}), INSERT, True),
    ("exists false on absent", _new({"Missing": {"S": [{"exists": False}]}}), INSERT, True),
    ("exists false on present", _new({"type": {"S": [{"exists": False}]}}), INSERT, False),
    ("exists false without image", _new({"type": {"S": [{"exists": False}]}}), REMOVE, True),
    ("exists on intermediate node", _new({"type": [{"exists": True}]}), INSERT, False),
    ("exists true without image", _new({"type": {"S": [{"exists": True}]}}), REMOVE, False),
    # prefix, suffix, equals-ignore-case
    ("prefix", _new({"SK": {"S": [{"prefix": "VIDEO#v1#VIEW#"}]}}), INSERT, True),
    ("prefix no", _new({"SK": {"S": [{"prefix": "VIDEO#v2#"}]}}), INSERT, False),
    ("suffix", _new({"PaymentTerms": {"S": [{"suffix": " days"}]}}), INSERT, True),
    ("suffix no", _new({"PaymentTerms": {"S": [{"suffix": "weeks"}]}}), INSERT, False),
    ("equals-ignore-case", _new({"type": {"S": [{"equals-ignore-case": "view"}]}}), INSERT, True),
    ("equals-ignore-case no", _new({"type": {"S": [{"equals-ignore-case": "vote"}]}}), INSERT, False),
    # arrays (sets) match on any element; nested maps are paths
    ("set element", _new({"Tags": {"SS": ["green"]}}), INSERT, True),
    ("set no element", _new({"Tags": {"SS": ["red"]}}), INSERT, False),
    ("map path", _new({"Address": {"M": {"City": {"S": ["Seattle"]}}}}), INSERT, True),
    # mixed alternatives in one list, and $or
    ("exists or value", _new({"Missing": {"S": ["x", {"exists": False}]}}), INSERT, True),
    ("$or first", {"dynamodb": {"$or": [{"OldImage": {"type": {"S": ["VIEW"]}}}, {"NewImage": {"type": {"S": ["VIEW"]}}}]}}, INSERT, True),
    ("$or none", {"dynamodb": {"$or": [{"OldImage": {"type": {"S": ["VIEW"]}}}, {"NewImage": {"type": {"S": ["VOTE"]}}}]}}, INSERT, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pattern", "record", "expected"),
    [pytest.param(p, r, e, id=name) for name, p, r, e in CASES],
)
def test_pattern_table(pattern: Any, record: dict[str, Any], expected: bool) -> None:
    criteria = compile_filter_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})
    assert criteria.matches(record) is expected


def test_filters_are_ored() -> None:
    criteria = compile_filter_criteria(
        {"Filters": [{"Pattern": json.dumps(NEW_VIEW)}, {"Pattern": json.dumps(OLD_VIEW)}]}
    )
    assert [criteria.matches(r) for r in (INSERT, MODIFY, REMOVE, SUMMARY_INSERT)] == [
        True,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("criteria", [None, {}, {"Filters": []}])
def test_no_filters_deliver_everything(criteria: Any) -> None:
    compiled = compile_filter_criteria(criteria)
    assert compiled == NO_FILTERS
    assert compiled.matches(SUMMARY_INSERT)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        "{}",
        '{"a": "x"}',
        '{"a": []}',
        '{"a": [{"numeric": [">", "x"]}]}',
        '{"a": [{"numeric": ["<", 5, ">", 1]}]}',
        '{"a": [{"exists": "yes"}]}',
        '{"a": [{"unknown-op": 1}]}',
        '{"a": [{"prefix": 1}]}',
        '{"a": [{"anything-but": []}]}',
        '{"a": [{"cidr": "nope"}]}',
        '{"a": [{"wildcard": "a**b"}]}',
        # EventBridge operators the Lambda guide does not list for event filtering
        '{"a": [{"wildcard": "VIDEO#*"}]}',
        '{"a": [{"cidr": "10.0.0.0/24"}]}',
        '{"a": [{"anything-but": {"prefix": "USER#"}}]}',
        '{"a": [{"anything-but": {"suffix": "days"}}]}',
        '{"a": [{"anything-but": {"equals-ignore-case": ["view"]}}]}',
        '{"a": [{"anything-but": {"wildcard": "x*"}}]}',
        '{"a": [{"prefix": {"equals-ignore-case": "video#"}}]}',
        '{"a": [{"suffix": {"equals-ignore-case": "DAYS"}}]}',
        '{"$or": [{"a": ["x"]}]}',
        '{"a": [["x"]]}',
        '{"a": ["' + "x" * 4096 + '"]}',
    ],
)
def test_invalid_patterns_are_rejected(text: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(text)


def test_too_many_filters() -> None:
    filters = [{"Pattern": json.dumps({"dynamodb": {"SizeBytes": [i]}})} for i in range(6)]
    with pytest.raises(PatternError):
        compile_filter_criteria({"Filters": filters})


def test_the_documented_operators_are_the_ones_accepted() -> None:
    # The README of scripts/localcloud lists the same set.
    assert LAMBDA_OPERATORS == (
        "equals-ignore-case",
        "anything-but",
        "numeric",
        "exists",
        "prefix",
        "suffix",
    )


@pytest.mark.parametrize(
    "pattern",
    [
        BLOG_VIEW,
        *FORMER_VIEW,
        {"eventName": ["INSERT"]},
        {"awsRegion": ["us-east-1"]},
        {"$or": [{"dynamodb": {"SizeBytes": [1]}}, {"dynamodb": {"SizeBytes": [2]}}]},
    ],
)
def test_dynamodb_patterns_may_only_name_the_dynamodb_key(pattern: dict[str, Any]) -> None:
    compile_pattern(json.dumps(pattern))  # valid syntax ...
    with pytest.raises(PatternError, match="only support filtering on the `dynamodb` key"):
        compile_filter_criteria({"Filters": [{"Pattern": json.dumps(pattern)}]})  # ... refused


def test_the_blog_filter_never_matches_a_remove_or_a_modify() -> None:
    blog = compile_pattern(json.dumps(BLOG_VIEW))
    flat = [flatten(r) for r in (INSERT, MODIFY, REMOVE)]
    assert [blog.matches(f) for f in flat] == [True, False, False]


# Every kind of record a function could see: inserts, changes, removals, type changes and the
# handlers' own summary writes.
VOTE_ITEM = {**VIEW, "type": {"S": "VOTE"}, "voteType": {"S": "LIKE"}}
EVERY_KIND = {
    "insert view": _record("INSERT", VIEW, None),
    "modify view": _record("MODIFY", VIEW, VIEW_OLD),
    "remove view": _record("REMOVE", None, VIEW),
    "insert vote": _record("INSERT", VOTE_ITEM, None),
    "modify vote": _record("MODIFY", VOTE_ITEM, VOTE_ITEM),
    "remove vote": _record("REMOVE", None, VOTE_ITEM),
    "view becomes vote": _record("MODIFY", VOTE_ITEM, VIEW),
    "vote becomes view": _record("MODIFY", VIEW, VOTE_ITEM),
    "insert summary": SUMMARY_INSERT,
    "modify summary": _record("MODIFY", SUMMARY, SUMMARY),
    "remove summary": _record("REMOVE", None, SUMMARY),
}


@pytest.mark.parametrize("item_type", ["VIEW", "VOTE"])
@pytest.mark.parametrize("kind", list(EVERY_KIND))
def test_dropping_event_name_changes_no_delivery(item_type: str, kind: str) -> None:
    """The deployed patterns deliver exactly what the former eventName patterns did."""
    record = EVERY_KIND[kind]
    deployed = compile_filter_criteria(filter_criteria(item_type))
    former = [
        compile_pattern(json.dumps(p).replace('"VIEW"', f'"{item_type}"')) for p in FORMER_VIEW
    ]
    assert deployed.matches(record) == any(p.matches(flatten(record)) for p in former)
    images = [record["dynamodb"].get(n) for n in ("NewImage", "OldImage")]
    assert deployed.matches(record) == any(i and i["type"] == {"S": item_type} for i in images)


# --- at the endpoint: a mapping with such a pattern is refused when created or updated ------


def _criteria(*patterns: dict[str, Any]) -> dict[str, Any]:
    return {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (FORMER_VIEW[0], DYNAMODB_KEY_ONLY),
        ({"dynamodb": {"NewImage": {"SK": {"S": [{"wildcard": "VIDEO#*"}]}}}}, "wildcard"),
        ({"dynamodb": {"NewImage": {"Ip": {"S": [{"cidr": "10.0.0.0/8"}]}}}}, "cidr"),
    ],
)
def test_endpoint_refuses_such_patterns_on_create_and_update(
    pipeline: Pipeline, pattern: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError) as created:
        pipeline.create_mapping(FilterCriteria=_criteria(pattern))
    assert created.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert message in created.value.response["Error"]["Message"]

    uuid = pipeline.create_mapping(FilterCriteria=filter_criteria("VIEW"), Enabled=False)
    with pytest.raises(ClientError) as updated:
        pipeline.lam.update_event_source_mapping(UUID=uuid, FilterCriteria=_criteria(pattern))
    assert updated.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert message in updated.value.response["Error"]["Message"]


# The blog's filter as the benchmark deploys it (bench/reference/main.tf), on the dynamodb key.
BLOG_VIEW_RESTATED = {
    "dynamodb": {
        "NewImage": {"type": {"S": ["VIEW"]}},
        "OldImage": {"PK": {"S": [{"exists": False}]}},
    }
}


@pytest.mark.parametrize("kind", list(EVERY_KIND))
def test_the_restated_blog_filter_matches_what_the_blog_filter_did(kind: str) -> None:
    record = EVERY_KIND[kind]
    restated = compile_filter_criteria(_criteria(BLOG_VIEW_RESTATED))
    original = compile_pattern(json.dumps(BLOG_VIEW))
    assert restated.matches(record) == original.matches(flatten(record))
