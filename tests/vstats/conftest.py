"""Fixtures of the operator-tool tests: a moto server of our own (the tools need nothing but an
endpoint), a fresh table with the stack's schema per test, and a stand-in stream consumer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from localcloud.endpoint_process import free_port
from moto.server import ThreadedMotoServer
from vstats_support import REGION, StreamConsumer, TableEnv, create_table


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials; none of the deployment variables leak in from the caller's shell."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "VIDEO_STATS_TABLE",
        "LOCALCLOUD_CONTROL_URL",
        "SUMMARY_INDEX_SHARDS",
        "CHECKOV_BIN",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def table(moto_endpoint: str) -> TableEnv:
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name=REGION)
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, region_name=REGION)
    name = f"vstats-{uuid.uuid4().hex[:10]}"
    arn = create_table(client, name)
    return TableEnv(moto_endpoint, name, client, streams, arn)


@pytest.fixture
def consumer(table: TableEnv) -> Iterator[StreamConsumer]:
    worker = StreamConsumer(table)
    yield worker
    worker.stop()
