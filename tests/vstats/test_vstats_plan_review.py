"""plan_review and checkov_scan: the summary of a plan that replaces the table (and a mapping),
a no-change plan, the checkov gate (a stand-in checkov, and the real one when installed) and the
skip file."""

from __future__ import annotations

import json
import os
import stat
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from vstats import checkov_scan, plan_review

FIXTURES = Path(__file__).parent / "fixtures"
REPLACE = FIXTURES / "plan_replace_table.json"
NO_CHANGES = FIXTURES / "plan_no_changes.json"
CREATE_STACK = FIXTURES / "plan_create_stack.json"


def test_table_replacement_is_called_out_as_data_loss(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan_review.main([str(REPLACE), "--no-scan", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    summary = (tmp_path / "summary.txt").read_text()
    for text in (out, summary):
        assert "Plan: 1 to create, 1 to update in place, 2 to replace, 1 to destroy." in text
        assert "!! DATA LOSS !! module.table.aws_dynamodb_table.this" in text
        assert "table video-stats-data will be REPLACED" in text
        assert "forced by: range_key" in text
        assert "!! STREAM POSITION LOST !!" in text
        assert "mapping of video-stats-update-views will be REPLACED" in text
        assert "starts reading at TRIM_HORIZON" in text
        assert "!! CAUTION !!" in text
        assert "(forces replacement: range_key)" in text
        assert "(changes: environment)" in text
        assert "aws_iam_role" not in text  # no-op resources are not listed
    assert "\x1b[" not in summary  # the file is plain text


def test_fail_on_data_loss(tmp_path: Path) -> None:
    argv = [str(REPLACE), "--no-scan", "--output-dir", str(tmp_path), "--fail-on-data-loss"]
    assert plan_review.main(argv) == 1
    quiet = [str(NO_CHANGES), "--no-scan", "--output-dir", str(tmp_path), "--fail-on-data-loss"]
    assert plan_review.main(quiet) == 0


def test_no_change_plan_reports_no_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan_review.main([str(NO_CHANGES), "--no-scan", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No changes.")
    assert "!!" not in out
    assert (tmp_path / "summary.txt").read_text().startswith("No changes.")


def test_review_classifies_every_action() -> None:
    plan = json.loads(REPLACE.read_text())
    result = plan_review.review(plan)
    actions = {c.address.split(".")[-2]: c.action for c in result.changes}
    assert actions == {
        "aws_dynamodb_table": "replace",
        "aws_lambda_event_source_mapping": "replace",
        "aws_lambda_function": "update",
        "aws_iam_role": "no-op",
        "aws_sqs_queue": "delete",
        "aws_cloudwatch_log_group": "create",
    }
    assert result.loses_data
    assert result.outputs == {"stream_arn": "update"}
    assert plan_review.classify(["create", "delete"]) == "replace"  # create_before_destroy
    assert plan_review.classify(["forget"]) == "forget"


def fake_checkov(tmp_path: Path, report: Mapping[str, object], status: int) -> Path:
    script = tmp_path / "checkov"
    payload = json.dumps(report)
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            echo "$@" > {tmp_path / "argv"}
            cat <<'JSON'
            {payload}
            JSON
            exit {status}
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_failed_scan_exits_1_and_lists_the_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = {
        "check_type": "terraform_plan",
        "results": {
            "failed_checks": [
                {
                    "check_id": "CKV_AWS_28",
                    "check_name": "Ensure DynamoDB point in time recovery is enabled",
                    "resource": "module.table.aws_dynamodb_table.this",
                }
            ]
        },
        "summary": {"passed": 40, "failed": 1, "parsing_errors": 0, "checkov_version": "3.3.30"},
    }
    checkov = fake_checkov(tmp_path, report, 1)
    argv = [str(NO_CHANGES), "--checkov", str(checkov), "--output-dir", str(tmp_path)]
    assert plan_review.main(argv) == 1
    out = capsys.readouterr().out
    skipped = len(checkov_scan.read_skips(checkov_scan.DEFAULT_SKIP_FILE))
    assert f"40 passed, 1 failed, {skipped} skipped by .checkov.yaml" in out
    assert "FAILED CKV_AWS_28 module.table.aws_dynamodb_table.this" in out
    assert "--config-file" in (tmp_path / "argv").read_text()
    assert json.loads((tmp_path / "checkov.json").read_text()) == report
    assert "FAILED CKV_AWS_28" in (tmp_path / "summary.txt").read_text()


def test_passing_scan_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = {"summary": {"passed": 45, "failed": 0, "parsing_errors": 0}, "results": {}}
    checkov = fake_checkov(tmp_path, report, 0)
    argv = [str(NO_CHANGES), "--checkov", str(checkov), "--output-dir", str(tmp_path)]
    assert plan_review.main(argv) == 0
    assert "45 passed, 0 failed" in capsys.readouterr().out


def test_checkov_that_cannot_run_fails_the_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(NO_CHANGES), "--checkov", str(tmp_path / "missing"), "--output-dir", str(tmp_path)]
    assert plan_review.main(argv) == 1
    assert "NOT RUN: checkov not found" in capsys.readouterr().out


def test_every_skipped_check_has_a_reason() -> None:
    skips = checkov_scan.read_skips(checkov_scan.DEFAULT_SKIP_FILE)
    assert len(skips) >= 1
    for skip in skips:
        assert skip.check.startswith("CKV")
        assert len(skip.reason) > 20, skip


def test_a_skip_without_reason_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    skip_file = tmp_path / "checkov.yaml"
    skip_file.write_text("skip-check:\n  - CKV_AWS_50  # has one\n  - CKV_AWS_117\n")
    checkov = fake_checkov(tmp_path, {"summary": {"passed": 1, "failed": 0}}, 0)
    argv = [str(NO_CHANGES), "--checkov", str(checkov), "--skip-file", str(skip_file)]
    assert plan_review.main([*argv, "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "skipped check CKV_AWS_117 has no reason" in err[0]


def _installed_checkov() -> str | None:
    found = checkov_scan.find_checkov(None)
    return found if found and os.access(found, os.X_OK) else None


@pytest.mark.skipif(_installed_checkov() is None, reason="checkov not installed (.venv-checkov)")
def test_real_checkov_passes_the_stack_with_the_skip_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CREATE_STACK is `terraform show -json` of a plan of deploy/ (what `make plan` scans:
    the table, both functions and the monitoring, Terraform 1.11, the local endpoint)."""
    assert plan_review.main([str(CREATE_STACK), "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Plan: 28 to create, 0 to update in place, 0 to replace, 0 to destroy." in out
    assert "CKV_AWS_26" in out  # the alarm topic's skip is in the scan, with its reason
    summary = json.loads((tmp_path / "checkov.json").read_text())["summary"]
    assert summary["failed"] == 0
    assert summary["passed"] > 20


AFTER_DEPLOY = FIXTURES / "plan_after_deploy.json"  # `make plan` right after `make deploy`


def _drift_entry(plan: dict[str, object], address: str) -> dict[str, object]:
    drift = plan["resource_drift"]
    assert isinstance(drift, list)
    return next(entry for entry in drift if entry["address"] == address)


def test_a_refresh_that_reads_back_empty_values_is_no_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = json.loads(AFTER_DEPLOY.read_text())
    # The fixture is the real thing: every resource comes back "updated" by the refresh.
    assert len(plan["resource_drift"]) >= 20
    assert plan_review.real_drift(plan) == []
    argv = [str(AFTER_DEPLOY), "--no-scan", "--output-dir", str(tmp_path)]
    assert plan_review.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("No changes.")
    assert "drift" not in out


def test_real_drift_is_still_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = json.loads(AFTER_DEPLOY.read_text())
    mapping = 'module.stream_function["views"].aws_lambda_event_source_mapping.this'
    table = "module.table.aws_dynamodb_table.this"
    role = 'module.stream_function["votes"].aws_iam_role.this'
    _drift_entry(plan, mapping)["change"]["after"]["batch_size"] = 10  # type: ignore[index]
    _drift_entry(plan, table)["change"]["after"]["tags"] = {"owner": "someone"}  # type: ignore[index]
    # A policy nobody in this configuration manages, attached by hand.
    after = _drift_entry(plan, role)["change"]["after"]  # type: ignore[index]
    after["inline_policy"] = [*after["inline_policy"], {"name": "by-hand", "policy": "{}"}]
    assert sorted(plan_review.real_drift(plan)) == [
        f"{mapping} (batch_size)",
        f"{role} (inline_policy)",
        f"{table} (tags)",
    ]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert plan_review.main([str(path), "--no-scan", "--output-dir", str(tmp_path)]) == 0
    assert f"{mapping} (batch_size)" in capsys.readouterr().out


def test_a_deleted_resource_is_drift() -> None:
    plan = json.loads(AFTER_DEPLOY.read_text())
    entry = _drift_entry(plan, "module.table.aws_dynamodb_table.this")
    entry["change"] = {"actions": ["delete"], "before": {"name": "t"}, "after": None}
    assert plan_review.real_drift(plan) == ["module.table.aws_dynamodb_table.this (deleted)"]


@pytest.mark.parametrize(
    ("before", "after", "drifted"),
    [
        ({"tags": None, "layers": None}, {"tags": {}, "layers": []}, ()),
        ({"env": [{"variables": None}]}, {"env": [{"variables": {}}]}, ()),
        ({"tags": None}, {"tags": {"a": ""}}, ()),
        ({"tags": None}, {"tags": {"a": "b"}}, ("tags",)),
        ({"timeout": 60}, {"timeout": 30}, ("timeout",)),
        ({"enabled": True}, {"enabled": False}, ("enabled",)),
        ({"tags": {"a": "b"}, "tags_all": {"a": "b"}}, {"tags": {"a": "b"}, "tags_all": {}}, ()),
    ],
)
def test_drifted_attributes(
    before: dict[str, object], after: dict[str, object], drifted: tuple[str, ...]
) -> None:
    assert plan_review.drifted_attributes("aws_lambda_function", before, after) == drifted
