"""What a run crossed, from two ``GET /stats`` documents and one ``GET /streams`` document of
the control API: shards that delivered records, the longest parent -> child chain among them,
and the table's summary-item figures. Pure (clients such as ``make loadtest`` use it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def delivering_shards(
    before: Mapping[str, Any], after: Mapping[str, Any], table: str
) -> dict[str, int]:
    """Shard id -> records delivered between the two /stats documents, over the mappings of
    ``table``'s stream (only shards that delivered any)."""
    delivered: dict[str, int] = {}
    for uuid, mapping in after.items():
        if not isinstance(mapping, Mapping) or "shards" not in mapping:
            continue
        if f":table/{table}/stream/" not in str(mapping.get("event_source_arn", "")):
            continue
        earlier = (before.get(uuid) or {}).get("shards") or {}
        for shard_id, counts in (mapping.get("shards") or {}).items():
            old = (earlier.get(shard_id) or {}).get("records_delivered", 0)
            new = int(counts.get("records_delivered", 0)) - int(old)
            if new > 0:
                delivered[shard_id] = delivered.get(shard_id, 0) + new
    return delivered


def longest_chain(shards: set[str], parents: Mapping[str, str | None]) -> int:
    """The most shards of ``shards`` on one parent -> child chain (0 for none)."""
    depth: dict[str, int] = {}

    def length(shard_id: str) -> int:
        if shard_id not in depth:
            chain, current = [], shard_id
            while current in shards and current not in depth:
                chain.append(current)
                current = parents.get(current) or ""
            base = depth.get(current, 0)
            for offset, node in enumerate(reversed(chain), start=1):
                depth[node] = base + offset
        return depth[shard_id]

    return max((length(s) for s in shards), default=0)


def run_figures(
    before: Mapping[str, Any], after: Mapping[str, Any], streams: Mapping[str, Any], table: str
) -> dict[str, Any]:
    """``shards``, ``shard_generations``, ``max_summary_item_bytes``, ``max_marks_per_item``."""
    delivered = delivering_shards(before, after, table)
    stream = (streams.get("tables") or {}).get(table) or {}
    parents = {sid: info.get("parent") for sid, info in (stream.get("shards") or {}).items()}
    return {
        "shards": len(delivered),
        "shard_generations": longest_chain(set(delivered), parents),
        "max_summary_item_bytes": stream.get("max_summary_item_bytes"),
        "max_marks_per_item": stream.get("max_marks_per_item"),
    }
