"""The watch cache: one etcd watch per kind, fanned out to any number of client watches.

Problem it solves: etcd can serve a handful of watches cheaply, not one per client, and a List
of thousands of objects straight from etcd costs a full decode per object per request. Each kind
gets one `WatchCache` that

* lists the kind from etcd once, then follows a single etcd watch on the kind's key prefix;
* keeps the current state (key -> `CachedObject`, each the serialized object plus the labels and
  selectable fields that filtering needs) and a bounded history of recent events;
* serves client watches from that history: a client passing resourceVersion R gets every later
  event, in order, exactly once; R older than the history window is `ExpiredError`
  (OUT_OF_RANGE: the client relists);
* gives a watch with an empty resourceVersion the current state as ADDED events.

Lists are not served from here but from etcd (a quorum read, as Kubernetes does by default).
Serving them from the cache would need proof that the cache has caught up with etcd, and etcd
before 3.5.8 may send a watch progress notification ahead of events it has not delivered yet
(etcd-io/etcd#15220), so progress notifications are only used as a hint here: never to claim
that the state is complete up to a revision.

Concurrency: everything runs on one event loop, and the consumer task applies a batch of etcd
events to the state, the history and every watcher's buffer without awaiting in between. So a
new watcher that reads the history and registers itself (also without awaiting) can neither
miss an event nor see one twice.

Invariants:
* `applied_revision`: the revision of the last event applied (or of the initial list). Every
  event of this kind up to it has been applied, so the state is exact at that revision; later
  events arrive with higher revisions.
* `synced_revision` >= applied_revision: what etcd's progress notifications claim. A claim is
  confirmed before applied_revision moves up to it: etcd must show no write under the prefix
  between the two revisions and the same number of keys (two count-only reads). That is what
  lets BOOKMARKs of a quiet kind advance.
* `window_start`: every event with revision > window_start is in `history` (or no events happened).
* A watcher's buffer only grows to `watcher_buffer` events; a watcher that falls that far behind
  is cut off (`TooSlowError`) so it cannot hold memory or slow down the others. It resumes from
  its last resourceVersion, or relists when that has left the window.

When the etcd watch breaks, the cache resumes it from `applied_revision + 1`; clients see no
difference. When etcd has compacted past that revision, events were lost, so the cache lists
again and every client watch is ended with `ExpiredError` (they relist): no client is handed a
gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.apiserver import wire
from bosun.apiserver.storage import (
    CompactedError,
    Storage,
    StorageError,
    StorageEvent,
    StorageUnavailableError,
)
from bosun.common.kinds import KindInfo
from bosun.common.selectors import FieldSelector, LabelSelector, object_fields

log = logging.getLogger(__name__)

ADDED = apiserver_pb2.ADDED
MODIFIED = apiserver_pb2.MODIFIED
DELETED = apiserver_pb2.DELETED
BOOKMARK = apiserver_pb2.BOOKMARK


class ExpiredError(Exception):
    """The requested resourceVersion is older than the cache's history window."""


class TooSlowError(Exception):
    """A watcher fell too far behind and was cut off."""


class NotReadyError(Exception):
    """The cache could not catch up with etcd in time (etcd unreachable or lagging)."""


@dataclass(slots=True)
class CachedObject:
    key: str
    namespace: str
    name: str
    resource_version: int
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    # The kind's message, serialized, with metadata.resourceVersion set.
    message: bytes


@dataclass(slots=True)
class CacheEvent:
    type: int
    resource_version: int
    object: CachedObject
    previous: CachedObject | None
    _encoded: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Filter:
    namespace: str = ""
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None

    def matches(self, obj: CachedObject) -> bool:
        if self.namespace and obj.namespace != self.namespace:
            return False
        if self.labels is not None and not self.labels.matches(obj.labels):
            return False
        return self.fields is None or self.fields.matches(obj.fields)


class Watcher:
    """One client watch: a filter and a bounded buffer of encoded WatchEvent messages."""

    def __init__(self, cache: WatchCache, flt: Filter, *, limit: int) -> None:
        self.cache = cache
        self.filter = flt
        self.limit = limit
        self.buffer: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
        self.error: Exception | None = None
        # The revision of the last event queued (or bookmark sent). Events at or below it are
        # already known to the client and never sent.
        self.last_revision = 0

    def _push(self, data: bytes, revision: int) -> None:
        self.buffer.append(data)
        self.last_revision = revision
        self.wakeup.set()

    def offer(self, event: CacheEvent, *, backlog: bool = False) -> None:
        """Queue `event` if it concerns this watcher, as Kubernetes does for selector changes:
        an object that starts matching arrives as ADDED, one that stops matching as DELETED."""
        if self.error is not None or event.resource_version <= self.last_revision:
            return
        flt = self.filter
        old = event.previous is not None and flt.matches(event.previous)
        if event.type == DELETED:
            if not old:
                return
            event_type = DELETED
        else:
            new = flt.matches(event.object)
            if new:
                event_type = MODIFIED if old else ADDED
            elif old:
                event_type = DELETED
            else:
                return
        if not backlog and len(self.buffer) >= self.limit:
            self.close(
                TooSlowError(
                    f"watch consumer fell {self.limit} events behind and was cut off; "
                    f"resume from resourceVersion {self.last_revision}"
                )
            )
            return
        self._push(self.cache.encode(event, event_type), event.resource_version)

    def close(self, error: Exception) -> None:
        self.error = error
        self.buffer.clear()
        self.wakeup.set()
        self.cache.watchers.discard(self)

    def bookmark(self) -> bytes | None:
        """A BOOKMARK carrying the cache's revision, when nothing newer is pending."""
        revision = self.cache.applied_revision
        if self.buffer or revision <= self.last_revision:
            return None
        self.last_revision = revision
        return self.cache.encode_bookmark(revision)


class WatchCache:
    def __init__(
        self,
        info: KindInfo,
        storage: Storage,
        *,
        prefix: str,
        capacity: int = 10_000,
        watcher_buffer: int = 1_000,
        replay_revisions: int = 10_000,
        progress_interval: float = 1.0,
    ) -> None:
        self.info = info
        self.storage = storage
        self.prefix = prefix
        self.capacity = capacity
        self.watcher_buffer = watcher_buffer
        self.replay_revisions = replay_revisions
        self.progress_interval = progress_interval
        self.state: dict[str, CachedObject] = {}
        self.history: deque[CacheEvent] = deque()
        self.window_start = 0
        self.applied_revision = 0
        self.synced_revision = 0
        self.watchers: set[Watcher] = set()
        self.ready = asyncio.Event()
        self._revision_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._progress_task: asyncio.Task[None] | None = None
        self.rebuilds = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watchcache-{self.info.resource}")
        self._progress_task = asyncio.create_task(
            self._advance_quiet_revision(), name=f"watchcache-progress-{self.info.resource}"
        )

    async def stop(self) -> None:
        for task in (self._task, self._progress_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for watcher in list(self.watchers):
            watcher.close(NotReadyError("the apiserver is shutting down"))

    async def _run(self) -> None:
        backoff = 0.1
        initial = True
        while True:
            try:
                if not self.ready.is_set() or self.applied_revision == 0:
                    await self._initialise(replay=initial)
                    initial = False
                await self._follow()
            except asyncio.CancelledError:
                raise
            except CompactedError:
                log.warning(
                    "etcd compacted past the %s cache's revision %d: relisting",
                    self.info.resource,
                    self.applied_revision,
                )
                self._reset()
                continue
            except StorageUnavailableError as error:
                log.warning(
                    "%s watch cache: %s; retrying in %.1fs", self.info.resource, error, backoff
                )
            except Exception:
                log.exception(
                    "%s watch cache failed; retrying in %.1fs", self.info.resource, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _reset(self) -> None:
        """Forget everything: the next loop lists again. Client watches must relist too."""
        self.rebuilds += 1
        self.ready.clear()
        self.applied_revision = 0
        self.synced_revision = 0
        for watcher in list(self.watchers):
            watcher.close(
                ExpiredError("the watch cache was re-initialised after etcd compaction; relist")
            )

    async def _initialise(self, *, replay: bool) -> None:
        """List the kind, then (on startup) replay recent history so that clients that saved a
        resourceVersion before an apiserver restart can resume instead of relisting."""
        current = await self.storage.current_revision()
        start = max(1, current - self.replay_revisions) if replay else current
        try:
            listed = await self.storage.list(self.prefix, revision=start)
            # etcd's header carries its current revision; the state is the one at `start`.
            revision = start
        except CompactedError:
            listed = await self.storage.list(self.prefix)
            revision = listed.revision
        kvs = listed.kvs
        self.state = {}
        for kv in kvs:
            self.state[kv.key] = self.decode(kv.key, kv.value, kv.mod_revision)
        self.history.clear()
        self.window_start = revision
        self.applied_revision = revision
        self.synced_revision = revision
        self._target_revision = current
        if revision >= current:
            self.ready.set()

    async def _follow(self) -> None:
        nudger = None if self.ready.is_set() else asyncio.create_task(self._nudge_until_ready())
        try:
            async for batch in self.storage.watch(
                self.prefix, start_revision=self.applied_revision + 1
            ):
                for event in batch.events:
                    self._apply(event)
                if batch.revision > self.synced_revision:
                    self.synced_revision = batch.revision
                if not self.ready.is_set() and self.synced_revision >= self._target_revision:
                    self.ready.set()
                self._wake_revision_waiters()
        finally:
            if nudger is not None:
                nudger.cancel()

    async def _advance_quiet_revision(self) -> None:
        """Move applied_revision up to etcd's claimed progress once confirmed (see invariants),
        so that watchers of a kind nobody writes still get BOOKMARKs with recent versions."""
        while True:
            await asyncio.sleep(self.progress_interval)
            if not self.watchers or not self.ready.is_set():
                continue
            self.storage.request_progress(self.prefix)
            await asyncio.sleep(0.05)
            applied, claimed = self.applied_revision, self.synced_revision
            if claimed <= applied:
                continue
            try:
                unchanged = await self.storage.unchanged_between(
                    self.prefix, after=applied, at=claimed, expected_count=len(self.state)
                )
            except StorageError:
                continue
            if unchanged and self.applied_revision == applied:
                self.applied_revision = claimed

    async def _nudge_until_ready(self) -> None:
        """While replaying history, ask etcd where the stream is: a kind with no recent events
        would otherwise never learn that it has caught up."""
        while not self.ready.is_set():
            self.storage.request_progress(self.prefix)
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ events

    def decode(self, key: str, value: bytes, revision: int) -> CachedObject:
        message: Any = self.info.message.FromString(value)
        meta = message.metadata
        return CachedObject(
            key=key,
            namespace=meta.namespace,
            name=meta.name,
            resource_version=revision,
            labels=dict(meta.labels) if meta.labels else {},
            fields=object_fields(self.info.kind, message),
            message=wire.with_resource_version(value, revision),
        )

    def _apply(self, event: StorageEvent) -> None:
        previous = self.state.get(event.key)
        if event.type == "PUT":
            obj = self.decode(event.key, event.value, event.revision)
            self.state[event.key] = obj
            cache_event = CacheEvent(
                ADDED if previous is None else MODIFIED, event.revision, obj, previous
            )
        else:
            if previous is None:
                return
            del self.state[event.key]
            gone = CachedObject(
                previous.key,
                previous.namespace,
                previous.name,
                event.revision,
                previous.labels,
                previous.fields,
                wire.with_resource_version(previous.message, event.revision),
            )
            cache_event = CacheEvent(DELETED, event.revision, gone, previous)
        self.applied_revision = max(self.applied_revision, event.revision)
        if event.revision > self.synced_revision:
            self.synced_revision = event.revision
        self.history.append(cache_event)
        while len(self.history) > self.capacity:
            self.window_start = self.history.popleft().resource_version
        if self.ready.is_set():
            for watcher in list(self.watchers):
                watcher.offer(cache_event)

    def encode(self, event: CacheEvent, event_type: int) -> bytes:
        data = event._encoded.get(event_type)
        if data is None:
            data = wire.watch_event(
                event_type, wire.envelope(self.info.envelope_field, event.object.message)
            )
            event._encoded[event_type] = data
        return data

    def encode_bookmark(self, revision: int) -> bytes:
        message: Any = self.info.message()
        message.metadata.resource_version = str(revision)
        return wire.watch_event(
            BOOKMARK, wire.envelope(self.info.envelope_field, message.SerializeToString())
        )

    def envelope(self, obj: CachedObject) -> bytes:
        return wire.envelope(self.info.envelope_field, obj.message)

    # ------------------------------------------------------------------ freshness

    def _wake_revision_waiters(self) -> None:
        if not self._revision_waiters:
            return
        remaining = []
        for revision, future in self._revision_waiters:
            if self.synced_revision >= revision:
                if not future.done():
                    future.set_result(None)
            else:
                remaining.append((revision, future))
        self._revision_waiters = remaining

    async def wait_for_revision(self, revision: int, *, timeout: float = 3.0) -> None:
        """Wait until the cache has seen everything up to `revision`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not self.ready.is_set():
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except TimeoutError:
                raise NotReadyError(
                    f"the {self.info.resource} cache is not ready (is etcd reachable?)"
                ) from None
        while self.synced_revision < revision:
            future: asyncio.Future[None] = loop.create_future()
            self._revision_waiters.append((revision, future))
            self.storage.request_progress(self.prefix)
            left = deadline - loop.time()
            if left <= 0:
                raise NotReadyError(
                    f"the {self.info.resource} cache is at resourceVersion "
                    f"{self.synced_revision} and did not reach {revision} in {timeout}s"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), min(left, 0.2))

    async def wait_fresh(self, *, timeout: float = 3.0) -> int:
        """Catch up with etcd's current revision; return the revision the state is at."""
        try:
            current = await self.storage.current_revision()
        except StorageError as error:
            raise NotReadyError(f"etcd is unreachable: {error}") from error
        await self.wait_for_revision(current, timeout=timeout)
        return self.synced_revision

    # ------------------------------------------------------------------ reads

    def get(self, key: str) -> CachedObject | None:
        return self.state.get(key)

    def list(self, flt: Filter, *, start_key: str = "") -> list[CachedObject]:
        """Matching objects in key order (those after `start_key` when given)."""
        keys: list[str] = sorted(self.state)
        if flt.namespace:
            prefix = f"{self.prefix}{flt.namespace}/"
            keys = [key for key in keys if key.startswith(prefix)]
        if start_key:
            keys = [key for key in keys if key > start_key]
        return [self.state[key] for key in keys if flt.matches(self.state[key])]

    def watch(self, flt: Filter, resource_version: int | None) -> Watcher:
        """Register a client watch. `None` sends the current state as ADDED events first.

        Call only after `wait_for_revision(resource_version)` so the cache is ready."""
        watcher = Watcher(self, flt, limit=self.watcher_buffer)
        if resource_version is None:
            for obj in self.list(flt):
                event = CacheEvent(ADDED, obj.resource_version, obj, None)
                watcher._push(self.encode(event, ADDED), obj.resource_version)
            watcher.last_revision = self.applied_revision
        else:
            if resource_version < self.window_start:
                raise ExpiredError(
                    f"too old resource version: {resource_version} (the watch window of "
                    f"{self.info.resource} starts at {self.window_start}); relist"
                )
            watcher.last_revision = resource_version
            for event in self.history:
                if event.resource_version > resource_version:
                    watcher.offer(event, backlog=True)
        self.watchers.add(watcher)
        return watcher


WatchCacheFactory = Callable[[KindInfo], WatchCache]
