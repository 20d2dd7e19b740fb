"""What Lambda does after a failed batch of a stream: retry, bisect, or give up. Pure.

AWS Lambda developer guide, "Using AWS Lambda with Amazon DynamoDB", sections "Error
handling" and "Configuring partial batch response with DynamoDB"
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html):

* a function error, timeout or invalid partial-batch response fails the whole batch: with
  ``BisectBatchOnFunctionError`` the batch is split in two and each half retried on its own
  (splitting does not use up retry attempts); otherwise the same batch is retried, up to
  ``MaximumRetryAttempts`` (-1: until the records expire);
* a partial failure checkpoints before the lowest failed record; the rest is retried (exactly
  that rest with bisect on, else re-read from the checkpoint and batched as usual);
* once the attempts are used up, the failed records go to the on-failure destination and the
  shard moves on.

Nothing here has a clock: ``delay(attempt)`` is the backoff the caller waits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


def delay(attempt: int) -> float:
    """Backoff before retry ``attempt`` (1, 2, ...): 50 ms doubling, at most 1 s."""
    return min(1.0, 0.05 * 2.0 ** min(max(0, attempt - 1), 10))


@dataclass(frozen=True, slots=True)
class RetryState:
    """The head of one shard's queue: failed attempts, invocations since the last checkpoint,
    and the pinned sizes of the next batches (a retried or bisected batch keeps its size)."""

    attempts: int = 0
    invocations: int = 0
    segments: tuple[int, ...] = ()

    @property
    def pinned(self) -> int | None:
        return self.segments[0] if self.segments else None

    def invoked(self) -> RetryState:
        return replace(self, invocations=self.invocations + 1)

    def consumed(self, count: int) -> RetryState:
        """``count`` records left the head of the queue (delivered or given up)."""
        segments = list(self.segments)
        while count and segments:
            take = min(count, segments[0])
            segments[0] -= take
            count -= take
            if segments[0] == 0:
                segments.pop(0)
        return replace(self, segments=tuple(segments))

    def checkpointed(self) -> RetryState:
        """After a success or a give-up: the next batch starts afresh."""
        return RetryState(segments=self.segments)


@dataclass(frozen=True, slots=True)
class Decision:
    state: RetryState
    give_up: int = 0  # records at the head to report to the on-failure destination and drop
    bisected: bool = False
    retry_after: float = 0.0  # seconds


def exhausted(attempts: int, max_retries: int) -> bool:
    return max_retries >= 0 and attempts > max_retries


def after_batch_failure(state: RetryState, size: int, bisect: bool, max_retries: int) -> Decision:
    """The whole batch of ``size`` records failed."""
    if bisect and size > 1:
        first = (size + 1) // 2
        rest = state.segments[1:] if state.segments else ()
        return Decision(replace(state, segments=(first, size - first, *rest)), bisected=True)
    attempts = state.attempts + 1
    if exhausted(attempts, max_retries):
        return Decision(replace(state, attempts=attempts), give_up=size)
    segments = state.segments or (size,)
    return Decision(
        replace(state, attempts=attempts, segments=segments), retry_after=delay(attempts)
    )


def after_partial_failure(
    state: RetryState, succeeded: int, remaining: int, bisect: bool, max_retries: int
) -> Decision:
    """The first ``succeeded`` records were checkpointed; ``remaining`` failed."""
    state = state.consumed(succeeded)
    attempts = state.attempts + 1
    if exhausted(attempts, max_retries):
        return Decision(replace(state, attempts=attempts), give_up=remaining)
    segments = state.segments
    if bisect and not segments:
        segments = (remaining,)
    return Decision(
        replace(state, attempts=attempts, segments=segments), retry_after=delay(attempts)
    )
