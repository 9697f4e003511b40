"""The apiserver's side of pod logs, exec and stats: a proxy to the right kubelet.

The apiserver serves `bosun.api.kubelet.v1.Kubelet` itself, so a client (bosunctl logs, exec,
top) needs no route to the nodes. For each call it reads the pod (or the node named in a Stats
request), takes the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.port`, and
forwards the call unchanged over a channel to that kubelet, kept per address. Streams are
relayed message by message in both directions; a client that cancels cancels the forwarded
call, and the kubelet's status code and message come back as they are.

Errors a person can act on: the pod or node does not exist (NOT_FOUND), the pod is not
scheduled yet or its node advertises no kubelet port (FAILED_PRECONDITION), the kubelet does
not answer (UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from bosun.api.kubelet.v1 import kubelet_pb2, kubelet_pb2_grpc
from bosun.api.v1 import core_pb2, object_pb2
from bosun.common.errors import ApiError

SERVICE_NAME = "bosun.api.kubelet.v1.Kubelet"

GetObject = Callable[[str, str, str], Awaitable[bytes]]


class _Unreachable(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def kubelet_address(node: core_pb2.Node) -> str:
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    if not port:
        raise _Unreachable(
            grpc.StatusCode.FAILED_PRECONDITION,
            f'node "{node.metadata.name}" advertises no kubelet port (a simulated node?)',
        )
    addresses = {a.type: a.address for a in node.status.addresses}
    host = addresses.get("InternalIP") or addresses.get("Hostname") or node.metadata.name
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class KubeletProxy(kubelet_pb2_grpc.KubeletServicer):
    """`get(kind, namespace, name)` returns an Object envelope's bytes (Registry.get fits)."""

    def __init__(self, get: GetObject, *, connect_timeout: float = 5.0) -> None:
        self._get = get
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.connect_timeout = connect_timeout

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    # ------------------------------------------------------------------ routing

    async def _object(self, kind: str, namespace: str, name: str) -> object_pb2.Object:
        try:
            return object_pb2.Object.FromString(await self._get(kind, namespace, name))
        except ApiError as error:
            raise _Unreachable(error.code or grpc.StatusCode.UNKNOWN, error.message) from None

    async def _stub_for_node(self, name: str) -> kubelet_pb2_grpc.KubeletAsyncStub:
        node = (await self._object("Node", "", name)).node
        address = kubelet_address(node)
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address)
            self._channels[address] = channel
        try:
            await asyncio.wait_for(channel.channel_ready(), self.connect_timeout)
        except TimeoutError:
            raise _Unreachable(
                grpc.StatusCode.UNAVAILABLE,
                f'the kubelet of node "{name}" ({address}) does not answer',
            ) from None
        return kubelet_pb2_grpc.KubeletStub(channel)

    async def _stub_for_pod(self, namespace: str, name: str) -> kubelet_pb2_grpc.KubeletAsyncStub:
        pod = (await self._object("Pod", namespace or "default", name)).pod
        if not pod.spec.node_name:
            raise _Unreachable(
                grpc.StatusCode.FAILED_PRECONDITION, f'pod "{name}" is not scheduled to a node yet'
            )
        return await self._stub_for_node(pod.spec.node_name)

    @staticmethod
    async def _abort(context: Any, error: Exception) -> None:
        if isinstance(error, _Unreachable):
            await context.abort(error.code, str(error))
        if isinstance(error, grpc.aio.AioRpcError):
            await context.abort(error.code(), error.details() or "")
        raise error

    # ------------------------------------------------------------------ calls

    async def ContainerLogs(
        self, request: kubelet_pb2.LogsRequest, context: Any
    ) -> AsyncIterator[kubelet_pb2.LogChunk]:
        try:
            stub = await self._stub_for_pod(request.namespace, request.pod)
            call = stub.ContainerLogs(request)
            try:
                async for chunk in call:
                    yield chunk
            finally:
                call.cancel()
        except (_Unreachable, grpc.aio.AioRpcError) as error:
            await self._abort(context, error)

    async def Exec(
        self, request_iterator: AsyncIterator[kubelet_pb2.ExecRequest], context: Any
    ) -> AsyncIterator[kubelet_pb2.ExecResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("start"):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry start"
            )
            return
        try:
            stub = await self._stub_for_pod(first.start.namespace, first.start.pod)

            async def forward() -> AsyncIterator[kubelet_pb2.ExecRequest]:
                yield first
                async for message in request_iterator:
                    yield message

            call = stub.Exec(forward())
            try:
                async for response in call:
                    yield response
            finally:
                call.cancel()
        except (_Unreachable, grpc.aio.AioRpcError) as error:
            await self._abort(context, error)

    async def Stats(
        self, request: kubelet_pb2.StatsRequest, context: Any
    ) -> kubelet_pb2.StatsResponse:
        try:
            if request.node:
                stub = await self._stub_for_node(request.node)
            elif request.pod:
                stub = await self._stub_for_pod(request.namespace, request.pod)
            else:
                raise _Unreachable(
                    grpc.StatusCode.INVALID_ARGUMENT, "name a node, or a pod (with its namespace)"
                )
            response: kubelet_pb2.StatsResponse = await stub.Stats(request)
            return response
        except (_Unreachable, grpc.aio.AioRpcError) as error:
            await self._abort(context, error)
        raise AssertionError("unreachable")
