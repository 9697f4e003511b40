"""End to end with the Docker runtime: a Deployment behind a Service, reached from another pod.

Everything is real: etcd and the apiserver; the deployment, replicaset and endpoints
controllers; the scheduler (a process); a kubelet running pods as Docker containers on the
default bridge, with `--cluster-dns`; kube-proxy (a process) programming this machine's legacy
iptables tables; and bosun-dns (a process) on the bridge's gateway address, published as the
Service `kube-system/bosun-dns` at 10.96.0.10:53 with hand-written Endpoints, as a cluster
without a DNS Deployment would do it.

A client pod then resolves the Service's full DNS name and its short name (through the search
path) to the ClusterIP, and fetches the web page 30 times from it; it succeeds only when every
one of the three backends answered. Needs root, Docker and iptables: under CI=true it fails without
them. kube-proxy's rules are removed with `--cleanup` afterwards and every container goes.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bosun.api.v1 import core_pb2
from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.localetcd import free_port
from bosun.common.testing import deployment, eventually
from bosun.controllermanager.testing import WORKLOAD_CONTROLLERS, running_controllers
from bosun.kubelet.context import WorkerSettings
from bosun.kubelet.server import DockerKubelet, KubeletConfig
from tests.integration.environment import unavailable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TAG = "e2e-test"
BUSYBOX, PAUSE = f"bosun/busybox:{TAG}", f"bosun/pause:{TAG}"
CLUSTER_DNS = "10.96.0.10"

pytestmark = pytest.mark.timeout(240)


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr[-2000:]}")
    return done.stdout.strip()


@pytest.fixture(scope="module")
def bridge_gateway() -> str:
    """Build the busybox and pause images; the default bridge's gateway (this host, to pods)."""
    if os.geteuid() != 0 or shutil.which("iptables-legacy-restore") is None:
        unavailable("kube-proxy needs root and iptables-legacy (apt-get install iptables)")
    if (
        shutil.which("docker") is None
        or subprocess.run(
            ["docker", "info"], capture_output=True, timeout=30, check=False
        ).returncode
    ):
        unavailable("no Docker engine answers `docker info`")
    _run(str(ROOT / "services" / "kubelet" / "images" / "build.sh"), TAG)
    return _run("docker", "network", "inspect", "bridge", "--format",
                "{{(index .IPAM.Config 0).Gateway}}")  # fmt: skip


def _start(log: Path, *argv: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)


@pytest.fixture
def processes(
    apiserver: ApiServer, bridge_gateway: str, tmp_path: Path
) -> Iterator[tuple[int, Path]]:
    """The scheduler, kube-proxy and bosun-dns; (the DNS port, the log directory)."""
    address, dns_port = f"127.0.0.1:{apiserver.port}", free_port()
    started = [
        _start(tmp_path / "scheduler.log", str(BIN / "bosun-scheduler"), "--apiserver", address,
               "--health-address", f"127.0.0.1:{free_port()}", "--metrics-port", "0",
               "--log-format", "text"),
        _start(tmp_path / "proxy.log", str(BIN / "bosun-proxy"), "--apiserver", address,
               "--healthz-address", f"127.0.0.1:{free_port()}", "--metrics-port", "0",
               "--min-sync-period", "0.05", "--log-format", "text"),
        _start(tmp_path / "dns.log", str(BIN / "bosun-dns"), "--apiserver", address,
               "--listen", f"{bridge_gateway}:{dns_port}",
               "--healthz-address", f"127.0.0.1:{free_port()}", "--metrics-port", "0",
               "--log-format", "text"),
    ]  # fmt: skip
    try:
        yield dns_port, tmp_path
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        subprocess.run(
            [str(BIN / "bosun-proxy"), "--cleanup", "--log-format", "text"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture
async def kubelet(client: Client, bridge_gateway: str, tmp_path: Path) -> AsyncIterator[str]:
    node = f"e2e-{uuid.uuid4().hex[:8]}"
    config = KubeletConfig(
        node_name=node,
        node_ip="127.0.0.1",
        root_dir=tmp_path / "kubelet",
        settings=WorkerSettings(
            pod_infra_image=PAUSE, resync_period=1.0, cluster_dns=(CLUSTER_DNS,)
        ),
        lease_interval=2.0,
        status_interval=2.0,
    )
    running = DockerKubelet(config, client=client)
    await running.start()
    try:
        yield node
    finally:
        await running.stop()
        await asyncio.to_thread(_remove_containers, node)


def _remove_containers(node: str) -> None:
    ids = _run("docker", "ps", "-aq", "--filter", f"label=io.bosun.node={node}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, check=False)


async def publish_dns(client: Client, gateway: str, port: int) -> None:
    """The DNS server as a Service with a fixed ClusterIP and Endpoints on this host."""
    service = core_pb2.Service()
    service.metadata.name, service.metadata.namespace = "bosun-dns", "kube-system"
    service.spec.cluster_ip = CLUSTER_DNS
    service.spec.ports.add(name="dns", port=53, target_port=str(port), protocol="UDP")
    service.spec.ports.add(name="dns-tcp", port=53, target_port=str(port), protocol="TCP")
    await client.services.create(service)
    endpoints = core_pb2.Endpoints()
    endpoints.metadata.name, endpoints.metadata.namespace = "bosun-dns", "kube-system"
    subset = endpoints.subsets.add()
    subset.addresses.add(ip=gateway)
    subset.ports.add(name="dns", port=port, protocol="UDP")
    subset.ports.add(name="dns-tcp", port=port, protocol="TCP")
    await client.endpoints.create(endpoints)


def web_deployment() -> core_pb2.Pod:
    web = deployment("web", replicas=3, image=BUSYBOX)
    container = web.spec.template.spec.containers[0]
    container.command[:] = ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && "
                            "exec httpd -f -p 8080 -h /www"]  # fmt: skip
    container.ports.add(name="http", container_port=8080, protocol="TCP")
    probe = container.readiness_probe
    probe.tcp_socket.port = "8080"
    probe.period_seconds = 1
    return web  # type: ignore[return-value]


# busybox-static's wget looks names (and the port of "http") up through glibc's NSS, which a
# static binary cannot load, and its -T crashes too. So names are resolved with busybox's own
# nslookup (which reads resolv.conf: the cluster DNS and the search path), the page is fetched
# from the address it gives with the port spelled out, and `timeout` bounds each fetch.
CLIENT_SCRIPT = """
set -e
lookup() { nslookup "$1" | awk '/^Address/ { last = $NF } END { print last }'; }
seen() { for i in $(seq 1 30); do timeout 5 wget -q -O - "http://$1:80/"; done | sort -u | wc -l; }
by_name=$(lookup web.default.svc.cluster.local)
by_short_name=$(lookup web)
echo "web.default.svc.cluster.local -> $by_name; web -> $by_short_name; clusterIP $WEB_IP"
test "$by_name" = "$WEB_IP"
test "$by_short_name" = "$WEB_IP"
test "$(seen "$by_name")" = 3
echo "reached all three backends"
"""


async def test_a_deployment_behind_a_service_is_reached_by_name_and_cluster_ip_from_a_pod(
    client: Client, processes: tuple[int, Path], kubelet: str, bridge_gateway: str
) -> None:
    dns_port, logs = processes
    async with running_controllers(client, (*WORKLOAD_CONTROLLERS, "endpoints")):
        await publish_dns(client, bridge_gateway, dns_port)
        service = core_pb2.Service()
        service.metadata.name, service.metadata.namespace = "web", "default"
        service.spec.selector["app"] = "web"
        service.spec.ports.add(name="http", port=80, target_port="http", protocol="TCP")
        web_ip = (await client.services.create(service)).spec.cluster_ip
        await client.deployments.create(web_deployment())  # type: ignore[arg-type]

        async def three_ready_endpoints() -> bool:
            try:
                endpoints = await client.endpoints.get("web")
            except Exception:
                return False
            return sum(len(s.addresses) for s in endpoints.subsets) == 3

        await eventually(three_ready_endpoints, timeout=90, interval=0.5)

        pod = core_pb2.Pod()
        pod.metadata.name, pod.metadata.namespace = "client", "default"
        pod.spec.restart_policy = "Never"
        probe = pod.spec.containers.add(name="client", image=BUSYBOX)
        probe.command[:] = ["sh", "-c", CLIENT_SCRIPT]
        probe.env.add(name="WEB_IP", value=web_ip)
        await client.pods.create(pod)

        async def finished() -> bool:
            phase = (await client.pods.get("client")).status.phase
            return phase in ("Succeeded", "Failed")

        await eventually(finished, timeout=90, interval=0.5)
        phase = (await client.pods.get("client")).status.phase
        if phase != "Succeeded":
            output = await asyncio.to_thread(_client_logs, kubelet)
            details = "\n".join(
                f"--- {name}\n{(logs / name).read_text()[-2000:]}"
                for name in ("proxy.log", "dns.log", "scheduler.log")
            )
            raise AssertionError(f"client pod {phase}; its output:\n{output}\n{details}")


def _client_logs(node: str) -> str:
    ids = _run("docker", "ps", "-aq", "--filter", f"label=io.bosun.node={node}").split()
    parts = []
    for container in ids:
        name = _run("docker", "inspect", "--format", "{{.Name}}", container)
        if "client" in name:
            done = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
            parts.append(f"{name}:\n{done.stdout}{done.stderr}")
    return "\n".join(parts)
