"""Reads one shard of a stream for one mapping: iterators, GetRecords, filters.

Lambda polls each shard about four times a second, and at once while it is behind (a full
page). ``ended`` becomes true when ``GetRecords`` returns no ``NextShardIterator``: the shard
is closed and every record of it has been read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from localcloud import protocol
from localcloud.batching import RECORD_OVERHEAD, Record
from localcloud.mappingconfig import MappingConfig
from localcloud.streams import StreamsClient, StreamsError

log = logging.getLogger("localcloud.engine")

IDLE_POLL_SECONDS = 0.25
READ_LIMIT = 1000


class ShardReader:
    def __init__(
        self,
        client: StreamsClient,
        shard_id: str,
        start: tuple[str, str | None],
        start_index: int = 0,
    ) -> None:
        self.client = client
        self.shard_id = shard_id
        self._start = start
        self.iterator: str | None = None
        self.last_seq: str | None = None  # the last sequence number read (any record)
        self.read_count = start_index  # the shard index of the next record to read
        self.ended = False
        self.caught_up = False  # the last read returned nothing
        self.next_poll = 0.0
        self._last_error = ""

    def _new_iterator(self, cfg: MappingConfig) -> str:
        if self.last_seq is not None:
            return self.client.get_shard_iterator(
                cfg.stream_arn, self.shard_id, "AFTER_SEQUENCE_NUMBER", self.last_seq
            )
        kind, sequence = self._start
        return self.client.get_shard_iterator(cfg.stream_arn, self.shard_id, kind, sequence)

    def poll(self, cfg: MappingConfig) -> tuple[list[Record], int] | None:
        """One GetRecords call when due: (records that pass the filters, records read), or
        None when not due or the read failed."""
        now = time.monotonic()
        if self.ended or now < self.next_poll:
            return None
        try:
            if self.iterator is None:
                self.iterator = self._new_iterator(cfg)
            page = self.client.get_records(self.iterator, READ_LIMIT)
        except StreamsError as exc:
            # Expired iterator: start again after the last record read. Stream gone: wait.
            self.iterator = None
            expired = exc.error_type == "ExpiredIteratorException"
            self.next_poll = now + (0.05 if expired else 1.0)
            if not expired and str(exc) != self._last_error:
                log.warning("mapping %s shard %s: %s", cfg.uuid, self.shard_id, exc)
            self._last_error = str(exc)
            return None
        raw_records, next_iterator = page
        self._last_error = ""
        self.iterator = next_iterator
        self.caught_up = not raw_records
        self.ended = next_iterator is None
        read_at = time.monotonic()
        passed: list[Record] = []
        for raw in raw_records:
            dynamodb = raw.get("dynamodb") or {}
            event = protocol.event_record(raw, cfg.stream_arn, cfg.region)
            index = self.read_count
            self.read_count += 1
            self.last_seq = str(dynamodb.get("SequenceNumber"))
            if cfg.filters.matches(event):
                passed.append(
                    Record(
                        seq=self.last_seq,
                        event=event,
                        created=created_at(raw),
                        read_at=read_at,
                        size=int(dynamodb.get("SizeBytes") or 0) + RECORD_OVERHEAD,
                        index=index,
                    )
                )
        full = len(raw_records) >= READ_LIMIT
        self.next_poll = read_at if full else read_at + IDLE_POLL_SECONDS
        return passed, len(raw_records)


def created_at(raw: dict[str, Any]) -> float:
    return float((raw.get("dynamodb") or {}).get("ApproximateCreationDateTime") or time.time())
