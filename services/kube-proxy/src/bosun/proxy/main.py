"""`bosun-proxy`: keep this node's iptables in step with the cluster's Services and Endpoints.

Concurrency: two informers (Services, Endpoints) run on the event loop; their handlers only set
a "dirty" flag. One loop waits for the flag (or the full-resync timer), snapshots both caches and
runs the sync in a worker thread (iptables work blocks), never two at once, and at most once per
`--min-sync-period`, so a burst of changes becomes one batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from bosun.common.apiflags import add_apiserver_arguments, read_credentials
from bosun.common.client import Client
from bosun.common.grpcutil import install_uvloop
from bosun.common.healthz import HealthState, serve_health
from bosun.common.informer import Informer
from bosun.common.logging import configure_logging
from bosun.common.metrics import start_metrics_server
from bosun.common.signals import stop_on_signals
from bosun.common.tracing import add_tracing_arguments, configure_tracing_from_arguments
from bosun.proxy.appliers import Applier, ApplyError, IptcApplier, RestoreApplier
from bosun.proxy.syncer import RuleSyncer, cleanup

log = logging.getLogger("bosun.proxy")

SYNC_SECONDS = Histogram(
    "bosun_proxy_sync_duration_seconds",
    "Time to compute and write the rules, by kind of sync.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SYNC_ERRORS = Counter("bosun_proxy_sync_errors_total", "Syncs whose batch the kernel refused.")
RULES = Gauge("bosun_proxy_rules", "Rules in the chains the proxy owns.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bosun-proxy",
        description="Bosun kube-proxy: programs iptables so that a Service's IP load-balances "
        "over its ready endpoints.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_apiserver_arguments(parser)
    parser.add_argument(
        "--backend",
        choices=("restore", "iptc"),
        default="restore",
        help="write rules with one iptables-restore run per sync, or with python-iptables",
    )
    parser.add_argument(
        "--cluster-cidr",
        default="",
        help="the pod network; traffic to a Service IP from outside it is masqueraded",
    )
    parser.add_argument(
        "--masquerade-all", action="store_true", help="masquerade all traffic to Service IPs"
    )
    parser.add_argument(
        "--sync-period", type=float, default=30.0, help="seconds between full syncs"
    )
    parser.add_argument(
        "--min-sync-period", type=float, default=0.1, help="minimum seconds between syncs"
    )
    parser.add_argument("--healthz-address", default="0.0.0.0:10256", help="HOST:PORT of /healthz")
    parser.add_argument("--metrics-port", type=int, default=10249, help="0 disables /metrics")
    parser.add_argument("--metrics-address", default="127.0.0.1")
    parser.add_argument(
        "--cleanup", action="store_true", help="remove every rule and chain the proxy owns, exit"
    )
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    add_tracing_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("sync_period", "min_sync_period"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be greater than 0")
    _, sep, port = args.healthz_address.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--healthz-address: {args.healthz_address!r} is not HOST:PORT")
    return args


def make_applier(backend: str) -> Applier:
    return IptcApplier() if backend == "iptc" else RestoreApplier()


class Proxy:
    def __init__(self, args: argparse.Namespace, applier: Applier) -> None:
        self.args = args
        self.syncer = RuleSyncer(
            applier, cluster_cidr=args.cluster_cidr, masquerade_all=args.masquerade_all
        )
        self.health = HealthState(stale_after=max(2 * args.sync_period, 10.0))
        self.dirty = asyncio.Event()
        self.last_full = 0.0

    def _mark_dirty(self, *_: Any) -> None:
        self.dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        host, _, port = self.args.healthz_address.rpartition(":")
        health_server = await serve_health(self.health, host, int(port))
        credentials = read_credentials(self.args)
        async with Client(
            self.args.apiserver, token=credentials.token, ca_cert=credentials.ca_cert
        ) as client:
            services = Informer(client.services)
            endpoints = Informer(client.endpoints)
            for informer in (services, endpoints):
                informer.add_handler(
                    on_add=self._mark_dirty, on_update=self._mark_dirty, on_delete=self._mark_dirty
                )
                informer.start()
            try:
                await services.wait_for_sync()
                await endpoints.wait_for_sync()
                log.info("caches synced; programming iptables")
                while not stop.is_set():
                    await self._sync_once(services, endpoints)
                    await self._wait_for_work(stop)
            finally:
                await services.stop()
                await endpoints.stop()
                health_server.close()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(self.args.min_sync_period)
        until_full = self.last_full + self.args.sync_period - time.monotonic()
        if until_full <= 0:
            return
        waiters = [asyncio.ensure_future(self.dirty.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=until_full, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _sync_once(self, services: Informer[Any], endpoints: Informer[Any]) -> None:
        self.dirty.clear()
        full = time.monotonic() - self.last_full >= self.args.sync_period
        snapshot = (services.store.list(), endpoints.store.list())
        try:
            result = await asyncio.to_thread(self.syncer.sync, *snapshot, full=full)
        except (ApplyError, OSError) as error:
            SYNC_ERRORS.inc()
            self.health.mark_failure(str(error))
            log.error("sync failed; the next one is a full sync: %s", error)
            return
        if result.full:
            self.last_full = time.monotonic()
        self.health.mark_success()
        SYNC_SECONDS.labels("full" if result.full else "partial").observe(result.seconds)
        RULES.set(result.rules)
        log.info(
            "synced",
            extra={
                "full": result.full,
                "written_chains": result.written_chains,
                "deleted_chains": result.deleted_chains,
                "rules": result.rules,
                "seconds": round(result.seconds, 4),
            },
        )


async def serve(args: argparse.Namespace) -> None:
    stop = stop_on_signals()
    proxy = Proxy(args, make_applier(args.backend))
    runner = asyncio.create_task(proxy.run(stop))
    await asyncio.wait([runner, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED")
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    log.info("stopped; the rules stay in place until the next proxy or --cleanup")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("proxy", level=args.log_level, json=args.log_format == "json")
    if args.cleanup:
        try:
            removed = cleanup(make_applier(args.backend))
        except ApplyError as error:
            raise SystemExit(f"bosun-proxy --cleanup: {error}") from None
        print(f"removed {removed} chains and the jumps to them")
        return
    configure_tracing_from_arguments("bosun-proxy", args)
    start_metrics_server(args.metrics_port, host=args.metrics_address)
    install_uvloop()
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
