"""Fixtures: a real etcd, an in-process apiserver per test, and bosunctl run in-process.

bosunctl runs its own event loop (`asyncio.run` per command) while the apiserver lives on the
test's loop, so `bosunctl(...)` runs the click command in a worker thread. The CLI finds the
apiserver the way a user's does: through a config file (BOSUN_CONFIG) whose current context
points at it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bosun.apiserver.server import ApiServer, ApiServerConfig
from bosun.cli.main import cli
from bosun.common.client import Client
from bosun.common.localetcd import LocalEtcd, etcd_binary


@pytest.fixture(scope="module")
def shared_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEtcd]:
    directory = tmp_path_factory.mktemp("etcd")
    server = LocalEtcd(directory / "data", log_path=directory / "etcd.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd(shared_etcd: LocalEtcd) -> LocalEtcd:
    """The module's etcd, emptied: each test starts from a fresh cluster's state.

    (One etcd per module rather than per test keeps the file fast; the apiserver is still
    started per test, so no watch cache outlives a test.)
    """
    etcdctl = etcd_binary().with_name("etcdctl")
    subprocess.run(
        [str(etcdctl), "--endpoints", shared_etcd.endpoint, "del", "--prefix", "/"],
        check=True,
        capture_output=True,
        env={**os.environ, "ETCDCTL_API": "3"},
    )
    return shared_etcd


@pytest.fixture
async def apiserver(etcd: LocalEtcd) -> AsyncIterator[ApiServer]:
    server = ApiServer(
        ApiServerConfig(etcd_servers=[etcd.endpoint], listen="127.0.0.1:0", bookmark_interval=1.0)
    )
    await server.start()
    yield server
    await server.stop(0)


@pytest.fixture
def server_address(apiserver: ApiServer) -> str:
    return f"127.0.0.1:{apiserver.port}"


@pytest.fixture
async def client(server_address: str) -> AsyncIterator[Client]:
    async with Client(server_address, timeout=10) as api:
        yield api


@pytest.fixture
def config_file(tmp_path: Path, server_address: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bosun" / "config"
    path.parent.mkdir()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "contexts": [{"name": "test", "server": server_address}],
            }
        )
    )
    monkeypatch.setenv("BOSUN_CONFIG", str(path))
    return path


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


class Bosunctl:
    """Runs `bosunctl ARGS…` in-process (in a thread) and returns its exit code and output."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def _invoke(self, args: tuple[str, ...], stdin: str | None) -> Run:
        runner = CliRunner()
        result = runner.invoke(cli, list(args), input=stdin, prog_name="bosunctl")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # an unexpected error: show its traceback
        return Run(result.exit_code, result.stdout, result.stderr)

    async def __call__(self, *args: str, stdin: str | None = None) -> Run:
        return await asyncio.to_thread(self._invoke, args, stdin)

    def write(self, name: str, text: str) -> str:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)


@pytest.fixture
def bosunctl(config_file: Path, tmp_path: Path) -> Bosunctl:
    return Bosunctl(tmp_path / "manifests")
