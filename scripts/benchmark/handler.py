"""Parse-and-merge throughput of the stream handlers (``make bench-handler``; not a test).

    python -m benchmark handler [--records N] [--batch-size N] [--repeat N] [--seed N]


Builds a synthetic 100,000-record mix the way the stream would deliver it (views inserted,
re-timed and deleted, votes cast, changed and withdrawn, a few malformed items, each record
routed to the function its filter selects), then times ``records.parse_batch`` over batches of
1,000 on one core: the whole per-record cost of a handler invocation except the DynamoDB
writes (one per distinct summary key per batch). Prints ``records/s: N`` as its last line.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The stream fakes the tests use to build a realistic stream.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "support"))

from stream_fakes import FakeStream
from video_stats.model import ItemType, view_item, vote_item
from video_stats.records import parse_batch
from vstats import cli
from vstats.effects import FUNCTION_OF_ITEM_TYPE
from vstats.filter_patterns import delivered_to


def synthetic_records(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    stream = FakeStream(start_time=time.time())
    users = [f"user-{n:05d}" for n in range(20_000)]
    videos = [f"video-{n:04d}" for n in range(2_000)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    views: list[tuple[str, str]] = []
    while len(stream.records) < count:
        user = rng.choice(users)
        # A few hot videos get most of the traffic, as on a real site.
        video = videos[min(int(rng.paretovariate(1.2)) - 1, len(videos) - 1)]
        roll = rng.random()
        if roll < 0.70 or not views:
            item = view_item(
                user, video, rng.randint(1, 3_600), start + timedelta(seconds=len(stream.records))
            )
            if rng.random() < 0.005:
                item["duration"] = {"N": "12.5"}  # malformed: skipped by the handler
            stream.put(item)
            views.append((item["PK"]["S"], item["SK"]["S"]))
        elif roll < 0.78:
            key = rng.choice(views)
            if key in stream.items:
                item = dict(stream.items[key])
                item["duration"] = {"N": str(rng.randint(1, 3_600))}
                stream.put(item)
        elif roll < 0.82:
            stream.delete(views.pop(rng.randrange(len(views))))
        elif roll < 0.97:
            stream.put(vote_item(user, video, rng.choice(("LIKE", "DISLIKE"))))
        else:
            stream.delete((f"USER#{user}", f"VIDEO#{video}#VOTE"))
    return stream.records[:count]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--records", type=cli.positive_int, default=100_000)
    parser.add_argument("--batch-size", type=cli.positive_int, default=1_000)
    parser.add_argument(
        "--repeat", type=cli.positive_int, default=5, help="timed passes; the best is kept"
    )
    parser.add_argument("--seed", type=int, default=7)


def run(args: argparse.Namespace) -> int:

    records = synthetic_records(args.records, args.seed)
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
