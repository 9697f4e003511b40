"""The kubelet's gRPC service (bosun.api.kubelet.v1.Kubelet): logs, exec and stats.

Requests name pods and containers the way users do (namespace, pod, container); the service
finds the container in the runtime by the labels the pod workers put on it, newest attempt
first (`previous` picks the one before). Containers of pods this kubelet does not run are
NOT_FOUND. Every stream is cancellation-safe: a client that goes away closes the Docker stream
behind it (see docker_runtime._pump), so no reader thread outlives its call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from bosun.api.kubelet.v1 import kubelet_pb2, kubelet_pb2_grpc
from bosun.kubelet import hostinfo
from bosun.kubelet import labels as L
from bosun.kubelet.docker_runtime import DockerRuntime
from bosun.kubelet.runtime import ContainerRecord

log = logging.getLogger(__name__)

SERVICE_NAME = "bosun.api.kubelet.v1.Kubelet"


class LookupError_(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def pick_container(
    records: Sequence[ContainerRecord],
    *,
    namespace: str,
    pod: str,
    container: str,
    previous: bool = False,
) -> ContainerRecord:
    """The container a request means; LookupError_ with a status code when there is none."""
    mine = [
        r
        for r in records
        if r.labels.get(L.POD_NAMESPACE) == namespace
        and r.labels.get(L.POD_NAME) == pod
        and r.labels.get(L.KIND) in ("app", "init")
    ]
    if not mine:
        raise LookupError_(grpc.StatusCode.NOT_FOUND, f'pod "{namespace}/{pod}" does not run here')
    names = sorted(
        {r.labels.get(L.CONTAINER_NAME, "") for r in mine if r.labels.get(L.KIND) == "app"}
    )
    if not container:
        if len(names) != 1:
            raise LookupError_(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a container name must be specified for pod {pod}, choose one of: {names}",
            )
        container = names[0]
    instances = sorted(
        (r for r in mine if r.labels.get(L.CONTAINER_NAME) == container),
        key=lambda r: (L.attempt_of(r.labels), r.created_at or 0),
        reverse=True,
    )
    index = 1 if previous else 0
    if len(instances) <= index:
        what = "previous terminated container" if previous else "container"
        raise LookupError_(
            grpc.StatusCode.NOT_FOUND, f'{what} "{container}" in pod "{pod}" not found'
        )
    return instances[index]


def cpu_nano_cores(sample: dict[str, Any]) -> int:
    """Docker's cpu_stats vs precpu_stats as a rate in billionths of a core."""
    cpu = sample.get("cpu_stats") or {}
    pre = sample.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
        "total_usage", 0
    )
    elapsed = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or 1
    if used <= 0 or elapsed <= 0:
        return 0
    return int(used / elapsed * cpus * 1e9)


def memory_working_set(sample: dict[str, Any]) -> tuple[int, int]:
    """(working set, usage): usage minus inactive file pages, as cAdvisor reports it."""
    memory = sample.get("memory_stats") or {}
    usage = int(memory.get("usage", 0))
    stats = memory.get("stats") or {}
    inactive = int(stats.get("inactive_file", stats.get("total_inactive_file", 0)))
    return max(0, usage - inactive), usage


class KubeletService(kubelet_pb2_grpc.KubeletServicer):
    def __init__(self, runtime: DockerRuntime, *, node_name: str) -> None:
        self.runtime = runtime
        self.node_name = node_name

    async def _find(self, context: Any, **query: Any) -> ContainerRecord:
        try:
            return pick_container(await self.runtime.list_containers(), **query)
        except LookupError_ as error:
            await context.abort(error.code, str(error))
            raise AssertionError("unreachable") from None

    async def ContainerLogs(
        self, request: kubelet_pb2.LogsRequest, context: Any
    ) -> AsyncIterator[kubelet_pb2.LogChunk]:
        record = await self._find(
            context,
            namespace=request.namespace,
            pod=request.pod,
            container=request.container,
            previous=request.previous,
        )
        tail = request.tail_lines if request.HasField("tail_lines") else None
        since = int(time.time()) - int(request.since_seconds) if request.since_seconds else 0
        async for chunk in self.runtime.stream_logs(
            record.id,
            follow=request.follow and record.state == "running",
            tail=tail,
            since=since,
            timestamps=request.timestamps,
        ):
            yield kubelet_pb2.LogChunk(data=chunk)

    async def Exec(
        self, request_iterator: AsyncIterator[kubelet_pb2.ExecRequest], context: Any
    ) -> AsyncIterator[kubelet_pb2.ExecResponse]:
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("start") or not first.start.command:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first message must carry start.command"
            )
            return
        start = first.start
        record = await self._find(
            context, namespace=start.namespace, pod=start.pod, container=start.container
        )
        if record.state != "running":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'container "{record.labels.get(L.CONTAINER_NAME)}" is not running',
            )
        session = await self.runtime.start_exec(
            record.id, list(start.command), stdin=start.stdin, tty=start.tty
        )

        async def feed() -> None:
            async for message in request_iterator:
                if message.stdin:
                    await session.write(message.stdin)
                if message.stdin_eof:
                    break
            await session.close_stdin()

        feeder = asyncio.create_task(feed()) if start.stdin else None
        try:
            async for stream, data in session.output():
                if stream == 2:
                    yield kubelet_pb2.ExecResponse(stderr=data)
                else:
                    yield kubelet_pb2.ExecResponse(stdout=data)
            yield kubelet_pb2.ExecResponse(exit_code=await session.exit_code())
        finally:
            if feeder is not None:
                feeder.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feeder
            session.close()

    async def Stats(
        self, request: kubelet_pb2.StatsRequest, context: Any
    ) -> kubelet_pb2.StatsResponse:
        records = [
            r
            for r in await self.runtime.list_containers()
            if r.state == "running"
            and r.labels.get(L.KIND) == "app"
            and (not request.namespace or r.labels.get(L.POD_NAMESPACE) == request.namespace)
            and (not request.pod or r.labels.get(L.POD_NAME) == request.pod)
        ]
        samples = await asyncio.gather(
            *(self.runtime.stats(r.id) for r in records), return_exceptions=True
        )
        response = kubelet_pb2.StatsResponse()
        pods: dict[str, kubelet_pb2.PodStats] = {}
        for record, sample in zip(records, samples, strict=True):
            if isinstance(sample, BaseException):
                continue  # stopped between the list and the sample
            uid = record.labels.get(L.POD_UID, "")
            pod = pods.get(uid)
            if pod is None:
                pod = response.pods.add(
                    namespace=record.labels.get(L.POD_NAMESPACE, ""),
                    name=record.labels.get(L.POD_NAME, ""),
                    uid=uid,
                )
                pods[uid] = pod
            working_set, usage = memory_working_set(dict(sample))
            cpu = cpu_nano_cores(dict(sample))
            total = int(
                ((sample.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
            )
            pod.containers.add(
                name=record.labels.get(L.CONTAINER_NAME, ""),
                cpu_usage_nano_cores=cpu,
                cpu_usage_core_nano_seconds=total,
                memory_working_set_bytes=working_set,
                memory_usage_bytes=usage,
            )
            pod.cpu_usage_nano_cores += cpu
            pod.memory_working_set_bytes += working_set
        response.node.node_name = self.node_name
        response.node.cpu_usage_nano_cores = sum(p.cpu_usage_nano_cores for p in response.pods)
        response.node.memory_working_set_bytes = sum(
            p.memory_working_set_bytes for p in response.pods
        )
        info = hostinfo.meminfo()
        response.node.memory_capacity_bytes = info.get("MemTotal", 0)
        response.node.memory_available_bytes = info.get("MemAvailable", 0)
        response.node.cpu_capacity_nano_cores = int(hostinfo.cpu_count() * 1e9)
        return response
