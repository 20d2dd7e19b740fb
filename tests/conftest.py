"""Shared fixtures.

``local_endpoint`` (session): a private local AWS endpoint (moto server + stream engine +
control API, ``python -m localcloud serve``) on a free port with a temporary state dir. It
never touches a deployment running beside the tests and sets nothing globally: build
clients with ``local_endpoint.client("dynamodb")`` or
``localcloud.endpoint_process.aws_client(service, local_endpoint.endpoint_url)`` (dummy credentials,
us-east-1). ``local_endpoint.control(method, path, body)`` calls the control API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localcloud.endpoint_process import EndpointProcess, LocalEndpoint


@pytest.fixture(scope="session")
def local_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    process = EndpointProcess(tmp_path_factory.mktemp("localcloud"))
    endpoint = process.start()
    try:
        yield endpoint
    finally:
        process.stop()
