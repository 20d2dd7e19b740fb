"""The tools against the real local engine (``local_endpoint``): the project's handlers
deployed as two filtered functions with boto3 (no Terraform), then a load test with the control
API (drained, stats, faults) and a reconcile --repair through the Lambda API while the
application keeps writing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud.client import ControlClient
from localcloud.endpoint_process import LocalEndpoint
from video_stats import model
from video_stats.model import SummaryKey, SummaryKind
from vstats import loadtest, reconcile
from vstats.drift import find_drift
from vstats.generator import EventGenerator
from vstats.tables import write_operation
from vstats_support import LocalStack, create_table, deploy_handlers


@pytest.fixture(scope="module")
def stack(local_endpoint: LocalEndpoint) -> Iterator[LocalStack]:
    name = f"vs-{uuid.uuid4().hex[:8]}"
    ddb = local_endpoint.client("dynamodb")
    stream_arn = create_table(ddb, f"{name}-data")
    deployed = deploy_handlers(
        local_endpoint,
        name,
        f"{name}-data",
        stream_arn,
        environment={"SUMMARY_INDEX_SHARDS": "4"},
        MaximumRetryAttempts=10,
        BisectBatchOnFunctionError=True,
    )
    try:
        yield LocalStack(local_endpoint, f"{name}-data", ddb, stream_arn)
    finally:
        for mapping in deployed.mappings:
            local_endpoint.client("lambda").delete_event_source_mapping(UUID=mapping)


def test_loadtest_on_the_engine_with_faults(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    argv = ["--events", "150", "--rate", "300", "--users", "8", "--videos", "12", "--seed", "4"]
    argv += ["--probe-interval", "0.3", "--faults", "fail=0.2,duplicate=0.2,seed=3"]
    argv += ["--drain-timeout", "60", "--json", str(out), *stack.args()]
    assert loadtest.main(argv) == 0, capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["ok"] is True
    assert doc["events"] == 150
    assert doc["mismatches"] == 0
    assert doc["delay_p50"] is not None
    assert doc["local"]["invocations"] > 0
    assert doc["local"]["summary_writes"] > 0
    assert doc["local"]["base_writes"] == 150 + doc["probes"]
    # Fault injection is switched back off at the end.
    faults = ControlClient(stack.endpoint.control_url).faults()
    assert faults["fail_invocation_rate"] == 0
    assert faults["duplicate_batch_rate"] == 0


def test_repair_on_the_engine_while_the_application_writes(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    control = ControlClient(stack.endpoint.control_url)
    assert control.wait_drained(60)
    assert find_drift(stack.client, stack.table) == []
    video = SummaryKey(SummaryKind.VIDEO, "0")
    stack.client.update_item(
        TableName=stack.table,
        Key=model.summary_item_key(video),
        UpdateExpression="ADD #v :d",
        ExpressionAttributeNames={"#v": "views"},
        ExpressionAttributeValues={":d": {"N": "9"}},
    )
    assert [d.key for d in find_drift(stack.client, stack.table)] == [video]

    stop = threading.Event()
    written = [0]

    def application() -> None:  # keeps writing through the whole repair
        generator = EventGenerator(users=8, videos=12, seed=21)
        while not stop.is_set():
            op = generator.next()
            write_operation(stack.client, stack.table, op)
            written[0] += 1

    writer = threading.Thread(target=application, daemon=True)
    writer.start()
    try:
        code = reconcile.main(["--repair", "--format", "json", *stack.args()])
    finally:
        stop.set()
        writer.join(timeout=30)
    captured = capsys.readouterr()
    assert code == 0, captured.err + captured.out
    doc = json.loads(captured.out)
    assert len(doc["paused_mappings"]) == 2
    assert {"kind": "VIDEO", "id": "0"} in [
        {"kind": r["kind"], "id": r["id"]} for r in doc["repaired"]
    ]
    assert written[0] > 0
    assert control.wait_drained(60)
    assert find_drift(stack.client, stack.table) == []
