"""Service ClusterIPs and NodePorts: chosen by the apiserver, held in etcd beside the Service.

Every address a Service holds is a key of its own, whose value names the holder:

    /registry/ranges/serviceips/<ip>                 ->  "<namespace>/<name>"
    /registry/ranges/servicenodeports/<port>         ->  "<namespace>/<name>"

The keys are created in the same etcd transaction that writes the Service ("claims") and
deleted in the one that removes it or drops the address ("releases"; see bosun.apiserver.storage).
A claim compares create_revision == 0, so two creates racing for one address, on one apiserver or
several, can never both succeed: etcd is the only arbiter and there is no in-memory bitmap to
keep consistent (the shape of Kubernetes' IPAddress objects, KEP-1880, rather than its older
RangeAllocation bitmap).

Choosing: an address the client asked for is checked against the range and claimed as is; a
taken one is refused ("provided IP is already allocated"). An empty clusterIP (other than
headless `None` and ExternalName services) and a zero nodePort on NodePort/LoadBalancer services
are filled with a random free value. The first pick is a blind random probe (almost always free
in a sparse range); after a conflict the taken keys are read from etcd and the pick avoids them,
so a crowded range still fills up completely, and a full one is RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bosun.apiserver.validation import FieldError

__all__ = [
    "CLUSTER_IP_PREFIX",
    "NODE_PORT_PREFIX",
    "RangeFullError",
    "ServiceRanges",
    "carry_over_allocations",
    "choose_allocations",
    "claim_fields",
    "clear_allocations",
    "range_errors",
]

CLUSTER_IP_PREFIX = "/registry/ranges/serviceips/"
NODE_PORT_PREFIX = "/registry/ranges/servicenodeports/"
NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})
_BLIND_PROBES = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RangeFullError(Exception):
    """No free address is left in a range."""


def _parse_node_ports(text: str) -> range:
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--service-node-port-range: {text!r} is not LOW-HIGH")
    first, last = int(low), int(high)
    if not 0 < first <= last < 65536:
        raise ValueError(f"--service-node-port-range: {text!r} is not a range of ports")
    return range(first, last + 1)


@dataclass(frozen=True)
class ServiceRanges:
    network: Network = field(default_factory=lambda: ipaddress.ip_network("10.96.0.0/12"))
    node_ports: range = range(30000, 32768)

    @staticmethod
    def parse(cluster_ip_range: str, node_port_range: str) -> ServiceRanges:
        try:
            network = ipaddress.ip_network(cluster_ip_range, strict=True)
        except ValueError as error:
            raise ValueError(f"--service-cluster-ip-range: {error}") from None
        if network.num_addresses < 4:
            raise ValueError("--service-cluster-ip-range: the range needs at least 4 addresses")
        return ServiceRanges(network, _parse_node_ports(node_port_range))

    @property
    def usable_ips(self) -> int:
        return int(self.network.num_addresses) - 2  # not the network nor the broadcast address

    def ip_at(self, offset: int) -> str:
        return str(self.network.network_address + 1 + offset)

    def holds_ip(self, text: str) -> bool:
        address = ipaddress.ip_address(text)
        return bool(
            address in self.network
            and address != self.network.network_address
            and address != self.network.broadcast_address
        )


def _needs_cluster_ip(service: Any) -> bool:
    return bool(service.spec.type != "ExternalName" and service.spec.cluster_ip != "None")


def claim_fields(service: Any) -> dict[str, str]:
    """The claim keys a Service holds, each with the field that holds it."""
    spec = service.spec
    claims: dict[str, str] = {}
    if spec.cluster_ip and spec.cluster_ip != "None":
        claims[CLUSTER_IP_PREFIX + spec.cluster_ip] = "spec.clusterIP"
    for index, port in enumerate(spec.ports):
        if port.node_port:
            # TCP and UDP on one port of one Service may share a nodePort: one claim.
            claims.setdefault(
                NODE_PORT_PREFIX + str(port.node_port), f"spec.ports[{index}].nodePort"
            )
    return claims


def range_errors(service: Any, ranges: ServiceRanges) -> list[FieldError]:
    """Requested addresses outside the configured ranges."""
    errors: list[FieldError] = []
    spec = service.spec
    if spec.cluster_ip and spec.cluster_ip != "None":
        try:
            inside = ranges.holds_ip(spec.cluster_ip)
        except ValueError:
            inside = True  # not an IP at all: validation reports it
        if not inside:
            errors.append(
                FieldError.invalid(
                    "spec.clusterIP",
                    spec.cluster_ip,
                    f"provided IP is not in the valid range. The range of valid IPs is "
                    f"{ranges.network}",
                )
            )
    nodes = ranges.node_ports
    for index, port in enumerate(spec.ports):
        if port.node_port and port.node_port not in nodes:
            errors.append(
                FieldError.invalid(
                    f"spec.ports[{index}].nodePort",
                    port.node_port,
                    f"provided port is not in the valid range. The range of valid ports is "
                    f"{nodes.start}-{nodes.stop - 1}",
                )
            )
    return errors


def _pick(count: int, taken: Collection[int], rng: random.Random) -> int:
    """A random offset in [0, count) not in `taken` (RangeFullError when there is none)."""
    if len(taken) >= count:
        raise RangeFullError
    for _ in range(_BLIND_PROBES):
        offset = rng.randrange(count)
        if offset not in taken:
            return offset
    start = rng.randrange(count)  # crowded: walk from a random point to the next free one
    for step in range(count):
        offset = (start + step) % count
        if offset not in taken:
            return offset
    raise RangeFullError


def choose_allocations(
    service: Any,
    ranges: ServiceRanges,
    *,
    taken: Collection[str] = (),
    rng: random.Random | None = None,
) -> set[str]:
    """Fill the Service's empty clusterIP and nodePorts with free values; the claim keys chosen.

    `taken` holds claim keys known to be held (empty for the first, blind pick).
    """
    rng = rng or random.SystemRandom()
    spec = service.spec
    chosen: set[str] = set()
    if not spec.cluster_ip and _needs_cluster_ip(service):
        taken_offsets = {
            int(ipaddress.ip_address(key.removeprefix(CLUSTER_IP_PREFIX)))
            - int(ranges.network.network_address)
            - 1
            for key in taken
            if key.startswith(CLUSTER_IP_PREFIX)
        }
        spec.cluster_ip = ranges.ip_at(_pick(ranges.usable_ips, taken_offsets, rng))
        chosen.add(CLUSTER_IP_PREFIX + spec.cluster_ip)
    if spec.type in NODE_PORT_TYPES:
        nodes = ranges.node_ports
        held = {
            int(key.removeprefix(NODE_PORT_PREFIX)) - nodes.start
            for key in taken
            if key.startswith(NODE_PORT_PREFIX)
        }
        held.update(port.node_port - nodes.start for port in spec.ports if port.node_port)
        for port in spec.ports:
            if not port.node_port:
                offset = _pick(len(nodes), held, rng)
                held.add(offset)
                port.node_port = nodes.start + offset
                chosen.add(NODE_PORT_PREFIX + str(port.node_port))
    return chosen


def clear_allocations(service: Any, keys: Collection[str]) -> None:
    """Empty the fields holding these claim keys, so that they are chosen again."""
    spec = service.spec
    if CLUSTER_IP_PREFIX + spec.cluster_ip in keys:
        spec.cluster_ip = ""
    for port in spec.ports:
        if NODE_PORT_PREFIX + str(port.node_port) in keys:
            port.node_port = 0


def carry_over_allocations(old: Any, new: Any) -> None:
    """On update, keep what the Service holds when the new object leaves it empty.

    As Kubernetes does: a client that replaces a Service without repeating its clusterIP or a
    port's nodePort keeps them (matched by port number and protocol) rather than losing them.
    """
    if not new.spec.cluster_ip and _needs_cluster_ip(new):
        new.spec.cluster_ip = old.spec.cluster_ip
    if new.spec.type not in NODE_PORT_TYPES:
        return
    held = {(port.port, port.protocol or "TCP"): port.node_port for port in old.spec.ports}
    for port in new.spec.ports:
        if not port.node_port:
            port.node_port = held.get((port.port, port.protocol or "TCP"), 0)
