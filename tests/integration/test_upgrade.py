"""A stack deployed by an earlier version upgrades in place to this one without drift (local
only, opt in: ``VIDEO_STATS_UPGRADE_FROM=<git commit> pytest tests/integration/test_upgrade.py``,
about five minutes).

The endpoint is this tree's local cloud throughout (it stands for AWS, which does not change
with the upgrade). The earlier version (``git archive``) is deployed to it with its own
Makefile and loaded, then this working tree is copied over it (the Terraform state stays) and
deployed:
the plan must update in place (nothing destroyed, the table kept), a second load must verify
exactly, ``make reconcile`` must find no drift, and a further deploy must change nothing.
Issue 12 changed the indexes (GSI1 INCLUDE, GSI2 on the views bucket) and the marks' format;
a874f69 is the last commit before it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from it_support import REPO_ROOT  # type: ignore[import-not-found]
from localcloud.testing import free_port

pytestmark = pytest.mark.integration

FROM = os.environ.get("VIDEO_STATS_UPGRADE_FROM")
LOAD = "--events 300 --rate 100 --users 40 --videos 20"


def _make(workdir: Path, port: int, *args: str) -> str:
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", *args, f"LOCAL_PORT={port}"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (
        f"make {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _copy_tree(source: Path, target: Path) -> None:
    """The working tree's tracked and untracked (not ignored) files, over ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        if (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)


@pytest.mark.skipif(FROM is None, reason="opt in with VIDEO_STATS_UPGRADE_FROM=<git commit>")
def test_an_earlier_stack_upgrades_in_place_without_drift(tmp_path: Path) -> None:
    assert FROM is not None
    workdir = tmp_path / "stack"
    workdir.mkdir()
    archive = subprocess.run(
        ["git", "archive", FROM], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    for venv in (".venv", ".venv-checkov"):
        (workdir / venv).symlink_to((REPO_ROOT / venv).resolve())
    port = free_port()
    try:
        # This tree's endpoint, in the state dir the Makefiles look at, so both reuse it.
        subprocess.run(
            [
                str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "localcloud", "up",
                "--state-dir", str(workdir / ".local" / "endpoint"), "--port", str(port),
            ],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts")},
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        _make(workdir, port, "deploy")
        assert "every touched summary is exact" in _make(workdir, port, "loadtest", f"ARGS={LOAD}")

        _copy_tree(REPO_ROOT, workdir)
        (workdir / "build" / "lambda.zip").unlink(missing_ok=True)  # archive times are old
        upgraded = _make(workdir, port, "deploy")
        assert "0 destroyed" in upgraded, upgraded[-2000:]
        assert "every touched summary is exact" in _make(workdir, port, "loadtest", f"ARGS={LOAD}")
        assert "No drift" in _make(workdir, port, "reconcile")
        assert "0 added, 0 changed, 0 destroyed" in _make(workdir, port, "deploy")
    finally:
        subprocess.run(
            ["make", "local-down", f"LOCAL_PORT={port}"],
            cwd=workdir,
            capture_output=True,
            check=False,
        )
