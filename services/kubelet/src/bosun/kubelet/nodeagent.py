"""The node's side of the API: its Node object, its Lease heartbeat, and its node status.

Three jobs on two timers, as in the Kubernetes kubelet:

* Registration (once, retried until it works): create the Node with labels
  (`kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch`, `--node-labels`) and
  taints (`--register-with-taints`, applied only when the node is first created: afterwards the
  taints belong to whoever edits the Node). An existing Node is adopted: labels are merged.
* The Lease `kube-node-lease/<node>` renewed every `lease_interval` (10 s). This is the
  heartbeat the node lifecycle controller watches; it is a small write, so many nodes can
  heartbeat often.
* Node status every `status_interval`: capacity/allocatable, addresses, conditions (Ready,
  MemoryPressure, DiskPressure, PIDPressure), node info and the image list. It is written when
  something other than heartbeat times changed, or after `status_report_interval` regardless.

Writes are conditioned on the resourceVersion last seen; a conflict re-reads and retries on the
next tick, so an operator's concurrent edit (a label, cordoning) is never overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bosun.api.v1 import coordination_pb2, core_pb2, meta_pb2
from bosun.common.errors import AlreadyExistsError, ApiError, ConflictError, NotFoundError
from bosun.kubelet import metrics
from bosun.kubelet.status import timestamp

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"


@dataclass
class NodeHealth:
    """A snapshot of what node status reports, gathered by the kubelet (or a simulation)."""

    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]
    runtime_ok: bool = True
    runtime_message: str = ""
    memory_pressure: bool = False
    disk_pressure: bool = False
    pid_pressure: bool = False
    images: Sequence[tuple[Sequence[str], int]] = ()
    node_info: Mapping[str, str] = field(default_factory=dict)


@dataclass
class NodeConfig:
    name: str
    addresses: Sequence[tuple[str, str]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[core_pb2.Taint] = ()
    kubelet_port: int = 0
    lease_interval: float = 10.0
    lease_duration_seconds: int = 40
    status_interval: float = 10.0
    status_report_interval: float = 60.0


def parse_taint(text: str) -> core_pb2.Taint:
    """`key[=value]:Effect`, as `--register-with-taints` takes them."""
    head, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"taint {text!r}: want key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
    key, _, value = head.partition("=")
    if not key:
        raise ValueError(f"taint {text!r}: empty key")
    return core_pb2.Taint(key=key, value=value, effect=effect)


def _conditions(health: NodeHealth) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) as Kubernetes words them."""
    return [
        (
            "Ready",
            health.runtime_ok,
            "KubeletReady" if health.runtime_ok else "KubeletNotReady",
            "kubelet is posting ready status"
            if health.runtime_ok
            else f"container runtime is down: {health.runtime_message}",
        ),
        (
            "MemoryPressure",
            health.memory_pressure,
            "KubeletHasInsufficientMemory"
            if health.memory_pressure
            else "KubeletHasSufficientMemory",
            "kubelet has insufficient memory available"
            if health.memory_pressure
            else "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            health.disk_pressure,
            "KubeletHasDiskPressure" if health.disk_pressure else "KubeletHasNoDiskPressure",
            "kubelet has disk pressure" if health.disk_pressure else "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            health.pid_pressure,
            "KubeletHasInsufficientPID" if health.pid_pressure else "KubeletHasSufficientPID",
            "kubelet has insufficient PID available"
            if health.pid_pressure
            else "kubelet has sufficient PID available",
        ),
    ]


def node_status(
    config: NodeConfig, health: NodeHealth, old: core_pb2.NodeStatus, now: float
) -> core_pb2.NodeStatus:
    """The status to report; transition times move only on flips, heartbeat times always."""
    status = core_pb2.NodeStatus()
    status.capacity.update(health.capacity)
    status.allocatable.update(health.allocatable)
    for kind, address in config.addresses:
        status.addresses.add(type=kind, address=address)
    if config.kubelet_port:
        status.daemon_endpoints.kubelet_endpoint.port = config.kubelet_port
    for name, value in health.node_info.items():
        setattr(status.node_info, name, value)
    for names, size in health.images:
        status.images.add(names=list(names), size_bytes=size)
    previous = {c.type: c for c in old.conditions}
    for kind, ok, reason, message in _conditions(health):
        value = "True" if ok else "False"
        condition = status.conditions.add(type=kind, status=value, reason=reason, message=message)
        condition.last_heartbeat_time.CopyFrom(timestamp(now))
        before = previous.get(kind)
        if before is not None and before.status == value:
            condition.last_transition_time.CopyFrom(before.last_transition_time)
        else:
            condition.last_transition_time.CopyFrom(timestamp(now))
    return status


def _without_heartbeats(status: core_pb2.NodeStatus) -> core_pb2.NodeStatus:
    copy = core_pb2.NodeStatus()
    copy.CopyFrom(status)
    for condition in copy.conditions:
        condition.ClearField("last_heartbeat_time")
    return copy


class NodeAgent:
    def __init__(
        self,
        config: NodeConfig,
        *,
        nodes: Any,
        leases: Any,
        health: Callable[[], Awaitable[NodeHealth]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._nodes = nodes
        self._leases = leases
        self._health = health
        self._clock = clock
        self.node: core_pb2.Node | None = None
        self.lease: coordination_pb2.Lease | None = None
        self._last_report = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.heartbeats = 0

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Register (retrying until the apiserver answers), then start both loops."""
        delay = 0.5
        while self.node is None:
            try:
                await self.register()
            except ApiError as error:
                log.warning("node %s: registration failed (%s); retrying", self.config.name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        await self._safely(self.renew_lease)
        await self._safely(self.update_status)
        name = self.config.name
        self._tasks = [
            asyncio.create_task(
                self._every(self.config.lease_interval, self.renew_lease), name=f"lease-{name}"
            ),
            asyncio.create_task(
                self._every(self.config.status_interval, self.update_status),
                name=f"node-status-{name}",
            ),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._safely(step)

    async def _safely(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except ApiError as error:
            log.warning("node %s: %s failed: %s", self.config.name, step.__name__, error)

    # ---------------------------------------------------------------------------- steps

    async def register(self) -> core_pb2.Node:
        config = self.config
        node = core_pb2.Node(api_version="v1", kind="Node")
        node.metadata.name = config.name
        node.metadata.labels.update(config.labels)
        node.spec.taints.extend(config.taints)
        try:
            self.node = await self._nodes.create(node)
            log.info("node %s registered", config.name)
        except AlreadyExistsError:
            existing: core_pb2.Node = await self._nodes.get(config.name)
            if any(existing.metadata.labels.get(k) != v for k, v in config.labels.items()):
                existing.metadata.labels.update(config.labels)
                existing = await self._nodes.update(existing)
            self.node = existing
            log.info("node %s already registered; adopted it", config.name)
        return self.node

    async def renew_lease(self) -> None:
        now = self._clock()
        lease = self.lease
        if lease is None:
            try:
                lease = await self._leases.get(self.config.name, namespace=LEASE_NAMESPACE)
            except NotFoundError:
                self.lease = await self._leases.create(self._new_lease(now))
                self.heartbeats += 1
                return
        update = coordination_pb2.Lease()
        update.CopyFrom(lease)
        update.spec.holder_identity = self.config.name
        update.spec.lease_duration_seconds = self.config.lease_duration_seconds
        update.spec.renew_time.CopyFrom(timestamp(now))
        try:
            self.lease = await self._leases.update(update)
            self.heartbeats += 1
            metrics.HEARTBEATS.labels(result="ok").inc()
        except ApiError:
            metrics.HEARTBEATS.labels(result="error").inc()
            self.lease = None  # re-read (or re-create) on the next tick, which comes soon
            raise

    def _new_lease(self, now: float) -> coordination_pb2.Lease:
        lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
        lease.metadata.name = self.config.name
        lease.metadata.namespace = LEASE_NAMESPACE
        if self.node is not None and self.node.metadata.uid:
            lease.metadata.owner_references.append(
                meta_pb2.OwnerReference(
                    api_version="v1", kind="Node", name=self.config.name, uid=self.node.metadata.uid
                )
            )
        lease.spec.holder_identity = self.config.name
        lease.spec.lease_duration_seconds = self.config.lease_duration_seconds
        lease.spec.renew_time.CopyFrom(timestamp(now))
        return lease

    async def update_status(self) -> None:
        node = self.node
        if node is None:
            return
        now = self._clock()
        health = await self._health()
        status = node_status(self.config, health, node.status, now)
        unchanged = _without_heartbeats(status) == _without_heartbeats(node.status)
        if unchanged and now - self._last_report < self.config.status_report_interval:
            return
        update = core_pb2.Node()
        update.CopyFrom(node)
        update.status.CopyFrom(status)
        try:
            self.node = await self._nodes.update_status(update)
            self._last_report = now
        except ConflictError:
            self.node = await self._nodes.get(self.config.name)
            raise
