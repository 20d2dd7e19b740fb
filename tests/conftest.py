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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as ``slow`` every test that needs a local endpoint (moto server + engine) or
    deploys with Terraform: ``make test-fast`` runs the rest (``-m "not slow"``)."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.get_closest_marker("integration"):
            # One worker runs every test of the deployed stack: the stack is session-scoped,
            # and a second worker would deploy a second one (pytest-xdist's --dist loadgroup).
            item.add_marker(pytest.mark.xdist_group("integration"))
        if "local_endpoint" in fixtures or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.slow)
