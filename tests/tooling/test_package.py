"""The installable project (pyproject.toml, installed editable by ``make venv``): it names every
top-level module of scripts/ and lambda_src/ that the installed code imports, its console
scripts name functions that exist, and with this checkout installed the tools run from any
directory without PYTHONPATH."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGES: list[str] = SETUPTOOLS["packages"]
PY_MODULES: list[str] = SETUPTOOLS["py-modules"]
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]
CONSOLE_SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
#: Where the project's own top-level modules live (what PYTHONPATH used to hold).
SOURCE_ROOTS = (REPO / "scripts", REPO / "lambda_src")


def _installed_files() -> list[Path]:
    files = [REPO / PACKAGE_DIR[""] / f"{name}.py" for name in PY_MODULES]
    for package in PACKAGES:
        files += sorted((REPO / PACKAGE_DIR[package]).rglob("*.py"))
    return files


def _top_level_imports(path: Path) -> set[str]:
    """The first name of every absolute import in the file, lazy ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _is_project_module(name: str) -> bool:
    return any(
        (root / name / "__init__.py").is_file() or (root / f"{name}.py").is_file()
        for root in SOURCE_ROOTS
    )


def test_every_package_and_module_is_where_package_dir_says() -> None:
    for package in PACKAGES:
        assert (REPO / PACKAGE_DIR[package] / "__init__.py").is_file(), package
    for name in PY_MODULES:
        assert (REPO / PACKAGE_DIR[""] / f"{name}.py").is_file(), name


def test_the_installed_code_imports_only_installed_project_modules() -> None:
    # e.g. the benchmark imports scripts/build_lambda_zip.py: without it in py-modules,
    # `python -m benchmark` fails outside the repository.
    installed = set(PACKAGES) | set(PY_MODULES)
    missing = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in _installed_files()
        for name in _top_level_imports(path)
        if _is_project_module(name) and name not in installed
    }
    assert not missing


@pytest.mark.parametrize("name", sorted(CONSOLE_SCRIPTS))
def test_each_console_script_names_a_function(name: str) -> None:
    module, _, function = CONSOLE_SCRIPTS[name].partition(":")
    assert module.partition(".")[0] in PACKAGES
    assert callable(getattr(importlib.import_module(module), function))


def _installed_from_this_checkout() -> bool:
    """pip's record of an editable install (direct_url.json) names this checkout. The
    ``video_stats.egg-info`` that setuptools leaves in the checkout has no such record, and
    is found first when the checkout is on sys.path."""
    for distribution in metadata.distributions(name="video-stats"):
        record = json.loads(distribution.read_text("direct_url.json") or "{}")
        url = urlparse(record.get("url", ""))
        editable = record.get("dir_info", {}).get("editable", False)
        if editable and url.scheme == "file" and Path(unquote(url.path)).resolve() == REPO:
            return True
    return False


@pytest.mark.skipif(
    not _installed_from_this_checkout(),
    reason="this venv has no editable install of this checkout (make venv installs it)",
)
@pytest.mark.parametrize("module", ["vstats.loadtest", "localcloud", "benchmark"])
def test_the_tools_run_from_anywhere_without_pythonpath(module: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage:")
    for name in CONSOLE_SCRIPTS:
        assert (Path(sys.executable).parent / name).is_file(), name
