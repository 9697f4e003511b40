"""Hollow nodes (`bosun-kubelet --runtime=simulated`) against a real apiserver + etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.testing import eventually
from bosun.kubelet.simulated import EXIT_AFTER, EXIT_CODE, HollowNodes, SimulatedConfig


@pytest.fixture
async def hollow(client: Client) -> AsyncIterator[HollowNodes]:
    nodes = HollowNodes(
        SimulatedConfig(
            count=5, prefix="hollow", start_delay=0.1, lease_interval=0.5, status_interval=0.5
        ),
        client=client,
    )
    await nodes.start()
    yield nodes
    await nodes.stop()


def pod(name: str, node: str, **annotations: str) -> core_pb2.Pod:
    obj = core_pb2.Pod(api_version="v1", kind="Pod")
    obj.metadata.name, obj.metadata.namespace = name, "default"
    obj.metadata.annotations.update(annotations)
    obj.spec.node_name = node
    obj.spec.containers.add(name="app", image="anything:1")
    return obj


async def test_each_hollow_node_registers_and_heartbeats(
    hollow: HollowNodes, client: Client
) -> None:
    nodes = await client.nodes.list()
    assert sorted(n.metadata.name for n in nodes.items) == [f"hollow-{i}" for i in range(5)]
    # First heartbeats are spread over one lease interval (0.5 s here).
    await eventually(lambda: all(n.agent.heartbeats >= 2 for n in hollow.nodes.values()), timeout=5)
    for node in (await client.nodes.list()).items:
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        assert node.status.capacity["pods"] == "110"
    leases = await client.leases.list(namespace="kube-node-lease")
    assert sorted(lease.spec.holder_identity for lease in leases.items) == [
        f"hollow-{i}" for i in range(5)
    ]


async def test_pods_run_exit_and_are_removed_on_delete(hollow: HollowNodes, client: Client) -> None:
    await client.pods.create(pod("steady", "hollow-1"))
    await client.pods.create(pod("done", "hollow-2", **{EXIT_AFTER: "0.2"}))
    await client.pods.create(pod("broken", "hollow-2", **{EXIT_AFTER: "0.2", EXIT_CODE: "1"}))
    await client.pods.create(pod("elsewhere", "real-node"))

    async def phase(name: str) -> str:
        return (await client.pods.get(name)).status.phase

    for name, wanted in (("steady", "Running"), ("done", "Succeeded"), ("broken", "Failed")):
        async with asyncio.timeout(10):
            while await phase(name) != wanted:  # noqa: ASYNC110 - polling the apiserver
                await asyncio.sleep(0.05)
    steady = await client.pods.get("steady")
    assert steady.status.pod_ip.startswith("10.128.1.")
    assert steady.status.container_statuses[0].ready
    assert await phase("elsewhere") == "Pending"  # not a hollow node's pod: untouched
    await client.pods.delete("steady")
    async with asyncio.timeout(10):
        while True:
            try:
                await client.pods.get("steady")
            except NotFoundError:
                break
            await asyncio.sleep(0.05)
