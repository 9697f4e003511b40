"""Overload, restarts and the synchronous client."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from bosun.apiserver.server import ApiServer
from bosun.common import testing
from bosun.common.client import Client, SyncClient
from bosun.common.errors import ResourceExhaustedError
from bosun.common.informer import Informer
from bosun.common.localetcd import LocalEtcd, free_port

ApiServerFactory = Callable[..., Awaitable[ApiServer]]


async def test_requests_past_the_inflight_limit_are_resource_exhausted(
    start_apiserver: ApiServerFactory,
) -> None:
    server = await start_apiserver(max_inflight=1)
    async with Client(f"127.0.0.1:{server.port}") as api:
        await api.config_maps.create(testing.config_map("cfg"))
        results = await asyncio.gather(
            *(api.config_maps.get("cfg") for _ in range(50)), return_exceptions=True
        )
    refused = [r for r in results if isinstance(r, ResourceExhaustedError)]
    assert refused
    assert "too many requests in flight" in refused[0].message
    assert all(not isinstance(r, Exception) or r in refused for r in results)


async def test_informer_survives_an_apiserver_restart_without_duplicates(
    start_apiserver: ApiServerFactory,
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    first = await start_apiserver(listen=listen)
    added: Counter[str] = Counter()
    deleted: list[str] = []
    async with Client(listen) as api:
        informer = Informer(api.config_maps)
        informer.add_handler(
            on_add=lambda cm: added.update([cm.metadata.name]),
            on_delete=lambda cm: deleted.append(cm.metadata.name),
        )
        informer.start()
        assert await informer.wait_for_sync(10)
        for index in range(5):
            await api.config_maps.create(testing.config_map(f"before-{index}"))
        await first.stop(0)
        await start_apiserver(listen=listen)
        for index in range(5):
            await api.config_maps.create(testing.config_map(f"after-{index}"))
        await api.config_maps.delete("before-0")

        await testing.eventually(lambda: len(informer.store) == 9 and bool(deleted), timeout=15)
        await informer.stop()
    assert set(added) == {f"before-{i}" for i in range(5)} | {f"after-{i}" for i in range(5)}
    assert max(added.values()) == 1
    assert deleted == ["before-0"]


async def test_informer_indexes_pods_by_node(client: Client) -> None:
    informer = Informer(
        client.pods,
        indexers={"node": lambda pod: [pod.spec.node_name] if pod.spec.node_name else []},
    )
    informer.start()
    assert await informer.wait_for_sync(10)
    await client.pods.create(testing.pod("a", node_name="n1"))
    await client.pods.create(testing.pod("b", node_name="n2"))
    await client.pods.create(testing.pod("c", labels={"app": "x"}))

    await testing.eventually(lambda: len(informer.store) == 3)
    assert [p.metadata.name for p in informer.store.by_index("node", "n1")] == ["a"]
    assert [p.metadata.name for p in informer.store.by_index("label", "app=x")] == ["c"]
    assert len(informer.store.list(namespace="default")) == 3
    await informer.stop()


async def test_sync_client_for_scripts(apiserver: ApiServer) -> None:
    def script() -> None:
        with SyncClient(f"127.0.0.1:{apiserver.port}") as api:
            created = api.config_maps.create(testing.config_map("cfg", {"k": "v"}))
            assert api.config_maps.get("cfg").data["k"] == "v"
            events = api.config_maps.watch(resource_version="")
            first = next(events)
            assert first.object.metadata.name == created.metadata.name
            events.close()

    # A script blocks its thread; the apiserver under test runs on this test's event loop.
    await asyncio.to_thread(script)


async def test_reads_are_retried_while_etcd_restarts(etcd: LocalEtcd, client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg", {"k": "v"}))
    await asyncio.to_thread(etcd.kill)
    pending = asyncio.create_task(client.config_maps.get("cfg"))
    await asyncio.sleep(1.0)
    assert not pending.done()
    await asyncio.to_thread(etcd.start)
    assert (await asyncio.wait_for(pending, 30)).data["k"] == "v"
