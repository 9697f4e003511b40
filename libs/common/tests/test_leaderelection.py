"""LeaderElector against an in-memory lease store that enforces resourceVersion, on fake time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from bosun.api.v1 import coordination_pb2, meta_pb2
from bosun.common.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    UnavailableError,
)
from bosun.common.leaderelection import LeaderElector

NAME, NAMESPACE = "scheduler", "kube-system"


class FakeLeases:
    """Lease storage with the apiserver's optimistic concurrency; yields between steps."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], coordination_pb2.Lease] = {}
        self.revision = 0
        self.unavailable = False
        self.writes = 0

    async def _io(self) -> None:
        await asyncio.sleep(0)
        if self.unavailable:
            raise UnavailableError("apiserver unreachable")

    def _stamp(self, lease: coordination_pb2.Lease) -> coordination_pb2.Lease:
        self.revision += 1
        stored = coordination_pb2.Lease()
        stored.CopyFrom(lease)
        stored.metadata.resource_version = str(self.revision)
        self.items[(stored.metadata.namespace, stored.metadata.name)] = stored
        self.writes += 1
        return self.copy(stored)

    @staticmethod
    def copy(lease: coordination_pb2.Lease) -> coordination_pb2.Lease:
        result = coordination_pb2.Lease()
        result.CopyFrom(lease)
        return result

    async def get(self, name: str, *, namespace: str) -> coordination_pb2.Lease:
        await self._io()
        try:
            return self.copy(self.items[(namespace, name)])
        except KeyError:
            raise NotFoundError(f"lease {namespace}/{name} not found") from None

    async def create(self, lease: coordination_pb2.Lease, /) -> coordination_pb2.Lease:
        await self._io()
        if (lease.metadata.namespace, lease.metadata.name) in self.items:
            raise AlreadyExistsError("lease exists")
        return self._stamp(lease)

    async def update(self, lease: coordination_pb2.Lease, /) -> coordination_pb2.Lease:
        await self._io()
        key = (lease.metadata.namespace, lease.metadata.name)
        if key not in self.items:
            raise NotFoundError("lease not found")
        if lease.metadata.resource_version != self.items[key].metadata.resource_version:
            raise ConflictError("resourceVersion changed")
        return self._stamp(lease)

    def stored(self) -> coordination_pb2.Lease:
        return self.items[(NAMESPACE, NAME)]

    def put(self, holder: str, *, renewed: datetime, transitions: int = 0) -> None:
        lease = coordination_pb2.Lease(metadata=meta_pb2.ObjectMeta(name=NAME, namespace=NAMESPACE))
        lease.spec.holder_identity = holder
        lease.spec.lease_duration_seconds = 15
        lease.spec.renew_time.FromDatetime(renewed)
        lease.spec.acquire_time.FromDatetime(renewed)
        lease.spec.lease_transitions = transitions
        self._stamp(lease)


class FakeTime:
    """Wall clock and sleeps that only move when the test advances them."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._sleepers, (self.now + timedelta(seconds=seconds), next(self._seq), future)
        )
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its deadline and letting tasks react."""
        target = self.now + timedelta(seconds=seconds)
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
            await settle()
        self.now = target
        await settle()


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


class Recorder:
    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0
        self.work_cancelled = 0
        self.leaders: list[str] = []

    async def work(self) -> None:
        self.started += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled += 1
            raise

    def stop(self) -> None:
        self.stopped += 1

    def new_leader(self, identity: str) -> None:
        self.leaders.append(identity)


def elector(
    leases: FakeLeases, time: FakeTime, identity: str, recorder: Recorder | None = None
) -> LeaderElector:
    recorder = recorder or Recorder()
    return LeaderElector(
        leases=leases,
        name=NAME,
        namespace=NAMESPACE,
        identity=identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        clock=time.clock,
        sleep=time.sleep,
        on_started_leading=recorder.work,
        on_stopped_leading=recorder.stop,
        on_new_leader=recorder.new_leader,
    )


@asynccontextmanager
async def running(*electors: LeaderElector) -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks = [asyncio.create_task(e.run()) for e in electors]
    try:
        await settle()
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def leases() -> FakeLeases:
    return FakeLeases()


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


# -------------------------------------------------------------------------------- acquire


async def test_acquires_a_lease_that_does_not_exist(leases: FakeLeases, time: FakeTime) -> None:
    recorder = Recorder()
    a = elector(leases, time, "a", recorder)
    async with running(a):
        assert a.is_leader
        assert recorder.started == 1
        lease = leases.stored()
        assert lease.spec.holder_identity == "a"
        assert lease.spec.lease_duration_seconds == 15
        assert lease.spec.lease_transitions == 0
        assert lease.spec.renew_time.ToDatetime(tzinfo=UTC) == time.now


async def test_does_not_take_a_lease_whose_holder_is_renewing(
    leases: FakeLeases, time: FakeTime
) -> None:
    leases.put("b", renewed=time.now)
    a = elector(leases, time, "a")
    async with running(a):
        await time.advance(14)
        assert not a.is_leader
        assert leases.stored().spec.holder_identity == "b"


async def test_reports_the_current_leader_to_a_follower(leases: FakeLeases, time: FakeTime) -> None:
    leases.put("b", renewed=time.now)
    recorder = Recorder()
    a = elector(leases, time, "a", recorder)
    async with running(a):
        assert a.leader == "b"
        assert recorder.leaders == ["b"]


async def test_takes_over_an_expired_lease_and_counts_the_transition(
    leases: FakeLeases, time: FakeTime
) -> None:
    leases.put("b", renewed=time.now - timedelta(seconds=16), transitions=3)
    a = elector(leases, time, "a")
    async with running(a):
        assert a.is_leader
        spec = leases.stored().spec
        assert spec.holder_identity == "a"
        assert spec.lease_transitions == 4
        assert spec.acquire_time.ToDatetime(tzinfo=UTC) == time.now


async def test_takes_over_once_the_holder_stops_renewing(
    leases: FakeLeases, time: FakeTime
) -> None:
    leases.put("b", renewed=time.now)
    a = elector(leases, time, "a")
    async with running(a):
        await time.advance(20)
        assert a.is_leader


async def test_a_leader_renews_the_lease_every_retry_period(
    leases: FakeLeases, time: FakeTime
) -> None:
    a = elector(leases, time, "a")
    async with running(a):
        writes = leases.writes
        await time.advance(2)
        assert leases.writes == writes + 1
        assert leases.stored().spec.renew_time.ToDatetime(tzinfo=UTC) == time.now
        assert leases.stored().spec.lease_transitions == 0


# ---------------------------------------------------------------------------------- races


async def test_two_candidates_racing_for_an_absent_lease_elect_exactly_one(
    leases: FakeLeases, time: FakeTime
) -> None:
    a, b = elector(leases, time, "a"), elector(leases, time, "b")
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]


async def test_two_candidates_racing_for_an_expired_lease_elect_exactly_one(
    leases: FakeLeases, time: FakeTime
) -> None:
    leases.put("old", renewed=time.now - timedelta(minutes=1))
    a, b = elector(leases, time, "a"), elector(leases, time, "b")
    results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
    assert sorted(results) == [False, True]
    assert leases.stored().spec.lease_transitions == 1


async def test_running_candidates_keep_exactly_one_leader(
    leases: FakeLeases, time: FakeTime
) -> None:
    candidates = [elector(leases, time, name) for name in "abc"]
    async with running(*candidates):
        for _ in range(30):
            await time.advance(1)
            leaders = [c.identity for c in candidates if c.is_leader]
            assert leaders == [leases.stored().spec.holder_identity]


# ------------------------------------------------------------------------------ losing it


async def test_a_leader_that_cannot_renew_within_the_renew_deadline_stops_leading(
    leases: FakeLeases, time: FakeTime
) -> None:
    recorder = Recorder()
    a = elector(leases, time, "a", recorder)
    async with running(a):
        leases.unavailable = True
        await time.advance(8)
        assert a.is_leader
        await time.advance(2)
        assert not a.is_leader
        assert recorder.stopped == 1
        assert recorder.work_cancelled == 1


async def test_a_leader_stops_before_its_lease_can_expire_for_others(
    leases: FakeLeases, time: FakeTime
) -> None:
    a = elector(leases, time, "a")
    async with running(a):
        renewed = time.now
        leases.unavailable = True
        await time.advance(15)
        assert not a.is_leader
        assert time.now <= renewed + timedelta(seconds=15)


async def test_a_leader_that_sees_another_holder_stops_leading_at_once(
    leases: FakeLeases, time: FakeTime
) -> None:
    recorder = Recorder()
    a = elector(leases, time, "a", recorder)
    async with running(a):
        leases.put("intruder", renewed=time.now)
        await time.advance(2)
        assert not a.is_leader
        assert recorder.stopped == 1


async def test_leading_work_that_ends_gives_up_the_lease(
    leases: FakeLeases, time: FakeTime
) -> None:
    async def failing_work() -> None:
        raise RuntimeError("controller crashed")

    a = LeaderElector(
        leases=leases,
        name=NAME,
        namespace=NAMESPACE,
        identity="a",
        clock=time.clock,
        sleep=time.sleep,
        on_started_leading=failing_work,
    )
    async with running(a):
        assert not a.is_leader
        assert not leases.stored().spec.HasField("holder_identity")


async def test_a_leader_that_recovers_campaigns_again(leases: FakeLeases, time: FakeTime) -> None:
    recorder = Recorder()
    a = elector(leases, time, "a", recorder)
    async with running(a):
        leases.unavailable = True
        await time.advance(10)
        assert not a.is_leader
        leases.unavailable = False
        await time.advance(5)
        assert a.is_leader
        assert recorder.started == 2


# -------------------------------------------------------------------------------- release


async def test_cancelling_the_leader_releases_the_lease_for_an_immediate_takeover(
    leases: FakeLeases, time: FakeTime
) -> None:
    a_recorder = Recorder()
    a, b = elector(leases, time, "a", a_recorder), elector(leases, time, "b")
    a_task = asyncio.create_task(a.run())
    await settle()
    async with running(b):
        assert a.is_leader
        a_task.cancel()
        await asyncio.gather(a_task, return_exceptions=True)
        assert a_recorder.stopped == 1
        assert not leases.stored().spec.HasField("holder_identity")
        await time.advance(2 * (1 + 1.2))  # b's longest jittered retry, far below 15 s
        assert b.is_leader
        assert leases.stored().spec.lease_transitions == 1


async def test_release_does_nothing_when_the_lease_is_not_ours(
    leases: FakeLeases, time: FakeTime
) -> None:
    leases.put("b", renewed=time.now)
    a = elector(leases, time, "a")
    await a.try_acquire_or_renew()
    assert not await a.release()
    assert leases.stored().spec.holder_identity == "b"


async def test_release_does_not_clobber_a_lease_changed_since_we_wrote_it(
    leases: FakeLeases, time: FakeTime
) -> None:
    a = elector(leases, time, "a")
    assert await a.try_acquire_or_renew()
    leases.put("b", renewed=time.now)
    assert not await a.release()
    assert leases.stored().spec.holder_identity == "b"


# ---------------------------------------------------------------------------- config, time


@pytest.mark.parametrize(
    ("lease_duration", "renew_deadline", "retry_period"),
    [(10, 10, 2), (15, 2, 2), (15, 10, 0)],
)
def test_rejects_timings_that_could_let_two_replicas_lead(
    leases: FakeLeases, lease_duration: float, renew_deadline: float, retry_period: float
) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaderElector(
            leases=leases,
            name=NAME,
            namespace=NAMESPACE,
            identity="a",
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )


async def test_a_clock_may_return_epoch_seconds(leases: FakeLeases) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    clock: Callable[[], float] = now.timestamp
    a = LeaderElector(leases=leases, name=NAME, namespace=NAMESPACE, identity="a", clock=clock)
    assert await a.try_acquire_or_renew()
    assert leases.stored().spec.renew_time.ToDatetime(tzinfo=UTC) == now
