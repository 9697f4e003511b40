"""Watch: ordering, resumption, the history window, slow clients, bookmarks, selectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from bosun.apiserver.server import ApiServer
from bosun.common import testing
from bosun.common.client import Client, WatchEvent
from bosun.common.errors import ExpiredError, ResourceExhaustedError
from bosun.common.localetcd import LocalEtcd

ApiServerFactory = Callable[..., Awaitable[ApiServer]]


async def collect(stream: object, count: int, timeout: float = 20) -> list[WatchEvent[object]]:
    events: list[WatchEvent[object]] = []

    async def run() -> None:
        async for event in stream:  # type: ignore[attr-defined]
            if event.type == "BOOKMARK":
                continue
            events.append(event)
            if len(events) == count:
                return

    await asyncio.wait_for(run(), timeout)
    return events


async def drain(stream: AsyncIterator[object]) -> None:
    async for _ in stream:
        pass


async def test_watch_sees_every_rapid_update_in_order(client: Client) -> None:
    created = await client.config_maps.create(testing.config_map("counter", {"n": "0"}))
    stream = client.config_maps.watch(resource_version=created.metadata.resource_version)
    collector = asyncio.create_task(collect(stream, 1000, timeout=60))

    async def write() -> None:
        for n in range(1, 1001):
            await client.config_maps.patch("counter", {"data": {"n": str(n)}})

    await asyncio.gather(write(), asyncio.shield(collector))
    events = collector.result()
    assert [e.object.data["n"] for e in events] == [str(n) for n in range(1, 1001)]  # type: ignore[attr-defined]
    versions = [int(e.resource_version) for e in events]
    assert versions == sorted(set(versions))


async def test_empty_resource_version_sends_current_objects_as_added(client: Client) -> None:
    await client.config_maps.create(testing.config_map("one"))
    await client.config_maps.create(testing.config_map("two"))
    events = await collect(client.config_maps.watch(), 2)
    assert {(e.type, e.object.metadata.name) for e in events} == {  # type: ignore[attr-defined]
        ("ADDED", "one"),
        ("ADDED", "two"),
    }


async def test_watch_reports_add_modify_delete(client: Client) -> None:
    listed = await client.config_maps.list()
    stream = client.config_maps.watch(resource_version=listed.resource_version)
    collector = asyncio.create_task(collect(stream, 3))
    await client.config_maps.create(testing.config_map("cfg"))
    await client.config_maps.patch("cfg", {"data": {"a": "b"}})
    await client.config_maps.delete("cfg")
    assert [e.type for e in await collector] == ["ADDED", "MODIFIED", "DELETED"]


async def test_label_selector_turns_relabelling_into_added_and_deleted(client: Client) -> None:
    listed = await client.config_maps.list()
    stream = client.config_maps.watch(
        resource_version=listed.resource_version, label_selector="app=web"
    )
    collector = asyncio.create_task(collect(stream, 2))
    await client.config_maps.create(testing.config_map("other"))
    await client.config_maps.create(testing.config_map("cfg"))
    await client.config_maps.patch("cfg", {"metadata": {"labels": {"app": "web"}}})
    await client.config_maps.patch("cfg", {"metadata": {"labels": {"app": "db"}}})
    events = await collector
    assert [(e.type, e.object.metadata.name) for e in events] == [  # type: ignore[attr-defined]
        ("ADDED", "cfg"),
        ("DELETED", "cfg"),
    ]


async def test_resume_from_saved_version_after_apiserver_restart(
    start_apiserver: ApiServerFactory,
) -> None:
    first = await start_apiserver()
    async with Client(f"127.0.0.1:{first.port}") as api:
        saved = (await api.config_maps.create(testing.config_map("a"))).metadata.resource_version
        for name in ("b", "c", "d"):
            await api.config_maps.create(testing.config_map(name))
    await first.stop(0)
    second = await start_apiserver()
    async with Client(f"127.0.0.1:{second.port}") as api:
        await api.config_maps.create(testing.config_map("e"))
        events = await collect(api.config_maps.watch(resource_version=saved), 4)
    assert [e.object.metadata.name for e in events] == ["b", "c", "d", "e"]  # type: ignore[attr-defined]


async def test_too_old_resource_version_is_out_of_range(
    start_apiserver: ApiServerFactory,
) -> None:
    server = await start_apiserver(watch_cache_size=10)
    async with Client(f"127.0.0.1:{server.port}") as api:
        first = await api.config_maps.create(testing.config_map("cfg", {"n": "0"}))
        for n in range(30):
            await api.config_maps.patch("cfg", {"data": {"n": str(n)}})
        with pytest.raises(ExpiredError, match="too old resource version"):
            await collect(
                api.config_maps.watch(resource_version=first.metadata.resource_version), 1
            )


async def test_slow_watcher_is_cut_off_without_blocking_others(
    start_apiserver: ApiServerFactory,
) -> None:
    server = await start_apiserver(watcher_buffer=20)
    target = f"127.0.0.1:{server.port}"
    # No BDP probing: the HTTP/2 window stays small, so an unread stream really backs up.
    slow_channel = grpc.aio.insecure_channel(target, options=[("grpc.http2.bdp_probe", 0)])
    async with Client(target) as api, Client(target, channel=slow_channel) as slow_api:
        start = await api.config_maps.create(testing.config_map("cfg", {"n": "0"}))
        rv = start.metadata.resource_version
        slow = slow_api.config_maps.watch(resource_version=rv)
        # Opened and read once, then not read while the writes happen.
        first = asyncio.create_task(slow.__anext__())
        fast = asyncio.create_task(collect(api.config_maps.watch(resource_version=rv), 300))
        padding = "x" * 10_000
        for n in range(300):
            await api.config_maps.patch("cfg", {"data": {"n": str(n), "pad": padding}})
        assert len(await fast) == 300
        assert (await first).type == "MODIFIED"
        with pytest.raises(ResourceExhaustedError, match="cut off"):
            await asyncio.wait_for(drain(slow), 20)


async def test_idle_watch_receives_bookmarks_with_the_latest_version(
    start_apiserver: ApiServerFactory,
) -> None:
    server = await start_apiserver(bookmark_interval=0.2)
    async with Client(f"127.0.0.1:{server.port}") as api:
        listed = await api.pods.list()
        await api.config_maps.create(testing.config_map("elsewhere"))
        stream = api.pods.watch(resource_version=listed.resource_version)
        event = await asyncio.wait_for(stream.__anext__(), 10)
        assert event.type == "BOOKMARK"
        assert int(event.resource_version) >= int(listed.resource_version)
        await stream.aclose()


async def test_compaction_past_the_cache_relists_and_expires_watchers(
    etcd: LocalEtcd, apiserver: ApiServer, client: Client
) -> None:
    listed = await client.config_maps.list()
    watch = client.config_maps.watch(resource_version=listed.resource_version)
    pending = asyncio.create_task(collect(watch, 10_000, timeout=30))
    await client.config_maps.create(testing.config_map("before"))
    cache = apiserver.caches["ConfigMap"]
    # Simulate a cache that fell behind etcd's compaction: break its stream and compact.
    revision = await apiserver.storage.current_revision()
    cache.applied_revision = 1
    await apiserver.storage.compact(revision)
    assert cache._task is not None
    cache._task.cancel()
    cache.start()
    with pytest.raises(ExpiredError):
        await pending
    await asyncio.wait_for(cache.ready.wait(), 10)
    names = {c.metadata.name for c in (await client.config_maps.list()).items}
    assert "before" in names
    assert cache.rebuilds >= 1
