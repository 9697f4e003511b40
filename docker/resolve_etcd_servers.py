#!/usr/bin/env python3
"""Container entry point shim: resolve host names in `--etcd-servers` to IPv4 addresses, then exec.

    resolve-etcd-servers bosun-apiserver --etcd-servers etcd:2379 ...
      -> exec bosun-apiserver --etcd-servers 172.18.0.2:2379 ...

Why: the apiserver's etcd client (etcd3aio) dials an `ipv4:` gRPC target, which accepts IP
addresses only, so `--etcd-servers etcd:2379` (a compose service or Kubernetes Service name)
fails with "the target uri is not valid". Until the apiserver resolves names itself, the images
start it through this shim. A name is resolved once, at start (waiting up to
$BOSUN_RESOLVE_TIMEOUT seconds, default 60, for it to appear in DNS): point it at an address that
stays put, such as a Kubernetes ClusterIP Service, or restart the apiserver when etcd moves.
IP addresses and arguments other than --etcd-servers pass through unchanged.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import time

FLAG = "--etcd-servers"


def _resolve_endpoint(endpoint: str, deadline: float) -> str:
    scheme, sep, rest = endpoint.rpartition("://")
    host, colon, port = rest.rpartition(":")
    if not colon:
        host, port = rest, ""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return endpoint
    except ValueError:
        pass
    while True:
        try:
            infos = socket.getaddrinfo(host, port or None, socket.AF_INET, socket.SOCK_STREAM)
            address = str(infos[0][4][0])
            break
        except socket.gaierror as error:
            if time.monotonic() > deadline:
                sys.exit(f"resolve-etcd-servers: cannot resolve {host!r}: {error}")
            time.sleep(0.5)
    resolved = f"{address}:{port}" if port else address
    print(f"resolve-etcd-servers: {host} -> {address}", file=sys.stderr, flush=True)
    return f"{scheme}{sep}{resolved}"


def _resolve_list(value: str, deadline: float) -> str:
    return ",".join(_resolve_endpoint(e.strip(), deadline) for e in value.split(",") if e.strip())


def rewrite(argv: list[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == FLAG:
            out += [arg, _resolve_list(next(args, ""), deadline)]
        elif arg.startswith(FLAG + "="):
            out.append(f"{FLAG}={_resolve_list(arg.split('=', 1)[1], deadline)}")
        else:
            out.append(arg)
    return out


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: resolve-etcd-servers COMMAND [ARG...]")
    argv = rewrite(sys.argv[1:], float(os.environ.get("BOSUN_RESOLVE_TIMEOUT", "60")))
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
