"""The local metrics publisher: EMF parsing, log tailing and CloudWatch's alarm verdict (pure),
then one round against a real moto CloudWatch: metrics in, alarm state out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from localcloud.invocation import InvokeResult
from localcloud.metrics_publisher import (
    LogTail,
    MetricsPublisher,
    alarm_message,
    alarm_state,
    parse_emf,
    state_reason,
)
from moto.server import ThreadedMotoServer

EMF_LINE = json.dumps(
    {
        "_aws": {
            "Timestamp": 1_796_081_576_594,
            "CloudWatchMetrics": [
                {
                    "Namespace": "VideoStats",
                    "Dimensions": [["service"]],
                    "Metrics": [
                        {"Name": "RecordsReceived", "Unit": "Count"},
                        {"Name": "RecordsSkippedInvalid", "Unit": "Count"},
                    ],
                }
            ],
        },
        "service": "update-views",
        "RecordsReceived": [121.0],
        "RecordsSkippedInvalid": 2,
    }
)


def test_an_emf_line_becomes_its_metrics() -> None:
    data = parse_emf(EMF_LINE)
    assert [(d.namespace, d.name, d.dimensions, d.values, d.unit) for d in data] == [
        ("VideoStats", "RecordsReceived", (("service", "update-views"),), (121.0,), "Count"),
        ("VideoStats", "RecordsSkippedInvalid", (("service", "update-views"),), (2.0,), "Count"),
    ]
    assert data[0].timestamp == pytest.approx(1_796_081_576.594)


@pytest.mark.parametrize(
    "line", ['{"level":"INFO","message":"batch applied"}', "START RequestId: x", "{not json _aws"]
)
def test_other_lines_are_no_metrics(line: str) -> None:
    assert parse_emf(line) == []


def test_log_tail_returns_each_complete_line_once(tmp_path: Path) -> None:
    tail = LogTail(tmp_path)
    log = tmp_path / "f.log"
    log.write_text("one\ntw")
    assert list(tail.lines()) == ["one"]
    with log.open("a") as handle:
        handle.write("o\nthree\n")
    assert list(tail.lines()) == ["two", "three"]
    assert list(tail.lines()) == []


@pytest.mark.parametrize(
    ("values", "treat", "to_alarm", "state"),
    [
        ([None, None], "notBreaching", 2, "OK"),
        ([None, None], "missing", 2, "INSUFFICIENT_DATA"),
        ([None, None], "ignore", 2, None),
        ([None, None], "breaching", 2, "ALARM"),
        ([0.0, 1.0], "notBreaching", 1, "ALARM"),
        ([0.0, 1.0], "notBreaching", 2, "OK"),
        ([1.0, None], "breaching", 2, "ALARM"),
        ([1.0, 2.0], "missing", 2, "ALARM"),
    ],
)
def test_alarm_verdict(
    values: list[float | None], treat: str, to_alarm: int, state: str | None
) -> None:
    verdict = alarm_state(
        values,
        threshold=0.0,
        comparison="GreaterThanThreshold",
        datapoints_to_alarm=to_alarm,
        treat_missing=treat,
    )
    assert verdict == state


@pytest.fixture
def moto_endpoint() -> Any:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_one_round_publishes_metrics_and_moves_the_alarms(
    moto_endpoint: str, tmp_path: Path
) -> None:
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    cloudwatch = session.client("cloudwatch", endpoint_url=moto_endpoint)
    sqs = session.client("sqs", endpoint_url=moto_endpoint)
    queue = sqs.create_queue(QueueName="fn-on-failure")["QueueUrl"]
    common: dict[str, Any] = {
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }
    alarms = {
        "fn-errors": ("AWS/Lambda", "Errors", "Sum", [{"Name": "FunctionName", "Value": "fn"}]),
        "fn-failure-queue": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            [{"Name": "QueueName", "Value": "fn-on-failure"}],
        ),
        "fn-skipped-invalid": (
            "VideoStats",
            "RecordsSkippedInvalid",
            "Sum",
            [{"Name": "service", "Value": "update-views"}],
        ),
        "other-errors": ("AWS/Lambda", "Errors", "Sum", [{"Name": "FunctionName", "Value": "x"}]),
    }
    for name, (namespace, metric, statistic, dims) in alarms.items():
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace=namespace,
            MetricName=metric,
            Statistic=statistic,
            Dimensions=dims,
            **common,
        )
    publisher = MetricsPublisher(moto_endpoint, tmp_path)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    publisher.invoked(arn, InvokeResult(ok=True, request_id="a", duration=0.25), 3.0)
    publisher.invoked(arn, InvokeResult(ok=False, request_id="b", duration=0.5), 4.0)
    (tmp_path / "fn.log").write_text(
        EMF_LINE.replace("1796081576594", str(int(time.time() * 1000))) + "\n"
    )
    sqs.send_message(QueueUrl=queue, MessageBody="{}")

    publisher.publish_once()

    states = {a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert states == {
        "fn-errors": "ALARM",
        "fn-failure-queue": "ALARM",
        "fn-skipped-invalid": "ALARM",
        "other-errors": "OK",
    }
    now = time.time()

    def total(namespace: str, metric: str, statistic: str, dims: list[dict[str, str]]) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=dims,
            StartTime=now - 300,
            EndTime=now + 60,
            Period=600,
            Statistics=[statistic],
        )["Datapoints"]
        return float(sum(p[statistic] for p in points))

    fn = [{"Name": "FunctionName", "Value": "fn"}]
    assert total("AWS/Lambda", "Invocations", "Sum", fn) == 2
    assert total("AWS/Lambda", "Errors", "Sum", fn) == 1
    assert total("AWS/Lambda", "IteratorAge", "Maximum", fn) == 4000
    assert total("AWS/Lambda", "Duration", "Maximum", fn) == 500

    # The queue is emptied, nothing fails any more: the next round clears the queue alarm
    # once its period has passed.
    sqs.purge_queue(QueueUrl=queue)
    publisher.publish_once(now=time.time() + 120)
    states = {a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
    assert states["fn-failure-queue"] == "OK"
    assert states["fn-errors"] == "OK"


def test_alarm_message_in_cloudwatch_format() -> None:
    alarm = {
        "AlarmName": "fn-errors",
        "AlarmDescription": "errors",
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:fn-errors",
        "StateValue": "OK",
        "MetricName": "Errors",
        "Namespace": "AWS/Lambda",
        "Statistic": "Sum",
        "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:alarms"],
    }
    reason = state_reason(alarm, [2.0], "ALARM", 1_700_000_000.25)
    assert reason.startswith("Threshold Crossed: 1 datapoint(s) [2] of the last 1 was greater")
    subject, message = alarm_message(alarm, "ALARM", reason, 1_700_000_000.25, "us-east-1")
    assert subject == 'ALARM: "fn-errors" in US East (N. Virginia)'
    assert message["NewStateValue"] == "ALARM"
    assert message["OldStateValue"] == "OK"
    assert message["NewStateReason"] == reason
    assert message["StateChangeTime"] == "2023-11-14T22:13:20.250+0000"
    assert message["AWSAccountId"] == "123456789012"
    assert message["Trigger"]["Statistic"] == "SUM"
    assert message["Trigger"]["Dimensions"] == [{"value": "fn", "name": "FunctionName"}]
    assert message["OKActions"] == []


def test_an_alarm_going_to_alarm_reaches_a_subscribed_queue(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # moto's backends are per process: names of their own, apart from the test above.
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    cloudwatch = session.client("cloudwatch", endpoint_url=moto_endpoint)
    sqs = session.client("sqs", endpoint_url=moto_endpoint)
    sns = session.client("sns", endpoint_url=moto_endpoint)
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cloudwatch.put_metric_alarm(
        AlarmName="notify-errors",
        AlarmDescription="the function failed",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Dimensions=[{"Name": "FunctionName", "Value": "fn-notify"}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
        OKActions=[topic],
    )
    publisher = MetricsPublisher(moto_endpoint, tmp_path)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn-notify"

    def received() -> list[dict[str, Any]]:
        reply = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = [json.loads(m["Body"]) for m in reply.get("Messages", [])]
        for m in reply.get("Messages", []):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        return messages

    publisher.publish_once()  # no errors: the alarm stays OK, nothing is published
    assert received() == []
    publisher.invoked(arn, InvokeResult(ok=False, request_id="b", duration=0.5), 1.0)
    publisher.publish_once()
    (envelope,) = received()
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic
    assert envelope["Subject"] == 'ALARM: "notify-errors" in US East (N. Virginia)'
    message = json.loads(envelope["Message"])
    assert message["AlarmName"] == "notify-errors"
    assert message["AlarmDescription"] == "the function failed"
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["Trigger"]["MetricName"] == "Errors"

    publisher.publish_once()  # still ALARM: no second message
    assert received() == []
    publisher.publish_once(now=time.time() + 120)  # the errors' period has passed: OK
    (back,) = received()
    assert json.loads(back["Message"])["NewStateValue"] == "OK"
