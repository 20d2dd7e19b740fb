"""scripts/tf fails with one clear line when a tool or the endpoint is missing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TF = Path(__file__).resolve().parents[2] / "scripts" / "tf"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TF), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_terraform_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = _run(["none", "version"], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: terraform not found on PATH: install Terraform >= 1.7 "
        "(https://developer.hashicorp.com/terraform/install)"
    ]


def test_old_terraform_is_rejected(tmp_path: Path) -> None:
    fake = tmp_path / "terraform"
    fake.write_text("#!/bin/sh\necho 'Terraform v1.5.7'\n")
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = _run(["none", "version"], env)
    assert result.returncode == 1
    assert "terraform 1.5.7 is too old" in result.stderr


def test_local_target_needs_the_endpoint(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOCAL_ENDPOINT_URL"}
    result = _run(["local", "version"], env)
    assert result.returncode == 1
    assert "make local-up" in result.stderr


def test_unknown_target_prints_usage() -> None:
    result = _run(["prod", "plan"], dict(os.environ))
    assert result.returncode == 1
    assert "usage: scripts/tf local|aws|none" in result.stderr


@pytest.mark.parametrize("target", ["local"])
def test_local_target_replaces_real_credentials(tmp_path: Path, target: str) -> None:
    fake = tmp_path / "terraform"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo "Terraform v1.11.4"; exit 0; fi\n'
        'echo "$AWS_ACCESS_KEY_ID $AWS_ENDPOINT_URL ${AWS_PROFILE:-none}"\n'
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_PROFILE": "production",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "LOCAL_ENDPOINT_URL": "http://127.0.0.1:1",
    }
    result = _run([target, "show"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "test http://127.0.0.1:1 none"


def test_chdir_reaches_terraform_and_the_workspace_selection(tmp_path: Path) -> None:
    """`scripts/tf local -chdir=deploy plan` (the Makefile's form): the workspace of the
    target is selected in that folder, and terraform gets -chdir before the subcommand."""
    calls = tmp_path / "calls"
    fake = tmp_path / "terraform"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo "Terraform v1.11.4"; exit 0; fi\n'
        f'echo "$*" >> {calls}\n'
    )
    fake.chmod(0o755)
    config = tmp_path / "deploy"
    (config / ".terraform").mkdir(parents=True)
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LOCAL_ENDPOINT_URL": "http://127.0.0.1:1",
    }
    result = _run(["local", f"-chdir={config}", "plan", "-input=false"], env)
    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        f"-chdir={config} workspace select -or-create=true local",
        f"-chdir={config} plan -input=false",
    ]
