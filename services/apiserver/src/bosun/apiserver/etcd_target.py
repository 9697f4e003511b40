"""The gRPC target for `--etcd-servers`, which may name etcd by host name.

etcd3aio always dials an `ipv4:` target, which takes IP addresses only; in a container, etcd is
reached by a service name (`etcd:2379`). So:

- IP addresses only: `ipv4:`/`ipv6:` with every endpoint, balanced round-robin (as etcd3aio).
- one endpoint with a host name: `dns:///host:port`; gRPC re-resolves the name when the
  connection breaks, so an etcd that comes back under a new address is found again.
- several endpoints, some named: each name is resolved once, at connect, to all its addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def is_address(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """`host:port`, `[v6]:port` or a URL like `http://host:port` (the Kubernetes flag's form)."""
    rest = text.strip().split("://", 1)[-1].rstrip("/")
    if rest.startswith("["):
        host, sep, port = rest[1:].partition("]:")
    else:
        host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--etcd-servers: {text!r} is not host:port")
    if host == "localhost":  # etcd listens on IPv4 loopback; do not try ::1 first.
        host = "127.0.0.1"
    return Endpoint(host, int(port))


def _address_target(endpoints: Sequence[Endpoint]) -> str:
    scheme = "ipv6" if any(":" in e.host for e in endpoints) else "ipv4"
    return f"{scheme}:{','.join(str(e) for e in endpoints)}"


async def resolve_target(texts: Sequence[str]) -> str:
    """The gRPC target to dial for these endpoints (see the module docstring)."""
    endpoints = [parse_endpoint(text) for text in texts]
    if not endpoints:
        raise ValueError("--etcd-servers: no endpoint given")
    if all(e.is_address for e in endpoints):
        return _address_target(endpoints)
    if len(endpoints) == 1:
        return f"dns:///{endpoints[0]}"
    loop = asyncio.get_running_loop()
    resolved: list[Endpoint] = []
    for endpoint in endpoints:
        if endpoint.is_address:
            resolved.append(endpoint)
            continue
        infos = await loop.getaddrinfo(
            endpoint.host, endpoint.port, family=socket.AF_INET, type=socket.SOCK_STREAM
        )
        resolved.extend(Endpoint(str(info[4][0]), endpoint.port) for info in infos)
    return _address_target(list(dict.fromkeys(resolved)))
