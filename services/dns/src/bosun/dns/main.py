"""`bosun-dns`: the cluster's DNS server (UDP and TCP), fed by informers on Services and Endpoints.

Lookups read the informers' stores directly: a query never waits on the apiserver, and a change
is visible as soon as the watch delivers it. /healthz answers 200 once both caches are synced.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from bosun.common.apiflags import add_apiserver_arguments, read_credentials
from bosun.common.client import Client
from bosun.common.grpcutil import install_uvloop
from bosun.common.healthz import HealthState, serve_health
from bosun.common.informer import Informer
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments
from bosun.dns.records import Resolver
from bosun.dns.server import DnsServer

log = logging.getLogger("bosun.dns")


def _host_port(text: str, flag: str, parser: argparse.ArgumentParser) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        parser.error(f"{flag}: {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-dns",
        description="Bosun cluster DNS: answers <service>.<namespace>.svc.<domain> from the "
        "apiserver's Services and Endpoints; forwards nothing.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_apiserver_arguments(parser)
    parser.add_argument("--listen", default="0.0.0.0:53", help="HOST:PORT for UDP and TCP")
    parser.add_argument("--cluster-domain", default="cluster.local")
    parser.add_argument("--ttl", type=int, default=5, help="seconds clients may cache answers")
    parser.add_argument("--healthz-address", default="0.0.0.0:8080", help="HOST:PORT of /healthz")
    parser.add_argument("--metrics-port", type=int, default=9153, help="0 disables /metrics")
    parser.add_argument("--metrics-address", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    add_tracing_arguments(parser)
    args = parser.parse_args(argv)
    args.listen_host, args.listen_port = _host_port(args.listen, "--listen", parser)
    args.healthz_host, args.healthz_port = _host_port(
        args.healthz_address, "--healthz-address", parser
    )
    if args.ttl < 0:
        parser.error("--ttl must not be negative")
    return args


async def serve(args: argparse.Namespace) -> None:
    stop = stop_on_signals()
    # Healthy once the caches are synced; from then on the informers keep themselves current
    # (and report their own connection trouble in the log).
    health = HealthState(stale_after=float("inf"), require_success=True)
    health_server = await serve_health(health, args.healthz_host, args.healthz_port)
    credentials = read_credentials(args)
    async with Client(
        args.apiserver, token=credentials.token, ca_cert=credentials.ca_cert
    ) as client:
        services: Informer[Any] = Informer(client.services)
        endpoints: Informer[Any] = Informer(client.endpoints)
        resolver = Resolver(
            # Store keys are "<namespace>/<name>" (bosun.common.informer.object_key).
            lambda ns, name: services.store.get(f"{ns}/{name}"),
            lambda ns, name: endpoints.store.get(f"{ns}/{name}"),
            domain=args.cluster_domain,
            ttl=args.ttl,
        )
        for informer in (services, endpoints):
            informer.start()
        server = DnsServer(resolver, args.listen_host, args.listen_port)
        try:
            await services.wait_for_sync()
            await endpoints.wait_for_sync()
            port = await server.start()
            health.mark_success()
            log.info("serving DNS", extra={"listen": f"{args.listen_host}:{port}"})
            await stop.wait()
        finally:
            server.close()
            health_server.close()
            await services.stop()
            await endpoints.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("dns", level=args.log_level, json=args.log_format == "json")
    configure_tracing_from_arguments("bosun-dns", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
