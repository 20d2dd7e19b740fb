"""The load test's generator: items exactly in the docs/design.md §2 format, mixes, skew, seeds."""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind
from vstats.effects import write_effect
from vstats.generator import EventGenerator, Zipf, parse_mix

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


def fixed_clock(start: datetime = datetime(2022, 1, 2, 17, 5, 29, 123456, tzinfo=UTC)):  # type: ignore[no-untyped-def]
    now = [start]

    def clock() -> datetime:
        now[0] += timedelta(microseconds=300)  # faster than the millisecond grain
        return now[0]

    return clock


def test_view_items_have_exactly_the_design_format() -> None:
    gen = EventGenerator(users=5, videos=5, mix=parse_mix("views=1"), seed=1, clock=fixed_clock())
    for _ in range(50):
        op = gen.next()
        assert (op.action, op.kind) == ("put", "views")
        item = op.item
        assert item is not None
        assert set(item) == {
            "PK",
            "SK",
            "type",
            "userId",
            "videoId",
            "duration",
            "GSI1PK",
            "GSI1SK",
        }
        user, video = item["userId"]["S"], item["videoId"]["S"]
        assert item["PK"] == {"S": f"USER#{user}"}
        match = re.fullmatch(rf"VIDEO#{video}#VIEW#({TIMESTAMP})", item["SK"]["S"])
        assert match, item["SK"]
        ts = match.group(1)
        assert item["type"] == {"S": "VIEW"}
        assert set(item["duration"]) == {"N"}
        assert int(item["duration"]["N"]) >= 1
        assert item["GSI1PK"] == {"S": f"VIDEO#{video}"}
        assert item["GSI1SK"] == {"S": f"VIEW#{ts}#USER#{user}"}
        assert op.key == {"PK": item["PK"], "SK": item["SK"]}


def test_vote_items_have_exactly_the_design_format() -> None:
    gen = EventGenerator(users=3, videos=3, mix=parse_mix("likes=1,dislikes=1"), seed=2)
    kinds: Counter[str] = Counter()
    for _ in range(60):
        op = gen.next()
        item = op.item
        assert item is not None
        assert op.action == "put"
        vote = "LIKE" if op.kind == "likes" else "DISLIKE"
        kinds[vote] += 1
        user, video = item["userId"]["S"], item["videoId"]["S"]
        assert item == {
            "PK": {"S": f"USER#{user}"},
            "SK": {"S": f"VIDEO#{video}#VOTE"},
            "type": {"S": "VOTE"},
            "userId": {"S": user},
            "videoId": {"S": video},
            "voteType": {"S": vote},
            "GSI1PK": {"S": f"VIDEO#{video}"},
            "GSI1SK": {"S": f"{vote}#USER#{user}"},
        }
    assert kinds["LIKE"] > 0
    assert kinds["DISLIKE"] > 0


def test_view_timestamps_are_unique_even_within_one_millisecond() -> None:
    frozen = datetime(2024, 5, 1, tzinfo=UTC)
    gen = EventGenerator(users=1, videos=1, mix=parse_mix("views=1"), seed=3, clock=lambda: frozen)
    keys = [gen.next().key["SK"]["S"] for _ in range(100)]
    assert len(set(keys)) == 100


def test_same_seed_and_clock_give_the_same_operations() -> None:
    def run() -> list[object]:
        gen = EventGenerator(users=20, videos=50, seed=42, clock=fixed_clock())
        return [gen.next() for _ in range(300)]

    assert run() == run()


def test_changes_and_removals_refer_to_what_was_written() -> None:
    gen = EventGenerator(users=4, videos=4, seed=5, clock=fixed_clock())
    views: set[tuple[str, str]] = set()
    votes: dict[tuple[str, str], str] = {}
    kinds: Counter[str] = Counter()
    for _ in range(2000):
        op = gen.next()
        kinds[op.kind] += 1
        key = (op.key["PK"]["S"], op.key["SK"]["S"])
        if op.kind == "views":
            views.add(key)
        elif op.kind == "removed-views":
            assert key in views
            views.remove(key)
        elif op.kind in ("likes", "dislikes"):
            assert op.item is not None
            votes[key] = op.item["voteType"]["S"]
        elif op.kind == "changed-votes":
            assert op.item is not None
            assert votes[key] != op.item["voteType"]["S"]
            votes[key] = op.item["voteType"]["S"]
        else:
            assert (op.kind, op.action) == ("removed-votes", "delete")
            del votes[key]
    assert set(kinds) == {
        "views",
        "likes",
        "dislikes",
        "changed-votes",
        "removed-votes",
        "removed-views",
    }
    assert kinds["views"] > kinds["likes"] > kinds["removed-views"]


def test_removal_without_anything_written_falls_back_to_a_view() -> None:
    gen = EventGenerator(users=2, videos=2, mix=parse_mix("removed-views=1"), seed=1)
    first = gen.next()
    assert (first.kind, first.action) == ("views", "put")
    assert gen.next().kind == "removed-views"


def test_zipf_skew_makes_low_ranks_popular_and_zero_is_uniform() -> None:
    rng = random.Random(7)
    skewed = Counter(Zipf(100, 1.2).sample(rng) for _ in range(20_000))
    assert skewed[0] > skewed[1] > skewed[10] > skewed[90]
    uniform = Counter(Zipf(10, 0.0).sample(rng) for _ in range(20_000))
    assert max(uniform.values()) < 1.2 * min(uniform.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus=1", "unknown mix kind 'bogus'"),
        ("views=-1", "must be a finite number >= 0"),
        ("views=abc", "is not a number"),
        ("views", "is not KIND=WEIGHT"),
        ("views=0", "at least one kind"),
        ("views=1,views=2", "given twice"),
    ],
)
def test_bad_mixes_are_rejected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_mix(text)


def test_mix_is_normalised() -> None:
    mix = parse_mix("views=3,likes=1")
    assert mix["views"] == pytest.approx(0.75)
    assert mix["likes"] == pytest.approx(0.25)
    assert mix["removed-views"] == 0


def test_write_effect_is_new_minus_old() -> None:
    like = model.vote_item("1", "2", "LIKE")
    dislike = model.vote_item("1", "2", "DISLIKE")
    video, user = SummaryKey(SummaryKind.VIDEO, "2"), SummaryKey(SummaryKind.USER, "1")
    assert write_effect(dislike, like) == {
        video: Counters(0, 0, -1, 1),
        user: Counters(0, 0, -1, 1),
    }
    assert write_effect(like, like) == {}  # an unchanged re-put changes (and writes) nothing
    view = model.view_item("1", "2", 30, datetime(2024, 1, 1, tzinfo=UTC))
    assert write_effect(None, view)[video] == Counters(-1, -30, 0, 0)
    # An SDK retry of a put that had succeeded finds its own item: still an insert.
    assert write_effect(view, view, retried_put=True)[user] == Counters(1, 30, 0, 0)
