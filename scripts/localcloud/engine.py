"""The DynamoDB Streams -> Lambda event source mapping engine (Docker-free).

A supervisor thread reads the mappings from moto's Lambda backend (in process) and keeps one
``MappingRunner`` per DynamoDB stream mapping, picking up created, updated and deleted
mappings as they happen. A runner follows the stream's shard lineage: it starts a
``ShardWorker`` (shardworker.py) for a shard once the shard's parent is finished — closed, read
to its end and every batch done (checkpointed to its end) — so a parent is always processed
before its children, as Lambda does (docs/design.md §5). The jobs live in their own modules:
reading a shard (shardreader), batching (batching), the retry-and-bisect rule (retrypolicy),
tumbling windows (windows), on-failure destinations (destinations).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from moto.awslambda.models import lambda_backends

from localcloud import motostreams
from localcloud.destinations import Destinations
from localcloud.faults import Faults
from localcloud.mapping_stats import StatsRegistry
from localcloud.mappingconfig import MappingConfig, mapping_config
from localcloud.metrics_publisher import NO_METRICS, InvocationSink
from localcloud.shardworker import ShardWorker
from localcloud.streams import StreamsClient, StreamsError
from localcloud.worker_pool import WorkerPool

log = logging.getLogger("localcloud.engine")

SHARD_REFRESH_SECONDS = 1.0
SUPERVISOR_INTERVAL = 1.0
HISTORY_BATCHES = 200  # per shard, kept for the replay fault only


def _iter_mappings() -> Iterator[Any]:

    for _ in range(3):  # moto may add a backend while we look
        try:
            backends = [
                b for regions in list(lambda_backends.values()) for b in list(regions.values())
            ]
            break
        except RuntimeError:
            continue
    else:
        return
    for backend in backends:
        yield from list(backend._event_source_mappings.values())


class MappingRunner:
    def __init__(self, engine: Engine, config: MappingConfig) -> None:
        self.engine = engine
        self.config = config
        self.stats = engine.stats.mapping(config.uuid, config.function_name)
        self.workers: dict[str, ShardWorker] = {}  # running
        self.finished: set[str] = set()  # shard ids processed to their end (or never read)
        self.parents: dict[str, str | None] = {}  # every shard seen -> its parent
        self.partition_key = ""
        self._lock = threading.Lock()
        self._shards_checked = 0.0
        self._history: dict[str, deque[bytes]] = {}
        self._replays: dict[str, int] = {}
        self._random = random.Random(config.uuid)

    def update(self, config: MappingConfig) -> None:
        if config != self.config:
            log.info("mapping %s updated", config.uuid)
        self.config = config
        self.stats.function_name = config.function_name

    def function(self) -> Any:
        cfg = self.config
        return lambda_backends[cfg.account][cfg.region].get_function(cfg.function_arn)

    # --- lineage ---------------------------------------------------------------------------

    def _describe(self) -> list[dict[str, Any]] | None:
        cfg = self.config
        client = StreamsClient(self.engine.endpoint_url, cfg.region, cfg.account)
        try:
            return client.describe_all_shards(cfg.stream_arn, self._remember_key)
        except (StreamsError, OSError) as exc:
            log.debug("mapping %s: stream not readable: %s", cfg.uuid, exc)
            return None
        finally:
            client.close()

    def _remember_key(self, description: dict[str, Any]) -> None:
        for element in description.get("KeySchema") or []:
            if element.get("KeyType") == "HASH":
                self.partition_key = str(element.get("AttributeName"))

    def sync_shards(self, force: bool = False) -> None:
        """Starts a worker for every shard whose parent is finished; retires finished ones."""
        now = time.monotonic()
        if not force and now - self._shards_checked < SHARD_REFRESH_SECONDS:
            return
        self._shards_checked = now
        shards = self._describe()
        if shards is None:
            return
        cfg = self.config
        with self._lock:
            for shard_id, worker in list(self.workers.items()):
                if worker.finished.is_set():
                    self.finished.add(shard_id)
                    del self.workers[shard_id]
            for shard in shards:
                shard_id = shard["ShardId"]
                parent = shard.get("ParentShardId")
                self.parents.setdefault(shard_id, parent)
                if shard_id in self.workers or shard_id in self.finished:
                    continue
                # A parent that is gone from the stream (trimmed) counts as processed.
                if parent is not None and parent in self.parents and parent not in self.finished:
                    continue
                start = cfg.start_of(shard_id)
                if start is None:  # closed before a LATEST mapping was created
                    self.finished.add(shard_id)
                    self.stats.shard_finished(shard_id)
                    continue
                worker = ShardWorker(
                    self,
                    shard_id,
                    parent,
                    start,
                    self.partition_key,
                    self._index_of(start, shard_id),
                )
                self.workers[shard_id] = worker
                worker.start()

    def _index_of(self, start: tuple[str, str | None], shard_id: str) -> int:
        """The shard index a reader starting at ``start`` reads first (in process)."""
        kind, sequence = start
        if kind != "AFTER_SEQUENCE_NUMBER" or sequence is None:
            return 0
        cfg = self.config
        stream = motostreams.stream_of(cfg.stream_arn, cfg.account, cfg.region)
        shard = None if stream is None else stream.shard(shard_id)
        return 0 if shard is None else shard.index_at(int(sequence)) + 1

    def at_tip(self, shard_id: str, read_count: int) -> bool:
        """The reader has read every record the shard holds now (in process, no API call)."""
        cfg = self.config
        stream = motostreams.stream_of(cfg.stream_arn, cfg.account, cfg.region)
        shard = None if stream is None else stream.shard(shard_id)
        return shard is None or read_count >= len(shard.records)

    def drained(self) -> bool:
        if not self.config.enabled:
            # Disabling starts nothing new, but a batch already sent runs to its end (its
            # writes land after the pause): drained once no lane is in an invocation.
            with self._lock:
                workers = list(self.workers.values())
            return not any(worker.busy() for worker in workers)
        self.sync_shards(force=True)
        cfg = self.config
        stream = motostreams.stream_of(cfg.stream_arn, cfg.account, cfg.region)
        with self._lock:
            workers = list(self.workers.values())
            waiting = [
                s
                for s in (stream.shards() if stream is not None else [])
                if s.shard_id not in self.workers and s.shard_id not in self.finished
            ]
        # A shard waiting for its parent holds records nobody has read yet.
        if any(s.records for s in waiting):
            return False
        return all(worker.drained() for worker in workers)

    # --- the replay fault ------------------------------------------------------------------

    def remember(self, shard_id: str, event: bytes) -> None:
        """Keeps the events sent for a shard while the replay fault is on."""
        if not self.engine.faults.config.replay_rate:
            return
        with self._lock:
            history = self._history.get(shard_id)
            if history is None:
                history = self._history[shard_id] = deque(maxlen=HISTORY_BATCHES)
            history.append(event)

    def replay_range(self, shard_id: str, parent_id: str | None) -> tuple[list[bytes], bool]:
        """A range of events already processed: every other time (starting with the first) of
        the parent shard when it has one — after this child started — else of this shard."""
        with self._lock:
            turn = self._replays.get(shard_id, 0)
            self._replays[shard_id] = turn + 1
            parent = self._history.get(parent_id) if parent_id else None
            from_parent = bool(parent) and turn % 2 == 0
            source = parent if from_parent else self._history.get(shard_id)
            if not source:
                return [], False
            events = list(source)
            start = self._random.randrange(len(events))
            end = self._random.randint(start + 1, len(events))
            return events[start:end], from_parent

    def stop(self) -> None:
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for worker in list(self.workers.values()):
            worker.join(max(0.0, deadline - time.monotonic()))


class Engine:
    def __init__(self, endpoint_url: str, pool: WorkerPool, stats: StatsRegistry, faults: Faults):
        self.endpoint_url = endpoint_url
        self.pool = pool
        self.stats = stats
        self.faults = faults
        self.destinations = Destinations(endpoint_url)
        self.metrics: InvocationSink = NO_METRICS  # the server installs a MetricsPublisher
        self.runners: dict[str, MappingRunner] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sync_lock = threading.Lock()
        self._thread = threading.Thread(target=self._supervise, name="esm-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A mapping was created, updated or deleted, or a shard finished."""
        self._wake.set()

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(SUPERVISOR_INTERVAL)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.sync(force=True)
                self.pool.reap_idle()
            except Exception:
                log.exception("supervisor error")

    def sync(self, force: bool = False) -> None:
        with self._sync_lock:
            configs: dict[str, MappingConfig] = {}
            for esm in _iter_mappings():
                cfg = mapping_config(esm)
                if cfg is not None:
                    configs[cfg.uuid] = cfg
            for uuid, cfg in configs.items():
                runner = self.runners.get(uuid)
                if runner is None:
                    log.info("mapping %s: %s -> %s", uuid, cfg.stream_arn, cfg.function_name)
                    runner = self.runners[uuid] = MappingRunner(self, cfg)
                else:
                    runner.update(cfg)
                runner.sync_shards(force)
            for uuid in [u for u in self.runners if u not in configs]:
                log.info("mapping %s deleted", uuid)
                self.runners.pop(uuid).stop()

    def drained(self) -> bool:
        self.sync()
        return all(runner.drained() for runner in list(self.runners.values()))

    def mapping_details(self) -> dict[str, dict[str, Any]]:
        return {
            uuid: {
                "enabled": runner.config.enabled,
                "event_source_arn": runner.config.stream_arn,
                "batch_size": runner.config.batch_size,
                "maximum_batching_window_seconds": runner.config.window,
                "parallelization_factor": runner.config.parallelization_factor,
            }
            for uuid, runner in list(self.runners.items())
        }

    def stop(self, timeout: float = 5.0) -> None:
        """Stops polling, kills the workers (ending invocations in flight), then joins."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        runners = list(self.runners.values())
        for runner in runners:
            runner.stop()
        self.pool.shutdown()
        deadline = time.monotonic() + timeout
        for runner in runners:
            with contextlib.suppress(Exception):
                runner.join(max(0.0, deadline - time.monotonic()))
