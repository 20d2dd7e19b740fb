"""Live view of the video and user summaries (the seed's ``table_summary.py``, grown up).

    python -m vstats.summary                   # live, refreshed every 2 s, top 10 by views
    python -m vstats.summary --once --top 5 --by likes
    python -m vstats.summary --once --format json --all

Summaries are listed through the sparse GSI2 ranking index (one Query per index shard, keys
ordered by views bucket) and read by key (BatchGetItem), never by scanning the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from video_stats.model import SummaryKind

from vstats import cli, deployment
from vstats.tables import COUNTERS, CounterName, SummaryRow, list_summaries

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PROG = "summary"
DEFAULT_TOP = 10


@dataclass(frozen=True, slots=True)
class Snapshot:
    fetched_at: datetime
    videos: list[SummaryRow]
    users: list[SummaryRow]
    by: str
    top: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "fetched_at": self.fetched_at.isoformat(timespec="seconds"),
            "by": self.by,
            "top": self.top,
            "videos": [row.as_dict() for row in self.videos],
            "users": [row.as_dict() for row in self.users],
        }


def fetch(
    client: DynamoDBClient,
    table: str,
    *,
    shards: int,
    by: CounterName,
    top: int | None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Snapshot:
    videos = list_summaries(client, table, SummaryKind.VIDEO, shards=shards, by=by, top=top)
    users = list_summaries(client, table, SummaryKind.USER, shards=shards, by=by, top=top)
    return Snapshot(now(), videos, users, by, top)


def summary_table(rows: Sequence[SummaryRow], id_column: str, by: str, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(id_column, no_wrap=True)
    for name in COUNTERS:
        header = f"{name} ▼" if name == by else name
        table.add_column(header, justify="right", style="bold" if name == by else None)
    for row in rows:
        c = row.counters
        table.add_row(row.key.id, *(f"{v:,}" for v in (c.views, c.duration, c.likes, c.dislikes)))
    if not rows:
        table.add_row(Text("(none yet)", style="dim"), "", "", "", "")
    return table


def render(snapshot: Snapshot) -> Group:
    scope = f"top {snapshot.top} by {snapshot.by}" if snapshot.top else f"by {snapshot.by}"
    fetched = snapshot.fetched_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return Group(
        summary_table(snapshot.videos, "videoId", snapshot.by, f"Videos ({scope})"),
        Text(f"Fetched at {fetched}", style="dim"),
        Text(""),
        summary_table(snapshot.users, "userId", snapshot.by, f"Users ({scope})"),
        Text(f"Fetched at {fetched}", style="dim"),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Video and user summaries, ranked through the GSI2 index (never a scan).",
    )
    parser.add_argument("--once", action="store_true", help="print once and exit")
    parser.add_argument(
        "--format", choices=("table", "json"), default="table", help="output format"
    )
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument(
        "--top",
        type=cli.positive_int,
        default=DEFAULT_TOP,
        help=f"rows per table (default {DEFAULT_TOP})",
    )
    limit.add_argument("--all", action="store_true", help="every summary, not just the top")
    parser.add_argument(
        "--by", choices=COUNTERS, default="views", help="counter to rank by (default views)"
    )
    parser.add_argument(
        "--interval",
        type=cli.positive_float,
        default=2.0,
        help="seconds between refreshes (default 2)",
    )
    deployment.add_arguments(parser, index_shards=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    target = deployment.resolve(args)
    client = target.dynamodb()
    top = None if args.all else args.top

    def snapshot() -> Snapshot:
        return fetch(client, target.table, shards=target.index_shards, by=args.by, top=top)

    console = Console()
    live_view = args.format == "table" and not args.once and console.is_terminal
    try:
        if live_view:
            with Live(render(snapshot()), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(args.interval)
                    live.update(render(snapshot()), refresh=True)
        while True:
            if args.format == "json":  # one document per refresh (JSON lines)
                print(json.dumps(snapshot().as_json()), flush=True)
            else:
                console.print(render(snapshot()))
            if args.once:
                return cli.EXIT_OK
            time.sleep(args.interval)
    except KeyboardInterrupt:  # the normal way to leave a refreshing view
        if args.once:
            raise
        return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
