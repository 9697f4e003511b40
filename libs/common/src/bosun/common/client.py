"""The typed async client for the ApiServer service, and a small synchronous wrapper.

    async with Client("127.0.0.1:6443") as client:
        pod = await client.pods.create(pod)
        pods = await client.pods.list(namespace="default", label_selector="app=web")
        async for event in client.pods.watch(resource_version=pods.resource_version):
            ...

Every call takes the same keywords: `timeout` (seconds; the client's default when omitted) and
`metadata` (extra gRPC metadata). Failures raise bosun.common.errors.ApiError subclasses.

Retries (tenacity, exponential backoff with jitter, capped): reads (get, list) are retried on
UNAVAILABLE and DEADLINE_EXCEEDED, since repeating them is harmless. Writes are not: after a lost
connection a write may or may not have been applied, and only the caller can tell whether
repeating it is safe (a Create would report AlreadyExists, an Update a conflict). Every call waits
for the channel to be ready (within its timeout), so an apiserver restart is a pause, not an error.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import grpc
from google.protobuf.message import Message
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from bosun.api.apiserver.v1 import apiserver_pb2, apiserver_pb2_grpc
from bosun.api.v1 import apps_pb2, coordination_pb2, core_pb2
from bosun.common import kinds
from bosun.common.errors import ApiError, DeadlineExceededError, UnavailableError, from_rpc_error
from bosun.common.grpcutil import create_channel
from bosun.common.kinds import KindInfo

T = TypeVar("T", bound=Message)

_UNSET: Any = object()
EventType = str  # "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK"
_EVENT_NAMES = {
    apiserver_pb2.ADDED: "ADDED",
    apiserver_pb2.MODIFIED: "MODIFIED",
    apiserver_pb2.DELETED: "DELETED",
    apiserver_pb2.BOOKMARK: "BOOKMARK",
}


@dataclass(frozen=True)
class ObjectList(Generic[T]):
    items: list[T]
    resource_version: str
    continue_token: str = ""
    remaining_item_count: int | None = None


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    type: EventType
    object: T

    @property
    def resource_version(self) -> str:
        return str(cast(Any, self.object).metadata.resource_version)


@dataclass(frozen=True)
class DeleteResult(Generic[T]):
    object: T
    # False when finalizers or a grace period keep the object (marked with deletionTimestamp).
    removed: bool


@dataclass
class RetryPolicy:
    attempts: int = 6
    initial: float = 0.1
    maximum: float = 5.0
    total: float = 60.0
    retry_on: tuple[type[ApiError], ...] = field(
        default_factory=lambda: (UnavailableError, DeadlineExceededError)
    )


class ResourceClient(Generic[T]):
    """Calls for one kind. Namespaced kinds default to the "default" namespace."""

    def __init__(self, client: Client, info: KindInfo) -> None:
        self._client = client
        self.info = info

    # -------------------------------------------------------------- internals

    def _unwrap(self, envelope: Any) -> T:
        return cast(T, getattr(envelope, self.info.envelope_field))

    def _wrap(self, obj: T) -> Any:
        if kinds.for_message(obj) is not self.info:
            raise TypeError(f"expected a {self.info.kind}, got {obj.DESCRIPTOR.name}")
        return kinds.wrap(obj)

    def _namespace(self, namespace: str) -> str:
        return (namespace or "default") if self.info.namespaced else ""

    # -------------------------------------------------------------- calls

    async def create(
        self,
        obj: T,
        *,
        dry_run: bool = False,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        request = apiserver_pb2.CreateRequest(object=self._wrap(obj), dry_run=dry_run)
        return self._unwrap(await self._client.call("Create", request, timeout, metadata))

    async def get(
        self,
        name: str,
        *,
        namespace: str = "",
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        request = apiserver_pb2.GetRequest(
            kind=self.info.kind, namespace=self._namespace(namespace), name=name
        )
        return self._unwrap(
            await self._client.call("Get", request, timeout, metadata, idempotent=True)
        )

    async def list(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_token: str = "",
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> ObjectList[T]:
        """One page (all objects when `limit` is 0). `namespace=""` lists all namespaces."""
        request = apiserver_pb2.ListRequest(
            kind=self.info.kind,
            namespace=namespace if self.info.namespaced else "",
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
        )
        response = await self._client.call("List", request, timeout, metadata, idempotent=True)
        return ObjectList(
            [self._unwrap(item) for item in response.items],
            response.metadata.resource_version,
            response.metadata.continue_token,
            response.metadata.remaining_item_count
            if response.metadata.HasField("remaining_item_count")
            else None,
        )

    async def list_all(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> ObjectList[T]:
        """Every matching object, fetched in pages of `page_size`, as one consistent snapshot."""
        items: list[T] = []
        token = ""
        resource_version = ""
        while True:
            page = await self.list(
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
                timeout=timeout,
                metadata=metadata,
            )
            items.extend(page.items)
            resource_version = resource_version or page.resource_version
            token = page.continue_token
            if not token:
                return ObjectList(items, resource_version)

    async def update(
        self,
        obj: T,
        *,
        dry_run: bool = False,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        """Replace spec and metadata. A set metadata.resourceVersion must still be current."""
        request = apiserver_pb2.UpdateRequest(object=self._wrap(obj), dry_run=dry_run)
        return self._unwrap(await self._client.call("Update", request, timeout, metadata))

    async def update_status(
        self,
        obj: T,
        *,
        dry_run: bool = False,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        request = apiserver_pb2.UpdateRequest(object=self._wrap(obj), dry_run=dry_run)
        return self._unwrap(await self._client.call("UpdateStatus", request, timeout, metadata))

    async def patch(
        self,
        name: str,
        patch: Mapping[str, Any] | str,
        *,
        namespace: str = "",
        status: bool = False,
        dry_run: bool = False,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        """Apply a JSON merge patch (RFC 7386) written with Kubernetes field names."""
        request = apiserver_pb2.PatchRequest(
            kind=self.info.kind,
            namespace=self._namespace(namespace),
            name=name,
            type=apiserver_pb2.PATCH_TYPE_MERGE,
            patch=patch if isinstance(patch, str) else json.dumps(patch),
            status=status,
            dry_run=dry_run,
        )
        return self._unwrap(await self._client.call("Patch", request, timeout, metadata))

    async def delete(
        self,
        name: str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        uid: str = "",
        resource_version: str = "",
        propagation_policy: str = "",
        dry_run: bool = False,
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> DeleteResult[T]:
        request = apiserver_pb2.DeleteRequest(
            kind=self.info.kind,
            namespace=self._namespace(namespace),
            name=name,
            preconditions=apiserver_pb2.Preconditions(uid=uid, resource_version=resource_version),
            propagation_policy=propagation_policy,
            dry_run=dry_run,
        )
        if grace_period_seconds is not None:
            request.grace_period_seconds = grace_period_seconds
        response = await self._client.call("Delete", request, timeout, metadata)
        return DeleteResult(self._unwrap(response.object), response.removed)

    async def bind(
        self,
        name: str,
        node_name: str,
        *,
        namespace: str = "",
        uid: str = "",
        timeout: float | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> T:
        """Assign a pod to a node (pods only); ConflictError when it is already assigned."""
        if self.info.kind != "Pod":
            raise TypeError("bind is only defined for pods")
        request = apiserver_pb2.BindRequest(
            namespace=self._namespace(namespace), name=name, node_name=node_name, uid=uid
        )
        return self._unwrap(await self._client.call("Bind", request, timeout, metadata))

    async def watch(
        self,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        resource_version: str = "",
        allow_bookmarks: bool = True,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> AsyncGenerator[WatchEvent[T], None]:
        """Events after `resource_version` (empty: current objects as ADDED first).

        ExpiredError (OUT_OF_RANGE) means the version left the server's window: relist.
        """
        request = apiserver_pb2.WatchRequest(
            kind=self.info.kind,
            namespace=namespace if self.info.namespaced else "",
            label_selector=label_selector,
            field_selector=field_selector,
            resource_version=resource_version,
            allow_bookmarks=allow_bookmarks,
        )
        call = self._client.stub.Watch(
            request,
            timeout=timeout,
            metadata=self._client.metadata(metadata),
            wait_for_ready=True,
        )
        try:
            async for event in call:
                yield WatchEvent(
                    _EVENT_NAMES.get(event.type, "UNKNOWN"), self._unwrap(event.object)
                )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()


class Client:
    """One connection to an apiserver with a ResourceClient per kind."""

    def __init__(
        self,
        target: str,
        *,
        channel: grpc.aio.Channel | None = None,
        token: str | None = None,
        ca_cert: bytes | None = None,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        tracing: bool = True,
    ) -> None:
        self.target = target
        self.token = token
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        # The token travels in each call's metadata (see `metadata`), not in the channel.
        self.channel = channel or create_channel(
            target, ca_cert=ca_cert, interceptors=interceptors, tracing=tracing
        )
        self.stub = apiserver_pb2_grpc.ApiServerStub(self.channel)
        self.namespaces: ResourceClient[core_pb2.Namespace] = self.resource("Namespace")
        self.nodes: ResourceClient[core_pb2.Node] = self.resource("Node")
        self.pods: ResourceClient[core_pb2.Pod] = self.resource("Pod")
        self.events: ResourceClient[core_pb2.Event] = self.resource("Event")
        self.leases: ResourceClient[coordination_pb2.Lease] = self.resource("Lease")
        self.config_maps: ResourceClient[core_pb2.ConfigMap] = self.resource("ConfigMap")
        self.secrets: ResourceClient[core_pb2.Secret] = self.resource("Secret")
        self.service_accounts: ResourceClient[core_pb2.ServiceAccount] = self.resource(
            "ServiceAccount"
        )
        self.services: ResourceClient[core_pb2.Service] = self.resource("Service")
        self.endpoints: ResourceClient[core_pb2.Endpoints] = self.resource("Endpoints")
        self.replica_sets: ResourceClient[apps_pb2.ReplicaSet] = self.resource("ReplicaSet")
        self.deployments: ResourceClient[apps_pb2.Deployment] = self.resource("Deployment")

    def resource(self, kind: str) -> ResourceClient[Any]:
        return ResourceClient(self, kinds.lookup(kind))

    def metadata(self, extra: Sequence[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
        base: tuple[tuple[str, str], ...] = ()
        if self.token:
            base = (("authorization", f"Bearer {self.token}"),)
        return base + tuple(extra)

    async def call(
        self,
        method: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str]],
        *,
        idempotent: bool = False,
    ) -> Any:
        rpc: Callable[..., Awaitable[Any]] = getattr(self.stub, method)
        effective_timeout = self.timeout if timeout is _UNSET else timeout
        call_metadata = self.metadata(metadata)

        async def attempt() -> Any:
            try:
                return await rpc(
                    request,
                    timeout=effective_timeout,
                    metadata=call_metadata,
                    wait_for_ready=True,
                )
            except grpc.aio.AioRpcError as error:
                raise from_rpc_error(error) from None

        if not idempotent:
            return await attempt()
        policy = self.retry
        async for retrying in AsyncRetrying(
            retry=retry_if_exception_type(policy.retry_on),
            wait=wait_exponential_jitter(
                multiplier=policy.initial, max=policy.maximum, jitter=policy.initial
            ),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total),
            reraise=True,
        ):
            with retrying:
                return await attempt()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---------------------------------------------------------------------- synchronous wrapper


class SyncClient:
    """A blocking facade for scripts: runs a Client on a private event loop thread.

    with SyncClient("127.0.0.1:6443") as client:
        pod = client.pods.get("web-0")
    """

    def __init__(self, target: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="bosun-sync-client"
        )
        self._thread.start()

        async def make() -> Client:
            return Client(target, **kwargs)

        self._client = self._run(make())

    def _run(self, coroutine: Awaitable[Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(cast(Any, coroutine), self._loop)
        return future.result()

    def resource(self, kind: str) -> _SyncResource:
        return _SyncResource(self, self._client.resource(kind))

    def __getattr__(self, name: str) -> _SyncResource:
        resource = getattr(self._client, name)
        if not isinstance(resource, ResourceClient):
            raise AttributeError(name)
        return _SyncResource(self, resource)

    def close(self) -> None:
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SyncResource:
    def __init__(self, owner: SyncClient, resource: ResourceClient[Any]) -> None:
        self._owner = owner
        self._resource = resource

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._resource, name)
        if name == "watch":
            return self._watch

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._owner._run(method(*args, **kwargs))

        return call

    def _watch(self, **kwargs: Any) -> Iterator[WatchEvent[Any]]:
        stream = self._resource.watch(**kwargs)
        try:
            while True:
                try:
                    yield self._owner._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._owner._run(stream.aclose())
