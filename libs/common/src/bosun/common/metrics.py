"""Prometheus metrics: the `/metrics` endpoint and a gRPC server interceptor.

    start_metrics_server(9090)                                  # port 0: no endpoint
    server = grpc.aio.server(interceptors=[MetricsServerInterceptor()])

Every RPC a server handles is counted and timed, whatever its shape (unary or server-streaming,
coroutine or async generator):

* `bosun_grpc_server_started_total{grpc_method}`: RPCs begun (started - handled = in flight);
* `bosun_grpc_server_handled_total{grpc_method,grpc_code}`: RPCs finished, by status code name;
* `bosun_grpc_server_handling_seconds{grpc_method}`: time from the handler's start to its end
  (for a stream, the stream's whole life).

`grpc_method` is the full method path (`/bosun.api.apiserver.v1.ApiServer/Get`). Methods the
server does not implement are not counted, so a scan of made-up names cannot grow the label set.

The endpoint is prometheus_client's HTTP server on a daemon thread: scrapes never run on, or
wait for, the event loop. Metrics live in a CollectorRegistry (the process-wide default unless
one is passed), and counting is a lock-protected increment, safe from any thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Thread
from typing import Any, TypeVar
from weakref import WeakKeyDictionary
from wsgiref.simple_server import WSGIServer

import grpc
import grpc.aio
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from bosun.common.grpcutil import RpcScope, status_code_of, wrap_method_handler

__all__ = ["MetricsServer", "MetricsServerInterceptor", "start_metrics_server"]

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)


@dataclass(frozen=True)
class MetricsServer:
    """A running /metrics endpoint."""

    port: int
    server: WSGIServer
    thread: Thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    port: int, host: str = "0.0.0.0", *, registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve `registry` at http://host:port/metrics from a daemon thread; port 0 disables it."""
    if port == 0:
        return None
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])
    log.info("serving metrics on %s:%d/metrics", host, bound)
    return MetricsServer(port=bound, server=server, thread=thread)


class _ServerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "bosun_grpc_server_started_total",
            "gRPC requests started on the server.",
            ["grpc_method"],
            registry=registry,
        )
        self.handled = Counter(
            "bosun_grpc_server_handled_total",
            "gRPC requests completed on the server, by status code.",
            ["grpc_method", "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "bosun_grpc_server_handling_seconds",
            "Time a gRPC request took from start to finish on the server (streams: lifetime).",
            ["grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


_by_registry: WeakKeyDictionary[CollectorRegistry, _ServerMetrics] = WeakKeyDictionary()


def _metrics_for(registry: CollectorRegistry) -> _ServerMetrics:
    # One set of collectors per registry: registering the same names twice raises.
    metrics = _by_registry.get(registry)
    if metrics is None:
        metrics = _by_registry[registry] = _ServerMetrics(registry)
    return metrics


def server_metrics_scope(method: str, *, registry: CollectorRegistry = REGISTRY) -> RpcScope:
    """The scope that counts and times one RPC of `method` (labels resolved once, here)."""
    metrics = _metrics_for(registry)
    started = metrics.started.labels(method)
    seconds = metrics.seconds.labels(method)
    handled = metrics.handled

    @contextmanager
    def observe(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[None]:
        started.inc()
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            handled.labels(method, status_code_of(context, error).name).inc()
            seconds.observe(time.perf_counter() - start)

    return observe


class MetricsServerInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every RPC the server handles (see the module docstring)."""

    def __init__(self, *, registry: CollectorRegistry = REGISTRY) -> None:
        self._registry = registry
        _metrics_for(registry)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Req, Resp] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Req, Resp] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        scope = server_metrics_scope(handler_call_details.method, registry=self._registry)
        return wrap_method_handler(handler, scope)
