"""WorkQueue: de-duplication, per-key exclusivity, FIFO, delays, rate limits, shutdown, workers."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

import pytest

from bosun.common.workqueue import (
    ExponentialBackoff,
    MaxOf,
    QueueShutDown,
    TokenBucket,
    WorkQueue,
    default_rate_limiter,
    run_workers,
)


class FakeTimer:
    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that only moves when told to, firing due timers in deadline order."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while self._timers and self._timers[0][0] <= self.now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)


async def settle() -> None:
    """Let every runnable task run until it blocks again."""
    for _ in range(10):
        await asyncio.sleep(0)


def make_queue(clock: FakeClock | None = None, *, qps: float | None = None) -> WorkQueue[str]:
    clock = clock or FakeClock()
    return WorkQueue(
        "test", clock=clock, rate_limiter=default_rate_limiter(qps=qps, now=clock.time)
    )


# ----------------------------------------------------------------------------- basic queue


async def test_distinct_keys_are_handed_out_first_in_first_out() -> None:
    queue = make_queue()
    for key in ("a", "b", "c"):
        queue.add(key)
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]


async def test_a_key_added_twice_before_it_is_taken_is_handed_out_once() -> None:
    queue = make_queue()
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_get_waits_until_a_key_is_added() -> None:
    queue = make_queue()
    getter = asyncio.create_task(queue.get())
    await settle()
    assert not getter.done()
    queue.add("a")
    assert await getter == "a"


async def test_a_key_being_processed_is_not_handed_to_a_second_worker() -> None:
    queue = make_queue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    second = asyncio.create_task(queue.get())
    await settle()
    assert not second.done()
    assert len(queue) == 0
    second.cancel()


async def test_a_key_re_added_while_processing_is_queued_again_on_done() -> None:
    queue = make_queue()
    queue.add("a")
    await queue.get()
    queue.add("a")
    queue.done("a")
    assert len(queue) == 1
    assert await queue.get() == "a"


async def test_done_without_a_re_add_does_not_queue_the_key_again() -> None:
    queue = make_queue()
    queue.add("a")
    await queue.get()
    queue.done("a")
    assert len(queue) == 0


async def test_a_key_re_added_while_processing_goes_behind_keys_already_queued() -> None:
    queue = make_queue()
    queue.add("a")
    await queue.get()
    queue.add("a")
    queue.add("b")
    queue.done("a")
    assert [await queue.get(), await queue.get()] == ["b", "a"]


async def test_a_cancelled_getter_does_not_lose_the_key_it_was_woken_for() -> None:
    queue = make_queue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.add("a")  # wakes `first`
    first.cancel()
    await settle()
    assert second.done()
    assert second.result() == "a"


# ---------------------------------------------------------------------------------- delays


async def test_add_after_adds_the_key_once_the_delay_has_passed() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_after("a", 10.0)
    clock.advance(9.999)
    assert len(queue) == 0
    clock.advance(0.001)
    assert len(queue) == 1


async def test_add_after_keeps_the_earliest_deadline_for_a_key() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_after("a", 10.0)
    queue.add_after("a", 2.0)
    queue.add_after("a", 5.0)
    assert clock.pending == 1
    clock.advance(2.0)
    assert len(queue) == 1


async def test_add_after_with_a_non_positive_delay_adds_at_once() -> None:
    queue = make_queue()
    queue.add_after("a", 0)
    assert len(queue) == 1


async def test_add_after_uses_the_event_loop_clock_by_default() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.01)
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"


async def test_an_event_loop_is_a_clock() -> None:
    queue: WorkQueue[str] = WorkQueue(clock=asyncio.get_running_loop())
    queue.add_after("a", 0.001)
    assert await asyncio.wait_for(queue.get(), timeout=5) == "a"


# ------------------------------------------------------------------------------ rate limits


async def test_rate_limited_adds_back_off_exponentially_from_5ms_per_key() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    for expected in (0.005, 0.01, 0.02, 0.04):
        queue.add_rate_limited("a")
        clock.advance(expected * 0.99)
        assert len(queue) == 0
        clock.advance(expected * 0.02)
        assert len(queue) == 1
        await queue.get()
        queue.done("a")


async def test_backoff_of_one_key_does_not_delay_another() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    for _ in range(5):
        queue.rate_limiter.when("a")
    queue.add_rate_limited("b")
    clock.advance(0.005)
    assert await queue.get() == "b"


def test_exponential_backoff_is_capped_at_1000_seconds_by_default() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff()
    delays = [backoff.when("a") for _ in range(40)]
    assert delays[-1] == 1000.0
    assert max(delays) == 1000.0


def test_exponential_backoff_never_overflows_after_many_failures() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base_delay=1.0, max_delay=60.0)
    for _ in range(5000):
        assert backoff.when("a") <= 60.0


async def test_num_requeues_counts_rate_limited_adds_of_a_key() -> None:
    queue = make_queue()
    queue.add_rate_limited("a")
    queue.add_rate_limited("a")
    assert queue.num_requeues("a") == 2
    assert queue.num_requeues("b") == 0


async def test_forget_resets_the_backoff_of_a_key() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    for _ in range(5):
        queue.add_rate_limited("a")
    queue.forget("a")
    assert queue.num_requeues("a") == 0
    clock.advance(100)  # fire the pending timer from the failures above
    await queue.get()
    queue.done("a")
    queue.add_rate_limited("a")
    clock.advance(0.005)
    assert len(queue) == 1


def test_token_bucket_allows_a_burst_then_spaces_retries_at_qps() -> None:
    now = [0.0]
    bucket: TokenBucket[str] = TokenBucket(qps=10, burst=3, now=lambda: now[0])
    assert [bucket.when(k) for k in "abc"] == [0.0, 0.0, 0.0]
    assert [round(bucket.when(k), 3) for k in "de"] == [0.1, 0.2]
    now[0] = 10.0
    assert bucket.when("f") == 0.0


def test_max_of_rate_limiters_waits_for_the_slowest() -> None:
    now = [0.0]
    limiter: MaxOf[str] = MaxOf(
        ExponentialBackoff(base_delay=0.005), TokenBucket(qps=1, burst=1, now=lambda: now[0])
    )
    assert limiter.when("a") == 0.005
    assert limiter.when("b") == 1.0


async def test_the_overall_token_bucket_limits_retries_of_all_keys() -> None:
    clock = FakeClock()
    queue = WorkQueue[str](
        clock=clock, rate_limiter=default_rate_limiter(qps=1, burst=1, now=clock.time)
    )
    queue.add_rate_limited("a")
    queue.add_rate_limited("b")
    clock.advance(0.005)
    assert len(queue) == 1
    clock.advance(1.0)
    assert len(queue) == 2


# -------------------------------------------------------------------------------- shutdown


async def test_get_drains_queued_keys_after_shutdown_then_raises_queue_shut_down() -> None:
    queue = make_queue()
    queue.add("a")
    queue.shutdown()
    assert await queue.get() == "a"
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_wakes_waiting_getters_with_queue_shut_down() -> None:
    queue = make_queue()
    getter = asyncio.create_task(queue.get())
    await settle()
    queue.shutdown()
    with pytest.raises(QueueShutDown):
        await getter


async def test_adds_after_shutdown_are_ignored() -> None:
    queue = make_queue()
    queue.shutdown()
    queue.add("a")
    queue.add_after("b", 1)
    queue.add_rate_limited("c")
    assert len(queue) == 0


async def test_shutdown_cancels_pending_delayed_adds() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    queue.add_after("a", 1)
    queue.shutdown()
    assert clock.pending == 0


async def test_a_key_re_added_before_shutdown_is_still_drained_after_done() -> None:
    queue = make_queue()
    queue.add("a")
    await queue.get()
    queue.add("a")
    queue.shutdown()
    queue.done("a")
    assert await queue.get() == "a"


# --------------------------------------------------------------------------------- workers


async def test_run_workers_forgets_a_key_that_synced_successfully() -> None:
    queue = make_queue()
    queue.add_rate_limited("a")  # one earlier failure
    queue.rate_limiter.when("a")
    synced: list[str] = []

    async def sync(key: str) -> None:
        synced.append(key)
        queue.shutdown()

    queue.add("a")
    await asyncio.wait_for(run_workers(queue, sync, workers=1), timeout=5)
    assert synced == ["a"]
    assert queue.num_requeues("a") == 0


async def test_run_workers_retries_a_failed_key_with_backoff_and_reports_the_error() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    errors: list[tuple[str, Exception]] = []
    attempts = 0

    async def sync(key: str) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("transient")
        queue.shutdown()

    queue.add("a")
    workers = asyncio.create_task(
        run_workers(queue, sync, workers=1, on_error=lambda k, e: errors.append((k, e)))
    )
    await settle()
    assert attempts == 1
    assert queue.num_requeues("a") == 1
    clock.advance(0.005)
    await asyncio.wait_for(workers, timeout=5)
    assert attempts == 2
    assert [(k, str(e)) for k, e in errors] == [("a", "transient")]


async def test_a_failing_error_handler_does_not_stop_a_worker() -> None:
    clock = FakeClock()
    queue = make_queue(clock)
    synced: list[str] = []

    async def sync(key: str) -> None:
        synced.append(key)
        if key == "bad":
            raise ValueError(key)

    def on_error(key: str, error: Exception) -> None:
        raise RuntimeError("handler bug")

    workers = asyncio.create_task(run_workers(queue, sync, workers=1, on_error=on_error))
    queue.add("bad")
    await settle()
    queue.add("good")
    await settle()
    assert synced == ["bad", "good"]
    queue.shutdown()
    await asyncio.wait_for(workers, timeout=5)


async def test_run_workers_never_syncs_one_key_in_two_workers_at_once() -> None:
    queue = make_queue()
    active: set[str] = set()
    overlaps = 0
    syncs = 0

    async def sync(key: str) -> None:
        nonlocal overlaps, syncs
        if key in active:
            overlaps += 1
        active.add(key)
        syncs += 1
        queue.add(key)  # an event arriving mid-sync
        await asyncio.sleep(0)
        active.discard(key)
        if syncs >= 20:
            queue.shutdown()

    queue.add("a")
    queue.add("b")
    await asyncio.wait_for(run_workers(queue, sync, workers=4), timeout=5)
    assert overlaps == 0
    assert syncs >= 20


async def test_run_workers_returns_once_the_queue_is_shut_down_and_drained() -> None:
    queue = make_queue()
    synced: list[str] = []

    async def sync(key: str) -> None:
        synced.append(key)

    for key in "abc":
        queue.add(key)
    queue.shutdown()
    await asyncio.wait_for(run_workers(queue, sync, workers=2), timeout=5)
    assert sorted(synced) == ["a", "b", "c"]


async def test_cancelling_run_workers_releases_the_keys_being_synced() -> None:
    queue = make_queue()
    started = asyncio.Event()

    async def sync(key: str) -> None:
        started.set()
        await asyncio.Event().wait()

    queue.add("a")
    workers = asyncio.create_task(run_workers(queue, sync, workers=1))
    await asyncio.wait_for(started.wait(), timeout=5)
    assert queue.processing == {"a"}
    workers.cancel()
    with pytest.raises(asyncio.CancelledError):
        await workers
    assert queue.processing == frozenset()


def test_run_workers_needs_at_least_one_worker() -> None:
    queue = make_queue()

    async def sync(key: str) -> None:
        return None

    with pytest.raises(ValueError, match="workers"):
        asyncio.run(run_workers(queue, sync, workers=0))
