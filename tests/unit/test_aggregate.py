"""Pure parse-and-merge (video_stats.records) and mark encoding (video_stats.marks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stream_fakes import FakeStream
from video_stats.marks import (
    HOUR_MODULUS,
    decode_mark,
    encode_mark,
    encode_seq,
    legacy_encode_seq,
    legacy_shard_tag,
    mark_name,
    shard_marks,
    shard_tag,
    stale_marks,
)
from video_stats.model import Counters, is_mark_attribute, view_item, vote_item
from video_stats.records import MalformedEvent, parse_batch

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def net(records: list[dict[str, Any]], item_type: str = "VIEW") -> dict[tuple[str, str], Counters]:
    batch = parse_batch(records, item_type)  # type: ignore[arg-type]
    return {key: delta.counters() for key, delta in batch.keys.items()}


def test_insert_modify_remove_of_a_view_merge_to_net_deltas() -> None:
    s = FakeStream()
    item = view_item("u", "v", 30, TS)
    s.put(item)
    s.put(item | {"duration": {"N": "45"}})
    assert net(s.records) == {
        ("VIDEO", "v"): Counters(views=1, duration=45),
        ("USER", "u"): Counters(views=1, duration=45),
    }
    s.delete(("USER#u", f"VIDEO#v#VIEW#{item['SK']['S'].split('#VIEW#')[1]}"))
    assert net(s.records) == {("VIDEO", "v"): Counters(), ("USER", "u"): Counters()}


def test_vote_changes_net_out_per_counter() -> None:
    s = FakeStream()
    s.put(vote_item("u", "v", "LIKE"))
    s.put(vote_item("u", "v", "DISLIKE"))
    assert net(s.records, "VOTE")[("VIDEO", "v")] == Counters(dislikes=1)
    s2 = FakeStream()
    s2.put(vote_item("u", "v", "LIKE"))
    s2.records.clear()
    s2.put(vote_item("u", "v", "DISLIKE"))
    assert net(s2.records, "VOTE")[("USER", "u")] == Counters(likes=-1, dislikes=1)


def test_records_of_the_other_type_have_no_effect_and_are_reported() -> None:
    s = FakeStream()
    s.put(vote_item("u", "v", "LIKE"))
    batch = parse_batch(s.records, "VIEW")
    assert batch.keys == {}
    assert [r.reason for r in batch.skipped] == ["no VIEW image"]


def test_type_change_counts_as_insert_or_removal() -> None:
    s = FakeStream()
    item = view_item("u", "v", 10, TS)
    s.put(item | {"type": {"S": "DRAFT"}})
    s.put(item)  # DRAFT -> VIEW: an insert for the views function
    assert net(s.records[1:])[("VIDEO", "v")] == Counters(views=1, duration=10)
    s.put(item | {"type": {"S": "DRAFT"}})  # VIEW -> DRAFT: a removal
    assert net(s.records[2:])[("USER", "u")] == Counters(views=-1, duration=-10)


def test_an_invalid_image_contributes_nothing_but_the_other_image_counts() -> None:
    s = FakeStream()
    good = view_item("u", "v", 10, TS)
    s.put(good)
    s.put(good | {"duration": {"N": "10.5"}})  # valid -> invalid: the view disappears
    batch = parse_batch(s.records[1:], "VIEW")
    assert batch.keys[("VIDEO", "v")].counters() == Counters(views=-1, duration=-10)
    assert batch.skipped[0].sequence_number == s.records[1]["dynamodb"]["SequenceNumber"]
    assert "duration" in batch.skipped[0].reason


def test_records_and_keys_keep_stream_order_and_ages() -> None:
    s = FakeStream(start_time=1_000.0)
    for n in range(5):
        s.put(view_item(f"u{n % 2}", "v", n, TS + timedelta(seconds=n)))
    batch = parse_batch(s.records, "VIEW")
    assert [r.seq for r in batch.records] == sorted(r.seq for r in batch.records)
    assert batch.keys[("USER", "u0")].records == [0, 2, 4]
    assert batch.keys[("VIDEO", "v")].records == [0, 1, 2, 3, 4]
    assert batch.oldest_created == 1_000.0


def test_out_of_order_and_repeated_records_are_sorted_and_deduplicated() -> None:
    s = FakeStream()
    for n in range(3):
        s.put(view_item("u", "v", 1, TS + timedelta(seconds=n)))
    shuffled = [s.records[2], s.records[0], s.records[1], s.records[0]]
    batch = parse_batch(shuffled, "VIEW")
    assert batch.received == 4
    assert [r.sequence_number for r in batch.records] == [
        r["dynamodb"]["SequenceNumber"] for r in s.records
    ]
    assert batch.keys[("VIDEO", "v")].counters() == Counters(views=3, duration=3)


@pytest.mark.parametrize("bad", [None, "", "12a", "-5", 17, "\uff11\uff12"])
def test_a_record_without_a_usable_sequence_number_is_malformed(bad: object) -> None:
    s = FakeStream()
    s.put(view_item("u", "v", 1, TS))
    record = s.records[0]
    record["dynamodb"]["SequenceNumber"] = bad
    with pytest.raises(MalformedEvent):
        parse_batch([record], "VIEW")


def test_empty_batch() -> None:
    batch = parse_batch([], "VOTE")
    assert (batch.received, batch.records, batch.keys, batch.oldest_created) == (0, [], {}, None)


# --- marks ------------------------------------------------------------------------------------


@given(
    st.integers(min_value=0, max_value=10**40 - 1), st.integers(min_value=0, max_value=10**40 - 1)
)
def test_encoded_sequence_numbers_compare_like_the_numbers(a: int, b: int) -> None:
    assert (encode_seq(a) < encode_seq(b)) == (a < b)
    # A full mark (with its epoch suffix) is never below the bare form of its own number.
    assert not encode_mark(a, 1_700_000_000) < encode_seq(a)
    assert (encode_mark(a, 1) < encode_seq(b)) == (a < b)


def test_marks_round_trip() -> None:
    created = 1_700_000_123.9
    value = encode_mark(123456789012345678901, created)
    assert len(value) == 1 + 12 + 2  # 70 bits in 12 base-64 digits, then the hour
    mark = decode_mark(value, now=created + 10)
    assert mark.seq == 123456789012345678901
    # The hour is kept, rounded up: the record was created no later than the mark says.
    assert mark.created_by is not None
    assert created <= mark.created_by <= created + 3600
    for bad in ("", "x", "0512|1", "21123|5", "99", "B0f4", "~~~~~~"):
        with pytest.raises(ValueError, match="not a mark"):
            decode_mark(bad)


def test_previous_format_marks_are_still_read() -> None:
    mark = decode_mark("21123456789012345678901|1700000123")
    assert (mark.seq, mark.created_by) == (123456789012345678901, 1_700_000_124)
    assert legacy_encode_seq(5) == "015"


def test_hours_are_taken_modulo_4096_and_never_make_a_mark_look_older() -> None:
    created = 1_700_000_000.0
    value = encode_mark(7, created)
    for later_hours in (0, 1, 100, HOUR_MODULUS - 1):
        mark = decode_mark(value, now=created + later_hours * 3600)
        assert mark.created_by is not None
        assert mark.created_by >= created


def test_mark_names_are_short_and_stable_per_shard() -> None:
    shard = "shardId-00000001700000000000-0a1b2c3d"
    tag = shard_tag(shard)
    assert tag == shard_tag(shard)
    assert tag != shard_tag("shardId-00000001700000000001-0a1b2c3d")
    assert len(tag) == 6
    assert mark_name("views", tag) == f"@v{tag}"
    assert mark_name("votes", tag) == f"@o{tag}"
    names = shard_marks("views", shard)
    assert names.current == f"@v{tag}"
    assert names.legacy == f"applied#views#{legacy_shard_tag(shard)}"
    assert all(is_mark_attribute(n) for n in names.names())
    assert not is_mark_attribute("views")


def test_stale_marks_are_this_functions_old_marks_only() -> None:
    now = 2_000_000_000
    old = encode_mark(5, now - 26 * 3600)
    fresh = encode_mark(6, now - 3600)
    legacy_old = f"{legacy_encode_seq(5)}|{now - 26 * 3600}"
    item = {
        "@vaaaa": {"S": old},
        "@vbbbb": {"S": fresh},
        "@vkeep": {"S": old},
        "@occcc": {"S": old},
        "@vjunk": {"S": "junk"},
        "applied#views#dddd": {"S": legacy_old},
        "applied#votes#eeee": {"S": legacy_old},
        "views": {"N": "3"},
    }
    found = stale_marks(item, "views", ["@vkeep"], now, 25 * 3600)
    assert found == {"@vaaaa": old, "applied#views#dddd": legacy_old}
    # Exactly at the edge of the retention a mark is kept (its hour is rounded up).
    edge = encode_mark(9, now - 25 * 3600)
    assert stale_marks({"@vedge": {"S": edge}}, "views", [], now, 25 * 3600) == {}
    assert stale_marks(None, "views", "x", now, 1) == {}
