"""What the local cluster runs: one `Component` entry per process, in start order.

A component is a command line, the ports it binds, the address to show and a health probe.
Programs are found next to the Python running bosunctl (the venv's `bin/`), so the cluster runs
the code of the checkout it was installed from. When a new component exists, it gets an entry
here, after the components it needs (the apiserver needs etcd; everything else the apiserver).
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["COMPONENTS", "Component", "Settings", "grpc_healthy"]


@dataclass(frozen=True)
class Settings:
    """Where the cluster keeps its state and which ports it uses (`bosunctl local up` flags)."""

    state_dir: Path
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    apiserver_port: int = 6443
    metrics_port: int = 9090
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
]
