"""The README's commands table names every target `make help` lists (a ``## `` comment in the
Makefile), and no target the Makefile lacks: the front door stays true as targets come and go."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):[^=\n]*##", text, flags=re.MULTILINE))


def readme_table_targets() -> set[str]:
    text = (REPO / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `make ")]
    first_cells = (row.split("|")[1] for row in rows)
    return {name for cell in first_cells for name in re.findall(r"`make ([a-z0-9-]+)`", cell)}


def test_the_commands_table_names_every_make_target() -> None:
    targets = makefile_targets()
    assert len(targets) > 10  # the pattern still reads the Makefile
    assert sorted(targets - readme_table_targets()) == []


def test_the_commands_table_names_no_target_the_makefile_lacks() -> None:
    assert sorted(readme_table_targets() - makefile_targets()) == []
