"""DefaultBinder: bind through the apiserver's Bind call (pods/binding in Kubernetes)."""

from __future__ import annotations

from typing import Protocol

from bosun.api.v1 import core_pb2
from bosun.common.errors import ApiError
from bosun.scheduler.framework import SUCCESS, CycleState, Status
from bosun.scheduler.podinfo import PodInfo

NAME = "DefaultBinder"


class PodBinder(Protocol):
    """What the binder needs from the apiserver; `Client.pods` is one."""

    async def bind(
        self, name: str, node_name: str, *, namespace: str = "", uid: str = ""
    ) -> core_pb2.Pod: ...


class DefaultBinder:
    name = NAME

    def __init__(self, pods: PodBinder) -> None:
        self.pods = pods

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        meta = pod.pod.metadata
        try:
            await self.pods.bind(meta.name, node, namespace=meta.namespace, uid=meta.uid)
        except ApiError as error:
            return Status.error(f"binding rejected: {error}", error)
        return SUCCESS
