"""MetricsServerInterceptor over a real grpc.aio server, and the /metrics endpoint."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from prometheus_client import CollectorRegistry, Counter

from bosun.common.metrics import MetricsServerInterceptor, start_metrics_server

SERVICE = "test.Metrics"


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A bytes-in, bytes-out callable for `method` (no serializers)."""
    return channel.unary_unary(method)


def streaming(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]:
    return channel.unary_stream(method)


async def ok(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


async def missing(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("unreachable")


async def conflict(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    context.set_code(grpc.StatusCode.ABORTED)
    return b""


async def crash(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    raise RuntimeError("handler bug")


async def stream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


async def stream_by_write(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    for _ in range(3):
        await context.write(request)


class Server:
    def __init__(self, registry: CollectorRegistry, channel: grpc.aio.Channel) -> None:
        self.registry = registry
        self.channel = channel

    async def unary(self, method: str) -> bytes:
        try:
            response: bytes = await unary(self.channel, f"/{SERVICE}/{method}")(b"x")
        finally:
            await self.settled()
        return response

    async def streamed(self, method: str) -> list[bytes]:
        try:
            return [r async for r in streaming(self.channel, f"/{SERVICE}/{method}")(b"x")]
        finally:
            await self.settled()

    async def settled(self) -> None:
        """Wait until every started RPC is counted as handled.

        A server may send an RPC's status (context.abort does) before the handler's frame, and
        the interceptor with it, has finished, so a client can see the end slightly before the
        count moves.
        """
        for _ in range(400):
            started = handled = 0.0
            for metric in self.registry.collect():
                for sample in metric.samples:
                    if sample.name == "bosun_grpc_server_started_total":
                        started += sample.value
                    elif sample.name == "bosun_grpc_server_handled_total":
                        handled += sample.value
            if started == handled:
                return
            await asyncio.sleep(0.005)

    def handled(self, method: str, code: str) -> float | None:
        return self.registry.get_sample_value(
            "bosun_grpc_server_handled_total",
            {"grpc_method": f"/{SERVICE}/{method}", "grpc_code": code},
        )

    def observed(self, method: str) -> float | None:
        return self.registry.get_sample_value(
            "bosun_grpc_server_handling_seconds_count", {"grpc_method": f"/{SERVICE}/{method}"}
        )


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    registry = CollectorRegistry()
    grpc_server = grpc.aio.server(interceptors=[MetricsServerInterceptor(registry=registry)])
    grpc_server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Ok": grpc.unary_unary_rpc_method_handler(ok),
                    "Missing": grpc.unary_unary_rpc_method_handler(missing),
                    "Conflict": grpc.unary_unary_rpc_method_handler(conflict),
                    "Crash": grpc.unary_unary_rpc_method_handler(crash),
                    "Stream": grpc.unary_stream_rpc_method_handler(stream),
                    "StreamByWrite": grpc.unary_stream_rpc_method_handler(stream_by_write),
                },
            ),
        )
    )
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Server(registry, channel)
    finally:
        await channel.close()
        await grpc_server.stop(None)


async def test_a_successful_unary_call_is_counted_as_ok_and_timed(server: Server) -> None:
    await server.unary("Ok")
    await server.unary("Ok")
    assert server.handled("Ok", "OK") == 2
    assert server.observed("Ok") == 2


async def test_an_aborted_call_is_counted_under_its_status_code(server: Server) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await server.unary("Missing")
    assert server.handled("Missing", "NOT_FOUND") == 1
    assert server.handled("Missing", "OK") is None


async def test_a_status_set_without_raising_is_counted_under_that_code(server: Server) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await server.unary("Conflict")
    assert server.handled("Conflict", "ABORTED") == 1


async def test_a_handler_exception_is_counted_as_unknown(server: Server) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await server.unary("Crash")
    assert server.handled("Crash", "UNKNOWN") == 1


async def test_a_server_streaming_generator_is_counted_once_when_it_ends(server: Server) -> None:
    assert len(await server.streamed("Stream")) == 3
    assert server.handled("Stream", "OK") == 1
    assert server.observed("Stream") == 1


async def test_a_server_stream_written_with_context_write_is_counted(server: Server) -> None:
    assert len(await server.streamed("StreamByWrite")) == 3
    assert server.handled("StreamByWrite", "OK") == 1


async def test_started_minus_handled_is_the_number_in_flight(server: Server) -> None:
    await server.unary("Ok")
    started = server.registry.get_sample_value(
        "bosun_grpc_server_started_total", {"grpc_method": f"/{SERVICE}/Ok"}
    )
    assert started == server.handled("Ok", "OK") == 1


async def test_calls_to_unimplemented_methods_are_not_counted(server: Server) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await server.unary("NoSuchMethod")
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert server.handled("NoSuchMethod", "UNIMPLEMENTED") is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_metrics_endpoint_serves_the_registry_in_text_format() -> None:
    registry = CollectorRegistry()
    Counter("bosun_test_things_total", "Things.", registry=registry).inc(3)
    server = start_metrics_server(free_port(), "127.0.0.1", registry=registry)
    assert server is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            body = r.read().decode()
    finally:
        server.close()
    assert "bosun_test_things_total 3.0" in body


def test_port_zero_disables_the_metrics_endpoint() -> None:
    assert start_metrics_server(0) is None


def test_interceptors_on_one_registry_share_their_collectors() -> None:
    registry = CollectorRegistry()
    MetricsServerInterceptor(registry=registry)
    MetricsServerInterceptor(registry=registry)  # would raise "Duplicated timeseries" otherwise
