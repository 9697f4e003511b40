"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

Three places a pending pod can be (never two at once):

* activeQ: ready to be tried, ordered by priority (higher first), then by the time it entered
  the queue (older first) — Kubernetes' PrioritySort.
* backoffQ: failed recently; waits `initial · 2^(attempts-1)` seconds (capped at `maximum`)
  before going back to activeQ, so a pod that keeps failing does not starve the others.
* unschedulable: no node fits and nothing has changed since. It moves to activeQ (or backoffQ,
  if its backoff has not run out) when the cluster changes in a way that could help
  (`move_all`: a node added or changed, a pod deleted), and in any case after
  `max_unschedulable` seconds.

A pod is *in flight* between `pop` and `done`. Cluster changes during its attempt are not lost:
each `move_all` records the scheduling cycle it happened in, and a pod whose failed attempt
started before the latest move goes to backoffQ instead of the unschedulable pool (Kubernetes'
moveRequestCycle) — otherwise a node added while the pod was being tried would never wake it.

Updates (`add_or_update`) replace the queued pod in place; an update to a pod in the
unschedulable pool moves it to activeQ/backoffQ, since its spec may now fit. Deleting a pod
removes it from wherever it is, including from in flight (its result is then ignored).

Concurrency: one event loop; `pop` awaits until a pod is active. The heaps use lazy deletion: an
entry is valid only while its sequence number matches the pod's current entry. `flush` moves
expired backoffs and stale unschedulable pods; the scheduler calls it on a timer (`run_flusher`).
Time comes from the injectable `clock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bosun.scheduler.podinfo import PodInfo

__all__ = ["QueuedPod", "SchedulingQueue"]


@dataclass(eq=False)
class QueuedPod:
    info: PodInfo
    added: float  # when it first entered the queue (ordering within a priority)
    attempts: int = 0
    backoff_until: float = 0.0
    cycle: int = 0  # the scheduling cycle of its latest attempt
    seq: int = 0
    unschedulable_since: float = 0.0
    first_attempt: float | None = None  # for the e2e latency metric

    @property
    def key(self) -> str:
        return self.info.key


@dataclass
class SchedulingQueue:
    initial_backoff: float = 1.0
    max_backoff: float = 10.0
    max_unschedulable: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _active: list[tuple[int, float, int, str]] = field(default_factory=list)
    _backoff: list[tuple[float, int, str]] = field(default_factory=list)
    _where: dict[str, str] = field(default_factory=dict)  # key → active|backoff|unschedulable
    _pods: dict[str, QueuedPod] = field(default_factory=dict)
    _in_flight: dict[str, QueuedPod] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    scheduling_cycle: int = 0
    move_request_cycle: int = -1
    closed: bool = False

    # ------------------------------------------------------------------ sizes

    def lengths(self) -> dict[str, int]:
        counts = {"active": 0, "backoff": 0, "unschedulable": 0}
        for where in self._where.values():
            counts[where] += 1
        return counts

    def __contains__(self, key: str) -> bool:
        return key in self._pods or key in self._in_flight

    # ------------------------------------------------------------------ placing

    def _to_active(self, queued: QueuedPod) -> None:
        queued.seq = next(self._counter)
        self._pods[queued.key] = queued
        self._where[queued.key] = "active"
        heapq.heappush(self._active, (-queued.info.priority, queued.added, queued.seq, queued.key))
        self._wakeup.set()

    def _to_backoff(self, queued: QueuedPod) -> None:
        queued.seq = next(self._counter)
        self._pods[queued.key] = queued
        self._where[queued.key] = "backoff"
        heapq.heappush(self._backoff, (queued.backoff_until, queued.seq, queued.key))

    def _to_unschedulable(self, queued: QueuedPod) -> None:
        queued.seq = next(self._counter)
        queued.unschedulable_since = self.clock()
        self._pods[queued.key] = queued
        self._where[queued.key] = "unschedulable"

    def _wake(self, queued: QueuedPod) -> None:
        """Unschedulable → backoffQ while its backoff runs, else activeQ."""
        if queued.backoff_until > self.clock():
            self._to_backoff(queued)
        else:
            self._to_active(queued)

    def _backoff_for(self, attempts: int) -> float:
        return float(min(self.initial_backoff * 2.0 ** max(attempts - 1, 0), self.max_backoff))

    # ------------------------------------------------------------------ informer side

    def add_or_update(self, info: PodInfo, *, wake: bool = True) -> None:
        """A pending pod appeared or changed; `wake=False` (a status-only change) keeps an
        unschedulable pod where it is."""
        key = info.key
        in_flight = self._in_flight.get(key)
        if in_flight is not None:
            in_flight.info = info  # picked up by `requeue` when the attempt ends
            return
        queued = self._pods.get(key)
        if queued is None:
            self._to_active(QueuedPod(info=info, added=self.clock()))
            return
        queued.info = info
        where = self._where[key]
        if where == "active":
            self._to_active(queued)  # priority may have changed; the old entry goes stale
        elif where == "unschedulable" and wake:
            self._wake(queued)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)
        self._where.pop(key, None)
        self._in_flight.pop(key, None)

    def move_all(self) -> None:
        """The cluster changed in a way that may help unschedulable pods."""
        for key, where in list(self._where.items()):
            if where == "unschedulable":
                self._wake(self._pods[key])
        self.move_request_cycle = self.scheduling_cycle

    # ------------------------------------------------------------------ scheduler side

    async def pop(self) -> QueuedPod:
        """The next active pod (waits for one); it is in flight until `done`/`requeue`."""
        while True:
            while self._active:
                _, _, seq, key = heapq.heappop(self._active)
                queued = self._pods.get(key)
                if queued is None or queued.seq != seq or self._where.get(key) != "active":
                    continue  # stale entry
                del self._pods[key]
                del self._where[key]
                self.scheduling_cycle += 1
                queued.cycle = self.scheduling_cycle
                queued.attempts += 1
                if queued.first_attempt is None:
                    queued.first_attempt = self.clock()
                self._in_flight[key] = queued
                return queued
            if self.closed:
                raise asyncio.CancelledError("queue closed")
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The attempt ended with the pod scheduled (or given up on)."""
        self._in_flight.pop(key, None)

    def requeue(self, queued: QueuedPod, *, unschedulable: bool) -> None:
        """The attempt failed. `unschedulable`: no node fits (wait for a cluster change);
        otherwise an error (retry after backoff). A pod deleted meanwhile is dropped."""
        if self._in_flight.pop(queued.key, None) is None:
            return
        queued.backoff_until = self.clock() + self._backoff_for(queued.attempts)
        if unschedulable and self.move_request_cycle < queued.cycle:
            self._to_unschedulable(queued)
        else:
            self._to_backoff(queued)

    def retry_after_error(self, queued: QueuedPod) -> None:
        """A pod whose attempt already ended (`done`) failed later (its bind): back to
        backoffQ, unless the informer has queued it again meanwhile."""
        if queued.key in self:
            return
        queued.backoff_until = self.clock() + self._backoff_for(queued.attempts)
        self._to_backoff(queued)

    def flush(self) -> None:
        """Backoffs that ran out → activeQ; unschedulable for too long → activeQ/backoffQ."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, key = heapq.heappop(self._backoff)
            queued = self._pods.get(key)
            if queued is not None and queued.seq == seq and self._where.get(key) == "backoff":
                self._to_active(queued)
        for key, where in list(self._where.items()):
            if where == "unschedulable":
                queued = self._pods[key]
                if now - queued.unschedulable_since >= self.max_unschedulable:
                    self._wake(queued)

    def next_backoff_expiry(self) -> float | None:
        while self._backoff:
            expiry, seq, key = self._backoff[0]
            queued = self._pods.get(key)
            if queued is not None and queued.seq == seq and self._where.get(key) == "backoff":
                return expiry
            heapq.heappop(self._backoff)
        return None

    async def run_flusher(self, *, interval: float = 1.0) -> None:
        """Flush at the next backoff expiry (at least every `interval` seconds)."""
        while True:
            expiry = self.next_backoff_expiry()
            delay = interval if expiry is None else min(interval, max(expiry - self.clock(), 0))
            await asyncio.sleep(max(delay, 0.01))
            self.flush()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
