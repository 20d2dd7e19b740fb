"""The one stream reader (``vstats.stream_reader``) and the one target computation
(``vstats.targets``), pure: a ``FakeStreamsClient`` is the stream."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from stream_fakes import STREAM_ARN, FakeStream, FakeStreamsClient
from video_stats.lineage import Shard
from video_stats.marks import encode_mark, shard_marks
from video_stats.model import SummaryKey, SummaryKind, view_item
from vstats import redrive
from vstats.stream_reader import Bound, StreamTiming, read_shard, read_stream, read_to_tips
from vstats.target_reads import known_tips
from vstats.targets import Positions, summary_target

QUICK = StreamTiming(delay=0.0, margin=0.0, open_shard_seconds=0.05, poll_seconds=0.0)
#: The time cap ends an open shard's read at its first empty page (once the bound's time is
#: past): a count of pages, not a race with the clock.
AT_ONCE = StreamTiming(delay=0.0, margin=0.0, open_shard_seconds=0.0, poll_seconds=0.0)
WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def views(stream: FakeStream, count: int) -> None:
    for n in range(count):
        stream.put(view_item(f"u{n}", "v", 10, WHEN))


def test_a_closed_shard_is_read_to_its_end_whatever_its_empty_pages() -> None:
    client = FakeStreamsClient(empty_pages=25)  # more than any "N empty pages" rule
    views(client.add("s", FakeStream(start_time=0.0)), 3)
    client.close("s")

    (read,) = read_stream(client, STREAM_ARN, bound=Bound(time=1e12), timing=QUICK).shards

    assert (len(read.records), read.ended, read.empty_pages) == (3, "closed", 25)


def test_an_open_shard_ends_at_its_sequence_bound_after_empty_pages() -> None:
    client = FakeStreamsClient(empty_pages=10)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 5)
    third = int(stream.records[2]["dynamodb"]["SequenceNumber"])
    shard = Shard("s", None, False)

    read = read_shard(client, STREAM_ARN, shard, bound=Bound(seq=third), timing=QUICK)

    assert ([r.seq for r in read.records][-1], len(read.records), read.ended) == (third, 3, "bound")


def test_an_open_shard_ends_at_the_first_record_past_its_time_bound() -> None:
    client = FakeStreamsClient(empty_pages=4)
    stream = client.add("s", FakeStream(start_time=100.0))
    views(stream, 2)  # created at 100 (the fake rounds down to the second)
    stream._time = 200.0  # later writes
    views(stream, 2)

    (read,) = read_stream(client, STREAM_ARN, bound=Bound(time=150.0), timing=QUICK).shards

    assert (len(read.records), read.ended) == (2, "bound")


def test_a_quiet_open_shard_ends_at_the_safety_cap_and_says_so() -> None:
    client = FakeStreamsClient(empty_pages=2)
    views(client.add("s", FakeStream(start_time=0.0)), 2)

    result = read_stream(client, STREAM_ARN, bound=Bound(time=1.0), timing=QUICK)

    assert [(len(r.records), r.ended) for r in result.shards] == [(2, "cap")]
    assert len(result.capped) == 1


def test_the_target_takes_an_item_from_its_last_record_and_names_the_records_in_flight() -> None:
    """The read of the table missed view b (GSI1 lag, or a scan before the write); b's record
    is in the stream. Applied (below the summary's mark): counted. View c's record is above the
    mark: in flight, left out and named."""
    stream = FakeStream(start_time=0.0)
    a, b, c = (view_item(u, "v", d, WHEN) for u, d in (("u1", 10), ("u2", 20), ("u3", 30)))
    records = [stream.put(item) for item in (a, b, c)]
    key = SummaryKey(SummaryKind.VIDEO, "v")
    b_seq = int(records[1]["dynamodb"]["SequenceNumber"])
    mark = shard_marks("views", "s").current
    summary = {mark: {"S": encode_mark(b_seq, 0.0)}}
    read = read_shard(
        _client_with("s", stream), STREAM_ARN, Shard("s", None, True), bound=Bound(), timing=QUICK
    )
    identity_a = (a["PK"]["S"], a["SK"]["S"])

    target = summary_target(
        key,
        {identity_a: a},  # the table read shows a only
        read.records,
        Positions.of({key: summary}, STREAM_ARN, estimate_positions=False),
    )

    # a (read) + b (its record, applied), not c (in flight)
    assert (target.expected.views, target.expected.duration) == (2, 30)
    assert target.in_flight == (("s", int(records[2]["dynamodb"]["SequenceNumber"])),)


def _client_with(shard_id: str, stream: FakeStream) -> FakeStreamsClient:
    client = FakeStreamsClient()
    client.add(shard_id, stream)
    client.close(shard_id)
    return client


def test_redrive_reads_a_failed_range_back_past_empty_pages() -> None:
    """``redrive.read_range``: the range of an on-failure message, on an open shard whose
    iterators answer empty pages first, ends at the range's end sequence number."""
    client = FakeStreamsClient(empty_pages=6)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 6)
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in stream.records]
    batch = redrive.FailedBatch("q", "m", "r", "VIEW", "s", STREAM_ARN, seqs[1], seqs[3], 3, None)

    records = redrive.read_range(client, batch, QUICK)

    assert [r.seq for r in records] == seqs[1:4]


def test_reading_to_the_tips_reads_only_what_the_summaries_hold_and_closed_shards() -> None:
    """``read_to_tips`` (after the summaries a tool writes): a shard read to its end is not
    read again, an open one is read on to its tip and no further, a shard that closed since
    to its end, a new one with a tip from its start; one without a tip, or at it, costs no
    call. The result holds every record once."""
    client = FakeStreamsClient(empty_pages=2)
    done = client.add("done", FakeStream(start_time=0.0))
    views(done, 3)
    client.close("done")
    open_ = client.add("open", FakeStream(first_sequence=10**20 + 100, start_time=0.0))
    closing = client.add("closing", FakeStream(first_sequence=10**20 + 300, start_time=0.0))
    quiet = client.add("quiet", FakeStream(first_sequence=10**20 + 400, start_time=0.0))
    for stream in (open_, closing, quiet):
        views(stream, 2)
    first = read_stream(client, STREAM_ARN, bound=Bound(time=1.0), timing=QUICK)
    views(open_, 3)  # a summary holds the second of these: the tip
    views(closing, 1)
    client.close("closing")
    views(quiet, 1)  # no summary holds it: not read
    views(client.add("new", FakeStream(first_sequence=10**20 + 200, start_time=0.0)), 2)
    tips = {"open": seqs_of(open_)[3], "new": seqs_of(client.shards["new"][0])[0]}
    tips["quiet"] = seqs_of(quiet)[1]  # already read
    listed = [
        Shard(shard_id, parent, closed) for shard_id, (_, parent, closed) in client.shards.items()
    ]
    calls = client.get_records_calls

    later = read_to_tips(client, STREAM_ARN, first, tips, timing=QUICK, shards=listed)

    assert [(r.shard.shard_id, len(r.records), r.ended) for r in later.shards] == [
        ("done", 3, "closed"),
        ("open", 4, "bound"),
        ("closing", 3, "closed"),
        ("quiet", 2, "cap"),
        ("new", 1, "bound"),
    ]
    assert len({(r.shard_id, r.seq) for r in later.records}) == 13
    assert later.shards[0] is first.shards[0]  # the shard read to its end was not read again
    assert later.shards[3] is first.shards[3]  # at its tip: no call
    # open and closing go on from their kept iterators (one page each); new walks its 2 empty
    # pages first.
    assert client.get_records_calls - calls == 1 + 1 + 3
    assert read_to_tips(client, STREAM_ARN, later, tips, timing=QUICK, shards=listed).shards == (
        later.shards
    )


def seqs_of(stream: FakeStream) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in stream.records]


def test_below_a_known_tip_an_open_shard_is_read_past_the_time_cap() -> None:
    """Five empty pages before the records; the time cap alone stops at the first. With the
    shard known to hold its third record (a summary's mark), the read goes on to it, and only
    then does the cap end it (at the empty page after the records)."""
    client = FakeStreamsClient(empty_pages=5)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 3)
    shard = Shard("s", None, False)
    bound = Bound(time=1.0)

    blind = read_shard(client, STREAM_ARN, shard, bound=bound, timing=AT_ONCE)
    known = read_shard(
        client, STREAM_ARN, shard, bound=bound, timing=AT_ONCE, at_least=seqs_of(stream)[2]
    )

    assert (len(blind.records), blind.ended, blind.empty_pages) == (0, "cap", 1)
    assert (len(known.records), known.ended, known.empty_pages, known.short) == (3, "cap", 6, False)


def test_a_read_the_page_cap_ends_below_its_known_tip_is_short_and_the_next_read_goes_on() -> None:
    """Eight empty pages, a page cap of five: the read is short of the known tip, and says so;
    the read after the summaries (``read_to_tips``) goes on from the iterator where it stopped,
    so it walks only the three empty pages left, and reaches the records up to the tip."""
    client = FakeStreamsClient(empty_pages=8)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 3)
    capped = replace(AT_ONCE, max_pages=5)
    tips = {"s": seqs_of(stream)[2]}

    first = read_stream(client, STREAM_ARN, bound=Bound(time=1.0), timing=capped, at_least=tips)
    calls = client.get_records_calls
    listed = [Shard("s", None, False)]
    later = read_to_tips(client, STREAM_ARN, first, tips, timing=capped, shards=listed)

    assert [(len(r.records), r.ended, r.short) for r in first.shards] == [(0, "cap", True)]
    assert "shard s was read to nothing only (5 pages, the page cap)" in (
        first.short[0].describe_short()
    )
    assert [(len(r.records), r.ended, r.short) for r in later.shards] == [(3, "bound", False)]
    assert client.get_records_calls - calls == 4  # 3 empty, the records up to the tip
    assert later.short == []


def test_a_closed_shard_the_page_cap_ends_is_short() -> None:
    client = FakeStreamsClient(empty_pages=4)
    views(client.add("s", FakeStream(start_time=0.0)), 2)
    client.close("s")

    read = read_stream(client, STREAM_ARN, bound=Bound(), timing=replace(QUICK, max_pages=3))

    assert [(r.ended, r.short) for r in read.shards] == [("cap", True)]


def test_a_failed_range_behind_more_empty_pages_than_the_time_cap_allows_is_read() -> None:
    """``redrive.read_range``: the range's end is known to exist, so no time cap; only the
    page cap ends the read short, and that is "not read to its end yet", not trimmed."""
    client = FakeStreamsClient(empty_pages=6)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 6)
    seqs = seqs_of(stream)
    batch = redrive.FailedBatch("q", "m", "r", "VIEW", "s", STREAM_ARN, seqs[1], seqs[3], 3, None)

    assert [r.seq for r in redrive.read_range(client, batch, AT_ONCE)] == seqs[1:4]
    with pytest.raises(redrive.NotReadYet, match="not read to its end yet: shard s"):
        redrive.read_range(client, batch, replace(AT_ONCE, max_pages=6))


def test_known_tips_are_the_fresh_marks_summaries_hold_and_the_ranges_read_back() -> None:
    """The highest mark of each listed shard over the summaries (either function), a failed
    range's end; not a mark old enough for its record to be trimmed (it would send the read
    after a record that may be gone, on to the page cap), nor a shard not listed."""
    now = 1_700_000_000.0
    fresh, stale = now - 3600, now - 23 * 3600
    views_s, votes_s = shard_marks("views", "s").current, shard_marks("votes", "s").current
    summaries = [
        {views_s: {"S": encode_mark(120, fresh)}},
        {votes_s: {"S": encode_mark(150, fresh)}, "views": {"N": "3"}},
        {shard_marks("views", "t").current: {"S": encode_mark(900, stale)}},
        {shard_marks("views", "gone").current: {"S": encode_mark(700, fresh)}},
        None,
    ]
    listed = [Shard("s", None, False), Shard("t", None, False), Shard("u", None, False)]

    tips = known_tips(summaries, listed, range_ends={"u": 40, "s": 130}, now=now)

    assert tips == {"s": 150, "u": 40}


class ExpiringIterators(FakeStreamsClient):
    """GetRecords refuses the iterators in ``expired`` (once each: the fake's iterators are
    positions, and a fresh one may spell the same), as AWS does 15 minutes after
    GetShardIterator and the local endpoint beyond its last 10,000."""

    def __init__(self, empty_pages: int = 0) -> None:
        super().__init__(empty_pages)
        self.expired: set[str] = set()

    def get_records(self, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        if ShardIterator in self.expired:
            self.expired.discard(ShardIterator)
            error = {"Error": {"Code": "ExpiredIteratorException", "Message": "expired"}}
            raise ClientError(error, "GetRecords")  # type: ignore[arg-type]
        return super().get_records(ShardIterator, Limit)


def test_reading_on_starts_again_from_the_position_when_the_kept_iterator_expired() -> None:
    client = ExpiringIterators(empty_pages=2)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 3)
    capped = replace(AT_ONCE, max_pages=2)
    tips = {"s": seqs_of(stream)[2]}
    first = read_stream(client, STREAM_ARN, bound=Bound(time=1.0), timing=capped, at_least=tips)
    client.expired = {r.iterator for r in first.shards if r.iterator}

    later = read_to_tips(
        client,
        STREAM_ARN,
        first,
        tips,
        timing=replace(capped, max_pages=5),
        shards=[Shard("s", None, False)],
    )

    assert [(len(r.records), r.ended, r.short) for r in first.shards] == [(0, "cap", True)]
    assert [(len(r.records), r.ended) for r in later.shards] == [(3, "bound")]
    assert client.expired == set()  # the kept iterator was tried, and refused


def test_a_kept_iterator_that_expired_is_replaced_after_the_last_record_read() -> None:
    """The read that kept the iterator had reached the shard's second record; the stream
    gained two more, the tip is the last. The kept iterator expired: the read starts again
    after the second record, not at TRIM_HORIZON, so no record is read twice."""
    client = ExpiringIterators(empty_pages=2)
    stream = client.add("s", FakeStream(start_time=0.0))
    views(stream, 2)
    first = read_stream(
        client,
        STREAM_ARN,
        bound=Bound(time=1.0),
        timing=AT_ONCE,
        at_least={"s": seqs_of(stream)[1]},
    )
    views(stream, 2)
    client.expired = {r.iterator for r in first.shards if r.iterator}

    later = read_to_tips(
        client,
        STREAM_ARN,
        first,
        {"s": seqs_of(stream)[3]},
        timing=AT_ONCE,
        shards=[Shard("s", None, False)],
    )

    assert [(len(r.records), r.ended, r.reached) for r in first.shards] == [
        (2, "cap", seqs_of(stream)[1])
    ]
    assert client.expired == set()  # the kept iterator was tried, and refused
    assert [r.seq for r in later.records] == seqs_of(stream)
    assert [(r.ended, r.reached) for r in later.shards] == [("bound", seqs_of(stream)[3])]
