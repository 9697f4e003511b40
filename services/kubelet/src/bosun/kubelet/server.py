"""Assembly of a Docker-backed kubelet: runtime, API client, events, node agent, pod workers.

`DockerKubelet.start()` serves the kubelet's gRPC service (logs, exec, stats), registers the
node and starts the heartbeat before it watches pods, so a node is visible (and its Lease
fresh) by the time it runs anything. `stop()` leaves the
containers running: a kubelet restart must not restart pods, the next kubelet adopts them.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bosun.api.kubelet.v1 import kubelet_pb2_grpc
from bosun.common.client import Client
from bosun.common.events import EventRecorder
from bosun.common.grpcutil import add_health_and_reflection, bind, create_server
from bosun.common.quantity import parse_quantity
from bosun.kubelet import hostinfo
from bosun.kubelet.backoff import Backoff
from bosun.kubelet.context import KubeletContext, WorkerSettings
from bosun.kubelet.docker_runtime import DockerRuntime
from bosun.kubelet.kubelet import Kubelet
from bosun.kubelet.nodeagent import NodeAgent, NodeConfig, NodeHealth, parse_taint
from bosun.kubelet.service import SERVICE_NAME, KubeletService
from bosun.kubelet.volumes import VolumeManager

log = logging.getLogger(__name__)


@dataclass
class KubeletConfig:
    apiserver: str = "127.0.0.1:6443"
    token: str | None = None
    ca_cert: bytes | None = None
    node_name: str = field(default_factory=socket.gethostname)
    node_ip: str = ""
    node_labels: dict[str, str] = field(default_factory=dict)
    taints: list[str] = field(default_factory=list)
    # Overrides of what is read from the host (cpu, memory, ephemeral-storage, pods).
    capacity: dict[str, str] = field(default_factory=dict)
    max_pods: int = 110
    docker_endpoint: str | None = None
    root_dir: Path = Path("/var/lib/bosun-kubelet")
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    lease_interval: float = 10.0
    status_interval: float = 10.0
    housekeeping_interval: float = 10.0
    crashloop_initial: float = 10.0
    crashloop_max: float = 300.0
    crashloop_reset: float = 600.0
    pull_backoff_initial: float = 10.0
    pull_backoff_max: float = 300.0
    # Eviction-style thresholds that raise MemoryPressure / DiskPressure.
    memory_available_min: str = "100Mi"
    disk_free_min_fraction: float = 0.10
    # The kubelet's own gRPC service (logs, exec, stats); "" serves none.
    listen: str = "0.0.0.0:10250"
    tls_cert: bytes | None = None
    tls_key: bytes | None = None


class DockerKubelet:
    def __init__(self, config: KubeletConfig, *, client: Client | None = None) -> None:
        self.config = config
        self.client = client or Client(config.apiserver, token=config.token, ca_cert=config.ca_cert)
        self._owns_client = client is None
        self.runtime = DockerRuntime(node=config.node_name, base_url=config.docker_endpoint)
        self.recorder = EventRecorder(
            self.client.events, component="kubelet", host=config.node_name
        )
        self.node_ip = config.node_ip or hostinfo.detect_node_ip(config.apiserver)
        self.host = hostinfo.read_host(config.root_dir)
        self.agent = NodeAgent(
            self._node_config(),
            nodes=self.client.nodes,
            leases=self.client.leases,
            health=self.health,
        )
        crash = Backoff(
            initial=config.crashloop_initial,
            maximum=config.crashloop_max,
            reset_after=config.crashloop_reset,
        )
        pulls = Backoff(initial=config.pull_backoff_initial, maximum=config.pull_backoff_max)

        def make_context(**lookups: Any) -> KubeletContext:
            volumes = VolumeManager(
                config.root_dir,
                self.runtime,
                node=config.node_name,
                config_map=lookups["config_map"],
                secret=lookups["secret"],
                claim=lookups.pop("claim"),
                volume=lookups.pop("volume"),
            )
            return KubeletContext(
                node_name=config.node_name,
                host_ip=self.node_ip,
                runtime=self.runtime,
                pods=self.client.pods,
                recorder=self.recorder,
                volumes=volumes,
                settings=config.settings,
                crash_backoff=crash,
                pull_backoff=pulls,
                **lookups,
            )

        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.kubelet = Kubelet.build(
            make_context,
            self.client,
            config.node_name,
            housekeeping_interval=config.housekeeping_interval,
        )

    def _node_config(self) -> NodeConfig:
        config = self.config
        labels = {
            "kubernetes.io/hostname": config.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": self.host.architecture,
            **config.node_labels,
        }
        return NodeConfig(
            name=config.node_name,
            addresses=[("InternalIP", self.node_ip), ("Hostname", config.node_name)],
            labels=labels,
            taints=[parse_taint(t) for t in config.taints],
            lease_interval=config.lease_interval,
            status_interval=config.status_interval,
        )

    def capacity(self) -> dict[str, str]:
        host = self.host
        capacity = {
            "cpu": host.cpu,
            "memory": str(host.memory_bytes),
            "ephemeral-storage": str(host.ephemeral_storage_bytes),
            "pods": str(self.config.max_pods),
        }
        capacity.update(self.config.capacity)
        return capacity

    async def health(self) -> NodeHealth:
        runtime_ok, message, images, version = True, "", [], ""
        try:
            version = await self.runtime.version()
            # As Kubernetes (nodeStatusMaxImages): the largest 50 images that have a name; a
            # nameless one (a dangling build layer) cannot be asked for by any pod.
            named = [(i.names, i.size_bytes) for i in await self.runtime.list_images() if i.names]
            images = sorted(named, key=lambda image: image[1], reverse=True)
        except Exception as error:
            runtime_ok, message = False, str(error)
        capacity = self.capacity()
        min_memory = parse_quantity(self.config.memory_available_min)
        return NodeHealth(
            capacity=capacity,
            allocatable=capacity,
            runtime_ok=runtime_ok,
            runtime_message=message,
            memory_pressure=hostinfo.memory_available() < min_memory,
            disk_pressure=hostinfo.disk_free_fraction(self.config.root_dir)
            < self.config.disk_free_min_fraction,
            images=images[:50],
            node_info={
                "kernel_version": self.host.kernel_version,
                "os_image": self.host.os_image,
                "operating_system": "linux",
                "architecture": self.host.architecture,
                "machine_id": self.host.machine_id,
                "boot_id": self.host.boot_id,
                "container_runtime_version": version,
                "kubelet_version": "bosun-0.1.0",
            },
        )

    async def start(self) -> None:
        self.config.root_dir.mkdir(parents=True, exist_ok=True)
        if self.config.listen:
            # Serving first: the Node then advertises the bound port (daemonEndpoints).
            server = create_server()
            kubelet_pb2_grpc.add_KubeletServicer_to_server(
                KubeletService(self.runtime, node_name=self.config.node_name), server
            )
            add_health_and_reflection(server, [SERVICE_NAME])
            config = self.config
            # ":port" binds the node's InternalIP, where the apiserver dials the kubelet.
            address = config.listen
            if address.startswith(":"):
                address = f"{self.node_ip}{address}"
            self.port = bind(server, address, tls_cert=config.tls_cert, tls_key=config.tls_key)
            await server.start()
            self.server = server
            self.agent.config.kubelet_port = self.port
        self.recorder.start()
        await self.agent.start()
        await self.kubelet.start()
        log.info(
            "kubelet ready",
            extra={"node": self.config.node_name, "node_ip": self.node_ip},
        )

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(1.0)
        await self.kubelet.stop()
        await self.agent.stop()
        await self.recorder.stop()
        self.runtime.close()
        if self._owns_client:
            await self.client.close()
