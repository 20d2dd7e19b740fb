"""The handlers end to end against moto in-process: docs/design.md §3 row by row for both
summaries, bad records, summary changes, write counts, response shape, logs and metrics."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from stream_fakes import FakeStream, create_table, stream_event
from video_stats import handlers
from video_stats.model import (
    Counters,
    SummaryKey,
    SummaryKind,
    is_mark_attribute,
    summary_counters,
    summary_index_partition,
    summary_item_key,
    view_item,
    vote_item,
)
from video_stats.store import SummaryStore
from vstats.filter_patterns import delivered_to

TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VIDEO = SummaryKind.VIDEO
USER = SummaryKind.USER


@dataclass
class FakeContext:
    function_name: str = "test-update-views"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-1"
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Harness:
    """A table in moto, a fake stream of its base items, and the handlers wired to both."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self.stream = FakeStream(start_time=time.time())
        self.delivered = {"VIEW": 0, "VOTE": 0}
        self.update_calls = 0
        client.meta.events.register("before-call.dynamodb.UpdateItem", self._count)
        handlers.configure(handlers.Runtime(SummaryStore(client, table), executor=None))

    def _count(self, **_: Any) -> None:
        self.update_calls += 1

    def deliver(self, item_type: str, *, shard: str | None = "shardId-1") -> dict[str, Any]:
        """Deliver every new record the function's filter selects, as one batch."""
        new = self.stream.records[self.delivered[item_type] :]
        self.delivered[item_type] = len(self.stream.records)
        batch = [r for r in new if delivered_to(r, item_type)]
        return handlers.handle(stream_event(batch, shard), FakeContext(), item_type)  # type: ignore[arg-type]

    def deliver_raw(self, item_type: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        return handlers.handle(stream_event(records), FakeContext(), item_type)  # type: ignore[arg-type]

    def item(self, kind: SummaryKind, ident: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table,
            Key=summary_item_key(SummaryKey(kind, ident)),
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def summary(self, kind: SummaryKind, ident: str) -> Counters | None:
        item = self.item(kind, ident)
        return summary_counters(item) if item else None


@pytest.fixture(scope="module")
def moto_client() -> Iterator[Any]:
    """One moto session and client for the module (each test gets its own table)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


_tables = itertools.count()


@pytest.fixture
def harness(moto_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setattr(handlers.metrics, "namespace", "VideoStats")
    handlers.metrics.clear_metrics()
    table = f"test-data-{next(_tables)}"
    create_table(moto_client, table)
    harness = Harness(moto_client, table)
    yield harness
    moto_client.meta.events.unregister("before-call.dynamodb.UpdateItem", harness._count)
    moto_client.delete_table(TableName=table)
    handlers.configure(None)
    handlers.metrics.clear_metrics()


BOTH = pytest.mark.parametrize(
    ("kind", "ident"), [(VIDEO, "v1"), (USER, "u1")], ids=["video", "user"]
)


# --- docs/design.md §3, row by row, for the video and the user summary ---------------------------


@BOTH
def test_insert_of_a_view(harness: Harness, kind: SummaryKind, ident: str) -> None:
    harness.stream.put(view_item("u1", "v1", 42, TS))
    assert harness.deliver("VIEW") == {"batchItemFailures": [], "state": {}}
    assert harness.summary(kind, ident) == Counters(views=1, duration=42)


@BOTH
def test_remove_of_a_view(harness: Harness, kind: SummaryKind, ident: str) -> None:
    item = view_item("u1", "v1", 42, TS)
    harness.stream.put(item)
    harness.stream.put(view_item("u1", "v1", 8, TS + timedelta(seconds=1)))
    harness.deliver("VIEW")
    harness.stream.delete((item["PK"]["S"], item["SK"]["S"]))
    harness.deliver("VIEW")
    assert harness.summary(kind, ident) == Counters(views=1, duration=8)  # d from OldImage


@BOTH
def test_modify_of_a_view(harness: Harness, kind: SummaryKind, ident: str) -> None:
    item = view_item("u1", "v1", 42, TS)
    harness.stream.put(item)
    harness.deliver("VIEW")
    harness.stream.put(item | {"duration": {"N": "50"}})
    harness.deliver("VIEW")
    assert harness.summary(kind, ident) == Counters(views=1, duration=50)
    harness.stream.put(item | {"duration": {"N": "7"}})
    harness.deliver("VIEW")
    assert harness.summary(kind, ident) == Counters(views=1, duration=7)


@BOTH
@pytest.mark.parametrize(
    ("vote", "expected"), [("LIKE", Counters(likes=1)), ("DISLIKE", Counters(dislikes=1))]
)
def test_insert_of_a_vote(
    harness: Harness, kind: SummaryKind, ident: str, vote: str, expected: Counters
) -> None:
    harness.stream.put(vote_item("u1", "v1", vote))  # type: ignore[arg-type]
    harness.deliver("VOTE")
    assert harness.summary(kind, ident) == expected


@BOTH
def test_modify_of_a_vote(harness: Harness, kind: SummaryKind, ident: str) -> None:
    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    harness.deliver("VOTE")
    harness.stream.put(vote_item("u1", "v1", "DISLIKE"))
    harness.deliver("VOTE")
    assert harness.summary(kind, ident) == Counters(likes=0, dislikes=1)
    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    harness.deliver("VOTE")
    assert harness.summary(kind, ident) == Counters(likes=1, dislikes=0)


@BOTH
def test_modify_of_a_vote_that_keeps_it_changes_nothing(
    harness: Harness, kind: SummaryKind, ident: str
) -> None:
    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    harness.deliver("VOTE")
    before = harness.item(kind, ident)
    calls = harness.update_calls
    # Rewriting the vote item with another attribute changed but the same voteType.
    harness.stream.put(vote_item("u1", "v1", "LIKE") | {"note": {"S": "again"}})
    harness.deliver("VOTE")
    assert harness.update_calls == calls  # net zero: no write at all
    assert harness.item(kind, ident) == before


@BOTH
@pytest.mark.parametrize("vote", ["LIKE", "DISLIKE"])
def test_remove_of_a_vote(harness: Harness, kind: SummaryKind, ident: str, vote: str) -> None:
    harness.stream.put(vote_item("u1", "v1", vote))  # type: ignore[arg-type]
    harness.stream.put(vote_item("u2", "v2", vote))  # type: ignore[arg-type]
    harness.deliver("VOTE")
    harness.stream.delete(("USER#u1", "VIDEO#v1#VOTE"))
    harness.deliver("VOTE")
    assert harness.summary(kind, ident) == Counters()


@BOTH
@pytest.mark.parametrize("item_type", ["VIEW", "VOTE"])
def test_a_summary_change_never_writes(
    harness: Harness, kind: SummaryKind, ident: str, item_type: str
) -> None:
    summary = summary_item_key(SummaryKey(kind, ident)) | {
        "type": {"S": f"{kind}_SUMMARY"},
        "views": {"N": "5"},
    }
    harness.stream.put(summary)
    harness.stream.put(summary | {"views": {"N": "6"}})
    harness.stream.delete((summary["PK"]["S"], "SUMMARY"))
    # Not selected by the filters at all...
    assert not any(delivered_to(r, item_type) for r in harness.stream.records)
    # ...and harmless even if they slipped through.
    response = harness.deliver_raw(item_type, harness.stream.records)
    assert response["batchItemFailures"] == []
    assert harness.update_calls == 0


# --- the summary item format (docs/design.md §2) -------------------------------------------------


def test_summary_items_have_the_contract_format(harness: Harness) -> None:
    harness.stream.put(view_item("u1", "v1", 42, TS))
    harness.deliver("VIEW")
    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    harness.deliver("VOTE")
    video = harness.item(VIDEO, "v1")
    user = harness.item(USER, "u1")
    assert video is not None
    assert user is not None
    plain = {k: v for k, v in video.items() if not is_mark_attribute(k)}
    assert plain == {
        "PK": {"S": "VIDEO#v1"},
        "SK": {"S": "SUMMARY"},
        "type": {"S": "VIDEO_SUMMARY"},
        "videoId": {"S": "v1"},
        "views": {"N": "1"},
        "duration": {"N": "42"},
        "likes": {"N": "1"},
        "dislikes": {"N": "0"},
        "GSI1PK": {"S": "VIDEO#v1"},
        "GSI1SK": {"S": "SUMMARY"},
        "GSI2PK": {"S": summary_index_partition(SummaryKey(VIDEO, "v1"), 4)},
        "GSI2SK": {"S": "01"},  # the views bucket: 1 view
    }
    plain = {k: v for k, v in user.items() if not is_mark_attribute(k)}
    assert plain == {
        "PK": {"S": "USER#u1"},
        "SK": {"S": "SUMMARY"},
        "type": {"S": "USER_SUMMARY"},
        "userId": {"S": "u1"},
        "views": {"N": "1"},
        "duration": {"N": "42"},
        "likes": {"N": "1"},
        "dislikes": {"N": "0"},
        "GSI2PK": {"S": summary_index_partition(SummaryKey(USER, "u1"), 4)},
        "GSI2SK": {"S": "01"},
    }
    marks = sorted(k for k in video if is_mark_attribute(k))
    assert [m[:2] for m in marks] == ["@o", "@v"]  # one mark per function (and shard)
    # The summary is listed by the sparse ranking index.
    ranked = harness.client.query(
        TableName=harness.table,
        IndexName="GSI2",
        KeyConditionExpression="GSI2PK = :p",
        ExpressionAttributeValues={":p": video["GSI2PK"]},
    )["Items"]
    assert [i["PK"]["S"] for i in ranked] == ["VIDEO#v1"]  # keys only


# --- cost: one UpdateItem per distinct key ---------------------------------------------------


def test_a_batch_with_n_distinct_keys_makes_exactly_n_updates(harness: Harness) -> None:
    for n in range(60):
        harness.stream.put(view_item(f"u{n % 7}", f"v{n % 11}", n, TS + timedelta(seconds=n)))
    harness.deliver("VIEW")
    assert harness.update_calls == 7 + 11
    for n in range(7):
        harness.stream.put(vote_item(f"u{n}", "v0", "LIKE"))
    harness.deliver("VOTE")
    assert harness.update_calls == 18 + 7 + 1


def test_keys_whose_records_cancel_out_are_written_mark_only(harness: Harness) -> None:
    # +1 and -1 in one batch: the write moves only the mark, so the mark covers both records
    # and no later redelivery, in any order, can apply one without the other (apply.py).
    item = view_item("u1", "v1", 5, TS)
    harness.stream.put(item)
    harness.stream.delete((item["PK"]["S"], item["SK"]["S"]))
    harness.stream.put(view_item("u2", "v2", 5, TS))
    harness.deliver("VIEW")
    assert harness.update_calls == 4  # v1 and u1 (mark only), v2 and u2
    assert harness.summary(VIDEO, "v1") == Counters()


def test_updates_run_concurrently_with_a_pool(harness: Harness) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        handlers.configure(
            handlers.Runtime(SummaryStore(harness.client, harness.table), executor=pool)
        )
        for n in range(40):
            harness.stream.put(view_item(f"u{n}", f"v{n % 5}", 1, TS))
        assert harness.deliver("VIEW")["batchItemFailures"] == []
    assert harness.update_calls == 45
    assert harness.summary(VIDEO, "v3") == Counters(views=8, duration=8)


# --- bad records -----------------------------------------------------------------------------

BAD_VIEWS: dict[str, dict[str, Any]] = {
    "fractional duration": {"duration": {"N": "12.5"}},
    "negative duration": {"duration": {"N": "-1"}},
    "string duration": {"duration": {"S": "12"}},
    "missing duration": {"duration": None},
    "missing userId": {"userId": None},
    "empty videoId": {"videoId": {"S": ""}},
    "userId over 1 KB": {"userId": {"S": "x" * 1025}},
}
BAD_VOTES: dict[str, dict[str, Any]] = {
    "unknown voteType": {"voteType": {"S": "MEH"}},
    "lower-case voteType": {"voteType": {"S": "like"}},
    "missing voteType": {"voteType": None},
    "empty userId": {"userId": {"S": ""}},
    "videoId over 1 KB": {"videoId": {"S": "é" * 600}},
}


def _patched(item: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    result = dict(item)
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


@pytest.mark.parametrize("patch", BAD_VIEWS.values(), ids=BAD_VIEWS.keys())
def test_bad_view_is_skipped_and_logged_and_the_rest_applied(
    harness: Harness, patch: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    harness.stream.put(view_item("u1", "v1", 10, TS))
    bad = harness.stream.put(_patched(view_item("u1", "v1", 20, TS + timedelta(seconds=1)), patch))
    harness.stream.put(view_item("u1", "v1", 30, TS + timedelta(seconds=2)))
    assert harness.deliver("VIEW")["batchItemFailures"] == []
    assert harness.summary(VIDEO, "v1") == Counters(views=2, duration=40)
    assert harness.summary(USER, "u1") == Counters(views=2, duration=40)
    skipped = [r.__dict__ for r in caplog.records if r.getMessage() == "record skipped"]
    assert [entry["sequence_number"] for entry in skipped] == [bad["dynamodb"]["SequenceNumber"]]
    assert skipped[0]["reason"]


@pytest.mark.parametrize("patch", BAD_VOTES.values(), ids=BAD_VOTES.keys())
def test_bad_vote_is_skipped_and_the_rest_applied(harness: Harness, patch: dict[str, Any]) -> None:
    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    harness.stream.put(_patched(vote_item("u2", "v1", "DISLIKE"), patch))
    harness.stream.put(vote_item("u3", "v1", "DISLIKE"))
    assert harness.deliver("VOTE")["batchItemFailures"] == []
    assert harness.summary(VIDEO, "v1") == Counters(likes=1, dislikes=1)


def test_a_record_of_another_type_that_slipped_through_is_skipped(harness: Harness) -> None:
    harness.stream.put(vote_item("u1", "v1", "LIKE"))  # a VOTE record sent to the views function
    harness.stream.put({"PK": {"S": "USER#u1"}, "SK": {"S": "PROFILE"}, "type": {"S": "USER"}})
    harness.stream.put(view_item("u1", "v1", 3, TS))
    response = harness.deliver_raw("VIEW", harness.stream.records)
    assert response["batchItemFailures"] == []
    assert harness.summary(VIDEO, "v1") == Counters(views=1, duration=3)
    assert harness.update_calls == 2


def test_an_item_that_becomes_invalid_stops_counting_like_a_recount(harness: Harness) -> None:
    item = view_item("u1", "v1", 10, TS)
    harness.stream.put(item)
    harness.deliver("VIEW")
    harness.stream.put(item | {"duration": {"N": "NaN"}})
    harness.deliver("VIEW")
    assert harness.summary(VIDEO, "v1") == Counters()
    harness.stream.put(item | {"duration": {"N": "11"}})
    harness.deliver("VIEW")
    assert harness.summary(VIDEO, "v1") == Counters(views=1, duration=11)


# --- entry points, logs, metrics, response shape -------------------------------------------------


def _emf(out: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob = json.loads(line)
            for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = blob[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def _batch_line(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """The fields of the last "batch applied" log line."""
    record = [r for r in caplog.records if r.getMessage() == "batch applied"][-1]
    return dict(record.__dict__)


def test_entry_points_log_json_and_emit_metrics(
    harness: Harness, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    harness.stream.put(view_item("u1", "v1", 10, TS))
    harness.stream.put(view_item("u1", "v1", 10, TS + timedelta(1)) | {"duration": {"N": "-4"}})
    records = [r for r in harness.stream.records if delivered_to(r, "VIEW")]
    event = stream_event(records)
    assert handlers.update_view_counters(event, FakeContext()) == {
        "batchItemFailures": [],
        "state": {},
    }
    out = capsys.readouterr().out
    # Only counters a healthy pipeline leaves at zero are metrics, and only when non-zero
    # (CloudWatch bills a custom metric for every hour it is published in); a batch's volume
    # is in its log line.
    assert _emf(out) == {"RecordsSkippedInvalid": 1}
    applied = _batch_line(caplog)
    assert (applied["received"], applied["applied"], applied["writes"]) == (2, 1, 2)
    assert 0 <= applied["oldest_age_seconds"] < 60

    handlers.update_view_counters(event, FakeContext())  # the same batch again
    out = capsys.readouterr().out
    assert _emf(out) == {"RecordsSkippedInvalid": 1, "RecordsSuppressedDuplicate": 1}
    assert _batch_line(caplog)["applied"] == 0
    assert harness.summary(VIDEO, "v1") == Counters(views=1, duration=10)

    harness.stream.put(vote_item("u1", "v1", "LIKE"))
    vote_event = stream_event([r for r in harness.stream.records if delivered_to(r, "VOTE")])
    handlers.update_vote_counters(vote_event, FakeContext())
    assert harness.summary(USER, "u1") == Counters(views=1, duration=10, likes=1)


def test_an_event_without_shard_id_fails_loudly(harness: Harness) -> None:
    harness.stream.put(view_item("u1", "v1", 10, TS))
    with pytest.raises(handlers.MissingShardId, match="tumbling window"):
        harness.deliver("VIEW", shard=None)
    assert harness.update_calls == 0


def test_the_opt_out_gives_plain_events_a_plain_response_and_one_warning(
    harness: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOW_EVENTS_WITHOUT_SHARD_ID", "true")
    monkeypatch.setenv("TABLE_NAME", harness.table)
    handlers.configure(None)  # built from the environment, as in a container
    runtime = handlers._get_runtime()
    assert runtime.allow_missing_shard_id
    handlers.configure(
        handlers.Runtime(
            SummaryStore(harness.client, harness.table),
            executor=None,
            allow_missing_shard_id=runtime.allow_missing_shard_id,
        )
    )
    harness.stream.put(view_item("u1", "v1", 10, TS))
    assert harness.deliver("VIEW", shard=None) == {"batchItemFailures": []}
    harness.stream.put(view_item("u1", "v1", 10, TS + timedelta(seconds=1)))
    harness.deliver("VIEW", shard=None)
    warnings = [r for r in caplog.records if "event has no shardId" in r.getMessage()]
    assert len(warnings) == 1
    assert harness.summary(VIDEO, "v1") == Counters(views=2, duration=20)


def test_the_final_window_invocation_is_answered_before_parsing(harness: Harness) -> None:
    # A final invocation without records succeeds at once: Lambda holds the shard until it does.
    records: list[Any] | None
    for records in ([], None):
        event = {"isFinalInvokeForWindow": True, "shardId": "s", "Records": records}
        assert handlers.handle(event, FakeContext(), "VIEW") == {
            "batchItemFailures": [],
            "state": {},
        }
    assert harness.update_calls == 0


def test_records_in_a_final_window_invocation_are_counted(harness: Harness) -> None:
    # No AWS page says a final invocation is empty; the guide's own example aggregates
    # event["Records"] on every call. Its records count, and the response carries a state.
    harness.stream.put(view_item("u1", "v1", 10, TS))
    records = [r for r in harness.stream.records if delivered_to(r, "VIEW")]
    event = stream_event(records) | {"isFinalInvokeForWindow": True}
    assert handlers.handle(event, FakeContext(), "VIEW") == {"batchItemFailures": [], "state": {}}
    assert harness.summary(VIDEO, "v1") == Counters(views=1, duration=10)
    assert harness.summary(USER, "u1") == Counters(views=1, duration=10)


def test_an_empty_batch_is_fine(harness: Harness) -> None:
    event = stream_event([]) | {"isFinalInvokeForWindow": True}
    assert handlers.update_vote_counters(event, FakeContext()) == {
        "batchItemFailures": [],
        "state": {},
    }
    assert harness.update_calls == 0


def test_an_event_without_records_fails_the_batch(harness: Harness) -> None:
    with pytest.raises(ValueError, match="Records"):
        handlers.handle({"foo": 1}, FakeContext(), "VIEW")
    assert harness.update_calls == 0


def test_metrics_namespace_has_a_default_when_the_environment_lacks_it() -> None:
    # Without a namespace Powertools raises after the writes: the applied batch would fail.
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_METRICS_NAMESPACE"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "lambda_src")
    code = "from video_stats import handlers; print(handlers.metrics.namespace)"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "VideoStats"


# --- GSI2: the views bucket ---------------------------------------------------------------


def _bucket(harness: Harness, kind: SummaryKind, ident: str) -> str | None:
    item = harness.item(kind, ident) or {}
    value = item.get("GSI2SK", {}).get("S")
    return value if isinstance(value, str) else None


def test_the_views_bucket_follows_views_without_extra_writes(harness: Harness) -> None:
    # One container feeding a summary predicts its bucket: crossing 2, 4 and 8 views costs
    # no write beyond the batch's own (index writes happen only at those crossings).
    for n in range(9):
        harness.stream.put(view_item("u1", "v1", 1, TS + timedelta(seconds=n)))
        before = harness.update_calls
        harness.deliver("VIEW")
        assert harness.update_calls - before == 2  # the video and the user summary
        views = n + 1
        assert _bucket(harness, VIDEO, "v1") == f"{views.bit_length():02d}"
        assert _bucket(harness, USER, "u1") == f"{views.bit_length():02d}"


def test_a_stale_bucket_is_fixed_by_one_conditional_write(harness: Harness) -> None:
    # Two containers (two shards) feed one video; each remembers the views it last saw.
    first, second = (SummaryStore(harness.client, harness.table) for _ in range(2))
    clock = itertools.count()

    def deliver_with(store: SummaryStore, shard: str, views: int) -> int:
        handlers.configure(handlers.Runtime(store, executor=None))
        for _ in range(views):
            at = TS + timedelta(seconds=next(clock))
            harness.stream.put(view_item(f"u-{shard}", "v1", 1, at))
        before = harness.update_calls
        harness.deliver("VIEW", shard=shard)
        return harness.update_calls - before

    assert deliver_with(first, "a", 1) == 2  # v1 = 1: "01"
    # B has no memory of v1: its update keeps "01" (if_not_exists), v1 = 4, one fix: "03".
    assert deliver_with(second, "b", 3) == 2 + 1
    assert _bucket(harness, VIDEO, "v1") == "03"
    # A remembers 1 view: it predicts "02" for 5 views, the returned item says 5: one fix.
    assert deliver_with(first, "a", 1) == 2 + 1
    assert _bucket(harness, VIDEO, "v1") == "03"
    assert harness.summary(VIDEO, "v1") == Counters(views=5, duration=5)


def test_a_bucket_left_wrong_by_a_crash_is_fixed_by_the_redelivery(harness: Harness) -> None:
    # The function died after the update and before its bucket fix; Lambda redelivers the
    # batch, every update is rejected (the marks cover it), and the rejection fixes the bucket.
    for n in range(3):
        harness.stream.put(view_item(f"u{n}", "v1", 1, TS + timedelta(seconds=n)))
    batch = [r for r in harness.stream.records if delivered_to(r, "VIEW")]
    harness.deliver("VIEW")
    assert _bucket(harness, VIDEO, "v1") == "02"
    harness.client.update_item(
        TableName=harness.table,
        Key=summary_item_key(SummaryKey(VIDEO, "v1")),
        UpdateExpression="SET GSI2SK = :stale",
        ExpressionAttributeValues={":stale": {"S": "01"}},
    )
    before = harness.update_calls
    handlers.handle(stream_event(batch, "shardId-1"), FakeContext(), "VIEW")
    assert harness.update_calls - before == 4 + 1  # 4 rejected updates, 1 fix
    assert _bucket(harness, VIDEO, "v1") == "02"
    assert harness.summary(VIDEO, "v1") == Counters(views=3, duration=3)
