"""Every Terraform module's README tells the truth: its Inputs and Outputs tables are the ones
rendered from the module's ``variable`` and ``output`` blocks (name, first sentence of the
description, type, default), its Usage example passes every required input, and the deployment
root passes every input and output of the root module through.

The HCL is read by a small scanner (blocks, string literals, comments) rather than a parser
package: only top-level ``variable``/``output``/``module`` blocks and a few of their attributes
are needed. After changing a variable or an output, rewrite the tables with

    .venv/bin/python tests/tooling/test_module_docs.py --write
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Module folder -> its documentation. The root module's reference is docs/module.md: the
# repository's README.md is the project's front door, which links to it.
DOCS = {
    ".": "docs/module.md",
    "modules/dynamodb_table": "modules/dynamodb_table/README.md",
    "modules/stream_function": "modules/stream_function/README.md",
    "modules/monitoring": "modules/monitoring/README.md",
    "deploy": "deploy/README.md",
}
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
WRITE_HINT = "rewrite them: .venv/bin/python tests/tooling/test_module_docs.py --write"


# --- a scanner for the little HCL needed -----------------------------------------------------


def _skip_string(text: str, i: int) -> int:
    """Index after the string literal that starts at ``text[i] == '"'``."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _skip_comment(text: str, i: int) -> int | None:
    """Index after the comment starting at ``i``, or None when none starts there."""
    if text.startswith("/*", i):
        return text.index("*/", i) + 2
    if text[i] == "#" or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    return None


def _code(text: str, i: int = 0) -> Iterator[tuple[int, str, int]]:
    """``(index, character, bracket depth after it)`` of every character from ``i`` that is
    outside string literals and comments."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _skip_string(text, i)
            continue
        after = _skip_comment(text, i)
        if after is not None:
            i = after
            continue
        depth += (c in "{[(") - (c in "}])")
        yield i, c, depth
        i += 1


def _matching(text: str, i: int) -> int:
    """Index of the bracket closing the one at ``text[i]``, strings and comments skipped."""
    for index, c, depth in _code(text, i):
        if depth == 0 and c in "}])":
            return index
    raise ValueError(f"unclosed {text[i]!r} at {i}")


def blocks(text: str, kind: str) -> dict[str, str]:
    """The bodies of the top-level ``kind "name" { ... }`` blocks, by name."""
    found: dict[str, str] = {}
    for match in re.finditer(rf'^{kind} "([^"]+)" \{{', text, re.MULTILINE):
        start = match.end() - 1
        found[match.group(1)] = text[start + 1 : _matching(text, start)]
    return found


def attribute(body: str, name: str) -> str | None:
    """The raw expression of the attribute ``name`` at the top level of a block body."""
    pattern = re.compile(rf"{name}\s*=\s*")
    for i, c, depth in _code(body):
        at_line_start = not body[body.rfind("\n", 0, i) + 1 : i].strip()
        if depth == 0 and c not in "{[()]}" and at_line_start:
            match = pattern.match(body, i)
            if match:
                return _expression(body, match.end())
    return None


def _expression(body: str, start: int) -> str:
    """The expression from ``start`` to the end of its line (brackets may span lines)."""
    j = start
    while j < len(body) and body[j] != "\n" and _skip_comment(body, j) is None:
        if body[j] == '"':
            j = _skip_string(body, j)
        elif body[j] in "{[(":
            j = _matching(body, j) + 1
        else:
            j += 1
    return body[start:j].strip()


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    type: str | None
    default: str | None  # raw HCL; None: required

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    name: str
    description: str


def _read(module: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(module.glob("*.tf")))


def variables(module: Path) -> list[Variable]:
    result = []
    for name, body in blocks(_read(module), "variable").items():
        description = attribute(body, "description")
        result.append(
            Variable(
                name,
                json.loads(description) if description else "",
                attribute(body, "type"),
                attribute(body, "default"),
            )
        )
    return result


def outputs(module: Path) -> list[Output]:
    return [
        Output(name, json.loads(attribute(body, "description") or '""'))
        for name, body in blocks(_read(module), "output").items()
    ]


# --- rendering -------------------------------------------------------------------------------


def first_sentence(description: str) -> str:
    # A period then a space ends a sentence (file names such as design.md have no space there).
    return re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=\.)\s+", description.strip(), maxsplit=1)[0]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _short_type(hcl_type: str | None) -> str:
    if hcl_type is None:
        return "any"
    # object({ ... }) -> object: the attributes are in the description and variables.tf.
    return re.sub(r"\(\{.*\}\)", "", " ".join(hcl_type.split()), flags=re.DOTALL)


def render(module: Path) -> str:
    lines = [
        BEGIN,
        "## Inputs",
        "",
        "Rendered from `variables.tf`, where each input's full description, type and",
        "validation live (first sentences here).",
        "",
        "| Name | Description | Type | Default |",
        "|------|-------------|------|---------|",
    ]
    for v in variables(module):
        default = "required" if v.required else f"`{_cell(v.default or '')}`"
        lines.append(
            f"| `{v.name}` | {_cell(first_sentence(v.description))} | "
            f"`{_cell(_short_type(v.type))}` | {default} |"
        )
    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    lines += [f"| `{o.name}` | {_cell(o.description)} |" for o in outputs(module)]
    lines.append(END)
    return "\n".join(lines)


def generated_part(readme: str) -> str | None:
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        return None
    return readme[readme.index(BEGIN) : readme.index(END) + len(END)]


def write_all() -> None:
    for module, doc in DOCS.items():
        path = REPO_ROOT / doc
        text = path.read_text()
        current = generated_part(text)
        if current is None:
            raise SystemExit(f"{doc}: needs one {BEGIN} ... {END} pair")
        path.write_text(text.replace(current, render(REPO_ROOT / module)))
        print(f"wrote {doc}")


# --- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(DOCS))
def test_readme_tables_match_the_module(module: str) -> None:
    doc = REPO_ROOT / DOCS[module]
    assert doc.is_file(), f"{DOCS[module]} is missing: the module {module} needs its README"
    part = generated_part(doc.read_text())
    assert part is not None, f"{DOCS[module]} needs one {BEGIN} ... {END} pair"
    expected = render(REPO_ROOT / module)
    if part != expected:
        have = set(re.findall(r"^\| `([a-z0-9_]+)` \|", part, re.MULTILINE))
        want = set(re.findall(r"^\| `([a-z0-9_]+)` \|", expected, re.MULTILINE))
        names = (
            f"missing {sorted(want - have)}, stale {sorted(have - want)}; " if have != want else ""
        )
        pytest.fail(
            f"{DOCS[module]}: Inputs/Outputs differ from the .tf files ({names}{WRITE_HINT})"
        )


@pytest.mark.parametrize("module", sorted(DOCS))
def test_usage_passes_every_required_input(module: str) -> None:
    text = (REPO_ROOT / DOCS[module]).read_text()
    assert re.search(r"^## Usage$", text, re.MULTILINE), f"{DOCS[module]} has no ## Usage"
    examples = re.findall(r"```(?:hcl|terraform)\n(.*?)```", text, re.DOTALL)
    assert examples, f"{DOCS[module]}: Usage needs an hcl example"
    if module == "deploy":
        return  # a deployment root is applied, not called: its example is a tfvars file
    required = [v.name for v in variables(REPO_ROOT / module) if v.required]
    calls = [body for ex in examples for body in blocks(ex, "module").values()]
    assert calls, f"{DOCS[module]}: the Usage example must call the module"
    for body in calls:
        missing = [name for name in required if attribute(body, name) is None]
        assert not missing, f"{DOCS[module]}: the Usage example lacks required inputs {missing}"


def test_the_deployment_root_passes_the_whole_module_through() -> None:
    """deploy/ declares every input of the root module (so every TF_VAR_ and tfvars entry of
    the root module still works) and passes it on; it outputs every output under its name."""
    module_inputs = {v.name for v in variables(REPO_ROOT)}
    deploy_inputs = {v.name for v in variables(REPO_ROOT / "deploy")}
    assert module_inputs <= deploy_inputs, sorted(module_inputs - deploy_inputs)
    call = blocks(_read(REPO_ROOT / "deploy"), "module")["video_stats"]
    wrong = [n for n in sorted(module_inputs) if attribute(call, n) != f"var.{n}"]
    assert not wrong, f"deploy/main.tf does not pass {wrong} as var.<name>"
    with_own_default = [
        v.name
        for v in variables(REPO_ROOT / "deploy")
        if v.name in module_inputs and v.default not in ("null", None)
    ]
    # Only name_prefix keeps a default of its own: the provider's Environment tag needs it.
    assert with_own_default == ["name_prefix"], with_own_default
    module_outputs = {o.name for o in outputs(REPO_ROOT)}
    deploy_outputs = blocks(_read(REPO_ROOT / "deploy"), "output")
    assert set(deploy_outputs) == module_outputs
    wrong = [
        n
        for n, body in deploy_outputs.items()
        if attribute(body, "value") != f"module.video_stats.{n}"
    ]
    assert not wrong, wrong


def test_every_submodule_that_takes_tags_gets_the_callers_tags() -> None:
    root = _read(REPO_ROOT)
    for name, body in blocks(root, "module").items():
        source = json.loads(attribute(body, "source") or '""')
        takes_tags = any(v.name == "tags" for v in variables(REPO_ROOT / source))
        assert not takes_tags or attribute(body, "tags") == "var.tags", f"module.{name}: no tags"


def test_scanner_reads_blocks_defaults_and_descriptions() -> None:
    text = (
        'variable "a" {\n  description = "One. Two { not a block"\n'
        "  type = object({\n    x = optional(number, 1) # }\n  })\n"
        '  default = { x = "}" }\n}\n\nvariable "b" {\n  type = string\n}\n'
    )
    found = blocks(text, "variable")
    assert list(found) == ["a", "b"]
    assert attribute(found["a"], "default") == '{ x = "}" }'
    assert json.loads(attribute(found["a"], "description") or "") == "One. Two { not a block"
    assert _short_type(attribute(found["a"], "type")) == "object"
    assert attribute(found["b"], "default") is None
    assert first_sentence("One. Two") == "One."
    assert (
        first_sentence("See docs/design.md §6, e.g. x. null: y") == "See docs/design.md §6, e.g. x."
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: test_module_docs.py --write")
    write_all()
