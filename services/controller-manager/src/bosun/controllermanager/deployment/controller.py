"""Deployment controller: rolls a Deployment's pods from one template to the next.

sync(namespace/name), from the caches:

1. Claim ReplicaSets (adopt matching orphans, release ones that stopped matching).
2. Find the new set — the one whose template equals the Deployment's, ignoring the
   pod-template-hash label — and the old ones; stamp the new set with the next revision.
3. Paused: only scale (a `replicas` change) and keep history; no rollout.
   A scaling event (replicas differ from what the active sets were last scaled for): spread the
   change over the active sets in proportion to their size, and do nothing else this sync.
   Otherwise roll out:
   * RollingUpdate: create the new set if needed, scale it up within maxSurge, scale old sets
     down within maxUnavailable (`rolling.py`); one step per sync, each step waiting for the
     ReplicaSet controller to report the pods it made available;
   * Recreate: scale every old set to 0, wait until their pods are gone, then create and scale
     the new set.
4. When the rollout is complete, delete old sets beyond `revisionHistoryLimit`.
5. Write status with the Available and Progressing conditions; when a deadline is running,
   sync again when it would expire (nothing else would wake us).

Writes go through Update with the resourceVersion read from the cache, so a stale cache makes
the write fail with a conflict and the sync is retried from fresh state; scaling a set twice from
one stale view is impossible. The new set is created with a deterministic name
(`<deployment>-<hash>`): a second attempt from a cache that has not seen the first is
AlreadyExists, resolved by reading the existing set. Rollback (`bosunctl rollout undo`) needs no
controller support: it copies an old set's template back into the Deployment, which then rolls
out like any other change and re-uses (and re-numbers) the old set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.common.errors import AlreadyExistsError, ConflictError, NotFoundError
from bosun.common.informer import Informer, object_key
from bosun.common.selectors import LabelSelector
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller, split_key
from bosun.controllermanager.deployment import rolling, status, util
from bosun.controllermanager.informers import OWNER_INDEX
from bosun.controllermanager.ownership import (
    claim,
    claim_candidates,
    controller_ref,
    new_controller_ref,
    owner_key,
    selecting_owners,
)

log = logging.getLogger(__name__)

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet
Pod = core_pb2.Pod


class _Collision(Exception):
    """The new set's name belongs to a set with another template; retried with a new hash."""


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.deployments: Informer[Deployment] = context.informers.informer("Deployment")
        self.sets: Informer[ReplicaSet] = context.informers.informer("ReplicaSet")
        self.pods: Informer[Pod] = context.informers.informer("Pod")
        self.deployments.add_handler(
            on_add=self._deployment_changed,
            on_update=lambda old, new: self._deployment_changed(new),
            on_delete=self._deployment_changed,
        )
        self.sets.add_handler(
            on_add=self._set_added, on_update=self._set_updated, on_delete=self._set_deleted
        )
        self.pods.add_handler(on_delete=self._pod_deleted)

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.deployments, self.sets, self.pods)

    # ------------------------------------------------------------------ handlers

    def _deployment_changed(self, deployment: Deployment) -> None:
        self.enqueue(object_key(deployment))

    def _owner_key(self, rs: ReplicaSet) -> str | None:
        return owner_key(rs, "Deployment", self.deployments.store)

    def _enqueue_matching(self, rs: ReplicaSet) -> None:
        for key in selecting_owners(rs, self.deployments.store):
            self.enqueue(key)

    def _set_added(self, rs: ReplicaSet) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.enqueue(key)
        elif controller_ref(rs) is None:
            self._enqueue_matching(rs)

    def _set_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.enqueue(old_key)
        if new_key is not None:
            self.enqueue(new_key)
        elif controller_ref(new) is None:
            self._enqueue_matching(new)

    def _set_deleted(self, rs: ReplicaSet) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.enqueue(key)

    def _pod_deleted(self, pod: Pod) -> None:
        # Only Recreate waits for pods (old pods must be gone before new ones start).
        set_key = owner_key(pod, "ReplicaSet", self.sets.store)
        rs = self.sets.store.get(set_key) if set_key else None
        if rs is None:
            return
        key = self._owner_key(rs)
        deployment = self.deployments.store.get(key) if key else None
        if key and deployment is not None and not util.is_rolling(deployment):
            self.enqueue(key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.deployments.store.get(key)
        if cached is None:
            return
        deployment = Deployment()
        deployment.CopyFrom(cached)
        selector = LabelSelector.from_proto(deployment.spec.selector)
        if selector.is_empty:
            self.recorder.record(
                deployment, "Warning", "SelectingAll", "This deployment is selecting all pods."
            )
            return
        sets = await self._claim_sets(key, deployment, selector)
        if deployment.metadata.HasField("deletion_timestamp"):
            new, _ = self._split(deployment, sets)
            await self._write_status(deployment, sets, new, progress=False)
            return
        if await self._paused_condition(deployment):
            return  # the status write wakes us again with the new condition
        if deployment.spec.paused:
            await self._scale_and_record(deployment, sets, paused=True)
            return
        if rolling.is_scaling_event(deployment, sets):
            await self._scale_and_record(deployment, sets, paused=False)
            return
        if util.is_rolling(deployment):
            await self._rollout_rolling(key, deployment, sets)
        else:
            await self._rollout_recreate(key, deployment, sets)

    async def _claim_sets(
        self, key: str, deployment: Deployment, selector: LabelSelector
    ) -> list[ReplicaSet]:
        namespace, name = split_key(key)

        async def can_adopt() -> bool:
            try:
                fresh = await self.client.deployments.get(name, namespace=namespace)
            except NotFoundError:
                return False
            return fresh.metadata.uid == deployment.metadata.uid and not fresh.metadata.HasField(
                "deletion_timestamp"
            )

        candidates = claim_candidates(deployment, self.sets.store)
        return await claim(
            deployment, selector, candidates, self.client.replica_sets, can_adopt=can_adopt
        )

    @staticmethod
    def _split(
        deployment: Deployment, sets: Sequence[ReplicaSet]
    ) -> tuple[ReplicaSet | None, list[ReplicaSet]]:
        """(the set whose template is the Deployment's — the oldest if several — , the others)."""
        new: ReplicaSet | None = None
        for rs in util.by_creation(list(sets)):
            if util.templates_equal(rs.spec.template, deployment.spec.template):
                new = rs
                break
        olds = [rs for rs in sets if new is None or rs.metadata.uid != new.metadata.uid]
        return new, olds

    # ------------------------------------------------------------------ new set and revision

    async def _new_and_old(
        self, deployment: Deployment, sets: Sequence[ReplicaSet], *, create: bool
    ) -> tuple[Deployment, ReplicaSet | None, list[ReplicaSet]]:
        """The new set (created when `create`), the old sets, and the Deployment as updated."""
        new, olds = self._split(deployment, sets)
        next_revision = util.max_revision(olds) + 1
        if new is not None:
            new = await self._stamp_existing(deployment, new, next_revision)
        elif create:
            new = await self._create_new_set(deployment, olds, next_revision)
        if new is not None:
            deployment = await self._stamp_deployment(deployment, util.revision(new))
        return deployment, new, olds

    async def _stamp_existing(
        self, deployment: Deployment, rs: ReplicaSet, next_revision: int
    ) -> ReplicaSet:
        updated = ReplicaSet()
        updated.CopyFrom(rs)
        changed = util.copy_annotations(deployment, updated)
        old_revision = util.revision(rs)
        if old_revision < next_revision:
            updated.metadata.annotations[util.REVISION] = str(next_revision)
            if old_revision > 0:  # a rollback re-used this set: remember its earlier number
                history = updated.metadata.annotations.get(util.REVISION_HISTORY, "")
                entries = [entry for entry in history.split(",") if entry]
                updated.metadata.annotations[util.REVISION_HISTORY] = ",".join(
                    [*entries, str(old_revision)]
                )
            changed = True
        if updated.spec.min_ready_seconds != deployment.spec.min_ready_seconds:
            updated.spec.min_ready_seconds = deployment.spec.min_ready_seconds
            changed = True
        if not changed:
            return rs
        return await self.client.replica_sets.update(updated)

    async def _create_new_set(
        self, deployment: Deployment, olds: list[ReplicaSet], next_revision: int
    ) -> ReplicaSet:
        collisions = (
            deployment.status.collision_count
            if deployment.status.HasField("collision_count")
            else 0
        )
        pod_hash = util.template_hash(deployment.spec.template, collisions)
        rs = ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
        rs.metadata.name = f"{deployment.metadata.name}-{pod_hash}"
        rs.metadata.namespace = deployment.metadata.namespace
        rs.metadata.labels.update(deployment.spec.template.metadata.labels)
        rs.metadata.labels[util.POD_TEMPLATE_HASH] = pod_hash
        rs.metadata.owner_references.append(new_controller_ref(deployment))
        util.copy_annotations(deployment, rs)
        rs.metadata.annotations[util.REVISION] = str(next_revision)
        rs.spec.selector.CopyFrom(deployment.spec.selector)
        rs.spec.selector.match_labels[util.POD_TEMPLATE_HASH] = pod_hash
        rs.spec.template.CopyFrom(deployment.spec.template)
        rs.spec.template.metadata.labels[util.POD_TEMPLATE_HASH] = pod_hash
        rs.spec.min_ready_seconds = deployment.spec.min_ready_seconds
        rs.spec.replicas = 0
        rs.spec.replicas = rolling.new_set_replicas(deployment, olds, rs)
        util.set_replica_annotations(deployment, rs)
        try:
            created = await self.client.replica_sets.create(rs)
        except AlreadyExistsError:
            existing = await self.client.replica_sets.get(
                rs.metadata.name, namespace=rs.metadata.namespace
            )
            ref = controller_ref(existing)
            if (
                ref is not None
                and ref.uid == deployment.metadata.uid
                and util.templates_equal(existing.spec.template, deployment.spec.template)
            ):
                return existing  # ours, created by an earlier sync our cache has not seen
            await self._bump_collision_count(deployment)
            raise _Collision(
                f"ReplicaSet {rs.metadata.name} exists with another template"
            ) from None
        if created.spec.replicas > 0:
            self.recorder.record(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled up replica set {created.metadata.name} to {created.spec.replicas}",
            )
        return created

    async def _bump_collision_count(self, deployment: Deployment) -> None:
        updated = Deployment()
        updated.CopyFrom(deployment)
        updated.status.collision_count = deployment.status.collision_count + 1
        await self.client.deployments.update_status(updated)

    async def _stamp_deployment(self, deployment: Deployment, revision: int) -> Deployment:
        if deployment.metadata.annotations.get(util.REVISION) == str(revision):
            return deployment
        updated = Deployment()
        updated.CopyFrom(deployment)
        updated.metadata.annotations[util.REVISION] = str(revision)
        return await self.client.deployments.update(updated)

    # ------------------------------------------------------------------ scaling

    async def _scale(self, deployment: Deployment, rs: ReplicaSet, replicas: int) -> ReplicaSet:
        """Write `replicas` (and the replica annotations) to `rs`; an event when the size moves."""
        updated = ReplicaSet()
        updated.CopyFrom(rs)
        updated.spec.replicas = replicas
        annotations_changed = util.set_replica_annotations(deployment, updated)
        if replicas == rs.spec.replicas and not annotations_changed:
            return rs
        written = await self.client.replica_sets.update(updated)
        if replicas != rs.spec.replicas:
            direction = "up" if replicas > rs.spec.replicas else "down"
            self.recorder.record(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs.metadata.name} to {replicas} "
                f"from {rs.spec.replicas}",
            )
        return written

    async def _apply(
        self, deployment: Deployment, sets: Sequence[ReplicaSet], sizes: dict[str, int]
    ) -> bool:
        changed = False
        for rs in sets:
            size = sizes.get(rs.metadata.name)
            if size is not None and size != rs.spec.replicas:
                await self._scale(deployment, rs, size)
                changed = True
        return changed

    async def _scale_and_record(
        self, deployment: Deployment, sets: list[ReplicaSet], *, paused: bool
    ) -> None:
        """Apply a `replicas` change to the active sets (Kubernetes' `sync`), then status."""
        deployment, new, olds = await self._new_and_old(deployment, sets, create=False)
        actives = util.active([rs for rs in (*olds, new) if rs is not None])
        if len(actives) <= 1:
            newest = util.by_creation(olds)[-1] if olds else None
            target = actives[0] if actives else new or newest
            if target is not None and (
                target.spec.replicas != deployment.spec.replicas
                or util.annotated_int(target, util.DESIRED_REPLICAS) != deployment.spec.replicas
            ):
                await self._scale(deployment, target, deployment.spec.replicas)
        elif new is not None and self._saturated(deployment, new):
            for rs in util.active(olds):
                await self._scale(deployment, rs, 0)
        elif util.is_rolling(deployment):
            sizes = rolling.proportional_scale(deployment, new, olds)
            for rs in actives:
                await self._scale(deployment, rs, sizes.get(rs.metadata.name, rs.spec.replicas))
        if paused:
            await self._cleanup(deployment, olds)
        await self._write_status(deployment, sets, new, progress=False)

    @staticmethod
    def _saturated(deployment: Deployment, new: ReplicaSet) -> bool:
        replicas = deployment.spec.replicas
        return (
            new.spec.replicas == replicas
            and util.annotated_int(new, util.DESIRED_REPLICAS) == replicas
            and new.status.available_replicas == replicas
        )

    # ------------------------------------------------------------------ strategies

    async def _rollout_rolling(
        self, key: str, deployment: Deployment, sets: list[ReplicaSet]
    ) -> None:
        deployment, new, olds = await self._new_and_old(deployment, sets, create=True)
        assert new is not None
        all_sets = [*olds, new]
        replicas = deployment.spec.replicas
        if new.spec.replicas != replicas:
            target = (
                replicas
                if new.spec.replicas > replicas
                else rolling.new_set_replicas(deployment, all_sets, new)
            )
            if target != new.spec.replicas:
                await self._scale(deployment, new, target)
                await self._write_status(deployment, all_sets, new, progress=True, key=key)
                return
        plan = rolling.old_sets_scale_down(deployment, olds, new)
        if await self._apply(deployment, olds, plan):
            await self._write_status(deployment, all_sets, new, progress=True, key=key)
            return
        computed = status.calculate(deployment, all_sets, new, now=datetime.now(UTC))
        if status.complete(deployment, computed):
            await self._cleanup(deployment, olds)
        await self._write_status(deployment, all_sets, new, progress=True, key=key)

    async def _rollout_recreate(
        self, key: str, deployment: Deployment, sets: list[ReplicaSet]
    ) -> None:
        deployment, new, olds = await self._new_and_old(deployment, sets, create=False)
        scaled = False
        for rs in util.active(olds):
            await self._scale(deployment, rs, 0)
            scaled = True
        if scaled or self._old_pods_exist(olds):
            await self._write_status(deployment, sets, new, progress=True, key=key)
            return
        if new is None:
            deployment, new, olds = await self._new_and_old(deployment, sets, create=True)
            assert new is not None
        if new.spec.replicas != deployment.spec.replicas:
            new = await self._scale(deployment, new, deployment.spec.replicas)
        all_sets = [*olds, new]
        computed = status.calculate(deployment, all_sets, new, now=datetime.now(UTC))
        if status.complete(deployment, computed):
            await self._cleanup(deployment, olds)
        await self._write_status(deployment, all_sets, new, progress=True, key=key)

    def _old_pods_exist(self, olds: Sequence[ReplicaSet]) -> bool:
        for rs in olds:
            for pod in self.pods.store.by_index(OWNER_INDEX, rs.metadata.uid):
                if pod.status.phase not in ("Succeeded", "Failed"):
                    return True
        return False

    # ------------------------------------------------------------------ history

    async def _cleanup(self, deployment: Deployment, olds: Sequence[ReplicaSet]) -> None:
        """Delete the oldest unused sets beyond revisionHistoryLimit."""
        limit = (
            deployment.spec.revision_history_limit
            if deployment.spec.HasField("revision_history_limit")
            else 10
        )
        alive = [rs for rs in olds if not rs.metadata.HasField("deletion_timestamp")]
        excess = len(alive) - limit
        if excess <= 0:
            return
        cleanable = [
            rs
            for rs in sorted(alive, key=util.revision)
            if rs.spec.replicas == 0
            and rs.status.replicas == 0
            and rs.status.observed_generation >= rs.metadata.generation
        ]
        for rs in cleanable[:excess]:
            try:
                await self.client.replica_sets.delete(
                    rs.metadata.name, namespace=rs.metadata.namespace, uid=rs.metadata.uid
                )
            except NotFoundError:
                continue

    # ------------------------------------------------------------------ status

    async def _paused_condition(self, deployment: Deployment) -> bool:
        """Mark a pause or resume on the Progressing condition; True when status was written."""
        if status.deadline(deployment) is None:
            return False
        current = status.condition(deployment.status, status.PROGRESSING)
        now = datetime.now(UTC)
        updated = Deployment()
        updated.CopyFrom(deployment)
        if deployment.spec.paused and (current is None or current.reason != status.PAUSED):
            status.set_condition(
                updated.status,
                status.PROGRESSING,
                "Unknown",
                status.PAUSED,
                "Deployment is paused",
                now=now,
            )
        elif not deployment.spec.paused and current is not None and current.reason == status.PAUSED:
            status.set_condition(
                updated.status,
                status.PROGRESSING,
                "Unknown",
                status.RESUMED,
                "Deployment is resumed",
                now=now,
            )
        else:
            return False
        await self.client.deployments.update_status(updated)
        return True

    async def _write_status(
        self,
        deployment: Deployment,
        sets: Sequence[ReplicaSet],
        new: ReplicaSet | None,
        *,
        progress: bool,
        key: str = "",
    ) -> None:
        now = datetime.now(UTC)
        computed = status.calculate(deployment, sets, new, now=now)
        if progress:
            status.rollout_progress(deployment, computed, new, now=now)
        if computed != deployment.status:
            updated = Deployment()
            updated.CopyFrom(deployment)
            updated.status.CopyFrom(computed)
            try:
                await self.client.deployments.update_status(updated)
            except (NotFoundError, ConflictError):
                # Gone, or changed since we read it: the change brings another sync.
                return
        if progress and key and not status.complete(deployment, computed):
            left = status.seconds_left(deployment, computed, now)
            if left is not None:
                self.enqueue_after(key, max(left, 0.0) + 0.5)
