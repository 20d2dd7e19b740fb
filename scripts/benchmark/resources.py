"""What a deployed stack holds that is billed by the month (``bill.StackResources``), read
through the private endpoint's own APIs, as on AWS: nothing is copied from the Terraform
configuration, so a module change shows in the bill of the next ``make bench``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmark.bill import StackResources

#: KMS keys AWS manages (``alias/aws/<service>``) cost no monthly fee.
AWS_MANAGED_PREFIX = "alias/aws/"


def read_stack_resources(
    client: Callable[[str], Any], name_prefix: str, table: str, function_names: list[str]
) -> StackResources:
    """The alarms (and the metrics each reads), dashboards, queues and topics named with
    ``name_prefix``, the customer-managed KMS keys its table, queues and topics use, its
    functions' log retention and its table's point-in-time recovery. ``client(service)`` makes
    a client on the endpoint."""
    cloudwatch = client("cloudwatch")
    alarms = [
        alarm
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=name_prefix
        )
        for alarm in page.get("MetricAlarms", [])
    ]
    # A metric-math alarm is billed per metric it reads (CloudWatch pricing).
    alarm_metrics = sum(
        max(1, sum(1 for q in alarm.get("Metrics") or [] if "MetricStat" in q)) for alarm in alarms
    )
    dashboards = cloudwatch.list_dashboards(DashboardNamePrefix=name_prefix).get(
        "DashboardEntries", []
    )
    keys: set[str] = set()
    sqs = client("sqs")
    queues = sqs.list_queues(QueueNamePrefix=name_prefix).get("QueueUrls", [])
    for url in queues:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])
        keys.add(attributes.get("Attributes", {}).get("KmsMasterKeyId", ""))
    sns = client("sns")
    topics = [
        t["TopicArn"]
        for t in sns.list_topics().get("Topics", [])
        if t["TopicArn"].rsplit(":", 1)[-1].startswith(name_prefix)
    ]
    for arn in topics:
        keys.add(sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("KmsMasterKeyId", ""))
    dynamodb = client("dynamodb")
    sse = dynamodb.describe_table(TableName=table)["Table"].get("SSEDescription") or {}
    if sse.get("SSEType") == "KMS":
        keys.add(sse.get("KMSMasterKeyArn", ""))
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    pitr = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    logs = client("logs")
    retention: list[int | None] = []
    for name in function_names:
        groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}").get(
            "logGroups", []
        )
        retention += [g.get("retentionInDays") for g in groups if g["logGroupName"].endswith(name)]
    return StackResources(
        alarm_metrics=alarm_metrics,
        alarms=len(alarms),
        dashboards=len(dashboards),
        kms_keys=len({k for k in keys if k and not _aws_managed(client, k)}),
        queues=len(queues),
        topics=len(topics),
        log_retention_days=_longest(retention),
        point_in_time_recovery=pitr == "ENABLED",
    )


def _aws_managed(client: Callable[[str], Any], key: str) -> bool:
    """An AWS managed key (``alias/aws/<service>``, as a table encrypted without a key ARN
    uses): no monthly fee. An unknown key is billed (the reading against this project)."""
    if key.startswith(AWS_MANAGED_PREFIX) or ":alias/aws/" in key:
        return True
    kms = client("kms")
    try:
        metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
        aliases = kms.list_aliases(KeyId=metadata["KeyId"]).get("Aliases", [])
    except Exception:
        return False
    return metadata.get("KeyManager") == "AWS" or any(
        str(a.get("AliasName", "")).startswith(AWS_MANAGED_PREFIX) for a in aliases
    )


def _longest(days: list[int | None]) -> int | None:
    """The longest retention of the function's log groups (None: never expire, or none)."""
    if not days or any(d is None for d in days):
        return None
    return max(d for d in days if d is not None)
