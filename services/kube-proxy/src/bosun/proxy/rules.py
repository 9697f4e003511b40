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

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from bosun.api.v1 import core_pb2
from bosun.proxy.iptables import Rule, Tables, comment

__all__ = [
    "CHAIN_PREFIX",
    "JUMPS",
    "RuleBuilder",
    "ServicePort",
    "ServicePortCache",
    "desired_tables",
    "service_ports",
]

CHAIN_PREFIX = "BOSUN-"
SERVICES = "BOSUN-SERVICES"
NODEPORTS = "BOSUN-NODEPORTS"
MARK_MASQ = "BOSUN-MARK-MASQ"
POSTROUTING = "BOSUN-POSTROUTING"
MASQ_MARK = "0x4000/0x4000"
# Above this many endpoints, service and endpoint chains carry no comments (as kube-proxy's
# largeClusterEndpointsThreshold): each comment match is 256 bytes in the kernel's rule blob,
# which the legacy interface copies whole on every commit, so they would double a sync's cost.
LARGE_CLUSTER_ENDPOINTS = 1000

# The rules this proxy adds to built-in chains: (table, built-in chain, comment, rule). Their
# comments identify them, so a restarted proxy finds them and never adds them twice.
_PORTALS = "bosun service portals"
_POSTROUTING = "bosun postrouting rules"
_REJECTS = "bosun services without endpoints"
JUMPS: tuple[tuple[str, str, str, Rule], ...] = (
    ("nat", "PREROUTING", _PORTALS, f"{comment(_PORTALS)}-j {SERVICES}"),
    ("nat", "OUTPUT", _PORTALS, f"{comment(_PORTALS)}-j {SERVICES}"),
    ("nat", "POSTROUTING", _POSTROUTING, f"{comment(_POSTROUTING)}-j {POSTROUTING}"),
    ("filter", "INPUT", _REJECTS, f"{comment(_REJECTS)}-j {SERVICES}"),
    ("filter", "OUTPUT", _REJECTS, f"{comment(_REJECTS)}-j {SERVICES}"),
    ("filter", "FORWARD", _REJECTS, f"{comment(_REJECTS)}-j {SERVICES}"),
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


@functools.lru_cache(maxsize=1 << 18)
def _chain(prefix: str, identity: str) -> str:
    # 64 bits of the digest in hex (kube-proxy uses base32, which Python encodes slowly):
    # collisions among even 100,000 chains have a chance of about 1 in 10^9.
    return prefix + hashlib.sha256(identity.encode()).hexdigest()[:16].upper()


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


def _ports_of(service: core_pb2.Service, endpoints: core_pb2.Endpoints | None) -> list[ServicePort]:
    spec = service.spec
    if not spec.cluster_ip or spec.cluster_ip == "None" or spec.type == "ExternalName":
        return []
    affinity = 0
    if spec.session_affinity == "ClientIP":
        config = spec.session_affinity_config.client_ip
        affinity = config.timeout_seconds if config.HasField("timeout_seconds") else 10800
    return [
        ServicePort(
            namespace=service.metadata.namespace,
            name=service.metadata.name,
            port_name=port.name,
            protocol=(port.protocol or "TCP").lower(),
            cluster_ip=spec.cluster_ip,
            port=port.port,
            node_port=port.node_port if spec.type in ("NodePort", "LoadBalancer") else 0,
            affinity_seconds=affinity,
            endpoints=_ready_endpoints(endpoints, port),
        )
        for port in spec.ports
    ]


def _key(obj: core_pb2.Service | core_pb2.Endpoints) -> tuple[str, str]:
    return (obj.metadata.namespace, obj.metadata.name)


def _sorted(ports: Iterable[ServicePort]) -> list[ServicePort]:
    return sorted(ports, key=lambda p: (p.label, p.protocol))


def service_ports(
    services: Iterable[core_pb2.Service], endpoints: Iterable[core_pb2.Endpoints]
) -> list[ServicePort]:
    """Every service port the proxy implements: ClusterIP (and NodePort) services with an IP."""
    by_key = {_key(e): e for e in endpoints}
    return _sorted(port for s in services for port in _ports_of(s, by_key.get(_key(s))))


class ServicePortCache:
    """`service_ports` for a sync loop: a Service whose object and Endpoints kept their
    resourceVersions keeps its ServicePorts from the last call, unconverted. Objects without a
    resourceVersion (built by hand) are always converted."""

    def __init__(self) -> None:
        self._by_service: dict[tuple[str, str], tuple[str, str, list[ServicePort]]] = {}

    def ports(
        self, services: Iterable[core_pb2.Service], endpoints: Iterable[core_pb2.Endpoints]
    ) -> list[ServicePort]:
        by_key = {_key(e): e for e in endpoints}
        previous, self._by_service = self._by_service, {}
        result: list[ServicePort] = []
        for service in services:
            key = _key(service)
            matching = by_key.get(key)
            versions = (
                service.metadata.resource_version,
                matching.metadata.resource_version if matching else "",
            )
            cached = previous.get(key)
            if versions[0] and cached and cached[:2] == versions:
                ports = cached[2]
            else:
                ports = _ports_of(service, matching)
            self._by_service[key] = (*versions, ports)
            result.extend(ports)
        return _sorted(result)


def _service_chain(
    port: ServicePort, cluster_cidr: str, masquerade_all: bool, note: str
) -> list[Rule]:
    rules: list[Rule] = []
    if masquerade_all or cluster_cidr:
        source = "" if masquerade_all else f"! -s {cluster_cidr} "
        rules.append(
            f"{source}-d {port.cluster_ip}/32 -p {port.protocol} "
            f"{comment(port.label + ' cluster IP')}-m {port.protocol} --dport {port.port} "
            f"-j {MARK_MASQ}"
        )
    if port.affinity_seconds:
        for endpoint in port.endpoints:
            chain = port.endpoint_chain(endpoint)
            rules.append(
                f"{note}-m recent --rcheck --seconds {port.affinity_seconds} --reap "
                f"--name {chain} --mask 255.255.255.255 --rsource -j {chain}"
            )
    count = len(port.endpoints)
    for index, endpoint in enumerate(port.endpoints):
        remaining = count - index
        # 1/n, 1/(n-1), …: each endpoint ends up equally likely; the last one takes the rest.
        chance = (
            f"-m statistic --mode random --probability {1.0 / remaining:0.11f} "
            if remaining > 1
            else ""
        )
        rules.append(f"{note}{chance}-j {port.endpoint_chain(endpoint)}")
    return rules


def _endpoint_chain(port: ServicePort, endpoint: Endpoint, note: str) -> list[Rule]:
    sticky = ""
    if port.affinity_seconds:
        chain = port.endpoint_chain(endpoint)
        sticky = f"-m recent --set --name {chain} --mask 255.255.255.255 --rsource "
    return [
        f"-s {endpoint.ip}/32 {note}-j {MARK_MASQ}",
        # `-p` alone lets DNAT rewrite the port (a `-m tcp` would only cost blob bytes).
        f"-p {port.protocol} {note}{sticky}-j DNAT --to-destination {endpoint.ip}:{endpoint.port}",
    ]


class RuleBuilder:
    """Builds `Tables`, remembering each service port's chains from the previous build.

    A service port's chains depend on nothing but the (immutable, hashable) `ServicePort` and
    the builder's options, so an unchanged port reuses the very same rule lists: building 10,000
    services after one endpoint moved costs one port's rules, and the syncer's diff sees the
    other chains unchanged by identity. Only the ports of the latest build are kept.
    """

    def __init__(
        self,
        *,
        cluster_cidr: str = "",
        masquerade_all: bool = False,
        large_cluster_endpoints: int = LARGE_CLUSTER_ENDPOINTS,
    ) -> None:
        self.cluster_cidr = cluster_cidr
        self.masquerade_all = masquerade_all
        self.large_cluster_endpoints = large_cluster_endpoints
        self._chains: dict[ServicePort, dict[str, list[Rule]]] = {}
        self._commented = True

    def _port_chains(self, port: ServicePort) -> dict[str, list[Rule]]:
        note = comment(port.label) if self._commented else ""
        chains = {port.chain: _service_chain(port, self.cluster_cidr, self.masquerade_all, note)}
        for endpoint in port.endpoints:
            chains[port.endpoint_chain(endpoint)] = _endpoint_chain(port, endpoint, note)
        return chains

    def tables(self, ports: Iterable[ServicePort]) -> Tables:
        ports = list(ports)
        commented = sum(len(p.endpoints) for p in ports) <= self.large_cluster_endpoints
        previous, self._chains = self._chains, {}
        if commented != self._commented:
            previous, self._commented = {}, commented
        services: list[Rule] = []
        node_ports: list[Rule] = []
        nat: dict[str, list[Rule]] = {
            SERVICES: services,
            NODEPORTS: node_ports,
            MARK_MASQ: [f"-j MARK --set-xmark {MASQ_MARK}"],
            POSTROUTING: [
                f"{comment('bosun service traffic requiring SNAT')}"
                f"-m mark --mark {MASQ_MARK} -j MASQUERADE"
            ],
        }
        reject: list[Rule] = []
        for port in ports:
            protocol = port.protocol
            if not port.endpoints:
                reject.extend(_rejects(port))
                continue
            services.append(
                f"-d {port.cluster_ip}/32 -p {protocol} {comment(port.label + ' cluster IP')}"
                f"-m {protocol} --dport {port.port} -j {port.chain}"
            )
            if port.node_port:
                for target in (MARK_MASQ, port.chain):
                    node_ports.append(
                        f"-p {protocol} {comment(port.label)}-m {protocol} "
                        f"--dport {port.node_port} -j {target}"
                    )
            chains = previous.get(port) or self._port_chains(port)
            self._chains[port] = chains
            nat.update(chains)
        services.append(
            f"{comment('bosun service nodeports; NOTE: this must be the last rule in this chain')}"
            f"-m addrtype --dst-type LOCAL -j {NODEPORTS}"
        )
        return {"nat": nat, "filter": {SERVICES: reject}}


def _rejects(port: ServicePort) -> list[Rule]:
    """REJECTs for a service port without endpoints: its cluster IP and its node port."""
    note = comment(f"{port.label} has no endpoints")
    protocol = port.protocol
    rejects = [
        f"-d {port.cluster_ip}/32 -p {protocol} {note}-m {protocol} --dport {port.port} -j REJECT"
    ]
    if port.node_port:
        rejects.append(
            f"-p {protocol} {note}-m addrtype --dst-type LOCAL -m {protocol} "
            f"--dport {port.node_port} -j REJECT"
        )
    return rejects


def desired_tables(
    ports: Iterable[ServicePort], *, cluster_cidr: str = "", masquerade_all: bool = False
) -> Tables:
    """The complete set of chains (and their rules) this proxy owns, for these service ports."""
    return RuleBuilder(cluster_cidr=cluster_cidr, masquerade_all=masquerade_all).tables(ports)
