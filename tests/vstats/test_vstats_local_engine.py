"""The tools against the real local engine (``local_endpoint``): the project's handlers
deployed as two filtered functions with boto3 (no Terraform), then a load test with the control
API (drained, stats, faults) and a reconcile --repair through the Lambda API while the
application keeps writing."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from localcloud.client import ControlClient
from localcloud.endpoint_process import LAMBDA_TRUST_POLICY, LocalEndpoint
from video_stats import model
from video_stats.model import SummaryKey, SummaryKind
from vstats import loadtest, reconcile
from vstats.drift import find_drift
from vstats.filter_patterns import filter_criteria
from vstats.generator import EventGenerator
from vstats.tables import write_operation
from vstats_support import REGION, create_table  # type: ignore[import-not-found]

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"


def package() -> bytes:
    """lambda_src plus the runtime dependency the local runtime does not provide."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((LAMBDA_SRC / "video_stats").rglob("*.py")):
            archive.write(path, path.relative_to(LAMBDA_SRC).as_posix())
        for module in ("aws_lambda_powertools", "typing_extensions"):
            spec = importlib.util.find_spec(module)
            assert spec is not None
            assert spec.origin is not None
            origin = Path(spec.origin)
            if origin.name == "__init__.py":
                root = origin.parent
                for path in sorted(root.rglob("*")):
                    if path.is_file() and "__pycache__" not in path.parts:
                        archive.write(path, path.relative_to(root.parent).as_posix())
            else:
                archive.write(origin, origin.name)
    return buffer.getvalue()


@dataclass
class Stack:
    endpoint: LocalEndpoint
    table: str
    client: Any
    stream_arn: str

    def args(self) -> list[str]:
        return [
            "--table",
            self.table,
            "--endpoint-url",
            self.endpoint.endpoint_url,
            "--control-url",
            self.endpoint.control_url,
            "--region",
            REGION,
        ]


@pytest.fixture(scope="module")
def stack(local_endpoint: LocalEndpoint) -> Iterator[Stack]:
    name = f"vs-{uuid.uuid4().hex[:8]}"
    ddb, lam, iam = (local_endpoint.client(s) for s in ("dynamodb", "lambda", "iam"))
    stream_arn = create_table(ddb, f"{name}-data")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"][
        "Arn"
    ]
    code = package()
    mappings = []
    for function, item_type, handler in (
        ("views", "VIEW", "update_view_counters"),
        ("votes", "VOTE", "update_vote_counters"),
    ):
        arn = lam.create_function(
            FunctionName=f"{name}-update-{function}",
            Runtime="python3.12",
            Role=role,
            Handler=f"video_stats.handlers.{handler}",
            Code={"ZipFile": code},
            Timeout=30,
            Environment={
                "Variables": {
                    "TABLE_NAME": f"{name}-data",
                    "SUMMARY_INDEX_SHARDS": "4",
                    "POWERTOOLS_SERVICE_NAME": f"update-{function}",
                    "POWERTOOLS_METRICS_NAMESPACE": "VideoStats",
                }
            },
        )["FunctionArn"]
        mappings.append(
            lam.create_event_source_mapping(
                FunctionName=arn,
                EventSourceArn=stream_arn,
                StartingPosition="TRIM_HORIZON",
                BatchSize=100,
                MaximumBatchingWindowInSeconds=0,
                MaximumRetryAttempts=10,
                BisectBatchOnFunctionError=True,
                FunctionResponseTypes=["ReportBatchItemFailures"],
                TumblingWindowInSeconds=900,  # as deployed: its events carry the shardId
                FilterCriteria=filter_criteria(item_type),  # as deployed (filter_patterns.json)
            )["UUID"]
        )
    try:
        yield Stack(local_endpoint, f"{name}-data", ddb, stream_arn)
    finally:
        for mapping in mappings:
            lam.delete_event_source_mapping(UUID=mapping)


def test_loadtest_on_the_engine_with_faults(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
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
    stack: Stack, capsys: pytest.CaptureFixture[str]
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
    assert code == 0, capsys.readouterr().err
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["paused_mappings"]) == 2
    assert {"kind": "VIDEO", "id": "0"} in [
        {"kind": r["kind"], "id": r["id"]} for r in doc["repaired"]
    ]
    assert written[0] > 0
    assert control.wait_drained(60)
    assert find_drift(stack.client, stack.table) == []
