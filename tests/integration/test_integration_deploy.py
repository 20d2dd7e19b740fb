"""Deploy smoke test: the applied root module, checked through the AWS APIs (the same calls
work against the local endpoint and AWS), `terraform plan` right after the apply, and one
end-to-end pass of views and votes into the summaries with no call to the handlers.

Runs first in the session (file order), so the plan is checked right after the apply.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from it_support import (
    FUNCTION_ROLES,
    STREAM_MAPPING,
    Stack,
    find_leftovers,
    record_figure,
)
from video_stats import model
from video_stats.model import Counters, SummaryKey, SummaryKind
from vstats import deployment, status
from vstats.effects import ITEM_TYPE_OF_FUNCTION
from vstats.filter_patterns import deployed_patterns
from vstats.tables import get_summaries
from waiting import wait_until

pytestmark = pytest.mark.integration

HANDLERS = {
    "views": "video_stats.handlers.update_view_counters",
    "votes": "video_stats.handlers.update_vote_counters",
}


def test_plan_right_after_apply_reports_no_changes(stack: Stack) -> None:
    code, output = stack.runner.plan_exit_code()
    assert code == 0, f"plan -detailed-exitcode = {code} (2: changes, 1: error):\n{output[-4000:]}"


def test_table_keys_indexes_stream_and_protection(stack: Stack) -> None:
    ddb = stack.client("dynamodb")
    table = ddb.describe_table(TableName=stack.table)["Table"]
    assert table["TableName"] == f"{stack.prefix}-data"
    assert _key_schema(table["KeySchema"]) == {"PK": "HASH", "SK": "RANGE"}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {
        "PK": "S",
        "SK": "S",
        "GSI1PK": "S",
        "GSI1SK": "S",
        "GSI2PK": "S",
        "GSI2SK": "S",
    }
    assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}
    assert _key_schema(indexes["GSI1"]["KeySchema"]) == {"GSI1PK": "HASH", "GSI1SK": "RANGE"}
    assert indexes["GSI1"]["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(indexes["GSI1"]["Projection"]["NonKeyAttributes"]) == set(
        model.DATA_MODEL_ATTRIBUTES
    )
    assert _key_schema(indexes["GSI2"]["KeySchema"]) == {"GSI2PK": "HASH", "GSI2SK": "RANGE"}
    assert indexes["GSI2"]["Projection"]["ProjectionType"] == "KEYS_ONLY"
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["LatestStreamArn"] == stack.stream_arn
    assert table.get("SSEDescription", {}).get("Status") == "ENABLED"
    # The test environment switches deletion protection off so that it can be destroyed.
    assert table.get("DeletionProtectionEnabled") is False
    backups = ddb.describe_continuous_backups(TableName=stack.table)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_function_handler_runtime_and_environment(stack: Stack, role: str) -> None:
    name = stack.function_names[role]
    assert name == f"{stack.prefix}-update-{role}"
    config = stack.client("lambda").get_function_configuration(FunctionName=name)
    assert config["Handler"] == HANDLERS[role]
    assert config["Runtime"] == "python3.12"
    assert config["Role"].endswith(f":role/{name}")
    assert config["Environment"]["Variables"] == {
        "TABLE_NAME": stack.table,
        "SUMMARY_INDEX_SHARDS": "4",
        "POWERTOOLS_SERVICE_NAME": f"update-{role}",
        "POWERTOOLS_METRICS_NAMESPACE": "VideoStats",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # The mapping's maximum record age (21,600 s) + the 1 h margin (marks.py, retention).
        "MARK_RETENTION_SECONDS": "25200",
    }


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_mapping_filters_and_settings(stack: Stack, role: str) -> None:
    lam = stack.client("lambda")
    mapping = lam.get_event_source_mapping(UUID=stack.mapping_uuids[role])
    assert mapping["EventSourceArn"] == stack.stream_arn
    assert mapping["FunctionArn"].endswith(f":function:{stack.function_names[role]}")
    # What Terraform deployed is the one source, filter_patterns.json (docs/design.md §4). The
    # filters are ORed: their order means nothing (Lambda and moto may reorder them).
    patterns = [json.loads(f["Pattern"]) for f in mapping["FilterCriteria"]["Filters"]]
    assert _canonical(patterns) == _canonical(deployed_patterns()[ITEM_TYPE_OF_FUNCTION[role]])
    assert mapping["BatchSize"] == 5000  # the root module's default (docs/design.md §5)
    assert (
        mapping["MaximumBatchingWindowInSeconds"]
        == STREAM_MAPPING["maximum_batching_window_in_seconds"]
    )
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    # Retried until the records are 6 h old, never bisected (docs/design.md §5).
    assert mapping["MaximumRetryAttempts"] == -1
    assert mapping["MaximumRecordAgeInSeconds"] == 21600
    # Lambda returns false; moto leaves out a setting that is off.
    assert mapping.get("BisectBatchOnFunctionError", False) is False
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ParallelizationFactor"] == 1
    queue_arn = _queue_arn(stack, role)
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_failure_queue_exists_encrypted(stack: Stack, role: str) -> None:
    url = stack.queue_urls[role]
    assert url.rsplit("/", 1)[-1] == f"{stack.prefix}-update-{role}-on-failure"
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_alarm_topic_accepts_cloudwatch(stack: Stack) -> None:
    """The topic every alarm notifies: no AWS managed key (CloudWatch alarms cannot publish
    under alias/aws/sns) and a policy that lets cloudwatch.amazonaws.com publish for alarms of
    the topic's own account (modules/monitoring/sns.tf, docs/design.md §9)."""
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{stack.prefix}-")
    topics = {
        a for alarm in alarms["MetricAlarms"] for a in alarm["AlarmActions"] + alarm["OKActions"]
    }
    assert len(topics) == 1, topics
    (topic,) = topics
    assert topic.rsplit(":", 1)[-1] == f"{stack.prefix}-alarms"
    attributes = stack.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert not attributes.get("KmsMasterKeyId"), attributes.get("KmsMasterKeyId")
    account = topic.split(":")[4]
    statements = json.loads(attributes["Policy"])["Statement"]
    assert any(
        s["Effect"] == "Allow"
        and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        and "SNS:Publish" in _as_list(s["Action"])
        and s["Resource"] == topic
        and s["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
        for s in statements
    ), statements


@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_role_policies_scope_dynamodb_and_sqs_to_resources(stack: Stack, role: str) -> None:
    iam = stack.client("iam")
    name = stack.function_names[role]
    trust = _document(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"])
    assert [s["Principal"] for s in _statements(trust)] == [{"Service": "lambda.amazonaws.com"}]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    statements: list[dict[str, Any]] = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        statements += _statements(_document(document))
    scoped = [
        s for s in statements if any(a.split(":")[0] in ("dynamodb", "sqs") for a in _actions(s))
    ]
    assert scoped, "no DynamoDB or SQS statement found"
    for statement in scoped:
        assert statement.get("Effect") == "Allow"
        resources = _as_list(statement.get("Resource"))
        assert resources, statement
        assert all(r != "*" for r in resources), f"wildcard resource: {statement}"
        assert all("*" not in a for a in _actions(statement)), f"wildcard action: {statement}"
    granted = {a for s in scoped for a in _actions(s)}
    assert {"dynamodb:GetRecords", "dynamodb:UpdateItem", "sqs:SendMessage"} <= granted
    table_arn = stack.output("table_arn")
    sqs_resources = {r for s in scoped for r in _as_list(s["Resource"]) if ":sqs:" in r}
    assert sqs_resources == {_queue_arn(stack, role)}
    ddb_resources = {r for s in scoped for r in _as_list(s["Resource"]) if ":dynamodb:" in r}
    assert all(r.startswith(table_arn) for r in ddb_resources), ddb_resources


def test_leftover_check_sees_every_resource_of_the_environment(stack: Stack) -> None:
    """The teardown's check must not be vacuous: while deployed it finds everything."""
    found = find_leftovers(stack.target, stack.prefix)
    kinds = sorted(line.split(" ", 1)[0] for line in found)
    assert kinds.count("table") == 1
    for kind in ("function", "queue", "role", "log"):
        assert kinds.count(kind) == 2, found
    assert sum(1 for line in found if line.startswith("event source mapping")) == 2, found
    assert kinds.count("alarm") == 12, found  # six per function (modules/monitoring)
    assert kinds.count("dashboard") == 1, found
    assert kinds.count("topic") == 1, found


def test_status_reads_a_healthy_deployment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """make status against the deployed stack: both mappings, their queues and all alarms."""
    endpoint = stack.target.endpoint
    if endpoint is not None:  # the tools get dummy credentials from the environment locally
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    target = deployment.Deployment(
        table=stack.table,
        endpoint_url=endpoint.endpoint_url if endpoint else None,
        region=stack.target.region,
    )
    found = status.collect(target, minutes=15)
    assert sorted(m.function for m in found.mappings) == sorted(stack.function_names.values())
    for mapping in found.mappings:
        assert mapping.state == "Enabled"
        assert mapping.failure_queue_depth == 0
        assert sorted(a.name.removeprefix(f"{mapping.function}-") for a in mapping.alarms) == [
            "errors",
            "failure-queue",
            "integrity",
            "iterator-age",
            "skipped-invalid",
            "throttles",
        ]


def test_views_and_votes_reach_the_summaries_end_to_end(stack: Stack) -> None:
    """Items written with boto3 as an application would; the functions run only through the
    event source mappings."""
    ddb = stack.client("dynamodb")
    table = stack.table
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ann, bob, clip = "e2e-ann", "e2e-bob", "e2e-clip"
    views = [
        model.view_item(ann, clip, d, base + timedelta(seconds=i))
        for i, d in enumerate((10, 20, 30))
    ]
    for item in views:
        ddb.put_item(TableName=table, Item=item)
    ddb.put_item(TableName=table, Item=model.vote_item(ann, clip, "LIKE"))
    ddb.put_item(TableName=table, Item=model.vote_item(bob, clip, "DISLIKE"))
    keys = {
        SummaryKey(SummaryKind.VIDEO, clip): Counters(3, 60, 1, 1),
        SummaryKey(SummaryKind.USER, ann): Counters(3, 60, 1, 0),
        SummaryKey(SummaryKind.USER, bob): Counters(0, 0, 0, 1),
    }
    timeout = 60.0 if stack.target.is_local else 180.0
    _wait_for_summaries(stack, keys, timeout)

    # A changed vote, a removed view, a removed vote.
    ddb.put_item(TableName=table, Item=model.vote_item(bob, clip, "LIKE"))
    ddb.delete_item(TableName=table, Key={k: views[0][k] for k in ("PK", "SK")})
    like = model.vote_item(ann, clip, "LIKE")
    ddb.delete_item(TableName=table, Key={k: like[k] for k in ("PK", "SK")})
    changed = {
        SummaryKey(SummaryKind.VIDEO, clip): Counters(2, 50, 1, 0),
        SummaryKey(SummaryKind.USER, ann): Counters(2, 50, 0, 0),
        SummaryKey(SummaryKind.USER, bob): Counters(0, 0, 1, 0),
    }
    _wait_for_summaries(stack, changed, timeout)
    record_figure("end to end", writes=8, summaries=len(changed))


@pytest.mark.aws
@pytest.mark.parametrize("role", FUNCTION_ROLES)
def test_aws_mapping_enabled_and_function_active(stack: Stack, role: str) -> None:
    """On AWS the states are real: the mapping polls the stream, the function is ready."""
    lam = stack.client("lambda")
    config = lam.get_function_configuration(FunctionName=stack.function_names[role])
    assert config["State"] == "Active"
    assert config["LastUpdateStatus"] == "Successful"
    mapping = lam.get_event_source_mapping(UUID=stack.mapping_uuids[role])
    assert mapping["State"] == "Enabled", mapping.get("StateTransitionReason")


# --- helpers ---------------------------------------------------------------------------------


def _wait_for_summaries(stack: Stack, expected: dict[SummaryKey, Counters], timeout: float) -> None:
    ddb = stack.client("dynamodb")
    seen: dict[SummaryKey, Counters] = {}

    def probe() -> bool:
        seen.update(get_summaries(ddb, stack.table, list(expected)))
        return seen == expected

    try:
        wait_until(probe, timeout, interval=0.2, what="the summaries")
    except AssertionError:
        assert seen == expected  # shows the difference
        raise


def _canonical(patterns: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(p, sort_keys=True) for p in patterns)


def _key_schema(schema: list[dict[str, str]]) -> dict[str, str]:
    return {k["AttributeName"]: k["KeyType"] for k in schema}


def _queue_arn(stack: Stack, role: str) -> str:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_urls[role], AttributeNames=["QueueArn"]
    )["Attributes"]
    return str(attributes["QueueArn"])


def _document(document: Any) -> dict[str, Any]:
    """IAM returns policy documents decoded (boto3) or URL-encoded JSON text."""
    if isinstance(document, str):
        return dict(json.loads(unquote(document)))
    return dict(document)


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for s in _as_list(document.get("Statement"))]


def _actions(statement: dict[str, Any]) -> list[str]:
    return [str(a) for a in _as_list(statement.get("Action"))]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
