"""Work queue: hands keys to a pool of workers, de-duplicated, one worker per key, with retries.

Problem it solves: informer handlers fire far more often than a controller can reconcile, and a
controller must never reconcile the same object in two workers at once. Handlers therefore only
`add(key)`; workers loop `key = await queue.get()` → `sync(key)` → `queue.done(key)`. This is
client-go's `workqueue` (Type + DelayingQueue + RateLimitingQueue) for asyncio.

Invariants (the three sets are the whole state; `_queue ⊆ _dirty`, `_queue ∩ _processing = ∅`):

* De-duplication: a key is in `_dirty` from `add` until a worker takes it; adding it again
  meanwhile does nothing, so a burst of events for one object costs one `sync`.
* Exclusivity: a key taken by `get` is in `_processing` until `done`. Re-adding it meanwhile only
  marks it dirty; `done` puts it back at the tail of the queue, so the change made while it was
  being processed is seen by a later `sync`, never by a second concurrent one.
* Order: distinct keys are handed out first-in, first-out.
* Delays: `add_after` arms one timer per key (the earliest wins; a later deadline for a key that
  is already waiting is ignored) on the injectable `Clock`; `add_rate_limited` asks the
  `RateLimiter` for the delay: per-key exponential backoff (5 ms · 2^failures, capped at 1000 s)
  combined, by maximum, with an optional token bucket shared by all keys. `forget` resets a
  key's backoff once it synced successfully.
* Shutdown: `add*` become no-ops and pending timers are cancelled; `get` keeps returning what is
  already queued (including keys re-queued by `done`) and raises `QueueShutDown` once drained.

Concurrency: every method but `get` is synchronous and must be called on the event loop's
thread; no locks are needed because nothing awaits while the state is inconsistent. Waiting
getters park on futures; a wake-up is only a hint to re-check the queue, so a getter cancelled
after it was woken passes the wake-up to the next getter instead of losing a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from prometheus_client import Counter, Gauge

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

log = logging.getLogger(__name__)

_DEPTH = Gauge("bosun_workqueue_depth", "Keys waiting in the work queue.", ["name"])
_ADDS = Counter("bosun_workqueue_adds_total", "Keys added to the work queue.", ["name"])
_RETRIES = Counter(
    "bosun_workqueue_retries_total", "Rate-limited re-adds (retries) of keys.", ["name"]
)


class QueueShutDown(Exception):
    """Raised by `WorkQueue.get` once the queue is shut down and nothing is left in it."""


# ------------------------------------------------------------------------------------ clock


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time and timers for delayed adds. An asyncio event loop is one (`time`, `call_at`)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...


class _LoopClock:
    """The running event loop's clock, looked up on each call (the queue may be built early)."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer:
        return asyncio.get_running_loop().call_at(when, callback)


# ------------------------------------------------------------------------------ rate limits


class RateLimiter(Protocol[K_contra]):
    """Decides how long a failed key waits before it is retried (client-go's RateLimiter)."""

    def when(self, key: K_contra) -> float:
        """The delay in seconds before `key` is retried; records one more failure."""
        ...

    def forget(self, key: K_contra) -> None:
        """Stop tracking `key` (it succeeded): its next failure starts from the base delay."""
        ...

    def num_requeues(self, key: K_contra) -> int:
        """How many times `key` has failed since it was last forgotten."""
        ...


class ExponentialBackoff(Generic[K]):
    """Per-key backoff base · 2^failures, capped: ItemExponentialFailureRateLimiter."""

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Past 2^64 the float overflows long after the cap applies; stop doubling early.
        if failures > 64:
            return self.max_delay
        return min(self.base_delay * 2.0**failures, self.max_delay)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class TokenBucket(Generic[K]):
    """An overall limit on retries of all keys together: `qps` sustained, `burst` at once.

    Reservations may run the bucket negative: each caller is told how long to wait for its own
    token, so retries are spread out instead of all firing when a token appears.
    """

    def __init__(
        self, *, qps: float, burst: int, now: Callable[[], float] = time.monotonic
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._now = now
        self._tokens = float(burst)
        self._last = now()

    def when(self, key: K) -> float:
        now = self._now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, key: K) -> None:
        return None

    def num_requeues(self, key: K) -> int:
        return 0


class MaxOf(Generic[K]):
    """Combines limiters: the delay is the longest any of them asks for."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOf needs at least one limiter")
        self.limiters = limiters

    def when(self, key: K) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: K) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter(
    *,
    base_delay: float = 0.005,
    max_delay: float = 1000.0,
    qps: float | None = 10.0,
    burst: int = 100,
    now: Callable[[], float] = time.monotonic,
) -> RateLimiter[K]:
    """client-go's DefaultControllerRateLimiter: per-key backoff, and a bucket unless qps=None."""
    backoff: ExponentialBackoff[K] = ExponentialBackoff(base_delay=base_delay, max_delay=max_delay)
    if qps is None:
        return backoff
    return MaxOf(backoff, TokenBucket(qps=qps, burst=burst, now=now))


# ------------------------------------------------------------------------------------ queue


class WorkQueue(Generic[K]):
    """A de-duplicating, per-key exclusive, FIFO queue with delayed and rate-limited adds."""

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter[K] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter or default_rate_limiter()
        self._clock: Clock = clock or _LoopClock()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, tuple[float, Timer]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._depth = _DEPTH.labels(name)
        self._adds = _ADDS.labels(name)
        self._retries = _RETRIES.labels(name)

    def __len__(self) -> int:
        """Keys ready to be handed out (not those being processed or waiting on a timer)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def add(self, key: K) -> None:
        """Queue `key` unless it is already queued; if it is being processed, after `done`."""
        if self._shutting_down or key in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return
        self._push(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds have passed (at once when delay <= 0)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self._cancel_timer(key)
            self.add(key)
            return
        ready_at = self._clock.time() + delay
        waiting = self._waiting.get(key)
        if waiting is not None:
            if waiting[0] <= ready_at:
                return
            waiting[1].cancel()
        timer = self._clock.call_at(ready_at, lambda: self._fire(key))
        self._waiting[key] = (ready_at, timer)

    def add_rate_limited(self, key: K) -> None:
        """Add `key` after the delay its rate limiter says (a retry after a failure)."""
        if self._shutting_down:
            return
        self._retries.inc()
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset `key`'s failure count (call after a successful sync)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    async def get(self) -> K:
        """Wait for a key and take it; the caller must call `done(key)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(f"work queue {self.name!r} is shut down")
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were woken for a key we will not take
                else:
                    with contextlib.suppress(ValueError):
                        self._getters.remove(waiter)
                raise
        key = self._queue.popleft()
        self._depth.set(len(self._queue))
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """Finish processing `key`; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._push(key)

    def shutdown(self) -> None:
        """Refuse new keys, cancel pending delays; getters drain the queue, then get raises."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for _, timer in self._waiting.values():
            timer.cancel()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _push(self, key: K) -> None:
        self._queue.append(key)
        self._depth.set(len(self._queue))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def _cancel_timer(self, key: K) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[1].cancel()


# ---------------------------------------------------------------------------------- workers


class SyncFunc(Protocol[K_contra]):
    def __call__(self, key: K_contra, /) -> Awaitable[None]: ...


class ErrorHandler(Protocol[K_contra]):
    def __call__(self, key: K_contra, error: Exception, /) -> None: ...


def _log_error(key: object, error: Exception) -> None:
    log.error("sync of %r failed; retrying", key, exc_info=error, extra={"key": str(key)})


async def run_workers(
    queue: WorkQueue[K],
    sync: SyncFunc[K],
    *,
    workers: int,
    on_error: ErrorHandler[K] | None = None,
) -> None:
    """Run `workers` loops of get → sync → forget (success) / add_rate_limited (error) → done.

    Returns once the queue is shut down and drained. An exception from `sync` (or from
    `on_error`) is reported and the key retried; it never ends a worker. Cancelling this
    coroutine cancels the workers, and each still calls `done` for the key it held.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    report: ErrorHandler[K] = on_error or _log_error

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            try:
                await sync(key)
            except Exception as error:
                try:
                    report(key, error)
                except Exception:
                    log.exception("on_error handler failed for key %r", key)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as group:
        for index in range(workers):
            name = f"workqueue-{queue.name}-{index}" if queue.name else f"workqueue-{index}"
            group.create_task(worker(), name=name)
