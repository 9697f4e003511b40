"""What the local cluster runs: one `Component` entry per process, in start order.

A component is a command line, the ports it binds, the address to show and a health probe.
Programs are found next to the Python running bosunctl (the venv's `bin/`), so the cluster runs
the code of the checkout it was installed from. When a new component exists, it gets an entry
here, after the components it needs (the apiserver needs etcd; everything else the apiserver).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["COMPONENTS", "Component", "Settings", "grpc_healthy", "http_healthy"]


@dataclass(frozen=True)
class Settings:
    """Where the cluster keeps its state and which ports it uses (`bosunctl local up` flags)."""

    state_dir: Path
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    apiserver_port: int = 6443
    metrics_port: int = 9090
    dns_port: int = 10053
    node_name: str = socket.gethostname()
    bin_dir: Path = Path(sys.executable).parent

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def etcd_endpoint(self) -> str:
        return f"127.0.0.1:{self.etcd_client_port}"

    @property
    def apiserver_address(self) -> str:
        return f"127.0.0.1:{self.apiserver_port}"

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class Component:
    """One supervised process of the local cluster."""

    name: str
    command: Callable[[Settings], list[str]]
    address: Callable[[Settings], str]
    # Ports the component binds; `up` refuses to start it while another process holds one.
    ports: Callable[[Settings], list[int]]
    # One quick health check; `up` repeats it until it passes or `start_timeout` runs out.
    healthy: Callable[[Settings], bool]
    start_timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    # Why the component cannot run on this machine (None: it can); `up` skips it with a warning.
    unavailable: Callable[[Settings], str | None] = lambda settings: None

    def pid_file(self, settings: Settings) -> Path:
        return settings.run_dir / f"{self.name}.pid"

    def log_file(self, settings: Settings) -> Path:
        return settings.log_dir / f"{self.name}.log"


# ---------------------------------------------------------------------------- health probes


def etcd_healthy(settings: Settings) -> bool:
    url = f"http://{settings.etcd_endpoint}/health"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return b'"health":"true"' in response.read()
    except OSError:
        return False


def http_healthy(url: str) -> bool:
    """An HTTP endpoint (a /healthz) answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def grpc_healthy(target: str, service: str = "") -> bool:
    """The standard gRPC health check (grpc.health.v1) answers SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


# ---------------------------------------------------------------------------- the components


def etcd_command(settings: Settings) -> list[str]:
    # The command line the test fixtures use, on fixed ports and a persistent data directory.
    from bosun.common.localetcd import LocalEtcd

    etcd = LocalEtcd(
        settings.etcd_data_dir,
        client_port=settings.etcd_client_port,
        peer_port=settings.etcd_peer_port,
    )
    return etcd.command()


def apiserver_command(settings: Settings) -> list[str]:
    return [
        settings.program("bosun-apiserver"),
        "--etcd-servers", settings.etcd_endpoint,
        "--listen", settings.apiserver_address,
        "--metrics-port", str(settings.metrics_port), "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def _client_flags(settings: Settings) -> list[str]:
    return ["--apiserver", settings.apiserver_address, "--log-format", "json"]


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


PAUSE_IMAGE = "bosun/pause:dev"


def kubelet_runtime() -> tuple[str, str]:
    """("docker", "") when a Docker engine answers and has the sandbox image, else
    ("simulated", why): a simulated node still lets the scheduler and controllers work."""
    if not docker_answers():
        return "simulated", "no Docker engine answers `docker info`"
    done = subprocess.run(
        ["docker", "image", "inspect", PAUSE_IMAGE], capture_output=True, timeout=10, check=False
    )
    if done.returncode != 0:
        return "simulated", f"no {PAUSE_IMAGE} image (make images builds it)"
    return "docker", ""


def kubelet_command(settings: Settings) -> list[str]:
    runtime, _ = kubelet_runtime()
    return [
        settings.program("bosun-kubelet"), *_client_flags(settings),
        "--runtime", runtime, "--node-name", settings.node_name,
        "--node-ip", "127.0.0.1", "--address", "127.0.0.1", "--port", "10250",
        "--root-dir", str(settings.state_dir / "kubelet"), "--pod-infra-image", PAUSE_IMAGE,
        "--metrics-port", "10255", "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def scheduler_command(settings: Settings) -> list[str]:
    return [
        settings.program("bosun-scheduler"), *_client_flags(settings),
        "--health-address", "127.0.0.1:10259",
        "--metrics-port", "10251", "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def controller_manager_command(settings: Settings) -> list[str]:
    return [
        settings.program("bosun-controller-manager"), *_client_flags(settings),
        "--health-address", "127.0.0.1:10257",
        "--metrics-port", "10252", "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def proxy_command(settings: Settings) -> list[str]:
    return [
        settings.program("bosun-proxy"), *_client_flags(settings),
        "--healthz-address", "127.0.0.1:10256",
        "--metrics-port", "10249", "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def dns_command(settings: Settings) -> list[str]:
    return [
        settings.program("bosun-dns"), *_client_flags(settings),
        "--listen", f"127.0.0.1:{settings.dns_port}", "--healthz-address", "127.0.0.1:10054",
        "--metrics-port", "9153", "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


def proxy_unavailable(settings: Settings) -> str | None:
    if os.geteuid() != 0:
        return "kube-proxy programs iptables and needs root"
    if not any(shutil.which(name) for name in ("iptables-legacy-restore", "iptables-restore")):
        return "no iptables-restore (apt-get install iptables)"
    return None


COMPONENTS: list[Component] = [
    Component(
        name="etcd",
        command=etcd_command,
        address=lambda s: s.etcd_endpoint,
        ports=lambda s: [s.etcd_client_port, s.etcd_peer_port],
        healthy=etcd_healthy,
    ),
    Component(
        name="apiserver",
        command=apiserver_command,
        address=lambda s: f"{s.apiserver_address} (metrics :{s.metrics_port})",
        ports=lambda s: [s.apiserver_port, s.metrics_port],
        healthy=lambda s: grpc_healthy(s.apiserver_address),
        start_timeout=60.0,
        env={"PYTHONUNBUFFERED": "1"},
    ),
    Component(
        name="scheduler",
        command=scheduler_command,
        address=lambda s: "127.0.0.1:10259 (health), metrics :10251",
        ports=lambda s: [10259, 10251],
        healthy=lambda s: grpc_healthy("127.0.0.1:10259"),
    ),
    Component(
        name="controller-manager",
        command=controller_manager_command,
        address=lambda s: "127.0.0.1:10257 (health), metrics :10252",
        ports=lambda s: [10257, 10252],
        healthy=lambda s: grpc_healthy("127.0.0.1:10257"),
    ),
    Component(
        name="kubelet",
        command=kubelet_command,
        address=lambda s: f"node {s.node_name} ({kubelet_runtime()[0]}), 127.0.0.1:10250",
        ports=lambda s: [10250, 10255],
        healthy=lambda s: grpc_healthy("127.0.0.1:10250"),
        start_timeout=60.0,
    ),
    Component(
        name="proxy",
        command=proxy_command,
        address=lambda s: "127.0.0.1:10256 (healthz), metrics :10249",
        ports=lambda s: [10256, 10249],
        healthy=lambda s: http_healthy("http://127.0.0.1:10256/healthz"),
        unavailable=proxy_unavailable,
    ),
    Component(
        name="dns",
        command=dns_command,
        address=lambda s: f"127.0.0.1:{s.dns_port} (udp+tcp), healthz :10054",
        ports=lambda s: [s.dns_port, 10054, 9153],
        healthy=lambda s: http_healthy("http://127.0.0.1:10054/healthz"),
    ),
]
