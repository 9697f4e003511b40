"""The endpoints controller against a real apiserver: Endpoints follow pods and their readiness."""

from __future__ import annotations

import pytest

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.testing import eventually
from bosun.controllermanager.testing import running_controllers

pytestmark = pytest.mark.integration


def service(name: str = "web", *, selector: bool = True) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    if selector:
        svc.spec.selector["app"] = "web"
    svc.spec.ports.add(name="http", port=80, target_port="http", protocol="TCP")
    return svc


async def running_pod(client: Client, name: str, ip: str, *, ready: bool) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.metadata.labels["app"] = "web"
    container = pod.spec.containers.add(name="app", image="busybox")
    container.ports.add(name="http", container_port=8080, protocol="TCP")
    pod.spec.node_name = "node-1"
    created = await client.pods.create(pod)
    return await set_ready(client, created, ip, ready)


async def set_ready(client: Client, pod: core_pb2.Pod, ip: str, ready: bool) -> core_pb2.Pod:
    pod.status.phase = "Running"
    pod.status.pod_ip = ip
    del pod.status.conditions[:]
    pod.status.conditions.add(type="Ready", status="True" if ready else "False")
    return await client.pods.update_status(pod)


async def addresses(client: Client, name: str = "web") -> tuple[list[str], list[str]] | None:
    try:
        endpoints = await client.endpoints.get(name, namespace="default")
    except NotFoundError:
        return None
    ready = sorted(a.ip for s in endpoints.subsets for a in s.addresses)
    not_ready = sorted(a.ip for s in endpoints.subsets for a in s.not_ready_addresses)
    return ready, not_ready


async def test_endpoints_list_ready_pods_on_their_named_port_and_follow_readiness(
    client: Client,
) -> None:
    async with running_controllers(client, ("endpoints",)):
        await client.services.create(service())
        first = await running_pod(client, "web-1", "10.244.0.1", ready=True)
        await running_pod(client, "web-2", "10.244.0.2", ready=False)

        async def shows(expected: tuple[list[str], list[str]]) -> bool:
            return await addresses(client) == expected

        await eventually(lambda: shows((["10.244.0.1"], ["10.244.0.2"])), timeout=10)
        endpoints = await client.endpoints.get("web", namespace="default")
        assert [(p.name, p.port) for p in endpoints.subsets[0].ports] == [("http", 8080)]

        await set_ready(client, first, "10.244.0.1", False)
        await eventually(lambda: shows(([], ["10.244.0.1", "10.244.0.2"])), timeout=10)

        await client.pods.delete("web-2", namespace="default", grace_period_seconds=0)
        await eventually(lambda: shows(([], ["10.244.0.1"])), timeout=10)


async def test_deleting_the_service_deletes_its_endpoints(client: Client) -> None:
    async with running_controllers(client, ("endpoints",)):
        await client.services.create(service())
        await running_pod(client, "web-1", "10.244.0.1", ready=True)
        await eventually(lambda: addresses(client), timeout=10)

        await client.services.delete("web", namespace="default")

        async def gone() -> bool:
            return await addresses(client) is None

        await eventually(gone, timeout=10)


async def test_endpoints_of_a_service_without_selector_are_left_to_the_user(
    client: Client,
) -> None:
    async with running_controllers(client, ("endpoints",)):
        await client.services.create(service("manual", selector=False))
        mine = core_pb2.Endpoints()
        mine.metadata.name, mine.metadata.namespace = "manual", "default"
        subset = mine.subsets.add()
        subset.addresses.add(ip="192.0.2.1")
        subset.ports.add(name="http", port=80, protocol="TCP")
        await client.endpoints.create(mine)
        await running_pod(client, "web-1", "10.244.0.1", ready=True)
        # A selector-based Service created after it is served: the controller is working.
        await client.services.create(service("web"))
        await eventually(lambda: addresses(client), timeout=10)

        assert await addresses(client, "manual") == (["192.0.2.1"], [])
