"""ReplicaSet controller: keeps `spec.replicas` pods matching the selector, owned by the set.

sync(namespace/name), from the caches:

1. Claim pods (see `ownership.claim`): adopt matching orphans, release owned pods that stopped
   matching. Only active pods (not finished, not being deleted) count as replicas.
2. If the set's expectations are satisfied (every create and delete of earlier syncs has been
   seen by the pod informer), create or delete the difference:
   * creations go in slow-start batches of 1, 2, 4, … and stop at the first batch with a failure,
     so a template the apiserver refuses costs one request, not `replicas`;
   * deletions take the least valuable pods first (`podutil.deletion_order`);
   * at most `burst_replicas` either way per sync; the rest happens in the next sync.
   Expectations are raised *before* the writes and lowered again for writes that failed or
   were skipped, so the informer events of the successful ones always find them.
3. Write status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration) when it changed. A pod that is ready but not yet available (minReadySeconds)
   schedules another sync for the moment it becomes available: no event would announce it.

Handlers map pod events to owning sets: a pod with a controller reference wakes its owner (and
counts toward its expectations); an orphan wakes every set whose selector matches it, one of
which will adopt it; a relabelled pod wakes its old and new sets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.common.errors import ApiError, ConflictError, NotFoundError
from bosun.common.informer import Informer, object_key
from bosun.common.selectors import LabelSelector
from bosun.controllermanager import podutil
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller, split_key
from bosun.controllermanager.expectations import Expectations
from bosun.controllermanager.ownership import (
    claim,
    claim_candidates,
    controller_ref,
    new_controller_ref,
    owner_key,
    selecting_owners,
)

log = logging.getLogger(__name__)

ReplicaSet = apps_pb2.ReplicaSet
Pod = core_pb2.Pod


def pod_from_template(owner: Any, template: core_pb2.PodTemplateSpec) -> Pod:
    """A new pod for `owner` (a ReplicaSet): its template, a generated name, our controller ref."""
    pod = Pod(api_version="v1", kind="Pod")
    pod.metadata.CopyFrom(template.metadata)
    pod.metadata.name = ""
    pod.metadata.generate_name = f"{owner.metadata.name}-"
    pod.metadata.namespace = owner.metadata.namespace
    del pod.metadata.owner_references[:]
    pod.metadata.owner_references.append(new_controller_ref(owner))
    pod.spec.CopyFrom(template.spec)
    return pod


def slow_start_batches(total: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, … summing to `total`."""
    batches: list[int] = []
    size = initial
    remaining = total
    while remaining > 0:
        batch = min(size, remaining)
        batches.append(batch)
        remaining -= batch
        size *= 2
    return batches


class ReplicaSetController(Controller):
    name = "replicaset"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.burst_replicas = context.options.burst_replicas
        self.expectations = Expectations(ttl=context.options.expectations_ttl)
        self.sets: Informer[ReplicaSet] = context.informers.informer("ReplicaSet")
        self.pods: Informer[Pod] = context.informers.informer("Pod")
        self.sets.add_handler(
            on_add=self._set_changed,
            on_update=lambda old, new: self._set_changed(new),
            on_delete=self._set_deleted,
        )
        self.pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.sets, self.pods)

    # ------------------------------------------------------------------ handlers

    def _set_changed(self, rs: ReplicaSet) -> None:
        self.enqueue(object_key(rs))

    def _set_deleted(self, rs: ReplicaSet) -> None:
        key = object_key(rs)
        self.expectations.forget(key)
        self.enqueue(key)

    def _owner_key(self, pod: Pod) -> str | None:
        return owner_key(pod, "ReplicaSet", self.sets.store)

    def _enqueue_matching(self, pod: Pod) -> None:
        for key in selecting_owners(pod, self.sets.store):
            self.enqueue(key)

    def _pod_added(self, pod: Pod) -> None:
        if pod.metadata.HasField("deletion_timestamp"):
            # Restarted controller saw a pod already being deleted: a deletion, not a creation.
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if new.metadata.HasField("deletion_timestamp") and not old.metadata.HasField(
            "deletion_timestamp"
        ):
            # A graceful delete starts: the pod stops counting now, not when it is removed.
            self._pod_deleted(new)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.enqueue(old_key)
        if new_key is not None:
            self.enqueue(new_key)
            rs = self.sets.store.get(new_key)
            if rs is not None and rs.spec.min_ready_seconds > 0:
                delay = podutil.available_in(new, rs.spec.min_ready_seconds, podutil.now_seconds())
                if delay is not None:
                    self.enqueue_after(new_key, delay + 0.01)
        elif controller_ref(new) is None and (
            old.metadata.labels != new.metadata.labels or controller_ref(old) is not None
        ):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        rs = self.sets.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        namespace, name = split_key(key)
        selector = LabelSelector.from_proto(rs.spec.selector)
        if selector.is_empty:
            log.warning("ReplicaSet %s has an empty selector; it selects nothing", key)
            return
        candidates = [
            pod for pod in claim_candidates(rs, self.pods.store) if podutil.is_active(pod)
        ]

        async def can_adopt() -> bool:
            try:
                fresh = await self.client.replica_sets.get(name, namespace=namespace)
            except NotFoundError:
                return False
            return fresh.metadata.uid == rs.metadata.uid and not fresh.metadata.HasField(
                "deletion_timestamp"
            )

        pods = await claim(rs, selector, candidates, self.client.pods, can_adopt=can_adopt)
        if self.expectations.satisfied(key) and not rs.metadata.HasField("deletion_timestamp"):
            await self._manage_replicas(key, rs, pods)
        await self._update_status(rs, pods)

    async def _manage_replicas(self, key: str, rs: ReplicaSet, pods: list[Pod]) -> None:
        diff = len(pods) - rs.spec.replicas
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, self.burst_replicas))
        elif diff > 0:
            victims = podutil.deletion_order(pods)[: min(diff, self.burst_replicas)]
            await self._delete_pods(key, rs, victims)

    async def _create_pods(self, key: str, rs: ReplicaSet, count: int) -> None:
        self.expectations.expect_creations(key, count)
        attempted = 0
        failure: ApiError | None = None
        for batch in slow_start_batches(count):
            attempted += batch
            results = await asyncio.gather(
                *(self._create_one(rs) for _ in range(batch)), return_exceptions=True
            )
            for result in results:
                if isinstance(result, ApiError):
                    failure = result
                    self.expectations.creation_observed(key)  # this one will never be seen
                elif isinstance(result, BaseException):
                    raise result
            if failure is not None:
                break
        for _ in range(count - attempted):  # batches never started will not be seen either
            self.expectations.creation_observed(key)
        if failure is not None:
            self.recorder.record(rs, "Warning", "FailedCreate", f"Error creating: {failure}")
            raise failure

    async def _create_one(self, rs: ReplicaSet) -> Pod:
        created = await self.client.pods.create(pod_from_template(rs, rs.spec.template))
        self.recorder.record(
            rs, "Normal", "SuccessfulCreate", f"Created pod: {created.metadata.name}"
        )
        return created

    async def _delete_pods(self, key: str, rs: ReplicaSet, victims: list[Pod]) -> None:
        self.expectations.expect_deletions(key, [object_key(pod) for pod in victims])
        results = await asyncio.gather(
            *(self._delete_one(rs, pod) for pod in victims), return_exceptions=True
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        for pod, result in zip(victims, results, strict=True):
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, object_key(pod))
        if errors:
            raise errors[0]

    async def _delete_one(self, rs: ReplicaSet, pod: Pod) -> None:
        try:
            await self.client.pods.delete(
                pod.metadata.name, namespace=pod.metadata.namespace, uid=pod.metadata.uid
            )
        except NotFoundError:
            return
        except ApiError as error:
            self.recorder.record(
                rs, "Warning", "FailedDelete", f"Error deleting pod {pod.metadata.name}: {error}"
            )
            raise
        self.recorder.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

    # ------------------------------------------------------------------ status

    async def _update_status(self, rs: ReplicaSet, pods: list[Pod]) -> None:
        now = podutil.now_seconds()
        template_labels = rs.spec.template.metadata.labels
        status = apps_pb2.ReplicaSetStatus()
        status.CopyFrom(rs.status)
        status.replicas = len(pods)
        status.fully_labeled_replicas = sum(
            1
            for pod in pods
            if all(pod.metadata.labels.get(k) == v for k, v in template_labels.items())
        )
        status.ready_replicas = sum(1 for pod in pods if podutil.is_ready(pod))
        status.available_replicas = sum(
            1 for pod in pods if podutil.is_available(pod, rs.spec.min_ready_seconds, now)
        )
        status.observed_generation = rs.metadata.generation
        if status != rs.status:
            updated = ReplicaSet()
            updated.CopyFrom(rs)
            updated.status.CopyFrom(status)
            try:
                await self.client.replica_sets.update_status(updated)
            except (NotFoundError, ConflictError):
                return  # gone, or changed since read: that change brings the next sync
        if rs.spec.min_ready_seconds > 0 and status.ready_replicas != status.available_replicas:
            delays = [
                delay
                for pod in pods
                if (delay := podutil.available_in(pod, rs.spec.min_ready_seconds, now)) is not None
            ]
            if delays:
                self.enqueue_after(object_key(rs), min(delays) + 0.01)
