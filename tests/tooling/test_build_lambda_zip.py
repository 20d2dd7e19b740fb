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


# --- what the deployment zip holds: only what runs in Lambda --------------------------------

REPO = Path(__file__).resolve().parents[2]

#: The handler modules, exactly. A new module means a new line here, on purpose.
HANDLER_MODULES = [
    "video_stats/__init__.py",
    "video_stats/apply.py",
    "video_stats/handlers.py",
    "video_stats/lineage.py",
    "video_stats/marks.py",
    "video_stats/model.py",
    "video_stats/records.py",
    "video_stats/store.py",
    "video_stats/streams.py",
]
#: Top-level entries of the zip: the handler package and the pinned runtime dependencies
#: (lambda_src/requirements.txt) with their metadata; no tests, fakes, requirements file or
#: console scripts.
ZIP_TOP_LEVEL = {
    "aws_lambda_powertools",
    "aws_lambda_powertools-3.37.0.dist-info",
    "jmespath",
    "jmespath-1.1.0.dist-info",
    "typing_extensions-4.16.0.dist-info",
    "typing_extensions.py",
    "video_stats",
}


def test_source_allow_list_takes_only_the_handler_modules() -> None:
    source = REPO / "lambda_src"
    names = [p.relative_to(source).as_posix() for p in build_lambda_zip.source_files(source)]
    assert names == HANDLER_MODULES


def test_source_allow_list_leaves_out_everything_else(tmp_path: Path) -> None:
    (tmp_path / "video_stats" / "__pycache__").mkdir(parents=True)
    for name in ("video_stats/__init__.py", "video_stats/notes.txt", "requirements.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "video_stats" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "other_pkg").mkdir()
    (tmp_path / "other_pkg" / "fakes.py").write_text("x")
    selected = [p.relative_to(tmp_path).as_posix() for p in build_lambda_zip.source_files(tmp_path)]
    assert selected == ["video_stats/__init__.py"]


def test_deployment_zip_lists_exactly_what_runs_in_lambda(tmp_path: Path) -> None:
    # The dependency cache `make package` fills (pip installs the pinned wheels once).
    output = tmp_path / "lambda.zip"
    build_lambda_zip.main(
        [
            "--source", str(REPO / "lambda_src"),
            "--requirements", str(REPO / "lambda_src" / "requirements.txt"),
            "--output", str(output),
            "--cache", str(REPO / "build" / "cache"),
        ]
    )  # fmt: skip
    with zipfile.ZipFile(output) as zf:
        names = zf.namelist()
    assert {name.split("/")[0] for name in names} == ZIP_TOP_LEVEL
    assert sorted(n for n in names if n.startswith("video_stats/")) == HANDLER_MODULES
    assert not [n for n in names if n.endswith((".pyc", "requirements.txt"))]
