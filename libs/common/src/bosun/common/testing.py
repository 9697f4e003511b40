"""Small object builders for tests and examples (the minimum valid object of each kind)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping

from bosun.api.v1 import apps_pb2, coordination_pb2, core_pb2


def pod(
    name: str,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    image: str = "busybox:1.36",
    node_name: str = "",
    containers: int = 1,
) -> core_pb2.Pod:
    obj = core_pb2.Pod(api_version="v1", kind="Pod")
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.metadata.labels.update(labels or {})
    for index in range(containers):
        obj.spec.containers.add(name=f"c{index}", image=image, command=["sleep", "3600"])
    if node_name:
        obj.spec.node_name = node_name
    return obj


def namespace(name: str) -> core_pb2.Namespace:
    obj = core_pb2.Namespace(api_version="v1", kind="Namespace")
    obj.metadata.name = name
    return obj


def config_map(
    name: str, data: Mapping[str, str] | None = None, *, namespace: str = "default"
) -> core_pb2.ConfigMap:
    obj = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.data.update(data or {})
    return obj


def node(name: str, *, cpu: str = "4", memory: str = "8Gi") -> core_pb2.Node:
    obj = core_pb2.Node(api_version="v1", kind="Node")
    obj.metadata.name = name
    obj.status.capacity.update({"cpu": cpu, "memory": memory, "pods": "110"})
    obj.status.allocatable.update({"cpu": cpu, "memory": memory, "pods": "110"})
    return obj


def lease(name: str, *, namespace: str = "kube-system") -> coordination_pb2.Lease:
    obj = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    return obj


def replica_set(
    name: str,
    *,
    replicas: int = 1,
    labels: Mapping[str, str] | None = None,
    namespace: str = "default",
) -> apps_pb2.ReplicaSet:
    selector = dict(labels or {"app": name})
    obj = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.spec.replicas = replicas
    obj.spec.selector.match_labels.update(selector)
    obj.spec.template.metadata.labels.update(selector)
    obj.spec.template.spec.containers.add(name="app", image="busybox:1.36")
    return obj


def deployment(
    name: str,
    *,
    replicas: int = 1,
    image: str = "busybox:1.36",
    namespace: str = "default",
    strategy: str = "RollingUpdate",
    max_surge: str = "25%",
    max_unavailable: str = "25%",
) -> apps_pb2.Deployment:
    """A Deployment selecting `app=<name>`, one container named `app`."""
    obj = apps_pb2.Deployment(api_version="apps/v1", kind="Deployment")
    obj.metadata.name = name
    obj.metadata.namespace = namespace
    obj.spec.replicas = replicas
    obj.spec.selector.match_labels["app"] = name
    obj.spec.template.metadata.labels["app"] = name
    obj.spec.template.spec.containers.add(name="app", image=image)
    obj.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        obj.spec.strategy.rolling_update.max_surge = max_surge
        obj.spec.strategy.rolling_update.max_unavailable = max_unavailable
    return obj


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
) -> None:
    """Wait until `condition()` holds (polling another component's observable state; it may
    be a coroutine function); TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)
