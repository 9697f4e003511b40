"""Namespace controller: empties a Terminating namespace, then lets the apiserver remove it.

Deleting a namespace only marks it (deletionTimestamp, phase Terminating) because its spec
carries the `kubernetes` finalizer; the apiserver refuses creates in it from then on. This
controller deletes every namespaced object in it — listed live from the apiserver, not from a
cache, since a stale cache could miss an object and the namespace would then vanish with it
still stored — and requeues itself until every list comes back empty (objects held by their own
finalizers or a pod grace period take a while). Then it removes the `kubernetes` finalizer, and
the apiserver removes the namespace.

Deletes use the default (background) propagation: the garbage collector removes dependents,
and the next pass deletes whatever is left anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common import kinds
from bosun.common.errors import ConflictError, NotFoundError
from bosun.common.informer import Informer
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"
Namespace = core_pb2.Namespace


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context)
        self.resync = context.options.namespace_resync
        self.namespaces: Informer[Namespace] = context.informers.informer("Namespace")
        self.namespaces.add_handler(
            on_add=self._changed, on_update=lambda old, new: self._changed(new)
        )

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.namespaces,)

    def _changed(self, namespace: Namespace) -> None:
        if namespace.metadata.HasField("deletion_timestamp"):
            self.enqueue(namespace.metadata.name)

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.store.get(key)
        if namespace is None or not namespace.metadata.HasField("deletion_timestamp"):
            return
        if FINALIZER not in namespace.spec.finalizers:
            return
        remaining = await self._delete_content(key)
        if remaining:
            log.info("namespace %s: %d objects left", key, remaining)
            self.enqueue_after(key, self.resync)
            return
        await self._finalize(key)

    async def _delete_content(self, namespace: str) -> int:
        """Delete what is in `namespace`; the number of objects that were still there."""
        remaining = 0
        for info in kinds.KINDS.values():
            if not info.namespaced:
                continue
            resource = self.client.resource(info.kind)
            listed = await resource.list_all(namespace=namespace)
            for obj in listed.items:
                remaining += 1
                if obj.metadata.HasField("deletion_timestamp"):
                    continue
                try:
                    await resource.delete(
                        obj.metadata.name, namespace=namespace, uid=obj.metadata.uid
                    )
                except NotFoundError:
                    continue
        return remaining

    async def _finalize(self, name: str) -> None:
        try:
            current = await self.client.namespaces.get(name)
        except NotFoundError:
            return
        if FINALIZER not in current.spec.finalizers:
            return
        updated = Namespace()
        updated.CopyFrom(current)
        updated.spec.finalizers.remove(FINALIZER)
        try:
            await self.client.namespaces.update(updated)
        except NotFoundError:
            return
        except ConflictError:
            self.enqueue(name)  # changed under us: look again
            return
        log.info("namespace %s emptied and finalized", name)
