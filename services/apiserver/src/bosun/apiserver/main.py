"""`bosun-apiserver`: command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from bosun.apiserver.allocation import ServiceRanges
from bosun.apiserver.etcd_target import parse_endpoint
from bosun.apiserver.server import ApiServer, ApiServerConfig
from bosun.common.grpcutil import install_uvloop
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments

log = logging.getLogger("bosun.apiserver")


def _etcd_servers(text: str) -> list[str]:
    servers = [s.strip() for s in text.split(",") if s.strip()]
    if not servers:
        raise argparse.ArgumentTypeError("give at least one host:port")
    for server in servers:
        try:
            parse_endpoint(server)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("--etcd-servers: ")) from None
    return servers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-apiserver",
        description="Bosun apiserver: validates, stores (etcd) and watches API objects over gRPC.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--etcd-servers",
        default="127.0.0.1:2379",
        type=_etcd_servers,
        help="comma-separated etcd client endpoints: host:port, or http://host:port",
    )
    parser.add_argument("--listen", default="0.0.0.0:6443", help="gRPC listen address")
    parser.add_argument(
        "--metrics-port", type=int, default=9090, help="Prometheus /metrics port (0 disables)"
    )
    parser.add_argument(
        "--metrics-address", default="0.0.0.0", help="address the /metrics endpoint listens on"
    )
    parser.add_argument("--tls-cert-file", type=Path, help="serve TLS with this certificate")
    parser.add_argument("--tls-private-key-file", type=Path, help="the certificate's key")
    parser.add_argument(
        "--watch-cache-size",
        type=int,
        default=10_000,
        help="events of history kept per kind for resuming watches",
    )
    parser.add_argument(
        "--watcher-buffer",
        type=int,
        default=1_000,
        help="events a watch client may fall behind before it is cut off",
    )
    parser.add_argument(
        "--compaction-interval",
        type=float,
        default=300.0,
        help="seconds between etcd compactions (each keeps one interval)",
    )
    parser.add_argument(
        "--max-requests-inflight",
        type=int,
        default=400,
        help="concurrent unary requests before RESOURCE_EXHAUSTED",
    )
    parser.add_argument(
        "--bookmark-interval",
        type=float,
        default=5.0,
        help="seconds of watch idleness before a BOOKMARK is sent",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        help="seconds in-flight requests get on SIGTERM",
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.add_argument(
        "--service-cluster-ip-range",
        default="10.96.0.0/12",
        help="CIDR from which Services get their ClusterIP",
    )
    parser.add_argument(
        "--service-node-port-range",
        default="30000-32767",
        help="ports (LOW-HIGH) from which NodePort Services get their nodePorts",
    )
    add_tracing_arguments(parser)
    args = parser.parse_args(argv)
    try:
        ServiceRanges.parse(args.service_cluster_ip_range, args.service_node_port_range)
    except ValueError as error:
        parser.error(str(error))
    return args


def config_from_args(args: argparse.Namespace) -> ApiServerConfig:
    return ApiServerConfig(
        etcd_servers=args.etcd_servers,
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
        listen=args.listen,
        watch_cache_size=args.watch_cache_size,
        watcher_buffer=args.watcher_buffer,
        compaction_interval=args.compaction_interval,
        max_inflight=args.max_requests_inflight,
        bookmark_interval=args.bookmark_interval,
        tls_cert=args.tls_cert_file.read_bytes() if args.tls_cert_file else None,
        tls_key=args.tls_private_key_file.read_bytes() if args.tls_private_key_file else None,
    )


async def serve(args: argparse.Namespace) -> None:
    server = ApiServer(config_from_args(args))
    stop = stop_on_signals()
    await server.start()
    log.info("apiserver ready", extra={"listen": args.listen, "port": server.port})
    await stop.wait()
    log.info("shutting down", extra={"grace_seconds": args.shutdown_grace})
    await server.stop(args.shutdown_grace)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("apiserver", level=args.log_level, json=args.log_format == "json")
    configure_tracing_from_arguments("bosun-apiserver", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
