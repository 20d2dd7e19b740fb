"""The figures that show what per-shard exactly-once marks cost: for a table, the largest
summary item (bytes, as DynamoDB sizes items) and the most marks on one item.

The item format is the project's (lambda_src/video_stats/model.py): summary items are those
``summary_key_of`` recognises, marks the attributes ``is_mark_attribute`` recognises (both mark
formats). Read in process from moto's table, so the figure costs no API call and no read units.
"""

from __future__ import annotations

from typing import Any

from video_stats.model import SUMMARY_SK, is_mark_attribute, summary_key_of

from localcloud.writestats import item_size


def summary_item_figures(table: Any) -> dict[str, int]:
    """``{"summary_items", "max_summary_item_bytes", "max_marks_per_item"}`` of a moto table."""
    for _ in range(3):  # moto may change the table while we look (no lock held here)
        try:
            return _figures(table.all_items())
        except RuntimeError:
            continue
    return _figures([])


def _figures(items: list[Any]) -> dict[str, int]:
    count, largest, most_marks = 0, 0, 0
    for item in items:
        range_key = getattr(item, "range_key", None)
        if range_key is None or getattr(range_key, "value", None) != SUMMARY_SK:
            continue  # cheap test first: only summaries have this sort key
        attributes = item.to_json()["Attributes"]
        if summary_key_of(attributes) is None:
            continue
        count += 1
        largest = max(largest, item_size(attributes))
        most_marks = max(most_marks, sum(1 for name in attributes if is_mark_attribute(name)))
    return {
        "summary_items": count,
        "max_summary_item_bytes": largest,
        "max_marks_per_item": most_marks,
    }
