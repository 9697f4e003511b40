"""gRPC plumbing shared by every component: servers, channels, health, and handler wrapping.

    server = create_server()                       # tracing + metrics interceptors built in
    server.add_generic_rpc_handlers(...)
    health = add_health_and_reflection(server, [SERVICE_NAME])
    port = bind(server, "0.0.0.0:6443", tls_cert=cert, tls_key=key)
    await server.start()

    channel = create_channel("apiserver:6443", ca_cert=ca, token=token)

Design notes:

* Keepalive is set on both ends so a dead peer is noticed within ~40 s even on an idle watch
  stream: clients ping every 30 s (also without data, for long quiet watches) and servers accept
  pings as often as every 10 s, so a client is never sent GOAWAY "too_many_pings".
* A bearer token rides on TLS as call credentials; gRPC refuses call credentials on plaintext
  channels, so without TLS (tests, a local cluster) a small interceptor adds the same
  `authorization: Bearer …` metadata instead.
* `wrap_method_handler` is the one place that knows the handler shapes of grpc.aio (unary or
  streaming request and response; coroutine, or async generator for streamed responses). The
  metrics and tracing server interceptors only supply a context manager to run around each
  RPC, entered in the task that runs the handler, so span context and timers see exactly the
  handler's lifetime.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "BearerTokenInterceptor",
    "RpcScope",
    "add_health_and_reflection",
    "bind",
    "channel_options",
    "create_channel",
    "create_server",
    "install_uvloop",
    "server_options",
    "status_code_of",
    "wrap_method_handler",
]

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest request a server accepts by default (gRPC's own default)."""

DEFAULT_CHANNEL_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
"""Largest message a client sends or receives by default (a big List can be large)."""

Option = tuple[str, Any]


# ----------------------------------------------------------------------------- servers


def server_options(
    *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, extra: Sequence[Option] = ()
) -> list[Option]:
    """Channel arguments for a server; `extra` overrides any default of the same name."""
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": max_message_bytes,
        "grpc.max_send_message_length": max(max_message_bytes, DEFAULT_CHANNEL_MAX_MESSAGE_BYTES),
        "grpc.keepalive_time_ms": 60_000,
        "grpc.keepalive_timeout_ms": 20_000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.min_ping_interval_without_data_ms": 10_000,
        "grpc.http2.max_ping_strikes": 0,
    }
    options.update(dict(extra))
    return list(options.items())


def create_server(
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_concurrent_rpcs: int | None = None,
    options: Sequence[Option] = (),
    metrics: bool = True,
    tracing: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> grpc.aio.Server:
    """A grpc.aio server with tracing (outermost), metrics, then `interceptors`.

    Tracing and metrics come first so that a request an inner interceptor rejects (for
    example authentication) is still traced and counted.
    """
    # Imported here: metrics and tracing import this module for wrap_method_handler.
    from bosun.common.metrics import MetricsServerInterceptor
    from bosun.common.tracing import TracingServerInterceptor

    chain: list[grpc.aio.ServerInterceptor] = []
    if tracing:
        chain.append(TracingServerInterceptor(tracer_provider=tracer_provider))
    if metrics:
        chain.append(MetricsServerInterceptor())
    chain.extend(interceptors)
    return grpc.aio.server(
        interceptors=chain,
        options=server_options(max_message_bytes=max_message_bytes, extra=options),
        maximum_concurrent_rpcs=max_concurrent_rpcs,
    )


def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Iterable[str]
) -> health.aio.HealthServicer:
    """Serve grpc.health.v1 (every name in `service_names` and "" SERVING) and reflection.

    Call `await servicer.set(name, status)` to change a status later, and
    `await servicer.enter_graceful_shutdown()` when draining.
    """
    names = tuple(service_names)
    servicer = health.aio.HealthServicer()
    for name in names:
        # The aio servicer's `set` is a coroutine only to notify Watch streams; none can exist
        # before the server starts, so the initial statuses are stored directly.
        servicer._server_status[name] = health_pb2.HealthCheckResponse.SERVING
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection(
        (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return servicer


def bind(
    server: grpc.aio.Server,
    address: str,
    *,
    tls_cert: bytes | None = None,
    tls_key: bytes | None = None,
) -> int:
    """Listen on `address` ("host:port"; port 0 picks one), with TLS when given a PEM cert and
    key; returns the bound port."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("TLS needs both a certificate and its private key")
    if tls_cert is not None and tls_key is not None:
        credentials = grpc.ssl_server_credentials([(tls_key, tls_cert)])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if not port:
        raise RuntimeError(f"could not bind gRPC server to {address}")
    return int(port)


# ---------------------------------------------------------------------------- channels


def channel_options(
    *, max_message_bytes: int = DEFAULT_CHANNEL_MAX_MESSAGE_BYTES, extra: Sequence[Option] = ()
) -> list[Option]:
    """Channel arguments for a client; `extra` overrides any default of the same name."""
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": max_message_bytes,
        "grpc.max_send_message_length": max_message_bytes,
        "grpc.keepalive_time_ms": 30_000,
        "grpc.keepalive_timeout_ms": 10_000,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.http2.max_pings_without_data": 0,
        # Reconnect soon after an apiserver restart rather than backing off to two minutes.
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 5_000,
    }
    options.update(dict(extra))
    return list(options.items())


def create_channel(
    target: str,
    *,
    ca_cert: bytes | None = None,
    token: str | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    options: Sequence[Option] = (),
    max_message_bytes: int = DEFAULT_CHANNEL_MAX_MESSAGE_BYTES,
    tls_server_name: str | None = None,
    tracing: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> grpc.aio.Channel:
    """A grpc.aio channel: TLS when `ca_cert` (PEM) is given, a bearer `token` on every call,
    client tracing interceptors (unless tracing=False), then `interceptors`."""
    extra = list(options)
    if tls_server_name is not None:
        extra.append(("grpc.ssl_target_name_override", tls_server_name))
    channel_args = channel_options(max_message_bytes=max_message_bytes, extra=extra)
    chain: list[grpc.aio.ClientInterceptor] = []
    if tracing:
        from bosun.common.tracing import tracing_client_interceptors

        chain.extend(tracing_client_interceptors(tracer_provider=tracer_provider))
    if ca_cert is None:
        if token:
            chain.append(BearerTokenInterceptor(token))
        chain.extend(interceptors)
        return grpc.aio.insecure_channel(target, options=channel_args, interceptors=chain or None)
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_cert)
    if token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    chain.extend(interceptors)
    return grpc.aio.secure_channel(
        target, credentials, options=channel_args, interceptors=chain or None
    )


def _with_metadata(details: Any, extra: Sequence[tuple[str, str]]) -> Any:
    metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())))
    for key, value in extra:
        metadata.add(key, value)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class BearerTokenInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer <token>` to every call (for channels without TLS)."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request)

    async def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request_iterator)

    async def intercept_stream_stream(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request_iterator)


# -------------------------------------------------------------------- handler wrapping

RpcScope = Callable[[Any, "grpc.aio.ServicerContext[Any, Any]"], AbstractContextManager[object]]
"""Called with (request, context) as an RPC starts; the returned context manager is entered
for the handler's whole run. `request` is None for client-streaming methods."""

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def status_code_of(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
) -> grpc.StatusCode:
    """The status a server RPC ends with, given how its handler ended."""
    code: object = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    if error is not None:
        return grpc.StatusCode.UNKNOWN  # what grpc.aio reports for an unexpected exception
    return grpc.StatusCode.OK


def wrap_method_handler(
    handler: grpc.RpcMethodHandler[Req, Resp], scope: RpcScope
) -> grpc.RpcMethodHandler[Req, Resp]:
    """A handler that runs `handler` inside `scope(request, context)`.

    Synchronous handlers (run by grpc in a thread pool) are returned unwrapped.
    """
    # The stubs describe the synchronous server's handlers; grpc.aio's are coroutine functions
    # or async generator functions with the same slots, hence the Any below.
    behavior: Any
    make: Callable[..., grpc.RpcMethodHandler[Req, Resp]]
    streaming_request = False
    if handler.unary_unary is not None:
        behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    elif handler.unary_stream is not None:
        behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    elif handler.stream_unary is not None:
        behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        streaming_request = True
    elif handler.stream_stream is not None:
        behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        streaming_request = True
    else:
        return handler
    wrapped: Callable[[Any, Any], Any]

    if inspect.isasyncgenfunction(behavior):

        async def wrapped_generator(request: Any, context: Any) -> AsyncIterator[Any]:
            with scope(None if streaming_request else request, context):
                async for response in behavior(request, context):
                    yield response

        wrapped = wrapped_generator
    elif inspect.iscoroutinefunction(behavior):

        async def wrapped_coroutine(request: Any, context: Any) -> Any:
            with scope(None if streaming_request else request, context):
                return await behavior(request, context)

        wrapped = wrapped_coroutine
    else:
        return handler
    return make(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def instrument_handler(
    handler: grpc.RpcMethodHandler[Req, Resp],
    method: str,
    *,
    metrics: bool = True,
    tracing: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> grpc.RpcMethodHandler[Req, Resp]:
    """`handler` for `method` ("/package.Service/Method") with tracing (outermost) and metrics,
    wrapped once when the service is registered.

    The same telemetry as the interceptors of `create_server`, without their per-call cost: a
    grpc.aio interceptor is awaited and re-wraps the handler on every RPC, which costs a hot
    service (the apiserver) about a quarter of its request rate.
    """
    from bosun.common.metrics import server_metrics_scope
    from bosun.common.tracing import server_span_scope

    if metrics:
        handler = wrap_method_handler(handler, server_metrics_scope(method))
    if tracing:
        handler = wrap_method_handler(
            handler, server_span_scope(method, tracer_provider=tracer_provider)
        )
    return handler


# --------------------------------------------------------------------------- event loop


def install_uvloop() -> bool:
    """Make asyncio use uvloop when it is installed (call before asyncio.run); True if so."""
    try:
        import uvloop
    except ImportError:
        log.debug("uvloop is not installed; using the default asyncio event loop")
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
