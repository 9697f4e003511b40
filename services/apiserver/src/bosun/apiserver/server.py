"""Assembly of an apiserver: storage, one watch cache per kind, the registry and the gRPC server.

`ApiServer.start()` connects to etcd (waiting for it), starts the caches, creates the system
namespaces and begins serving; `stop(grace)` stops accepting requests, lets in-flight ones
finish within `grace` seconds, ends watches and closes etcd. Tests run it in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health

from bosun.api.kubelet.v1 import kubelet_pb2_grpc
from bosun.apiserver.allocation import ServiceRanges
from bosun.apiserver.compactor import Compactor
from bosun.apiserver.kubeletproxy import SERVICE_NAME as KUBELET_PROXY
from bosun.apiserver.kubeletproxy import KubeletProxy
from bosun.apiserver.registry import MAX_OBJECT_BYTES, Registry, prefix_for
from bosun.apiserver.service import SERVICE_NAME, ApiService, generic_handler
from bosun.apiserver.storage import EtcdStorage, StorageError
from bosun.apiserver.watchcache import WatchCache
from bosun.common import kinds
from bosun.common.grpcutil import add_health_and_reflection, bind, create_server

log = logging.getLogger(__name__)


@dataclass
class ApiServerConfig:
    etcd_servers: Sequence[str]
    listen: str = "127.0.0.1:6443"
    watch_cache_size: int = 10_000
    watcher_buffer: int = 1_000
    replay_revisions: int = 10_000
    compaction_interval: float = 300.0
    max_inflight: int = 400
    bookmark_interval: float = 5.0
    max_object_bytes: int = MAX_OBJECT_BYTES
    # Requests up to this size reach the handlers, which refuse objects over the object limit
    # with a clear message; grpc itself refuses anything larger.
    max_message_bytes: int = 8 * 1024 * 1024
    # Spans and Prometheus metrics for every ApiServer RPC; `interceptors` run inside them.
    metrics: bool = True
    tracing: bool = True
    interceptors: Sequence[grpc.aio.ServerInterceptor] = field(default_factory=list)
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"


class ApiServer:
    def __init__(self, config: ApiServerConfig) -> None:
        self.config = config
        self.storage = EtcdStorage(config.etcd_servers)
        self.caches = {
            info.kind: WatchCache(
                info,
                self.storage,
                prefix=prefix_for(info),
                capacity=config.watch_cache_size,
                watcher_buffer=config.watcher_buffer,
                replay_revisions=config.replay_revisions,
            )
            for info in kinds.KINDS.values()
        }
        self.registry = Registry(
            self.storage,
            self.caches,
            max_object_bytes=config.max_object_bytes,
            service_ranges=ServiceRanges.parse(
                config.service_cluster_ip_range, config.service_node_port_range
            ),
        )
        self.service = ApiService(
            self.registry,
            self.caches,
            max_inflight=config.max_inflight,
            bookmark_interval=config.bookmark_interval,
        )
        self.compactor = Compactor(self.storage, interval=config.compaction_interval)
        # Pod logs, exec and stats, forwarded to the pod's kubelet.
        self.kubelet_proxy = KubeletProxy(self.registry.get)
        self.health: health.aio.HealthServicer | None = None
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self, *, etcd_timeout: float = 60.0) -> None:
        await self.storage.connect()
        await self._wait_for_etcd(etcd_timeout)
        for cache in self.caches.values():
            cache.start()
        await asyncio.gather(*(cache.ready.wait() for cache in self.caches.values()))
        await self.registry.ensure_system_namespaces()
        self._tasks.append(asyncio.create_task(self.compactor.run(), name="compactor"))

        # The ApiServer service is instrumented once per method, which is cheaper than
        # interceptors; health checks and reflection are left uninstrumented.
        server = create_server(
            interceptors=self.config.interceptors,
            max_message_bytes=self.config.max_message_bytes,
            metrics=False,
            tracing=False,
        )
        handler = generic_handler(
            self.service, metrics=self.config.metrics, tracing=self.config.tracing
        )
        server.add_generic_rpc_handlers((handler,))
        kubelet_pb2_grpc.add_KubeletServicer_to_server(self.kubelet_proxy, server)
        self.health = add_health_and_reflection(server, [SERVICE_NAME, KUBELET_PROXY])
        self.port = bind(
            server, self.config.listen, tls_cert=self.config.tls_cert, tls_key=self.config.tls_key
        )
        await server.start()
        self.server = server
        log.info("apiserver serving on port %d", self.port)

    async def _wait_for_etcd(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self.storage.current_revision()
                return
            except StorageError as error:
                if loop.time() > deadline:
                    raise
                log.warning("waiting for etcd: %s", error)
                await asyncio.sleep(0.5)

    async def stop(self, grace: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.health is not None:
            await self.health.enter_graceful_shutdown()
        for cache in self.caches.values():
            await cache.stop()
        if self.server is not None:
            await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.kubelet_proxy.close()
        await self.storage.close()

    async def wait(self) -> None:
        if self.server is not None:
            await self.server.wait_for_termination()
