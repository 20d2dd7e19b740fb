"""A DynamoDB stream cut into shards as AWS cuts it: partitions, rotation, lineage. Pure.

What AWS documents, and what this reproduces (docs/design.md §5):

* "Shards are ephemeral: they are created and deleted automatically, as needed. Any shard
  can also split into multiple new shards; this also occurs automatically. (It's also
  possible for a parent shard to have just one child shard.)" and "you must process a parent
  shard before the child shard" (DynamoDB developer guide, "Change data capture for DynamoDB
  Streams", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html).
  There is about one open shard per table partition, and a shard is closed and handed to a
  child every few hours.
* A record goes to the shard of its item's partition: here a stable hash of the partition
  key, so one item's records stay in one shard, in order.
* ``DescribeStream`` lists every shard with its ``ParentShardId`` and ``SequenceNumberRange``;
  ``EndingSequenceNumber`` is present once the shard is closed; ``GetRecords`` returns no
  ``NextShardIterator`` once a closed shard has been read to its end (DynamoDB Streams API
  reference, "DescribeStream", "GetRecords").
* Sequence numbers "are unique and increase over time" *within a shard* only (API
  reference, "StreamRecord"). Each shard here draws its own independent range, with its own
  number of digits (AWS: 21 to 40), so code comparing numbers of different shards is wrong
  here too — loudly.

Rotation compresses AWS's hours into seconds (``rotation_seconds``) or a record count
(``rotation_records``, deterministic for tests); ``split_every`` makes every n-th rotation of a
lineage split the hash range into two children. An empty shard never rotates (an idle
endpoint does not grow), and a shard's time counts from its first record. Nothing here
knows moto: ``records`` hold whatever the caller adds.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

HASH_SPACE = 1 << 64
MIN_DIGITS, MAX_DIGITS = 21, 40
DEFAULT_PARTITIONS = 4
MAX_PARTITIONS = 64
MAX_OPEN_SHARDS_PER_PARTITION = 4  # splits stop there


@dataclass(frozen=True, slots=True)
class StreamSettings:
    partitions: int = DEFAULT_PARTITIONS  # open shards of a new stream
    rotation_seconds: float = 0.0  # an open shard closes after this long (0: never)
    rotation_records: int = 0  # ... or once it holds this many records (0: never)
    split_every: int = 0  # every n-th rotation of a lineage splits it in two (0: never)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def merge_settings(current: StreamSettings, body: Any) -> StreamSettings:
    """``body`` (a JSON object) merged into ``current``; ValueError with a readable reason."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = set(body) - set(StreamSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    for name, low, high, kind in (
        ("partitions", 1, MAX_PARTITIONS, int),
        ("rotation_seconds", 0, 86_400, float),
        ("rotation_records", 0, 10_000_000, int),
        ("split_every", 0, 1_000, int),
    ):
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number")
        if kind is int and value != int(value):
            raise ValueError(f"{name} must be an integer")
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low} and {high}")
        changes[name] = kind(value)
    return replace(current, **changes)


def partition_hash(partition_key: Any) -> int:
    """A stable 64-bit hash of a partition key value (its wire JSON, e.g. ``{"S": "u1"}``)."""
    canonical = json.dumps(partition_key, sort_keys=True, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.md5(canonical, usedforsecurity=False).digest()[:8], "big")


class SequenceError(ValueError):
    """A sequence number that is not one of the shard's (e.g. another shard's)."""


@dataclass(eq=False)
class Shard:
    shard_id: str
    parent_id: str | None
    hash_low: int  # inclusive
    hash_high: int  # exclusive
    generation: int  # 0 for the stream's first shards; a child is its parent's + 1
    first_sequence: int
    step: int  # sequence numbers grow by this much (gaps, as on AWS)
    opened_at: float  # monotonic
    first_record_at: float | None = None  # monotonic; rotation time counts from here
    records: list[Any] = field(default_factory=list)
    closed: bool = False

    def sequence_number(self, index: int) -> int:
        return self.first_sequence + index * self.step

    @property
    def next_sequence(self) -> int:
        return self.sequence_number(len(self.records))

    def index_at(self, sequence_number: int) -> int:
        """The index of the first record with a number >= ``sequence_number``."""
        offset = sequence_number - self.first_sequence
        if offset < 0 or sequence_number > self.sequence_number(len(self.records)):
            raise SequenceError(
                f"sequence number {sequence_number} is not in shard {self.shard_id}"
            )
        return -(-offset // self.step)

    def covers(self, key_hash: int) -> bool:
        return self.hash_low <= key_hash < self.hash_high

    def description(self) -> dict[str, Any]:
        """The ``Shard`` structure of ``DescribeStream``."""
        numbers: dict[str, str] = {"StartingSequenceNumber": str(self.first_sequence)}
        if self.closed:
            last = max(0, len(self.records) - 1)
            numbers["EndingSequenceNumber"] = str(self.sequence_number(last))
        result: dict[str, Any] = {"ShardId": self.shard_id, "SequenceNumberRange": numbers}
        if self.parent_id is not None:
            result["ParentShardId"] = self.parent_id
        return result


class ShardedStream:
    """Every shard of one stream. Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(
        self,
        label: str,
        settings: StreamSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.label = label
        self.settings = settings
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._random = random.Random(label)
        self._shards: dict[str, Shard] = {}
        self._frozen = 0  # > 0 inside a transaction: no rotation
        now = clock()
        count = settings.partitions
        for n in range(count):
            low, high = n * HASH_SPACE // count, (n + 1) * HASH_SPACE // count
            self._open(None, low, high, 0, now)

    # --- shape -------------------------------------------------------------------------

    def _open(
        self, parent: Shard | None, low: int, high: int, generation: int, now: float
    ) -> Shard:
        digits = self._random.randint(MIN_DIGITS, MAX_DIGITS)
        if parent is not None:  # a child never has as many digits as its parent
            parent_digits = len(str(parent.first_sequence))
            while digits == parent_digits:
                digits = self._random.randint(MIN_DIGITS, MAX_DIGITS)
        # Room for 10^(digits - 3) steps before the number would gain a digit.
        first = self._random.randint(1, 8) * 10 ** (digits - 1)
        first += self._random.randrange(10 ** (digits - 3))
        stamp = int(self._wall_clock() * 1000) + len(self._shards)
        suffix = hashlib.sha1(f"{self.label}/{len(self._shards)}".encode(), usedforsecurity=False)
        shard = Shard(
            shard_id=f"shardId-{stamp:020d}-{suffix.hexdigest()[:8]}",
            parent_id=None if parent is None else parent.shard_id,
            hash_low=low,
            hash_high=high,
            generation=generation,
            first_sequence=first,
            step=self._random.randint(1, 9) * 10 ** self._random.randint(0, 3),
            opened_at=now,
        )
        self._shards[shard.shard_id] = shard
        return shard

    def _close(self, shard: Shard, now: float) -> None:
        shard.closed = True
        generation = shard.generation + 1
        open_count = sum(1 for s in self._shards.values() if not s.closed)
        split = (
            self.settings.split_every > 0
            and generation % self.settings.split_every == 0
            and open_count < MAX_OPEN_SHARDS_PER_PARTITION * self.settings.partitions
            and shard.hash_high - shard.hash_low > 1
        )
        if split:
            middle = (shard.hash_low + shard.hash_high) // 2
            self._open(shard, shard.hash_low, middle, generation, now)
            self._open(shard, middle, shard.hash_high, generation, now)
        else:
            self._open(shard, shard.hash_low, shard.hash_high, generation, now)

    def rotate_due(self) -> int:
        """Closes every open shard whose time or record count is up; returns how many."""
        with self._lock:
            if self._frozen:
                return 0
            settings, now, closed = self.settings, self._clock(), 0
            for shard in [s for s in self._shards.values() if not s.closed and s.records]:
                by_count = 0 < settings.rotation_records <= len(shard.records)
                since = now - (shard.first_record_at or now)
                by_time = 0 < settings.rotation_seconds <= since
                if by_count or by_time:
                    self._close(shard, now)
                    closed += 1
            return closed

    def rotate_now(self) -> int:
        """Closes every open shard that holds a record (tests, the control API)."""
        with self._lock:
            now = self._clock()
            shards = [s for s in self._shards.values() if not s.closed and s.records]
            for shard in shards:
                self._close(shard, now)
            return len(shards)

    # --- writing -----------------------------------------------------------------------

    def shard_for(self, key_hash: int) -> Shard:
        with self._lock:
            for shard in self._shards.values():
                if not shard.closed and shard.covers(key_hash):
                    return shard
        raise AssertionError(f"no open shard covers {key_hash}")  # pragma: no cover

    def append(self, partition_key: Any, make_record: Callable[[int], Any]) -> Shard:
        """Adds ``make_record(sequence_number)`` to the partition key's open shard."""
        with self._lock:
            self.rotate_due()
            shard = self.shard_for(partition_hash(partition_key))
            shard.records.append(make_record(shard.next_sequence))
            if shard.first_record_at is None:
                shard.first_record_at = self._clock()
            if not self._frozen and 0 < self.settings.rotation_records <= len(shard.records):
                self._close(shard, self._clock())
            return shard

    def begin_transaction(self) -> dict[str, int]:
        """Freezes rotation; the returned lengths undo the transaction's records."""
        with self._lock:
            self._frozen += 1
            return {s.shard_id: len(s.records) for s in self._shards.values() if not s.closed}

    def end_transaction(self, lengths: dict[str, int], committed: bool) -> None:
        with self._lock:
            if not committed:
                for shard_id, length in lengths.items():
                    del self._shards[shard_id].records[length:]
            self._frozen -= 1
        if committed:
            self.rotate_due()

    # --- reading -----------------------------------------------------------------------

    def shards(self) -> list[Shard]:
        """Every shard, oldest first (a parent always before its children)."""
        with self._lock:
            return list(self._shards.values())

    def shard(self, shard_id: str) -> Shard | None:
        with self._lock:
            return self._shards.get(shard_id)

    def read(self, shard: Shard, index: int, limit: int) -> tuple[list[Any], int, bool]:
        """Records from ``index``; the next index; True once a closed shard is read to its end."""
        with self._lock:
            index = min(index, len(shard.records))  # a cancelled transaction shortened it
            records = shard.records[index : index + limit]
            next_index = index + len(records)
            return records, next_index, shard.closed and next_index >= len(shard.records)

    def lineage_depth(self) -> int:
        """The longest parent -> child chain: 1 while no shard was ever closed."""
        with self._lock:
            return 1 + max((s.generation for s in self._shards.values()), default=0)

    def summary(self) -> dict[str, Any]:
        """For the control API: settings, and per shard its records and place in the lineage."""
        with self._lock:
            shards = list(self._shards.values())
            return {
                "settings": self.settings.to_json(),
                "open_shards": sum(1 for s in shards if not s.closed),
                "closed_shards": sum(1 for s in shards if s.closed),
                "generations": self.lineage_depth(),
                "shards": {
                    s.shard_id: {
                        "parent": s.parent_id,
                        "generation": s.generation,
                        "records": len(s.records),
                        "closed": s.closed,
                    }
                    for s in shards
                },
            }
