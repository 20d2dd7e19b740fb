"""The production shape, projected (pure, no I/O): what both designs cost a month at 1 M, 10 M
and 100 M events a day on a stream of 1, 4 and 16 partitions, from batches simulated with the
load test's own generator and merged by the handlers' own code.

The formula. Lambda reads each shard on its own, and a table partition feeds one shard at a
time, so a function of item type ``f`` whose deployed filter passes a share ``d_f`` of the
records sees, per shard, ``E / 86,400 / P * d_f`` records a second (``E`` events a day, ``P``
partitions) and gets batches of

    n_f = clamp(round(E / 86,400 / P * d_f * W), 1, B)

records, ``W`` and ``B`` being the deployed mapping's batching window and batch size (the root
module's defaults, read from the deployed mapping, never copied). Invocations per event are
``sum_f d_f / n_f``, plus one record-less call per open shard and tumbling window.

The writes. A record's partition is its partition key's (``USER#<id>``: a user's records stay on
one shard, a video's spread over all of them). The simulation takes the generator's records of
partition 0 (the others are alike), lets each function's deployed filter choose its records,
cuts them into batches of ``n_f`` and merges every batch with ``video_stats.records.parse_batch``,
the handlers' own parse and merge: a batch writes one summary per key whose net change is not
zero. That count per delivered record is exact for the simulated traffic, not a model.

The bill. Lambda requests and GB-seconds (the run's assumed duration per invocation), plus the
summary writes' write units, table and index, at the per-write costs the run measured
(``WriteCost``). The reference design writes one ``TransactWriteItems`` of the two summaries per
record it receives (2 WRU per item, as AWS documents for transactions); its index write is
billed at 1 WRU, the reading least favourable to this project (AWS documents the doubling for
the table item only). The application's own view and vote writes are the same for both designs
and are not in the ratio.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from video_stats.model import AttributeMap, ItemType
from video_stats.records import parse_batch
from vstats.generator import EventGenerator, Operation

from benchmark.figures import PRICES, DurationModel, FunctionSettings, Prices

EVENTS_PER_DAY_GRID: Final = (1_000_000, 10_000_000, 100_000_000)
PARTITIONS_GRID: Final = (1, 4, 16)
PRODUCTION_USERS: Final = 100_000
PRODUCTION_VIDEOS: Final = 1_000
SECONDS_PER_DAY: Final = 86_400
DAYS_PER_MONTH: Final = 30

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Consumer:
    """One deployed mapping and its function: what it receives and how it batches."""

    item_type: ItemType
    batch_size: int
    window_seconds: float
    tumbling_window_seconds: int
    accepts: Callable[[Mapping[str, Any]], bool]  # the deployed filter (engine's own code)


@dataclass(frozen=True, slots=True)
class WriteCost:
    """Measured cost of one summary item write: table WRU and index WRU."""

    table_wru: float
    index_wru: float

    @property
    def wru_per_write(self) -> float:
        return self.table_wru + self.index_wru


@dataclass(frozen=True, slots=True)
class Design:
    """One configuration as the projection needs it."""

    consumers: tuple[Consumer, ...]
    settings: FunctionSettings
    cost: WriteCost
    writes_per_record: float | None = None  # None: merged per batch (this project)


# --- the simulated stream ------------------------------------------------------------------------


def stream_records(operations: Iterable[Operation]) -> Iterator[Record]:
    """The stream records (Lambda event format) the operations produce on a table that starts
    empty: a put of an unchanged item and a delete of a missing one produce none, as DynamoDB."""
    table: dict[tuple[str, str], AttributeMap] = {}
    sequence = 0
    for op in operations:
        key = (op.key["PK"]["S"], op.key["SK"]["S"])
        old = table.get(key)
        if op.action == "put":
            assert op.item is not None
            if old == op.item:
                continue
            table[key] = op.item
            name = "MODIFY" if old else "INSERT"
            images: dict[str, AttributeMap] = {"NewImage": op.item}
        else:
            if old is None:
                continue
            del table[key]
            name, images = "REMOVE", {}
        if old is not None:
            images["OldImage"] = old
        sequence += 1
        yield {
            "eventName": name,
            "eventSource": "aws:dynamodb",
            "dynamodb": {
                "Keys": op.key,
                "SequenceNumber": str(sequence),
                "StreamViewType": "NEW_AND_OLD_IMAGES",
                **images,
            },
        }


def production_operations(count: int, seed: int) -> list[Operation]:
    """``count`` operations of the load test's generator at the production shape (100,000
    users, 1,000 videos, Zipf, the default mix), with a deterministic clock."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    tick = iter(range(1 << 62))
    generator = EventGenerator(
        users=PRODUCTION_USERS,
        videos=PRODUCTION_VIDEOS,
        seed=seed,
        clock=lambda: start + timedelta(milliseconds=next(tick)),
    )
    return [generator.next() for _ in range(count)]


def partition_of(record: Mapping[str, Any], partitions: int) -> int:
    """The table partition (and so the shard) of a record: by its partition key."""
    pk = str(record["dynamodb"]["Keys"]["PK"]["S"])
    return zlib.crc32(pk.encode()) % partitions


# --- one cell ------------------------------------------------------------------------------------


def batch_records(events_per_day: float, partitions: int, share: float, consumer: Consumer) -> int:
    """``n_f`` of the module notes: records per batch per shard."""
    per_second = events_per_day / SECONDS_PER_DAY / partitions * share
    return max(1, min(consumer.batch_size, round(per_second * consumer.window_seconds)))


def changed_keys(batch: Sequence[Record], item_type: ItemType) -> int:
    """Summary writes of one batch, by the handlers' own parse and merge."""
    merged = parse_batch(batch, item_type)
    return sum(1 for delta in merged.keys.values() if not delta.counters().is_zero())


@dataclass(frozen=True, slots=True)
class Cell:
    events_per_day: int
    partitions: int
    invocations_per_event: float
    writes_per_event: float
    batch_records: tuple[int, ...]  # per consumer

    def monthly_usd(self, design: Design, prices: Prices = PRICES) -> float:
        events = self.events_per_day * DAYS_PER_MONTH
        invocations = self.invocations_per_event * events
        writes = self.writes_per_event * events
        per_invocation = writes / invocations if invocations else 0.0
        settings = design.settings
        duration: DurationModel = settings.duration
        gb_seconds = (
            invocations * duration.invocation_ms(per_invocation) / 1000 * settings.memory_mb / 1024
        )
        return (
            invocations * prices.lambda_request_per_million / 1e6
            + gb_seconds * prices.gb_second(settings.architecture)
            + writes
            * (design.cost.table_wru + design.cost.index_wru)
            * prices.wru_per_million
            / 1e6
        )


class Sample:
    """The simulated records with what each deployed filter passes and each record's partition,
    worked out once for every cell."""

    def __init__(self, records: Sequence[Record]) -> None:
        if not records:
            raise ValueError("no records to project from")
        self.records = list(records)
        # By identity: a consumer's filter need not be hashable; the consumer is kept alive.
        self._accepted: dict[int, tuple[Consumer, list[bool]]] = {}
        self._partitions: dict[int, list[int]] = {}

    def accepted(self, consumer: Consumer) -> list[bool]:
        key = id(consumer)
        if key not in self._accepted:
            self._accepted[key] = (consumer, [bool(consumer.accepts(r)) for r in self.records])
        return self._accepted[key][1]

    def share(self, consumer: Consumer) -> float:
        return sum(self.accepted(consumer)) / len(self.records)

    def delivered_on_one_shard(self, consumer: Consumer, partitions: int) -> list[Record]:
        """The records partition 0's shard hands to ``consumer``, in stream order."""
        if partitions not in self._partitions:
            self._partitions[partitions] = [partition_of(r, partitions) for r in self.records]
        where = self._partitions[partitions]
        accepted = self.accepted(consumer)
        return [r for r, p, ok in zip(self.records, where, accepted, strict=True) if ok and not p]


def project_cell(sample: Sample, design: Design, events_per_day: int, partitions: int) -> Cell:
    """One design at ``events_per_day`` on ``partitions`` partitions (see the module notes)."""
    invocations = writes = 0.0
    sizes: list[int] = []
    for consumer in design.consumers:
        share = sample.share(consumer)
        size = batch_records(events_per_day, partitions, share, consumer)
        sizes.append(size)
        if not share:
            continue
        invocations += share / size
        if consumer.tumbling_window_seconds > 0:
            closing_per_day = partitions * SECONDS_PER_DAY / consumer.tumbling_window_seconds
            invocations += closing_per_day / events_per_day
        if design.writes_per_record is not None:
            writes += share * design.writes_per_record
            continue
        delivered = sample.delivered_on_one_shard(consumer, partitions)
        # Whole batches only, unless the sample is smaller than one.
        sample_size = max(1, len(delivered) // size) * size
        batches = [
            delivered[i : i + size] for i in range(0, min(sample_size, len(delivered)), size)
        ]
        written = sum(changed_keys(batch, consumer.item_type) for batch in batches)
        writes += share * written / sum(len(batch) for batch in batches)
    return Cell(events_per_day, partitions, invocations, writes, tuple(sizes))


def projection_table(
    sample: Sample,
    reference: Design,
    ours: Design,
    events_per_day: Sequence[int] = EVENTS_PER_DAY_GRID,
    partitions: Sequence[int] = PARTITIONS_GRID,
) -> list[dict[str, Any]]:
    """results.json's ``projection``: one row per (events a day, partitions)."""
    rows = []
    for per_day in events_per_day:
        for count in partitions:
            ref_cell = project_cell(sample, reference, per_day, count)
            our_cell = project_cell(sample, ours, per_day, count)
            ref_usd = ref_cell.monthly_usd(reference)
            our_usd = our_cell.monthly_usd(ours)
            rows.append(
                {
                    "events_per_day": per_day,
                    "partitions": count,
                    "reference_usd_month": round(ref_usd, 2),
                    "ours_usd_month": round(our_usd, 2),
                    "ratio": round(ref_usd / our_usd, 2) if our_usd else None,
                    "ours_batch_records": list(our_cell.batch_records),
                    "ours_invocations_per_1000_records": round(
                        our_cell.invocations_per_event * 1000, 3
                    ),
                    "ours_writes_per_event": round(our_cell.writes_per_event, 4),
                    "reference_invocations_per_1000_records": round(
                        ref_cell.invocations_per_event * 1000, 3
                    ),
                    "reference_writes_per_event": round(ref_cell.writes_per_event, 4),
                }
            )
    return rows
