"""Builds the Lambda deployment zip deterministically.

The same source and pinned requirements always give a byte-identical zip (sorted
entries, fixed timestamps and permissions, no bytecode), so `terraform plan`
shows no change after a rebuild. Runtime dependencies other than boto3 (the
Lambda runtime provides it) are installed from pinned versions as pure-Python
wheels for any platform, and cached per requirements file.

The zip holds only what runs in Lambda: from the source folder, the modules of the
packages in ``SOURCE_PACKAGES`` (an allow-list: no tests, fakes or requirements file);
from the installed dependencies, everything but the console scripts pip writes.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

# 1980-01-01 is the earliest date a zip entry can hold.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
EXCLUDED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
# Files pip writes that differ between installs but mean nothing at run time.
EXCLUDED_NAMES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
# The allow-list of the source folder: these packages' Python modules, nothing else.
SOURCE_PACKAGES = ("video_stats",)
SOURCE_SUFFIXES = {".py"}
# Console scripts of the dependencies (jmespath's `jp.py`): nothing imports them.
EXCLUDED_DEPENDENCY_DIRS = {"bin"}


def install_dependencies(requirements: Path, cache_root: Path) -> Path:
    """Installs the pinned requirements once per content hash of the file."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = cache_root / f"deps-{digest}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:", "--implementation", "py", "--python-version", "3.11",
            "--target", str(target), "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip
    (target / ".complete").touch()
    return target


def iter_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name == ".complete":
            continue
        relative = path.relative_to(root)
        if EXCLUDED_DIRS.intersection(relative.parts) or path.suffix in EXCLUDED_SUFFIXES:
            continue
        if relative.parts[0].endswith(".dist-info") and path.name in EXCLUDED_NAMES:
            continue
        yield path


def source_files(source: Path) -> Iterator[Path]:
    """The allow-listed files of the source folder."""
    for path in iter_files(source):
        relative = path.relative_to(source)
        if relative.parts[0] in SOURCE_PACKAGES and path.suffix in SOURCE_SUFFIXES:
            yield path


def dependency_files(deps: Path) -> Iterator[Path]:
    for path in iter_files(deps):
        if path.relative_to(deps).parts[0] not in EXCLUDED_DEPENDENCY_DIRS:
            yield path


def deployment_entries(deps: Path, source: Path) -> dict[str, Path]:
    """Zip name -> file: the dependencies as installed, then the allow-listed source (which
    wins on a name clash)."""
    entries = {path.relative_to(deps).as_posix(): path for path in dependency_files(deps)}
    entries.update({path.relative_to(source).as_posix(): path for path in source_files(source)})
    return entries


def build_zip(roots: list[Path], output: Path) -> int:
    """Writes every file under roots (later roots win on name clashes), sorted."""
    entries: dict[str, Path] = {}
    for root in roots:
        for path in iter_files(root):
            entries[path.relative_to(root).as_posix()] = path
    return write_zip(entries, output)


def write_zip(entries: dict[str, Path], output: Path) -> int:
    """Writes the entries sorted by name, with fixed dates and permissions."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever machine builds it
            zf.writestr(info, entries[name].read_bytes(), compresslevel=9)
    partial.replace(output)
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda deployment zip.")
    parser.add_argument("--source", type=Path, required=True, help="folder of handler packages")
    parser.add_argument("--requirements", type=Path, required=True, help="pinned runtime deps")
    parser.add_argument("--output", type=Path, required=True, help="zip to write")
    parser.add_argument(
        "--cache", type=Path, default=Path("build/cache"), help="folder of installed dependencies"
    )
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        parser.error(f"--source {args.source} is not a folder")
    if not args.requirements.is_file():
        parser.error(f"--requirements {args.requirements} not found")
    deps = install_dependencies(args.requirements, args.cache)
    count = write_zip(deployment_entries(deps, args.source), args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"{args.output}: {count} files, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
