"""Two scheduler replicas with leader election on a real apiserver: only the leader schedules,
and the standby takes over within the lease duration when the leader dies."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import CollectorRegistry

from bosun.common.client import Client
from bosun.common.leaderelection import LeaderElector
from bosun.common.testing import eventually
from bosun.scheduler.config import SchedulerConfig
from bosun.scheduler.scheduler import Scheduler
from bosun.scheduler.testing import make_node, make_pod

pytestmark = pytest.mark.integration


class Replica:
    """One scheduler process's worth: an elector whose leading work is a fresh Scheduler."""

    def __init__(self, client: Client, identity: str) -> None:
        self.registry = CollectorRegistry()
        self.scheduled = 0
        self.elector = LeaderElector(
            leases=client.leases,
            name="bosun-scheduler",
            namespace="kube-system",
            identity=identity,
            lease_duration=2.0,
            renew_deadline=1.5,
            retry_period=0.2,
            on_started_leading=self.lead,
            release_on_cancel=False,  # a killed process does not release its lease
        )
        self.client = client
        self.task = asyncio.create_task(self.elector.run())

    async def lead(self) -> None:
        scheduler = Scheduler(self.client, SchedulerConfig(), registry=self.registry)
        await scheduler.run()

    def attempts(self) -> float:
        value = self.registry.get_sample_value(
            "bosun_scheduler_schedule_attempts_total", {"result": "scheduled"}
        )
        return value or 0.0

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _wait_bound(client: Client, name: str, *, timeout: float) -> str:
    """The node `name` gets bound to (polling the apiserver), within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            node = (await client.pods.get(name)).spec.node_name
            if node:
                return node
            await asyncio.sleep(0.05)


async def test_standby_takes_over_scheduling_when_the_leader_dies(client: Client) -> None:
    await client.nodes.create(make_node("node-1"))
    first, second = Replica(client, "first"), Replica(client, "second")
    try:
        await eventually(lambda: first.elector.is_leader or second.elector.is_leader)
        leader, standby = (first, second) if first.elector.is_leader else (second, first)
        await client.pods.create(make_pod("before"))
        await _wait_bound(client, "before", timeout=10)
        assert leader.attempts() == 1
        assert standby.attempts() == 0

        await leader.kill()
        await client.pods.create(make_pod("after"))
        await _wait_bound(client, "after", timeout=6)  # lease duration 2 s, plus sync
        assert standby.elector.is_leader
        assert standby.attempts() == 1
    finally:
        await first.kill()
        await second.kill()
