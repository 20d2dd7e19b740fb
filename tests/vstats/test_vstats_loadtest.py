"""The load test end to end on a moto table, with StreamConsumer as the pipeline: exact
verification, mismatch detection, probes, the JSON report and the local control API (a fake
engine control server: drained, stats, faults)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from localcloud.client import ControlClient
from vstats import loadtest
from vstats.load_report import percentile
from vstats.load_run import LoadTest, LoadTestConfig, Pacer
from vstats.pipeline import LambdaPipeline
from vstats_support import StreamConsumer, TableEnv

FAST = LoadTestConfig(
    events=120,
    rate=None,
    writers=4,
    users=6,
    videos=8,
    seed=3,
    probe_interval=0.2,
    drain_timeout=90.0,  # returns as soon as the summaries match
    # Without a control API the run counts as drained once the summaries stop changing this
    # long. A run that passes returns at the first match, so only a failing one waits it out;
    # 5 s was too short when the full suite paused the stand-in consumer (a flaky mismatch).
    settle_seconds=30.0,
    poll_interval=0.05,
)


def test_a_run_with_the_pipeline_working_verifies_exactly(
    table: TableEnv, consumer: StreamConsumer
) -> None:
    consumer.start()
    report = LoadTest(table.client, table.name, FAST).run()
    assert report.events == 120
    assert sum(report.events_by_kind.values()) == 120
    assert report.verified
    assert report.mismatches == []
    assert report.ok
    assert report.touched_summaries > 0
    assert report.probes >= 1
    assert report.delays
    assert report.delay(50) is not None
    assert report.drain_seconds is not None


def test_a_run_whose_summaries_do_not_follow_reports_mismatches(table: TableEnv) -> None:
    config = replace(FAST, events=30, probe_interval=0, settle_seconds=0.3)
    report = LoadTest(table.client, table.name, config).run()
    assert report.verified  # settled: nothing changes any more
    assert report.mismatches
    assert not report.ok
    mismatch = report.mismatches[0]
    assert mismatch.actual == mismatch.baseline
    assert mismatch.expected != mismatch.baseline


def test_the_baseline_makes_earlier_data_irrelevant(
    table: TableEnv, consumer: StreamConsumer
) -> None:
    consumer.start()
    for seed in (1, 1):  # the same seed twice: same ids, votes overwrite earlier votes
        config = replace(FAST, events=60, seed=seed, probe_interval=0)
        report = LoadTest(table.client, table.name, config).run()
        assert report.ok, [m.as_dict() for m in report.mismatches]


def test_cli_json_report(
    table: TableEnv, consumer: StreamConsumer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    consumer.start()
    out = tmp_path / "report.json"
    argv = ["--events", "40", "--max-rate", "--users", "3", "--videos", "3", "--seed", "9"]
    argv += ["--probe-interval", "0.2", "--settle", "5", "--json", str(out), *table.args()]
    assert loadtest.main(argv) == 0
    doc = json.loads(out.read_text())
    for key in ("events", "mismatches", "drain_seconds", "delay_p50", "delay_p95", "delay_p99"):
        assert key in doc
    assert doc["events"] == 40
    assert doc["mismatches"] == 0
    assert doc["ok"] is True
    printed = capsys.readouterr().out
    assert "every touched summary is exact" in printed
    assert "achieved rate" in printed


def test_cli_exits_1_on_mismatch(table: TableEnv, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["--events", "10", "--max-rate", "--probe-interval", "0", "--settle", "0.3"]
    argv += ["--users", "2", "--videos", "2", "--json", str(out), *table.args()]
    assert loadtest.main(argv) == 1
    assert json.loads(out.read_text())["mismatches"] > 0


# --- the local engine's control API ------------------------------------------------------------


class FakeEngine:
    """/drained, /stats and /faults as the local engine serves them, over StreamConsumer."""

    def __init__(self, consumer: StreamConsumer, table: str) -> None:
        self.consumer = consumer
        self.table = table
        self.faults: dict[str, Any] = {
            "fail_invocation_rate": 0.0,
            "kill_mid_batch_rate": 0.0,
            "duplicate_batch_rate": 0.0,
            "seed": None,
        }
        self.fault_history: list[dict[str, Any]] = []
        self.invocations = 0

    def handle(self, method: str, path: str, body: Any) -> Any:
        if path == "/drained":
            read = self.consumer.process()
            self.invocations += 1 if read else 0
            return {"drained": read == 0}
        if path == "/stats":
            return {
                "uuid-views": {
                    "function_name": "views",
                    "invocations": self.invocations,
                    "event_source_arn": f"arn:aws:dynamodb:us-east-1:1:table/{self.table}/stream/x",
                },
                "uuid-other": {  # another deployment on the same endpoint: not counted
                    "function_name": "other",
                    "invocations": 1000 + self.invocations,
                    "event_source_arn": "arn:aws:dynamodb:us-east-1:1:table/other/stream/x",
                },
                "dynamodb": {self.table: {"write_requests": 10_000 + self.invocations}},
            }
        if path == "/faults" and method == "PUT":
            self.faults = dict(body)
            self.fault_history.append(dict(body))
        return self.faults


@pytest.fixture
def engine(table: TableEnv, consumer: StreamConsumer) -> Iterator[tuple[FakeEngine, str]]:
    fake = FakeEngine(consumer, table.name)

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            payload = json.dumps(fake.handle(self.command, self.path, body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_local_faults_are_set_and_restored(
    table: TableEnv,
    engine: tuple[FakeEngine, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake, url = engine
    out = tmp_path / "r.json"
    argv = ["--events", "30", "--max-rate", "--users", "3", "--videos", "4", "--seed", "1"]
    argv += ["--probe-interval", "0", "--faults", "fail=0.1,kill=0.05,duplicate=0.05,seed=7"]
    argv += ["--control-url", url, "--json", str(out), *table.args()]
    assert loadtest.main(argv) == 0
    # The run sets every fault (the ones not named are off), then restores what was there.
    first, restored = fake.fault_history
    assert {k: v for k, v in first.items() if v} == {
        "fail_invocation_rate": 0.1,
        "kill_mid_batch_rate": 0.05,
        "duplicate_batch_rate": 0.05,
        "seed": 7,
        "fail_invocation_mode": "after",
    }
    assert {k: v for k, v in restored.items() if v and k != "fail_invocation_mode"} == {}
    doc = json.loads(out.read_text())
    assert doc["mismatches"] == 0
    assert 1 <= doc["local"]["invocations"] < 1000
    assert doc["local"]["base_writes"] == 30
    assert "invocations (local)" in capsys.readouterr().out


def test_unreachable_control_api_is_one_line(
    table: TableEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--events", "5", "--control-url", "http://127.0.0.1:9", *table.args()]
    assert loadtest.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "local control API at http://127.0.0.1:9 unreachable" in err[-1]


def test_control_client_wait_drained_times_out() -> None:
    class Never(ControlClient):
        def drained(self) -> bool:
            return False

    assert Never("http://unused").wait_drained(0.05, interval=0.01) is False


# --- pure helpers ----------------------------------------------------------------------------


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([float(n) for n in range(101)], 95) == pytest.approx(95.0)


def test_pacer_keeps_the_rate_and_does_not_burst_after_falling_behind() -> None:
    now = [100.0]
    pacer = Pacer(10.0, clock=lambda: now[0])
    assert [pacer.slot() for _ in range(3)] == pytest.approx([100.0, 100.1, 100.2])
    now[0] = 110.0  # ten seconds behind: at most one second of catch-up
    assert pacer.slot() == pytest.approx(109.0)
    assert Pacer(None, clock=lambda: 5.0).slot() == 5.0


# --- waits follow the deployed batching window ---------------------------------------------------


def test_the_waits_default_to_the_batching_window_plus_a_margin() -> None:
    args = loadtest.build_parser().parse_args(["--table", "t"])

    config = loadtest.config_from_args(args, batching_window=300.0)

    # A record can wait a whole window in Lambda: a 20 s settle would call a 300 s window's
    # pending batch "drained" and report mismatches that are only late.
    assert (config.settle_seconds, config.drain_timeout, config.probe_timeout) == (320, 600, 420)


def test_waits_given_on_the_command_line_win() -> None:
    args = loadtest.build_parser().parse_args(
        ["--table", "t", "--settle", "7", "--drain-timeout", "90"]
    )

    config = loadtest.config_from_args(args, batching_window=300.0)

    assert (config.settle_seconds, config.drain_timeout) == (7, 90)


class PagedMappings:
    """``list_event_source_mappings`` in two pages (a fake Lambda client: unit level)."""

    def __init__(self, windows: list[list[int]]) -> None:
        self.pages = windows

    def list_event_source_mappings(self, **request: Any) -> dict[str, Any]:
        page = int(request.get("Marker", "0"))
        answer: dict[str, Any] = {
            "EventSourceMappings": [
                {"UUID": f"m{page}{n}", "MaximumBatchingWindowInSeconds": w}
                for n, w in enumerate(self.pages[page])
            ]
        }
        if page + 1 < len(self.pages):
            answer["NextMarker"] = str(page + 1)
        return answer


def test_the_longest_window_of_every_mapping_counts() -> None:
    assert LambdaPipeline(PagedMappings([[5, 0], [300]]), "arn").longest_batching_window() == 300
    assert LambdaPipeline(PagedMappings([[]]), "arn").longest_batching_window() == 0
