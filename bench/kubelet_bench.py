"""Benchmark: pod startup through the kubelet against raw Docker, measured in the same run.

Starts a private etcd, a `bosun-apiserver` and a `bosun-kubelet` (Docker runtime) process, builds
the local busybox and pause images (services/kubelet/images/build.sh), then measures, one at a
time so that both sides see the same idle engine:

* baseline: `docker run -d` of the image (create + start through the Docker API, the same calls
  the kubelet makes), from request to a running container;
* pod startup: from the pod's Create to the first watch event that shows it Running (sandbox,
  then the app container, then the status write, all through the kubelet).

Prints a table, writes bench/results/kubelet.json (`pod_start_p50_ms`, `pod_start_p99_ms`,
`docker_run_p50_ms`, `ratio_p50`, …). A pod is two containers (sandbox + app) where the baseline
is one, so the floor of the ratio is the sandbox's share, not 1.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import docker
from apiserver_bench import (
    percentile,
    private_cluster,
    report,
    rss_mb,
)

from bosun.api.v1 import core_pb2
from bosun.common.client import Client

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "kubelet.json"
TAG = "bench"
IMAGE = f"bosun/busybox:{TAG}"
PAUSE = f"bosun/pause:{TAG}"
LABEL = "org.bosun.bench=kubelet"


def docker_runs(count: int) -> list[float]:
    """Latency (ms) of create + start of one container, `count` times, sequentially."""
    engine = docker.from_env(timeout=120)
    latencies = []
    try:
        for index in range(count):
            started = time.perf_counter()
            container = engine.api.create_container(
                IMAGE,
                command=["sleep", "3600"],
                name=f"bosun-bench-raw-{index}-{uuid.uuid4().hex[:6]}",
                labels={"org.bosun.bench": "kubelet"},
            )
            engine.api.start(container["Id"])
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        remove_labelled(engine, f"label={LABEL}")
        engine.close()
    return latencies


def remove_labelled(engine: Any, *filters: str) -> None:
    query: dict[str, list[str]] = {}
    for item in filters:
        key, _, value = item.partition("=")
        query.setdefault(key, []).append(value)
    for container in engine.api.containers(all=True, filters=query):
        engine.api.remove_container(container["Id"], force=True)


def start_kubelet(target: str, node: str, root: Path, log: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).parent / "bosun-kubelet"
    return subprocess.Popen(
        [
            str(binary),
            "--apiserver",
            target,
            "--node-name",
            node,
            "--node-ip",
            "127.0.0.1",
            "--pod-infra-image",
            PAUSE,
            "--root-dir",
            str(root),
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def bench_pod(name: str, node: str) -> core_pb2.Pod:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name, pod.metadata.namespace = name, "default"
    pod.spec.node_name = node
    pod.spec.termination_grace_period_seconds = 0
    pod.spec.containers.add(
        name="app", image=IMAGE, image_pull_policy="IfNotPresent", command=["sleep", "3600"]
    )
    return pod


async def pod_starts(
    target: str, node: str, count: int, kubelet: subprocess.Popen[bytes]
) -> list[float]:
    async with Client(target, timeout=60, tracing=False) as api:
        while True:  # the kubelet registers its node before it runs pods
            nodes = await api.nodes.list()
            if any(n.metadata.name == node for n in nodes.items):
                break
            if kubelet.poll() is not None:
                raise RuntimeError("the kubelet exited before registering its node (see its log)")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # and starts its pod informer right after
        listed = await api.pods.list(namespace="default")
        running: dict[str, float] = {}
        seen = asyncio.Event()

        async def watch() -> None:
            async for event in api.pods.watch(
                namespace="default", resource_version=listed.resource_version
            ):
                if event.type == "MODIFIED" and event.object.status.phase == "Running":
                    running.setdefault(event.object.metadata.name, time.perf_counter())
                    seen.set()

        watcher = asyncio.create_task(watch())
        latencies = []
        try:
            for index in range(count):
                name = f"bench-{index}"
                started = time.perf_counter()
                seen.clear()
                await api.pods.create(bench_pod(name, node))
                while name not in running:
                    await asyncio.wait_for(seen.wait(), 60)
                    seen.clear()
                latencies.append((running[name] - started) * 1000)
        finally:
            watcher.cancel()
            for index in range(count):
                await api.pods.delete(f"bench-{index}", grace_period_seconds=0)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    subprocess.run([str(ROOT / "services/kubelet/images/build.sh"), TAG], check=True)
    node = f"bench-{uuid.uuid4().hex[:6]}"
    kubelet = None
    try:
        with private_cluster() as cluster:
            docker_run = docker_runs(args.pods)
            kubelet = start_kubelet(
                cluster.target, node, cluster.tmp / "kubelet", cluster.tmp / "kubelet.log"
            )
            pods = asyncio.run(pod_starts(cluster.target, node, args.pods, kubelet))
            results = {
                "pods": args.pods,
                "pod_start_p50_ms": percentile(pods, 0.5),
                "pod_start_p99_ms": percentile(pods, 0.99),
                "docker_run_p50_ms": percentile(docker_run, 0.5),
                "docker_run_p99_ms": percentile(docker_run, 0.99),
                "ratio_p50": percentile(pods, 0.5) / percentile(docker_run, 0.5),
                "kubelet_rss_mb": rss_mb(kubelet.pid),
            }
            kubelet.terminate()
            kubelet.wait(10)
    finally:
        if kubelet is not None and kubelet.poll() is None:
            kubelet.kill()
        engine = docker.from_env(timeout=120)
        remove_labelled(engine, f"label=io.bosun.node={node}")
        engine.close()
    report(results, args, title="bosun kubelet benchmark: pod startup vs docker run")


if __name__ == "__main__":
    main()
