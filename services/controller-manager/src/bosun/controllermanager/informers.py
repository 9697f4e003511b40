"""Shared informers: one list + watch per kind for the whole process, however many controllers.

Controllers ask the factory for `informer(kind)` while they are built; the first request creates
the informer, later ones get the same object (and add their own handlers to it). `start()` then
starts every informer that was asked for. A kind nobody asked for is never watched.

Every store gets two extra indexes beyond namespace and label:

* `uid` — the object's uid (the garbage collector resolves owner references through it);
* `owner` — the uid of each owner reference (dependents of an owner, without a scan);
* `controller` — the uid of the controlling owner, or `orphan:<namespace>` for objects without
  one, so a ReplicaSet reads its own pods plus the orphans it might adopt, not the namespace.

Pods also get `node` (spec.nodeName), used by the node lifecycle controller and pod GC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from bosun.common.client import Client
from bosun.common.informer import Indexer, Informer

UID_INDEX = "uid"
OWNER_INDEX = "owner"
CONTROLLER_INDEX = "controller"
NODE_INDEX = "node"


def orphans_of(namespace: str) -> str:
    """The `controller` index value of objects in `namespace` that no controller owns."""
    return f"orphan:{namespace}"


def _uid(obj: Any) -> Iterable[str]:
    return (obj.metadata.uid,)


def _owners(obj: Any) -> Iterable[str]:
    return (ref.uid for ref in obj.metadata.owner_references)


def _controller(obj: Any) -> Iterable[str]:
    for ref in obj.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            return (ref.uid,)
    return (orphans_of(obj.metadata.namespace),)


def _node(obj: Any) -> Iterable[str]:
    return (obj.spec.node_name,) if obj.spec.node_name else ()


class InformerFactory:
    """Creates, shares and starts the informers of one process."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[str, Informer[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(self, kind: str) -> Informer[Any]:
        informer = self._informers.get(kind)
        if informer is None:
            indexers: dict[str, Indexer] = {
                UID_INDEX: _uid,
                OWNER_INDEX: _owners,
                CONTROLLER_INDEX: _controller,
            }
            if kind == "Pod":
                indexers[NODE_INDEX] = _node
            informer = Informer(self.client.resource(kind), indexers=indexers)
            self._informers[kind] = informer
            if self._tasks:  # asked for after start(): start it now
                self._tasks.append(informer.start())
        return informer

    @property
    def kinds(self) -> list[str]:
        return list(self._informers)

    def start(self) -> None:
        for informer in self._informers.values():
            if informer._task is None:
                self._tasks.append(informer.start())

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(
            *(informer.wait_for_sync(timeout) for informer in self._informers.values())
        )
        return all(results)

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
