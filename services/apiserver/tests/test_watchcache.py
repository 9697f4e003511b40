"""The watch cache's guarantees, against an in-memory storage that behaves like etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.apiserver.storage import (
    CompactedError,
    KeyValue,
    ListResult,
    StorageEvent,
    StorageUnavailableError,
    WatchBatch,
)
from bosun.apiserver.watchcache import ExpiredError, Filter, WatchCache
from bosun.common import kinds, testing
from bosun.common.selectors import parse_label_selector

PREFIX = "/registry/configmaps/"


class MemoryStorage:
    """A revisioned key-value store with watches and compaction, like a one-member etcd."""

    def __init__(self) -> None:
        self.revision = 1
        self.compacted = 0
        self.log: list[StorageEvent] = []
        self.data: dict[str, KeyValue] = {}
        self.changed = asyncio.Event()
        self.broken = False

    def put(self, name: str, labels: dict[str, str] | None = None) -> int:
        self.revision += 1
        cm = testing.config_map(name)
        cm.metadata.labels.update(labels or {})
        key = f"{PREFIX}default/{name}"
        old = self.data.get(key)
        self.data[key] = KeyValue(
            key,
            cm.SerializeToString(),
            self.revision,
            old.create_revision if old else self.revision,
        )
        self.log.append(StorageEvent("PUT", key, cm.SerializeToString(), self.revision))
        self.changed.set()
        return self.revision

    def remove(self, name: str) -> int:
        self.revision += 1
        key = f"{PREFIX}default/{name}"
        del self.data[key]
        self.log.append(StorageEvent("DELETE", key, b"", self.revision))
        self.changed.set()
        return self.revision

    async def current_revision(self) -> int:
        return self.revision

    async def list(
        self, prefix: str, *, revision: int = 0, start_key: str = "", limit: int = 0
    ) -> ListResult:
        if revision and revision <= self.compacted:
            raise CompactedError(self.compacted)
        at = revision or self.revision
        state: dict[str, KeyValue] = {}
        for event in self.log:
            if event.revision > at:
                break
            if event.type == "PUT":
                state[event.key] = KeyValue(event.key, event.value, event.revision, event.revision)
            else:
                state.pop(event.key, None)
        return ListResult([state[k] for k in sorted(state)], at, False, len(state))

    def request_progress(self, prefix: str) -> None:
        self.changed.set()

    async def unchanged_between(
        self, prefix: str, *, after: int, at: int, expected_count: int
    ) -> bool:
        written = any(after < e.revision <= at for e in self.log)
        return not written and len((await self.list(prefix, revision=at)).kvs) == expected_count

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        if start_revision <= self.compacted:
            raise CompactedError(self.compacted)
        next_revision = start_revision
        while True:
            if self.broken:
                raise StorageUnavailableError("broken")
            events = [e for e in self.log if e.revision >= next_revision]
            if events:
                next_revision = events[-1].revision + 1
            yield WatchBatch(events, max(self.revision, next_revision - 1))
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
async def storage_and_cache() -> AsyncIterator[tuple[MemoryStorage, WatchCache]]:
    storage = MemoryStorage()
    cache = WatchCache(
        kinds.KINDS["ConfigMap"],
        storage,
        prefix=PREFIX,  # type: ignore[arg-type]
        capacity=5,
        watcher_buffer=3,
        replay_revisions=0,
    )
    cache.start()
    await asyncio.wait_for(cache.ready.wait(), 5)
    yield storage, cache
    await cache.stop()


def decode(data: bytes) -> tuple[int, str]:
    event = apiserver_pb2.WatchEvent.FromString(data)
    return event.type, event.object.config_map.metadata.name


async def test_state_follows_storage(storage_and_cache: tuple[MemoryStorage, WatchCache]) -> None:
    storage, cache = storage_and_cache
    storage.put("a")
    revision = storage.put("b")
    await cache.wait_for_revision(revision)
    assert [o.name for o in cache.list(Filter())] == ["a", "b"]


async def test_watch_from_a_version_replays_later_history(
    storage_and_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    storage, cache = storage_and_cache
    first = storage.put("a")
    revision = storage.put("b")
    await cache.wait_for_revision(revision)
    watcher = cache.watch(Filter(), first)
    assert [decode(b) for b in watcher.buffer] == [(apiserver_pb2.ADDED, "b")]


async def test_version_older_than_the_window_is_expired(
    storage_and_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    storage, cache = storage_and_cache
    first = storage.put("a")
    for index in range(10):
        revision = storage.put(f"x{index}")
    await cache.wait_for_revision(revision)
    with pytest.raises(ExpiredError, match="too old resource version"):
        cache.watch(Filter(), first)


async def test_slow_watcher_is_cut_off(storage_and_cache: tuple[MemoryStorage, WatchCache]) -> None:
    storage, cache = storage_and_cache
    watcher = cache.watch(Filter(), storage.revision)
    for index in range(5):
        revision = storage.put(f"x{index}")
    await cache.wait_for_revision(revision)
    assert watcher.error is not None
    assert watcher not in cache.watchers


async def test_selector_change_is_added_then_deleted(
    storage_and_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    storage, cache = storage_and_cache
    watcher = cache.watch(Filter(labels=parse_label_selector("app=web")), storage.revision)
    storage.put("a")
    storage.put("a", {"app": "web"})
    revision = storage.put("a", {"app": "db"})
    await cache.wait_for_revision(revision)
    assert [decode(b) for b in watcher.buffer] == [
        (apiserver_pb2.ADDED, "a"),
        (apiserver_pb2.DELETED, "a"),
    ]


async def test_deleted_event_carries_the_deletion_version(
    storage_and_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    storage, cache = storage_and_cache
    storage.put("a")
    watcher = cache.watch(Filter(), storage.revision)
    revision = storage.remove("a")
    await cache.wait_for_revision(revision)
    event = apiserver_pb2.WatchEvent.FromString(watcher.buffer[0])
    assert event.type == apiserver_pb2.DELETED
    assert event.object.config_map.metadata.resource_version == str(revision)


async def test_compaction_past_the_cache_expires_watchers_and_relists(
    storage_and_cache: tuple[MemoryStorage, WatchCache],
) -> None:
    storage, cache = storage_and_cache
    watcher = cache.watch(Filter(), storage.revision)
    storage.broken = True
    storage.changed.set()
    await asyncio.sleep(0.05)
    storage.put("a")
    storage.compacted = storage.put("b")
    storage.broken = False
    await testing.eventually(lambda: cache.rebuilds == 1 and cache.ready.is_set(), timeout=5)
    assert isinstance(watcher.error, ExpiredError)
    assert [o.name for o in cache.list(Filter())] == ["a", "b"]
