"""What a summary item weighs after a simulated day of shard rotation, and what one update of
it costs, lever by lever (docs/design.md §6; ``make bench-marks``). Pure: builds the items with the
handlers' own mark functions and prices them with the local endpoint's write accounting
(``localcloud.writestats``: item size, write units, index units by AWS's rules).

The day: a table with P partitions, each stream shard closing every ``rotation_hours`` (AWS:
"roughly every four hours") with a child continuing it, partitions rotating at staggered
times; observed ``hours`` after the start. The worst case is a hot video summary: every shard
of every partition wrote it (views and votes) until it closed, and the item is updated all the
time, so a mark is gone as soon as a rule allows (retention, lineage). A user summary lives in
one partition, so it carries one partition's shards.

    python -m benchmark marks                            # 21, 28, 40 digits; 1, 4, 16 partitions
    python -m benchmark marks --seq-digits 21 --partitions 16 64 --hours 49
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar

from localcloud.writestats import IndexShape, item_size, write_cost, write_units
from video_stats import marks
from video_stats.model import (
    DATA_MODEL_ATTRIBUTES,
    SummaryKey,
    SummaryKind,
    summary_identity,
    summary_index_bucket,
    summary_item_key,
)
from vstats import cli

T = TypeVar("T", int, float)

HOUR: Final = 3600
START: Final = 1_764_547_200  # 2025-12-01T00:00Z: any epoch does
FUNCTIONS: Final = ("views", "votes")
#: A stream record's SequenceNumber: "Length Constraints: Minimum length of 21. Maximum length
#: of 40." (DynamoDB Streams API Reference, StreamRecord).
SEQ_DIGITS: Final = (21, 40)
#: Bounds of the command line: the model is linear in both, these keep a run to seconds.
MAX_PARTITIONS: Final = 1024
MAX_HOURS: Final = 168.0


@dataclass(frozen=True, slots=True)
class Design:
    name: str
    compact_marks: bool = False
    lineage_pruning: bool = False
    retention_hours: float = 25.0  # 25 h fixed before; record age (6 h) + 1 h margin after
    gsi1_all: bool = True
    gsi2_bucket: bool = False


BEFORE: Final = Design("as built (before)")
LEVERS: Final = (
    BEFORE,
    replace(BEFORE, name="1. + lineage pruning", lineage_pruning=True),
    replace(BEFORE, name="2. + retention 6 h + 1 h", lineage_pruning=True, retention_hours=7),
    replace(
        BEFORE,
        name="3. + compact marks",
        lineage_pruning=True,
        retention_hours=7,
        compact_marks=True,
    ),
    replace(
        BEFORE,
        name="4. + GSI2 views bucket, KEYS_ONLY",
        lineage_pruning=True,
        retention_hours=7,
        compact_marks=True,
        gsi2_bucket=True,
    ),
    Design(
        "5. + GSI1 INCLUDE data model (after)",
        compact_marks=True,
        lineage_pruning=True,
        retention_hours=7,
        gsi1_all=False,
        gsi2_bucket=True,
    ),
)
AFTER: Final = LEVERS[-1]
#: Each lever on its own, against the design as built.
ALONE: Final = (
    replace(BEFORE, name="lineage pruning alone", lineage_pruning=True),
    replace(BEFORE, name="retention 6 h + 1 h alone", retention_hours=7),
    replace(BEFORE, name="compact marks alone", compact_marks=True),
    replace(BEFORE, name="GSI2 bucket alone", gsi2_bucket=True),
    replace(BEFORE, name="GSI1 INCLUDE alone", gsi1_all=False),
)


@dataclass(frozen=True, slots=True)
class ShardLife:
    shard_id: str
    partition: int
    opened: float
    closed: float | None  # None: still open
    first_seq: int


def shards_of_day(
    partitions: int, hours: float = 25.0, rotation_hours: float = 4.0, seq_digits: int = 21
) -> list[ShardLife]:
    """Every shard of the day, partitions rotating at staggered times."""
    now = START + hours * HOUR
    shards = []
    for p in range(partitions):
        opened = START - (p / partitions) * rotation_hours * HOUR
        generation = 0
        while opened < now:
            closes = opened + rotation_hours * HOUR
            shard_id = f"shardId-{int(opened * 1000):020d}-{p:04x}{generation:04x}"
            first = 10 ** (seq_digits - 1) + 7_919 * p + generation
            shards.append(ShardLife(shard_id, p, opened, closes if closes < now else None, first))
            opened, generation = closes, generation + 1
    return shards


def _mark(design: Design, function: str, shard: ShardLife, at: float) -> tuple[str, str]:
    # The shard's last record: its sequence number has grown by ~10^6 per second of life.
    seq = shard.first_seq + int((at - shard.opened) * 10**6)
    names = marks.shard_marks(function, shard.shard_id)
    if design.compact_marks:
        return names.current, marks.encode_mark(seq, at)
    return names.legacy, f"{marks.legacy_encode_seq(seq)}|{int(at)}"


def marks_left(
    design: Design, shards: list[ShardLife], now: float, partition: int | None = None
) -> dict[str, dict[str, str]]:
    """The marks a constantly updated summary holds at ``now`` (``partition``: only that
    partition's shards feed it, as for a user summary)."""
    chains: dict[int, list[ShardLife]] = defaultdict(list)
    for shard in shards:
        if partition in (None, shard.partition):
            chains[shard.partition].append(shard)
    found: dict[str, dict[str, str]] = {}
    for function in FUNCTIONS:
        for partition_shards in chains.values():
            chain = sorted(partition_shards, key=lambda s: s.opened)
            if design.lineage_pruning:
                chain = chain[-1:]  # the open child's first write removed its ancestors' marks
            for shard in chain:
                last = shard.closed if shard.closed is not None else now
                if now - last > design.retention_hours * HOUR:
                    continue  # removed inside a later update of the item
                name, value = _mark(design, function, shard, last)
                found[name] = {"S": value}
    return found


def summary_item(
    design: Design, key: SummaryKey, views: int, mark_items: dict[str, dict[str, str]]
) -> dict[str, Any]:
    item: dict[str, Any] = {**summary_item_key(key), **summary_identity(key, 4)}
    item |= {
        "views": {"N": str(views)},
        "duration": {"N": str(views * 300)},
        "likes": {"N": str(views // 20)},
        "dislikes": {"N": str(views // 200)},
    }
    if design.gsi2_bucket:
        item["GSI2SK"] = {"S": summary_index_bucket(views)}
    return item | mark_items


def indexes(design: Design) -> list[IndexShape]:
    gsi1 = IndexShape(
        "GSI1",
        ("GSI1PK", "GSI1SK"),
        ("PK", "SK"),
        "ALL" if design.gsi1_all else "INCLUDE",
        () if design.gsi1_all else DATA_MODEL_ATTRIBUTES,
    )
    if design.gsi2_bucket:
        gsi2 = IndexShape("GSI2", ("GSI2PK", "GSI2SK"), ("PK", "SK"), "KEYS_ONLY")
    else:
        gsi2 = IndexShape(
            "GSI2",
            ("GSI2PK", "views"),
            ("PK", "SK"),
            "INCLUDE",
            ("type", "userId", "videoId", "duration", "likes", "dislikes"),
        )
    return [gsi1, gsi2]


@dataclass(frozen=True, slots=True)
class Measure:
    design: str
    kind: str
    partitions: int
    seq_digits: int
    marks: int
    item_bytes: int
    table_wru: int
    gsi1_wru: int
    gsi2_wru: int

    @property
    def total_wru(self) -> int:
        return self.table_wru + self.gsi1_wru + self.gsi2_wru


def measure(
    design: Design,
    kind: SummaryKind,
    partitions: int,
    seq_digits: int = 21,
    *,
    hours: float = 25.0,
    views: int = 1_000_000,
) -> Measure:
    """The item after the day, and the cost of one more view applied to it by one shard."""
    shards = shards_of_day(partitions, hours, seq_digits=seq_digits)
    now = START + hours * HOUR
    key = SummaryKey(kind, "1000")
    feeding = None if kind is SummaryKind.VIDEO else 0
    before = summary_item(design, key, views, marks_left(design, shards, now, feeding))
    after = dict(before)
    after["views"] = {"N": str(views + 1)}
    after["duration"] = {"N": str(views * 300 + 300)}
    writer = next(s for s in shards if s.closed is None and s.partition == 0)
    name, value = _mark(design, "views", writer, now + 1)
    after[name] = {"S": value}
    if design.gsi2_bucket:
        after["GSI2SK"] = {"S": summary_index_bucket(views + 1)}
    cost = write_cost(before, after, indexes(design), transactional=False)
    return Measure(
        design.name,
        kind.value.lower(),
        partitions,
        seq_digits,
        sum(1 for n in before if marks.is_mark_name(n)),
        max(item_size(before), item_size(after)),
        cost.units,
        cost.index_units.get("GSI1", 0),
        cost.index_units.get("GSI2", 0),
    )


def table(
    seq_digits: Sequence[int] = (21, 28, 40),
    designs: Sequence[Design] = LEVERS,
    partitions: Sequence[int] = (1, 4, 16),
    hours: float = 25.0,
) -> Iterator[Measure]:
    for digits in seq_digits:
        for count in partitions:
            for kind in (SummaryKind.VIDEO, SummaryKind.USER):
                for design in designs:
                    yield measure(design, kind, count, digits, hours=hours)


def markdown(rows: list[Measure]) -> str:
    lines = [
        "| summary | partitions | seq digits | design | marks | item bytes | table WRU "
        "| GSI1 WRU | GSI2 WRU | WRU per update |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in rows:
        lines.append(
            f"| {m.kind} | {m.partitions} | {m.seq_digits} | {m.design} | {m.marks} "
            f"| {m.item_bytes:,} | {m.table_wru} | {m.gsi1_wru} | {m.gsi2_wru} | {m.total_wru} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seq-digits",
        nargs="+",
        type=_within(cli.positive_int, *SEQ_DIGITS, "digits"),
        default=(21, 28, 40),
        metavar="N",
        help="lengths of the stream's sequence numbers (AWS: 21 to 40; default: 21 28 40)",
    )
    parser.add_argument(
        "--partitions",
        nargs="+",
        type=cli.positive_int_at_most(MAX_PARTITIONS, "partitions"),
        default=(1, 4, 16),
        metavar="N",
        help="partitions of the table, one stream shard each at a time (default: 1 4 16)",
    )
    parser.add_argument(
        "--hours",
        type=_within(cli.positive_float, 1.0, MAX_HOURS, "hours"),
        default=25.0,
        help="hours of shard rotation before the item is weighed (1 to 168; default: 25)",
    )


def _within(parse: Callable[[str], T], low: T, high: T, unit: str) -> Callable[[str], T]:
    """An argparse ``type``: ``parse``'s value from ``low`` to ``high`` (a one-line error)."""

    def convert(text: str) -> T:
        value = parse(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {low:g} to {high:g} {unit}, got {text!r}")
        return value

    return convert


def run(args: argparse.Namespace) -> int:
    digits, partitions = tuple(args.seq_digits), tuple(args.partitions)
    print("Levers added one after the other:\n")
    print(markdown(list(table(digits, LEVERS, partitions, args.hours))))
    print("\nEach lever alone (video summary):\n")
    alone = table(digits, ALONE, partitions, args.hours)
    print(markdown([m for m in alone if m.kind == "video"]))
    print(f"\n1 WRU per KB: {write_units(1024)} WRU at 1,024 bytes, {write_units(1025)} at 1,025.")
    return cli.EXIT_OK
