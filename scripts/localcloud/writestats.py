"""DynamoDB write accounting at the endpoint: requests and write request units per table.

AWS's rules (DynamoDB developer guide, "Read/write capacity mode"; docs/design.md §6), applied
to the item as stored before and after each write:

* one write of an item costs ``ceil(size / 1 KB)`` WRU (at least 1), the size being the
  larger of the item before and after; a transactional write costs twice that;
* a conditional write whose condition fails still costs the units of the stored item;
* a global secondary index the item is in (before or after) costs its own units when the
  projected attributes change: one write for an update, two when the index key changes
  (delete + put), sized by the projected attributes.

Item size is approximated from the attribute names and values (strings and binaries by
their UTF-8 / decoded length, numbers by about one byte per two digits, 1 byte for BOOL
and NULL, 3 bytes of overhead per list or map): close to AWS's figure for the small items
of this project, not byte-exact.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

AttributeMap = Mapping[str, Mapping[str, Any]]
KB = 1024


def attribute_value_size(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        digits = len(str(data).lstrip("-").replace(".", "").lstrip("0")) or 1
        return (digits + 1) // 2 + 1
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in data)
    if kind == "NS":
        return sum(attribute_value_size({"N": n}) for n in data)
    if kind == "BS":
        return sum(_binary_size(b) for b in data)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_value_size(v) for k, v in data.items())
    return len(str(data))


def _binary_size(data: Any) -> int:
    if isinstance(data, bytes | bytearray):
        return len(data)
    # Base64 text on the wire: 4 characters carry 3 bytes.
    return len(str(data)) * 3 // 4


def item_size(item: AttributeMap) -> int:
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


@dataclass(frozen=True, slots=True)
class IndexShape:
    name: str
    keys: tuple[str, ...]  # the index's hash (and range) key attributes
    table_keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    non_key_attributes: tuple[str, ...] = ()

    def project(self, item: AttributeMap) -> dict[str, Any]:
        if self.projection == "ALL":
            return dict(item)
        wanted = {*self.keys, *self.table_keys}
        if self.projection == "INCLUDE":
            wanted.update(self.non_key_attributes)
        return {k: v for k, v in item.items() if k in wanted}

    def holds(self, item: AttributeMap | None) -> bool:
        return item is not None and all(key in item for key in self.keys)


def index_write_units(index: IndexShape, old: AttributeMap | None, new: AttributeMap | None) -> int:
    in_old, in_new = index.holds(old), index.holds(new)
    if old is not None and new is not None and in_old and in_new:
        old_view, new_view = index.project(old), index.project(new)
        if all(old[k] == new[k] for k in index.keys):
            return 0 if old_view == new_view else write_units(item_size(new_view))
        return write_units(item_size(old_view)) + write_units(item_size(new_view))
    if new is not None and in_new:
        return write_units(item_size(index.project(new)))
    if old is not None and in_old:
        return write_units(item_size(index.project(old)))
    return 0


@dataclass(frozen=True, slots=True)
class WriteCost:
    units: int
    index_units: dict[str, int]


def write_cost(
    old: AttributeMap | None,
    new: AttributeMap | None,
    indexes: Sequence[IndexShape],
    transactional: bool,
) -> WriteCost:
    size = max(item_size(old) if old else 0, item_size(new) if new else 0)
    factor = 2 if transactional else 1
    index_units = {
        index.name: units * factor
        for index in indexes
        if (units := index_write_units(index, old, new))
    }
    return WriteCost(write_units(size) * factor, index_units)


@dataclass
class _OperationCounters:
    requests: int = 0
    items: int = 0
    write_request_units: int = 0


@dataclass
class _TableCounters:
    write_requests: int = 0
    items_written: int = 0
    write_request_units: int = 0
    conditional_check_failures: int = 0
    gsi_write_units: dict[str, int] = field(default_factory=dict)
    by_operation: dict[str, _OperationCounters] = field(default_factory=dict)

    def operation(self, name: str) -> _OperationCounters:
        return self.by_operation.setdefault(name, _OperationCounters())


class WriteStats:
    """Thread-safe counters, filled by the endpoint's DynamoDB hooks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, _TableCounters] = {}

    def record_request(self, table: str, operation: str) -> None:
        with self._lock:
            counters = self._tables.setdefault(table, _TableCounters())
            counters.write_requests += 1
            counters.operation(operation).requests += 1

    def record_write(
        self, table: str, operation: str, cost: WriteCost, condition_failed: bool = False
    ) -> None:
        with self._lock:
            counters = self._tables.setdefault(table, _TableCounters())
            counters.items_written += 0 if condition_failed else 1
            counters.write_request_units += cost.units
            counters.conditional_check_failures += int(condition_failed)
            for name, units in cost.index_units.items():
                counters.gsi_write_units[name] = counters.gsi_write_units.get(name, 0) + units
            op = counters.operation(operation)
            op.items += 0 if condition_failed else 1
            op.write_request_units += cost.units

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                table: {
                    "write_requests": c.write_requests,
                    "items_written": c.items_written,
                    "write_request_units": c.write_request_units,
                    "gsi_write_units": dict(c.gsi_write_units),
                    "conditional_check_failures": c.conditional_check_failures,
                    "by_operation": {
                        name: {
                            "requests": op.requests,
                            "items": op.items,
                            "write_request_units": op.write_request_units,
                        }
                        for name, op in c.by_operation.items()
                    },
                }
                for table, c in self._tables.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._tables.clear()
