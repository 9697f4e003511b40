"""Pod GC: periodically removes pods nothing else will ever remove.

Every `pod_gc_period` seconds (one key, `gc`, re-queued after each pass):

* terminated pods (Succeeded/Failed) beyond `terminated_pod_gc_threshold`, oldest first
  (0 disables this pass);
* orphaned pods: bound to a node that no longer exists — checked live against the apiserver
  before deleting, since the node cache may lag a node that was just registered;
* unscheduled pods being deleted: no kubelet will ever finish their graceful deletion.

All three are force deletions (grace period 0) with the pod's uid as a precondition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.errors import NotFoundError
from bosun.common.informer import Informer
from bosun.controllermanager import podutil
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller

log = logging.getLogger(__name__)

Pod = core_pb2.Pod
KEY = "gc"


class PodGarbageCollector(Controller):
    name = "podgc"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context, workers=1)  # one periodic pass at a time
        self.period = context.options.pod_gc_period
        self.threshold = context.options.terminated_pod_gc_threshold
        self.pods: Informer[Pod] = context.informers.informer("Pod")
        self.nodes: Informer[core_pb2.Node] = context.informers.informer("Node")

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.pods, self.nodes)

    async def started(self) -> None:
        self.enqueue(KEY)

    async def sync(self, key: str) -> None:
        try:
            await self._gc_terminated()
            await self._gc_orphaned()
            await self._gc_unscheduled_terminating()
        finally:
            self.enqueue_after(KEY, self.period)

    async def _gc_terminated(self) -> None:
        if self.threshold <= 0:
            return
        terminated = [
            pod for pod in self.pods.store.list() if pod.status.phase in ("Succeeded", "Failed")
        ]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda pod: podutil.seconds(pod.metadata.creation_timestamp))
        for pod in terminated[:excess]:
            await self._force_delete(pod, "terminated pods beyond the threshold")

    async def _gc_orphaned(self) -> None:
        missing: dict[str, bool] = {}
        for pod in self.pods.store.list():
            node = pod.spec.node_name
            if not node or self.nodes.store.get(node) is not None:
                continue
            if node not in missing:
                try:
                    await self.client.nodes.get(node)
                    missing[node] = False
                except NotFoundError:
                    missing[node] = True
            if missing[node]:
                await self._force_delete(pod, f"node {node} no longer exists")

    async def _gc_unscheduled_terminating(self) -> None:
        for pod in self.pods.store.list():
            if pod.metadata.HasField("deletion_timestamp") and not pod.spec.node_name:
                await self._force_delete(pod, "unscheduled and being deleted")

    async def _force_delete(self, pod: Pod, why: str) -> None:
        log.info("deleting pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, why)
        try:
            await self.client.pods.delete(
                pod.metadata.name,
                namespace=pod.metadata.namespace,
                uid=pod.metadata.uid,
                grace_period_seconds=0,
            )
        except NotFoundError:
            return
