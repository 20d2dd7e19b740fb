"""How the benchmark's report, docs/benchmark.md table, targets and chart write a figure:
counts with thousands separators, dollars, seconds, events a day; ``-`` for a figure not
measured. Pure."""

from __future__ import annotations

from typing import Any


def fmt_num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value and abs(value) < 10**-digits:
            return f"{value:.2g}"
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_seconds(value: Any) -> str:
    return f"{float(value):g}" if isinstance(value, int | float) else "-"


def fmt_usd(value: Any) -> str:
    return "-" if value is None else f"${value:,.2f}"


def fmt_usd4(value: Any) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:.4f}"


def fmt_per_day(events: int) -> str:
    if events < 1_000_000:
        return f"{events / 1e3:g} k"
    return f"{events / 1e6:g} M"
