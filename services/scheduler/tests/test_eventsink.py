"""The rate-limited Event sink lets a burst through, then one write per 1/qps seconds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.scheduler.eventsink import RateLimitedEventSink


class Recording:
    def __init__(self) -> None:
        self.writes = 0

    async def create(self, obj: core_pb2.Event, /) -> core_pb2.Event:
        self.writes += 1
        return obj

    async def patch(
        self, name: str, patch: Mapping[str, Any], /, *, namespace: str = ""
    ) -> core_pb2.Event:
        self.writes += 1
        return core_pb2.Event()


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_burst_then_qps() -> None:
    time = FakeTime()
    inner = Recording()
    sink = RateLimitedEventSink(inner, qps=10, burst=3, clock=time.clock, sleep=time.sleep)
    for _ in range(3):
        await sink.create(core_pb2.Event())
    assert time.slept == []
    await sink.patch("e", {}, namespace="default")
    await sink.create(core_pb2.Event())
    assert inner.writes == 5
    assert time.now == 0.2  # two writes beyond the burst at 10 per second
