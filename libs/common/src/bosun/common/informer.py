"""Informer: a local, indexed, always-converging copy of one kind, with change handlers.

Problem it solves: controllers need to read many objects often and react to changes, without
asking the apiserver each time and without ever acting on a view that silently diverged. The
informer lists the kind once (a consistent snapshot at resourceVersion R), then watches from R.

* Every watch event is applied to the store and passed to the handlers, in order.
* A broken stream (apiserver restart, network, a watch cut off for being slow) is resumed from
  the last resourceVersion seen, so no event is lost or repeated.
* When that version has left the server's window (ExpiredError / OUT_OF_RANGE) the informer
  relists and reconciles: objects that vanished get on_delete, changed ones on_update, new ones
  on_add — the store converges to the new snapshot, and handlers see every difference once.
* BOOKMARK events only advance the resourceVersion.

Handlers are plain callables run on the informer's task; they should only enqueue keys (see
workqueue). An exception in a handler is logged and does not stop the informer.

The store keeps objects by key ("namespace/name", or "name" for cluster-scoped kinds) with
indexes: "namespace", "label" ("key=value" for each label) and any custom indexer given
(for example pods by spec.nodeName).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from bosun.common.client import ResourceClient
from bosun.common.errors import ApiError, ExpiredError, InvalidError

T = TypeVar("T", bound=Message)

log = logging.getLogger(__name__)

Indexer = Callable[[Any], Iterable[str]]
NAMESPACE_INDEX = "namespace"
LABEL_INDEX = "label"


def object_key(obj: Any) -> str:
    meta = obj.metadata
    return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


def _namespace_index(obj: Any) -> Iterable[str]:
    return (obj.metadata.namespace,)


def _label_index(obj: Any) -> Iterable[str]:
    return (f"{key}={value}" for key, value in obj.metadata.labels.items())


class Store(Generic[T]):
    """Objects by key, with indexes kept in step on every change."""

    def __init__(self, indexers: Mapping[str, Indexer] | None = None) -> None:
        self._items: dict[str, T] = {}
        self._indexers: dict[str, Indexer] = {
            NAMESPACE_INDEX: _namespace_index,
            LABEL_INDEX: _label_index,
            **(indexers or {}),
        }
        self._indexes: dict[str, defaultdict[str, set[str]]] = {
            name: defaultdict(set) for name in self._indexers
        }

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str = "") -> T | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list_keys(self) -> builtins.list[str]:
        """A snapshot of the keys (safe to iterate while the store changes)."""
        return list(self._items)

    def list(self, namespace: str = "") -> builtins.list[T]:
        if not namespace:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[T]:
        return [self._items[key] for key in self._indexes[index].get(value, ())]

    def index_keys(self, index: str, value: str) -> set[str]:
        return set(self._indexes[index].get(value, ()))

    def put(self, key: str, obj: T) -> T | None:
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, indexer in self._indexers.items():
            for value in indexer(obj):
                self._indexes[name][value].add(key)
        return old

    def remove(self, key: str) -> T | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: T) -> None:
        for name, indexer in self._indexers.items():
            index = self._indexes[name]
            for value in indexer(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


@dataclass
class Handlers(Generic[T]):
    on_add: Callable[[T], None] | None = None
    on_update: Callable[[T, T], None] | None = None
    on_delete: Callable[[T], None] | None = None


class Informer(Generic[T]):
    def __init__(
        self,
        resource: ResourceClient[T],
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        indexers: Mapping[str, Indexer] | None = None,
        page_size: int = 500,
        max_backoff: float = 5.0,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.max_backoff = max_backoff
        self.store: Store[T] = Store(indexers)
        self.handlers: list[Handlers[T]] = []
        self.resource_version = ""
        self.relists = 0
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add_handler(
        self,
        *,
        on_add: Callable[[T], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T], None] | None = None,
    ) -> None:
        """Register handlers; objects already in the store are replayed to on_add."""
        handlers = Handlers(on_add, on_update, on_delete)
        self.handlers.append(handlers)
        if on_add is not None:
            for obj in self.store.list():
                self._safely(on_add, obj)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"informer-{self.resource.info.resource}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not self.resource_version:
                    await self._relist()
                await self._watch()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except ExpiredError as error:
                log.info("%s: %s; relisting", self.resource.info.resource, error)
                self.resource_version = ""
                continue
            except InvalidError:
                log.exception(
                    "%s informer: the server refused the request", self.resource.info.resource
                )
                await asyncio.sleep(self.max_backoff)
            except ApiError as error:
                log.info(
                    "%s watch interrupted (%s); resuming from %s",
                    self.resource.info.resource,
                    error,
                    self.resource_version or "a relist",
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _relist(self) -> None:
        listed = await self.resource.list_all(
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            page_size=self.page_size,
        )
        self.relists += 1
        fresh = {object_key(obj): obj for obj in listed.items}
        for key in self.store.list_keys():
            if key not in fresh:
                old = self.store.remove(key)
                if old is not None:
                    self._dispatch_delete(old)
        for key, obj in fresh.items():
            old = self.store.put(key, obj)
            if old is None:
                self._dispatch_add(obj)
            elif old.metadata.resource_version != obj.metadata.resource_version:  # type: ignore[attr-defined]
                self._dispatch_update(old, obj)
        self.resource_version = listed.resource_version
        self._synced.set()

    async def _watch(self) -> None:
        async for event in self.resource.watch(
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=self.resource_version,
            allow_bookmarks=True,
        ):
            obj = event.object
            if event.type != "BOOKMARK":
                key = object_key(obj)
                if event.type == "DELETED":
                    old = self.store.remove(key)
                    self._dispatch_delete(old if old is not None else obj)
                else:
                    old = self.store.put(key, obj)
                    if old is None:
                        self._dispatch_add(obj)
                    else:
                        self._dispatch_update(old, obj)
            self.resource_version = event.resource_version

    def _dispatch_add(self, obj: T) -> None:
        for handlers in self.handlers:
            if handlers.on_add is not None:
                self._safely(handlers.on_add, obj)

    def _dispatch_update(self, old: T, new: T) -> None:
        for handlers in self.handlers:
            if handlers.on_update is not None:
                self._safely(handlers.on_update, old, new)

    def _dispatch_delete(self, obj: T) -> None:
        for handlers in self.handlers:
            if handlers.on_delete is not None:
                self._safely(handlers.on_delete, obj)

    def _safely(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("%s informer handler failed", self.resource.info.resource)
