"""The production shape, projected (pure, no I/O): what both designs cost a month at 1 M, 10 M
and 100 M events a day on a stream of 1, 4 and 16 partitions, from batches simulated with the
load test's own generator and merged by the handlers' own code.

The formula. Lambda reads each shard on its own, and a table partition feeds one shard at a
time, so a function of item type ``f`` whose deployed filter passes a share ``d_f`` of the
records sees, per shard, ``E / 86,400 / P * d_f`` records a second (``E`` events a day, ``P``
partitions) and gets batches of

    n_f = clamp(round(E / 86,400 / P * d_f * W), 1, B)

records, ``W`` and ``B`` being the mapping's batching window and batch size: the reference
design's as deployed; this project's the root module's production defaults, read from the
Terraform configuration (``Batching.from_stream_mapping``), never copied, whatever window the
measured run used. Invocations per event are ``sum_f d_f / n_f``, plus one record-less call
per open shard and tumbling window. ``projection_by_window`` repeats the table at other
windows: the cost side of the cost/freshness trade-off (a summary lags by up to ``W``).

The writes. A record's partition is its partition key's (``USER#<id>``: a user's records stay on
one shard, a video's spread over all of them). The simulation splits the generator's records by
partition, lets each function's deployed filter choose its records, cuts each shard's records
into batches of ``n_f`` and merges every batch with ``vstats.effects.batch_effect``, that is
``video_stats.records.parse_batch``, the handlers' own parse and merge: this project writes
every key of a batch (a key whose records net to zero too: the write moves its mark), the GSI2
bucket its adapter predicts and the follow-up fix of a wrong prediction (``Writes``); the
reference one transaction per record. That count per delivered record is exact for the
simulated traffic, not a model.

The bill. Lambda requests and GB-seconds (each function's duration model for its write
requests and records per invocation: a transaction is one request), plus the write units of
every summary write, table and index, by the endpoint's own cost rules
(``localcloud.writestats``: one unit per started KB of the item, and of each index's projection
of it, a moved index key costing a delete and a put). Each write is costed on the largest
summary item of its kind the run left, its exactly-once marks replaced by the number lineage
pruning leaves (``video_stats.marks``: a child shard's write drops its ancestors' marks),
injected, not simulated: one mark per function and open lineage, that is per partition for a
video summary (every partition feeds it) and one partition's for a user summary (its records
share a partition key); each mark as long as a 40-digit sequence number, the longest the API
allows (``LONGEST_SEQUENCE_NUMBER``). The reference design writes one ``TransactWriteItems`` of
the two summaries per record it receives (2 WRU per item, as AWS documents for transactions);
its index writes are billed at 1 WRU, the reading least favourable to this project (AWS
documents the doubling for the table item only). The application's own view and vote writes are
the same for both designs and are not in the ratio. ``benchmark.full_bill`` adds every other
line of the bill (``benchmark.bill``).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from localcloud.writestats import IndexShape, item_size, write_cost
from video_stats import marks, model
from video_stats.model import AttributeMap, ItemType, SummaryKind
from vstats.effects import FUNCTION_OF_ITEM_TYPE, batch_effect
from vstats.generator import EventGenerator, Operation

from benchmark.figures import PRICES, FunctionSettings, Prices

EVENTS_PER_DAY_GRID: Final = (1_000_000, 10_000_000, 100_000_000)
PARTITIONS_GRID: Final = (1, 4, 16)
PRODUCTION_USERS: Final = 100_000
PRODUCTION_VIDEOS: Final = 1_000
#: Windows the sensitivity table adds to the measured and the production one (seconds).
SENSITIVITY_WINDOWS: Final = (60.0, 120.0)
MAX_BATCHING_WINDOW_SECONDS: Final = 300  # AWS's limit for a stream mapping
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

    def batched_as(self, batching: Batching) -> Consumer:
        """The same function and filter with another mapping's batching."""
        return replace(
            self,
            batch_size=batching.batch_size,
            window_seconds=batching.window_seconds,
            tumbling_window_seconds=batching.tumbling_window_seconds,
        )


@dataclass(frozen=True, slots=True)
class Batching:
    """How a mapping batches: what the projection needs of its settings."""

    batch_size: int
    window_seconds: float
    tumbling_window_seconds: int

    @classmethod
    def from_stream_mapping(cls, settings: Mapping[str, Any]) -> Batching:
        """From the root module's ``stream_mapping`` object (``terraform console``'s
        ``jsonencode``); ValueError naming the attribute if one is missing or out of range."""
        batch_size = _number(settings, "batch_size", 1, 10_000)
        window = _number(
            settings, "maximum_batching_window_in_seconds", 0, MAX_BATCHING_WINDOW_SECONDS
        )
        tumbling = _number(settings, "tumbling_window_in_seconds", 0, 900)
        return cls(int(batch_size), float(window), int(tumbling))

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "maximum_batching_window_in_seconds": self.window_seconds,
            "tumbling_window_in_seconds": self.tumbling_window_seconds,
        }


def _number(settings: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = settings.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"stream_mapping.{name} is {value!r}, not a number in [{low}, {high}]")
    return float(value)


@dataclass(frozen=True, slots=True)
class WriteCost:
    """Write units of one summary item write: table and indexes."""

    table_wru: float
    index_wru: float

    @property
    def wru_per_write(self) -> float:
        return self.table_wru + self.index_wru


#: What a summary write changes (docs/design.md §6): ``mark`` only the exactly-once mark (a key
#: whose records net to zero: this project writes it anyway), ``likes`` a counter other than
#: views, ``views`` the views within their GSI2 bucket, ``bucket`` the views and the GSI2 bucket
#: in the same write, ``fix`` the follow-up UpdateItem that moves a summary to its bucket when
#: the update predicted it wrong (``video_stats.store``), ``rejected`` a conditional write whose
#: condition failed (a redelivered key: it costs the item's units and changes nothing).
WRITE_CHANGES: Final = ("mark", "likes", "views", "bucket", "fix", "rejected")
#: A kind of summary write: which summary and what it changes.
WriteKind = tuple[SummaryKind, str]


@dataclass(frozen=True, slots=True)
class SummaryShape:
    """What a summary write costs in one design, from what its run measured: the largest
    summary item of each kind it left, the table's indexes, transactional or not."""

    items: Mapping[SummaryKind, AttributeMap]
    indexes: tuple[IndexShape, ...]
    transactional: bool
    measured_partitions: int = 1  # of the stream the items were measured on

    def item_after_a_day(self, kind: SummaryKind, partitions: int) -> AttributeMap:
        """The measured item with the marks ``partitions`` leave (``marks_after_a_day``; on the
        partitions it was measured on, as many as it had if that is more), each as long as the
        longest sequence number DynamoDB Streams may use (``with_marks``)."""
        count = marks_after_a_day(kind, partitions)
        if partitions == self.measured_partitions:
            count = max(count, sum(1 for name in self.items[kind] if model.is_mark_attribute(name)))
        return with_marks(self.items[kind], count)

    def cost(self, kind: SummaryKind, change: str, partitions: int) -> WriteCost:
        if kind not in self.items:
            return WriteCost(1.0, 0.0)
        old = self.item_after_a_day(kind, partitions)
        new = changed_item(old, change)
        table = write_cost(old, new, self.indexes, self.transactional).units
        # Index writes at 1 WRU even in a transaction (the reading least favourable to us).
        index = sum(write_cost(old, new, self.indexes, False).index_units.values())
        return WriteCost(float(table), float(index))


def changed_item(old: AttributeMap, change: str) -> AttributeMap:
    """``old`` after a write of ``change`` (``WRITE_CHANGES``)."""
    new = dict(old)
    if change not in WRITE_CHANGES:
        raise ValueError(f"unknown write change {change!r}")
    if change in ("likes", "views", "bucket"):
        counter = "likes" if change == "likes" else "views"
        current = int((old.get(counter) or {}).get("N", "0"))
        new[counter] = {"N": str(current + 1)}
    if change in ("bucket", "fix") and "GSI2SK" in old:
        new["GSI2SK"] = {"S": _other(str(old["GSI2SK"].get("S", "")))}
    if change == "mark":
        for name, value in old.items():
            if model.is_mark_attribute(name):
                new[name] = {"S": _other(str(value.get("S", "")))}
                break
    return new


def _other(text: str) -> str:
    """Another string of the same length (a changed value of the same size)."""
    if not text:
        return "0"
    return text[:-1] + ("1" if text[-1] == "0" else "0")


def marks_after_a_day(kind: SummaryKind, partitions: int) -> int:
    """Marks a summary holds in steady state, however long the day: with lineage pruning one
    per function and open lineage; a video summary is fed by every partition, a user summary by
    its user's partition."""
    fed_by = partitions if kind is SummaryKind.VIDEO else 1
    return len(FUNCTION_OF_ITEM_TYPE) * fed_by


#: The longest sequence number the DynamoDB Streams API allows (40 digits; the minimum is 21).
#: AWS does not say how long a table's numbers are, and the local stream draws 21-40 digits per
#: shard, so a measured mark's length is luck: every injected mark is this long instead, the
#: reading least favourable to this project (docs/design.md §6).
LONGEST_SEQUENCE_NUMBER: Final = 10**40 - 1


def with_marks(item: AttributeMap, count: int) -> AttributeMap:
    """``item`` with ``count`` marks named and valued as the handlers write them, each for
    ``LONGEST_SEQUENCE_NUMBER``; an item without marks (the reference design's) keeps none."""
    if not any(model.is_mark_attribute(name) for name in item):
        return dict(item)
    kept = {name: value for name, value in item.items() if not model.is_mark_attribute(name)}
    value = marks.encode_mark(LONGEST_SEQUENCE_NUMBER, 0.0)
    functions = list(FUNCTION_OF_ITEM_TYPE.values())
    for n in range(count):
        function = functions[n % len(functions)]
        kept[marks.mark_name(function, marks.shard_tag(f"shard-{n}"))] = {"S": value}
    return kept


@dataclass(frozen=True, slots=True)
class Design:
    """One configuration as the projection needs it. ``writes_every_key``: the handler writes
    every key of a batch, also one whose records net to zero (this project: the write moves
    the mark); ``ranks_by_views``: it keeps GSI2's views bucket (this project, ``store``);
    ``items_per_request``: summary items one write request writes (the reference design's
    transaction: 2); ``rejected_per_write``: conditional writes rejected per write request, as
    the measured run saw them (redeliveries)."""

    consumers: tuple[Consumer, ...]
    settings: FunctionSettings
    summaries: SummaryShape
    writes_every_key: bool = False
    ranks_by_views: bool = False
    items_per_request: float = 1.0
    rejected_per_write: float = 0.0


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


def summary_writes(batch: Sequence[Record], item_type: ItemType) -> Counter[WriteKind]:
    """Summary writes of one batch that change a counter, by the handlers' own parse and
    merge: one per key whose net change is not zero (``Writes`` adds the rest)."""
    writes: Counter[WriteKind] = Counter()
    for key, counters in batch_effect(batch, item_type).items():
        if not counters.is_zero():
            writes[(key.kind, "views" if counters.views else "likes")] += 1
    return writes


class Writes:
    """Every summary write of a design's batches, applied in order: one per key whose net
    change is not zero, or per key at all (``writes_every_key``); with ``ranks_by_views`` the
    GSI2 bucket each write sets as ``video_stats.store`` predicts it (from the views the
    shard's container last saw on the item, else ``if_not_exists``) and the follow-up write
    that fixes a wrong prediction. ``history``: the views each summary holds before the batches
    (every container has seen them): a bucket move is rare on a summary with a history and
    frequent on a new one, so a sample of minutes started from an empty table would bill every
    summary's first moves again and again (``history_views``)."""

    def __init__(self, design: Design, history: Mapping[Any, int] | None = None) -> None:
        self.design = design
        self.counts: Counter[WriteKind] = Counter()
        self._history: Mapping[Any, int] = history or {}
        self._views: dict[Any, int] = dict(self._history)
        self._bucket: dict[Any, str] = {
            key: model.summary_index_bucket(views) for key, views in self._history.items()
        }
        self._seen: dict[tuple[int, int], dict[Any, int]] = {}

    def apply(
        self, batch: Sequence[Record], item_type: ItemType, consumer: int, shard: int
    ) -> None:
        seen = self._seen.setdefault((consumer, shard), {})
        for key, counters in batch_effect(batch, item_type).items():
            zero = counters.is_zero()
            if zero and not self.design.writes_every_key:
                continue
            if not self.design.ranks_by_views:
                change = "mark" if zero else ("views" if counters.views else "likes")
                self.counts[(key.kind, change)] += 1
                continue
            exists = key in self._views
            old_bucket = self._bucket.get(key)
            views = self._views.get(key, 0) + counters.views
            known = seen.get(key, self._history.get(key))
            if counters.views and known is not None:
                bucket = model.summary_index_bucket(known + counters.views)
            else:
                bucket = (
                    old_bucket
                    if exists and old_bucket is not None
                    else (model.summary_index_bucket(counters.views))
                )
            if zero:
                change = "mark"
            elif exists and bucket != old_bucket:
                change = "bucket"
            else:
                change = "views" if counters.views else "likes"
            self.counts[(key.kind, change)] += 1
            self._views[key] = views
            seen[key] = views
            right = model.summary_index_bucket(views)
            if bucket != right:
                self.counts[(key.kind, "fix")] += 1
                bucket = right
            self._bucket[key] = bucket


@dataclass(frozen=True, slots=True)
class ConsumerLoad:
    """One function in one cell, per event: invocations, records, summary writes by kind."""

    invocations: float
    records: float
    writes: Mapping[WriteKind, float]

    @property
    def item_writes(self) -> float:
        return sum(self.writes.values())

    def write_requests(self, items_per_request: float) -> float:
        """Write requests: a fix is one request of its own; the other items
        ``items_per_request`` to a request."""
        fixes = sum(n for (_, change), n in self.writes.items() if change == "fix")
        return fixes + (self.item_writes - fixes) / items_per_request


@dataclass(frozen=True, slots=True)
class Cell:
    events_per_day: int
    partitions: int
    invocations_per_event: float
    writes: Mapping[WriteKind, float]  # summary item writes per event, by kind
    batch_records: tuple[int, ...]  # per consumer
    consumers: tuple[ConsumerLoad, ...] = ()

    @property
    def writes_per_event(self) -> float:
        return sum(self.writes.values())

    def wru_per_event(self, design: Design) -> float:
        return sum(
            per_event * design.summaries.cost(kind, change, self.partitions).wru_per_write
            for (kind, change), per_event in self.writes.items()
        )

    def gb_seconds_per_event(self, design: Design) -> list[float]:
        """Per consumer: billed GB-seconds per event, each invocation at the design's duration
        model for its write requests and records."""
        settings = design.settings
        result = []
        for load in self.consumers:
            if not load.invocations:
                result.append(0.0)
                continue
            requests = load.write_requests(design.items_per_request) / load.invocations
            records = load.records / load.invocations
            ms = settings.duration.invocation_ms(requests, records)
            result.append(load.invocations * ms / 1000 * settings.memory_mb / 1024)
        return result

    def monthly_usd(self, design: Design, prices: Prices = PRICES) -> float:
        """Aggregation cost a month: Lambda requests and GB-seconds, summary write units."""
        events = self.events_per_day * DAYS_PER_MONTH
        settings = design.settings
        gb_seconds = sum(self.gb_seconds_per_event(design)) * events
        return (
            self.invocations_per_event * events * prices.lambda_request_per_million / 1e6
            + gb_seconds * prices.gb_second(settings.architecture)
            + self.wru_per_event(design) * events * prices.wru_per_million / 1e6
        )


class Sample:
    """The simulated records with what each deployed filter passes and each record's partition,
    worked out once for every cell."""

    def __init__(self, records: Sequence[Record]) -> None:
        if not records:
            raise ValueError("no records to project from")
        self.records = list(records)
        # By the filter's identity (it need not be hashable; it is kept alive here): the same
        # function batched another way passes the same records.
        self._accepted: dict[int, tuple[Callable[..., bool], list[bool]]] = {}
        self._partitions: dict[int, list[int]] = {}
        # (consumers, batch sizes, handler, partitions) -> the writes: costs do not change them
        self._net_views: dict[tuple[Any, ...], dict[Any, int]] = {}
        self.simulations: dict[tuple[Any, ...], tuple[list[Counter[WriteKind]], list[int]]] = {}

    def accepted(self, consumer: Consumer) -> list[bool]:
        accepts = consumer.accepts
        key = id(accepts)
        if key not in self._accepted:
            self._accepted[key] = (accepts, [bool(accepts(r)) for r in self.records])
        return self._accepted[key][1]

    def share(self, consumer: Consumer) -> float:
        return sum(self.accepted(consumer)) / len(self.records)

    def net_views(self, consumer: Consumer) -> dict[Any, int]:
        """The views the records ``consumer`` receives add to each summary, net (positive
        only), by the handlers' merge."""
        key = (consumer.item_type, id(consumer.accepts))
        if key not in self._net_views:
            delivered = [
                r for r, ok in zip(self.records, self.accepted(consumer), strict=True) if ok
            ]
            self._net_views[key] = {
                summary: counters.views
                for summary, counters in batch_effect(delivered, consumer.item_type).items()
                if counters.views > 0
            }
        return self._net_views[key]

    def delivered_per_shard(self, consumer: Consumer, partitions: int) -> list[list[Record]]:
        """The records each partition's shard hands to ``consumer``, in stream order."""
        if partitions not in self._partitions:
            self._partitions[partitions] = [partition_of(r, partitions) for r in self.records]
        shards: list[list[Record]] = [[] for _ in range(partitions)]
        accepted = self.accepted(consumer)
        for record, where, ok in zip(
            self.records, self._partitions[partitions], accepted, strict=True
        ):
            if ok:
                shards[where].append(record)
        return shards


def project_cell(sample: Sample, design: Design, events_per_day: int, partitions: int) -> Cell:
    """One design at ``events_per_day`` on ``partitions`` partitions (see the module notes).
    The writes are simulated once per sample for the same batches (``_simulate``): the rate,
    window and batch size matter only through the records per batch they give."""
    sizes = tuple(
        batch_records(events_per_day, partitions, sample.share(c), c) for c in design.consumers
    )
    counts, merged = _simulate(sample, design, sizes, partitions, events_per_day)
    loads: list[ConsumerLoad] = []
    total: dict[WriteKind, float] = {}
    invocations = 0.0
    for c, consumer in enumerate(design.consumers):
        share = sample.share(consumer)
        calls = share / sizes[c] if share else 0.0
        if share and consumer.tumbling_window_seconds > 0:
            calls += (
                partitions * SECONDS_PER_DAY / consumer.tumbling_window_seconds / events_per_day
            )
        writes = {kind: share * n / merged[c] for kind, n in counts[c].items() if merged[c]}
        if design.rejected_per_write:
            for summary in {summary for summary, change in writes if change != "fix"}:
                made = sum(
                    v for (k, change), v in writes.items() if k is summary and change != "fix"
                )
                writes[(summary, "rejected")] = made * design.rejected_per_write
        for kind, value in writes.items():
            total[kind] = total.get(kind, 0.0) + value
        invocations += calls
        loads.append(ConsumerLoad(calls, share, writes))
    return Cell(events_per_day, partitions, invocations, total, sizes, tuple(loads))


def history_views(sample: Sample, design: Design, events_per_day: int) -> dict[Any, int]:
    """The views each summary holds after a month of ``events_per_day`` (the sample's net
    views per summary, scaled to a month's events): the bill is a month of steady operation.
    The first month from an empty table adds about log2(views) bucket moves per summary, a few
    million write units in all at 100 M events a day (docs/design.md §6)."""
    scale = events_per_day * DAYS_PER_MONTH / len(sample.records)
    history: dict[Any, int] = {}
    for consumer in design.consumers:
        for key, views in sample.net_views(consumer).items():
            history[key] = history.get(key, 0) + round(views * scale)
    return history


def _simulate(
    sample: Sample, design: Design, sizes: tuple[int, ...], partitions: int, events_per_day: int
) -> tuple[list[Counter[WriteKind]], list[int]]:
    """Per consumer: the summary writes of its whole batches of ``sizes`` records per shard
    (``Writes``, from a month's history of ``events_per_day`` when the design ranks by views)
    and the records they merged; cached in the sample."""
    key = (
        tuple((c.item_type, id(c.accepts)) for c in design.consumers),  # kept alive by the sample
        sizes,
        design.writes_every_key,
        design.ranks_by_views,
        partitions,
        events_per_day if design.ranks_by_views else None,  # the history's size
    )
    if key in sample.simulations:
        return sample.simulations[key]
    # Per consumer and shard: its whole batches (unless the shard's sample is smaller than one).
    batches: list[list[list[Sequence[Record]]]] = []
    for consumer, size in zip(design.consumers, sizes, strict=True):
        shards: list[list[Sequence[Record]]] = []
        if sample.share(consumer):
            for delivered in sample.delivered_per_shard(consumer, partitions):
                whole = min(len(delivered), max(1, len(delivered) // size) * size)
                shards.append([delivered[i : i + size] for i in range(0, whole, size)])
        batches.append(shards)
    # Batches in time order, round-robin over the shards (they run side by side), so a
    # container's memory of a summary is as stale as it would be; one state per design (both
    # functions write the same summaries).
    history = history_views(sample, design, events_per_day) if design.ranks_by_views else None
    shared = Writes(design, history)
    rounds = max((len(shard) for shards in batches for shard in shards), default=0)
    merged = [0] * len(design.consumers)
    counts: list[Counter[WriteKind]] = [Counter() for _ in design.consumers]
    for index in range(rounds):
        for c, (consumer, shards) in enumerate(zip(design.consumers, batches, strict=True)):
            for s, shard in enumerate(shards):
                if index < len(shard):
                    before = Counter(shared.counts)
                    shared.apply(shard[index], consumer.item_type, c, s)
                    counts[c].update(shared.counts - before)
                    merged[c] += len(shard[index])
    sample.simulations[key] = (counts, merged)
    return counts, merged


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
                    "batching_window_seconds": batching_window(ours),
                    "reference_usd_month": round(ref_usd, 2),
                    "ours_usd_month": round(our_usd, 2),
                    "ratio": round(ref_usd / our_usd, 2) if our_usd else None,
                    "ours_batch_records": list(our_cell.batch_records),
                    "ours_invocations_per_1000_records": round(
                        our_cell.invocations_per_event * 1000, 3
                    ),
                    "ours_writes_per_event": round(our_cell.writes_per_event, 4),
                    "ours_wru_per_event": round(our_cell.wru_per_event(ours), 4),
                    "ours_video_summary_bytes": _item_bytes(ours, SummaryKind.VIDEO, count),
                    "ours_marks_per_video_summary": marks_after_a_day(SummaryKind.VIDEO, count),
                    "reference_invocations_per_1000_records": round(
                        ref_cell.invocations_per_event * 1000, 3
                    ),
                    "reference_writes_per_event": round(ref_cell.writes_per_event, 4),
                    "reference_wru_per_event": round(ref_cell.wru_per_event(reference), 4),
                }
            )
    return rows


def batching_window(design: Design) -> float:
    """The design's batching window (its functions share one mapping configuration; the
    longest if they did not)."""
    return max((c.window_seconds for c in design.consumers), default=0.0)


def sensitivity_windows(measured: float, production: float) -> list[float]:
    """The windows of ``projection_by_window``: the measured run's, ``SENSITIVITY_WINDOWS``
    and the production one, in order, each once."""
    return sorted({float(measured), *SENSITIVITY_WINDOWS, float(production)})


def projection_by_window(
    sample: Sample,
    reference: Design,
    ours: Design,
    windows: Iterable[float],
    *,
    events_per_day: Sequence[int] = EVENTS_PER_DAY_GRID,
    partitions: Sequence[int] = PARTITIONS_GRID,
) -> list[dict[str, Any]]:
    """results.json's ``projection_by_window``: the projection with this project's batching
    window set to each of ``windows`` (batch size and tumbling window unchanged), one row per
    window and cell. The reference design batches one record: no window changes it."""
    rows = []
    for window in windows:
        batched = replace(
            ours, consumers=tuple(replace(c, window_seconds=float(window)) for c in ours.consumers)
        )
        for row in projection_table(sample, reference, batched, events_per_day, partitions):
            rows.append(
                {
                    name: row[name]
                    for name in (
                        "batching_window_seconds",
                        "events_per_day",
                        "partitions",
                        "reference_usd_month",
                        "ours_usd_month",
                        "ratio",
                        "ours_batch_records",
                    )
                }
            )
    return rows


def _item_bytes(design: Design, kind: SummaryKind, partitions: int) -> int | None:
    if kind not in design.summaries.items:
        return None
    return item_size(design.summaries.item_after_a_day(kind, partitions))
