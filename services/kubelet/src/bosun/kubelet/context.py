"""What every pod worker of one kubelet shares: its node, runtime, API client and settings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import Message

from bosun.api.v1 import core_pb2
from bosun.common.events import EventType
from bosun.kubelet.backoff import Backoff
from bosun.kubelet.runtime import ContainerRuntime
from bosun.kubelet.volumes import VolumeManager


class PodApi(Protocol):
    """The pod calls a worker makes (bosun.common.client's ResourceClient fits)."""

    async def update_status(self, obj: core_pb2.Pod, /) -> core_pb2.Pod: ...

    async def delete(
        self,
        name: str,
        *,
        namespace: str = ...,
        grace_period_seconds: int | None = ...,
        uid: str = ...,
    ) -> object: ...


class Recorder(Protocol):
    """Where Events go (bosun.common.events.EventRecorder fits); never blocks, never raises."""

    def record(self, obj: Message, type: EventType, reason: str, message: str) -> None: ...


@dataclass
class WorkerSettings:
    pod_infra_image: str = "bosun/pause:dev"
    # The cluster DNS server(s) pods with dnsPolicy ClusterFirst resolve through, and the
    # cluster domain of their search path; no servers: pods get the node's resolver.
    cluster_dns: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"
    # Seconds between syncs of a pod nothing happened to (catches missed runtime changes).
    resync_period: float = 10.0
    # Default for pods that do not say (Kubernetes: 30 s).
    default_grace_seconds: int = 30
    # Dead instances kept per container (for lastState and logs); older ones are removed.
    keep_exited: int = 1


@dataclass
class KubeletContext:
    node_name: str
    host_ip: str
    runtime: ContainerRuntime
    pods: PodApi
    recorder: Recorder
    volumes: VolumeManager
    config_map: Callable[[str, str], core_pb2.ConfigMap | None]
    secret: Callable[[str, str], core_pb2.Secret | None]
    services: Callable[[str], Iterable[core_pb2.Service]]
    settings: WorkerSettings = field(default_factory=WorkerSettings)
    crash_backoff: Backoff = field(default_factory=Backoff)
    pull_backoff: Backoff = field(default_factory=Backoff)
