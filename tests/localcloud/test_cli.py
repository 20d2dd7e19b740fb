"""``python -m localcloud up|down|status`` and the control API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from localcloud.endpoint_process import LocalEndpoint, free_port
from localcloud.launcher import SCRIPTS_DIR
from localcloud.state import pid_alive, read_endpoint_info


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "localcloud", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def test_up_reuse_port_taken_down(tmp_path: Path) -> None:
    state, other = tmp_path / "a", tmp_path / "b"
    port = free_port()
    started = _cli("up", "--state-dir", str(state), "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"http://127.0.0.1:{port}"
        info = read_endpoint_info(state)
        assert info is not None
        assert pid_alive(info.pid)
        assert (state / "logs" / "moto.log").exists()

        again = _cli("up", "--state-dir", str(state), "--port", str(port))
        assert again.returncode == 0
        assert again.stdout.strip() == started.stdout.strip()
        reused = read_endpoint_info(state)
        assert reused is not None
        assert reused.pid == info.pid

        taken = _cli("up", "--state-dir", str(other), "--port", str(port))
        assert taken.returncode == 1
        assert len(taken.stderr.strip().splitlines()) == 1
        assert str(port) in taken.stderr

        assert _cli("status", "--state-dir", str(state)).returncode == 0
    finally:
        stopped = _cli("down", "--state-dir", str(state))
    assert stopped.returncode == 0
    assert not pid_alive(info.pid)
    assert read_endpoint_info(state) is None
    assert _cli("status", "--state-dir", str(state)).returncode == 1
    assert _cli("down", "--state-dir", str(state)).stdout.strip() == "localcloud: not running"


def test_up_refuses_a_port_held_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _cli("up", "--state-dir", str(tmp_path), "--port", str(port), "--timeout", "20")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "in use" in result.stderr


def _call(endpoint: LocalEndpoint, method: str, path: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(endpoint.control_url + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_control_api(local_endpoint: LocalEndpoint) -> None:
    assert local_endpoint.control("GET", "/health")["pid"] == local_endpoint.pid
    assert local_endpoint.control("GET", "/faults") == {
        "fail_invocation_rate": 0.0,
        "kill_mid_batch_rate": 0.0,
        "duplicate_batch_rate": 0.0,
        "replay_rate": 0.0,
        "seed": None,
        "fail_invocation_mode": "after",
        "clock_offset_seconds": 0.0,
        "describe_stream_throttle_rate": 0.0,
        "getrecords_empty_pages": 0,
        "gsi_lag_seconds": 0.0,
        "final_invoke_records": 0.0,
        "clock_skew_seconds": 0.0,
        "bisect_out_of_order": 0.0,
    }
    assert _call(local_endpoint, "PUT", "/faults", b'{"fail_invocation_rate": 3}') == 400
    assert _call(local_endpoint, "PUT", "/faults", b"not json") == 400
    assert _call(local_endpoint, "GET", "/nothing") == 404
    assert local_endpoint.control("GET", "/faults")["fail_invocation_rate"] == 0.0
    assert isinstance(local_endpoint.control("GET", "/drained")["drained"], bool)


def test_write_accounting(local_endpoint: LocalEndpoint) -> None:
    ddb = local_endpoint.client("dynamodb")
    table = "lc-writes"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "G", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    local_endpoint.control("POST", "/stats/reset")
    ddb.put_item(
        TableName=table, Item={"PK": {"S": "a"}, "G": {"S": "g"}, "big": {"S": "x" * 1500}}
    )
    ddb.update_item(
        TableName=table,
        Key={"PK": {"S": "b"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(
            TableName=table, Item={"PK": {"S": "b"}}, ConditionExpression="attribute_not_exists(PK)"
        )
    ddb.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": {"PK": {"S": f"c{i}"}}}} for i in range(3)]}
    )
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {"PK": {"S": "d"}}}},
            {"Delete": {"TableName": table, "Key": {"PK": {"S": "c0"}}}},
        ]
    )
    stats = json.loads(json.dumps(local_endpoint.control("GET", "/stats")["dynamodb"][table]))
    operations = stats["by_operation"]
    assert operations["PutItem"] == {"requests": 2, "items": 1, "write_request_units": 3}
    assert operations["UpdateItem"] == {"requests": 1, "items": 1, "write_request_units": 1}
    assert operations["BatchWriteItem"] == {"requests": 1, "items": 3, "write_request_units": 3}
    assert operations["TransactWriteItems"] == {"requests": 1, "items": 2, "write_request_units": 4}
    assert stats["write_requests"] == 5
    assert stats["write_request_units"] == 11
    assert stats["conditional_check_failures"] == 1
    assert stats["gsi_write_units"] == {"GSI1": 2}


def _health(state: Path) -> dict[str, object]:
    info = read_endpoint_info(state)
    assert info is not None
    with urllib.request.urlopen(f"{info.control_url}/health", timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def test_up_takes_stream_settings_and_applies_them_to_a_running_endpoint(tmp_path: Path) -> None:
    state, port = tmp_path / "s", str(free_port())
    flags = ("--stream-partitions", "2", "--shard-rotation-seconds", "7")
    started = _cli("up", "--state-dir", str(state), "--port", port, *flags)
    try:
        assert started.returncode == 0, started.stderr
        streams = _health(state)["streams"]
        assert streams == {
            "partitions": 2,
            "rotation_seconds": 7.0,
            "rotation_records": 0,
            "split_every": 0,
        }
        again = _cli(
            "up", "--state-dir", str(state), "--port", port, "--shard-rotation-seconds", "0"
        )
        assert again.returncode == 0, again.stderr
        assert _health(state)["streams"] == {**streams, "rotation_seconds": 0.0}
    finally:
        assert _cli("down", "--state-dir", str(state)).returncode == 0


def test_bad_stream_settings_are_one_line_errors(tmp_path: Path) -> None:
    bad_flag = _cli("up", "--state-dir", str(tmp_path), "--port", "1", "--stream-partitions", "0")
    assert bad_flag.returncode != 0
    assert "must be between 1 and 64" in bad_flag.stderr
    env = {
        **os.environ,
        "PYTHONPATH": str(SCRIPTS_DIR),
        "LOCALCLOUD_SHARD_ROTATION_SECONDS": "soon",
    }
    serve = subprocess.run(
        [sys.executable, "-m", "localcloud", "serve", "--state-dir", str(tmp_path), "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )
    assert serve.returncode == 1
    assert serve.stderr.strip().splitlines() == [
        "localcloud: LOCALCLOUD_SHARD_ROTATION_SECONDS must be a number, not 'soon'"
    ]


def test_stream_settings_through_the_control_api(local_endpoint: LocalEndpoint) -> None:
    document = local_endpoint.control("GET", "/streams")
    assert set(document) == {"defaults", "tables"}
    assert _call(local_endpoint, "PUT", "/streams", b'{"partitions": 0}') == 400
    assert _call(local_endpoint, "PUT", "/streams", b'{"shards": 2}') == 400
    assert _call(local_endpoint, "PUT", "/streams", b'{"table": 3}') == 400
    table = "cli-streams"
    settings = local_endpoint.control("PUT", "/streams", {"table": table, "partitions": 3})
    assert settings["tables"][table]["partitions"] == 3
    assert settings["defaults"] == document["defaults"]  # one table's, not the defaults
    ddb = local_endpoint.client("dynamodb")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    ddb.put_item(TableName=table, Item={"PK": {"S": "a"}})
    stream = local_endpoint.control("GET", "/streams")["tables"][table]
    assert (stream["open_shards"], stream["closed_shards"], stream["generations"]) == (3, 0, 1)
    assert stream["summary_items"] == 0
    assert local_endpoint.control("POST", "/streams/rotate", {"table": table}) == {
        "rotated": {table: 1}
    }
    stream = local_endpoint.control("GET", "/streams")["tables"][table]
    assert (stream["open_shards"], stream["closed_shards"], stream["generations"]) == (3, 1, 2)
