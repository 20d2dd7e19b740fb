"""Every "design.md §N" in the repository resolves to a section of docs/design.md, and nothing
but a Markdown note points at the team's brief outside the repository (a clone does not
have it)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"

#: "design.md §3", "design.md §4, §5", "design.md §4 and §6": the file, then one or more sections.
REFERENCE = re.compile(r"design\.md\s+(§\d+(?:\s*(?:,|and|&)\s*§\d+)*)")
SECTION_HEADING = re.compile(r"^## §(\d+)\. ", re.MULTILINE)
OUTSIDE_REPO = re.compile(r"\.\./shared|/work/shared|shared/docs/design\.md")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    files: list[Path] = []
    for name in filter(None, names):
        path = REPO / name
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def references(text: str) -> list[tuple[int, int]]:
    """(line, section) for every section a text cites as "design.md §N"."""
    found: list[tuple[int, int]] = []
    for match in REFERENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        found.extend((line, int(n)) for n in re.findall(r"§(\d+)", match.group(1)))
    return found


def test_reference_parser_reads_lists_of_sections() -> None:
    text = "see docs/design.md §4, §5\nand design.md §2 and §6; (§9) alone is not a reference\n"
    assert references(text) == [(1, 4), (1, 5), (2, 2), (2, 6)]


def test_design_document_has_the_numbered_sections() -> None:
    sections = [int(n) for n in SECTION_HEADING.findall(DESIGN.read_text(encoding="utf-8"))]
    assert sections == list(range(1, 10))


def test_every_design_reference_resolves() -> None:
    sections = {int(n) for n in SECTION_HEADING.findall(DESIGN.read_text(encoding="utf-8"))}
    cited = 0
    broken: list[str] = []
    for path in _tracked_text_files():
        for line, section in references(path.read_text(encoding="utf-8")):
            cited += 1
            if section not in sections:
                broken.append(f"{path.relative_to(REPO)}:{line}: design.md §{section}")
    assert not broken, "references to sections docs/design.md does not have:\n" + "\n".join(broken)
    assert cited >= 20  # the scan really found the references (the code holds about 30)


def test_no_code_points_outside_the_repository() -> None:
    offenders: list[str] = []
    for path in _tracked_text_files():
        # Markdown notes may name the brief; this file names the pattern it looks for.
        if path.suffix == ".md" or path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        offenders.extend(
            f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}"
            for m in OUTSIDE_REPO.finditer(text)
        )
    assert not offenders, f"code must cite docs/design.md, not the brief: {offenders}"
