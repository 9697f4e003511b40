"""The ApiServer gRPC service: request decoding, admission limits, error mapping, watch streams.

Handlers are registered through a generic handler rather than the generated servicer base so
that responses can be pre-serialized bytes (see `wire`): the registry and the watch cache hand
back `Object`/`ListResponse`/`WatchEvent` bytes, and the serializer passes bytes through.

Malformed request bytes are decoded by a deserializer that never raises; the handler turns the
failure into INVALID_ARGUMENT naming the message type, instead of grpc's opaque INTERNAL.

At most `max_inflight` unary requests run at once; past that a request is refused at once with
RESOURCE_EXHAUSTED (clients back off and retry) rather than queueing without bound. Watches are
long-running and not counted, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.apiserver.registry import Registry
from bosun.apiserver.storage import StorageError, StorageUnavailableError
from bosun.apiserver.watchcache import ExpiredError, NotReadyError, TooSlowError, WatchCache
from bosun.common.errors import ApiError
from bosun.common.grpcutil import instrument_handler

log = logging.getLogger(__name__)

SERVICE_NAME = "bosun.api.apiserver.v1.ApiServer"

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    type_name: str
    reason: str


def _deserializer(message_type: type[Message]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except (DecodeError, RuntimeError, ValueError) as error:
            return Malformed(message_type.DESCRIPTOR.full_name, str(error) or type(error).__name__)

    return deserialize


def _serialize(response: bytes | Message) -> bytes:
    if isinstance(response, bytes):
        return response
    return bytes(response.SerializeToString())


_WATCH_ERRORS: dict[type[Exception], grpc.StatusCode] = {
    ExpiredError: grpc.StatusCode.OUT_OF_RANGE,
    TooSlowError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    NotReadyError: grpc.StatusCode.UNAVAILABLE,
}


class ApiService:
    def __init__(
        self,
        registry: Registry,
        caches: dict[str, WatchCache],
        *,
        max_inflight: int = 400,
        bookmark_interval: float = 5.0,
    ) -> None:
        self.registry = registry
        self.caches = caches
        self.max_inflight = max_inflight
        self.bookmark_interval = bookmark_interval
        self.inflight = 0

    async def _call(
        self,
        request: Any,
        context: Context,
        handler: Callable[[Any], Awaitable[bytes]],
    ) -> bytes:
        if isinstance(request, Malformed):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request body is not a valid {request.type_name}: {request.reason}",
            )
        if self.inflight >= self.max_inflight:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"too many requests in flight (limit {self.max_inflight}); retry after a backoff",
            )
        self.inflight += 1
        try:
            return await handler(request)
        except ApiError as error:
            await context.abort(error.code, error.message)
        except (StorageUnavailableError, NotReadyError) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"storage unavailable: {error}")
        except StorageError as error:
            log.error("storage error: %s", error)
            await context.abort(grpc.StatusCode.INTERNAL, f"storage error: {error}")
        finally:
            self.inflight -= 1
        raise AssertionError("unreachable")  # context.abort always raises

    async def create(self, request: Any, context: Context) -> bytes:
        return await self._call(
            request,
            context,
            lambda r: self.registry.create(r.object, dry_run=r.dry_run),
        )

    async def get(self, request: Any, context: Context) -> bytes:
        return await self._call(
            request, context, lambda r: self.registry.get(r.kind, r.namespace, r.name)
        )

    async def list(self, request: Any, context: Context) -> bytes:
        return await self._call(request, context, self.registry.list)

    async def update(self, request: Any, context: Context) -> bytes:
        return await self._call(
            request, context, lambda r: self.registry.update(r.object, dry_run=r.dry_run)
        )

    async def update_status(self, request: Any, context: Context) -> bytes:
        return await self._call(
            request,
            context,
            lambda r: self.registry.update(r.object, status=True, dry_run=r.dry_run),
        )

    async def patch(self, request: Any, context: Context) -> bytes:
        return await self._call(request, context, self.registry.patch)

    async def delete(self, request: Any, context: Context) -> bytes:
        return await self._call(request, context, self.registry.delete)

    async def bind(self, request: Any, context: Context) -> bytes:
        return await self._call(request, context, self.registry.bind)

    async def watch(self, request: Any, context: Context) -> AsyncIterator[bytes]:
        if isinstance(request, Malformed):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request body is not a valid {request.type_name}: {request.reason}",
            )
        try:
            info = self.registry.kind(request.kind)
            namespace = request.namespace if info.namespaced else ""
            flt = self.registry.filter(
                info, namespace, request.label_selector, request.field_selector
            )
            cache = self.caches[info.kind]
            resource_version: int | None = None
            if request.resource_version not in ("", "0"):
                try:
                    resource_version = int(request.resource_version)
                except ValueError:
                    await context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f'resourceVersion: Invalid value: "{request.resource_version}": '
                        "must be an integer",
                    )
                await cache.wait_for_revision(resource_version)
            else:
                await cache.wait_fresh()
            watcher = cache.watch(flt, resource_version)
        except ApiError as error:
            await context.abort(error.code, error.message)
        except ExpiredError as error:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(error))
        except NotReadyError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

        try:
            while True:
                if watcher.error is not None:
                    code = _WATCH_ERRORS.get(type(watcher.error), grpc.StatusCode.UNAVAILABLE)
                    await context.abort(code, str(watcher.error))
                if watcher.buffer:
                    yield watcher.buffer.popleft()
                    continue
                watcher.wakeup.clear()
                try:
                    await asyncio.wait_for(watcher.wakeup.wait(), self.bookmark_interval)
                except TimeoutError:
                    if request.allow_bookmarks:
                        bookmark = watcher.bookmark()
                        if bookmark is not None:
                            yield bookmark
        finally:
            cache.watchers.discard(watcher)


def generic_handler(
    service: ApiService, *, metrics: bool = True, tracing: bool = True
) -> grpc.GenericRpcHandler:
    """The ApiServer service's handlers, each instrumented once (see instrument_handler)."""

    def unary(
        method: Callable[[Any, Context], Awaitable[bytes]],
        request_type: type[Message],
    ) -> grpc.RpcMethodHandler[Any, Any]:
        return grpc.unary_unary_rpc_method_handler(
            method,
            request_deserializer=_deserializer(request_type),
            response_serializer=_serialize,
        )

    pb = apiserver_pb2
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Create": unary(service.create, pb.CreateRequest),
        "Get": unary(service.get, pb.GetRequest),
        "List": unary(service.list, pb.ListRequest),
        "Update": unary(service.update, pb.UpdateRequest),
        "UpdateStatus": unary(service.update_status, pb.UpdateRequest),
        "Patch": unary(service.patch, pb.PatchRequest),
        "Delete": unary(service.delete, pb.DeleteRequest),
        "Bind": unary(service.bind, pb.BindRequest),
        "Watch": grpc.unary_stream_rpc_method_handler(
            service.watch,
            request_deserializer=_deserializer(pb.WatchRequest),
            response_serializer=_serialize,
        ),
    }
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            name: instrument_handler(
                handler, f"/{SERVICE_NAME}/{name}", metrics=metrics, tracing=tracing
            )
            for name, handler in handlers.items()
        },
    )
