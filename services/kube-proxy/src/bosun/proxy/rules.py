"""From Services and Endpoints to the iptables rules that implement them (no I/O here).

The layout follows kube-proxy's iptables mode, with a BOSUN- prefix on every chain it owns:

    nat PREROUTING, OUTPUT  -> BOSUN-SERVICES
        -d <clusterIP> -p tcp --dport <port>            -> BOSUN-SVC-<hash>   (one per service port)
        -m addrtype --dst-type LOCAL                    -> BOSUN-NODEPORTS    (last)
    nat BOSUN-NODEPORTS
        -p tcp --dport <nodePort> -> BOSUN-MARK-MASQ, then -> BOSUN-SVC-<hash>
    nat BOSUN-SVC-<hash>    (one per service port with endpoints)
        [! -s <clusterCIDR>] -> BOSUN-MARK-MASQ            (traffic from outside the pod network)
        -m recent --rcheck --seconds T --name SEP -> SEP  (ClientIP affinity: stick to the last one)
        -m statistic --mode random --probability 1/n     -> BOSUN-SEP-<hash> (1/n, 1/(n-1), …, last
        ...                                                 without: each of n equally likely)
    nat BOSUN-SEP-<hash>    (one per endpoint of a service port)
        -s <podIP> -> BOSUN-MARK-MASQ                     (hairpin: a pod reaching itself)
        -p tcp [-m recent --set --name SEP] -j DNAT --to-destination <podIP>:<port>
    nat POSTROUTING -> BOSUN-POSTROUTING: -m mark --mark 0x4000/0x4000 -j MASQUERADE
    filter INPUT, OUTPUT, FORWARD -> BOSUN-SERVICES: a REJECT per service port without
        endpoints (clusterIP and nodePort), so that clients fail at once instead of hanging.

Chain names hash the service port (and endpoint) so that they are stable across restarts and
short enough for iptables' 28-character limit. Everything is sorted, so the same input always
gives the same rules, and a diff against the last applied `Tables` finds exactly the chains that
changed.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from bosun.api.v1 import core_pb2
from bosun.proxy.iptables import Match, Rule, Tables

__all__ = [
    "CHAIN_PREFIX",
    "JUMPS",
    "ServicePort",
    "desired_tables",
    "service_ports",
]

CHAIN_PREFIX = "BOSUN-"
SERVICES = "BOSUN-SERVICES"
NODEPORTS = "BOSUN-NODEPORTS"
MARK_MASQ = "BOSUN-MARK-MASQ"
POSTROUTING = "BOSUN-POSTROUTING"
MASQ_MARK = "0x4000/0x4000"

# The rules this proxy adds to built-in chains: (table, built-in chain, rule). Their comments
# identify them, so a restarted proxy finds them and never adds them twice.
JUMPS: tuple[tuple[str, str, Rule], ...] = (
    ("nat", "PREROUTING", Rule(SERVICES, comment="bosun service portals")),
    ("nat", "OUTPUT", Rule(SERVICES, comment="bosun service portals")),
    ("nat", "POSTROUTING", Rule(POSTROUTING, comment="bosun postrouting rules")),
    ("filter", "INPUT", Rule(SERVICES, comment="bosun services without endpoints")),
    ("filter", "OUTPUT", Rule(SERVICES, comment="bosun services without endpoints")),
    ("filter", "FORWARD", Rule(SERVICES, comment="bosun services without endpoints")),
)


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with the ready endpoints that serve it."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # lower case, as iptables takes it
    cluster_ip: str
    port: int
    node_port: int
    affinity_seconds: int  # 0: no ClientIP affinity
    endpoints: tuple[Endpoint, ...]

    @property
    def label(self) -> str:
        """`ns/name:port` as kube-proxy's comments name a service port."""
        suffix = f":{self.port_name}" if self.port_name else ""
        return f"{self.namespace}/{self.name}{suffix}"

    @property
    def chain(self) -> str:
        return _chain("BOSUN-SVC-", f"{self.label}/{self.protocol}")

    def endpoint_chain(self, endpoint: Endpoint) -> str:
        return _chain("BOSUN-SEP-", f"{self.label}/{self.protocol}/{endpoint.ip}:{endpoint.port}")


def _chain(prefix: str, identity: str) -> str:
    digest = hashlib.sha256(identity.encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def _ready_endpoints(
    endpoints: core_pb2.Endpoints | None, port: core_pb2.ServicePort
) -> tuple[Endpoint, ...]:
    """The ready addresses serving `port`: subsets' ports are matched by name and protocol."""
    if endpoints is None:
        return ()
    found: set[Endpoint] = set()
    for subset in endpoints.subsets:
        for subset_port in subset.ports:
            same_protocol = (subset_port.protocol or "TCP") == (port.protocol or "TCP")
            if subset_port.name == port.name and same_protocol:
                found.update(Endpoint(address.ip, subset_port.port) for address in subset.addresses)
    return tuple(sorted(found, key=lambda e: (e.ip, e.port)))


def service_ports(
    services: Iterable[core_pb2.Service], endpoints: Iterable[core_pb2.Endpoints]
) -> list[ServicePort]:
    """Every service port the proxy implements: ClusterIP (and NodePort) services with an IP."""
    by_key = {(e.metadata.namespace, e.metadata.name): e for e in endpoints}
    ports: list[ServicePort] = []
    for service in services:
        spec = service.spec
        if not spec.cluster_ip or spec.cluster_ip == "None" or spec.type == "ExternalName":
            continue
        affinity = 0
        if spec.session_affinity == "ClientIP":
            config = spec.session_affinity_config.client_ip
            affinity = config.timeout_seconds if config.HasField("timeout_seconds") else 10800
        matching = by_key.get((service.metadata.namespace, service.metadata.name))
        for port in spec.ports:
            ports.append(
                ServicePort(
                    namespace=service.metadata.namespace,
                    name=service.metadata.name,
                    port_name=port.name,
                    protocol=(port.protocol or "TCP").lower(),
                    cluster_ip=spec.cluster_ip,
                    port=port.port,
                    node_port=port.node_port if spec.type in ("NodePort", "LoadBalancer") else 0,
                    affinity_seconds=affinity,
                    endpoints=_ready_endpoints(matching, port),
                )
            )
    return sorted(ports, key=lambda p: (p.label, p.protocol))


def _dport(protocol: str, port: int) -> Match:
    return Match(protocol, (("dport", str(port)),))


def _recent(name: str, *options: tuple[str, str]) -> Match:
    return Match("recent", (*options, ("name", name), ("mask", "255.255.255.255"), ("rsource", "")))


def _service_chain(port: ServicePort, cluster_cidr: str, masquerade_all: bool) -> list[Rule]:
    rules: list[Rule] = []
    if masquerade_all or cluster_cidr:
        rules.append(
            Rule(
                MARK_MASQ,
                protocol=port.protocol,
                source="" if masquerade_all else f"!{cluster_cidr}",
                destination=f"{port.cluster_ip}/32",
                matches=(_dport(port.protocol, port.port),),
                comment=f"{port.label} cluster IP",
            )
        )
    if port.affinity_seconds:
        for endpoint in port.endpoints:
            chain = port.endpoint_chain(endpoint)
            seconds = str(port.affinity_seconds)
            recent = _recent(chain, ("rcheck", ""), ("seconds", seconds), ("reap", ""))
            rules.append(Rule(chain, matches=(recent,), comment=port.label))
    count = len(port.endpoints)
    for index, endpoint in enumerate(port.endpoints):
        remaining = count - index
        matches: tuple[Match, ...] = ()
        if remaining > 1:
            probability = f"{1.0 / remaining:0.10f}"
            matches = (Match("statistic", (("mode", "random"), ("probability", probability))),)
        rules.append(Rule(port.endpoint_chain(endpoint), matches=matches, comment=port.label))
    return rules


def _endpoint_chain(port: ServicePort, endpoint: Endpoint) -> list[Rule]:
    matches: tuple[Match, ...] = (Match(port.protocol),)
    if port.affinity_seconds:
        matches = (_recent(port.endpoint_chain(endpoint), ("set", "")), Match(port.protocol))
    return [
        Rule(MARK_MASQ, source=f"{endpoint.ip}/32", comment=port.label),
        Rule(
            "DNAT",
            (("to-destination", f"{endpoint.ip}:{endpoint.port}"),),
            protocol=port.protocol,
            matches=matches,
            comment=port.label,
        ),
    ]


def desired_tables(
    ports: Iterable[ServicePort], *, cluster_cidr: str = "", masquerade_all: bool = False
) -> Tables:
    """The complete set of chains (and their rules) this proxy owns, for these service ports."""
    nat: dict[str, list[Rule]] = {
        SERVICES: [],
        NODEPORTS: [],
        MARK_MASQ: [Rule("MARK", (("set-xmark", MASQ_MARK),))],
        POSTROUTING: [
            Rule(
                "MASQUERADE",
                matches=(Match("mark", (("mark", MASQ_MARK),)),),
                comment="bosun service traffic requiring SNAT",
            )
        ],
    }
    reject: list[Rule] = []
    for port in ports:
        dport = _dport(port.protocol, port.port)
        if not port.endpoints:
            reject.append(
                Rule(
                    "REJECT",
                    protocol=port.protocol,
                    destination=f"{port.cluster_ip}/32",
                    matches=(dport,),
                    comment=f"{port.label} has no endpoints",
                )
            )
            if port.node_port:
                local = Match("addrtype", (("dst-type", "LOCAL"),))
                reject.append(
                    Rule(
                        "REJECT",
                        protocol=port.protocol,
                        matches=(local, _dport(port.protocol, port.node_port)),
                        comment=f"{port.label} has no endpoints",
                    )
                )
            continue
        nat[SERVICES].append(
            Rule(
                port.chain,
                protocol=port.protocol,
                destination=f"{port.cluster_ip}/32",
                matches=(dport,),
                comment=f"{port.label} cluster IP",
            )
        )
        if port.node_port:
            node_dport = _dport(port.protocol, port.node_port)
            for target in (MARK_MASQ, port.chain):
                nat[NODEPORTS].append(
                    Rule(target, protocol=port.protocol, matches=(node_dport,), comment=port.label)
                )
        nat[port.chain] = _service_chain(port, cluster_cidr, masquerade_all)
        for endpoint in port.endpoints:
            nat[port.endpoint_chain(endpoint)] = _endpoint_chain(port, endpoint)
    nat[SERVICES].append(
        Rule(
            NODEPORTS,
            matches=(Match("addrtype", (("dst-type", "LOCAL"),)),),
            comment="bosun service nodeports; NOTE: this must be the last rule in this chain",
        )
    )
    return {"nat": nat, "filter": {SERVICES: reject}}
