"""make status and make redrive against the real local engine (``local_endpoint``): the
project's handlers as two filtered functions with on-failure queues, a fault that exhausts the
retries (once after the handler wrote, once before), later batches of the same shard that move
the marks past the failed ranges, then: status shows the queued batches and the alarm, redrive
(dry run, killed half-way, for real, twice) makes every summary equal the recount."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from localcloud.client import ControlClient
from localcloud.endpoint_process import LocalEndpoint
from vstats import redrive, status
from vstats.drift import find_drift
from vstats.generator import EventGenerator
from vstats.stream_reader import LOCAL_TIMING
from vstats.tables import scan_items
from vstats.target_reads import live_check
from vstats_support import LocalStack, create_table, deploy_handlers
from waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@dataclass
class Stack(LocalStack):
    queues: list[str]
    functions: list[str]
    generator: EventGenerator

    def write(self, events: int) -> None:
        for _ in range(events):
            op = self.generator.next()
            if op.action == "put":
                assert op.item is not None
                self.client.put_item(TableName=self.table, Item=op.item)
            else:
                self.client.delete_item(TableName=self.table, Key=op.key)

    def queue_depth(self) -> int:
        sqs = self.endpoint.client("sqs")
        return sum(
            int(
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
            )
            for url in self.queues
        )


@pytest.fixture(scope="module")
def stack(local_endpoint: LocalEndpoint) -> Iterator[Stack]:
    name = f"rd-{uuid.uuid4().hex[:8]}"
    ddb = local_endpoint.client("dynamodb")
    stream_arn = create_table(ddb, f"{name}-data")
    deployed = deploy_handlers(
        local_endpoint,
        name,
        f"{name}-data",
        stream_arn,
        on_failure_queues=True,
        MaximumRetryAttempts=1,  # give up fast
        BisectBatchOnFunctionError=False,
    )
    queues, functions = deployed.queues, deployed.functions
    generator = EventGenerator(users=4, videos=4, seed=5)
    try:
        yield Stack(local_endpoint, f"{name}-data", ddb, stream_arn, queues, functions, generator)
    finally:
        ControlClient(local_endpoint.control_url).set_faults({"fail_invocation_rate": 0.0})
        for mapping in deployed.mappings:
            local_endpoint.client("lambda").delete_event_source_mapping(UUID=mapping)


def _given_up(control: ControlClient, functions: list[str]) -> float:
    return sum(
        float(m.get("records_discarded", 0))
        for m in control.stats().values()
        if isinstance(m, dict) and m.get("function_name") in functions
    )


def _fail_until_given_up(stack: Stack, control: ControlClient, mode: str, events: int) -> None:
    """Every invocation fails (``mode``: after or before the handler ran) until the engine
    has given up on all ``events`` records."""
    before = _given_up(control, stack.functions)
    control.set_faults({"fail_invocation_rate": 1.0, "fail_invocation_mode": mode, "seed": 2})
    stack.write(events)
    wait_until(lambda: _given_up(control, stack.functions) - before >= events, timeout=90)
    control.set_faults({"fail_invocation_rate": 0.0})


def _redrive(stack: Stack, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = redrive.main(["--json", *extra, *stack.args()])
    out = capsys.readouterr().out
    assert code == 0, out
    doc: dict[str, Any] = json.loads(out)
    return doc


def test_fault_status_redrive_exact(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    control = ControlClient(stack.endpoint.control_url)
    cloudwatch = stack.endpoint.client("cloudwatch")
    for queue in stack.queues:
        cloudwatch.put_metric_alarm(
            AlarmName=f"{queue.rsplit('/', 1)[-1]}-alarm",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": queue.rsplit("/", 1)[-1]}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0.0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    stack.write(40)
    assert control.wait_drained(60)
    assert find_drift(stack.client, stack.table) == []
    assert status.main([*stack.args()]) == 0  # healthy
    capsys.readouterr()

    # Applied, then reported failed: redriving these must not count them twice.
    _fail_until_given_up(stack, control, "after", 4)
    # Never applied: redriving these must count them although...
    _fail_until_given_up(stack, control, "before", 4)
    # ...later batches of the same shard moved the marks of the same summaries past them.
    stack.write(30)
    assert control.wait_drained(90)
    drift_before = find_drift(stack.client, stack.table)
    assert drift_before  # the "before" records are missing
    messages = stack.queue_depth()
    assert messages >= 2

    # make status: the queued batches, and the failure-queue alarm (evaluated by the endpoint).
    def alarm_states() -> set[str]:
        return {
            a["StateValue"]
            for a in cloudwatch.describe_alarms(AlarmNamePrefix=stack.table[:11])["MetricAlarms"]
        }

    wait_until(lambda: "ALARM" in alarm_states(), timeout=30)
    assert status.main(["--json", *stack.args()]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["healthy"] is False
    assert sum(m["failure_queue_depth"] for m in doc["mappings"]) == messages
    assert sum(m["errors"] for m in doc["mappings"]) > 0
    assert any(a["state"] == "ALARM" for m in doc["mappings"] for a in m["alarms"])

    # Dry run: reports, writes nothing, deletes nothing.
    assert redrive.main(["--dry-run", *stack.args()]) == 0
    table = capsys.readouterr().out
    assert "would-redrive" in table
    assert f"{messages} messages" in table
    dry = _redrive(stack, capsys, "--dry-run")
    assert dry["counts"]["would_redrive"] == messages
    assert dry["counts"]["summaries_rewritten"] > 0
    # It says what a run reads: every item of each touched user's partition and of each
    # touched video's GSI1 partition (its summary included), and their read units.
    touched = [m["keys"] for m in dry["messages"]]
    users = {key for keys in touched for key in keys if key.startswith("USER#")}
    videos = {key for keys in touched for key in keys if key.startswith("VIDEO#")}
    items = list(scan_items(stack.client, stack.table, 1))
    assert dry["counts"]["items_read"] == sum(
        (i["PK"]["S"] in users) + (i.get("GSI1PK", {}).get("S") in videos) for i in items
    )
    assert dry["read_units"] > 0
    assert "items read" in table
    assert stack.queue_depth() == messages
    assert find_drift(stack.client, stack.table) == drift_before

    # Killed half-way: the first message's summaries written, its message not deleted.
    monkeypatch.setattr(redrive, "VISIBILITY_SECONDS", 1)
    real = redrive.make_exact
    calls = [0]

    def dies_after_first_write(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        calls[0] += 1
        raise KeyboardInterrupt  # after the writes, before the delete

    monkeypatch.setattr(redrive, "make_exact", dies_after_first_write)
    assert redrive.main(["--json", *stack.args()]) == 130
    capsys.readouterr()
    assert calls[0] == 1
    monkeypatch.setattr(redrive, "make_exact", real)
    assert stack.queue_depth() <= messages
    time.sleep(1.5)  # the received messages become visible again

    done = _redrive(stack, capsys)
    assert done["counts"]["redriven"] == messages
    assert stack.queue_depth() == 0
    assert find_drift(stack.client, stack.table) == []
    streams = stack.endpoint.client("dynamodbstreams")
    # The raised marks say the summaries hold the redriven records: no false pending drift.
    assert (
        live_check(stack.client, streams, stack.table, stack.stream_arn, timing=LOCAL_TIMING).drifts
        == []
    )

    again = _redrive(stack, capsys)
    assert again["counts"]["messages"] == 0
    assert again["counts"]["summaries_rewritten"] == 0

    # The pipeline goes on normally over the raised marks.
    stack.write(30)
    assert control.wait_drained(60)
    assert find_drift(stack.client, stack.table) == []


def test_a_trimmed_range_is_reported_with_the_repair_command(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shard the stream no longer has (its records are past the 24 h retention). moto answers
    # a sequence number it never held with an internal error, so the shard is what is gone.
    body = {
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001000000000000-0000dead",
            "startSequenceNumber": "100000000000000000001",
            "endSequenceNumber": "100000000000000000002",
            "batchSize": 2,
            "streamArn": stack.stream_arn,
        }
    }
    sqs = stack.endpoint.client("sqs")
    sqs.send_message(QueueUrl=stack.queues[0], MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=stack.queues[0], MessageBody="not a batch record")
    try:
        assert redrive.main(["--json", *stack.args()]) == 1
        captured = capsys.readouterr()
        assert captured.out, captured.err
        doc = json.loads(captured.out)
        assert doc["counts"]["trimmed"] == 1
        assert doc["counts"]["invalid"] == 1
        assert doc["repair_command"] == "make reconcile ARGS=--repair"
        assert "make reconcile ARGS=--repair" in doc["messages"][0]["detail"]
    finally:
        sqs.purge_queue(QueueUrl=stack.queues[0])


def test_bad_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert status.main(["--minutes", "0", "--table", "t"]) == 2
    assert redrive.main(["--bogus"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2
    assert "Traceback" not in err
