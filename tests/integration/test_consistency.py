"""Optimistic concurrency under contention, etcd crashes, and informer convergence."""

from __future__ import annotations

import asyncio
import random

from bosun.common import testing
from bosun.common.client import Client
from bosun.common.errors import ConflictError, UnavailableError
from bosun.common.informer import Informer
from bosun.common.localetcd import LocalEtcd


async def test_concurrent_read_modify_write_loses_no_increment(client: Client) -> None:
    await client.config_maps.create(testing.config_map("counter", {"n": "0"}))
    writers, increments = 20, 10

    async def writer() -> None:
        for _ in range(increments):
            while True:
                current = await client.config_maps.get("counter")
                current.data["n"] = str(int(current.data["n"]) + 1)
                try:
                    await client.config_maps.update(current)
                    break
                except ConflictError:
                    continue

    await asyncio.gather(*(writer() for _ in range(writers)))
    final = await client.config_maps.get("counter")
    assert final.data["n"] == str(writers * increments)


async def test_no_acknowledged_write_is_lost_across_an_etcd_crash(
    etcd: LocalEtcd, client: Client
) -> None:
    acknowledged: list[str] = []

    async def writer(worker: int) -> None:
        for index in range(40):
            name = f"w{worker}-{index}"
            while True:
                try:
                    await client.config_maps.create(testing.config_map(name), timeout=5)
                    acknowledged.append(name)
                    break
                except UnavailableError:
                    await asyncio.sleep(0.1)  # etcd is down: retry the same create
                except Exception as error:  # the first attempt may have landed
                    if "already exists" in str(error):
                        acknowledged.append(name)
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.005)

    async def crash() -> None:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(etcd.kill)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(etcd.start)

    await asyncio.gather(crash(), *(writer(w) for w in range(4)))
    stored = {c.metadata.name for c in (await client.config_maps.list()).items}
    assert set(acknowledged) <= stored
    assert len(acknowledged) == 160


async def test_informer_cache_equals_a_fresh_list_after_a_storm(client: Client) -> None:
    informer = Informer(client.config_maps)
    informer.start()
    assert await informer.wait_for_sync(10)
    rng = random.Random(7)
    names = [f"cm-{i}" for i in range(60)]

    async def storm(worker: int) -> None:
        for _ in range(80):
            name = rng.choice(names)
            action = rng.random()
            try:
                if action < 0.4:
                    await client.config_maps.create(testing.config_map(name, {"w": str(worker)}))
                elif action < 0.8:
                    await client.config_maps.patch(name, {"data": {"w": str(worker)}})
                else:
                    await client.config_maps.delete(name)
            except Exception:
                pass  # exists / not found: part of the storm

    await asyncio.gather(*(storm(w) for w in range(5)))
    fresh = await client.config_maps.list()

    want = {f"default/{c.metadata.name}": c.metadata.resource_version for c in fresh.items}

    def cached() -> dict[str, str]:
        return {
            f"default/{o.metadata.name}": o.metadata.resource_version for o in informer.store.list()
        }

    await testing.eventually(lambda: cached() == want)
    await informer.stop()


async def test_informer_relists_after_out_of_range_and_converges(
    start_apiserver: object,
) -> None:
    server = await start_apiserver(watch_cache_size=5)  # type: ignore[operator]
    async with Client(f"127.0.0.1:{server.port}") as api:
        await api.config_maps.create(testing.config_map("cfg", {"n": "0"}))
        informer = Informer(api.config_maps)
        informer.start()
        assert await informer.wait_for_sync(10)
        await informer.stop()  # the informer misses what follows ...
        for n in range(20):
            await api.config_maps.patch("cfg", {"data": {"n": str(n)}})
        await api.config_maps.create(testing.config_map("new"))
        relists = informer.relists
        informer.start()  # ... and resumes from a version that left the window

        await testing.eventually(
            lambda: informer.relists > relists and informer.store.get("default/new") is not None
        )
        cfg = informer.store.get("default/cfg")
        assert cfg is not None
        assert cfg.data["n"] == "19"
        await informer.stop()
