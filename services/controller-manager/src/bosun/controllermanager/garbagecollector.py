"""Garbage collector: deletes objects whose owners are gone, and runs cascading deletion.

The ownership graph is the `owner` index of every kind's informer (owner uid → dependents), so
the collector keeps no graph of its own; it watches every kind but Events. Keys are
`Kind|namespace|name`. What `sync` does depends on the object:

* Being deleted with the `orphan` finalizer (propagationPolicy=Orphan): remove this owner from
  every dependent's ownerReferences, then remove the finalizer (the apiserver then deletes it).
* Being deleted with the `foregroundDeletion` finalizer (propagationPolicy=Foreground): wake
  every dependent (each sees its owner "waiting for dependents" and deletes itself, in the
  foreground too when it has dependents of its own); once no dependent with
  `blockOwnerDeletion` is left, remove the finalizer.
* Otherwise, with owner references: classify each owner as solid (exists), dangling (absent,
  or present with another uid) or waiting (being deleted in the foreground). With a solid owner
  the object stays (references to dangling/waiting owners are removed). Without one it is
  deleted: in the foreground when an owner waits on it, otherwise as its own finalizers ask
  (background by default — so a background delete of a Deployment removes its ReplicaSets, and
  each ReplicaSet's removal in turn its pods).

An owner missing from the cache is looked up live before anything is deleted: the cache may
simply not have seen an owner created a moment ago, and deleting a dependent is not undoable.
Deletes carry the dependent's uid as a precondition, so a re-created namesake is never hit.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any, Literal

from bosun.common import kinds
from bosun.common.errors import NotFoundError
from bosun.common.informer import Informer
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller
from bosun.controllermanager.informers import OWNER_INDEX
from bosun.controllermanager.ownership import owner_refs_patch

log = logging.getLogger(__name__)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED_KINDS = frozenset({"Event"})

OwnerState = Literal["solid", "dangling", "waiting"]


def gc_key(kind: str, obj: Any) -> str:
    return f"{kind}|{obj.metadata.namespace}|{obj.metadata.name}"


def _deleting(obj: Any) -> bool:
    return bool(obj.metadata.HasField("deletion_timestamp"))


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, context: ControllerContext, *, kind_names: Sequence[str] = ()) -> None:
        super().__init__(context, workers=max(context.options.workers, 4))
        names = kind_names or [kind for kind in kinds.KINDS if kind not in IGNORED_KINDS]
        self._informers: dict[str, Informer[Any]] = {}
        for kind in names:
            informer = context.informers.informer(kind)
            self._informers[kind] = informer
            informer.add_handler(
                on_add=functools.partial(self._added, kind),
                on_update=functools.partial(self._updated, kind),
                on_delete=functools.partial(self._deleted, kind),
            )

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return list(self._informers.values())

    # ------------------------------------------------------------------ graph

    def dependents(self, owner: Any) -> list[tuple[str, Any]]:
        """(kind, object) of every cached object with an owner reference to `owner`."""
        uid = owner.metadata.uid
        namespace = owner.metadata.namespace
        found: list[tuple[str, Any]] = []
        for kind, informer in self._informers.items():
            for obj in informer.store.by_index(OWNER_INDEX, uid):
                if not namespace or obj.metadata.namespace == namespace:
                    found.append((kind, obj))
        return found

    # ------------------------------------------------------------------ handlers

    def _added(self, kind: str, obj: Any) -> None:
        if obj.metadata.owner_references or self._has_gc_finalizer(obj):
            self.enqueue(gc_key(kind, obj))

    def _updated(self, kind: str, old: Any, new: Any) -> None:
        started_deleting = _deleting(new) and not _deleting(old)
        refs_changed = list(old.metadata.owner_references) != list(new.metadata.owner_references)
        finalizers_changed = list(old.metadata.finalizers) != list(new.metadata.finalizers)
        relevant = new.metadata.owner_references or self._has_gc_finalizer(new)
        if (started_deleting or refs_changed or finalizers_changed) and relevant:
            self.enqueue(gc_key(kind, new))
        if started_deleting and FOREGROUND in new.metadata.finalizers:
            for dep_kind, dependent in self.dependents(new):
                self.enqueue(gc_key(dep_kind, dependent))

    def _deleted(self, kind: str, obj: Any) -> None:
        for dep_kind, dependent in self.dependents(obj):
            self.enqueue(gc_key(dep_kind, dependent))
        # An owner deleting in the foreground may be waiting for exactly this object.
        for ref in obj.metadata.owner_references:
            owner = self._cached_owner(obj, ref)
            if owner is not None and FOREGROUND in owner.metadata.finalizers:
                self.enqueue(gc_key(ref.kind, owner))

    @staticmethod
    def _has_gc_finalizer(obj: Any) -> bool:
        return _deleting(obj) and (
            ORPHAN in obj.metadata.finalizers or FOREGROUND in obj.metadata.finalizers
        )

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        kind, namespace, name = key.split("|", 2)
        informer = self._informers.get(kind)
        if informer is None:
            return
        obj = informer.store.get_by_name(name, namespace)
        if obj is None:
            return
        if _deleting(obj):
            if ORPHAN in obj.metadata.finalizers:
                await self._orphan_dependents(obj)
                await self._remove_finalizer(kind, obj, ORPHAN)
            elif FOREGROUND in obj.metadata.finalizers:
                await self._delete_dependents_first(kind, obj)
            return
        if obj.metadata.owner_references:
            await self._collect_if_orphaned(kind, obj)

    async def _orphan_dependents(self, owner: Any) -> None:
        uid = owner.metadata.uid
        for kind, dependent in self.dependents(owner):
            refs = [ref for ref in dependent.metadata.owner_references if ref.uid != uid]
            await self._patch_owner_refs(kind, dependent, refs)

    async def _delete_dependents_first(self, kind: str, owner: Any) -> None:
        uid = owner.metadata.uid
        blocking = 0
        for dep_kind, dependent in self.dependents(owner):
            ref = next(ref for ref in dependent.metadata.owner_references if ref.uid == uid)
            if ref.HasField("block_owner_deletion") and ref.block_owner_deletion:
                blocking += 1
            self.enqueue(gc_key(dep_kind, dependent))
        if blocking == 0:
            await self._remove_finalizer(kind, owner, FOREGROUND)

    async def _collect_if_orphaned(self, kind: str, obj: Any) -> None:
        states: dict[str, OwnerState] = {}
        for ref in obj.metadata.owner_references:
            states[ref.uid] = await self._owner_state(obj, ref)
        solid = [uid for uid, state in states.items() if state == "solid"]
        gone = [uid for uid, state in states.items() if state != "solid"]
        if solid:
            if gone:
                refs = [ref for ref in obj.metadata.owner_references if ref.uid in solid]
                await self._patch_owner_refs(kind, obj, refs)
            return
        waiting = any(state == "waiting" for state in states.values())
        if waiting and self.dependents(obj):
            policy = "Foreground"
        elif ORPHAN in obj.metadata.finalizers:
            policy = "Orphan"
        elif FOREGROUND in obj.metadata.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info(
            "deleting %s %s/%s: its owners are gone",
            kind,
            obj.metadata.namespace,
            obj.metadata.name,
            extra={"propagation": policy},
        )
        try:
            await self.client.resource(kind).delete(
                obj.metadata.name,
                namespace=obj.metadata.namespace,
                uid=obj.metadata.uid,
                propagation_policy=policy,
            )
        except NotFoundError:
            return

    def _cached_owner(self, dependent: Any, ref: Any) -> Any | None:
        info = kinds.KINDS.get(ref.kind)
        informer = self._informers.get(ref.kind)
        if info is None or informer is None:
            return None
        namespace = dependent.metadata.namespace if info.namespaced else ""
        owner = informer.store.get_by_name(ref.name, namespace)
        return owner if owner is not None and owner.metadata.uid == ref.uid else None

    async def _owner_state(self, dependent: Any, ref: Any) -> OwnerState:
        info = kinds.KINDS.get(ref.kind)
        if info is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        owner = self._cached_owner(dependent, ref)
        if owner is None:
            namespace = dependent.metadata.namespace if info.namespaced else ""
            try:
                owner = await self.client.resource(ref.kind).get(ref.name, namespace=namespace)
            except NotFoundError:
                return "dangling"
            if owner.metadata.uid != ref.uid:
                return "dangling"
        if _deleting(owner) and FOREGROUND in owner.metadata.finalizers:
            return "waiting"
        return "solid"

    # ------------------------------------------------------------------ writes

    async def _patch_owner_refs(self, kind: str, obj: Any, refs: list[Any]) -> None:
        try:
            await self.client.resource(kind).patch(
                obj.metadata.name, owner_refs_patch(obj, refs), namespace=obj.metadata.namespace
            )
        except NotFoundError:
            return

    async def _remove_finalizer(self, kind: str, obj: Any, finalizer: str) -> None:
        remaining = [item for item in obj.metadata.finalizers if item != finalizer]
        patch = {
            "metadata": {
                "uid": obj.metadata.uid,
                "resourceVersion": obj.metadata.resource_version,
                "finalizers": remaining,
            }
        }
        try:
            await self.client.resource(kind).patch(
                obj.metadata.name, patch, namespace=obj.metadata.namespace
            )
        except NotFoundError:
            return
