"""The bench's Terraform adapter: reading a root module's default with ``terraform console``
(real terraform: a throwaway module, and the repository's root module); the designs' stacks,
deployed and destroyed in parallel (a stand-in Terraform)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import cast

import pytest
from benchmark.deploy import (
    REPO_ROOT,
    Stack,
    Terraform,
    deploy_stacks,
    design_stacks,
    destroy_stacks,
    measured_stream_mapping,
    parse_console_json,
)
from benchmark.projection import Batching
from vstats.cli import ToolError

needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform")
# The console evaluates the configuration only: nothing listens here.
UNUSED_ENDPOINT = "http://127.0.0.1:9"


def test_console_json_is_a_quoted_json_string() -> None:
    printed = '"{\\"batch_size\\":1000,\\"starting_position\\":\\"TRIM_HORIZON\\"}"\n'
    assert parse_console_json(printed, "x") == {
        "batch_size": 1000,
        "starting_position": "TRIM_HORIZON",
    }
    assert parse_console_json('\n"[1,2]"\n\n', "x") == [1, 2]


@pytest.mark.parametrize("printed", ["", "{\n  a = 1\n}", '"not json"', "(known after apply)"])
def test_console_output_that_is_not_json_is_one_line(printed: str) -> None:
    with pytest.raises(ToolError, match=r"for var\.v of ours, not JSON") as caught:
        parse_console_json(printed, "var.v of ours")
    assert "\n" not in str(caught.value)


def test_the_measured_window_is_an_hcl_object_of_one_attribute() -> None:
    assert measured_stream_mapping(5) == "{maximum_batching_window_in_seconds=5}"


@needs_terraform
def test_configured_default_ignores_the_stacks_value_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(
        'variable "name_prefix" {\n  type = string\n}\n'
        'variable "stream_mapping" {\n'
        "  type = object({\n"
        "    window = optional(number, 300)\n"
        "    size   = optional(number, 1000)\n"
        "  })\n"
        "  default = {}\n"
        "}\n"
    )
    # A caller's environment (the Makefile's local window) must not leak into the read.
    monkeypatch.setenv("TF_VAR_stream_mapping", "{window=3}")
    stack = Stack("ours", module, {"name_prefix": "x", "stream_mapping": "{window=5}"},
                  tmp_path / "work")  # fmt: skip
    terraform = Terraform(UNUSED_ENDPOINT, tmp_path / "logs")
    terraform.init(stack)
    # name_prefix is required: the stack's other variables are passed.
    assert terraform.configured_default(stack, "stream_mapping") == {"window": 300, "size": 1000}
    assert not (tmp_path / "work" / "no-state.tfstate").exists()
    assert list(module.iterdir()) == [module / "main.tf"]


@needs_terraform
def test_the_root_modules_stream_mapping_default_is_a_batching(tmp_path: Path) -> None:
    window = 7
    stack = Stack(
        "ours",
        REPO_ROOT,
        {"name_prefix": "bench-test", "stream_mapping": measured_stream_mapping(window)},
        tmp_path / "work",
    )
    terraform = Terraform(UNUSED_ENDPOINT, tmp_path / "logs")
    terraform.init(stack)
    production = terraform.configured_default(stack, "stream_mapping")
    Batching.from_stream_mapping(production)  # every attribute the projection needs
    # The measured run's -var sets the window only; everything else keeps the default.
    printed = terraform.run(
        stack,
        "console-measured",
        ["console", f"-state={stack.work_dir / 'no-state.tfstate'}", *terraform._var_args(stack)],
        stdin=b"jsonencode(var.stream_mapping)\n",
    )
    measured = parse_console_json(printed, "the measured stream_mapping")
    assert measured == {**production, "maximum_batching_window_in_seconds": window}


class StandInTerraform:
    """Records what the stack helpers ask of Terraform (unit tests: no terraform runs)."""

    def __init__(self, production: object, failing: frozenset[str] = frozenset()) -> None:
        self.production = production
        self.failing = failing
        self.calls: list[str] = []

    def deploy(self, stack: Stack) -> dict[str, str]:
        self.calls.append(f"deploy {stack.key}")
        return {"table_name": f"{stack.key}-table"}

    def init(self, stack: Stack) -> None:
        self.calls.append(f"init {stack.key}")

    def apply(self, stack: Stack) -> dict[str, str]:
        self.calls.append(f"apply {stack.key}")
        return {"table_name": f"{stack.key}-table"}

    def configured_default(self, stack: Stack, variable: str) -> object:
        self.calls.append(f"console {stack.key} {variable}")
        return self.production

    def destroy(self, stack: Stack) -> None:
        if stack.key in self.failing:
            raise ToolError(f"terraform destroy of {stack.key} failed: boom")
        self.calls.append(f"destroy {stack.key}")


def test_design_stacks_deploy_both_and_read_the_production_mapping_beside_ours(
    tmp_path: Path,
) -> None:
    zips = {"baseline": tmp_path / "reference.zip", "ours": tmp_path / "ours.zip"}
    stacks = design_stacks(zips, tmp_path, batching_window=5)
    assert [s.config_dir for s in stacks.values()] == [REPO_ROOT / "bench" / "reference", REPO_ROOT]
    assert stacks["ours"].variables["stream_mapping"] == measured_stream_mapping(5)
    assert stacks["ours"].variables["deletion_protection"] == "false"
    assert "stream_mapping" not in stacks["baseline"].variables
    stand_in = StandInTerraform({"batch_size": 1000})
    deployed = deploy_stacks(cast(Terraform, stand_in), stacks)
    assert deployed.outputs == {
        "baseline": {"table_name": "baseline-table"},
        "ours": {"table_name": "ours-table"},
    }
    assert deployed.production_mapping == {"batch_size": 1000}
    assert sorted(stand_in.calls) == [
        "apply ours",
        "console ours stream_mapping",
        "deploy baseline",
        "init ours",
    ]


def test_a_production_mapping_that_is_not_an_object_fails_the_deploy(tmp_path: Path) -> None:
    stacks = design_stacks({"ours": tmp_path / "ours.zip"}, tmp_path, batching_window=5)
    with pytest.raises(ToolError, match=r"var\.stream_mapping of the root module is None"):
        deploy_stacks(cast(Terraform, StandInTerraform(None)), stacks)


def test_a_failed_destroy_is_one_line_and_the_other_stack_is_still_destroyed(
    tmp_path: Path,
) -> None:
    zips = {"baseline": tmp_path / "reference.zip", "ours": tmp_path / "ours.zip"}
    stacks = design_stacks(zips, tmp_path, batching_window=5)
    stand_in = StandInTerraform({}, failing=frozenset({"baseline"}))
    failures = destroy_stacks(cast(Terraform, stand_in), stacks)
    assert failures == ["terraform destroy of baseline failed: boom"]
    assert stand_in.calls == ["destroy ours"]
