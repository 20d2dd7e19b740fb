"""The root module as a child module, planned by real Terraform and the real provider (no
endpoint, no credentials: the provider is told to call no API, and a plan of new resources
calls none): two instances with for_each, and every input the module passes through reaches
the planned resources — tags on every resource that takes tags, the table's PITR and KMS key,
the functions' architecture, memory, timeout and log retention.

terraform test (tests/module.tftest.hcl) cannot see resources inside the module's submodules;
``terraform show -json`` of a saved plan can.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # terraform init + plan: about 20 s

REPO_ROOT = Path(__file__).resolve().parents[2]
TF = REPO_ROOT / "scripts" / "tf"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The resources of one stack that take no tags (the provider's schema has no tags argument).
UNTAGGABLE = {"aws_iam_role_policy", "aws_sns_topic_policy", "aws_cloudwatch_dashboard"}

CALLER = """
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
}

module "stack" {
  source   = "%(module)s"
  for_each = toset(["blue", "green"])

  name_prefix            = "plan-${each.key}"
  package_file           = "%(zip)s"
  tags                   = { CostCenter = "cc-${each.key}" }
  point_in_time_recovery = false
  table_kms_key_arn      = "%(key)s"
  lambda_architecture    = "x86_64"
  lambda_memory_size     = 512
  lambda_timeout         = 120
  log_retention_days     = 14
}
"""


def _terraform(config: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_VAR_", "AWS_"))}
    env["TF_DATA_DIR"] = str(config / ".terraform")
    done = subprocess.run(
        [str(TF), "none", f"-chdir={config}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"terraform {args[0]}: {done.stderr[-3000:]}"
    return done.stdout


def _resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _resources(child)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The managed resources of the plan, from ``terraform show -json``."""
    config = tmp_path_factory.mktemp("caller")
    package = config / "lambda.zip"
    with zipfile.ZipFile(package, "w") as archive:  # the plan only hashes the file
        archive.writestr("video_stats/__init__.py", "")
    (config / "main.tf").write_text(CALLER % {"module": REPO_ROOT, "zip": package, "key": KMS_KEY})
    _terraform(config, "init", "-input=false", "-no-color")
    _terraform(config, "plan", "-input=false", "-no-color", f"-out={config / 'tfplan'}")
    plan = json.loads(_terraform(config, "show", "-json", str(config / "tfplan")))
    # A resource whose every value is unknown until apply (the topic policy) has no "values".
    return [
        {"values": {}, **r}
        for r in _resources(plan["planned_values"]["root_module"])
        if r["mode"] == "managed"
    ]


def _instance(resource: dict[str, Any]) -> str:
    return str(resource["address"]).split('"')[1]  # module.stack["blue"]. ... -> blue


def test_two_instances_plan_the_same_resources_under_distinct_names(
    planned: list[dict[str, Any]],
) -> None:
    per_instance = Counter(_instance(r) for r in planned)
    assert set(per_instance) == {"blue", "green"}
    assert per_instance["blue"] == per_instance["green"] == len(planned) // 2
    names = [
        (r["type"], r["values"].get(field))
        for r in planned
        for field in ("name", "function_name", "alarm_name", "dashboard_name")
        if r["values"].get(field)
    ]
    assert len(names) == 50  # all but the mappings and topic policies (4 + 2): they have none
    duplicates = [name for name, n in Counter(names).items() if n > 1]
    assert not duplicates, f"two instances share resource names: {duplicates}"


def test_tags_reach_every_resource_that_takes_tags(planned: list[dict[str, Any]]) -> None:
    tagged = [r for r in planned if "tags" in r["values"]]
    untagged = {r["type"] for r in planned if "tags" not in r["values"]}
    assert untagged <= UNTAGGABLE, f"resources without a tags argument: {untagged - UNTAGGABLE}"
    wrong = [
        r["address"]
        for r in tagged
        if (r["values"]["tags"] or {}).get("CostCenter") != f"cc-{_instance(r)}"
    ]
    assert not wrong, f"without the caller's tags: {wrong}"
    kinds = Counter(r["type"] for r in tagged if _instance(r) == "blue")
    # One table; per function (2) its role, log group, function, queue and mapping; per
    # function six alarms; one alarm topic.
    assert kinds == {
        "aws_dynamodb_table": 1,
        "aws_iam_role": 2,
        "aws_cloudwatch_log_group": 2,
        "aws_lambda_function": 2,
        "aws_sqs_queue": 2,
        "aws_lambda_event_source_mapping": 2,
        "aws_cloudwatch_metric_alarm": 12,
        "aws_sns_topic": 1,
    }


def test_pass_through_inputs_reach_the_table_and_the_functions(
    planned: list[dict[str, Any]],
) -> None:
    tables = [r["values"] for r in planned if r["type"] == "aws_dynamodb_table"]
    assert [t["point_in_time_recovery"][0]["enabled"] for t in tables] == [False, False]
    assert [t["server_side_encryption"][0]["kms_key_arn"] for t in tables] == [KMS_KEY] * 2
    functions = [r["values"] for r in planned if r["type"] == "aws_lambda_function"]
    assert len(functions) == 4
    assert {(tuple(f["architectures"]), f["memory_size"], f["timeout"]) for f in functions} == {
        (("x86_64",), 512, 120)
    }
    groups = [r["values"] for r in planned if r["type"] == "aws_cloudwatch_log_group"]
    assert [g["retention_in_days"] for g in groups] == [14] * 4
