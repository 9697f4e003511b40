"""`bosun-scheduler`: command-line entry point.

    bosun-scheduler --apiserver 127.0.0.1:6443 --leader-elect --metrics-port 10251

With `--leader-elect` several replicas may run; they campaign for the Lease
`kube-system/<--leader-elect-resource-name>` and only the holder schedules (a fresh Scheduler,
with freshly synced caches, each time it becomes leader). The gRPC health service on
`--health-address` answers SERVING while the process runs, leader or standby.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import uuid
from pathlib import Path

from bosun.api.v1 import core_pb2
from bosun.common.apiflags import add_apiserver_arguments, read_credentials
from bosun.common.client import Client
from bosun.common.grpcutil import add_health_and_reflection, bind, create_server, install_uvloop
from bosun.common.leaderelection import LeaderElector
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments
from bosun.scheduler.config import ConfigError, SchedulerConfig, load_config
from bosun.scheduler.registry import Handle, build_framework
from bosun.scheduler.scheduler import Scheduler

log = logging.getLogger("bosun.scheduler")

SERVICE_NAME = "bosun.scheduler"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-scheduler",
        description="Bosun scheduler: binds pending pods to nodes through filter/score plugins.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_apiserver_arguments(parser)
    parser.add_argument(
        "--config", type=Path, help="KubeSchedulerConfiguration YAML (plugins, weights)"
    )
    election = parser.add_argument_group("leader election")
    election.add_argument("--leader-elect", action="store_true", help="run as one of replicas")
    election.add_argument("--leader-elect-resource-name", default="bosun-scheduler")
    election.add_argument("--leader-elect-resource-namespace", default="kube-system")
    election.add_argument("--leader-elect-lease-duration", type=float, default=15.0)
    election.add_argument("--leader-elect-renew-deadline", type=float, default=10.0)
    election.add_argument("--leader-elect-retry-period", type=float, default=2.0)
    election.add_argument(
        "--identity", default="", help="this replica's name in the lease (default: host_uuid)"
    )
    parser.add_argument(
        "--max-binds-in-flight", type=int, default=256, help="concurrent Bind calls"
    )
    parser.add_argument(
        "--event-qps",
        type=float,
        default=50.0,
        help="Event writes per second (as kube-scheduler's client QPS; 0: unlimited)",
    )
    parser.add_argument("--event-burst", type=int, default=100, help="Event writes in a burst")
    parser.add_argument(
        "--health-address", default="0.0.0.0:10259", help="gRPC health service address"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=10251, help="Prometheus /metrics port (0 disables)"
    )
    parser.add_argument(
        "--metrics-address", default="0.0.0.0", help="address the /metrics endpoint listens on"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    add_tracing_arguments(parser)
    return parser.parse_args(argv)


def check_config(config: SchedulerConfig, source: str) -> None:
    """Build the plugins once, offline, so that bad plugin names or args fail at startup."""
    build_framework(config, Handle(pods=_Offline()), source=source)


class _Offline:
    """A PodBinder that is never called (check_config only instantiates plugins)."""

    async def bind(
        self, name: str, node_name: str, *, namespace: str = "", uid: str = ""
    ) -> core_pb2.Pod:
        raise RuntimeError("check_config's binder is not connected")


async def serve(args: argparse.Namespace, config: SchedulerConfig) -> None:
    credentials = read_credentials(args)
    token, ca_cert = credentials.token, credentials.ca_cert
    stop = stop_on_signals()

    health_server = create_server()
    add_health_and_reflection(health_server, [SERVICE_NAME])
    port = bind(health_server, args.health_address)
    await health_server.start()

    async with Client(args.apiserver, token=token, ca_cert=ca_cert) as client:

        async def schedule() -> None:
            await Scheduler(
                client,
                config,
                max_binds_in_flight=args.max_binds_in_flight,
                event_qps=args.event_qps,
                event_burst=args.event_burst,
            ).run()

        if args.leader_elect:
            identity = args.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
            elector = LeaderElector(
                leases=client.leases,
                name=args.leader_elect_resource_name,
                namespace=args.leader_elect_resource_namespace,
                identity=identity,
                lease_duration=args.leader_elect_lease_duration,
                renew_deadline=args.leader_elect_renew_deadline,
                retry_period=args.leader_elect_retry_period,
                on_started_leading=schedule,
                on_new_leader=lambda leader: log.info("leader is %s", leader),
            )
            work = asyncio.create_task(elector.run(), name="leader-election")
        else:
            work = asyncio.create_task(schedule(), name="scheduler")
        log.info("scheduler started", extra={"apiserver": args.apiserver, "health_port": port})
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        log.info("shutting down")
        for task in (work, stopper):
            task.cancel()
        await asyncio.gather(work, stopper, return_exceptions=True)
        error = work.exception() if work in done and not work.cancelled() else None
        if error is not None:
            raise error
    await health_server.stop(1.0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("scheduler", level=args.log_level, json=args.log_format == "json")
    try:
        config = load_config(args.config) if args.config else SchedulerConfig()
        check_config(config, str(args.config or "<defaults>"))
    except ConfigError as error:
        print(f"bosun-scheduler: invalid --config: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_tracing_from_arguments("bosun-scheduler", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args, config))


if __name__ == "__main__":
    main()
