"""DNS answers for Services, headless Services, named ports and pods."""

from __future__ import annotations

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from bosun.api.v1 import core_pb2
from bosun.dns.records import Resolver


def service(
    name: str, cluster_ip: str, ports: tuple[tuple[str, int], ...] = (("http", 80),)
) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.cluster_ip = cluster_ip
    for port_name, port in ports:
        svc.spec.ports.add(name=port_name, port=port, protocol="TCP")
    return svc


def endpoints(name: str, addresses: list[tuple[str, str]]) -> core_pb2.Endpoints:
    obj = core_pb2.Endpoints()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    subset = obj.subsets.add()
    for ip, hostname in addresses:
        subset.addresses.add(ip=ip, hostname=hostname)
    subset.not_ready_addresses.add(ip="10.0.0.99")
    subset.ports.add(name="http", port=8080, protocol="TCP")
    return obj


SERVICES = {
    ("default", "web"): service("web", "10.96.0.10"),
    ("default", "db"): service("db", "None"),
}
ENDPOINTS = {("default", "db"): endpoints("db", [("10.0.0.2", "db-0"), ("10.0.0.1", "db-1")])}
RESOLVER = Resolver(
    lambda ns, name: SERVICES.get((ns, name)), lambda ns, name: ENDPOINTS.get((ns, name))
)


def ask(name: str, qtype: str = "A") -> tuple[str, list[str]]:
    reply = RESOLVER.reply(DNSRecord.question(name, qtype))
    return RCODE[reply.header.rcode], [str(rr.rdata) for rr in reply.rr]


def test_a_service_name_resolves_to_its_cluster_ip() -> None:
    assert ask("web.default.svc.cluster.local") == ("NOERROR", ["10.96.0.10"])


def test_names_are_case_insensitive_and_may_end_with_a_dot() -> None:
    assert ask("WEB.Default.svc.cluster.local.") == ("NOERROR", ["10.96.0.10"])


def test_a_headless_service_resolves_to_its_ready_endpoints() -> None:
    assert ask("db.default.svc.cluster.local") == ("NOERROR", ["10.0.0.1", "10.0.0.2"])


def test_an_endpoint_hostname_of_a_headless_service_resolves() -> None:
    assert ask("db-0.db.default.svc.cluster.local") == ("NOERROR", ["10.0.0.2"])


def test_a_named_port_has_an_srv_record() -> None:
    assert ask("_http._tcp.web.default.svc.cluster.local", "SRV") == (
        "NOERROR",
        ["0 100 80 web.default.svc.cluster.local."],
    )


def test_a_named_port_of_a_headless_service_has_one_srv_record_per_endpoint() -> None:
    rcode, records = ask("_http._tcp.db.default.svc.cluster.local", "SRV")
    assert rcode == "NOERROR"
    assert sorted(records) == [
        "0 100 8080 db-0.db.default.svc.cluster.local.",
        "0 100 8080 db-1.db.default.svc.cluster.local.",
    ]


def test_a_pod_name_resolves_to_the_ip_it_spells() -> None:
    assert ask("10-244-1-7.default.pod.cluster.local") == ("NOERROR", ["10.244.1.7"])


@pytest.mark.parametrize(
    "name",
    [
        "missing.default.svc.cluster.local",
        "web.other.svc.cluster.local",
        "_grpc._tcp.web.default.svc.cluster.local",
        "db-9.db.default.svc.cluster.local",
        "not-an-ip.default.pod.cluster.local",
        "default.svc.cluster.local.extra.cluster.local",
    ],
)
def test_unknown_names_in_the_cluster_domain_are_nxdomain(name: str) -> None:
    assert ask(name, "SRV" if name.startswith("_") else "A")[0] == "NXDOMAIN"


def test_names_outside_the_cluster_domain_are_refused_not_forwarded() -> None:
    assert ask("example.com") == ("REFUSED", [])


def test_an_existing_name_without_records_of_the_type_is_an_empty_answer() -> None:
    assert ask("web.default.svc.cluster.local", "AAAA") == ("NOERROR", [])


def test_answers_carry_the_configured_ttl() -> None:
    reply = RESOLVER.reply(DNSRecord.question("web.default.svc.cluster.local"))
    assert reply.rr[0].ttl == 5
    assert QTYPE[reply.rr[0].rtype] == "A"
