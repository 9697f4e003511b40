"""Builders for scheduler tests and benchmarks: nodes and pods with the fields scheduling reads,
a cache holding them, and one-call helpers that run a plugin over every node."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from bosun.api.v1 import core_pb2
from bosun.scheduler.cache import SchedulerCache
from bosun.scheduler.framework import CycleState, FilterPlugin, PreFilterPlugin, ScorePlugin
from bosun.scheduler.podinfo import PodInfo

__all__ = ["filter_nodes", "make_cache", "make_node", "make_pod", "score_nodes"]


def make_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "32Gi",
    pods: int = 110,
    ephemeral_storage: str = "",
    labels: Mapping[str, str] | None = None,
    taints: Iterable[tuple[str, str, str]] = (),
    unschedulable: bool = False,
    images: Mapping[str, int] | None = None,
) -> core_pb2.Node:
    """A Node; `taints` as (key, value, effect); `images` as name → size in bytes."""
    node = core_pb2.Node(api_version="v1", kind="Node")
    node.metadata.name = name
    node.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    if ephemeral_storage:
        resources["ephemeral-storage"] = ephemeral_storage
    node.status.capacity.update(resources)
    node.status.allocatable.update(resources)
    node.spec.unschedulable = unschedulable
    for key, value, effect in taints:
        node.spec.taints.add(key=key, value=value, effect=effect)
    for image, size in (images or {}).items():
        node.status.images.add(names=[image], size_bytes=size)
    return node


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    cpu: str = "",
    memory: str = "",
    priority: int = 0,
    labels: Mapping[str, str] | None = None,
    node_name: str = "",
    node_selector: Mapping[str, str] | None = None,
    tolerations: Iterable[Mapping[str, str]] = (),
    host_ports: Iterable[int] = (),
    image: str = "busybox:1.36",
    scheduler_name: str = "",
) -> core_pb2.Pod:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name = name
    pod.metadata.namespace = namespace
    pod.metadata.uid = f"uid-{namespace}-{name}"
    pod.metadata.labels.update(labels or {})
    container = pod.spec.containers.add(name="app", image=image)
    if cpu:
        container.resources.requests["cpu"] = cpu
    if memory:
        container.resources.requests["memory"] = memory
    for port in host_ports:
        container.ports.add(container_port=port, host_port=port, protocol="TCP")
    pod.spec.priority = priority
    pod.spec.node_name = node_name
    if scheduler_name:
        pod.spec.scheduler_name = scheduler_name
    pod.spec.node_selector.update(node_selector or {})
    for toleration in tolerations:
        pod.spec.tolerations.add(**toleration)
    return pod


def make_cache(nodes: Iterable[core_pb2.Node], pods: Iterable[core_pb2.Pod] = ()) -> SchedulerCache:
    """A cache with `nodes` and the (assigned: spec.nodeName set) `pods`."""
    cache = SchedulerCache()
    for node in nodes:
        cache.add_node(node)
    for pod in pods:
        cache.add_pod(pod)
    return cache


def filter_nodes(plugin: FilterPlugin, pod: core_pb2.Pod, cache: SchedulerCache) -> dict[str, bool]:
    """Run `plugin`'s PreFilter (if any) and Filter over every node: node name → passes."""
    info = PodInfo.of(pod)
    state = CycleState()
    if isinstance(plugin, PreFilterPlugin):
        status = plugin.pre_filter(state, info, cache)
        if status.is_skip:
            return {node.name: True for node in cache.nodes()}
        if not status.is_success:
            return {node.name: False for node in cache.nodes()}
    slots = cache.live_slots()
    mask = plugin.filter(state, info, cache, slots)
    return {cache.at(int(s)).name: bool(ok) for s, ok in zip(slots, mask, strict=True)}


def score_nodes(plugin: ScorePlugin, pod: core_pb2.Pod, cache: SchedulerCache) -> dict[str, float]:
    """Run `plugin`'s PreFilter (if any), Score and normalize: node name → score."""
    info = PodInfo.of(pod)
    state = CycleState()
    if isinstance(plugin, PreFilterPlugin):
        plugin.pre_filter(state, info, cache)
    slots = cache.live_slots()
    if plugin.name in state.skip_score:
        return {cache.at(int(s)).name: 0.0 for s in slots}
    scores = plugin.normalize(plugin.score(state, info, cache, slots))
    return {cache.at(int(s)).name: float(v) for s, v in zip(slots, np.asarray(scores), strict=True)}
