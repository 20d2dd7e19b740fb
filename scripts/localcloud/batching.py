"""Which records of a shard's queue go into the next invocation. Pure.

Lambda reads a shard and invokes the function "when the batch size is reached, the batching
window expires, or the payload reaches 6 MB" (Lambda developer guide, "Polling and batching
streams", https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html); a batch never spans
two tumbling windows ("Using tumbling windows with DynamoDB").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PAYLOAD_LIMIT = 6 * 1024 * 1024
RECORD_OVERHEAD = 400  # event fields around the "dynamodb" part, for the payload limit


@dataclass(slots=True)
class Record:
    seq: str
    event: dict[str, Any]
    created: float  # epoch seconds (ApproximateCreationDateTime)
    read_at: float  # monotonic
    size: int
    index: int  # position in the shard (sequence numbers only compare within one shard)


def window_of(created: float, length: int) -> tuple[float, float]:
    """The tumbling window a record falls in: aligned on multiples of ``length`` seconds."""
    start = created // length * length
    return start, start + length


def window_start(began: float, head_read_at: float) -> float:
    """When the batching window the head record waits in began: when the previous invocation
    completed (``began``) if the record was waiting then, else when the record arrived (our
    reading of the sentence quoted in ``take`` for a lane with nothing waiting; design §7)."""
    return max(began, head_read_at)


def take(
    pending: Sequence[Record],
    *,
    batch_size: int,
    batching_window: float,
    tumbling_window: int,
    now: float,
    window_start: float,
    ended: bool,
    pinned: int | None = None,
) -> int:
    """How many records from the head of ``pending`` to invoke with now (0: wait).

    ``window_start`` is when the current batching window began: "If you configure a
    MaximumBatchingWindowInSeconds, the next batching window begins as soon as the previous
    function invocation completes" (Lambda developer guide, "How Lambda processes records from
    stream and queue-based event sources", batching behavior,
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html) — not when
    the first record arrives. ``pinned`` is the size a retry or a bisection fixed for this
    batch; ``ended``: the shard is closed and read to its end, so nothing more can fill a batch
    (no reason to wait)."""
    if not pending:
        return 0
    if pinned is not None:
        return min(pinned, len(pending))
    window = window_of(pending[0].created, tumbling_window) if tumbling_window > 0 else None
    count, size = 0, 0
    for record in pending:
        if count >= batch_size or (count and size + record.size > PAYLOAD_LIMIT):
            break
        if window is not None and window_of(record.created, tumbling_window) != window:
            break
        count += 1
        size += record.size
    ready = (
        count >= batch_size
        or count < len(pending)  # the payload limit or the tumbling window's end cut it
        or batching_window <= 0
        or ended
        or now >= window_start + batching_window
    )
    return count if ready else 0
