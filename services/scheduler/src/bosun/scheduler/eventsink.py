"""A rate-limited EventSink: the scheduler's Event writes at a bounded rate.

Problem it solves: every bound pod earns a `Scheduled` Event, and on a busy cluster writing one
Event per bind doubles the writes the apiserver takes from the scheduler — the Events, which
nobody reads at that rate, would halve scheduling throughput. kube-scheduler bounds this with
its client's rate limit (the Event client shares `--kube-api-qps` 50, burst 100); Events beyond
what the limiter lets through queue up in the recorder, which drops the overflow (counted in
`bosun_events_total{result="dropped"}`). This sink is that limiter: a token bucket in front of
`create` and `patch`.

Concurrency: only the EventRecorder's single writer task calls the sink, so the bucket needs
no lock; waiting for a token is an `await` on the injectable `sleep`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.events import EventSink

__all__ = ["RateLimitedEventSink"]


class RateLimitedEventSink:
    def __init__(
        self,
        sink: EventSink,
        *,
        qps: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"need qps > 0 and burst >= 1 (got {qps}, {burst})")
        self._sink = sink
        self._qps = qps
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    async def _take(self) -> None:
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await self._sleep((1 - self._tokens) / self._qps)

    async def create(self, obj: core_pb2.Event, /) -> core_pb2.Event:
        await self._take()
        return await self._sink.create(obj)

    async def patch(
        self, name: str, patch: Mapping[str, Any], /, *, namespace: str = ""
    ) -> core_pb2.Event:
        await self._take()
        return await self._sink.patch(name, patch, namespace=namespace)
