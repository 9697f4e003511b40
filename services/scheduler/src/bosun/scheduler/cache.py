"""The scheduler cache: every node, the pods on it, and the pods assumed onto it but not yet bound.

Problem it solves: binding a pod takes a round trip to the apiserver and the informer only
reports it later still. If the scheduler waited for that confirmation before placing the next
pod it would manage a few pods a second; if it did not account for the pod at all it would put
the next pods on the same "free" room and overcommit the node. So, as in kube-scheduler:

    assume(pod, node)   the pod counts against the node at once (scheduling cycle, synchronous)
    finish_binding(pod) the Bind call returned; start the expiry clock
    add_pod(pod)        the informer shows the pod bound: confirmed, the pod now simply exists
    forget(pod)         the Bind failed: the pod's room is given back, the pod is requeued

An assumed pod whose binding finished but which the informer never reports (deleted meanwhile)
is dropped after `assumed_ttl`, so its room cannot leak. A pod the informer reports on another
node than the one it was assumed on (someone else bound it) moves to that node.

Node columns: the scheduler filters and scores thousands of nodes per pod, so per-node numbers
live in numpy arrays indexed by a node's *slot* (allocatable, requested, the "non-zero" requests
used for scoring, and flags), updated incrementally as pods and nodes come and go; a plugin
turns "does the pod fit" into one vector comparison instead of a Python loop. Slots of deleted
nodes are reused; `valid[slot]` says whether a slot holds a live node.

Concurrency: the cache belongs to the event loop's thread and is only touched from it, by the
informer handlers, the scheduling cycle and the bind tasks. None of its methods awaits, so a
scheduling cycle, which reads the cache and ends with `assume` without awaiting in between,
always sees one consistent state and no other pod can take the room it found.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from bosun.api.v1 import core_pb2
from bosun.scheduler.podinfo import HostPort, PodInfo
from bosun.scheduler.resources import NAMES, node_allocatable

__all__ = ["NodeInfo", "SchedulerCache"]

log = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass(eq=False)
class NodeInfo:
    """One node and the pods counted against it (bound, and assumed)."""

    name: str
    slot: int
    node: core_pb2.Node | None = None  # None: the node is gone but pods still name it
    pods: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: dict[HostPort, int] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)  # image name → size in bytes
    labels: dict[str, str] = field(default_factory=dict)

    def port_in_use(self, port: HostPort) -> bool:
        """Kubernetes' HostPortInfo.CheckConflict: 0.0.0.0 conflicts with every address."""
        ip, protocol, number = port
        if ip == "0.0.0.0":
            return any(p == number and proto == protocol for _, proto, p in self.used_ports)
        return (ip, protocol, number) in self.used_ports or (
            "0.0.0.0",
            protocol,
            number,
        ) in self.used_ports


@dataclass
class _Assumed:
    info: PodInfo
    node: str
    deadline: float | None = None  # set when binding finished


class SchedulerCache:
    def __init__(
        self,
        *,
        assumed_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        initial_capacity: int = 64,
    ) -> None:
        self.assumed_ttl = assumed_ttl
        self._clock = clock
        self._nodes: dict[str, NodeInfo] = {}
        self._by_slot: list[NodeInfo | None] = []
        self._free_slots: list[int] = []
        self._pod_nodes: dict[str, str] = {}  # pod key → node name, bound and assumed
        self._assumed: dict[str, _Assumed] = {}
        # Pods that carry pod (anti-)affinity terms, for InterPodAffinity's "existing pods" side.
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.generation = 0  # bumped on every change; lets plugins cache derived data
        width = len(NAMES)
        self.allocatable: FloatArray = np.zeros((0, width))
        self.requested: FloatArray = np.zeros((0, width))
        self.nonzero_requested: FloatArray = np.zeros((0, width))
        # allocatable - requested, resource-major (free[CPU] is one contiguous row), so that
        # NodeResourcesFit compares one row per resource instead of gathering node rows.
        self.free: FloatArray = np.zeros((width, 0))
        # Resource-major copies for scoring, which reads a few resources of sampled nodes.
        self.allocatable_rows: FloatArray = np.zeros((width, 0))
        self.nonzero_rows: FloatArray = np.zeros((width, 0))
        self.valid: BoolArray = np.zeros(0, dtype=np.bool_)
        self.unschedulable: BoolArray = np.zeros(0, dtype=np.bool_)
        self.tainted: BoolArray = np.zeros(0, dtype=np.bool_)
        self.prefer_no_schedule: BoolArray = np.zeros(0, dtype=np.bool_)
        # image name → {slot: size in bytes} of the nodes that have it (ImageLocality).
        self.image_slots: dict[str, dict[int, int]] = {}
        # Namespace labels by name, for pod affinity terms' namespaceSelector.
        self.namespace_labels: dict[str, dict[str, str]] = {}
        # Preemptors waiting for their victims to go: node name → {pod key: PodInfo}.
        self.nominated: dict[str, dict[str, PodInfo]] = {}
        self._nominated_node: dict[str, str] = {}
        self._grow(initial_capacity)

    # ------------------------------------------------------------------ columns

    def _grow(self, capacity: int) -> None:
        old = len(self._by_slot)

        def grown(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
            fresh = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
            fresh[:old] = array
            return fresh

        self.allocatable = grown(self.allocatable)
        self.requested = grown(self.requested)
        self.nonzero_requested = grown(self.nonzero_requested)

        def grown_rows(rows: FloatArray) -> FloatArray:
            fresh = np.zeros((rows.shape[0], capacity))
            fresh[:, :old] = rows
            return fresh

        self.free = grown_rows(self.free)
        self.allocatable_rows = grown_rows(self.allocatable_rows)
        self.nonzero_rows = grown_rows(self.nonzero_rows)
        self.valid = grown(self.valid)
        self.unschedulable = grown(self.unschedulable)
        self.tainted = grown(self.tainted)
        self.prefer_no_schedule = grown(self.prefer_no_schedule)
        self._by_slot.extend([None] * (capacity - old))
        self._free_slots.extend(range(capacity - 1, old - 1, -1))

    def _slot(self, name: str) -> NodeInfo:
        info = self._nodes.get(name)
        if info is None:
            if not self._free_slots:
                self._grow(max(64, 2 * len(self._by_slot)))
            slot = self._free_slots.pop()
            info = NodeInfo(name=name, slot=slot)
            self._nodes[name] = info
            self._by_slot[slot] = info
            self.requested[slot] = 0.0
            self.nonzero_requested[slot] = 0.0
            self._refresh_free(slot)
        return info

    def _refresh_free(self, slot: int) -> None:
        self.free[:, slot] = self.allocatable[slot] - self.requested[slot]
        self.allocatable_rows[:, slot] = self.allocatable[slot]
        self.nonzero_rows[:, slot] = self.nonzero_requested[slot]

    def _release_if_empty(self, info: NodeInfo) -> None:
        if info.node is None and not info.pods:
            del self._nodes[info.name]
            self._by_slot[info.slot] = None
            self._free_slots.append(info.slot)

    # ------------------------------------------------------------------ reads

    @property
    def capacity(self) -> int:
        return len(self._by_slot)

    def node_count(self) -> int:
        return int(self.valid.sum())

    def live_slots(self) -> IntArray:
        return np.flatnonzero(self.valid)

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    def at(self, slot: int) -> NodeInfo:
        info = self._by_slot[slot]
        if info is None:
            raise KeyError(f"no node in slot {slot}")
        return info

    def nodes(self) -> Iterator[NodeInfo]:
        return (info for info in self._nodes.values() if info.node is not None)

    def node_of(self, pod_key: str) -> str | None:
        return self._pod_nodes.get(pod_key)

    def is_assumed(self, pod_key: str) -> bool:
        return pod_key in self._assumed

    @property
    def assumed_count(self) -> int:
        return len(self._assumed)

    # ------------------------------------------------------------------ nodes

    def add_node(self, node: core_pb2.Node) -> None:
        info = self._slot(node.metadata.name)
        self._set_node(info, node)

    update_node = add_node

    def _set_node(self, info: NodeInfo, node: core_pb2.Node) -> None:
        slot = info.slot
        info.node = node
        info.labels = dict(node.metadata.labels)
        self._set_images(
            info,
            {name: int(image.size_bytes) for image in node.status.images for name in image.names},
        )
        self.allocatable[slot] = node_allocatable(node)
        self._refresh_free(slot)
        self.unschedulable[slot] = node.spec.unschedulable
        self.tainted[slot] = any(t.effect in _BLOCKING_EFFECTS for t in node.spec.taints)
        self.prefer_no_schedule[slot] = any(
            t.effect == "PreferNoSchedule" for t in node.spec.taints
        )
        self.valid[slot] = True
        self.generation += 1

    def remove_node(self, name: str) -> None:
        info = self._nodes.get(name)
        if info is None:
            return
        info.node = None
        self._set_images(info, {})
        self.valid[info.slot] = False
        self.generation += 1
        self._release_if_empty(info)

    def _set_images(self, info: NodeInfo, images: dict[str, int]) -> None:
        for name in info.images:
            holders = self.image_slots.get(name)
            if holders is not None:
                holders.pop(info.slot, None)
                if not holders:
                    del self.image_slots[name]
        info.images = images
        for name, size in images.items():
            self.image_slots.setdefault(name, {})[info.slot] = size

    # ------------------------------------------------------------------ pods

    def _add(self, info: PodInfo, node_name: str) -> None:
        node = self._slot(node_name)
        node.pods[info.key] = info
        for port in info.host_ports:
            node.used_ports[port] = node.used_ports.get(port, 0) + 1
        self.requested[node.slot] += info.requests
        self.nonzero_requested[node.slot] += info.nonzero_requests
        self._refresh_free(node.slot)
        self._pod_nodes[info.key] = node_name
        if info.has_affinity_terms:
            self.pods_with_affinity[info.key] = info
        self.generation += 1

    def _remove(self, key: str) -> PodInfo | None:
        node_name = self._pod_nodes.pop(key, None)
        if node_name is None:
            return None
        node = self._nodes[node_name]
        info = node.pods.pop(key)
        for port in info.host_ports:
            left = node.used_ports.get(port, 0) - 1
            if left > 0:
                node.used_ports[port] = left
            else:
                node.used_ports.pop(port, None)
        self.requested[node.slot] -= info.requests
        self.nonzero_requested[node.slot] -= info.nonzero_requests
        self._refresh_free(node.slot)
        self.pods_with_affinity.pop(key, None)
        self.generation += 1
        self._release_if_empty(node)
        return info

    def assume(self, info: PodInfo, node_name: str) -> None:
        """Count `info` against `node_name` now, before the Bind call is made."""
        if info.key in self._pod_nodes:
            raise ValueError(f"pod {info.key} is already in the cache")
        self._add(info, node_name)
        self._assumed[info.key] = _Assumed(info, node_name)

    def finish_binding(self, key: str) -> None:
        """The Bind call succeeded; the informer should confirm it within `assumed_ttl`."""
        assumed = self._assumed.get(key)
        if assumed is not None:
            assumed.deadline = self._clock() + self.assumed_ttl

    def forget(self, key: str) -> None:
        """The Bind call failed: give the room back (only if the pod is still just assumed)."""
        if self._assumed.pop(key, None) is not None:
            self._remove(key)

    def add_pod(self, pod: core_pb2.Pod) -> None:
        """An assigned pod from the informer; confirms an assumed pod."""
        key = f"{pod.metadata.namespace}/{pod.metadata.name}"
        assumed = self._assumed.pop(key, None)
        info = (
            assumed.info.bound_as(pod)
            if assumed is not None and assumed.info.uid == pod.metadata.uid
            else PodInfo.of(pod)
        )
        self._remove(info.key)
        self._add(info, pod.spec.node_name)

    def update_pod(self, pod: core_pb2.Pod) -> None:
        self.add_pod(pod)

    def remove_pod(self, key: str) -> None:
        self._assumed.pop(key, None)
        self._remove(key)

    @contextlib.contextmanager
    def without_pods(self, keys: list[str]) -> Iterator[None]:
        """Pretend the (bound, not assumed) pods `keys` are gone, within the block only: for
        preemption's what-if. Synchronous use only (no await inside the block)."""
        removed: list[tuple[PodInfo, str]] = []
        try:
            for key in keys:
                node = self._pod_nodes.get(key)
                info = self._remove(key) if node is not None else None
                if info is not None and node is not None:
                    removed.append((info, node))
            yield
        finally:
            for info, node in removed:
                self._add(info, node)

    # ------------------------------------------------------------------ namespaces

    def set_namespace(self, namespace: core_pb2.Namespace) -> None:
        self.namespace_labels[namespace.metadata.name] = dict(namespace.metadata.labels)

    def remove_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)

    # ------------------------------------------------------------------ nominations

    def nominate(self, info: PodInfo, node_name: str) -> None:
        """`info` preempted pods on `node_name`: keep its room there from lower-priority pods."""
        self.remove_nomination(info.key)
        self.nominated.setdefault(node_name, {})[info.key] = info
        self._nominated_node[info.key] = node_name

    def remove_nomination(self, key: str) -> None:
        node = self._nominated_node.pop(key, None)
        if node is not None:
            pods = self.nominated.get(node, {})
            pods.pop(key, None)
            if not pods:
                self.nominated.pop(node, None)

    def nominated_node_of(self, key: str) -> str | None:
        return self._nominated_node.get(key)

    def cleanup_expired(self) -> list[str]:
        """Drop assumed pods whose binding finished more than `assumed_ttl` ago unconfirmed."""
        now = self._clock()
        expired = [
            key
            for key, assumed in self._assumed.items()
            if assumed.deadline is not None and assumed.deadline < now
        ]
        for key in expired:
            log.warning("assumed pod %s expired without being confirmed by the informer", key)
            self.forget(key)
        return expired
