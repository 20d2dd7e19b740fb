"""The checkov scan of a Terraform JSON plan (``make plan``, through ``vstats.plan_review``):
run checkov with the repository's skip file (``.checkov.yaml``, every skipped check with a
one-line reason), count what passed and failed, and render the verdict.

checkov pins its own versions of boto3 and friends, so it is found in a venv of its own
(``.venv-checkov``, the Makefile's), or as ``--checkov``/``$CHECKOV_BIN``/PATH says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text

from vstats import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SKIP_FILE = REPO_ROOT / ".checkov.yaml"
CHECKOV_ENV = "CHECKOV_BIN"
SEPARATE_VENV_CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
INSTALL_HINT = "`python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30`"
_SKIP_LINE = re.compile(r"^\s*-\s*['\"]?(?P<id>[A-Z][A-Z0-9_]+)['\"]?\s*(?:#\s*(?P<reason>.*))?$")


@dataclass(frozen=True, slots=True)
class Skip:
    check: str
    reason: str


@dataclass(slots=True)
class Scan:
    ran: bool
    passed: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # id, resource, name
    skips: list[Skip] = field(default_factory=list)
    version: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.ran and self.error is None and not self.failed


def read_skips(path: Path) -> list[Skip]:
    """The skip list with its one-line reasons (``- CKV_AWS_50  # why``); every entry needs one."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise cli.ToolError(f"cannot read the checkov skip file {path}: {exc.strerror}") from None
    skips: list[Skip] = []
    in_list = False
    for number, line in enumerate(lines, 1):
        if re.match(r"^skip-check\s*:", line):
            in_list = True
            continue
        if in_list and line and not line[0].isspace() and not line.startswith("#"):
            in_list = False
        if not in_list:
            continue
        match = _SKIP_LINE.match(line)
        if not match:
            continue
        reason = (match.group("reason") or "").strip()
        if not reason:
            raise cli.ToolError(f"{path}:{number}: skipped check {match.group('id')} has no reason")
        skips.append(Skip(match.group("id"), reason))
    return skips


def find_checkov(explicit: str | None) -> str | None:
    for candidate in (explicit, os.environ.get(CHECKOV_ENV)):
        if candidate:
            return candidate
    if SEPARATE_VENV_CHECKOV.exists():
        return str(SEPARATE_VENV_CHECKOV)
    return shutil.which("checkov")


def run_checkov(
    binary: str, plan_path: Path, skip_file: Path, out_file: Path | None, timeout: float = 600
) -> Scan:
    skips = read_skips(skip_file)
    command = [binary, "-f", str(plan_path), "--config-file", str(skip_file), "-o", "json"]
    command += ["--framework", "terraform_plan", "--skip-download"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return Scan(ran=False, skips=skips, error=f"checkov not found at {binary}")
    except subprocess.TimeoutExpired:
        return Scan(ran=False, skips=skips, error=f"checkov did not finish in {timeout:g} s")
    if out_file is not None:
        out_file.write_text(done.stdout)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        tail = cli.one_line(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
        return Scan(
            ran=False, skips=skips, error=f"checkov failed (exit {done.returncode}): {tail}"
        )
    reports = report if isinstance(report, list) else [report]
    scan = Scan(ran=True, skips=skips)
    for part in reports:
        summary = part.get("summary") or part
        scan.version = summary.get("checkov_version") or scan.version
        scan.passed += int(summary.get("passed", 0))
        for failed in (part.get("results") or {}).get("failed_checks") or []:
            scan.failed.append(
                (
                    str(failed.get("check_id")),
                    str(failed.get("resource")),
                    str(failed.get("check_name")),
                )
            )
        if int(summary.get("parsing_errors", 0)):
            scan.error = f"checkov could not parse {plan_path}"
    if done.returncode != 0 and not scan.failed and scan.error is None:
        scan.error = f"checkov exited with status {done.returncode}"
    return scan


def render_scan(scan: Scan, skip_file: Path) -> list[Text]:
    lines = [Text(""), Text("Security scan (checkov):", style="bold")]
    if not scan.ran:
        lines.append(Text(f"  NOT RUN: {scan.error}", style="bold red"))
        return lines
    version = f" {scan.version}" if scan.version else ""
    verdict = Text(
        f"  checkov{version}: {scan.passed} passed, {len(scan.failed)} failed, "
        f"{len(scan.skips)} skipped by {skip_file.name}",
        style="red" if scan.failed else "green",
    )
    lines.append(verdict)
    for check, resource, name in scan.failed:
        lines.append(Text(f"  FAILED {check} {resource}: {name}", style="red"))
    if scan.error:
        lines.append(Text(f"  {scan.error}", style="red"))
    for skip in scan.skips:
        lines.append(Text(f"  skipped {skip.check}: {skip.reason}", style="dim"))
    return lines


def scan_plan(explicit: str | None, plan_path: Path, skip_file: Path, out_file: Path) -> Scan:
    """The scan of ``plan_path`` with the checkov ``find_checkov`` finds (``explicit`` first);
    not run, with the way to install it, when there is none."""
    binary = find_checkov(explicit)
    if binary is None:
        return Scan(
            ran=False,
            skips=read_skips(skip_file),
            error=f"checkov not found: install it with {INSTALL_HINT}",
        )
    return run_checkov(binary, plan_path, skip_file, out_file)
