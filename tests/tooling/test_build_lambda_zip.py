"""The deployment zip is byte-identical for identical source (no plan drift)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import build_lambda_zip
import pytest


def _make_tree(root: Path) -> None:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "pkg" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00junk")


def test_same_source_gives_byte_identical_zip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    _make_tree(source)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    build_lambda_zip.build_zip([source], first)
    # Touch every file: new mtimes must not change the zip.
    for path in source.rglob("*.py"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    build_lambda_zip.build_zip([source], second)
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )


def test_zip_has_sorted_entries_fixed_dates_and_no_bytecode(tmp_path: Path) -> None:
    source = tmp_path / "src"
    _make_tree(source)
    output = tmp_path / "lambda.zip"
    count = build_lambda_zip.build_zip([source], output)
    with zipfile.ZipFile(output) as zf:
        names = zf.namelist()
        assert names == sorted(names) == ["pkg/__init__.py", "pkg/handler.py"]
        assert count == 2
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in zf.infolist()} == {0o644}


def test_later_roots_win_on_name_clashes(tmp_path: Path) -> None:
    deps, source = tmp_path / "deps", tmp_path / "src"
    (deps / "pkg").mkdir(parents=True)
    (deps / "pkg" / "x.py").write_text("old")
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "x.py").write_text("new")
    output = tmp_path / "lambda.zip"
    build_lambda_zip.build_zip([deps, source], output)
    with zipfile.ZipFile(output) as zf:
        assert zf.read("pkg/x.py") == b"new"


def test_bad_arguments_exit_with_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        build_lambda_zip.main(
            ["--source", str(tmp_path / "nope"), "--requirements", "x", "--output", "y"]
        )
    assert exc.value.code == 2
