"""Is the local engine the bottleneck? ``python -m benchmark engine [--records N] [--window S]``

1. Raw write rate: writers put items into a table with a stream and no mapping.
2. Engine: the same writes into a table whose stream feeds a function (the project's view
   filters, batch size 1000, the given batching window) whose handler does nothing; the
   engine throughput is records delivered per second from the first write until the
   endpoint reports drained; the delay of each record (write to invocation) comes from
   ``/stats``.

Starts a private endpoint unless ``--control-url`` and ``--endpoint-url`` are given.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

from localcloud.endpoint_process import (
    LAMBDA_TRUST_POLICY,
    EndpointProcess,
    LocalEndpoint,
    aws_client,
)
from vstats import cli
from vstats.filter_patterns import filter_criteria

HANDLER = "def handler(event, context):\n    return None\n"


def create_keys_only_table(ddb: Any, name: str) -> None:
    """A table with the data model's keys and a NEW_AND_OLD_IMAGES stream, no index: what the
    engine and endpoint benchmarks (and their tests) need of the real one."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def _table(endpoint: LocalEndpoint) -> tuple[str, str]:
    ddb = endpoint.client("dynamodb")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    create_keys_only_table(ddb, name)
    return name, ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def _write(endpoint: LocalEndpoint, table: str, records: int, writers: int) -> tuple[float, float]:
    """Puts ``records`` view-like items with ``writers`` threads; returns (start, end)."""
    counter = iter(range(records))
    lock = threading.Lock()

    def work() -> None:
        ddb = aws_client("dynamodb", endpoint.endpoint_url)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            ddb.put_item(
                TableName=table,
                Item={
                    "PK": {"S": f"USER#u{i % 97}"},
                    "SK": {"S": f"VIDEO#v{i % 31}#VIEW#{i:08d}"},
                    "type": {"S": "VIEW"},
                    "userId": {"S": f"u{i % 97}"},
                    "videoId": {"S": f"v{i % 31}"},
                    "duration": {"N": str(30 + i % 600)},
                },
            )

    threads = [threading.Thread(target=work) for _ in range(writers)]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return start, time.time()


def measure(endpoint: LocalEndpoint, records: int, writers: int, window: int) -> dict[str, Any]:
    raw_table, _ = _table(endpoint)
    start, end = _write(endpoint, raw_table, records, writers)
    raw_rate = records / (end - start)

    table, stream_arn = _table(endpoint)
    lam, iam = endpoint.client("lambda"), endpoint.client("iam")
    role = iam.create_role(RoleName=table, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"][
        "Arn"
    ]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("app.py", HANDLER)
    function = lam.create_function(
        FunctionName=table, Runtime="python3.12", Role=role, Handler="app.handler",
        Code={"ZipFile": archive.getvalue()}, Timeout=30,
    )  # fmt: skip
    mapping = lam.create_event_source_mapping(
        FunctionName=function["FunctionArn"], EventSourceArn=stream_arn,
        StartingPosition="LATEST", BatchSize=1000, MaximumBatchingWindowInSeconds=window,
        FilterCriteria=filter_criteria("VIEW"),  # the deployed views filters
    )["UUID"]  # fmt: skip
    endpoint.wait_drained(60)
    start, end = _write(endpoint, table, records, writers)
    endpoint.wait_drained(600)
    drained = time.time()
    stats = endpoint.control("GET", "/stats")[mapping]
    lam.delete_event_source_mapping(UUID=mapping)
    delivered = stats["records_delivered"]
    return {
        "records": records,
        "writers": writers,
        "window_seconds": window,
        "raw_write_rate": round(raw_rate, 1),
        "write_rate_with_engine": round(records / (end - start), 1),
        "engine_records_per_second": round(delivered / (drained - start), 1),
        "engine_vs_raw": round(delivered / (drained - start) / raw_rate, 3),
        "drain_after_last_write_seconds": round(drained - end, 2),
        "invocations": stats["invocations"],
        "delay_seconds": stats["delay_seconds"],
        "delay_budget_seconds": window + 1,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=cli.positive_int, default=3000)
    parser.add_argument("--writers", type=cli.positive_int, default=4)
    parser.add_argument("--window", type=int, nargs="*", default=[1, 5])
    parser.add_argument("--endpoint-url")
    parser.add_argument("--control-url")


def run(args: argparse.Namespace) -> int:
    process = None
    if args.endpoint_url and args.control_url:
        endpoint = LocalEndpoint(args.endpoint_url, args.control_url, Path("."), 0)
    else:
        process = EndpointProcess(Path(tempfile.mkdtemp(prefix="benchmark-engine-")))
        endpoint = process.start()
    try:
        for window in args.window:
            print(json.dumps(measure(endpoint, args.records, args.writers, window)), flush=True)
    finally:
        if process is not None:
            process.stop()
    return 0
