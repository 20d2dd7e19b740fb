"""Access patterns of docs/design.md §2: statistics per video and per user, and all views, likes or
dislikes of a video through GSI1, paginated.

    python -m vstats.access_patterns video 3                       # or: make stats ARGS="video 3"
    python -m vstats.access_patterns user 7 --format json
    python -m vstats.access_patterns video 3 likes                 # every page
    python -m vstats.access_patterns video 3 views --limit 50      # one page, then --next-token
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from video_stats import model
from video_stats.model import SummaryKey, SummaryKind

from vstats import cli, deployment
from vstats.tables import COUNTERS, LISTING_PREFIX, Page, get_summary_item, query_video_listing

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PROG = "stats"


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """AttributeValue map -> plain values (numbers as int), for output."""
    result: dict[str, Any] = {}
    for name, value in sorted(item.items()):
        if "N" in value:
            number = value["N"]
            result[name] = int(number) if number.lstrip("-").isdigit() else float(number)
        elif "S" in value:
            result[name] = value["S"]
        else:
            result[name] = value
    return result


def summary_record(key: SummaryKey, item: dict[str, Any] | None) -> dict[str, Any]:
    counters = model.summary_counters(item) if item else model.ZERO
    return {
        "type": model.summary_type(key.kind),
        model.summary_id_attribute(key.kind): key.id,
        "exists": item is not None,
        **{name: getattr(counters, name) for name in COUNTERS},
    }


def listing_record(item: dict[str, Any]) -> dict[str, Any]:
    """A view or vote item, reduced to what an operator reads (bookkeeping-free)."""
    plain = _plain(item)
    record: dict[str, Any] = {"userId": plain.get("userId"), "videoId": plain.get("videoId")}
    if plain.get("type") == "VIEW":
        sk = str(plain.get("SK", ""))
        record["timestamp"] = sk.split("#VIEW#", 1)[1] if "#VIEW#" in sk else None
        record["duration"] = plain.get("duration")
    else:
        record["voteType"] = plain.get("voteType")
    return record


def summary_view(record: dict[str, Any]) -> Table:
    id_name = "videoId" if record["type"] == "VIDEO_SUMMARY" else "userId"
    table = Table(title=f"{id_name} {record[id_name]}", title_justify="left")
    for name in COUNTERS:
        table.add_column(name, justify="right")
    table.add_row(*(f"{record[name]:,}" for name in COUNTERS))
    if not record["exists"]:
        table.caption = "no summary item yet: all counters are 0"
    return table


def listing_view(video_id: str, listing: str, records: list[dict[str, Any]]) -> Group:
    count = f"{len(records):,} {listing}" if records else f"no {listing}"
    heading = Text.assemble((f"video {video_id}", "bold"), f": {count}")
    if not records:
        return Group(heading)
    table = Table(show_edge=True)
    table.add_column("userId")
    if listing == "views":
        table.add_column("timestamp")
        table.add_column("duration", justify="right")
        for r in records:
            table.add_row(str(r["userId"]), str(r["timestamp"]), f"{r['duration']:,}")
    else:
        for r in records:
            table.add_row(str(r["userId"]))
    return Group(heading, table)


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog=PROG,
        description="Statistics per video or user; a video's views, likes or dislikes (GSI1).",
    )
    # Options go after the subcommand (`video 3 likes --format json`), so they live on a parent.
    common = cli.ArgumentParser(add_help=False)
    common.add_argument("--format", choices=("table", "json"), default="table")
    deployment.add_arguments(common)
    sub = parser.add_subparsers(dest="entity", required=True, metavar="{video,user}")
    video = sub.add_parser(
        "video", parents=[common], help="a video's statistics, or its views/likes/dislikes"
    )
    video.add_argument("id", type=cli.entity_id, help="videoId")
    video.add_argument(
        "listing",
        nargs="?",
        choices=tuple(LISTING_PREFIX),
        help="list the video's views, likes or dislikes instead of its statistics",
    )
    video.add_argument(
        "--limit",
        type=cli.positive_int,
        help="items per page: print one page and the token for the next (default: all pages)",
    )
    video.add_argument("--next-token", help="continue a listing where a page ended")
    user = sub.add_parser("user", parents=[common], help="a user's statistics")
    user.add_argument("id", type=cli.entity_id, help="userId")
    return parser


def pages(
    client: DynamoDBClient, table: str, video_id: str, listing: Any, token: str | None
) -> Iterator[Page]:
    while True:
        page = query_video_listing(client, table, video_id, listing, next_token=token)
        yield page
        token = page.next_token
        if token is None:
            return


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run(PROG, lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    args = cli.parse(build_parser(), argv)
    listing = getattr(args, "listing", None)
    if listing is None and (getattr(args, "limit", None) or getattr(args, "next_token", None)):
        raise cli.UsageError("--limit and --next-token apply to a listing (views|likes|dislikes)")
    target = deployment.resolve(args)
    client = target.dynamodb()
    console = Console()

    if listing is None:
        kind = SummaryKind.VIDEO if args.entity == "video" else SummaryKind.USER
        key = SummaryKey(kind, args.id)
        record = summary_record(key, get_summary_item(client, target.table, key))
        if args.format == "json":
            print(json.dumps(record))
        else:
            console.print(summary_view(record))
        return cli.EXIT_OK

    if args.limit is not None:
        page = query_video_listing(
            client, target.table, args.id, listing, limit=args.limit, next_token=args.next_token
        )
        records = [listing_record(item) for item in page.items]
        next_token = page.next_token
    else:
        records = [
            listing_record(item)
            for page in pages(client, target.table, args.id, listing, args.next_token)
            for item in page.items
        ]
        next_token = None
    if args.format == "json":
        print(json.dumps({"videoId": args.id, listing: records, "next_token": next_token}))
    else:
        console.print(listing_view(args.id, listing, records))
        if next_token:
            console.print(f"more: --next-token {next_token}", soft_wrap=True)
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
