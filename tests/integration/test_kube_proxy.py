"""kube-proxy on real iptables: traffic to a Service IP reaches its pods, inside namespaces.

A "node" network namespace with a bridge and three "pod" namespaces, each serving its own name
over HTTP (see tests/integration/netns.py); the apiserver runs in this process and listens on
the host end of a veth into the node; `bosun-proxy` runs inside the node namespace, where it
programs the legacy iptables tables. Clients make requests from the node (nat OUTPUT) or from
the host (a NodePort, through nat PREROUTING). Endpoints are written by the test, standing in
for the endpoints controller: the proxy's input is the API objects, whoever writes them.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bosun.api.v1 import core_pb2
from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.testing import eventually
from tests.integration.conftest import ApiServerFactory
from tests.integration.netns import FETCH, Topology, require_root_networking, run

PROXY = str(Path(sys.executable).with_name("bosun-proxy"))
SAVE = "iptables-legacy-save"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    require_root_networking()
    net = Topology(subnet=random.randrange(1, 250))
    root = tmp_path_factory.mktemp("pods")
    try:
        net.create()
        for name in ("pod-a", "pod-b", "pod-c"):
            net.add_pod(name, root)
        net.wait_serving()
        yield net
    finally:
        net.close()


@pytest.fixture
async def apiserver_on_host(topology: Topology, start_apiserver: ApiServerFactory) -> ApiServer:
    return await start_apiserver(listen=f"{topology.host_ip}:0")


@pytest.fixture
async def api(apiserver_on_host: ApiServer, topology: Topology) -> AsyncIterator[Client]:
    async with Client(f"{topology.host_ip}:{apiserver_on_host.port}", timeout=10) as client:
        yield client


@dataclass
class ProxyRunner:
    topology: Topology
    address: str
    log: Path

    def start(self, *extra: str) -> None:
        self.topology.start_in_node(
            PROXY, "--apiserver", self.address, "--healthz-address", "127.0.0.1:10256",
            "--metrics-port", "0", "--min-sync-period", "0.05", "--log-format", "text", *extra,
            log=self.log,
        )  # fmt: skip

    def stop(self) -> None:
        for process in self.topology.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def cleanup(self) -> str:
        return self.topology.in_node(PROXY, "--cleanup", "--log-format", "text")


@pytest.fixture
def proxy(
    topology: Topology, apiserver_on_host: ApiServer, tmp_path: Path
) -> Iterator[ProxyRunner]:
    runner = ProxyRunner(
        topology, f"{topology.host_ip}:{apiserver_on_host.port}", tmp_path / "proxy.log"
    )
    yield runner
    runner.stop()
    runner.cleanup()


def saved(topology: Topology) -> list[str]:
    """The node's nat and filter tables as iptables-save prints them, without comments and
    counters. (Only these two: python-iptables also instantiates the empty raw, mangle and
    security tables when it opens the kernel's tables.)"""
    lines = [
        line
        for table in ("filter", "nat")
        for line in topology.in_node(SAVE, "-t", table).splitlines()
    ]
    return [line.split(" [")[0] for line in lines if line and not line.startswith("#")]


def fetch(topology: Topology, url: str, count: int, timeout: float = 2.0) -> Counter[str]:
    output = topology.in_node(
        sys.executable, "-c", FETCH, url, str(count), str(timeout), timeout=count * timeout + 30
    )
    return Counter(json.loads(output))


async def create_service(
    api: Client, name: str, *, affinity: bool = False, node_port: bool = False
) -> core_pb2.Service:
    service = core_pb2.Service()
    service.metadata.name = name
    service.metadata.namespace = "default"
    service.spec.selector["app"] = name
    service.spec.type = "NodePort" if node_port else "ClusterIP"
    if affinity:
        service.spec.session_affinity = "ClientIP"
    service.spec.ports.add(port=80, target_port="8080", protocol="TCP")
    return await api.services.create(service)


async def set_endpoints(
    api: Client,
    name: str,
    ready: list[str],
    not_ready: list[str] = (),  # type: ignore[assignment]
) -> None:
    endpoints = core_pb2.Endpoints()
    endpoints.metadata.name = name
    endpoints.metadata.namespace = "default"
    subset = endpoints.subsets.add()
    for ip in ready:
        subset.addresses.add(ip=ip)
    for ip in not_ready:
        subset.not_ready_addresses.add(ip=ip)
    subset.ports.add(port=8080, protocol="TCP")
    try:
        current = await api.endpoints.get(name, namespace="default")
    except Exception:
        await api.endpoints.create(endpoints)
        return
    endpoints.metadata.resource_version = current.metadata.resource_version
    await api.endpoints.update(endpoints)


async def until_routed(topology: Topology, url: str, expected: set[str]) -> None:
    async def answered() -> bool:
        seen = await asyncio.to_thread(fetch, topology, url, 6, 1.0)
        return set(seen) <= expected and bool(seen)

    await eventually(answered, timeout=15)


def pod_ips(topology: Topology) -> list[str]:
    return [pod.ip for pod in topology.pods]


# ---------------------------------------------------------------------------------- routing


async def test_a_cluster_ip_spreads_requests_over_every_ready_backend(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "spread")
    await set_endpoints(api, "spread", pod_ips(topology))
    proxy.start()
    url = f"http://{service.spec.cluster_ip}/"
    await until_routed(topology, url, {"pod-a", "pod-b", "pod-c"})

    seen = await asyncio.to_thread(fetch, topology, url, 300)

    assert set(seen) == {"pod-a", "pod-b", "pod-c"}, seen
    for pod, count in seen.items():
        assert 70 <= count <= 130, f"{pod} answered {count} of 300: {seen}"


async def test_a_backend_that_turns_not_ready_stops_receiving_within_two_seconds(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "readiness")
    ips = pod_ips(topology)
    await set_endpoints(api, "readiness", ips)
    proxy.start()
    url = f"http://{service.spec.cluster_ip}/"
    await until_routed(topology, url, {"pod-a", "pod-b", "pod-c"})

    await set_endpoints(api, "readiness", ips[1:], not_ready=ips[:1])
    began = time.monotonic()
    while "pod-a" in await asyncio.to_thread(fetch, topology, url, 10, 1.0):
        assert time.monotonic() - began < 2.0, "pod-a still receives traffic after 2 s"
    assert "pod-a" not in await asyncio.to_thread(fetch, topology, url, 60)


async def test_client_ip_affinity_pins_a_client_to_one_backend(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "sticky", affinity=True)
    await set_endpoints(api, "sticky", pod_ips(topology))
    proxy.start()
    url = f"http://{service.spec.cluster_ip}/"
    await until_routed(topology, url, {"pod-a", "pod-b", "pod-c"})

    seen = await asyncio.to_thread(fetch, topology, url, 60)

    assert len(seen) == 1, seen


async def test_a_node_port_reaches_the_service_from_outside_the_node(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "outside", node_port=True)
    await set_endpoints(api, "outside", pod_ips(topology))
    proxy.start()
    url = f"http://{topology.node_ip}:{service.spec.ports[0].node_port}/"

    async def reached_from_host() -> bool:
        seen = await asyncio.to_thread(run, sys.executable, "-c", FETCH, url, "30", "1.0")
        return set(json.loads(seen)) == {"pod-a", "pod-b", "pod-c"}

    await eventually(reached_from_host, timeout=15)


async def test_a_service_without_endpoints_is_refused_at_once(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "empty")
    proxy.start()
    url = f"http://{service.spec.cluster_ip}/"

    async def refused() -> bool:
        began = time.monotonic()
        seen = await asyncio.to_thread(fetch, topology, url, 1, 3.0)
        return seen == Counter({"error:ConnectionRefusedError": 1}) and (
            time.monotonic() - began < 1.5
        )

    await eventually(refused, timeout=15)


# ------------------------------------------------------------------------- its own rules


async def test_a_restart_keeps_traffic_flowing_and_adds_no_duplicate_rules(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "restart")
    await set_endpoints(api, "restart", pod_ips(topology))
    proxy.start()
    url = f"http://{service.spec.cluster_ip}/"
    await until_routed(topology, url, {"pod-a", "pod-b", "pod-c"})
    before = saved(topology)

    proxy.stop()
    assert set(await asyncio.to_thread(fetch, topology, url, 30)) == {"pod-a", "pod-b", "pod-c"}
    proxy.start()
    await asyncio.sleep(1.0)  # the new proxy's first (full) sync
    await until_routed(topology, url, {"pod-a", "pod-b", "pod-c"})

    after = saved(topology)
    assert after == before
    rules = [line for line in after if line.startswith("-A")]
    assert len(rules) == len(set(rules))


async def test_cleanup_leaves_the_tables_as_it_found_them(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    # Rules that are not the proxy's: it must neither change nor remove them.
    topology.in_node("iptables-legacy", "-t", "nat", "-N", "SOMEONE-ELSE")
    topology.in_node("iptables-legacy", "-t", "nat", "-A", "PREROUTING", "-j", "SOMEONE-ELSE")
    try:
        found = saved(topology)
        service = await create_service(api, "cleanup", node_port=True)
        await set_endpoints(api, "cleanup", pod_ips(topology))
        await create_service(api, "cleanup-empty")
        proxy.start()
        await until_routed(
            topology, f"http://{service.spec.cluster_ip}/", {"pod-a", "pod-b", "pod-c"}
        )
        proxy.stop()

        proxy.cleanup()

        assert saved(topology) == found
    finally:
        topology.in_node("iptables-legacy", "-t", "nat", "-D", "PREROUTING", "-j", "SOMEONE-ELSE")
        topology.in_node("iptables-legacy", "-t", "nat", "-X", "SOMEONE-ELSE")


async def test_the_python_iptables_backend_writes_the_same_rules(
    topology: Topology, api: Client, proxy: ProxyRunner
) -> None:
    service = await create_service(api, "backends", affinity=True, node_port=True)
    await set_endpoints(api, "backends", pod_ips(topology))
    await create_service(api, "backends-empty")
    proxy.start()
    await until_routed(topology, f"http://{service.spec.cluster_ip}/", {"pod-a", "pod-b", "pod-c"})
    by_restore = saved(topology)
    proxy.stop()
    proxy.cleanup()

    proxy.start("--backend", "iptc")
    await until_routed(topology, f"http://{service.spec.cluster_ip}/", {"pod-a", "pod-b", "pod-c"})

    assert saved(topology) == by_restore
