"""`bosun-scheduler` as a process: healthy on its gRPC health address, serving /metrics,
scheduling against the apiserver, and exiting cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.localetcd import free_port
from bosun.scheduler.testing import make_node, make_pod

pytestmark = pytest.mark.integration


async def _healthy(address: str, service: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)


async def test_scheduler_process_serves_health_metrics_and_schedules(
    apiserver: ApiServer, client: Client, tmp_path: Path
) -> None:
    health, metrics = f"127.0.0.1:{free_port()}", free_port()
    binary = Path(sys.executable).parent / "bosun-scheduler"
    flags = [
        "--apiserver", f"127.0.0.1:{apiserver.port}",
        "--health-address", health,
        "--metrics-port", str(metrics), "--metrics-address", "127.0.0.1",
        "--leader-elect", "--leader-elect-lease-duration", "3",
        "--leader-elect-renew-deadline", "2", "--leader-elect-retry-period", "0.5",
    ]  # fmt: skip
    log_path = tmp_path / "scheduler.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            str(binary), *flags, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:

        async def healthy() -> bool:
            return await _healthy(health, "") and await _healthy(health, "bosun.scheduler")

        async def bound() -> bool:
            return bool((await client.pods.get("web")).spec.node_name)

        await _until(healthy, 20)
        await client.nodes.create(make_node("node-1"))
        await client.pods.create(make_pod("web"))
        await _until(bound, 20)
        lease = await client.leases.get("bosun-scheduler", namespace="kube-system")
        assert lease.spec.holder_identity
        text = await asyncio.to_thread(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5)
                .read()
                .decode()
            )
        )
        assert 'bosun_scheduler_schedule_attempts_total{result="scheduled"} 1.0' in text
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
    assert code == 0, log_path.read_text()[-2000:]
