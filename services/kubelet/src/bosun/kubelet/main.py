"""`bosun-kubelet`: command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Protocol

from bosun.common.apiflags import add_apiserver_arguments, read_credentials
from bosun.common.grpcutil import install_uvloop
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments
from bosun.kubelet.context import WorkerSettings
from bosun.kubelet.nodeagent import parse_taint

log = logging.getLogger("bosun.kubelet")


def _key_values(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"{item!r}: want key=value")
        result[key] = value
    return result


def _taints(text: str) -> list[str]:
    taints = [part.strip() for part in text.split(",") if part.strip()]
    for taint in taints:
        try:
            parse_taint(taint)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return taints


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-kubelet",
        description="Bosun kubelet: registers a Node, heartbeats a Lease, runs the node's pods.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_apiserver_arguments(parser)

    node = parser.add_argument_group("node")
    node.add_argument("--node-name", default=socket.gethostname(), help="the Node's name")
    node.add_argument(
        "--node-ip", default="", help="InternalIP (default: the route to the apiserver)"
    )
    node.add_argument("--node-labels", type=_key_values, default={}, help="k=v,… added to the Node")
    node.add_argument(
        "--register-with-taints",
        type=_taints,
        default=[],
        help="key[=value]:Effect,… set when the Node is first registered",
    )
    node.add_argument(
        "--capacity",
        type=_key_values,
        default={},
        help="override host capacity, e.g. cpu=4,memory=8Gi (default: read from the host)",
    )
    node.add_argument("--max-pods", type=int, default=110)
    node.add_argument("--node-lease-interval", type=float, default=10.0, help="seconds")
    node.add_argument("--node-status-update-frequency", type=float, default=10.0, help="seconds")
    node.add_argument("--eviction-memory-available", default="100Mi", help="MemoryPressure below")
    node.add_argument(
        "--eviction-disk-free-fraction", type=float, default=0.10, help="DiskPressure below"
    )

    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--runtime", choices=("docker", "simulated"), default="docker")
    runtime.add_argument(
        "--docker-endpoint",
        default=None,
        help="Docker engine URL (default: DOCKER_HOST, else unix:///var/run/docker.sock)",
    )
    runtime.add_argument(
        "--pod-infra-image",
        default="bosun/pause:dev",
        help="the sandbox image holding each pod's network namespace",
    )
    runtime.add_argument(
        "--cluster-dns",
        type=lambda text: tuple(ip.strip() for ip in text.split(",") if ip.strip()),
        default=(),
        help="comma-separated cluster DNS server IPs for pods with dnsPolicy ClusterFirst",
    )
    runtime.add_argument("--cluster-domain", default="cluster.local")
    runtime.add_argument("--root-dir", type=Path, default=Path("/var/lib/bosun-kubelet"))
    runtime.add_argument("--sync-frequency", type=float, default=10.0, help="pod resync, seconds")
    runtime.add_argument("--housekeeping-interval", type=float, default=10.0, help="seconds")
    runtime.add_argument("--crashloop-backoff-initial", type=float, default=10.0)
    runtime.add_argument("--crashloop-backoff-max", type=float, default=300.0)
    runtime.add_argument("--crashloop-backoff-reset", type=float, default=600.0)
    runtime.add_argument("--image-pull-backoff-initial", type=float, default=10.0)
    runtime.add_argument("--image-pull-backoff-max", type=float, default=300.0)

    sim = parser.add_argument_group("simulated runtime")
    sim.add_argument("--simulated-nodes", type=int, default=1, help="hollow nodes in this process")
    sim.add_argument(
        "--simulated-node-prefix",
        default="",
        help="hollow node names: PREFIX-0… (default: node name)",
    )
    sim.add_argument(
        "--simulated-start-delay", type=float, default=0.5, help="seconds Pending → Running"
    )
    sim.add_argument("--simulated-capacity-pods", type=int, default=110)

    parser.add_argument(
        "--address",
        default="",
        help="address of the kubelet's gRPC service (logs, exec, stats); default: the node IP",
    )
    parser.add_argument(
        "--port", type=int, default=10250, help="port of the kubelet's gRPC service (0 disables)"
    )
    parser.add_argument("--tls-cert-file", type=Path, help="serve the gRPC service with TLS")
    parser.add_argument("--tls-private-key-file", type=Path, help="the certificate's key")
    parser.add_argument(
        "--metrics-port", type=int, default=10255, help="Prometheus /metrics port (0 disables)"
    )
    parser.add_argument("--metrics-address", default="127.0.0.1")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    add_tracing_arguments(parser)
    return parser.parse_args(argv)


class Runnable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build(args: argparse.Namespace) -> Runnable:
    credentials = read_credentials(args)
    token, ca_cert = credentials.token, credentials.ca_cert
    if args.runtime == "simulated":
        from bosun.kubelet.simulated import HollowNodes, SimulatedConfig

        return HollowNodes(
            SimulatedConfig(
                apiserver=args.apiserver,
                token=token,
                ca_cert=ca_cert,
                count=args.simulated_nodes,
                prefix=args.simulated_node_prefix or args.node_name,
                start_delay=args.simulated_start_delay,
                lease_interval=args.node_lease_interval,
                status_interval=args.node_status_update_frequency,
                max_pods=args.simulated_capacity_pods,
            )
        )
    from bosun.kubelet.server import DockerKubelet, KubeletConfig

    return DockerKubelet(
        KubeletConfig(
            apiserver=args.apiserver,
            token=token,
            ca_cert=ca_cert,
            node_name=args.node_name,
            node_ip=args.node_ip,
            node_labels=args.node_labels,
            taints=args.register_with_taints,
            capacity=args.capacity,
            max_pods=args.max_pods,
            docker_endpoint=args.docker_endpoint,
            root_dir=args.root_dir,
            settings=WorkerSettings(
                pod_infra_image=args.pod_infra_image,
                resync_period=args.sync_frequency,
                cluster_dns=args.cluster_dns,
                cluster_domain=args.cluster_domain,
            ),
            lease_interval=args.node_lease_interval,
            status_interval=args.node_status_update_frequency,
            housekeeping_interval=args.housekeeping_interval,
            crashloop_initial=args.crashloop_backoff_initial,
            crashloop_max=args.crashloop_backoff_max,
            crashloop_reset=args.crashloop_backoff_reset,
            pull_backoff_initial=args.image_pull_backoff_initial,
            pull_backoff_max=args.image_pull_backoff_max,
            memory_available_min=args.eviction_memory_available,
            disk_free_min_fraction=args.eviction_disk_free_fraction,
            listen=f"{args.address}:{args.port}" if args.port else "",
            tls_cert=args.tls_cert_file.read_bytes() if args.tls_cert_file else None,
            tls_key=args.tls_private_key_file.read_bytes() if args.tls_private_key_file else None,
        )
    )


async def serve(args: argparse.Namespace) -> None:
    kubelet = build(args)
    stop = stop_on_signals()
    await kubelet.start()
    await stop.wait()
    log.info("shutting down (containers keep running; the next kubelet adopts them)")
    await kubelet.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("kubelet", level=args.log_level, json=args.log_format == "json")
    tracer_provider = configure_tracing_from_arguments("bosun-kubelet", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args))
    # Shut down now, without joining the Docker worker threads: one may be inside a call that
    # waits out a pod's grace period (`docker stop`), which would hold the exit for up to that
    # long. The containers keep running and the next kubelet adopts them, so nothing is lost.
    tracer_provider.shutdown()
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
