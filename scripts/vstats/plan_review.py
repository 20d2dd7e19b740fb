"""Review a Terraform plan: what is created, changed, replaced or destroyed, with the changes
that lose data or stream position called out loudly, and a checkov scan of the plan.

    terraform plan -out build/plan/tfplan
    terraform show -json build/plan/tfplan > build/plan/plan.json
    python -m vstats.plan_review build/plan/plan.json --output-dir build/plan

Writes ``summary.txt`` (the review, plain text) and ``checkov.json`` (the raw scan,
``vstats.checkov_scan``) to the output directory. Exit status: 0 reviewed and scan passed;
1 the scan failed (or could not run), or ``--fail-on-data-loss`` and the plan loses data;
2 bad input.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from vstats import cli
from vstats.checkov_scan import CHECKOV_ENV, DEFAULT_SKIP_FILE, Scan, render_scan, scan_plan

PROG = "plan_review"

# Actions as Terraform's JSON plan spells them, in the order they are listed.
ORDER = ("replace", "delete", "update", "create", "forget", "read", "no-op")
SYMBOL = {
    "create": "+",
    "update": "~",
    "replace": "-/+",
    "delete": "-",
    "read": "<=",
    "forget": ".",
    "no-op": " ",
}
STYLE = {
    "create": "green",
    "update": "yellow",
    "replace": "bold red",
    "delete": "red",
    "read": "cyan",
    "forget": "magenta",
    "no-op": "dim",
}
VERB = {
    "create": "to create",
    "update": "to update in place",
    "replace": "to replace",
    "delete": "to destroy",
    "forget": "to forget",
}


@dataclass(frozen=True, slots=True)
class ResourceChange:
    address: str
    type: str
    action: str  # one of ORDER
    reason: str | None
    changed: tuple[str, ...]  # top-level attributes that change (updates, replacements)
    forces: tuple[str, ...]  # attributes that force the replacement
    before: Mapping[str, Any]
    after: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Warning:
    level: str  # "DATA LOSS", "STREAM POSITION LOST", "CAUTION"
    address: str
    text: str


@dataclass(slots=True)
class Review:
    changes: list[ResourceChange]
    warnings: list[Warning]
    outputs: dict[str, str]  # output name -> action
    drift: list[str]  # addresses changed outside Terraform
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def no_changes(self) -> bool:
        return not any(self.counts[a] for a in VERB) and not self.outputs

    @property
    def loses_data(self) -> bool:
        return any(w.level == "DATA LOSS" for w in self.warnings)


class PlanError(ValueError):
    """The input is not a Terraform JSON plan."""


def classify(actions: Sequence[str]) -> str:
    if "create" in actions and "delete" in actions:
        return "replace"
    if len(actions) == 1 and actions[0] in SYMBOL:
        return actions[0]
    raise PlanError(f"unknown plan actions {list(actions)}")


def _changed_attributes(change: Mapping[str, Any]) -> tuple[str, ...]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    unknown = change.get("after_unknown") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    names = set(before) | set(after) | {k for k, v in unknown.items() if v}
    changed = [
        name
        for name in sorted(names)
        if before.get(name) != after.get(name) or (unknown.get(name) and name in before)
    ]
    return tuple(n for n in changed if n not in ("tags_all",))


def _paths(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(".".join(str(p) for p in path) for path in raw if isinstance(path, list))


def review(plan: Mapping[str, Any]) -> Review:
    if not isinstance(plan, Mapping) or "format_version" not in plan:
        raise PlanError("not a Terraform JSON plan (no format_version): run `terraform show -json`")
    changes: list[ResourceChange] = []
    for raw in plan.get("resource_changes") or []:
        change = raw.get("change") or {}
        action = classify(change.get("actions") or ["no-op"])
        changes.append(
            ResourceChange(
                address=str(raw.get("address")),
                type=str(raw.get("type")),
                action=action,
                reason=raw.get("action_reason"),
                changed=_changed_attributes(change) if action in ("update", "replace") else (),
                forces=_paths(change.get("replace_paths")),
                before=change.get("before") or {},
                after=change.get("after") or {},
            )
        )
    outputs = {
        name: classify(out.get("actions") or ["no-op"])
        for name, out in (plan.get("output_changes") or {}).items()
        if classify(out.get("actions") or ["no-op"]) != "no-op"
    }
    drift = real_drift(plan)
    result = Review(changes, warnings_for(changes), outputs, drift)
    result.counts.update(c.action for c in changes)
    return result


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, dict | list) and not value)


def _normalized(value: Any) -> Any:
    """``value`` with every empty value (null, "", {}, []) dropped, recursively: the provider
    reads back ``{}``/``[]`` where the configuration left an attribute null."""
    if isinstance(value, dict):
        kept = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not _is_empty(v)}
    if isinstance(value, list):
        kept_list = [_normalized(v) for v in value]
        return [v for v in kept_list if not _is_empty(v)]
    return value


def _managed_inline_policies(plan: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(role, policy name) of every inline policy an ``aws_iam_role_policy`` of this
    configuration manages: the role's ``inline_policy`` attribute shows them after a refresh."""
    managed: set[tuple[str, str]] = set()
    for raw in plan.get("resource_changes") or []:
        if raw.get("type") != "aws_iam_role_policy":
            continue
        change = raw.get("change") or {}
        for state in (change.get("before"), change.get("after")):
            if isinstance(state, dict) and state.get("role") and state.get("name"):
                managed.add((str(state["role"]), str(state["name"])))
    return managed


def drifted_attributes(
    resource_type: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    managed_policies: Collection[tuple[str, str]] = (),
) -> tuple[str, ...]:
    """Top-level attributes that really changed outside Terraform: null and an empty value
    are the same, and a role's inline policies managed by this configuration's
    ``aws_iam_role_policy`` resources are not the role's drift."""
    changed = []
    for name in sorted(set(before) | set(after)):
        if name == "tags_all":  # follows tags (and the provider's default tags)
            continue
        old, new = (_normalized(state.get(name)) for state in (before, after))
        if resource_type == "aws_iam_role" and name == "inline_policy":
            role = str(after.get("name") or before.get("name") or "")
            old, new = (
                [p for p in (v or []) if (role, str(p.get("name"))) not in managed_policies]
                for v in (old, new)
            )
        if old != new and not (_is_empty(old) and _is_empty(new)):
            changed.append(name)
    return tuple(changed)


def real_drift(plan: Mapping[str, Any]) -> list[str]:
    """``address (attributes)`` of every resource whose refresh found a real change.

    Right after an apply the refresh reports every resource as changed, because the provider
    reads back ``{}``/``[]`` for attributes the configuration left null (tags, queues, topics,
    layers) and a role's inline policies that its ``aws_iam_role_policy`` attached after the
    role was created; Terraform itself plans no change. Those are no drift."""
    managed = _managed_inline_policies(plan)
    found = []
    for raw in plan.get("resource_drift") or []:
        change = raw.get("change") or {}
        action = classify(change.get("actions") or ["no-op"])
        if action == "no-op":
            continue
        address = str(raw.get("address"))
        before, after = change.get("before"), change.get("after")
        if action != "update" or not isinstance(before, dict) or not isinstance(after, dict):
            found.append(f"{address} ({'deleted' if after is None else action})")
            continue
        attributes = drifted_attributes(str(raw.get("type")), before, after, managed)
        if attributes:
            found.append(f"{address} ({', '.join(attributes)})")
    return found


def warnings_for(changes: Iterable[ResourceChange]) -> list[Warning]:
    """The changes an operator must not wave through: they lose items or stream position."""
    warnings: list[Warning] = []
    for c in changes:
        if c.type == "aws_dynamodb_table" and c.action in ("replace", "delete"):
            name = c.before.get("name", "?")
            how = (
                "REPLACED (destroyed, then created empty)" if c.action == "replace" else "DESTROYED"
            )
            cause = f"; forced by: {', '.join(c.forces)}" if c.forces else ""
            warnings.append(
                Warning(
                    "DATA LOSS",
                    c.address,
                    f"table {name} will be {how}: every view, vote and summary item is lost, "
                    f"and so is its stream{cause}",
                )
            )
        elif c.type == "aws_lambda_event_source_mapping" and c.action in ("replace", "delete"):
            function = str(c.before.get("function_name") or c.after.get("function_name") or "")
            of = f" of {function.rsplit(':', 1)[-1]}" if function else ""
            if c.action == "replace":
                start = c.after.get("starting_position") or "?"
                cause = f"; forced by: {', '.join(c.forces)}" if c.forces else ""
                text = (
                    f"mapping{of} will be REPLACED: the new one starts reading at {start}, not "
                    f"where this one stopped (records are re-read or skipped){cause}"
                )
            else:
                text = (
                    f"mapping{of} will be DESTROYED: its stream position is lost and records "
                    "written until a new mapping exists are never applied"
                )
            warnings.append(Warning("STREAM POSITION LOST", c.address, text))
        elif c.type == "aws_sqs_queue" and c.action in ("replace", "delete"):
            warnings.append(
                Warning(
                    "CAUTION",
                    c.address,
                    "on-failure queue will be destroyed, with the failed-batch metadata it holds",
                )
            )
        elif (
            c.type == "aws_dynamodb_table"
            and c.action == "update"
            and c.before.get("deletion_protection_enabled")
            and not c.after.get("deletion_protection_enabled")
        ):
            warnings.append(
                Warning("CAUTION", c.address, "deletion protection of the table is switched off")
            )
    return warnings


def render(result: Review, plan_path: Path) -> list[Text]:
    lines: list[Text] = []
    if result.no_changes:
        lines.append(Text("No changes. The deployment matches the configuration.", style="green"))
    else:
        parts = [f"{result.counts[a]} {VERB[a]}" for a in ("create", "update", "replace", "delete")]
        if result.counts["forget"]:
            parts.append(f"{result.counts['forget']} {VERB['forget']}")
        lines.append(Text(f"Plan: {', '.join(parts)}.", style="bold"))
    lines.append(Text(f"(from {plan_path})", style="dim"))
    for w in result.warnings:
        style = "bold white on red" if w.level != "CAUTION" else "bold yellow"
        lines.append(Text(""))
        line = Text(f"!! {w.level} !!", style=style)
        line.append(
            f" {w.address}: {w.text}", style="bold red" if w.level != "CAUTION" else "yellow"
        )
        lines.append(line)
    shown = [c for c in result.changes if c.action not in ("no-op", "read")]
    if shown:
        lines.append(Text(""))
        lines.append(Text("Resources:", style="bold"))
        for c in sorted(shown, key=lambda c: (ORDER.index(c.action), c.address)):
            line = Text(f"  {SYMBOL[c.action]:>3} {c.action:<8} ", style=STYLE[c.action])
            line.append(c.address)
            if c.forces:
                line.append(f"  (forces replacement: {', '.join(c.forces)})", style="red")
            elif c.changed:
                names = list(c.changed[:6]) + (["..."] if len(c.changed) > 6 else [])
                line.append(f"  (changes: {', '.join(names)})", style="dim")
            lines.append(line)
    if result.outputs:
        lines.append(Text(""))
        outputs = ", ".join(f"{name} ({action})" for name, action in sorted(result.outputs.items()))
        lines.append(Text(f"Outputs: {outputs}"))
    if result.drift:
        lines.append(Text(""))
        lines.append(
            Text(f"Changed outside Terraform (drift): {', '.join(result.drift)}", style="yellow")
        )
    return lines


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Summarise a Terraform JSON plan, call out data and stream-position loss, "
        "and scan it with checkov.",
    )
    parser.add_argument("plan", type=Path, help="plan as JSON (terraform show -json PLANFILE)")
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where summary.txt and checkov.json go (default: the plan's directory)",
    )
    parser.add_argument("--no-scan", action="store_true", help="skip the checkov scan")
    parser.add_argument(
        "--checkov",
        help=f"checkov executable (default: ${CHECKOV_ENV}, .venv-checkov/bin/checkov, PATH)",
    )
    parser.add_argument(
        "--skip-file",
        type=Path,
        default=DEFAULT_SKIP_FILE,
        help="checkov config with the skipped checks and their reasons (default .checkov.yaml)",
    )
    parser.add_argument(
        "--fail-on-data-loss",
        action="store_true",
        help="exit 1 when the plan replaces or destroys the table",
    )
    return parser


def load_plan(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise cli.UsageError(f"plan file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise cli.UsageError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError:
        raise cli.UsageError(
            f"{path} is not JSON: pass `terraform show -json PLANFILE` output, not the binary plan"
        ) from None
    if not isinstance(data, dict):
        raise cli.UsageError(f"{path} is not a Terraform JSON plan")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    plan = load_plan(args.plan)
    try:
        result = review(plan)
    except PlanError as exc:
        raise cli.UsageError(f"{args.plan}: {exc}") from None
    out_dir: Path = args.output_dir or args.plan.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cli.UsageError(f"cannot create {out_dir}: {exc.strerror}") from None
    lines = render(result, args.plan)
    scan: Scan | None = None
    if not args.no_scan:
        scan = scan_plan(args.checkov, args.plan, args.skip_file, out_dir / "checkov.json")
        lines += render_scan(scan, args.skip_file)
    console = Console(highlight=False)
    plain = Console(file=io.StringIO(), color_system=None, width=160, highlight=False)
    for line in lines:
        console.print(line, soft_wrap=True)
        plain.print(line, soft_wrap=True)
    summary_path = out_dir / "summary.txt"
    summary_path.write_text(plain.file.getvalue())  # type: ignore[attr-defined]
    console.print(Text(f"summary written to {summary_path}", style="dim"), soft_wrap=True)
    if scan is not None and not scan.ok:
        return cli.EXIT_FAILURE
    if args.fail_on_data_loss and result.loses_data:
        return cli.EXIT_FAILURE
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
