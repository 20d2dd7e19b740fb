"""Parse-and-merge throughput of the stream handlers (``make bench-handler``; not a test).

    python -m benchmark handler [--records N] [--batch-size N] [--repeat N] [--seed N]


Takes the stream records of the load test's own generator at the production shape (100,000
users, 1,000 videos, Zipf; views inserted, re-timed and deleted, votes cast, changed and
withdrawn: ``benchmark.projection``), spoils the duration of a few views (malformed items the
handler must skip and count), routes each record to the function its deployed filter selects,
then times ``records.parse_batch`` over batches of 1,000 on one core: the whole per-record cost
of a handler invocation except the DynamoDB writes (one per distinct summary key per batch).
Then times the writes: the handlers' own apply loop (``apply.Applier``) and DynamoDB adapter
(``store.SummaryStore``) with a real botocore client that builds, signs and parses every
UpdateItem, its HTTP send answered in-process (``measure_cpu``): the CPU time of a summary
write request on one full core, without the network wait. ``make bench`` divides both by the
function's share of a vCPU to bill its duration (``benchmark.bill``).
Prints ``records/s: N`` as its last line.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config
from video_stats.apply import Applier, ApplyConfig
from video_stats.marks import shard_marks
from video_stats.model import ItemType
from video_stats.records import parse_batch
from video_stats.store import SummaryStore
from vstats import cli
from vstats.effects import FUNCTION_OF_ITEM_TYPE
from vstats.filter_patterns import delivered_to

from benchmark.projection import production_operations, stream_records

MALFORMED_SHARE = 0.005  # of the views: a duration of 12.5 s is not whole, so not valid (§2)


def benchmark_records(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` stream records of the generator, a few views spoiled (deterministic)."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    operations = 2 * count  # puts of an unchanged item and deletes of a missing one add none
    while len(records) < count:
        records = list(stream_records(production_operations(operations, seed)))
        operations *= 2
    for record in records[:count]:
        new = record["dynamodb"].get("NewImage")
        if new and new.get("type") == {"S": "VIEW"} and rng.random() < MALFORMED_SHARE:
            record["dynamodb"]["NewImage"] = {**new, "duration": {"N": "12.5"}}
    return records[:count]


@dataclass(frozen=True, slots=True)
class CpuCost:
    """CPU milliseconds on one full core: per record parsed and merged, per write request."""

    ms_per_record: float
    ms_per_write: float
    records: int
    writes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "ms_per_record": round(self.ms_per_record, 4),
            "ms_per_write_request": round(self.ms_per_write, 4),
            "records": self.records,
            "write_requests": self.writes,
        }


class _Body:
    """The raw body botocore reads a response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _answer_in_process(request: Any, **_: Any) -> Any:
    """Every UpdateItem succeeds and returns a small summary (views in its GSI2 bucket)."""
    body = json.dumps({"Attributes": {"views": {"N": "5"}, "GSI2SK": {"S": "03"}}}).encode()
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = "0"
    headers["Content-Type"] = "application/x-amz-json-1.0"
    return AWSResponse(request.url, 200, headers, _Body(body))


def _best(passes: int, work: Callable[[], int]) -> tuple[float, int]:
    """The least CPU seconds of ``passes`` runs of ``work`` (no cyclic GC while timing, as
    timeit does) and what the last run returned."""
    best, result = float("inf"), 0
    gc.collect()
    gc.disable()
    try:
        for _ in range(passes):
            began = time.process_time()
            result = work()
            best = min(best, time.process_time() - began)
    finally:
        gc.enable()
    return best, result


def measure_cpu(
    records: int = 5_000, batch_size: int = 1_000, repeat: int = 3, seed: int = 7
) -> CpuCost:
    """CPU time per record (parse and merge) and per summary write request (apply loop,
    adapter, botocore), each the best of ``repeat`` passes, on ``records`` of the generator's
    records batched by ``batch_size``, one thread (the handlers' executor spreads the same
    work over threads of one process: the same CPU)."""
    sample = benchmark_records(records, seed)
    batches = _batches(sample, batch_size)
    client = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    ).client(
        "dynamodb",
        endpoint_url="http://dynamodb.invalid",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    client.meta.events.register("before-send.dynamodb", _answer_in_process)
    store = SummaryStore(client, "bench")
    parsed = [(item_type, parse_batch(batch, item_type)) for item_type, batch in batches]

    def parse_all() -> int:
        for item_type, batch in batches:
            parse_batch(batch, item_type)
        return sum(len(batch) for _, batch in batches)

    parse_seconds, total = _best(repeat, parse_all)

    def apply_all() -> int:
        writes = 0
        for number, (item_type, batch) in enumerate(parsed):
            function = FUNCTION_OF_ITEM_TYPE[item_type]
            config = ApplyConfig(function, shard_marks(function, f"shard-{number}"))
            writes += Applier(store, config, executor=None).apply(batch).writes
        return writes

    write_seconds, writes = _best(repeat, apply_all)
    return CpuCost(
        parse_seconds * 1000 / total if total else 0.0,
        write_seconds * 1000 / writes if writes else 0.0,
        total,
        writes,
    )


def _batches(
    records: list[dict[str, Any]], batch_size: int
) -> list[tuple[ItemType, list[dict[str, Any]]]]:
    """Each function's records (its deployed filter), cut into batches of ``batch_size``."""
    batches: list[tuple[ItemType, list[dict[str, Any]]]] = []
    for item_type in FUNCTION_OF_ITEM_TYPE:
        selected = [r for r in records if delivered_to(r, item_type)]
        for start in range(0, len(selected), batch_size):
            batches.append((item_type, selected[start : start + batch_size]))
    return batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=cli.positive_int, default=100_000)
    parser.add_argument("--batch-size", type=cli.positive_int, default=1_000)
    parser.add_argument(
        "--repeat", type=cli.positive_int, default=5, help="timed passes; the best is kept"
    )
    parser.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> int:

    records = benchmark_records(args.records, args.seed)
    batches = _batches(records, args.batch_size)
    total = sum(len(batch) for _, batch in batches)
    keys = 0
    best = float("inf")
    # CPU time of this process (other processes on the machine do not count against it), and
    # no cyclic GC while timing, as timeit does: an invocation holds one batch, not 100,000
    # records, so collections walking this whole heap would measure the benchmark, not the code.
    gc.collect()
    gc.disable()
    try:
        for _ in range(args.repeat):
            began = time.process_time()
            keys = 0
            for item_type, batch in batches:
                keys += len(parse_batch(batch, item_type).keys)
            best = min(best, time.process_time() - began)
    finally:
        gc.enable()

    print(f"records: {total} in {len(batches)} batches of <= {args.batch_size}")
    print(f"summary writes needed: {keys} ({keys / total:.3f} per record)")
    print(f"best of {args.repeat}: {best * 1000:.1f} ms CPU")
    cpu = measure_cpu(min(args.records, 20_000), args.batch_size, args.repeat, args.seed)
    print(
        f"CPU per summary write request (apply loop + adapter + botocore, no network): "
        f"{cpu.ms_per_write:.3f} ms over {cpu.writes} requests"
    )
    print(f"records/s: {int(total / best)}")
    return 0
