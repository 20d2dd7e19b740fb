"""Recount and drift: the comparison of every summary with a full recount of the base items.

``find_drift`` is the check the load test, reconcile and the integration tests share; the
recount itself is ``video_stats.model.recount`` (there is only one). ``index_faults`` is
reconcile's other check: summaries the ranking index cannot list right (no ``GSI2SK``, e.g.
written by a release before it existed, or not the bucket of their ``views``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from video_stats import model
from video_stats.model import AttributeMap, Counters, SummaryKey
from video_stats.store import SummaryStore

from vstats.effects import is_base_item
from vstats.tables import scan_items

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DEFAULT_SEGMENTS = 4


@dataclass(frozen=True, slots=True)
class Drift:
    """A summary whose counters differ from the recount (``actual`` is 0 when absent)."""

    key: SummaryKey
    expected: Counters
    actual: Counters
    exists: bool

    @property
    def difference(self) -> Counters:
        return self.actual - self.expected

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind.value,
            "id": self.key.id,
            "exists": self.exists,
            "expected": asdict(self.expected),
            "actual": asdict(self.actual),
            "difference": asdict(self.difference),
        }


@dataclass(frozen=True, slots=True)
class IndexFault:
    """A summary whose index attributes are missing or not what its ``views`` call for, so
    ``make summary`` (GSI2, never a scan) misses or misranks it."""

    key: SummaryKey
    views: int
    problems: tuple[str, ...]  # "missing GSI2SK", "wrong GSI2SK", ... in attribute order

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.key.kind.value,
            "id": self.key.id,
            "views": self.views,
            "problems": list(self.problems),
        }


def index_fault(store: SummaryStore, key: SummaryKey, item: AttributeMap) -> IndexFault | None:
    """What is wrong with one summary's index attributes (``store.index_attributes``, the
    handlers' own definition), or None."""
    views = model.summary_counters(item).views
    problems = tuple(
        f"{'missing' if name not in item else 'wrong'} {name}"
        for name, value in store.index_attributes(key, views).items()
        if item.get(name) != value
    )
    return IndexFault(key, views, problems) if problems else None


def index_faults(
    store: SummaryStore, summaries: Mapping[SummaryKey, AttributeMap]
) -> list[IndexFault]:
    faults = [
        fault
        for key, item in summaries.items()
        if (fault := index_fault(store, key, item)) is not None
    ]
    return sorted(faults, key=lambda f: (f.key.kind.value, f.key.id))


#: How long a summary's wrong bucket must stay as it is before it counts (``settled_faults``).
INDEX_SETTLE_SECONDS = 1.0


def settled_faults(
    store: SummaryStore,
    summaries: Mapping[SummaryKey, AttributeMap],
    *,
    settle_seconds: float | None = None,
) -> list[IndexFault]:
    """The index faults of a scan that are not a handler's move in progress.

    A handler that changes ``views`` sets the bucket it expects and, when the item it gets
    back shows another, moves it in a follow-up write (``store.update``), right after. A scan,
    and even one consistent read, can land between the two. So a fault counts only if two
    consistent reads ``settle_seconds`` apart both show it on an unchanged item; an item that
    changed meanwhile is being written by a handler, whose own follow-up ranks it.
    ``settle_seconds`` defaults to ``INDEX_SETTLE_SECONDS``, read at the call."""
    suspects = index_faults(store, summaries)
    first = {f.key: item for f in suspects if (item := store.read(f.key)) is not None}
    first = {k: item for k, item in first.items() if index_fault(store, k, item) is not None}
    if not first:
        return []
    time.sleep(INDEX_SETTLE_SECONDS if settle_seconds is None else settle_seconds)
    confirmed = []
    for key, seen in first.items():
        item = store.read(key)
        if item is None or item != seen:  # written meanwhile
            continue
        fault = index_fault(store, key, item)
        if fault is not None:
            confirmed.append(fault)
    return sorted(confirmed, key=lambda f: (f.key.kind.value, f.key.id))


@dataclass(slots=True)
class TableSnapshot:
    """What one pass over the table saw: the recount, the summary items, and (if asked for)
    each base item's key and contribution, for the repair's stream correction."""

    recount: dict[SummaryKey, Counters] = field(default_factory=dict)
    summaries: dict[SummaryKey, AttributeMap] = field(default_factory=dict)
    base_items: dict[tuple[str, str], AttributeMap] | None = None
    items_read: int = 0


def read_snapshot(
    client: DynamoDBClient, table: str, *, segments: int = DEFAULT_SEGMENTS, keep_base: bool = False
) -> TableSnapshot:
    """One parallel scan; the recount folds the items as they stream by."""
    snapshot = TableSnapshot(base_items={} if keep_base else None)

    def observed() -> Iterator[AttributeMap]:
        for item in scan_items(client, table, segments):
            snapshot.items_read += 1
            key = model.summary_key_of(item)
            if key is not None:
                snapshot.summaries[key] = item
            elif snapshot.base_items is not None and is_base_item(item):
                snapshot.base_items[item_identity(item)] = item
            yield item

    snapshot.recount = model.recount(observed())
    return snapshot


def item_identity(item: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    return (str(item["PK"].get("S")), str(item["SK"].get("S")))


def compare(
    expected: Mapping[SummaryKey, Counters], summaries: Mapping[SummaryKey, AttributeMap]
) -> list[Drift]:
    """Every summary whose counters differ from ``expected`` (absent on either side = 0)."""
    drifts = []
    for key in set(expected) | set(summaries):
        item = summaries.get(key)
        actual = model.summary_counters(item) if item is not None else model.ZERO
        want = expected.get(key, model.ZERO)
        if actual != want:
            drifts.append(Drift(key, want, actual, item is not None))
    return sorted(drifts, key=lambda d: (d.key.kind.value, d.key.id))


def find_drift(
    client: DynamoDBClient, table: str, *, segments: int = DEFAULT_SEGMENTS
) -> list[Drift]:
    """Recount every summary from the base items and list the ones that differ.

    Exact at a quiescent moment (the pipeline drained); while records are in flight, the
    summaries they have not reached yet show up as (transient) drift.
    """
    snapshot = read_snapshot(client, table, segments=segments)
    return compare(snapshot.recount, snapshot.summaries)
