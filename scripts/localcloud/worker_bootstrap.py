"""Entry point of a function worker: ``python -S worker_bootstrap.py <handler>``.

Runs inside the worker process, before and around the real awslambdaric:

* removes this file's directory from ``sys.path`` so that the function's own modules cannot
  be shadowed by the engine's;
* exits when the engine process is gone (no orphaned workers);
* fault injection: after each ``next`` it asks the Runtime API whether this invocation is
  armed (``GET /2018-06-01/localcloud/invocation/<id>`` -> ``{"kill_after_writes": k}``);
  a hook on botocore counts the DynamoDB writes the handler completes in the invocation and
  calls ``os._exit(137)`` after the k-th, i.e. after part of its updates are written.

Standard library, boto3 and awslambdaric only: this file runs with the function's view of
the world (``-S``, ``PYTHONPATH`` = task root + runtime packages).
"""

# ruff: noqa: PLC0415  (imports wait until sys.path is the function's)
from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


class _Armed:
    kill_after: int | None = None
    writes = 0


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _install_write_hook() -> None:
    import botocore.client

    client_class: Any = botocore.client.BaseClient
    original = client_class._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        result = original(self, operation_name, api_params)
        if (
            _Armed.kill_after is not None
            and operation_name in DYNAMODB_WRITES
            and self.meta.service_model.service_name == "dynamodb"
        ):
            _Armed.writes += 1
            if _Armed.writes >= _Armed.kill_after:
                sys.stdout.flush()
                print(
                    f"localcloud: fault injection killed the worker after {_Armed.writes} "
                    "DynamoDB write(s)",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(137)
        return result

    client_class._make_api_call = _make_api_call


def _arm(api: str, request_id: str | None) -> None:
    _Armed.kill_after = None
    _Armed.writes = 0
    if not request_id:
        return
    url = f"http://{api}/2018-06-01/localcloud/invocation/{request_id}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            _Armed.kill_after = json.loads(response.read()).get("kill_after_writes")
    except (OSError, ValueError):
        _Armed.kill_after = None


def main() -> None:
    handler = sys.argv[1]
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    parent = int(os.environ.get("LOCALCLOUD_PARENT_PID") or os.getppid())
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _install_write_hook()

    from awslambdaric import lambda_runtime_client
    from awslambdaric.__main__ import main as ric_main

    runtime_client_class: Any = lambda_runtime_client.BaseLambdaRuntimeClient
    wait_next = runtime_client_class.wait_next_invocation

    def wait_next_invocation(self: Any) -> Any:
        request = wait_next(self)
        _arm(api, request.invoke_id)
        return request

    runtime_client_class.wait_next_invocation = wait_next_invocation
    ric_main([sys.argv[0], handler])


if __name__ == "__main__":
    main()
