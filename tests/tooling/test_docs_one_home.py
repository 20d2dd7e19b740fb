"""Each fact lives in one document; the others link to it.

Two cheap checks over the project's Markdown (every tracked ``*.md`` outside ``shared/``):

* **No copied prose.** No run of ``RUN_WORDS`` words stands in two documents. Code blocks,
  tables, quotations ("…": a page title or an AWS sentence may be cited wherever it is used)
  and generated sections (the benchmark's block, terraform-docs' Inputs/Outputs) are left out:
  what remains is prose written by hand, where a copy drifts.
* **Generated figures stay generated.** The ratios ("3.41x") and break-even points ("85,100
  events/day") that ``benchmark designs --write-docs`` writes between docs/benchmark.md's
  markers appear nowhere else, except in that file's dated measurement log; other documents
  link to the block (design §6 explains the model, the block holds its latest output).
* **Modelled figures match their model.** Design §6 states the mark-budget model's figures
  (``make bench-marks``) once; they are compared with the model's output.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from functools import cache
from pathlib import Path

from benchmark.mark_budget import AFTER, BEFORE, Measure, measure
from video_stats.model import SummaryKind

REPO = Path(__file__).resolve().parents[2]
BENCHMARK_DOC = "docs/benchmark.md"
#: Words in a row that make a copy: a long clause, more than a shared phrase or a page title.
RUN_WORDS = 14

GENERATED = re.compile(
    r"<!-- (bench-table:start|BEGIN_TF_DOCS) -->.*?<!-- (bench-table:end|END_TF_DOCS) -->",
    re.DOTALL,
)
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
QUOTE = re.compile(r"\"[^\"\n]*(?:\n[^\"\n]*){0,3}\"|“[^”]*”")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
WORD = re.compile(r"[\w.,%/§#<>=≥≤\u00d7+-]+")
BENCH_BLOCK = re.compile(r"<!-- bench-table:start -->(.*?)<!-- bench-table:end -->", re.DOTALL)
LOG_HEADING = "## Measurement log"
RATIO = re.compile(r"(?<![≤≥] )(?<![\d.])(\d+\.\d\d)x\b")  # a target is not a figure
BREAK_EVEN = re.compile(r"(\d{1,3}(?:,\d{3})+) events/day")


@cache
def documents() -> dict[str, str]:
    listed = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        name: (REPO / name).read_text(encoding="utf-8")
        for name in listed
        if not name.startswith("shared/") and (REPO / name).is_file()
    }


def prose_words(text: str) -> list[str]:
    """The hand-written prose of a document, lower case, as words."""
    text = FENCE.sub("", GENERATED.sub("", text))
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    text = QUOTE.sub(" ", LINK_TARGET.sub("]", text))
    return WORD.findall(re.sub(r"[`*_\[\]]", "", text.lower()))


def shared_runs(docs: dict[str, str], size: int) -> dict[tuple[str, ...], list[str]]:
    """Runs of ``size`` words standing in more than one document, by the documents."""
    where: dict[str, set[str]] = defaultdict(set)
    for name, text in docs.items():
        words = prose_words(text)
        for i in range(len(words) - size + 1):
            where[" ".join(words[i : i + size])].add(name)
    found: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for run, names in where.items():
        if len(names) > 1:
            found[tuple(sorted(names))].append(run)
    return found


def generated_figures(benchmark_doc: str) -> dict[str, re.Pattern[str]]:
    """The block's ratios and break-even points, each with the pattern that finds it restated
    ("3.41x", also with a multiplication sign; "85,100 events/day" or "85,100 events a day"); a
    target ("≤ 100,000 events a day", "≥ 3.5x") is not a figure of the run."""
    block = BENCH_BLOCK.search(benchmark_doc)
    assert block, f"{BENCHMARK_DOC} has no generated block"
    figures = {
        f"{value}x": re.compile(rf"(?<![\d.,])(?<![≤≥] ){re.escape(value)}\s?[x\u00d7]")
        for value in RATIO.findall(block.group(1))
    }
    break_even = [line for line in block.group(1).splitlines() if line.startswith("Break-even")]
    for value in BREAK_EVEN.findall("\n".join(break_even)):
        figures[f"{value} events/day"] = re.compile(
            rf"(?<![\d.,])(?<![≤≥] ){re.escape(value)} events"
        )
    return figures


def test_no_prose_is_copied_between_documents() -> None:
    copies = shared_runs(documents(), RUN_WORDS)
    assert not copies, "the same prose in several documents (keep one, link from the others):\n" + (
        "\n".join(f"  {' + '.join(names)}: …{runs[0]}…" for names, runs in copies.items())
    )


def test_a_copy_is_found() -> None:
    """The check is not vacuous: a sentence pasted into a second document is caught, one in a
    table, a code block or a quotation is not."""
    sentence = "the handlers merge a batch into one net delta per summary key before they write"
    found = shared_runs({"a.md": f"Intro. {sentence}.", "b.md": f"Also: {sentence}!"}, RUN_WORDS)
    assert list(found) == [("a.md", "b.md")]
    exempt = {"a.md": sentence, "b.md": f'| {sentence} |\n\n```\n{sentence}\n```\n"{sentence}"'}
    assert not shared_runs(exempt, RUN_WORDS)


def test_generated_figures_are_stated_only_in_the_generated_block() -> None:
    docs = documents()
    figures = generated_figures(docs[BENCHMARK_DOC])
    assert figures, "no ratio or break-even in the generated block: the patterns are stale"
    found = []
    for name, whole in docs.items():
        text = BENCH_BLOCK.sub("", whole.split(LOG_HEADING)[0]) if name == BENCHMARK_DOC else whole
        found += [
            f"{name}: {figure}" for figure, pattern in figures.items() if pattern.search(text)
        ]
    assert not found, (
        "figures of the generated benchmark block restated by hand (link to "
        f"{BENCHMARK_DOC}#results instead): {found}"
    )


def test_design_states_the_mark_budget_models_own_output() -> None:
    """Design §6 is the one place the mark-budget model's figures are written down; they are
    what ``make bench-marks`` computes (``benchmark.mark_budget``), not a copy that can drift."""
    design = documents()["docs/design.md"]
    video, user = SummaryKind.VIDEO, SummaryKind.USER

    def row(title: str, m: Measure) -> str:
        return (
            f"| {title} | {m.marks} | {m.item_bytes:,} | {m.table_wru} | {m.gsi1_wru} | "
            f"{m.gsi2_wru} | **{m.total_wru}** |"
        )

    expected = []
    for partitions in (4, 16):
        expected += [
            row(
                f"{partitions} partitions, a 63-byte mark per shard of 25 h, no pruning",
                measure(BEFORE, video, partitions),
            ),
            row(
                f"{partitions} partitions, compact marks, pruned", measure(AFTER, video, partitions)
            ),
        ]
    expected += [
        row("user summary (any P), a 63-byte mark per shard of 25 h", measure(BEFORE, user, 16)),
        row("user summary (any P), compact marks, pruned", measure(AFTER, user, 16)),
        f"up to 28 digits ({measure(AFTER, video, 16, 28).item_bytes:,} bytes)",
        f"40 digits it is {measure(AFTER, video, 16, 40).item_bytes:,} bytes",
        f"against {measure(BEFORE, video, 16, 40).total_wru} with a 63-byte mark",
        f"At 20 partitions (21 digits) it passes 1 KB ({measure(AFTER, video, 20).item_bytes:,}",
    ]
    text = re.sub(r"\s+", " ", design)
    missing = [line for line in expected if line not in text]
    assert not missing, "design §6 differs from `make bench-marks`:\n" + "\n".join(missing)
