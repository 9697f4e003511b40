"""Benchmark: scheduler throughput against the Bind ceiling, measured in the same run.

Modelled on Kubernetes' scheduler_perf `SchedulingBasic`. For each node count N (`--nodes`):

1. a private etcd and a `bosun-apiserver` process; N Nodes (4 cpu, 32Gi, 110 pods);
2. baseline, the ceiling a scheduler could reach: M pods (schedulerName `bench-baseline`, so
   no scheduler touches them) bound with raw Bind RPCs from a precomputed round-robin
   assignment, `--concurrency` at a time, onto separate node names (so that they take no room
   from the N nodes). Both phases are timed by the same watch, from the first bind it sees to
   the last, so both pay for the same measuring watcher;
3. M pending pods (100m cpu, 500Mi each, as scheduler_perf's default pod), then a
   `bosun-scheduler` process. Throughput is counted from the first bind to the last one seen on
   a watch (`pods_per_s`; `pods_per_s_with_startup` counts from the scheduler's start, so
   includes listing the pods and nodes);
4. `algo_p99_ms`: the p99 of the scheduler's own
   `bosun_scheduler_scheduling_algorithm_duration_seconds` histogram (interpolated within its
   bucket, as Prometheus' histogram_quantile does).

Prints a table, writes bench/results/scheduler.json: one entry per case with `nodes`, `pods`,
`pods_per_s`, `bind_ceiling_per_s`, `ratio_to_ceiling`, `algo_p99_ms` (and a few more).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from apiserver_bench import closed_loop, print_table, start_apiserver, wait_for_port

from bosun.common.client import Client
from bosun.common.localetcd import LocalEtcd, free_port
from bosun.scheduler.testing import make_node, make_pod

RESULTS = Path(__file__).parent / "results" / "scheduler.json"
NAMESPACE = "default"


def _pod(name: str, scheduler_name: str = "") -> Any:
    return make_pod(name, cpu="100m", memory="500Mi", scheduler_name=scheduler_name)


async def _create(api: Client, objects: list[Any], resource: Any, concurrency: int) -> float:
    rate, _ = await closed_loop(
        lambda i: resource.create(objects[i]), total=len(objects), concurrency=concurrency
    )
    return rate


class BindWatch:
    """Counts pods of one schedulerName as they are bound, on a watch: both phases are timed
    the same way (first bind seen to last bind seen) and pay for the same watcher."""

    def __init__(self, api: Client, scheduler_name: str, pods: int) -> None:
        self.api = api
        self.scheduler_name = scheduler_name
        self.pods = pods
        self.bound: set[str] = set()
        self.first = self.last = 0.0
        self.done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.api.pods.list(namespace=NAMESPACE, limit=1)
        self._task = asyncio.create_task(self._run(listed.resource_version))

    async def _run(self, resource_version: str) -> None:
        async for event in self.api.pods.watch(
            namespace=NAMESPACE,
            field_selector=f"spec.schedulerName={self.scheduler_name}",
            resource_version=resource_version,
        ):
            pod = event.object
            if pod.spec.node_name and pod.metadata.name not in self.bound:
                now = time.perf_counter()
                self.first = self.first or now
                self.last = now
                self.bound.add(pod.metadata.name)
                if len(self.bound) == self.pods:
                    self.done.set()
                    return

    @property
    def rate(self) -> float:
        span = self.last - self.first
        return (len(self.bound) - 1) / span if span > 0 else float("nan")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def bind_ceiling(api: Client, pods: int, concurrency: int, timeout: float) -> float:
    names = [f"baseline-{i}" for i in range(pods)]
    await _create(api, [_pod(n, "bench-baseline") for n in names], api.pods, concurrency)
    watch = BindWatch(api, "bench-baseline", pods)
    await watch.start()
    try:
        await closed_loop(
            lambda i: api.pods.bind(names[i], f"baseline-node-{i % 500}", namespace=NAMESPACE),
            total=pods,
            concurrency=concurrency,
        )
        await asyncio.wait_for(watch.done.wait(), timeout)
    finally:
        watch.stop()
    return watch.rate


def start_scheduler(
    target: str, metrics_port: int, log: Path, profile: Path | None = None
) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "bosun-scheduler"
    prefix = []
    if profile is not None:  # py-spy's collapsed stacks of the scheduler process
        py_spy = Path(sys.executable).parent / "py-spy"
        prefix = [str(py_spy), "record", "--format", "raw", "-o", str(profile), "--"]
    return subprocess.Popen(
        [
            *prefix,
            str(binary),
            "--apiserver",
            target,
            "--metrics-port",
            str(metrics_port),
            "--metrics-address",
            "127.0.0.1",
            "--health-address",
            "127.0.0.1:0",
            "--log-level",
            "WARNING",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def histogram_quantile(text: str, name: str, quantile: float) -> float:
    """The quantile of a Prometheus histogram in exposition text (linear within a bucket)."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


async def scheduled_throughput(
    api: Client,
    target: str,
    pods: int,
    concurrency: int,
    tmp: Path,
    timeout: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    names = [f"pod-{i}" for i in range(pods)]
    await _create(api, [_pod(n) for n in names], api.pods, concurrency)
    watch = BindWatch(api, "default-scheduler", pods)
    await watch.start()
    metrics_port = free_port()
    started = time.perf_counter()
    scheduler = start_scheduler(target, metrics_port, tmp / "scheduler.log", profile)
    try:
        try:
            await asyncio.wait_for(watch.done.wait(), timeout)
        except TimeoutError:
            print(f"timeout: {len(watch.bound)}/{pods} bound after {timeout} s", file=sys.stderr)
        metrics = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
                .read()
                .decode()
            )
        )
    finally:
        watch.stop()
        scheduler.send_signal(signal.SIGINT if profile else signal.SIGTERM)
        scheduler.wait(30)
    algo_p99 = histogram_quantile(
        metrics, "bosun_scheduler_scheduling_algorithm_duration_seconds", 0.99
    )
    return {
        "bound": len(watch.bound),
        "pods_per_s": watch.rate,
        "pods_per_s_with_startup": (
            len(watch.bound) / (watch.last - started) if watch.last else float("nan")
        ),
        "algo_p99_ms": algo_p99 * 1000,
    }


async def run_case(nodes: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    etcd = LocalEtcd(tmp / "etcd", log_path=tmp / "etcd.log")
    etcd.start()
    port = free_port()
    proc = start_apiserver(etcd, port, tmp / "apiserver.log")
    target = f"127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_for_port, port)
        async with Client(target, timeout=60, tracing=False) as api:
            await _create(
                api, [make_node(f"node-{i}") for i in range(nodes)], api.nodes, args.concurrency
            )
            ceiling = await bind_ceiling(api, args.pods, args.concurrency, args.timeout)
            measured = await scheduled_throughput(
                api, target, args.pods, args.concurrency, tmp, args.timeout, args.profile
            )
    finally:
        proc.terminate()
        proc.wait(10)
        etcd.stop()
    return {
        "nodes": nodes,
        "pods": args.pods,
        **measured,
        "bind_ceiling_per_s": ceiling,
        "ratio_to_ceiling": measured["pods_per_s"] / ceiling,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", default="500,5000", help="comma-separated node counts")
    parser.add_argument("--pods", type=int, default=10_000, help="pending pods per case (M)")
    parser.add_argument("--concurrency", type=int, default=256, help="client calls in flight")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--profile", type=Path, help="run the scheduler under py-spy; collapsed stacks here"
    )
    args = parser.parse_args()

    cases = []
    for nodes in (int(n) for n in args.nodes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bosun-sched-bench-") as tmp:
            result = asyncio.run(run_case(nodes, args, Path(tmp)))
        print_table(result, title=f"bosun scheduler: {nodes} nodes, {args.pods} pods")
        cases.append(result)
    output = {
        "cases": cases,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(output, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
