"""Parse-and-merge throughput of the stream handlers (``make bench-handler``; not a test).

    python -m benchmark handler [--records N] [--batch-size N] [--repeat N] [--seed N]


Takes the stream records of the load test's own generator at the production shape (100,000
users, 1,000 videos, Zipf; views inserted, re-timed and deleted, votes cast, changed and
withdrawn: ``benchmark.projection``), spoils the duration of a few views (malformed items the
handler must skip and count), routes each record to the function its deployed filter selects,
then times ``records.parse_batch`` over batches of 1,000 on one core: the whole per-record cost
of a handler invocation except the DynamoDB writes (one per distinct summary key per batch).
Prints ``records/s: N`` as its last line.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Any

from video_stats.model import ItemType
from video_stats.records import parse_batch
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=cli.positive_int, default=100_000)
    parser.add_argument("--batch-size", type=cli.positive_int, default=1_000)
    parser.add_argument(
        "--repeat", type=cli.positive_int, default=5, help="timed passes; the best is kept"
    )
    parser.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> int:

    records = benchmark_records(args.records, args.seed)
    batches: list[tuple[ItemType, list[dict[str, Any]]]] = []
    for item_type in FUNCTION_OF_ITEM_TYPE:
        selected = [r for r in records if delivered_to(r, item_type)]
        for start in range(0, len(selected), args.batch_size):
            batches.append((item_type, selected[start : start + args.batch_size]))
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
    print(f"records/s: {int(total / best)}")
    return 0
