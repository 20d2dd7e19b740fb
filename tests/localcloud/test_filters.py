# ruff: noqa: E501  (a table of cases reads best one per line)
"""Filter criteria by AWS's rules: a table of patterns against stream records (AWS Lambda
developer guide, "Lambda event filtering" and "Using event filtering with a DynamoDB event
source"; EventBridge "event patterns" for the operators)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from localcloud.filters import (
    NO_FILTERS,
    PatternError,
    compile_filter_criteria,
    compile_pattern,
)


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

# The project's filters (filters.tf): INSERT|MODIFY on NewImage, MODIFY|REMOVE on OldImage.
NEW_VIEW = {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"type": {"S": ["VIEW"]}}}}
OLD_VIEW = {"eventName": ["MODIFY", "REMOVE"], "dynamodb": {"OldImage": {"type": {"S": ["VIEW"]}}}}
# The blog's filter: a REMOVE has no NewImage, so it can never match.
BLOG_VIEW = {"dynamodb": {"NewImage": {"type": {"S": ["VIEW"]}}}, "eventName": ["INSERT", "REMOVE"]}


def _new(rules: Any) -> dict[str, Any]:
    return {"dynamodb": {"NewImage": rules}}


CASES: list[tuple[str, Any, dict[str, Any], bool]] = [
    # equals, and every named field must exist
    ("key equals", {"dynamodb": {"Keys": {"CustomerName": {"S": ["AnyCompany Industries"]}}}}, INSERT, True),
    ("key differs", {"dynamodb": {"Keys": {"CustomerName": {"S": ["Other"]}}}}, INSERT, False),
    ("attribute OR values", _new({"AccountManager": {"S": ["Pat Candella", "Shirley Rodriguez"]}}), INSERT, True),
    ("case matters", _new({"AccountManager": {"S": ["pat candella"]}}), INSERT, False),
    ("AND across fields", {"eventName": ["INSERT"], **_new({"type": {"S": ["VIEW"]}})}, INSERT, True),
    ("AND fails on one field", {"eventName": ["MODIFY"], **_new({"type": {"S": ["VIEW"]}})}, INSERT, False),
    ("missing field never matches", _new({"Missing": {"S": ["x"]}}), INSERT, False),
    ("REMOVE has no NewImage", _new({"type": {"S": ["VIEW"]}}), REMOVE, False),
    ("REMOVE matched on OldImage", OLD_VIEW, REMOVE, True),
    ("INSERT matched on NewImage", NEW_VIEW, INSERT, True),
    ("INSERT has no OldImage", OLD_VIEW, INSERT, False),
    ("MODIFY has both images (new)", NEW_VIEW, MODIFY, True),
    ("MODIFY has both images (old)", OLD_VIEW, MODIFY, True),
    ("blog filter drops REMOVE", BLOG_VIEW, REMOVE, False),
    ("blog filter drops MODIFY", BLOG_VIEW, MODIFY, False),
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
    ("null value", {"userIdentity": [None]}, {**INSERT, "userIdentity": None}, True),
    ("null does not match missing", {"userIdentity": [None]}, INSERT, False),
    ("null does not match value", {"eventName": [None]}, INSERT, False),
    # anything-but
    ("anything-but value", _new({"type": {"S": [{"anything-but": ["VOTE"]}]}}), INSERT, True),
    ("anything-but excluded", _new({"type": {"S": [{"anything-but": ["VIEW", "VOTE"]}]}}), INSERT, False),
    ("anything-but single", {"eventName": [{"anything-but": "REMOVE"}]}, INSERT, True),
    ("anything-but needs field", _new({"Missing": {"S": [{"anything-but": ["x"]}]}}), INSERT, False),
    ("anything-but prefix", _new({"PK": {"S": [{"anything-but": {"prefix": "USER#"}}]}}), INSERT, False),
    ("anything-but prefix other", _new({"PK": {"S": [{"anything-but": {"prefix": "VIDEO#"}}]}}), INSERT, True),
    ("anything-but suffix", _new({"PaymentTerms": {"S": [{"anything-but": {"suffix": "days"}}]}}), INSERT, False),
    ("anything-but ignore case", _new({"type": {"S": [{"anything-but": {"equals-ignore-case": ["view"]}}]}}), INSERT, False),
    ("anything-but number", {"dynamodb": {"SizeBytes": [{"anything-but": [100]}]}}, INSERT, True),
    # exists
    ("exists true", _new({"type": {"S": [{"exists": True}]}}), INSERT, True),
    ("exists false on absent", _new({"Missing": {"S": [{"exists": False}]}}), INSERT, True),
    ("exists false on present", _new({"type": {"S": [{"exists": False}]}}), INSERT, False),
    ("exists false without image", _new({"type": {"S": [{"exists": False}]}}), REMOVE, True),
    ("exists on intermediate node", _new({"type": [{"exists": True}]}), INSERT, False),
    ("exists true without image", _new({"type": {"S": [{"exists": True}]}}), REMOVE, False),
    # prefix, suffix, equals-ignore-case, wildcard, cidr
    ("prefix", _new({"SK": {"S": [{"prefix": "VIDEO#v1#VIEW#"}]}}), INSERT, True),
    ("prefix no", _new({"SK": {"S": [{"prefix": "VIDEO#v2#"}]}}), INSERT, False),
    ("prefix ignore case", _new({"SK": {"S": [{"prefix": {"equals-ignore-case": "video#V1"}}]}}), INSERT, True),
    ("suffix", _new({"PaymentTerms": {"S": [{"suffix": " days"}]}}), INSERT, True),
    ("suffix no", _new({"PaymentTerms": {"S": [{"suffix": "weeks"}]}}), INSERT, False),
    ("suffix ignore case", _new({"PaymentTerms": {"S": [{"suffix": {"equals-ignore-case": "DAYS"}}]}}), INSERT, True),
    ("equals-ignore-case", _new({"type": {"S": [{"equals-ignore-case": "view"}]}}), INSERT, True),
    ("equals-ignore-case no", _new({"type": {"S": [{"equals-ignore-case": "vote"}]}}), INSERT, False),
    ("wildcard", _new({"SK": {"S": [{"wildcard": "VIDEO#*#VIEW#*"}]}}), INSERT, True),
    ("wildcard no", _new({"SK": {"S": [{"wildcard": "VIDEO#*#VOTE"}]}}), INSERT, False),
    ("cidr", _new({"Ip": {"S": [{"cidr": "10.0.0.0/24"}]}}), INSERT, True),
    ("cidr no", _new({"Ip": {"S": [{"cidr": "10.1.0.0/24"}]}}), INSERT, False),
    # arrays (sets) match on any element; nested maps are paths
    ("set element", _new({"Tags": {"SS": ["green"]}}), INSERT, True),
    ("set no element", _new({"Tags": {"SS": ["red"]}}), INSERT, False),
    ("map path", _new({"Address": {"M": {"City": {"S": ["Seattle"]}}}}), INSERT, True),
    # mixed alternatives in one list, and $or
    ("exists or value", _new({"Missing": {"S": ["x", {"exists": False}]}}), INSERT, True),
    ("$or first", {"$or": [{"eventName": ["REMOVE"]}, _new({"type": {"S": ["VIEW"]}})]}, INSERT, True),
    ("$or none", {"$or": [{"eventName": ["REMOVE"]}, _new({"type": {"S": ["VOTE"]}})]}, INSERT, False),
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
        '{"$or": [{"a": ["x"]}]}',
        '{"a": [["x"]]}',
        '{"a": ["' + "x" * 4096 + '"]}',
    ],
)
def test_invalid_patterns_are_rejected(text: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(text)


def test_too_many_filters() -> None:
    filters = [{"Pattern": json.dumps({"eventName": [str(i)]})} for i in range(6)]
    with pytest.raises(PatternError):
        compile_filter_criteria({"Filters": filters})
