"""Every tool: bad input is one readable line on stderr and exit status 2 (no traceback);
an AWS error is one line and exit status 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from vstats import access_patterns, loadtest, plan_review, reconcile, summary
from vstats_support import TableEnv

Main = Callable[[Sequence[str] | None], int]
TABLE = ["--table", "t", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]

BAD: list[tuple[Main, list[str], str]] = [
    # loadtest
    (loadtest.main, ["--rate", "-5", *TABLE], "--rate: must be a number > 0"),
    (loadtest.main, ["--rate", "fast", *TABLE], "not a number"),
    (loadtest.main, ["--users", "0", *TABLE], "--users: must be a whole number >= 1"),
    (loadtest.main, ["--videos", "1000001", *TABLE], "--videos: at most 100,000"),
    (loadtest.main, ["--mix", "views=1,upvotes=2", *TABLE], "unknown mix kind 'upvotes'"),
    (loadtest.main, ["--mix", "views=-1", *TABLE], "must be a finite number >= 0"),
    (loadtest.main, ["--events", "0", *TABLE], "--events: must be a whole number >= 1"),
    (loadtest.main, ["--duration", "-1", *TABLE], "--duration: must be a number > 0"),
    (loadtest.main, ["--writers", "0", *TABLE], "--writers"),
    (loadtest.main, ["--skew", "-0.5", *TABLE], "--skew: must be a number >= 0"),
    (loadtest.main, ["--faults", "fail=2", *TABLE], "fail_invocation_rate must be between 0 and 1"),
    (loadtest.main, ["--faults", "boom=0.1", *TABLE], "unknown fault 'boom'"),
    (loadtest.main, ["--faults", "fail=0.1", *TABLE], "--faults needs the local endpoint"),
    (loadtest.main, ["--json", "/nonexistent/dir/r.json", *TABLE], "cannot write a report"),
    (loadtest.main, ["--events", "10"], "no table: pass --table NAME or set VIDEO_STATS_TABLE"),
    (loadtest.main, ["--bogus"], "unrecognized arguments: --bogus"),
    # summary
    (summary.main, ["--top", "0", *TABLE], "--top: must be a whole number >= 1"),
    (summary.main, ["--by", "rating", *TABLE], "--by: invalid choice: 'rating'"),
    (summary.main, ["--interval", "0", *TABLE], "--interval: must be a number > 0"),
    (summary.main, ["--index-shards", "0", *TABLE], "--index-shards"),
    (summary.main, ["--top", "3", "--all", *TABLE], "not allowed with argument"),
    (summary.main, ["--format", "xml", *TABLE], "invalid choice: 'xml'"),
    # stats
    (access_patterns.main, [], "the following arguments are required"),
    (access_patterns.main, ["video"], "the following arguments are required: id"),
    (access_patterns.main, ["video", "3", "ratings", *TABLE], "invalid choice: 'ratings'"),
    (access_patterns.main, ["video", "a#b", *TABLE], "invalid id 'a#b'"),
    (access_patterns.main, ["video", "3", "likes", "--limit", "0", *TABLE], "--limit"),
    (
        access_patterns.main,
        ["video", "3", "--limit", "5", *TABLE],
        "--limit and --next-token apply to",
    ),
    (
        access_patterns.main,
        ["video", "3", "likes", "--next-token", "@@@", *TABLE],
        "invalid --next-token",
    ),
    (access_patterns.main, ["user", "7", "likes", *TABLE], "unrecognized arguments: likes"),
    (access_patterns.main, ["channel", "7", *TABLE], "invalid choice: 'channel'"),
    # reconcile
    (reconcile.main, ["--segments", "0", *TABLE], "--segments: must be a whole number >= 1"),
    (reconcile.main, ["--segments", "65", *TABLE], "at most 64 segments"),
    (reconcile.main, ["--grace", "-1", *TABLE], "--grace: must be a number >= 0"),
    (reconcile.main, ["--repair", "--timeout", "0", *TABLE], "--timeout"),
    # plan_review
    (plan_review.main, [], "the following arguments are required: plan"),
    (plan_review.main, ["/nonexistent/plan.json", "--no-scan"], "plan file"),
]


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    BAD,
    ids=[f"{m.__module__.split('.')[-1]}:{' '.join(a[:2])}" for m, a, _ in BAD],
)
def test_bad_arguments_give_one_line_and_exit_2(
    main: Main, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert message in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_index_shards_from_the_environment_is_validated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUMMARY_INDEX_SHARDS", "zero")
    assert summary.main(["--once", *TABLE]) == 2
    assert "SUMMARY_INDEX_SHARDS='zero'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not JSON"), ('{"resource_changes": []}', "not a Terraform JSON plan")],
)
def test_plan_review_rejects_what_is_not_a_json_plan(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(content)
    assert plan_review.main([str(plan), "--no-scan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


@pytest.mark.parametrize(
    "main",
    [
        lambda a: summary.main(["--once", *a]),
        lambda a: access_patterns.main(["video", "3", *a]),
        reconcile.main,
        lambda a: loadtest.main(["--events", "1", *a]),
    ],
    ids=["summary", "stats", "reconcile", "loadtest"],
)
def test_aws_errors_give_one_line_and_exit_1(
    main: Callable[[list[str]], int], table: TableEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = ["--table", "no-such-table", *table.args()[2:]]
    assert main(missing) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "ResourceNotFoundException" in err[0]


def test_unreachable_endpoint_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 (discard) is closed: botocore's connection error, then one line.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    argv = [
        "--once",
        "--table",
        "t",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--region",
        "us-east-1",
    ]
    assert summary.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "Could not connect to the endpoint URL" in err[0]
