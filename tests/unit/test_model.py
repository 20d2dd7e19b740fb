"""Unit tests of video_stats.model: item format, contributions, validity, recount."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from video_stats.model import (
    Counters,
    InvalidItem,
    SummaryKey,
    SummaryKind,
    contribution,
    format_timestamp,
    is_mark_attribute,
    recount,
    summary_counters,
    summary_index_partition,
    summary_item_key,
    summary_key_of,
    view_item,
    vote_item,
)

TS = datetime(2022, 1, 2, 17, 5, 29, 123456, tzinfo=UTC)
VIDEO = SummaryKind.VIDEO
USER = SummaryKind.USER


def test_format_timestamp_is_iso_utc_with_milliseconds() -> None:
    assert format_timestamp(TS) == "2022-01-02T17:05:29.123+00:00"
    plus2 = timezone(timedelta(hours=2))
    assert format_timestamp(TS.astimezone(plus2)) == "2022-01-02T17:05:29.123+00:00"
    assert format_timestamp(TS.replace(tzinfo=None)) == "2022-01-02T17:05:29.123+00:00"


def test_view_item_is_exactly_the_contract_format() -> None:
    assert view_item("u1", "v9", 42, TS) == {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "VIDEO#v9#VIEW#2022-01-02T17:05:29.123+00:00"},
        "type": {"S": "VIEW"},
        "userId": {"S": "u1"},
        "videoId": {"S": "v9"},
        "duration": {"N": "42"},
        "GSI1PK": {"S": "VIDEO#v9"},
        "GSI1SK": {"S": "VIEW#2022-01-02T17:05:29.123+00:00#USER#u1"},
    }


@pytest.mark.parametrize("vote", ["LIKE", "DISLIKE"])
def test_vote_item_is_exactly_the_contract_format(vote: str) -> None:
    assert vote_item("u1", "v9", vote) == {  # type: ignore[arg-type]
        "PK": {"S": "USER#u1"},
        "SK": {"S": "VIDEO#v9#VOTE"},
        "type": {"S": "VOTE"},
        "userId": {"S": "u1"},
        "videoId": {"S": "v9"},
        "voteType": {"S": vote},
        "GSI1PK": {"S": "VIDEO#v9"},
        "GSI1SK": {"S": f"{vote}#USER#u1"},
    }


def test_counters_arithmetic() -> None:
    a = Counters(1, 2, 3, 4)
    b = Counters(1, 1, 1, 1)
    assert a + b == Counters(2, 3, 4, 5)
    assert a - b == Counters(0, 1, 2, 3)
    assert -a == Counters(-1, -2, -3, -4)
    assert (a - a).is_zero()
    assert Counters().is_zero()
    assert not Counters(dislikes=-1).is_zero()


def test_contribution_of_a_view() -> None:
    c = Counters(views=1, duration=42)
    assert contribution(view_item("u", "v", 42, TS)) == {
        SummaryKey(VIDEO, "v"): c,
        SummaryKey(USER, "u"): c,
    }
    assert contribution(view_item("u", "v", 42, TS), "VIEW") == contribution(
        view_item("u", "v", 42, TS)
    )
    assert contribution(view_item("u", "v", 42, TS), "VOTE") == {}


@pytest.mark.parametrize(
    ("vote", "counters"), [("LIKE", Counters(likes=1)), ("DISLIKE", Counters(dislikes=1))]
)
def test_contribution_of_a_vote(vote: str, counters: Counters) -> None:
    item = vote_item("u", "v", vote)  # type: ignore[arg-type]
    assert contribution(item) == {SummaryKey(VIDEO, "v"): counters, SummaryKey(USER, "u"): counters}
    assert contribution(item, "VIEW") == {}


def test_same_id_for_user_and_video_are_distinct_keys() -> None:
    parts = contribution(view_item("x", "x", 1, TS))
    assert len(parts) == 2


@pytest.mark.parametrize(
    "image",
    [
        None,
        {},
        {"PK": {"S": "VIDEO#v"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"}},
        {"PK": {"S": "USER#u"}, "SK": {"S": "SUMMARY"}, "type": {"S": "USER_SUMMARY"}},
        {"type": {"S": "COMMENT"}, "userId": {"S": "u"}},
        {"type": {"N": "1"}},
    ],
)
def test_non_base_items_contribute_nothing(image: dict[str, dict[str, str]] | None) -> None:
    assert contribution(image) == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("300", 300), ("300.0", 300), ("3E+2", 300), ("007", 7), ("-0", 0)],
)
def test_whole_durations_are_accepted(text: str, seconds: int) -> None:
    item = view_item("u", "v", 1, TS) | {"duration": {"N": text}}
    assert contribution(item)[SummaryKey(VIDEO, "v")] == Counters(views=1, duration=seconds)


BAD_VIEWS = {
    "fractional duration": {"duration": {"N": "1.5"}},
    "negative duration": {"duration": {"N": "-3"}},
    "not a number": {"duration": {"N": "abc"}},
    "NaN": {"duration": {"N": "NaN"}},
    "infinite": {"duration": {"N": "Infinity"}},
    "string duration": {"duration": {"S": "300"}},
    "huge duration": {"duration": {"N": "1" + "0" * 30}},
    "unicode digits": {"duration": {"N": "\u00b2"}},
    "empty userId": {"userId": {"S": ""}},
    "numeric videoId": {"videoId": {"N": "3"}},
    "long userId": {"userId": {"S": "u" * 1025}},
    "long multibyte videoId": {"videoId": {"S": "\u00e9" * 513}},
}


@pytest.mark.parametrize("patch", BAD_VIEWS.values(), ids=BAD_VIEWS.keys())
def test_malformed_views_raise(patch: dict[str, dict[str, str]]) -> None:
    item = view_item("u", "v", 1, TS) | patch
    with pytest.raises(InvalidItem) as err:
        contribution(item)
    assert err.value.reason


@pytest.mark.parametrize("missing", ["userId", "videoId", "duration"])
def test_views_missing_attributes_raise(missing: str) -> None:
    item = view_item("u", "v", 1, TS)
    del item[missing]
    with pytest.raises(InvalidItem):
        contribution(item)


def test_ids_of_exactly_1kb_are_valid() -> None:
    item = view_item("u" * 1024, "\u00e9" * 512, 1, TS)
    assert len(contribution(item)) == 2


@pytest.mark.parametrize("vote", ["like", "UPVOTE", "", None])
def test_unknown_vote_types_raise(vote: str | None) -> None:
    item: dict[str, dict[str, str]] = vote_item("u", "v", "LIKE")
    if vote is None:
        del item["voteType"]
    else:
        item["voteType"] = {"S": vote}
    with pytest.raises(InvalidItem):
        contribution(item)


def test_recount_sums_base_items_and_ignores_the_rest() -> None:
    items = [
        view_item("u1", "v1", 10, TS),
        view_item("u1", "v1", 5, TS + timedelta(seconds=1)),
        view_item("u2", "v1", 7, TS),
        vote_item("u1", "v1", "LIKE"),
        vote_item("u2", "v1", "DISLIKE"),
        view_item("u3", "v2", 1, TS) | {"duration": {"N": "0.5"}},  # invalid: ignored
        {"PK": {"S": "VIDEO#v1"}, "SK": {"S": "SUMMARY"}, "type": {"S": "VIDEO_SUMMARY"}},
    ]
    assert recount(items) == {
        SummaryKey(VIDEO, "v1"): Counters(views=3, duration=22, likes=1, dislikes=1),
        SummaryKey(USER, "u1"): Counters(views=2, duration=15, likes=1),
        SummaryKey(USER, "u2"): Counters(views=1, duration=7, dislikes=1),
    }


def test_summary_keys_round_trip() -> None:
    for key in (SummaryKey(VIDEO, "v#1"), SummaryKey(USER, "u")):
        item = summary_item_key(key)
        assert summary_key_of(item) == key
    assert summary_item_key(SummaryKey(VIDEO, "3")) == {
        "PK": {"S": "VIDEO#3"},
        "SK": {"S": "SUMMARY"},
    }
    assert summary_key_of(view_item("u", "v", 1, TS)) is None
    assert summary_key_of({"PK": {"S": "OTHER#x"}, "SK": {"S": "SUMMARY"}}) is None


def test_summary_counters_default_to_zero() -> None:
    item = {"PK": {"S": "USER#u"}, "SK": {"S": "SUMMARY"}, "views": {"N": "3"}, "likes": {"N": "1"}}
    assert summary_counters(item) == Counters(views=3, likes=1)


def test_summary_index_partition_is_crc32_mod_shards() -> None:
    key = SummaryKey(VIDEO, "abc")
    assert summary_index_partition(key, 4) == f"VIDEO_SUMMARY#{zlib.crc32(b'abc') % 4}"
    assert summary_index_partition(SummaryKey(USER, "abc"), 1) == "USER_SUMMARY#0"


def test_mark_attribute_names() -> None:
    assert is_mark_attribute("applied#views#x")
    assert not is_mark_attribute("views")
