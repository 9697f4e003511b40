"""Choosing Service addresses: ranges, random picks that avoid what is taken, carry-over."""

from __future__ import annotations

import random

import pytest

from bosun.api.v1 import core_pb2
from bosun.apiserver.allocation import (
    CLUSTER_IP_PREFIX,
    NODE_PORT_PREFIX,
    RangeFullError,
    ServiceRanges,
    carry_over_allocations,
    choose_allocations,
    claim_fields,
    range_errors,
)

SMALL = ServiceRanges.parse("10.0.0.0/29", "30000-30002")


def service(type: str = "ClusterIP", ports: int = 1) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name = "web"
    svc.spec.type = type
    for number in range(ports):
        svc.spec.ports.add(port=80 + number, protocol="TCP", name=f"p{number}")
    return svc


def test_network_and_broadcast_addresses_are_never_chosen() -> None:
    seen = set()
    for seed in range(200):
        svc = service()
        choose_allocations(svc, SMALL, rng=random.Random(seed))
        seen.add(svc.spec.cluster_ip)
    assert seen == {f"10.0.0.{i}" for i in range(1, 7)}


def test_a_pick_avoids_every_taken_address() -> None:
    taken = {CLUSTER_IP_PREFIX + f"10.0.0.{i}" for i in (1, 2, 3, 5, 6)}
    svc = service()
    chosen = choose_allocations(svc, SMALL, taken=taken, rng=random.Random(1))
    assert svc.spec.cluster_ip == "10.0.0.4"
    assert chosen == {CLUSTER_IP_PREFIX + "10.0.0.4"}


def test_a_full_range_raises() -> None:
    taken = {CLUSTER_IP_PREFIX + f"10.0.0.{i}" for i in range(1, 7)}
    with pytest.raises(RangeFullError):
        choose_allocations(service(), SMALL, taken=taken)


def test_each_port_of_a_node_port_service_gets_its_own_node_port() -> None:
    svc = service("NodePort", ports=3)
    choose_allocations(svc, SMALL, rng=random.Random(3))
    assert sorted(port.node_port for port in svc.spec.ports) == [30000, 30001, 30002]


def test_headless_and_external_name_services_get_no_cluster_ip() -> None:
    headless = service()
    headless.spec.cluster_ip = "None"
    external = service("ExternalName")
    assert choose_allocations(headless, SMALL) == set()
    assert choose_allocations(external, SMALL) == set()
    assert external.spec.cluster_ip == ""


def test_claims_name_the_field_holding_each_address() -> None:
    svc = service("NodePort", ports=2)
    svc.spec.cluster_ip = "10.0.0.3"
    svc.spec.ports[0].node_port = 30001
    svc.spec.ports[1].node_port = 30002
    assert claim_fields(svc) == {
        CLUSTER_IP_PREFIX + "10.0.0.3": "spec.clusterIP",
        NODE_PORT_PREFIX + "30001": "spec.ports[0].nodePort",
        NODE_PORT_PREFIX + "30002": "spec.ports[1].nodePort",
    }


@pytest.mark.parametrize(
    ("cluster_ip", "node_port", "path"),
    [("10.0.0.7", 0, "spec.clusterIP"), ("10.1.0.1", 0, "spec.clusterIP"), ("", 31000, "nodePort")],
)
def test_requested_addresses_outside_the_ranges_are_errors(
    cluster_ip: str, node_port: int, path: str
) -> None:
    svc = service("NodePort")
    svc.spec.cluster_ip = cluster_ip
    svc.spec.ports[0].node_port = node_port
    (error,) = range_errors(svc, SMALL)
    assert path in str(error)


def test_an_update_keeps_the_addresses_it_does_not_mention() -> None:
    old = service("NodePort", ports=2)
    old.spec.cluster_ip = "10.0.0.2"
    old.spec.ports[0].node_port, old.spec.ports[1].node_port = 30000, 30001
    new = service("NodePort", ports=2)
    new.spec.ports[1].node_port = 30002  # asked for explicitly: kept as asked
    carry_over_allocations(old, new)
    assert new.spec.cluster_ip == "10.0.0.2"
    assert [port.node_port for port in new.spec.ports] == [30000, 30002]


@pytest.mark.parametrize(
    ("cidr", "ports"),
    [("10.0.0.0/33", "30000-32767"), ("10.0.0.1/24", "30000-32767"), ("10.0.0.0/24", "3-1")],
)
def test_bad_ranges_are_refused_naming_the_flag(cidr: str, ports: str) -> None:
    with pytest.raises(ValueError, match="--service-"):
        ServiceRanges.parse(cidr, ports)
