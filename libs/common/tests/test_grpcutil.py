"""create_server / bind / create_channel / health and reflection, over real loopback sockets."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from bosun.common.grpcutil import (
    add_health_and_reflection,
    bind,
    create_channel,
    create_server,
    install_uvloop,
    wrap_method_handler,
)

SERVICE = "test.GrpcUtil"


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A bytes-in, bytes-out callable for `method` (no serializers)."""
    return channel.unary_unary(method)


async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


async def whoami(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    metadata = dict(context.invocation_metadata() or ())
    return str(metadata.get("authorization", "")).encode()


def service() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "WhoAmI": grpc.unary_unary_rpc_method_handler(whoami),
        },
    )


async def serve(
    server: grpc.aio.Server, *, tls_cert: bytes | None = None, tls_key: bytes | None = None
) -> int:
    server.add_generic_rpc_handlers((service(),))
    port = bind(server, "127.0.0.1:0", tls_cert=tls_cert, tls_key=tls_key)
    await server.start()
    return port


async def handled_count(labels: dict[str, str], expected: float) -> float | None:
    """The handled counter once it reaches `expected` (an aborting handler's status can reach
    the client a moment before the interceptor counts it), or its value after a short wait."""
    for _ in range(400):
        value = REGISTRY.get_sample_value("bosun_grpc_server_handled_total", labels)
        if value == expected:
            break
        await asyncio.sleep(0.005)
    return value


@pytest.fixture
async def server() -> AsyncIterator[tuple[grpc.aio.Server, int]]:
    grpc_server = create_server(max_message_bytes=1024)
    port = await serve(grpc_server)
    try:
        yield grpc_server, port
    finally:
        await grpc_server.stop(None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(directory / "key.pem"),
            "-out",
            str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return (directory / "cert.pem").read_bytes(), (directory / "key.pem").read_bytes()


# ----------------------------------------------------------------------------- servers


async def test_a_created_server_counts_requests_in_the_default_registry(
    server: tuple[grpc.aio.Server, int],
) -> None:
    _, port = server
    labels = {"grpc_method": f"/{SERVICE}/Echo", "grpc_code": "OK"}
    before = REGISTRY.get_sample_value("bosun_grpc_server_handled_total", labels) or 0
    async with create_channel(f"127.0.0.1:{port}") as channel:
        assert await unary(channel, f"/{SERVICE}/Echo")(b"hi") == b"hi"
    assert await handled_count(labels, before + 1) == before + 1


async def test_a_created_server_rejects_requests_over_its_message_limit(
    server: tuple[grpc.aio.Server, int],
) -> None:
    _, port = server
    async with create_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await unary(channel, f"/{SERVICE}/Echo")(b"x" * 2048)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_created_server_runs_extra_interceptors_after_its_own() -> None:
    class Deny(grpc.aio.ServerInterceptor):
        async def intercept_service(
            self, continuation: Any, details: grpc.HandlerCallDetails
        ) -> grpc.RpcMethodHandler[Any, Any]:
            async def deny(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
                return b""

            return grpc.unary_unary_rpc_method_handler(deny)

    grpc_server = create_server(interceptors=[Deny()])
    port = await serve(grpc_server)
    labels = {"grpc_method": f"/{SERVICE}/Echo", "grpc_code": "PERMISSION_DENIED"}
    before = REGISTRY.get_sample_value("bosun_grpc_server_handled_total", labels) or 0
    try:
        async with create_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await unary(channel, f"/{SERVICE}/Echo")(b"hi")
    finally:
        await grpc_server.stop(None)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert await handled_count(labels, before + 1) == before + 1


def test_bind_needs_both_certificate_and_key() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="both"):
            bind(grpc.aio.server(), "127.0.0.1:0", tls_cert=b"cert")

    asyncio.run(main())


async def test_sync_handlers_are_left_unwrapped() -> None:
    def sync_handler(request: bytes, context: object) -> bytes:
        return request

    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(sync_handler)
    assert wrap_method_handler(handler, lambda request, context: nullcontext()) is handler


# --------------------------------------------------------------------- health, reflection


async def test_health_reports_each_named_service_and_the_server_as_serving() -> None:
    other = create_server()
    add_health_and_reflection(other, [SERVICE])
    port = await serve(other)
    try:
        async with create_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICE):
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
    finally:
        await other.stop(None)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_status_can_be_changed_through_the_returned_servicer() -> None:
    grpc_server = create_server()
    servicer = add_health_and_reflection(grpc_server, [SERVICE])
    port = await serve(grpc_server)
    try:
        await servicer.enter_graceful_shutdown()
        async with create_channel(f"127.0.0.1:{port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE)
            )
    finally:
        await grpc_server.stop(None)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_reflection_lists_the_named_services_and_health() -> None:
    grpc_server = create_server()
    add_health_and_reflection(grpc_server, [SERVICE])
    port = await serve(grpc_server)
    try:
        async with create_channel(f"127.0.0.1:{port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            reply = await call.read()
            call.cancel()
    finally:
        await grpc_server.stop(None)
    names = {svc.name for svc in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


# ---------------------------------------------------------------------------- channels


async def test_a_token_is_sent_as_bearer_metadata_without_tls(
    server: tuple[grpc.aio.Server, int],
) -> None:
    _, port = server
    async with create_channel(f"127.0.0.1:{port}", token="s3cret") as channel:
        assert await unary(channel, f"/{SERVICE}/WhoAmI")(b"") == b"Bearer s3cret"


async def test_a_channel_without_a_token_sends_no_authorization(
    server: tuple[grpc.aio.Server, int],
) -> None:
    _, port = server
    async with create_channel(f"127.0.0.1:{port}") as channel:
        assert await unary(channel, f"/{SERVICE}/WhoAmI")(b"") == b""


async def test_tls_channel_reaches_a_tls_server_and_sends_the_token(
    certificate: tuple[bytes, bytes],
) -> None:
    cert, key = certificate
    grpc_server = create_server()
    port = await serve(grpc_server, tls_cert=cert, tls_key=key)
    try:
        async with create_channel(f"localhost:{port}", ca_cert=cert, token="tls-token") as channel:
            reply = await unary(channel, f"/{SERVICE}/WhoAmI")(b"", timeout=10)
    finally:
        await grpc_server.stop(None)
    assert reply == b"Bearer tls-token"


async def test_a_channel_traces_its_calls(server: tuple[grpc.aio.Server, int]) -> None:
    _, port = server
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with create_channel(f"127.0.0.1:{port}", tracer_provider=provider) as channel:
        await unary(channel, f"/{SERVICE}/Echo")(b"hi")
    [span] = exporter.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert span.name == f"{SERVICE}/Echo"


# -------------------------------------------------------------------------- event loop


def test_install_uvloop_makes_new_event_loops_uvloop() -> None:
    pytest.importorskip("uvloop")
    try:
        assert install_uvloop()
        loop = asyncio.new_event_loop()
        try:
            assert type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
