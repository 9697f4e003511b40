"""Tracing interceptors over a real grpc.aio server: one trace across client and server spans."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.api.v1 import core_pb2, meta_pb2, object_pb2
from bosun.common import kinds
from bosun.common.grpcutil import instrument_handler
from bosun.common.tracing import (
    TracingServerInterceptor,
    bosun_attributes,
    configure_tracing,
    tracing_client_interceptors,
)

SERVICE = "bosun.api.apiserver.v1.ApiServer"


def unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """A bytes-in, bytes-out callable for `method` (no serializers)."""
    return channel.unary_unary(method)


def pod(name: str, namespace: str = "default") -> object_pb2.Object:
    return kinds.wrap(core_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace)))


async def get(
    request: apiserver_pb2.GetRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> Any:
    if request.name == "missing":
        await context.abort(grpc.StatusCode.NOT_FOUND, f"pods {request.name!r} not found")
    if request.name == "crash":
        raise RuntimeError("handler bug")
    return pod(request.name, request.namespace)


async def create(
    request: apiserver_pb2.CreateRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> Any:
    return request.object


async def watch(
    request: apiserver_pb2.WatchRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[apiserver_pb2.WatchEvent]:
    for name in ("a", "b"):
        yield apiserver_pb2.WatchEvent(object=pod(name))
    if request.namespace == "endless":
        await asyncio.Event().wait()


def handlers(tracer_provider: TracerProvider | None = None) -> grpc.GenericRpcHandler:
    """The test service; with a tracer provider, each method is instrumented at registration
    (grpcutil.instrument_handler) instead of by the interceptor."""
    serialize = object_pb2.Object.SerializeToString
    methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Get": grpc.unary_unary_rpc_method_handler(
            get,
            request_deserializer=apiserver_pb2.GetRequest.FromString,
            response_serializer=serialize,
        ),
        "Create": grpc.unary_unary_rpc_method_handler(
            create,
            request_deserializer=apiserver_pb2.CreateRequest.FromString,
            response_serializer=serialize,
        ),
        "Watch": grpc.unary_stream_rpc_method_handler(
            watch,
            request_deserializer=apiserver_pb2.WatchRequest.FromString,
            response_serializer=apiserver_pb2.WatchEvent.SerializeToString,
        ),
    }
    if tracer_provider is not None:
        methods = {
            name: instrument_handler(
                handler, f"/{SERVICE}/{name}", metrics=False, tracer_provider=tracer_provider
            )
            for name, handler in methods.items()
        }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


class Traced:
    def __init__(self, exporter: InMemorySpanExporter, channel: grpc.aio.Channel) -> None:
        self.exporter = exporter
        self.channel = channel
        self.get = channel.unary_unary(
            f"/{SERVICE}/Get",
            request_serializer=apiserver_pb2.GetRequest.SerializeToString,
            response_deserializer=object_pb2.Object.FromString,
        )
        self.create = channel.unary_unary(
            f"/{SERVICE}/Create",
            request_serializer=apiserver_pb2.CreateRequest.SerializeToString,
            response_deserializer=object_pb2.Object.FromString,
        )
        self.watch = channel.unary_stream(
            f"/{SERVICE}/Watch",
            request_serializer=apiserver_pb2.WatchRequest.SerializeToString,
            response_deserializer=apiserver_pb2.WatchEvent.FromString,
        )

    async def spans(self, count: int) -> tuple[ReadableSpan, ReadableSpan]:
        """The (client, server) spans once `count` spans have ended."""
        for _ in range(200):
            finished = self.exporter.get_finished_spans()
            if len(finished) >= count:
                break
            await asyncio.sleep(0.005)
        finished = self.exporter.get_finished_spans()
        [client] = [s for s in finished if s.kind is SpanKind.CLIENT]
        [server] = [s for s in finished if s.kind is SpanKind.SERVER]
        return client, server


@pytest.fixture(params=["interceptor", "instrumented-handlers"])
async def traced(request: pytest.FixtureRequest) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if request.param == "interceptor":
        server = grpc.aio.server(interceptors=[TracingServerInterceptor(tracer_provider=provider)])
        server.add_generic_rpc_handlers((handlers(),))
    else:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handlers(tracer_provider=provider),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", interceptors=tracing_client_interceptors(tracer_provider=provider)
    )
    try:
        yield Traced(exporter, channel)
    finally:
        await channel.close()
        await server.stop(None)


async def test_client_and_server_spans_of_a_call_share_one_trace(traced: Traced) -> None:
    await traced.get(apiserver_pb2.GetRequest(kind="Pod", namespace="default", name="web-0"))
    client, server = await traced.spans(2)
    assert client.context is not None
    assert server.context is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client.context.span_id


async def test_spans_are_named_after_the_method_and_carry_rpc_attributes(traced: Traced) -> None:
    await traced.get(apiserver_pb2.GetRequest(kind="Pod", namespace="default", name="web-0"))
    for span in await traced.spans(2):
        assert span.name == f"{SERVICE}/Get"
        assert span.attributes is not None
        assert span.attributes["rpc.method"] == "Get"
        assert span.attributes["rpc.service"] == SERVICE
        assert span.attributes["rpc.grpc.status_code"] == 0


async def test_spans_carry_kind_namespace_name_and_verb_from_request_fields(
    traced: Traced,
) -> None:
    await traced.get(apiserver_pb2.GetRequest(kind="Pod", namespace="prod", name="web-0"))
    for span in await traced.spans(2):
        assert span.attributes is not None
        assert span.attributes["bosun.kind"] == "Pod"
        assert span.attributes["bosun.namespace"] == "prod"
        assert span.attributes["bosun.name"] == "web-0"
        assert span.attributes["bosun.verb"] == "get"


async def test_spans_carry_kind_namespace_and_name_from_an_object_envelope(
    traced: Traced,
) -> None:
    await traced.create(apiserver_pb2.CreateRequest(object=pod("web-1", "prod")))
    for span in await traced.spans(2):
        assert span.attributes is not None
        assert span.attributes["bosun.kind"] == "Pod"
        assert span.attributes["bosun.namespace"] == "prod"
        assert span.attributes["bosun.name"] == "web-1"
        assert span.attributes["bosun.verb"] == "create"


async def test_a_failed_call_records_its_status_code_on_both_spans(traced: Traced) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await traced.get(apiserver_pb2.GetRequest(kind="Pod", name="missing"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    client, server = await traced.spans(2)
    assert client.attributes is not None
    assert server.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


async def test_not_found_is_a_client_error_but_not_a_server_error(traced: Traced) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await traced.get(apiserver_pb2.GetRequest(kind="Pod", name="missing"))
    client, server = await traced.spans(2)
    assert client.status.status_code is StatusCode.ERROR
    assert server.status.status_code is StatusCode.UNSET


async def test_a_handler_exception_is_recorded_as_an_unknown_server_error(traced: Traced) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await traced.get(apiserver_pb2.GetRequest(kind="Pod", name="crash"))
    _, server = await traced.spans(2)
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert server.status.status_code is StatusCode.ERROR
    assert [event.name for event in server.events] == ["exception"]


async def test_a_server_streaming_call_is_traced_on_both_sides(traced: Traced) -> None:
    call = traced.watch(apiserver_pb2.WatchRequest(kind="Pod", namespace="default"))
    events = [event async for event in call]
    assert len(events) == 2
    client, server = await traced.spans(2)
    assert client.context is not None
    assert server.context is not None
    assert server.context.trace_id == client.context.trace_id
    assert client.attributes is not None
    assert server.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == 0
    assert server.attributes["bosun.verb"] == "watch"
    assert server.attributes["bosun.kind"] == "Pod"


async def test_a_cancelled_stream_still_ends_its_client_span(traced: Traced) -> None:
    call = traced.watch(apiserver_pb2.WatchRequest(kind="Pod", namespace="endless"))
    await call.read()
    call.cancel()
    client, server = await traced.spans(2)
    assert client.attributes is not None
    assert server.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]


async def test_the_server_span_is_current_inside_the_handler() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[int] = []

    async def handler(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        from opentelemetry import trace

        seen.append(trace.get_current_span().get_span_context().span_id)
        return request

    server = grpc.aio.server(interceptors=[TracingServerInterceptor(tracer_provider=provider)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(handler)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await unary(channel, "/test.Echo/Echo")(b"hi") == b"hi"
    finally:
        await server.stop(None)
    [span] = exporter.get_finished_spans()
    assert span.context is not None
    assert seen == [span.context.span_id]
    assert span.parent is None
    assert span.attributes is not None
    assert "bosun.verb" not in span.attributes


def test_messages_that_name_no_object_get_no_bosun_attributes() -> None:
    assert bosun_attributes("Check", apiserver_pb2.ListResponse()) == {}
    assert bosun_attributes("Echo", b"raw") == {}


def test_verbs_are_the_method_name_in_snake_case() -> None:
    request = apiserver_pb2.UpdateRequest(object=pod("web-0"))
    assert bosun_attributes("UpdateStatus", request)["bosun.verb"] == "update_status"


def test_configure_tracing_rejects_an_unknown_exporter() -> None:
    with pytest.raises(ValueError, match="unknown tracing exporter"):
        configure_tracing("bosun-test", exporter="jaeger")
