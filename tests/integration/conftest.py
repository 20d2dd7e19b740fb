"""Integration fixtures: one ephemeral environment per test session.

``stack`` (session) applies tests/terraform/stack (the root module) with pytest-terraform:

* target: the session's private local endpoint (the ``local_endpoint`` fixture: a free port
  and a temporary state dir, never a deployment running beside the tests), or real AWS with
  ``VIDEO_STATS_TEST_TARGET=aws`` (skipped with a reason when no credentials are found);
* inputs through ``TF_VAR_*`` given to the terraform processes only: a unique name prefix
  ``it-<hex>``, the zip built from the current source into the session's temp dir, a 1 s
  batching window;
* teardown always destroys (pytest-terraform registers it before the apply; a failed apply
  destroys what it made), then fails the session if anything with the prefix is left.

Tests marked ``aws`` run only with ``VIDEO_STATS_TEST_TARGET=aws``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import BotoCoreError, ClientError
from it_support import (
    FIGURES,
    REPO_ROOT,
    STREAM_MAPPING,
    Stack,
    StackFixture,
    Target,
    aws_region,
    build_lambda_package,
    selected_target,
    set_faults,
    tf_var_object,
)
from py.path import local as py_path  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        target = selected_target()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    skip_aws = pytest.mark.skip(reason="runs only on AWS: opt in with VIDEO_STATS_TEST_TARGET=aws")
    for item in items:
        if target != "aws" and item.get_closest_marker("aws") is not None:
            item.add_marker(skip_aws)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("integration figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def it_target(request: pytest.FixtureRequest) -> Target:
    """The deployment target of this session (see the module docstring)."""
    name = selected_target()
    if name == "aws":
        if boto3.session.Session().get_credentials() is None:
            pytest.skip(
                "VIDEO_STATS_TEST_TARGET=aws but no AWS credentials found "
                "(set AWS_PROFILE or AWS_ACCESS_KEY_ID)"
            )
        target = Target("aws", aws_region())
        try:  # wrong credentials are a setup error, not a reason to skip
            target.client("sts", attempts=2).get_caller_identity()
        except (BotoCoreError, ClientError) as err:
            pytest.fail(f"VIDEO_STATS_TEST_TARGET=aws: the AWS credentials do not work: {err}")
        return target
    # Requested here, not as an argument, so that the AWS target never starts one.
    endpoint = request.getfixturevalue("local_endpoint")
    return Target("local", "us-east-1", endpoint)


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment zip of the current source (deterministic, about half a second), built
    into the session's temp dir so a stale build/lambda.zip is never tested and `make
    package` running beside the tests is never raced."""
    output = tmp_path_factory.mktemp("package") / "lambda.zip"
    package: Path = build_lambda_package(REPO_ROOT, output)
    return package


@pytest.fixture(scope="session")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    it_target: Target,
    lambda_package: Path,
) -> Stack:
    """The applied environment (one apply per session); destroyed at the end of the session."""
    prefix = f"it-{secrets.token_hex(4)}"
    fixture = StackFixture(request.config, py_path(str(HERE)))
    fixture.configure(
        it_target,
        prefix,
        {
            "TF_VAR_name_prefix": prefix,
            "TF_VAR_package_file": str(lambda_package),
            "TF_VAR_stream_mapping": tf_var_object(STREAM_MAPPING),
        },
    )
    module_dir = fixture.resolve_module_dir()
    work_dir = tmp_path_factory.mktemp("stack") / "work"
    fixture.runner = fixture.get_runner(module_dir, work_dir)
    if it_target.is_local:  # the endpoint is shared with other tests of the session
        set_faults_off(it_target)
    state = fixture.create(request, module_dir)  # init + apply; teardown registered first
    return Stack(prefix, it_target, state.outputs, fixture.runner, lambda_package)


def set_faults_off(target: Target) -> None:
    control = target.control
    assert control is not None
    control.set_faults(
        {
            "fail_invocation_rate": 0.0,
            "kill_mid_batch_rate": 0.0,
            "duplicate_batch_rate": 0.0,
            "seed": None,
        }
    )


@pytest.fixture
def no_faults(stack: Stack) -> Iterator[Stack]:
    """The stack with fault injection off (local), also after the test."""
    if stack.target.is_local:
        set_faults(stack)
    yield stack
    if stack.target.is_local:
        set_faults(stack)
