"""The event filter patterns this project deploys, for the tools and tests that need to know
which stream records reach which function (docs/design.md §4).

The patterns live in one place, ``filter_patterns.json`` at the repository root, which
``filters.tf`` deploys to both mappings. This module reads that file and evaluates it with the
local engine's own filter code (``localcloud.filters``), so no tool or test re-codes the rule.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from localcloud.filters import CompiledFilters, compile_filter_criteria

PATTERNS_FILE: Final = Path(__file__).resolve().parents[2] / "filter_patterns.json"


@functools.cache
def deployed_patterns() -> dict[str, list[dict[str, Any]]]:
    """{item type: [pattern, ...]} exactly as filters.tf deploys them."""
    patterns: dict[str, list[dict[str, Any]]] = json.loads(PATTERNS_FILE.read_text("utf-8"))
    return patterns


def filter_criteria(item_type: str) -> dict[str, Any]:
    """The ``FilterCriteria`` of the function for ``item_type``, as the Lambda API takes it."""
    return {
        "Filters": [
            {"Pattern": json.dumps(pattern, separators=(",", ":"))}
            for pattern in deployed_patterns()[item_type]
        ]
    }


@functools.cache
def compiled_filters(item_type: str) -> CompiledFilters:
    return compile_filter_criteria(filter_criteria(item_type))


def delivered_to(record: Mapping[str, Any], item_type: str) -> bool:
    """Whether Lambda delivers this stream record to the function for ``item_type``."""
    return compiled_filters(item_type).matches(record)
