"""summary and stats on a seeded table: output, ranking through GSI2 (never a scan), GSI1
listings and their pagination."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind
from vstats import access_patterns, summary
from vstats.tables import list_summaries
from vstats_support import TableEnv

START = datetime(2022, 1, 2, 17, 5, 29, 123000, tzinfo=UTC)


def seed(table: TableEnv) -> None:
    for n in range(12):  # views 0, 10, ..., 110; likes descend; duration peaks at 5
        table.put_summary(
            SummaryKey(SummaryKind.VIDEO, str(n)),
            Counters(views=10 * n, duration=1000 - abs(5 - n) * 100, likes=12 - n, dislikes=n % 3),
        )
    for n in range(6):
        table.put_summary(SummaryKey(SummaryKind.USER, str(n)), Counters(n, 60 * n, n % 2, 0))
    for n in range(5):
        table.put(model.view_item(str(n), "3", 60 + n, START + timedelta(seconds=n)))
    for user in ("1", "2", "4"):
        table.put(model.vote_item(user, "3", "LIKE"))
    table.put(model.vote_item("5", "3", "DISLIKE"))
    table.put(model.vote_item("1", "4", "DISLIKE"))  # another video: not listed for 3


def forbid_scans(client: Any) -> None:
    def refuse(**_: Any) -> None:
        raise AssertionError("listing summaries must not scan the table")

    client.meta.events.register("before-call.dynamodb.Scan", refuse)


@pytest.mark.parametrize(
    ("by", "expected_ids"),
    [
        ("views", ["11", "10", "9"]),
        ("duration", ["5", "4", "6"]),
        ("likes", ["0", "1", "2"]),
        ("dislikes", ["2", "5", "8"]),
    ],
)
def test_ranking_uses_only_the_index(table: TableEnv, by: Any, expected_ids: list[str]) -> None:
    seed(table)
    forbid_scans(table.client)
    rows = list_summaries(table.client, table.name, SummaryKind.VIDEO, shards=4, by=by, top=3)
    assert [r.key.id for r in rows] == expected_ids


def test_listing_all_summaries_of_a_kind(table: TableEnv) -> None:
    seed(table)
    forbid_scans(table.client)
    users = list_summaries(table.client, table.name, SummaryKind.USER, shards=4)
    assert [r.key.id for r in users] == ["5", "4", "3", "2", "1", "0"]
    assert users[0].counters == Counters(5, 300, 1, 0)


def test_summary_once_json(table: TableEnv, capsys: pytest.CaptureFixture[str]) -> None:
    seed(table)
    code = summary.main(["--once", "--format", "json", "--top", "2", *table.args()])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by"] == "views"
    assert doc["videos"] == [
        {"videoId": "11", "views": 110, "duration": 400, "likes": 1, "dislikes": 2},
        {"videoId": "10", "views": 100, "duration": 500, "likes": 2, "dislikes": 1},
    ]
    assert [u["userId"] for u in doc["users"]] == ["5", "4"]
    assert datetime.fromisoformat(doc["fetched_at"])


def test_summary_once_table_like_the_seed(
    table: TableEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(table)
    assert summary.main(["--once", "--all", "--by", "likes", *table.args()]) == 0
    out = capsys.readouterr().out
    for header in ("videoId", "userId", "views", "duration", "likes", "dislikes"):
        assert header in out
    assert out.count("Fetched at ") == 2
    assert out.index("│ 0 ") < out.index("│ 11 ")  # by likes: video 0 first


def test_summary_of_an_empty_table(table: TableEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert summary.main(["--once", *table.args()]) == 0
    assert "(none yet)" in capsys.readouterr().out


def test_stats_of_a_video_and_a_user(table: TableEnv, capsys: pytest.CaptureFixture[str]) -> None:
    seed(table)
    assert access_patterns.main(["video", "3", "--format", "json", *table.args()]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "type": "VIDEO_SUMMARY",
        "videoId": "3",
        "exists": True,
        "views": 30,
        "duration": 800,
        "likes": 9,
        "dislikes": 0,
    }
    assert access_patterns.main(["user", "4", *table.args()]) == 0
    out = capsys.readouterr().out
    assert "userId 4" in out
    assert "240" in out
    assert access_patterns.main(["user", "nobody", "--format", "json", *table.args()]) == 0
    assert json.loads(capsys.readouterr().out)["exists"] is False


@pytest.mark.parametrize(
    ("listing", "users"),
    [("views", ["0", "1", "2", "3", "4"]), ("likes", ["1", "2", "4"]), ("dislikes", ["5"])],
)
def test_stats_listings_through_gsi1(
    table: TableEnv, listing: str, users: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    seed(table)
    assert access_patterns.main(["video", "3", listing, "--format", "json", *table.args()]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(r["userId"] for r in doc[listing]) == users
    assert doc["next_token"] is None
    if listing == "views":
        first = doc["views"][0]
        assert first == {
            "userId": "0",
            "videoId": "3",
            "timestamp": "2022-01-02T17:05:29.123+00:00",
            "duration": 60,
        }


def test_stats_listing_pages(table: TableEnv, capsys: pytest.CaptureFixture[str]) -> None:
    seed(table)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        argv = ["video", "3", "views", "--limit", "2", "--format", "json", *table.args()]
        if token:
            argv += ["--next-token", token]
        assert access_patterns.main(argv) == 0
        doc = json.loads(capsys.readouterr().out)
        assert len(doc["views"]) <= 2
        seen += [r["timestamp"] for r in doc["views"]]
        token = doc["next_token"]
        pages += 1
        if not token:
            break
    assert pages >= 3
    assert len(seen) == len(set(seen)) == 5


def test_stats_listing_table_output(table: TableEnv, capsys: pytest.CaptureFixture[str]) -> None:
    seed(table)
    assert access_patterns.main(["video", "3", "views", "--limit", "2", *table.args()]) == 0
    out = capsys.readouterr().out
    assert "video 3: 2 views" in out
    assert "--next-token " in out
