"""What a stack holds that is billed by the month, read through the AWS APIs (moto in-process:
a fake, unit test only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from benchmark.bill import StackResources
from benchmark.resources import read_stack_resources
from moto import mock_aws

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def table(client: Any, name: str, *, pitr: bool, key: str | None = None) -> None:
    sse: dict[str, Any] = {"Enabled": True, "SSEType": "KMS"}
    if key:
        sse["KMSMasterKeyId"] = key
    client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification=sse,
    )
    if pitr:
        client("dynamodb").update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def alarm(client: Any, name: str, metrics: int = 1) -> None:
    if metrics == 1:
        client("cloudwatch").put_metric_alarm(
            AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
        return
    queries: list[dict[str, Any]] = [
        {
            "Id": f"m{n}",
            "MetricStat": {
                "Metric": {"Namespace": "VideoStats", "MetricName": f"M{n}"},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }
        for n in range(metrics)
    ]
    queries.append({"Id": "e", "Expression": " + ".join(q["Id"] for q in queries)})
    client("cloudwatch").put_metric_alarm(
        AlarmName=name, Metrics=queries, EvaluationPeriods=1, Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip


def test_a_stack_with_monitoring_and_aws_managed_keys(aws: Any) -> None:
    table(aws, "s-data", pitr=True)  # no key ARN: the AWS managed alias/aws/dynamodb
    for name in ("s-update-views-errors", "s-update-votes-errors"):
        alarm(aws, name)
    alarm(aws, "s-update-views-integrity", metrics=3)  # metric math: billed per metric
    alarm(aws, "other-stack-errors")
    aws("cloudwatch").put_dashboard(
        DashboardName="s-pipeline", DashboardBody=json.dumps({"widgets": []})
    )
    aws("sqs").create_queue(QueueName="s-update-views-failures")
    aws("sns").create_topic(Name="s-alarms", Attributes={"KmsMasterKeyId": "alias/aws/sns"})
    aws("logs").create_log_group(logGroupName="/aws/lambda/s-update-views")
    aws("logs").put_retention_policy(logGroupName="/aws/lambda/s-update-views", retentionInDays=30)
    resources = read_stack_resources(aws, "s-", "s-data", ["s-update-views"])
    assert resources == StackResources(
        alarm_metrics=5, alarms=3, dashboards=1, kms_keys=0, queues=1, topics=1,
        log_retention_days=30, point_in_time_recovery=True,
    )  # fmt: skip


def test_a_customer_managed_key_is_billed(aws: Any) -> None:
    key = aws("kms").create_key(Description="the stack's own key")["KeyMetadata"]["Arn"]
    table(aws, "k-data", pitr=False, key=key)
    aws("sns").create_topic(Name="k-alarms", Attributes={"KmsMasterKeyId": key})
    resources = read_stack_resources(aws, "k-", "k-data", ["k-update-views"])
    assert resources.kms_keys == 1  # the same key twice is one key
    assert resources.log_retention_days is None  # no log group: never expires
    assert not resources.point_in_time_recovery
