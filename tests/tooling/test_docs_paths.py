"""Every repository path the documentation names exists, and every relative Markdown link
resolves (its file, and its #anchor to a heading of that file).

A "path" is a word inside backticks (inline code, or a shell code block) or a link target that
contains a '/' under a top-level entry of the repository, or ends in a known file extension. A
path under a top-level entry must exist from the repository root (or from the document's own
folder); a shorter one (``localcloud/engine.py``, ``model.py``) must be the tail of some file's
path. URLs, globs, placeholders and the outputs a run creates are not checked (listed below).
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]

#: The documents checked: a newcomer's path through the repository.
DOC_GLOBS = (
    "README.md",
    "docs/*.md",
    "tests/README.md",
    "tests/integration/README.md",
    "modules/*/README.md",
    "deploy/README.md",
    "examples/*/README.md",
    "scripts/localcloud/README.md",
)

#: Extensions that make a word a file name even without a '/'.
EXTENSIONS = frozenset(
    {"py", "tf", "tfvars", "hcl", "md", "json", "txt", "toml", "yaml", "yml", "sh", "cfg", "zip"}
)

#: Created at run time, never committed: the build outputs, the deployments' state, the venvs.
RUN_TIME_PREFIXES = (
    "build/",
    ".local/",
    ".venv/",
    ".venv-checkov/",
    ".terraform/",
    "deploy/.terraform",  # deploy/'s working directory (make init)
    "terraform.tfstate.d/",
)

#: File names a run writes (into build/ or a deployment's folder) and the docs name alone.
RUN_TIME_NAMES = frozenset(
    {
        "lambda.zip",  # make package: build/lambda.zip
        "outputs.json",  # make deploy: .local/deploy/<target>/outputs.json
        "plan.json",  # make plan: build/plan/
        "summary.txt",
        "checkov.json",
        "results.json",  # make bench: build/bench/
        "report.md",
        "endpoint.json",  # the local endpoint's state dir
        "terraform.tfstate",
        "terraform.tfvars",  # the operator's own settings (deploy/terraform.tfvars)
    }
)

#: Paths a doc may name although they do not exist, as (document, word): none; the test
#: fails on an entry that no longer occurs, so the list cannot go stale.
ALLOWED_MISSING: frozenset[tuple[str, str]] = frozenset()

FENCE = re.compile(r"^(```|~~~)(\w*)[^\n]*\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)
SHELL_FENCES = frozenset({"sh", "bash", "shell", "console"})
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
PLACEHOLDER = re.compile(r"[<>{}$*?\[\]|]|\.\.\.|…")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@cache
def repo_paths() -> frozenset[str]:
    """Committed and new (not ignored) files, and every folder above them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    paths: set[str] = set()
    for name in filter(None, listed):
        if not (REPO / name).exists():  # deleted in the work tree
            continue
        paths.add(name)
        paths.update(str(parent) for parent in PurePosixPath(name).parents if str(parent) != ".")
    return frozenset(paths)


@cache
def top_level() -> frozenset[str]:
    return frozenset(path.split("/", 1)[0] for path in repo_paths())


def documents() -> list[str]:
    found = {str(p.relative_to(REPO)) for pattern in DOC_GLOBS for p in REPO.glob(pattern)}
    return sorted(found)


def candidate(word: str) -> str | None:
    """The path a word of code names, or None when it is not a repository path."""
    word = word.strip("\"'()").rstrip(",;.:")
    word = word.rsplit("=", 1)[-1]  # PYTHONPATH=..., --results=...
    word = word.split("::", 1)[0]  # a pytest node id
    word = re.sub(r":\d+$", "", word)  # file.py:12
    if not word or "://" in word or ":" in word or word.startswith(("/", "~", "-")):
        return None
    if PLACEHOLDER.search(word):
        return None
    if word.startswith("./"):
        word = word[2:]
    stripped = word.rstrip("/")
    first, _, rest = stripped.partition("/")
    extension = stripped.rsplit(".", 1)[-1] if "." in stripped.rsplit("/", 1)[-1] else ""
    if rest and (first in top_level() or first in {p.rstrip("/") for p in RUN_TIME_PREFIXES}):
        return stripped
    if extension in EXTENSIONS:
        return stripped
    return None


def code_words(text: str) -> list[tuple[int, str]]:
    """(line, word) for every word inside inline code or a shell code block."""
    words: list[tuple[int, str]] = []
    blanked = list(text)
    for fence in FENCE.finditer(text):
        if fence.group(2) in SHELL_FENCES:
            body_start = fence.start(3)
            for line_no, line in enumerate(fence.group(3).splitlines()):
                code = line.split("#", 1)[0]  # a shell comment is prose
                line_at = text.count("\n", 0, body_start) + 1 + line_no
                words.extend((line_at, w) for w in code.split())
        blanked[fence.start() : fence.end()] = [
            c if c == "\n" else " " for c in text[fence.start() : fence.end()]
        ]
    prose = "".join(blanked)
    for span in INLINE_CODE.finditer(prose):
        line_at = prose.count("\n", 0, span.start()) + 1
        words.extend((line_at, w) for w in span.group(2).split())
    return words


def link_targets(text: str) -> list[tuple[int, str]]:
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    prose = INLINE_CODE.sub(lambda m: " " * len(m.group(0)), prose)
    return [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(prose)]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        name, n = base, 1
        while name in found:  # GitHub numbers repeated headings: name, name-1, name-2
            name, n = f"{base}-{n}", n + 1
        found.add(name)
    return found


def path_exists(doc: str, path: str) -> bool:
    if path.startswith(RUN_TIME_PREFIXES) or path + "/" in RUN_TIME_PREFIXES:
        return True
    if PurePosixPath(path).name in RUN_TIME_NAMES:
        return True
    paths = repo_paths()
    here = PurePosixPath(doc).parent
    if path in paths or str(here / path) in paths:
        return True
    if path.split("/", 1)[0] in top_level():
        return False  # named from the root: must exist there
    return any(p.endswith("/" + path) for p in paths)


def missing_paths(doc: str) -> list[str]:
    text = (REPO / doc).read_text(encoding="utf-8")
    broken: list[str] = []
    for line, word in code_words(text):
        path = candidate(word)
        if path is not None and not path_exists(doc, path):
            broken.append(f"{doc}:{line}: `{path}`")
    return broken


def broken_links(doc: str) -> list[str]:
    text = (REPO / doc).read_text(encoding="utf-8")
    broken: list[str] = []
    for line, target in link_targets(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (REPO / doc).parent / file_part if file_part else REPO / doc
        try:
            relative = str(resolved.resolve().relative_to(REPO))
        except ValueError:
            broken.append(f"{doc}:{line}: ({target}) leaves the repository")
            continue
        if relative not in repo_paths() and relative != ".":
            broken.append(f"{doc}:{line}: ({target}) does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{doc}:{line}: ({target}) names no heading of {relative}")
    return broken


# --- the parser ----------------------------------------------------------------------------------


def test_candidates_are_repository_paths_and_nothing_else() -> None:
    assert candidate("scripts/vstats/status.py") == "scripts/vstats/status.py"
    assert candidate("modules/monitoring/") == "modules/monitoring"
    assert candidate("model.py") == "model.py"
    assert candidate("localcloud/engine.py") == "localcloud/engine.py"
    assert candidate("PYTHONPATH=scripts:lambda_src") is None
    assert candidate("tests/unit/test_handlers.py::test_x") == "tests/unit/test_handlers.py"
    for not_a_path in (
        "AWS/Lambda",
        "alias/aws/sns",
        "https://example.com/a.md",
        "modules/*/README.md",
        ".local/deploy/<target>/outputs.json",
        "/path/to/mirror",
        "--json",
        "{}/[]",
        "VIDEO#<videoId>",
        "vstats.plan_review",
    ):
        assert candidate(not_a_path) is None, not_a_path


def test_code_words_read_inline_code_and_shell_blocks_only() -> None:
    text = (
        "See `a/b.py` and\n"
        "```sh\nmake x  # not `c/d.py`\nrun e/f.py\n```\n"
        '```json\n{"g/h.py": 1}\n```\n'
    )
    assert code_words(text) == [(3, "make"), (3, "x"), (4, "run"), (4, "e/f.py"), (1, "a/b.py")]


def test_slugs_follow_github() -> None:
    assert slug("§6. Cost model") == "6-cost-model"
    assert slug("Operating it: alarms, dashboard, status, redrive") == (
        "operating-it-alarms-dashboard-status-redrive"
    )
    assert slug("`make test-fast` and `make test`") == "make-test-fast-and-make-test"


# --- the documents -------------------------------------------------------------------------------


def test_the_documents_are_found() -> None:
    docs = documents()
    assert "README.md" in docs, docs
    assert "docs/design.md" in docs, docs


@pytest.mark.parametrize("doc", documents())
def test_every_path_a_document_names_exists(doc: str) -> None:
    broken = [
        entry for entry in missing_paths(doc) if (doc, entry.split("`")[1]) not in ALLOWED_MISSING
    ]
    assert not broken, "paths that do not exist in the repository:\n" + "\n".join(broken)


@pytest.mark.parametrize("doc", documents())
def test_every_relative_link_resolves(doc: str) -> None:
    broken = broken_links(doc)
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_allowlist_holds_only_names_still_missing() -> None:
    """An entry the docs no longer need must go, so the list only ever shrinks."""
    still_missing = {
        (doc, entry.split("`")[1]) for doc in documents() for entry in missing_paths(doc)
    }
    stale = sorted(ALLOWED_MISSING - still_missing)
    assert not stale, f"fixed in the docs, delete from ALLOWED_MISSING: {stale}"
