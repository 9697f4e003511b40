"""The scheduling queue: order, backoff, the unschedulable pool, and cluster-event moves."""

from __future__ import annotations

import asyncio

from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.queue import SchedulingQueue
from bosun.scheduler.testing import make_pod


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _queue(clock: FakeClock) -> SchedulingQueue:
    return SchedulingQueue(initial_backoff=1, max_backoff=10, max_unschedulable=60, clock=clock)


async def test_active_queue_orders_by_priority_then_age() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    for name, priority in [("old-low", 0), ("high", 10), ("new-low", 0)]:
        queue.add_or_update(PodInfo.of(make_pod(name, priority=priority)))
        clock.now += 1
    order = [(await queue.pop()).info.key for _ in range(3)]
    assert order == ["default/high", "default/old-low", "default/new-low"]


async def test_failed_pod_backs_off_exponentially_then_returns() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    expected_backoffs = [1, 2, 4, 8, 10, 10]
    for backoff in expected_backoffs:
        queued = await queue.pop()
        queue.requeue(queued, unschedulable=False)
        assert queue.lengths()["backoff"] == 1
        clock.now += backoff - 0.01
        queue.flush()
        assert queue.lengths()["active"] == 0
        clock.now += 0.02
        queue.flush()
        assert queue.lengths()["active"] == 1


async def test_unschedulable_pod_waits_for_a_cluster_event() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queue.requeue(await queue.pop(), unschedulable=True)
    clock.now += 5  # past its 1 s backoff
    queue.flush()
    assert queue.lengths() == {"active": 0, "backoff": 0, "unschedulable": 1}
    queue.move_all()
    assert queue.lengths()["active"] == 1


async def test_event_during_the_attempt_sends_the_pod_to_backoff_not_the_pool() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queued = await queue.pop()
    queue.move_all()  # a node appeared while the pod was being tried
    queue.requeue(queued, unschedulable=True)
    assert queue.lengths()["backoff"] == 1


async def test_unschedulable_pods_are_retried_after_the_maximum_wait() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queue.requeue(await queue.pop(), unschedulable=True)
    clock.now += 61
    queue.flush()
    assert queue.lengths()["active"] == 1


async def test_status_only_update_does_not_wake_but_spec_change_does() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queue.requeue(await queue.pop(), unschedulable=True)
    clock.now += 5
    queue.add_or_update(PodInfo.of(make_pod("p")), wake=False)
    assert queue.lengths()["unschedulable"] == 1
    queue.add_or_update(PodInfo.of(make_pod("p", cpu="1")))
    assert queue.lengths()["active"] == 1


async def test_deleted_pod_is_dropped_even_while_in_flight() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queued = await queue.pop()
    queue.delete("default/p")
    queue.requeue(queued, unschedulable=True)
    assert sum(queue.lengths().values()) == 0
    assert "default/p" not in queue


async def test_pop_waits_for_a_pod() -> None:
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    queue.add_or_update(PodInfo.of(make_pod("p")))
    assert (await asyncio.wait_for(waiter, 1)).info.key == "default/p"


async def test_failed_bind_retries_after_backoff_unless_requeued_meanwhile() -> None:
    clock = FakeClock()
    queue = _queue(clock)
    queue.add_or_update(PodInfo.of(make_pod("p")))
    queued = await queue.pop()
    queue.done(queued.key)  # assumed; the bind runs
    queue.retry_after_error(queued)
    assert queue.lengths()["backoff"] == 1
    queue.retry_after_error(queued)  # already queued: nothing more
    assert sum(queue.lengths().values()) == 1
