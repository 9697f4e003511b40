"""`bosun-controller-manager`: flags, leader election, health, metrics, signals.

With `--leader-elect` (the default) every replica campaigns for the Lease
`--leader-elect-resource-namespace/--leader-elect-resource-name`; only the holder runs
controllers, and a replica that loses the lease stops every controller (and its informers)
before a successor can take over (see bosun.common.leaderelection). The gRPC health service
answers SERVING on `--health-address` for leader and standby alike: a standby is healthy, just idle.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import uuid

from bosun.common.apiflags import add_apiserver_arguments, read_credentials
from bosun.common.client import Client
from bosun.common.grpcutil import add_health_and_reflection, bind, create_server, install_uvloop
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments
from bosun.controllermanager.context import Options
from bosun.controllermanager.manager import (
    LeaderElection,
    known_controllers,
    run,
    select_controllers,
)

log = logging.getLogger("bosun.controllermanager")

HEALTH_SERVICE = "bosun.controllermanager"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-controller-manager",
        description="Bosun controller-manager: the cluster's reconcile loops in one process.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_apiserver_arguments(parser)

    parser.add_argument(
        "--controllers",
        default="*",
        help="'*' for all, 'name' to add, '-name' to remove; known: "
        + ",".join(known_controllers()),
    )
    parser.add_argument("--concurrent-syncs", type=int, default=2, help="workers per controller")
    parser.add_argument(
        "--health-address", default="0.0.0.0:10257", help="gRPC health service (host:port)"
    )
    parser.add_argument("--metrics-port", type=int, default=10252, help="0 disables /metrics")
    parser.add_argument("--metrics-address", default="0.0.0.0")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")

    election = parser.add_argument_group("leader election")
    election.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True)
    election.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    election.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    election.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    election.add_argument("--leader-elect-resource-name", default="bosun-controller-manager")
    election.add_argument("--leader-elect-resource-namespace", default="kube-system")
    election.add_argument("--identity", default="", help="default: hostname_random")

    defaults = Options()
    tuning = parser.add_argument_group("controllers")
    tuning.add_argument("--burst-replicas", type=int, default=defaults.burst_replicas)
    tuning.add_argument("--namespace-sync-period", type=float, default=defaults.namespace_resync)
    tuning.add_argument("--pod-gc-period", type=float, default=defaults.pod_gc_period)
    tuning.add_argument(
        "--terminated-pod-gc-threshold", type=int, default=defaults.terminated_pod_gc_threshold
    )
    tuning.add_argument("--node-monitor-period", type=float, default=defaults.node_monitor_period)
    tuning.add_argument(
        "--node-monitor-grace-period", type=float, default=defaults.node_monitor_grace_period
    )
    tuning.add_argument(
        "--node-startup-grace-period", type=float, default=defaults.node_startup_grace_period
    )
    tuning.add_argument(
        "--default-toleration-seconds",
        type=int,
        default=defaults.default_toleration_seconds,
        help="how long pods without their own toleration stay on an unreachable node",
    )
    tuning.add_argument("--node-eviction-rate", type=float, default=defaults.node_eviction_rate)
    tuning.add_argument("--pod-eviction-rate", type=float, default=defaults.pod_eviction_rate)
    tuning.add_argument(
        "--unhealthy-nodes-threshold", type=float, default=defaults.unhealthy_nodes_threshold
    )
    add_tracing_arguments(parser)
    args = parser.parse_args(argv)
    try:
        args.controller_names = select_controllers(args.controllers, known_controllers())
    except ValueError as error:
        parser.error(f"--controllers: {error}")
    election_times = (
        args.leader_elect_retry_period,
        args.leader_elect_renew_deadline,
        args.leader_elect_lease_duration,
    )
    if args.leader_elect and not 0 < election_times[0] < election_times[1] < election_times[2]:
        parser.error("need 0 < retry period < renew deadline < lease duration")
    return args


def options_from_args(args: argparse.Namespace) -> Options:
    return Options(
        workers=args.concurrent_syncs,
        burst_replicas=args.burst_replicas,
        namespace_resync=args.namespace_sync_period,
        pod_gc_period=args.pod_gc_period,
        terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
        node_monitor_period=args.node_monitor_period,
        node_monitor_grace_period=args.node_monitor_grace_period,
        node_startup_grace_period=args.node_startup_grace_period,
        default_toleration_seconds=args.default_toleration_seconds,
        node_eviction_rate=args.node_eviction_rate,
        pod_eviction_rate=args.pod_eviction_rate,
        unhealthy_nodes_threshold=args.unhealthy_nodes_threshold,
    )


async def serve(args: argparse.Namespace) -> None:
    identity = args.identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    credentials = read_credentials(args)
    token, ca_cert = credentials.token, credentials.ca_cert
    health_server = create_server()
    health = add_health_and_reflection(health_server, [HEALTH_SERVICE])
    port = bind(health_server, args.health_address)
    await health_server.start()

    stop = stop_on_signals()

    async with Client(args.apiserver, token=token, ca_cert=ca_cert) as client:
        options = options_from_args(args)

        election = (
            LeaderElection(
                name=args.leader_elect_resource_name,
                namespace=args.leader_elect_resource_namespace,
                lease_duration=args.leader_elect_lease_duration,
                renew_deadline=args.leader_elect_renew_deadline,
                retry_period=args.leader_elect_retry_period,
            )
            if args.leader_elect
            else None
        )
        work = asyncio.create_task(
            run(
                client,
                controllers=args.controller_names,
                options=options,
                identity=identity,
                leader_election=election,
            ),
            name="controller-manager",
        )
        log.info(
            "controller-manager ready",
            extra={"identity": identity, "health_port": port, "pid": os.getpid()},
        )
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if work.done() and not work.cancelled() and work.exception() is not None:
            log.error("controller-manager failed", exc_info=work.exception())
        log.info("shutting down")
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        stopped.cancel()
    await health.enter_graceful_shutdown()
    await health_server.stop(1.0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("controller-manager", level=args.log_level, json=args.log_format == "json")
    configure_tracing_from_arguments("bosun-controller-manager", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
