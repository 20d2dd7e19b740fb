"""The report, the docs/benchmark.md table, the targets and the command line of
``benchmark designs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmark import cli
from benchmark.chart import write_chart
from benchmark.options import options_from_args
from benchmark.report import (
    docs_section,
    full_bill_table,
    readme_table,
    render_report,
    window_table,
    with_docs_table,
)
from benchmark.targets import evaluate_targets, full_bill_targets


def entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "invocations_per_1000_records": 4.0,
        "lower_bound_invocations_per_1000_records": 4.0,
        "writes_per_event": 0.6,
        "lower_bound_writes_per_event": 0.6,
        "summary_item_writes": 600,
        "lower_bound_writes": 600,
        "wru_per_event": 0.6,
        "lower_bound_wru_per_event": 0.6,
        "gsi_wru_per_event": 0.9,
        "mismatches": 0,
        "drained": True,
        "drain_seconds": 4.2,
        "write_to_summary_p50_seconds": 5.5,
        "write_to_summary_p99_seconds": 6.0,
        "write_to_invocation_seconds": {"p50": 3.0, "p99": 5.0, "max": 5.1},
        "monthly_usd": {
            "lambda_requests": 0.02,
            "lambda_compute": 0.1,
            "dynamodb": 28.1,
            "total": 28.22,
        },
        "lower_bound_monthly_usd": {
            "lambda_requests": 0.02,
            "lambda_compute": 0.1,
            "dynamodb": 28.1,
            "total": 28.22,
        },
    }
    base.update(overrides)
    return base


def results(**ours: Any) -> dict[str, Any]:
    reference = entry(
        invocations_per_1000_records=840.0,
        writes_per_event=1.68,
        summary_item_writes=1680,
        lower_bound_writes=1680,
        mismatches=166,
        monthly_usd={"lambda_requests": 5, "lambda_compute": 1.3, "dynamodb": 94, "total": 100.3},
    )
    return {
        "baseline": {"large": reference, "tiny": reference},
        "ours": {"large": entry(**ours), "tiny": entry()},
        "meta": {
            "generated_at": "2026-01-01T00:00:00+00:00",
            "workloads": {"large": {"title": "large", "events": 10}, "tiny": {"title": "tiny"}},
            "configurations": {
                "ours": {
                    "function": {"memory_mb": 256, "architecture": "arm64"},
                    "mappings": [
                        {
                            "function_name": "f",
                            "settings": {
                                "BatchSize": 1000,
                                "MaximumBatchingWindowInSeconds": 5,
                                "Filters": ['{"a":1}'],
                            },
                        }
                    ],
                }
            },
            "notes": ["a note"],
        },
    }


def test_targets_met() -> None:
    targets = evaluate_targets(results())
    # Exactness and delay per workload (the retired invocation and lower-bound targets are gone).
    assert [t.name for t in targets].count("zero mismatches after drain") == 2
    assert len(targets) == 4
    assert all(t.met for t in targets)


def test_targets_missed_are_reported_precisely() -> None:
    targets = evaluate_targets(results(mismatches=2))
    missed = [t for t in targets if t.met is False]
    assert [t.workload for t in missed] == ["large"]
    assert "2 mismatched" in missed[0].detail


def test_delay_target_is_the_window_plus_two_seconds() -> None:
    slow = [
        t for t in evaluate_targets(results(write_to_summary_p99_seconds=7.5)) if "p99" in t.name
    ]
    assert [(t.workload, t.met) for t in slow] == [("large", False), ("tiny", True)]
    assert slow[0].name == "write-to-summary p99 ≤ the measured run's batching window + 2 s (7 s)"


def with_full_bill(ratio_1m_1p: float = 3.6, even_4: int | None = 90_000) -> dict[str, Any]:
    data = results()
    rows = []
    for per_day in (1_000_000, 10_000_000, 100_000_000):
        for count in (1, 4, 16):
            ratio = ratio_1m_1p if (per_day, count) == (1_000_000, 1) else 6.5
            rows.append(
                {"events_per_day": per_day, "partitions": count, "reference_usd_month": ratio,
                 "ours_usd_month": 1.0, "ratio": ratio, "fixed_usd_month": 4.2}
            )  # fmt: skip
    data["full_bill"] = rows
    data["break_even_events_per_day"] = {"1": 60_000, "4": even_4, "16": 400_000}
    data["full_bill_detail"] = {
        "workload": "large",
        "fixed": {"alarms": 1.2, "dashboard": 3.0, "kms": 0.0},
        "fixed_usd_month": 4.2,
        "resources": {"ours": {"alarms": 12, "alarm_metrics": 12, "dashboards": 1}},
    }
    return data


def test_full_bill_targets() -> None:
    targets = full_bill_targets(with_full_bill())
    assert [t.met for t in targets] == [True] * 7
    assert targets[0].detail == "break-even 60,000/day"
    assert targets[-1].detail == "$4.20 (alarms $1.20, dashboard $3.00, kms $0.00)"
    missed = [
        t for t in full_bill_targets(with_full_bill(ratio_1m_1p=3.4, even_4=None)) if not t.met
    ]
    assert [t.detail for t in missed] == [
        "break-even never (up to 100 M)",
        "3.40x ($3.40 vs $1.00 a month)",
    ]
    assert full_bill_targets(results()) == []


def test_full_bill_table_and_summary() -> None:
    data = with_full_bill()
    table = full_bill_table(data)
    assert table[2] == "| 1,000,000 | 1 | $3.60 | $1.00 | **3.60x** | $4.20 |"
    assert table[-1].startswith("Break-even (this project no more expensive than the reference")
    assert "4 partition(s): 90,000 events/day" in table[-1]
    readme = readme_table(data)
    assert "**$4.20** a month" in readme
    assert "12 alarms reading 12 metrics" in readme
    assert "| 1,000,000 | 1 | $3.60 | $1.00 | **3.60x** | $4.20 |" in readme
    assert "## The full bill" in render_report(data)


def test_skipped_workloads_are_in_the_report() -> None:
    data = results()
    data["skipped"] = ["ours on tiny: over the time budget"]
    assert "- skipped: ours on tiny: over the time budget" in render_report(data)


def test_readme_table_has_one_row_per_workload_and_design() -> None:
    table = readme_table(results())
    rows = [
        line
        for line in table.splitlines()
        if line.startswith("| large") or line.startswith("| tiny")
    ]
    assert len(rows) == 4
    assert rows[0].startswith("| large | reference design (blog) | 840.0 | 1.68 (0.60)")
    assert "$28.22" in rows[1]
    assert all(row.count("|") == table.splitlines()[0].count("|") for row in rows)


def test_render_report_sections() -> None:
    text = render_report(results())
    for heading in ("## Targets", "## Summary", "## Results: large", "## Results: tiny",
                    "## Monthly cost", "## Definitions", "## Notes"):  # fmt: skip
        assert heading in text
    assert "| f | 1000 |" in text
    assert "- a note" in text


def test_write_chart(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    write_chart(results(), path)
    assert path.read_bytes().startswith(b"\x89PNG")


# --- command line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--events-large", "0"], "--events-large"),
        (["--rate", "fast"], "--rate"),
        (["--workloads", "huge"], "choose from large, tiny"),
        (["--configs", ""], "choose from baseline, ours"),
        (["--ours-duration", "slow"], "duration model"),
        (["--time-budget", "60"], "at least 120"),
        (["--writers", "1000"], "at most 64"),
        (["--nonsense"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["designs", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_output_dir_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    assert cli.main(["designs", "--output-dir", str(file)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_readme_table_from_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results()))
    assert cli.main(["designs", "--readme-table", "--results", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| workload | design |")
    assert "| tiny | this project |" in out


def test_docs_section_scores_the_targets_and_gives_the_write_rates() -> None:
    """The generated block carries the verdicts, so no prose outside it quotes a run's figure."""
    data = results(mismatches=2, achieved_rate=42.0)
    data["meta"]["rate"] = 80
    section = docs_section(data)
    assert section.startswith(readme_table(data))
    assert "on this run: 3 met, 1 missed:" in section
    assert "| zero mismatches after drain | large | **NO** | 2 mismatched summaries |" in section
    assert "(events/s, 80 offered;" in section
    assert "large, this project: 42.0;" in section


def test_readme_table_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["designs", "--readme-table", "--results", str(tmp_path / "none.json")]) == 2
    assert "run 'make bench' first" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert cli.main(["designs", "--readme-table", "--results", str(tmp_path / "bad.json")]) == 1


def test_quick_and_subsets() -> None:
    args = cli.build_parser().parse_args(
        ["designs", "--quick", "--workloads", "tiny", "--configs", "ours"]
    )
    options = options_from_args(args)
    assert [(w.key, w.events) for w in options.workloads] == [("tiny", 500)]
    assert options.configs == ("ours",)
    assert options.durations["ours"].fixed_ms == 30.0
    assert options.measure_cpu
    assert not options.strict


def test_strict_and_a_given_duration() -> None:
    args = cli.build_parser().parse_args(["designs", "--strict", "--ours-duration", "40+1"])
    options = options_from_args(args)
    assert options.strict
    assert not options.measure_cpu  # as given: nothing measured is added
    assert (options.durations["ours"].fixed_ms, options.durations["ours"].per_write_ms) == (40, 1)


# --- batching windows: measured run, production projection, sensitivity -------------------------


def windowed_results() -> dict[str, Any]:
    """The measured run at 5 s (as deployed), projections at the 300 s production window."""
    data = results()
    cells = [(1_000_000, 4), (10_000_000, 16)]
    ratios = {5.0: (1.6, 1.9), 60.0: (2.2, 2.9), 120.0: (2.5, 3.6), 300.0: (3.3, 4.9)}
    by_window = [
        {"batching_window_seconds": window, "events_per_day": per_day, "partitions": count,
         "reference_usd_month": 90.0, "ours_usd_month": round(90.0 / ratio, 2), "ratio": ratio,
         "ours_batch_records": [1, 1]}
        for window, pair in ratios.items()
        for (per_day, count), ratio in zip(cells, pair, strict=True)
    ]  # fmt: skip
    data["ours"]["large"]["projection"] = [
        {**row, "ours_batch_records": [100, 50]}
        for row in by_window
        if row["batching_window_seconds"] == 300.0
    ]
    data["ours"]["large"]["projection_by_window"] = by_window
    data["meta"]["stream_mapping"] = {
        "measured_variable": "{maximum_batching_window_in_seconds=5}",
        "production": {"batch_size": 1000, "maximum_batching_window_in_seconds": 300,
                       "tumbling_window_in_seconds": 900},
    }  # fmt: skip
    return data


def test_ratio_targets_use_the_production_window_and_delay_the_measured_one() -> None:
    targets = evaluate_targets(windowed_results())
    ratios = [t for t in targets if t.name.startswith("reference ÷ ours")]
    assert [(t.name, t.met) for t in ratios] == [
        ("reference ÷ ours ≥ 3x at 1 M events/day on 4 partition(s) (projected, 300 s window)",
         True),
        ("reference ÷ ours ≥ 4x at 10 M events/day on 16 partition(s) (projected, 300 s window)",
         True),
    ]  # fmt: skip
    delay = [t for t in targets if "p99" in t.name]
    assert {t.name for t in delay} == {
        "write-to-summary p99 ≤ the measured run's batching window + 2 s (7 s)"
    }


def test_the_window_table_shows_each_window_with_its_role() -> None:
    table = window_table(windowed_results())
    assert table[0] == (
        "| events/day | partitions | 5 s (measured) | 60 s | 120 s | 300 s (production) | target |"
    )
    assert table[2] == "| 1 M | 4 | 1.60x | 2.20x | 2.50x | 3.30x | ≥ 3x |"
    assert table[3] == "| 10 M | 16 | 1.90x | 2.90x | 3.60x | 4.90x | ≥ 4x |"
    assert all(line.count("|") == table[0].count("|") for line in table[1:4])
    assert window_table(results()) == []  # no sensitivity rows: no table


def test_readme_and_report_say_which_window_each_figure_used() -> None:
    data = windowed_results()
    readme = readme_table(data)
    assert "this project's batching window 5 s;" in readme
    assert "at this project's production window (300 s)" in readme
    assert "projected at the production window of 300 s):" in readme
    assert "Reference ÷ ours by this project's batching window:" in readme
    report = render_report(data)
    assert (
        "This project's batching window: 5 s in the measured runs "
        "(`-var=stream_mapping={maximum_batching_window_in_seconds=5}`: the delay target holds "
        "it); 300 s, batch size 1,000 and tumbling window 900 s in every projection"
    ) in report


def test_the_batching_window_option() -> None:
    parser = cli.build_parser()
    assert options_from_args(parser.parse_args(["designs"])).batching_window == 5
    chosen = parser.parse_args(["designs", "--batching-window", "0"])
    assert options_from_args(chosen).batching_window == 0


@pytest.mark.parametrize(("value", "message"), [("301", "at most 300 s"), ("-1", ">= 0")])
def test_a_batching_window_a_mapping_cannot_have_is_one_line(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["designs", "--batching-window", value]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_the_docs_table_is_written_between_the_markers_only() -> None:
    document = "intro\n<!-- bench-table:start -->\nold\n<!-- bench-table:end -->\nlog\n"
    written = with_docs_table(document, "| new |\n")
    assert written == "intro\n<!-- bench-table:start -->\n| new |\n<!-- bench-table:end -->\nlog\n"
    assert with_docs_table(written, "| new |") == written
    with pytest.raises(ValueError, match="bench-table"):
        with_docs_table("no markers", "| new |")
