"""OpenTelemetry tracing: provider set-up and gRPC interceptors for both ends of every RPC.

    configure_tracing("bosun-scheduler", exporter="otlp", endpoint="http://collector:4317")
    server = grpc.aio.server(interceptors=[TracingServerInterceptor()])
    channel = grpc.aio.insecure_channel(target, interceptors=tracing_client_interceptors())

One trace follows a request across components: the client interceptor starts a CLIENT span
and injects its context into the call's metadata (W3C `traceparent`, through the globally
configured propagator, which is W3C trace context + baggage unless OTEL_PROPAGATORS says
otherwise); the server interceptor extracts it and runs the handler inside a SERVER span that is
that span's child, so handler logs (see bosun.common.logging) and nested client calls join the
same trace.

Spans are named `package.Service/Method` and carry `rpc.system`, `rpc.service`, `rpc.method`,
`rpc.grpc.status_code` and, read from the request, what it is about: `bosun.kind`,
`bosun.namespace`, `bosun.name` (from `kind`/`namespace`/`name` fields, or the `object`
envelope of Create/Update) and `bosun.verb` (the method in snake case: `get`, `update_status`).
A CLIENT span is an error for any status but OK; a SERVER span only for the codes that mean the
server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) —
NOT_FOUND or a conflict is the API working.

The interceptors are written on the OpenTelemetry API alone. A unary client span ends when the
call completes; a streaming one when the stream ends or is cancelled (from the call's done
callback), so a watch that is torn down still closes its span.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from bosun.api.v1 import object_pb2
from bosun.common import kinds
from bosun.common.grpcutil import RpcScope, status_code_of, wrap_method_handler
from bosun.common.tracefile import JsonLinesSpanExporter

__all__ = [
    "TracingServerInterceptor",
    "TracingUnaryStreamClientInterceptor",
    "TracingUnaryUnaryClientInterceptor",
    "add_tracing_arguments",
    "bosun_attributes",
    "configure_tracing",
    "configure_tracing_from_arguments",
    "configure_tracing_from_environment",
    "exporter_from_environment",
    "server_span_scope",
    "tracing_client_interceptors",
]

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")

INSTRUMENTATION_NAME = "bosun.common.tracing"

_SERVER_ERROR_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_OTLP_EXPORTERS = (
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)


# ------------------------------------------------------------------------------ set-up


OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACE_FILE_VARIABLE = "BOSUN_TRACE_FILE"


def exporter_from_environment(environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(exporter, endpoint) as the environment asks: OTLP when an OTLP endpoint is set, else a
    JSON-lines file when BOSUN_TRACE_FILE is set, else none. OTLP reads its endpoint (and
    headers, certificates) from the OTEL_EXPORTER_OTLP_* variables itself."""
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in OTLP_ENDPOINT_VARIABLES):
        return "otlp", None
    if env.get(TRACE_FILE_VARIABLE):
        return "file", env[TRACE_FILE_VARIABLE]
    return "none", None


def configure_tracing_from_environment(service_name: str) -> SdkTracerProvider:
    """`configure_tracing` with the exporter the environment asks for (see above)."""
    exporter, endpoint = exporter_from_environment()
    return configure_tracing(service_name, exporter=exporter, endpoint=endpoint)


def add_tracing_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--tracing-exporter`/`--tracing-endpoint` flags every component takes."""
    parser.add_argument(
        "--tracing-exporter",
        choices=("auto", "none", "console", "otlp", "file"),
        default="auto",
        help="auto: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, a JSON-lines file when "
        "BOSUN_TRACE_FILE is set, otherwise none",
    )
    parser.add_argument(
        "--tracing-endpoint", default=None, help="OTLP endpoint, or the file for 'file'"
    )


def configure_tracing_from_arguments(
    service_name: str, args: argparse.Namespace
) -> SdkTracerProvider:
    if args.tracing_exporter == "auto":
        return configure_tracing_from_environment(service_name)
    return configure_tracing(
        service_name, exporter=args.tracing_exporter, endpoint=args.tracing_endpoint
    )


def configure_tracing(
    service_name: str, *, exporter: str = "none", endpoint: str | None = None
) -> SdkTracerProvider:
    """Install the process's tracer provider and return it (call `.shutdown()` at exit).

    exporter: "none" installs nothing: spans are the API's non-recording ones, which still
    carry a caller's trace context on to logs and downstream calls at almost no cost (recording
    spans that nobody exports cost about a tenth of an apiserver's request throughput);
    "console" (stdout), "otlp" (to `endpoint`, or the OTEL_EXPORTER_OTLP_* defaults), or
    "file" (JSON lines appended to the path `endpoint`; see bosun.common.tracefile). The global
    provider can be set once per process; later calls only return a new, unused provider.
    """
    provider = SdkTracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    span_exporter: SpanExporter | None
    if exporter == "none":
        span_exporter = None
    elif exporter == "console":
        span_exporter = ConsoleSpanExporter(service_name=service_name)
    elif exporter == "otlp":
        span_exporter = _otlp_exporter(endpoint)
    elif exporter == "file":
        if not endpoint:
            raise ValueError("tracing exporter 'file' needs a path")
        span_exporter = JsonLinesSpanExporter(endpoint)
    else:
        raise ValueError(f"unknown tracing exporter {exporter!r} (none, console, otlp, file)")
    if span_exporter is None:
        return provider
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    return provider


def _otlp_exporter(endpoint: str | None) -> SpanExporter | None:
    for module_name in _OTLP_EXPORTERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        exporter: SpanExporter = (
            module.OTLPSpanExporter(endpoint=endpoint) if endpoint else module.OTLPSpanExporter()
        )
        return exporter
    log.error(
        "tracing exporter 'otlp' needs the opentelemetry-exporter-otlp package, which is not "
        "installed; spans will not be exported"
    )
    return None


# ------------------------------------------------------------------------- attributes


def _split_method(method: str | bytes) -> tuple[str, str, str]:
    """'/pkg.Service/Method' → ('pkg.Service/Method', 'pkg.Service', 'Method')."""
    path = method.decode() if isinstance(method, bytes) else method
    path = path.lstrip("/")
    service, _, name = path.rpartition("/")
    return path, service, name


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@lru_cache(maxsize=256)
def _verb(method_name: str) -> str:
    return _CAMEL.sub("_", method_name).lower()


@lru_cache(maxsize=256)
def _request_shape(descriptor: Descriptor) -> tuple[tuple[str, ...], bool]:
    """Which of kind/namespace/name the message has as strings, and whether `object` is an
    Object envelope."""
    fields = descriptor.fields_by_name
    strings = tuple(
        name
        for name in ("kind", "namespace", "name")
        if name in fields and fields[name].type == fields[name].TYPE_STRING
    )
    envelope = fields.get("object")
    has_envelope = (
        envelope is not None
        and envelope.message_type is not None
        and envelope.message_type.full_name == object_pb2.Object.DESCRIPTOR.full_name
    )
    return strings, has_envelope


def bosun_attributes(method_name: str, request: object) -> dict[str, str]:
    """The `bosun.*` span attributes for a request (empty for non-API messages)."""
    if not isinstance(request, Message):
        return {}
    strings, has_envelope = _request_shape(request.DESCRIPTOR)
    attributes: dict[str, str] = {}
    for field in strings:
        value = getattr(request, field)
        if value:
            attributes[f"bosun.{field}"] = value
    if has_envelope and request.HasField("object"):  # type: ignore[arg-type]
        try:
            info, obj = kinds.unwrap(request.object)  # type: ignore[attr-defined]
        except kinds.UnknownKindError:
            pass
        else:
            attributes.setdefault("bosun.kind", info.kind)
            if obj.metadata.namespace:
                attributes.setdefault("bosun.namespace", obj.metadata.namespace)
            if obj.metadata.name:
                attributes.setdefault("bosun.name", obj.metadata.name)
    if attributes or has_envelope:
        attributes["bosun.verb"] = _verb(method_name)
    return attributes


def _rpc_attributes(method: str | bytes, request: object) -> tuple[str, dict[str, Any]]:
    span_name, service, name = _split_method(method)
    attributes: dict[str, Any] = {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": name,
    }
    attributes.update(bosun_attributes(name, request))
    return span_name, attributes


def _carrier(metadata: Iterable[Any] | None) -> dict[str, str]:
    return {key: value for key, value in (metadata or ()) if isinstance(value, str)}


def _end_span(span: Span, code: grpc.StatusCode, details: str | None, *, client: bool) -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not grpc.StatusCode.OK and (client or code in _SERVER_ERROR_CODES):
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
    span.end()


# ----------------------------------------------------------------------------- server


def server_span_scope(method: str, *, tracer_provider: TracerProvider | None = None) -> RpcScope:
    """The scope that runs one RPC of `method` in a SERVER span continuing the caller's trace.

    Built once per method (see grpcutil.instrument_handler) or per call by the interceptor.
    """
    tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)

    @contextmanager
    def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[None]:
        span_name, attributes = _rpc_attributes(method, request)
        parent = propagate.extract(_carrier(context.invocation_metadata()))
        span = tracer.start_span(
            span_name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        error: BaseException | None = None
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                yield
        except BaseException as exc:
            error = exc
            if not isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError):
                span.record_exception(exc)
            raise
        finally:
            details = context.details() if hasattr(context, "details") else None
            _end_span(span, status_code_of(context, error), details, client=False)

    return traced


class TracingServerInterceptor(grpc.aio.ServerInterceptor):
    """Runs each RPC in a SERVER span, continuing the caller's trace from its metadata."""

    def __init__(self, *, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer_provider = tracer_provider

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
        scope = server_span_scope(
            handler_call_details.method, tracer_provider=self._tracer_provider
        )
        return wrap_method_handler(handler, scope)


# ----------------------------------------------------------------------------- client


class _ClientTracing:
    def __init__(self, tracer_provider: TracerProvider | None) -> None:
        self._tracer = trace.get_tracer(INSTRUMENTATION_NAME, tracer_provider=tracer_provider)
        self._finishing: set[asyncio.Task[None]] = set()

    def _start(self, details: Any, request: object) -> tuple[Span, Any]:
        span_name, attributes = _rpc_attributes(details.method, request)
        span = self._tracer.start_span(span_name, kind=SpanKind.CLIENT, attributes=attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        metadata = grpc.aio.Metadata(*tuple(details.metadata or ()))
        for key, value in carrier.items():
            metadata[key] = value
        new_details = grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            details.wait_for_ready,
        )
        return span, new_details

    @staticmethod
    def _fail(span: Span, error: BaseException) -> None:
        if isinstance(error, grpc.aio.AioRpcError):
            _end_span(span, error.code(), error.details(), client=True)
            return
        if isinstance(error, asyncio.CancelledError):
            _end_span(span, grpc.StatusCode.CANCELLED, None, client=True)
            return
        span.record_exception(error)
        _end_span(span, grpc.StatusCode.UNKNOWN, str(error), client=True)

    async def _finish(self, span: Span, call: Any) -> None:
        try:
            code = await call.code()
            details = await call.details()
        except BaseException as error:  # cancelled while asking: still end the span
            self._fail(span, error)
            raise
        _end_span(span, code, details, client=True)

    def _finish_when_done(self, span: Span, call: Any) -> None:
        def done(_: Any) -> None:
            task = asyncio.ensure_future(self._finish(span, call))
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)

        call.add_done_callback(done)


class TracingUnaryUnaryClientInterceptor(
    _ClientTracing,
    grpc.aio.UnaryUnaryClientInterceptor,
):
    """A CLIENT span per unary call; the trace context goes out in the call's metadata."""

    def __init__(self, *, tracer_provider: TracerProvider | None = None) -> None:
        _ClientTracing.__init__(self, tracer_provider)

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        span, new_details = self._start(details, request)
        try:
            call = await continuation(new_details, request)
        except BaseException as error:
            self._fail(span, error)
            raise
        try:
            await call  # the caller awaits the same call and gets the same response or error
        except grpc.aio.AioRpcError:
            pass
        except BaseException as error:
            call.cancel()
            self._fail(span, error)
            raise
        _end_span(span, await call.code(), await call.details(), client=True)
        return call


class TracingUnaryStreamClientInterceptor(
    _ClientTracing,
    grpc.aio.UnaryStreamClientInterceptor,
):
    """A CLIENT span per server-streaming call, ended when the stream ends or is cancelled."""

    def __init__(self, *, tracer_provider: TracerProvider | None = None) -> None:
        _ClientTracing.__init__(self, tracer_provider)

    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        span, new_details = self._start(details, request)
        try:
            call = await continuation(new_details, request)
        except BaseException as error:
            self._fail(span, error)
            raise
        self._finish_when_done(span, call)
        return call


def tracing_client_interceptors(
    *, tracer_provider: TracerProvider | None = None
) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for a grpc.aio channel: client spans for unary and server-streaming calls."""
    return [
        TracingUnaryUnaryClientInterceptor(tracer_provider=tracer_provider),
        TracingUnaryStreamClientInterceptor(tracer_provider=tracer_provider),
    ]
