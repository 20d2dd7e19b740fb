"""`make env` / tool environment from the endpoint record and Terraform outputs."""

from __future__ import annotations

import json
from pathlib import Path

import deploy_env
import pytest


def test_exports_for_the_local_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "endpoint.json").write_text(
        json.dumps(
            {
                "pid": 1,
                "endpoint_url": "http://127.0.0.1:4566",
                "control_url": "http://127.0.0.1:4567",
            }
        )
    )
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"table_name": {"value": "video-stats-data"}}))
    code = deploy_env.main(
        ["exports", "--target", "local", "--state-dir", str(tmp_path), "--outputs", str(outputs)]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4566" in lines
    assert "export LOCALCLOUD_CONTROL_URL=http://127.0.0.1:4567" in lines
    assert "export VIDEO_STATS_TABLE=video-stats-data" in lines
    assert "export AWS_ACCESS_KEY_ID=test" in lines


def test_missing_endpoint_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = deploy_env.main(["endpoint-url", "--state-dir", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "make local-up" in err[0]


def test_aws_target_has_no_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"table_name": {"value": "t"}}))
    code = deploy_env.main(
        ["exports", "--target", "aws", "--state-dir", str(tmp_path), "--outputs", str(outputs)]
    )
    assert code == 0
    assert capsys.readouterr().out.splitlines() == ["export VIDEO_STATS_TABLE=t"]
