"""Benchmark: kube-proxy's sync time against iptables-restore of the same rules, in one run.

For N services (default 1,000, 5,000 and 10,000) with 3 endpoints each, in a fresh network
namespace per measurement:

* full sync: the proxy's syncer from an empty table (compute the rules, write them);
* baseline: `iptables-restore --noflush` loading exactly that rule set, as one file;
* one change: after a full sync, one endpoint of one service moves; the partial sync's time;

for the iptables-restore backend (the default) and, up to --iptc-max services, python-iptables.
Each figure is the median of --repeats runs. Prints a table and writes bench/results/proxy.json
(per case: services, backend, full_sync_s, iptables_restore_s, ratio, one_change_sync_s).

Needs root and `ip`. The measuring runs inside the namespace (`ip netns exec … --worker`), so
nothing is written to this machine's own tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bosun.api.v1 import core_pb2

RESULTS = Path(__file__).parent / "results" / "proxy.json"


def cluster(services: int) -> tuple[list[core_pb2.Service], list[core_pb2.Endpoints]]:
    svcs, eps = [], []
    for index in range(services):
        name = f"svc-{index}"
        svc = core_pb2.Service()
        svc.metadata.name, svc.metadata.namespace = name, "bench"
        svc.spec.type = "ClusterIP"
        svc.spec.cluster_ip = f"10.{96 + index // 65536}.{index // 256 % 256}.{index % 256}"
        svc.spec.ports.add(port=80, protocol="TCP", target_port="8080")
        svc.metadata.resource_version = str(2 * index + 1)  # as the informer delivers them
        svcs.append(svc)
        endpoints = core_pb2.Endpoints()
        endpoints.metadata.name, endpoints.metadata.namespace = name, "bench"
        subset = endpoints.subsets.add()
        for pod in range(3):
            address = 3 * index + pod
            subset.addresses.add(ip=f"10.244.{address // 256 % 256}.{address % 256}")
        subset.ports.add(port=8080, protocol="TCP")
        endpoints.metadata.resource_version = str(2 * index + 2)
        eps.append(endpoints)
    return svcs, eps


# ------------------------------------------------------------------- inside the namespace


def worker(mode: str, backend: str, services: int) -> dict[str, float]:
    from bosun.proxy.appliers import IptcApplier, RestoreApplier, iptables_command
    from bosun.proxy.iptables import restore_text
    from bosun.proxy.rules import JUMPS, desired_tables, service_ports
    from bosun.proxy.syncer import RuleSyncer

    svcs, eps = cluster(services)
    if mode == "restore-baseline":
        tables = desired_tables(service_ports(svcs, eps))
        jumps: dict[str, list[Any]] = {}
        for table, builtin, _, rule in JUMPS:
            jumps.setdefault(table, []).append((builtin, rule))
        text = restore_text(tables, {}, jumps)
        began = time.perf_counter()
        subprocess.run(
            [iptables_command("restore"), "--noflush"], input=text, text=True, check=True
        )
        return {"seconds": time.perf_counter() - began, "rules": float(text.count("\n-A "))}
    applier = IptcApplier() if backend == "iptc" else RestoreApplier()
    syncer = RuleSyncer(applier)
    full = syncer.sync(svcs, eps)
    moved = eps[len(eps) // 2]
    moved.subsets[0].addresses[0].ip = "10.250.0.1"
    moved.metadata.resource_version = str(10 * services)
    change = syncer.sync(svcs, eps)
    return {"full": full.seconds, "one_change": change.seconds, "rules": float(full.rules)}


# ------------------------------------------------------------------------ the driver


def in_fresh_namespace(*args: str) -> dict[str, float]:
    name = f"bosun-bench-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, __file__, "--worker", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
        )
        if done.returncode != 0:
            raise SystemExit(f"worker {args} failed:\n{done.stderr}")
        return dict(json.loads(done.stdout))
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def median_of(repeats: int, *args: str) -> dict[str, float]:
    runs = [in_fresh_namespace(*args) for _ in range(repeats)]
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--iptc-max", type=int, default=5000, help="largest N to run the python-iptables backend"
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("MODE", "BACKEND", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        mode, backend, count = args.worker
        print(json.dumps(worker(mode, backend, int(count))))
        return

    console = Console()
    cases: list[dict[str, Any]] = []
    for services in args.services:
        baseline = median_of(args.repeats, "restore-baseline", "-", str(services))
        for backend in ("restore", "iptc"):
            if backend == "iptc" and services > args.iptc_max:
                continue
            console.print(f"{services} services, backend {backend} ...")
            measured = median_of(args.repeats, "sync", backend, str(services))
            cases.append(
                {
                    "services": services,
                    "backend": backend,
                    "rules": int(measured["rules"]),
                    "full_sync_s": round(measured["full"], 4),
                    "iptables_restore_s": round(baseline["seconds"], 4),
                    "ratio": round(measured["full"] / baseline["seconds"], 2),
                    "one_change_sync_s": round(measured["one_change"], 4),
                }
            )
    table = Table(title="kube-proxy sync vs iptables-restore (medians)")
    for column in ("services", "backend", "rules", "full sync s", "iptables-restore s", "ratio",
                   "one change s"):  # fmt: skip
        table.add_column(column, justify="right")
    for case in cases:
        table.add_row(*(str(case[key]) for key in (
            "services", "backend", "rules", "full_sync_s", "iptables_restore_s", "ratio",
            "one_change_sync_s")))  # fmt: skip
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"cpus": platform.machine(), "python": platform.python_version()},
                "repeats": args.repeats,
                "targets": {"ratio_at_10000": 2.0, "one_change_sync_s_at_10000": 1.0},
                "cases": cases,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
