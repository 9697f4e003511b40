"""Benchmark: many simulated nodes and their pods against one apiserver, baseline in the same run.

Starts a private etcd and `bosun-apiserver`, then:

1. baseline: apiserver Update latency (a ConfigMap updated `--probe-rate` times a second for
   `--probe-seconds`) on the idle apiserver;
2. starts one `bosun-kubelet --runtime=simulated --simulated-nodes N` process and waits for
   every Node to be Ready;
3. creates `--pods` pods bound round-robin to those nodes (spec.nodeName set, as a scheduler
   would) and waits until all are Running — the hollow kubelets write every status;
4. holds that steady state for `--steady-seconds`: the same Update probe, plus the age of every
   node's Lease sampled every few seconds (a heartbeat is on time while its Lease is younger
   than twice the renew interval), and the kubelet process's memory per simulated node.

Prints a table, writes bench/results/nodes.json (`update_p99_ms_idle`,
`update_p99_ms_steady`, `lease_age_max_s`, `heartbeats_on_time`, `kubelet_rss_mb_per_node`,
`pods_running_after_s`, …). Targets (issue 5): 1,000 nodes, 30,000 pods, steady Update p99
< 1 s, heartbeats on time, < 5 MB per simulated node.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apiserver_bench import (
    closed_loop,
    percentile,
    private_cluster,
    report,
    rss_mb,
)

from bosun.api.v1 import core_pb2
from bosun.common import testing
from bosun.common.client import Client

RESULTS = Path(__file__).parent / "results" / "nodes.json"
LEASE_INTERVAL = 10.0


def start_hollow_kubelet(target: str, nodes: int, log: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "bosun-kubelet"
    return subprocess.Popen(
        [
            str(binary),
            "--runtime",
            "simulated",
            "--simulated-nodes",
            str(nodes),
            "--simulated-node-prefix",
            "hollow",
            "--apiserver",
            target,
            "--node-lease-interval",
            str(LEASE_INTERVAL),
            "--metrics-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


async def update_latencies(api: Client, *, rate: float, seconds: float) -> list[float]:
    """Open-loop Updates of one ConfigMap at `rate`/s; latencies in ms."""
    name = f"probe-{time.monotonic_ns()}"
    config = await api.config_maps.create(testing.config_map(name, {"n": "0"}))
    latencies: list[float] = []

    async def one(index: int) -> None:
        update = core_pb2.ConfigMap()
        update.CopyFrom(config)
        update.metadata.resource_version = ""
        update.data["n"] = str(index)
        started = time.perf_counter()
        await api.config_maps.update(update)
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    started = time.monotonic()
    for index in range(int(rate * seconds)):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    return latencies


async def lease_ages(api: Client) -> list[float]:
    leases = await api.leases.list(namespace="kube-node-lease")
    now = time.time()
    return [now - lease.spec.renew_time.ToNanoseconds() / 1e9 for lease in leases.items]


async def count_running(api: Client) -> int:
    running = await api.pods.list_all(
        namespace="bench", field_selector="status.phase=Running", page_size=5000
    )
    return len(running.items)


def bound_pod(index: int, node: str) -> core_pb2.Pod:
    pod = testing.pod(f"p-{index}", namespace="bench", node_name=node)
    pod.spec.containers[0].image = "simulated:1"
    return pod


async def run(args: argparse.Namespace, target: str, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"nodes": args.nodes, "pods": args.pods}
    async with Client(target, timeout=120, tracing=False) as api:
        await api.namespaces.create(testing.namespace("bench"))
        idle = await update_latencies(api, rate=args.probe_rate, seconds=args.probe_seconds)
        results["update_p50_ms_idle"] = percentile(idle, 0.5)
        results["update_p99_ms_idle"] = percentile(idle, 0.99)

        started = time.monotonic()
        kubelet = start_hollow_kubelet(target, args.nodes, tmp / "kubelet.log")
        try:
            while True:
                nodes = await api.nodes.list()
                ready = sum(
                    any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
                    for n in nodes.items
                )
                if ready >= args.nodes:
                    break
                if kubelet.poll() is not None:
                    raise RuntimeError(f"the kubelet exited; see {tmp / 'kubelet.log'}")
                await asyncio.sleep(1)
            results["nodes_ready_after_s"] = time.monotonic() - started

            started = time.monotonic()
            _, create_latencies = await closed_loop(
                lambda i: api.pods.create(bound_pod(i, f"hollow-{i % args.nodes}")),
                total=args.pods,
                concurrency=args.concurrency,
            )
            results["pods_created_after_s"] = time.monotonic() - started
            results["create_p99_ms_under_load"] = percentile(create_latencies, 0.99)
            while (running := await count_running(api)) < args.pods:
                print(f"  {running}/{args.pods} pods Running", flush=True)
                await asyncio.sleep(5)
            results["pods_running_after_s"] = time.monotonic() - started

            ages: list[float] = []

            async def sample_leases() -> None:
                while True:
                    ages.extend(await lease_ages(api))
                    await asyncio.sleep(3)

            sampler = asyncio.create_task(sample_leases())
            steady = await update_latencies(api, rate=args.probe_rate, seconds=args.steady_seconds)
            sampler.cancel()
            results["update_p50_ms_steady"] = percentile(steady, 0.5)
            results["update_p99_ms_steady"] = percentile(steady, 0.99)
            results["update_p99_ratio_steady_vs_idle"] = (
                results["update_p99_ms_steady"] / results["update_p99_ms_idle"]
            )
            results["lease_age_p99_s"] = percentile(ages, 0.99)
            results["lease_age_max_s"] = max(ages)
            results["heartbeats_on_time"] = max(ages) < 2 * LEASE_INTERVAL
            rss = rss_mb(kubelet.pid)
            results["kubelet_rss_mb"] = rss
            results["kubelet_rss_mb_per_node"] = rss / args.nodes
        finally:
            kubelet.terminate()
            kubelet.wait(30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=32, help="pod creates in flight")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="probe Updates per second")
    parser.add_argument("--probe-seconds", type=float, default=10.0)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with private_cluster() as cluster:
        results = asyncio.run(run(args, cluster.target, cluster.tmp))
        results["apiserver_rss_mb"] = rss_mb(cluster.apiserver.pid)
    report(results, args, title="bosun simulated nodes benchmark")


if __name__ == "__main__":
    main()
