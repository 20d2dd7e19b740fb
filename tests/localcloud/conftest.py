"""Fixtures of the engine tests (see lc_support.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from lc_support import Pipeline, create_table, function_zip
from localcloud.endpoint_process import LAMBDA_TRUST_POLICY, LocalEndpoint
from localcloud.faults import FaultConfig

# The source table's stream: 4 partitions (the endpoint's default) and no rotation unless a
# test says otherwise with @pytest.mark.stream(partitions=..., rotation_records=..., ...).
# Tests whose asserted batches depend on every record sharing one shard say partitions=1.
DEFAULT_STREAM = {"partitions": 4, "rotation_seconds": 0, "rotation_records": 0, "split_every": 0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stream(**settings): the pipeline's stream settings (see conftest.py)"
    )


@pytest.fixture
def pipeline(request: pytest.FixtureRequest, local_endpoint: LocalEndpoint) -> Iterator[Pipeline]:
    name = f"lc-{uuid.uuid4().hex[:10]}"
    marker = request.node.get_closest_marker("stream")
    settings = {**DEFAULT_STREAM, **(marker.kwargs if marker else {})}
    local_endpoint.control("PUT", "/streams", {"table": name, **settings})
    ddb, lam = local_endpoint.client("dynamodb"), local_endpoint.client("lambda")
    sqs, iam = local_endpoint.client("sqs"), local_endpoint.client("iam")
    create_table(ddb, name, stream=True)
    create_table(ddb, f"{name}-log", stream=False)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"][
        "Arn"
    ]
    function = lam.create_function(
        FunctionName=f"{name}-fn",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": function_zip()},
        Timeout=5,
        Environment={"Variables": {"LOG_TABLE": f"{name}-log"}},
    )
    queue_url = sqs.create_queue(QueueName=f"{name}-on-failure")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    result = Pipeline(
        endpoint=local_endpoint,
        name=name,
        table=name,
        log_table=f"{name}-log",
        stream_arn=ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"],
        function_arn=function["FunctionArn"],
        queue_url=queue_url,
        queue_arn=queue_arn,
        ddb=ddb,
        lam=lam,
        sqs=sqs,
        streams=local_endpoint.client("dynamodbstreams"),
    )
    try:
        yield result
    finally:
        for mapping_uuid in result.mappings:
            with contextlib.suppress(ClientError):  # the test deleted it already
                lam.delete_event_source_mapping(UUID=mapping_uuid)
        local_endpoint.control("PUT", "/faults", FaultConfig().to_json())  # every fault off
