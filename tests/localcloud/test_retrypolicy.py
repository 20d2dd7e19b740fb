"""The retry-and-bisect rule and the batch cut (localcloud.retrypolicy, localcloud.batching)."""

from __future__ import annotations

from localcloud import batching, retrypolicy
from localcloud.batching import Record
from localcloud.retrypolicy import RetryState, after_batch_failure, after_partial_failure


def test_without_bisect_the_same_batch_is_retried_until_attempts_run_out() -> None:
    state = RetryState()
    decision = after_batch_failure(state, size=5, bisect=False, max_retries=2)
    assert decision.state.segments == (5,)
    assert decision.retry_after > 0
    assert not decision.give_up
    decision = after_batch_failure(decision.state, size=5, bisect=False, max_retries=2)
    assert decision.state.attempts == 2
    assert not decision.give_up
    decision = after_batch_failure(decision.state, size=5, bisect=False, max_retries=2)
    assert decision.give_up == 5


def test_minus_one_retries_forever() -> None:
    state = RetryState(attempts=10_000)
    assert not after_batch_failure(state, size=1, bisect=False, max_retries=-1).give_up


def test_bisect_splits_without_using_attempts_down_to_one_record() -> None:
    decision = after_batch_failure(RetryState(), size=5, bisect=True, max_retries=0)
    assert decision.bisected
    assert decision.state.segments == (3, 2)
    assert decision.state.attempts == 0
    decision = after_batch_failure(decision.state, size=3, bisect=True, max_retries=0)
    assert decision.state.segments == (2, 1, 2)
    state = decision.state.consumed(2)  # the first two records went through
    assert state.segments == (1, 2)
    assert state.pinned == 1
    decision = after_batch_failure(state, size=1, bisect=True, max_retries=0)
    assert decision.give_up == 1  # a single record is retried, not split; no retries left


def test_partial_failure_checkpoints_before_the_lowest_failed_record() -> None:
    decision = after_partial_failure(
        RetryState(), succeeded=3, remaining=2, bisect=True, max_retries=1
    )
    assert decision.state.segments == (2,)
    assert decision.state.attempts == 1
    decision = after_partial_failure(
        decision.state, succeeded=0, remaining=2, bisect=True, max_retries=1
    )
    assert decision.give_up == 2
    plain = after_partial_failure(
        RetryState(), succeeded=3, remaining=2, bisect=False, max_retries=1
    )
    assert plain.state.segments == ()  # re-read from the checkpoint, batched as usual


def test_a_checkpoint_starts_the_next_batch_afresh() -> None:
    state = RetryState(attempts=3, invocations=4, segments=(2,)).checkpointed()
    assert (state.attempts, state.invocations) == (0, 0)
    assert retrypolicy.delay(1) < retrypolicy.delay(3) <= 1.0


def _records(*created: float) -> list[Record]:
    return [Record(str(i), {}, c, read_at=0.0, size=100, index=i) for i, c in enumerate(created)]


def test_batch_cut_by_size_window_and_tumbling_window() -> None:
    records = _records(0, 0, 0, 0, 0)
    kw = {
        "batching_window": 0.0,
        "tumbling_window": 0,
        "now": 0.0,
        "window_start": 0.0,
        "ended": False,
    }
    assert batching.take(records, batch_size=2, **kw) == 2  # type: ignore[arg-type]
    waiting = {**kw, "batching_window": 5.0, "now": 1.0}
    assert batching.take(records, batch_size=10, **waiting) == 0  # type: ignore[arg-type]
    assert batching.take(records, batch_size=10, **{**waiting, "ended": True}) == 5  # type: ignore[arg-type]
    assert batching.take(records, batch_size=10, **{**waiting, "now": 5.0}) == 5  # type: ignore[arg-type]
    spanning = _records(59, 59, 61)
    assert batching.take(spanning, batch_size=10, **{**kw, "tumbling_window": 60}) == 2  # type: ignore[arg-type]
    assert batching.take(records, batch_size=10, pinned=1, **kw) == 1  # type: ignore[arg-type]


def test_the_batching_window_begins_when_the_previous_invocation_completes() -> None:
    # Five records read at t=0.5 while an invocation ran until t=3; a 2 s batching window.
    records = [Record(str(i), {}, 0.0, read_at=0.5, size=100, index=i) for i in range(5)]
    start = batching.window_start(3.0, records[0].read_at)
    assert start == 3.0
    kw = {"batch_size": 10, "batching_window": 2.0, "tumbling_window": 0, "ended": False}
    # Counted from the first record (the old rule) the window ended at 2.5: all five would go
    # at 3.5; the window that began when the invocation completed holds them until 5.
    assert batching.take(records, now=3.5, window_start=0.5, **kw) == 5  # type: ignore[arg-type]
    assert batching.take(records, now=3.5, window_start=start, **kw) == 0  # type: ignore[arg-type]
    assert batching.take(records, now=5.0, window_start=start, **kw) == 5  # type: ignore[arg-type]
    # A record that arrives after the invocation completed starts the window itself.
    assert batching.window_start(3.0, 7.5) == 7.5
