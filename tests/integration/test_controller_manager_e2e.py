"""End to end with the real components: apiserver, scheduler, kubelets (simulated runtime) and
the controller-manager. A kubelet that stops leaves its node NotReady; its pods are evicted after
their tolerationSeconds and re-created, scheduled and run on the other node.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.testing import deployment
from bosun.controllermanager.podutil import is_ready
from bosun.controllermanager.testing import running_controllers, until
from bosun.kubelet.simulated import HollowNodes, SimulatedConfig
from bosun.scheduler.config import SchedulerConfig
from bosun.scheduler.scheduler import Scheduler

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def kubelet(client: Client, prefix: str) -> AsyncIterator[HollowNodes]:
    """One simulated kubelet (node `<prefix>-0`) heartbeating every 0.2 s."""
    nodes = HollowNodes(
        SimulatedConfig(
            prefix=prefix, count=1, start_delay=0.05, lease_interval=0.2, status_interval=0.2
        ),
        client=client,
    )
    await nodes.start()
    try:
        yield nodes
    finally:
        await nodes.stop()


@contextlib.asynccontextmanager
async def scheduler(client: Client) -> AsyncIterator[Scheduler]:
    running = Scheduler(
        client,
        config=SchedulerConfig(pod_initial_backoff_seconds=0.05, pod_max_backoff_seconds=0.5),
        registry=CollectorRegistry(),
    )
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def live_pods_by_node(pods: list[core_pb2.Pod]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        if not pod.metadata.HasField("deletion_timestamp") and is_ready(pod):
            counts[pod.spec.node_name] = counts.get(pod.spec.node_name, 0) + 1
    return counts


async def node_ready(client: Client, name: str) -> bool:
    try:
        node = await client.nodes.get(name)
    except NotFoundError:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


async def test_pods_of_a_stopped_kubelet_are_recreated_on_another_node(client: Client) -> None:
    options: dict[str, Any] = {
        "node_monitor_period": 0.1,
        "node_monitor_grace_period": 1.0,
        "node_eviction_rate": 100.0,
        "default_toleration_seconds": 1,
    }
    controllers = ("replicaset", "deployment", "garbagecollector", "nodelifecycle")
    async with (
        scheduler(client),
        running_controllers(client, controllers, **options),
        contextlib.AsyncExitStack() as node_a,
    ):
        await node_a.enter_async_context(kubelet(client, "a"))
        await client.deployments.create(deployment("web", replicas=4, image="web:1"))

        async def running_on_a() -> bool:
            return live_pods_by_node((await client.pods.list()).items) == {"a-0": 4}

        await until(running_on_a, timeout=20)
        async with kubelet(client, "b"):  # a second node joins …
            await until(lambda: node_ready(client, "b-0"))
            await node_a.aclose()  # … and the first one's kubelet stops

            seen: list[str] = []

            async def moved() -> bool:
                pods = (await client.pods.list()).items
                seen[:] = [
                    f"{p.metadata.name}@{p.spec.node_name or '-'}:{p.status.phase}"
                    f"{'(deleting)' if p.metadata.HasField('deletion_timestamp') else ''}"
                    for p in pods
                ]
                return live_pods_by_node(pods) == {"b-0": 4}

            try:
                await until(moved, timeout=20)
            except TimeoutError:
                raise AssertionError(f"pods did not move to b-0: {seen}") from None
            node = await client.nodes.get("a-0")
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "Unknown"
    assert {(t.key, t.effect) for t in node.spec.taints} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
    }
