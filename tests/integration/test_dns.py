"""bosun-dns as a process: Services created through the apiserver resolve over UDP and TCP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dnslib import RCODE, DNSRecord

from bosun.api.v1 import core_pb2
from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.localetcd import free_port
from bosun.common.testing import eventually

DNS = str(Path(sys.executable).with_name("bosun-dns"))


def start_dns(apiserver: str, port: int, health: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            [DNS, "--apiserver", apiserver, "--listen", f"127.0.0.1:{port}",
             "--healthz-address", f"127.0.0.1:{health}", "--metrics-port", "0",
             "--log-format", "text"],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
async def dns_address(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    port, health = free_port(), free_port()
    process = start_dns(f"127.0.0.1:{apiserver.port}", port, health, tmp_path / "dns.log")

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1) as page:
                return bool(page.status == 200)
        except OSError:
            return False

    try:
        await eventually(lambda: asyncio.to_thread(healthy), timeout=20)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=10)


def query(address: tuple[str, int], name: str, qtype: str = "A", tcp: bool = False) -> DNSRecord:
    packet = DNSRecord.question(name, qtype).send(address[0], address[1], tcp=tcp, timeout=2)
    return DNSRecord.parse(packet)


def service(name: str, *, headless: bool = False) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.selector["app"] = name
    if headless:
        svc.spec.cluster_ip = "None"
    svc.spec.ports.add(name="http", port=80, protocol="TCP")
    return svc


async def test_a_new_service_resolves_to_its_cluster_ip_over_udp_and_tcp(
    client: Client, dns_address: tuple[str, int]
) -> None:
    created = await client.services.create(service("web"))
    name = "web.default.svc.cluster.local"

    async def resolved() -> bool:
        reply = await asyncio.to_thread(query, dns_address, name)
        return [str(rr.rdata) for rr in reply.rr] == [created.spec.cluster_ip]

    await eventually(resolved, timeout=10)
    over_tcp = await asyncio.to_thread(query, dns_address, name, "A", True)
    assert [str(rr.rdata) for rr in over_tcp.rr] == [created.spec.cluster_ip]


async def test_a_headless_service_follows_its_endpoints(
    client: Client, dns_address: tuple[str, int]
) -> None:
    await client.services.create(service("db", headless=True))
    endpoints = core_pb2.Endpoints()
    endpoints.metadata.name, endpoints.metadata.namespace = "db", "default"
    subset = endpoints.subsets.add()
    subset.addresses.add(ip="10.244.0.5")
    subset.ports.add(name="http", port=8080, protocol="TCP")
    created = await client.endpoints.create(endpoints)
    name = "db.default.svc.cluster.local"

    async def answers(expected: list[str]) -> bool:
        reply = await asyncio.to_thread(query, dns_address, name)
        return sorted(str(rr.rdata) for rr in reply.rr) == expected

    await eventually(lambda: answers(["10.244.0.5"]), timeout=10)
    created.subsets[0].addresses.add(ip="10.244.0.6")
    await client.endpoints.update(created)
    await eventually(lambda: answers(["10.244.0.5", "10.244.0.6"]), timeout=10)


async def test_a_deleted_service_stops_resolving(
    client: Client, dns_address: tuple[str, int]
) -> None:
    await client.services.create(service("gone"))
    name = "gone.default.svc.cluster.local"

    async def rcode(expected: str) -> bool:
        return RCODE[(await asyncio.to_thread(query, dns_address, name)).header.rcode] == expected

    await eventually(lambda: rcode("NOERROR"), timeout=10)
    await client.services.delete("gone", namespace="default")
    await eventually(lambda: rcode("NXDOMAIN"), timeout=10)


async def test_outside_names_are_refused(dns_address: tuple[str, int]) -> None:
    reply = await asyncio.to_thread(query, dns_address, "example.com")
    assert RCODE[reply.header.rcode] == "REFUSED"
