"""Answering a DNS question from Services and Endpoints (no sockets here).

The names are Kubernetes' DNS specification, for the cluster domain (`cluster.local`):

* `<svc>.<ns>.svc.<domain>` A: the Service's ClusterIP; for a headless Service (clusterIP
  None) the IPs of its ready endpoints, one record each.
* `<hostname>.<svc>.<ns>.svc.<domain>` A: one endpoint of a headless Service that has a hostname.
* `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV: a named port: priority 0, weight 100, the
  port, and the service's name as target (per endpoint for a headless Service).
* `<a-b-c-d>.<ns>.pod.<domain>` A: the pod IP written in the name.

Anything else inside the domain is NXDOMAIN (NOERROR with no records when the name exists but
has nothing of the asked type); names outside the domain are REFUSED: nothing is forwarded.
Records carry a short TTL (5 s by default), so that changes reach clients quickly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import QTYPE, RCODE, RR, SRV, A, DNSRecord

from bosun.api.v1 import core_pb2

__all__ = ["Answer", "Resolver"]


@dataclass(frozen=True)
class Answer:
    rcode: int
    records: list[RR]


class Resolver:
    def __init__(
        self,
        service: Callable[[str, str], core_pb2.Service | None],
        endpoints: Callable[[str, str], core_pb2.Endpoints | None],
        *,
        domain: str = "cluster.local",
        ttl: int = 5,
    ) -> None:
        self.service = service
        self.endpoints = endpoints
        self.domain = domain.strip(".").lower()
        self.ttl = ttl

    def reply(self, request: DNSRecord) -> DNSRecord:
        """The response packet for a query packet."""
        reply = request.reply()
        reply.header.ra = 0  # not recursive: nothing is forwarded
        question = request.q
        answer = self.answer(str(question.qname), question.qtype)
        reply.header.rcode = answer.rcode
        for record in answer.records:
            reply.add_answer(record)
        return reply

    def answer(self, qname: str, qtype: int) -> Answer:
        name = qname.rstrip(".").lower()
        suffix = "." + self.domain
        if name == self.domain:
            return Answer(RCODE.NOERROR, [])  # our zone's apex: it exists, with no records
        if not name.endswith(suffix):
            return Answer(RCODE.REFUSED, [])
        labels = name[: -len(suffix)].split(".")
        if len(labels) >= 3 and labels[-1] == "svc":
            return self._service(qname, labels[:-1], qtype)
        if len(labels) == 3 and labels[-1] == "pod":
            return self._pod(qname, labels[0], qtype)
        return Answer(RCODE.NXDOMAIN, [])

    def _a(self, qname: str, ip: str) -> RR:
        return RR(qname, QTYPE.A, rdata=A(ip), ttl=self.ttl)

    def _ready_ips(self, endpoints: core_pb2.Endpoints | None) -> list[core_pb2.EndpointAddress]:
        if endpoints is None:
            return []
        return [address for subset in endpoints.subsets for address in subset.addresses]

    def _service(self, qname: str, labels: list[str], qtype: int) -> Answer:
        # labels: [svc, ns], [hostname, svc, ns] or [_port, _proto, svc, ns]
        namespace, name = labels[-1], labels[-2]
        service = self.service(namespace, name)
        if service is None:
            return Answer(RCODE.NXDOMAIN, [])
        headless = service.spec.cluster_ip == "None"
        endpoints = self.endpoints(namespace, name)
        target = f"{name}.{namespace}.svc.{self.domain}."
        if len(labels) == 2:
            if qtype not in (QTYPE.A, QTYPE.ANY):
                return Answer(RCODE.NOERROR, [])
            if not headless:
                return Answer(RCODE.NOERROR, [self._a(qname, service.spec.cluster_ip)])
            ips = sorted({address.ip for address in self._ready_ips(endpoints)})
            return Answer(RCODE.NOERROR, [self._a(qname, ip) for ip in ips])
        if len(labels) == 3:  # <hostname>.<svc>: one endpoint of a headless service
            matching = [a.ip for a in self._ready_ips(endpoints) if a.hostname == labels[0]]
            if not headless or not matching:
                return Answer(RCODE.NXDOMAIN, [])
            if qtype not in (QTYPE.A, QTYPE.ANY):
                return Answer(RCODE.NOERROR, [])
            return Answer(RCODE.NOERROR, [self._a(qname, ip) for ip in matching])
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv(qname, service, endpoints, labels[0][1:], labels[1][1:], target, qtype)
        return Answer(RCODE.NXDOMAIN, [])

    def _srv(
        self,
        qname: str,
        service: core_pb2.Service,
        endpoints: core_pb2.Endpoints | None,
        port_name: str,
        protocol: str,
        target: str,
        qtype: int,
    ) -> Answer:
        ports = [
            port
            for port in service.spec.ports
            if port.name == port_name and (port.protocol or "TCP").lower() == protocol
        ]
        if not ports:
            return Answer(RCODE.NXDOMAIN, [])
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            return Answer(RCODE.NOERROR, [])
        records = []
        if service.spec.cluster_ip != "None":
            records.append(self._srv_record(qname, ports[0].port, target))
        elif endpoints is not None:
            for subset in endpoints.subsets:
                numbers = [p.port for p in subset.ports if p.name == port_name]
                for address in subset.addresses:
                    host = address.hostname or address.ip.replace(".", "-")
                    records.extend(
                        self._srv_record(qname, number, f"{host}.{target}") for number in numbers
                    )
        return Answer(RCODE.NOERROR, records)

    def _srv_record(self, qname: str, port: int, target: str) -> RR:
        return RR(qname, QTYPE.SRV, rdata=SRV(0, 100, port, target), ttl=self.ttl)

    def _pod(self, qname: str, label: str, qtype: int) -> Answer:
        try:
            ip = ipaddress.IPv4Address(label.replace("-", "."))
        except ValueError:
            return Answer(RCODE.NXDOMAIN, [])
        if qtype not in (QTYPE.A, QTYPE.ANY):
            return Answer(RCODE.NOERROR, [])
        return Answer(RCODE.NOERROR, [self._a(qname, str(ip))])
