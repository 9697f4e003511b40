"""The kubelet: informers for its pods (and what they reference), a worker per pod, housekeeping.

Wiring:

* Pods: an informer with field selector `spec.nodeName=<node>` — only this node's pods reach
  the process. Its handlers only hand the latest object to the pod's worker (keyed by uid, so a
  pod deleted and re-created under the same name gets a new worker and never the old
  containers).
* ConfigMaps, Secrets, Services, PersistentVolumeClaims and PersistentVolumes: informers whose
  stores answer the workers' lookups without a round trip; a change to a ConfigMap, Secret or
  claim wakes the workers of its namespace (a PersistentVolume: all workers), which re-project
  volumes (atomically, only when the content changed) or mount a claim that became bound.
* Housekeeping, after the pod informer has synced and then every `housekeeping_interval`:
  containers in the runtime whose pod uid has no worker and is not a pod of this node (the pod
  was deleted while the kubelet was down) get a worker with no pod, which stops and removes
  them. This is also how a restarted kubelet adopts running pods: their workers find the
  containers by label and carry on, restart counts included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.informer import Informer
from bosun.kubelet import labels as L
from bosun.kubelet import metrics
from bosun.kubelet.context import KubeletContext
from bosun.kubelet.podworker import PodWorker

log = logging.getLogger(__name__)


class PodWorkers:
    """The set of pod workers, by pod uid; starts and reaps them."""

    def __init__(self, ctx: KubeletContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, PodWorker] = {}

    def update(self, uid: str, pod: core_pb2.Pod | None) -> None:
        worker = self.workers.get(uid)
        if worker is None or worker.finished.is_set():
            worker = PodWorker(self.ctx, uid, pod)
            self.workers[uid] = worker
            metrics.RUNNING_PODS.set(len(self.workers))
            worker.start()
            asyncio.get_running_loop().create_task(self._reap(uid, worker))
        else:
            worker.update(pod)

    async def _reap(self, uid: str, worker: PodWorker) -> None:
        await worker.finished.wait()
        if self.workers.get(uid) is worker:
            del self.workers[uid]
            metrics.RUNNING_PODS.set(len(self.workers))

    def wake_all(self) -> None:
        for worker in self.workers.values():
            worker.wake()

    def wake_namespace(self, namespace: str) -> None:
        for worker in self.workers.values():
            if worker.pod is not None and worker.pod.metadata.namespace == namespace:
                worker.wake()

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())))
        self.workers.clear()


def store_lookup(informer: Informer[Any]) -> Any:
    def lookup(namespace: str, name: str) -> Any:
        return informer.store.get_by_name(name, namespace)

    return lookup


class Kubelet:
    def __init__(
        self,
        ctx: KubeletContext,
        client: Client,
        *,
        pods: Informer[core_pb2.Pod],
        config_maps: Informer[core_pb2.ConfigMap],
        secrets: Informer[core_pb2.Secret],
        services: Informer[core_pb2.Service],
        claims: Informer[core_pb2.PersistentVolumeClaim] | None = None,
        volumes: Informer[core_pb2.PersistentVolume] | None = None,
        housekeeping_interval: float = 10.0,
    ) -> None:
        self.ctx = ctx
        self.client = client
        self.pods = pods
        self.config_maps = config_maps
        self.secrets = secrets
        self.services = services
        self.claims = claims
        self.volumes = volumes
        self.housekeeping_interval = housekeeping_interval
        self.workers = PodWorkers(ctx)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, ctx_factory: Any, client: Client, node_name: str, **kwargs: Any) -> Kubelet:
        """Informers for `node_name`; `ctx_factory(lookups)` makes the context from them."""
        pods: Informer[core_pb2.Pod] = Informer(
            client.pods, field_selector=f"spec.nodeName={node_name}"
        )
        config_maps: Informer[core_pb2.ConfigMap] = Informer(client.config_maps)
        secrets: Informer[core_pb2.Secret] = Informer(client.secrets)
        services: Informer[core_pb2.Service] = Informer(client.services)
        claims: Informer[core_pb2.PersistentVolumeClaim] = Informer(
            client.resource("PersistentVolumeClaim")
        )
        volumes: Informer[core_pb2.PersistentVolume] = Informer(client.resource("PersistentVolume"))

        def services_in(namespace: str) -> Iterable[core_pb2.Service]:
            return services.store.list(namespace)

        ctx = ctx_factory(
            config_map=store_lookup(config_maps),
            secret=store_lookup(secrets),
            services=services_in,
            claim=store_lookup(claims),
            volume=store_lookup(volumes),
        )
        return cls(
            ctx,
            client,
            pods=pods,
            config_maps=config_maps,
            secrets=secrets,
            services=services,
            claims=claims,
            volumes=volumes,
            **kwargs,
        )

    def _sources(self) -> list[Informer[Any]]:
        found: list[Informer[Any]] = [self.config_maps, self.secrets, self.services]
        return found + [i for i in (self.claims, self.volumes) if i is not None]

    async def start(self) -> None:
        for informer in self._sources():
            informer.start()
        for informer in self._sources():
            await informer.wait_for_sync()
        for source in (self.config_maps, self.secrets, self.claims):
            if source is None:
                continue
            source.add_handler(
                on_update=lambda old, new: self.workers.wake_namespace(new.metadata.namespace),
                on_add=lambda obj: self.workers.wake_namespace(obj.metadata.namespace),
            )
        if self.volumes is not None:  # a PersistentVolume concerns pods of any namespace
            self.volumes.add_handler(
                on_update=lambda old, new: self.workers.wake_all(),
                on_add=lambda obj: self.workers.wake_all(),
            )
        self.pods.add_handler(
            on_add=lambda pod: self.workers.update(pod.metadata.uid, pod),
            on_update=lambda old, new: self.workers.update(new.metadata.uid, new),
            on_delete=lambda pod: self.workers.update(pod.metadata.uid, None),
        )
        self.pods.start()
        await self.pods.wait_for_sync()
        self._task = asyncio.create_task(self._housekeeping(), name="kubelet-housekeeping")

    async def stop(self) -> None:
        """Stop watching and working; containers keep running (the next kubelet adopts them)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for informer in [self.pods, *self._sources()]:
            await informer.stop()
        await self.workers.stop()

    async def _housekeeping(self) -> None:
        while True:
            try:
                await self.collect_orphans()
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(self.housekeeping_interval)

    async def collect_orphans(self) -> None:
        """Give containers of pods that are no longer this node's a worker that removes them."""
        known = {pod.metadata.uid for pod in self.pods.store.list()}
        records = await self.ctx.runtime.list_containers()
        for uid in {r.labels.get(L.POD_UID, "") for r in records} - known - {""}:
            if uid not in self.workers.workers:
                log.info("pod %s is gone; removing its containers", uid)
                self.workers.update(uid, None)
