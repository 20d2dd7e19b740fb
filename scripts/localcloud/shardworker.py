"""One shard of one mapping: a reader thread and ``ParallelizationFactor`` lanes.

The reader polls the shard (``ShardReader``) and hands each record to the lane of its partition
key, so one key's records stay in one lane, in order; each lane (``lane.Lane``) invokes the
function one batch at a time with Lambda's batching, retry, bisect and partial-batch rules
(``batching``, ``retrypolicy``), record age, on-failure messages naming the shard, and tumbling
windows (``windows``). ``ParallelizationFactor`` is "the number of batches to process concurrently
from each shard" (Lambda API reference, ``CreateEventSourceMapping``); Lambda keeps the order
of records with the same key while doing so (Lambda developer guide,
https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html, concurrent batches per shard).
The lanes keep each *partition key* in order; where the guide promises order only per item
(partition and sort key), AWS may do less, so a handler must not count on more than that.

The worker is *finished* once the shard is closed, read to its end, and every lane is empty
with its tumbling window (if any) closed: only then does the mapping start the child shards
("you must process a parent shard before the child shard", DynamoDB developer guide,
"Change data capture for DynamoDB Streams").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from localcloud.batching import Record
from localcloud.lane import Lane
from localcloud.mappingconfig import MappingConfig
from localcloud.shardreader import READ_LIMIT, ShardReader
from localcloud.shards import partition_hash
from localcloud.streams import StreamsClient

if TYPE_CHECKING:
    from localcloud.engine import MappingRunner

log = logging.getLogger("localcloud.engine")


class ShardWorker:
    def __init__(  # noqa: PLR0917 - one per shard, made in one place
        self,
        runner: MappingRunner,
        shard_id: str,
        parent_id: str | None,
        start: Any,
        key: str,
        start_index: int = 0,
    ) -> None:
        self.runner = runner
        self.engine = runner.engine
        self.shard_id = shard_id
        self.parent_id = parent_id
        self.partition_key_name = key
        cfg = runner.config
        self.reader = ShardReader(
            StreamsClient(self.engine.endpoint_url, cfg.region, cfg.account),
            shard_id,
            start,
            start_index,
        )
        self.lanes = [Lane(self, n) for n in range(max(1, cfg.parallelization_factor))]
        self.stop_event = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"shard-{cfg.function_name}-{shard_id[-8:]}", daemon=True
        )

    def start(self) -> None:
        self.runner.stats.shard_seen(self.shard_id)
        for lane in self.lanes:
            lane.thread.start()
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for lane in self.lanes:
            lane.wake.set()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in (self.thread, *(lane.thread for lane in self.lanes)):
            thread.join(max(0.0, deadline - time.monotonic()))

    def now(self) -> float:
        """Wall clock for record ages and windows (shifted by the clock-offset fault)."""
        return time.time() + self.engine.faults.config.clock_offset_seconds

    def _lane_of(self, record: Record) -> Lane:
        if len(self.lanes) == 1:
            return self.lanes[0]
        key = (record.event.get("dynamodb") or {}).get("Keys", {}).get(self.partition_key_name)
        return self.lanes[partition_hash(key) % len(self.lanes)]

    def busy(self) -> bool:
        return any(lane.busy() for lane in self.lanes)

    def drained(self) -> bool:
        """Nothing read and not yet processed, and nothing more to read right now."""
        if self.finished.is_set():
            return True
        if any(not lane.idle(allow_window=True) for lane in self.lanes):
            return False
        return self.runner.at_tip(self.shard_id, self.reader.read_count)

    # --- the reader thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self.stop_event.is_set():
                cfg = self.runner.config
                try:
                    if not cfg.enabled:
                        self.stop_event.wait(0.2)
                        continue
                    queued = sum(len(lane.pending) for lane in self.lanes)
                    if queued < cfg.batch_size + READ_LIMIT:
                        self._read(cfg)
                    if self.reader.ended and all(lane.idle() for lane in self.lanes):
                        self.runner.stats.shard_finished(self.shard_id)
                        self.finished.set()
                        self.runner.engine.notify()  # its children may start
                        return
                    wait = max(0.005, min(self.reader.next_poll - time.monotonic(), 0.25))
                    self.stop_event.wait(wait)
                except Exception:
                    log.exception("mapping %s shard %s: reader error", cfg.uuid, self.shard_id)
                    self.stop_event.wait(0.5)
        finally:
            self.stop()
            self.reader.client.close()

    def _read(self, cfg: MappingConfig) -> None:
        result = self.reader.poll(cfg)
        if result is None:
            return
        passed, read = result
        if read:
            self.runner.stats.add("records_read", read)
            if read > len(passed):
                self.runner.stats.add("records_filtered_out", read - len(passed))
        for record in passed:
            lane = self._lane_of(record)
            with lane.lock:
                lane.pending.append(record)
        if read and not passed and all(not lane.pending for lane in self.lanes):
            self.runner.stats.record_age(self.shard_id, 0.0)
        for lane in self.lanes:
            lane.wake.set()
