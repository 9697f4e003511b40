"""Services get a ClusterIP and NodePorts from the apiserver's ranges, never the same twice.

Against a real etcd: the addresses are claimed in the transaction that writes the Service, so
these tests also race creates against each other and against a full range.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import grpc
import pytest

from bosun.api.v1 import core_pb2
from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.errors import ApiError
from tests.integration.conftest import ApiServerFactory


def service(
    name: str, *, type: str = "ClusterIP", cluster_ip: str = "", node_port: int = 0
) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name = name
    svc.metadata.namespace = "default"
    svc.spec.type = type
    svc.spec.cluster_ip = cluster_ip
    svc.spec.selector["app"] = name
    port = svc.spec.ports.add()
    port.port = 80
    port.node_port = node_port
    return svc


@pytest.fixture
async def small_ranges(start_apiserver: ApiServerFactory) -> ApiServer:
    """A /29 (6 usable ClusterIPs) and 3 node ports."""
    return await start_apiserver(
        service_cluster_ip_range="10.0.0.0/29", service_node_port_range="30000-30002"
    )


@pytest.fixture
async def small_client(small_ranges: ApiServer) -> AsyncIterator[Client]:
    async with Client(f"127.0.0.1:{small_ranges.port}", timeout=10) as api:
        yield api


async def test_a_service_gets_a_cluster_ip_from_the_range(client: Client) -> None:
    created = await client.services.create(service("web"))
    assert ipaddress.ip_address(created.spec.cluster_ip) in ipaddress.ip_network("10.96.0.0/12")


async def test_a_requested_cluster_ip_is_honoured(client: Client) -> None:
    created = await client.services.create(service("dns", cluster_ip="10.96.0.10"))
    assert created.spec.cluster_ip == "10.96.0.10"


async def test_a_taken_cluster_ip_is_refused_naming_the_field(client: Client) -> None:
    await client.services.create(service("first", cluster_ip="10.96.0.10"))
    with pytest.raises(ApiError) as refused:
        await client.services.create(service("second", cluster_ip="10.96.0.10"))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert 'spec.clusterIP: Invalid value: "10.96.0.10": provided IP is already allocated' in (
        refused.value.message
    )


async def test_a_cluster_ip_outside_the_range_is_refused(client: Client) -> None:
    with pytest.raises(ApiError) as refused:
        await client.services.create(service("far", cluster_ip="192.168.1.1"))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.clusterIP" in refused.value.message
    assert "10.96.0.0/12" in refused.value.message


async def test_a_headless_service_gets_no_cluster_ip(client: Client) -> None:
    created = await client.services.create(service("headless", cluster_ip="None"))
    assert created.spec.cluster_ip == "None"


async def test_concurrent_creates_fill_a_range_without_duplicates(small_client: Client) -> None:
    results = await asyncio.gather(
        *(small_client.services.create(service(f"s{i}")) for i in range(8)),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, core_pb2.Service)]
    refused = [r for r in results if isinstance(r, ApiError)]
    ips = [svc.spec.cluster_ip for svc in created]
    assert len(created) == 6  # every usable address of the /29, each once
    assert len(set(ips)) == 6
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/29") for ip in ips)
    assert len(refused) == 2
    assert all(error.code == grpc.StatusCode.RESOURCE_EXHAUSTED for error in refused)


async def test_a_deleted_service_releases_its_cluster_ip(small_client: Client) -> None:
    for i in range(6):
        await small_client.services.create(service(f"s{i}"))
    gone = await small_client.services.get("s3", namespace="default")
    await small_client.services.delete("s3", namespace="default")

    again = await small_client.services.create(service("again"))
    assert again.spec.cluster_ip == gone.spec.cluster_ip


async def test_a_node_port_service_gets_a_node_port(small_client: Client) -> None:
    created = await small_client.services.create(service("np", type="NodePort"))
    assert 30000 <= created.spec.ports[0].node_port <= 30002


async def test_a_taken_node_port_is_refused(small_client: Client) -> None:
    await small_client.services.create(service("a", type="NodePort", node_port=30001))
    with pytest.raises(ApiError) as refused:
        await small_client.services.create(service("b", type="NodePort", node_port=30001))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.ports[0].nodePort" in refused.value.message


async def test_an_update_without_the_cluster_ip_keeps_it(client: Client) -> None:
    created = await client.services.create(service("web", type="NodePort"))
    replacement = service("web", type="NodePort")
    replacement.spec.selector["tier"] = "front"
    updated = await client.services.update(replacement)
    assert updated.spec.cluster_ip == created.spec.cluster_ip
    assert updated.spec.ports[0].node_port == created.spec.ports[0].node_port


async def test_changing_to_node_port_allocates_and_back_releases(small_client: Client) -> None:
    created = await small_client.services.create(service("web"))
    as_node_port = service("web", type="NodePort")
    port = (await small_client.services.update(as_node_port)).spec.ports[0].node_port
    assert 30000 <= port <= 30002

    back = service("web", cluster_ip=created.spec.cluster_ip)
    await small_client.services.update(back)
    taker = await small_client.services.create(service("taker", type="NodePort", node_port=port))
    assert taker.spec.ports[0].node_port == port
