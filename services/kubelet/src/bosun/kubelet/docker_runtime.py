"""ContainerRuntime on a Docker engine, through the docker SDK's low-level API.

The SDK blocks, so every call runs in a dedicated thread pool (never the event loop's default
executor, which other code may saturate). The pool bounds how many Docker calls are in flight;
a pod worker awaiting one only holds its own pod. `docker stop` does the graceful part of
termination (SIGTERM, then SIGKILL after the timeout) inside the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors

from bosun.kubelet import labels as L
from bosun.kubelet.runtime import (
    ContainerRecord,
    ContainerRunState,
    ContainerSpec,
    ContainerStartError,
    ExecResult,
    ImagePullError,
    ImageRecord,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_STATES: dict[str, ContainerRunState] = {
    "created": "created",
    "running": "running",
    "paused": "running",
    "restarting": "running",
    "exited": "exited",
    "dead": "exited",
    "removing": "exited",
}


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC 3339 timestamps (nanoseconds, 'Z') as epoch seconds; None for the zero time."""
    if not text or text.startswith("0001-01-01"):
        return None
    head, _, rest = text.partition(".")
    fraction = ""
    zone = "+00:00"
    if rest:
        digits = rest.rstrip("Z")
        for sign in "+-":
            if sign in digits:
                digits, _, offset = digits.partition(sign)
                zone = sign + offset
        fraction = "." + digits[:6]
    elif head.endswith("Z"):
        head = head[:-1]
    return datetime.fromisoformat(f"{head}{fraction}{zone}").timestamp()


def record_from_inspect(data: Mapping[str, Any]) -> ContainerRecord:
    state = data.get("State") or {}
    config = data.get("Config") or {}
    network = data.get("NetworkSettings") or {}
    ip = network.get("IPAddress") or ""
    if not ip:
        for attached in (network.get("Networks") or {}).values():
            if attached and attached.get("IPAddress"):
                ip = attached["IPAddress"]
                break
    return ContainerRecord(
        id=data["Id"],
        labels=dict(config.get("Labels") or {}),
        state=_STATES.get(state.get("Status", ""), "unknown"),
        exit_code=int(state.get("ExitCode") or 0),
        created_at=parse_docker_time(data.get("Created")),
        started_at=parse_docker_time(state.get("StartedAt")),
        finished_at=parse_docker_time(state.get("FinishedAt")),
        image=config.get("Image", ""),
        image_id=data.get("Image", ""),
        oom_killed=bool(state.get("OOMKilled")),
        error=state.get("Error") or "",
        ip=ip,
    )


class DockerRuntime:
    def __init__(self, *, node: str, base_url: str | None = None, max_workers: int = 16) -> None:
        self.node = node
        if base_url:
            self._docker = docker.DockerClient(base_url=base_url, timeout=120)
        else:
            self._docker = docker.from_env(timeout=120)
        self.api: Any = self._docker.api
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker")

    async def _call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._docker.close()

    # ---------------------------------------------------------------------------- containers

    async def list_containers(self, *, pod_uid: str = "") -> list[ContainerRecord]:
        return await self._call(self._list_containers, pod_uid)

    def _list_containers(self, pod_uid: str) -> list[ContainerRecord]:
        filters = [f"{L.NODE}={self.node}"]
        if pod_uid:
            filters.append(f"{L.POD_UID}={pod_uid}")
        records = []
        for summary in self.api.containers(all=True, filters={"label": filters}):
            try:
                records.append(record_from_inspect(self.api.inspect_container(summary["Id"])))
            except docker.errors.NotFound:
                continue  # removed between the list and the inspect
        return records

    async def create_and_start(self, spec: ContainerSpec) -> str:
        return await self._call(self._create_and_start, spec)

    def _create_and_start(self, spec: ContainerSpec) -> str:
        binds = [f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts]
        host_config = self.api.create_host_config(
            binds=binds or None,
            network_mode=spec.network_mode or None,
            nano_cpus=spec.nano_cpus or None,
            mem_limit=spec.memory_bytes or None,
            cpu_shares=spec.cpu_shares or None,
            port_bindings={
                f"{port}/{protocol.lower()}": (host_ip or "0.0.0.0", host_port)
                for (port, protocol), (host_ip, host_port) in spec.port_bindings.items()
            }
            or None,
            dns=list(spec.dns_servers) or None,
            dns_search=list(spec.dns_search) or None,
            dns_opt=list(spec.dns_options) or None,
        )
        try:
            created = self.api.create_container(
                spec.image,
                name=spec.name,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                command=list(spec.command) if spec.command is not None else None,
                environment=dict(spec.env),
                working_dir=spec.working_dir or None,
                labels=dict(spec.labels),
                hostname=spec.hostname or None,
                ports=[(port, protocol.lower()) for port, protocol in spec.port_bindings] or None,
                host_config=host_config,
                tty=spec.tty,
                stdin_open=spec.stdin,
            )
        except docker.errors.APIError as error:
            raise ContainerStartError(_explain(error)) from None
        container_id: str = created["Id"]
        try:
            self.api.start(container_id)
        except docker.errors.APIError as error:
            # Keep the container: it records the failure (state exited/created, its error),
            # which the pod worker reports and backs off on.
            raise ContainerStartError(_explain(error)) from None
        return container_id

    async def stop_container(self, container_id: str, *, grace_seconds: float) -> None:
        await self._call(self._stop, container_id, grace_seconds)

    def _stop(self, container_id: str, grace_seconds: float) -> None:
        try:
            self.api.stop(container_id, timeout=max(0, round(grace_seconds)))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            log.warning("stop %s: %s", container_id[:12], _explain(error))

    async def remove_container(self, container_id: str) -> None:
        await self._call(self._remove, container_id)

    def _remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if "already in progress" not in str(error):
                raise

    async def exec(
        self, container_id: str, command: Sequence[str], *, timeout: float
    ) -> ExecResult:
        # The exec keeps running in Docker after a timeout (Docker cannot cancel one); the
        # probe counts it as failed, as the Kubernetes kubelet does for exec probe timeouts.
        return await asyncio.wait_for(self._call(self._exec, container_id, command), timeout)

    def _exec(self, container_id: str, command: Sequence[str]) -> ExecResult:
        exec_id = self.api.exec_create(container_id, list(command), stdout=True, stderr=True)
        output: bytes = self.api.exec_start(exec_id)
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        return ExecResult(exit_code=-1 if code is None else int(code), output=output)

    async def logs(self, container_id: str, *, tail: int | None = None) -> bytes:
        result: bytes = await self._call(
            self.api.logs, container_id, tail="all" if tail is None else tail
        )
        return result

    # ---------------------------------------------------------------------------- streams

    async def stream_logs(
        self,
        container_id: str,
        *,
        follow: bool,
        tail: int | None = None,
        since: int = 0,
        timestamps: bool = False,
    ) -> AsyncIterator[bytes]:
        """A container's output in chunks; with `follow`, until it stops or the caller leaves.

        A thread reads Docker's stream and hands chunks to the loop through a queue; leaving
        (cancellation, or closing the generator) closes the HTTP response, which ends the read.
        """
        stream = await self._call(
            self.api.logs,
            container_id,
            stream=True,
            follow=follow,
            tail="all" if tail is None else tail,
            since=since or None,
            timestamps=timestamps,
        )
        async for chunk in _pump(stream, self._pool):
            yield chunk

    async def start_exec(
        self, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool
    ) -> ExecSession:
        exec_id = await self._call(
            self.api.exec_create,
            container_id,
            list(command),
            stdin=stdin,
            tty=tty,
            stdout=True,
            stderr=True,
        )
        sock = await self._call(self.api.exec_start, exec_id["Id"], socket=True, tty=tty)
        return ExecSession(self, exec_id["Id"], getattr(sock, "_sock", sock), tty=tty)

    async def stats(self, container_id: str) -> Mapping[str, Any]:
        """One sample from Docker (it waits about a second, to measure a CPU rate)."""
        result: Mapping[str, Any] = await self._call(self.api.stats, container_id, stream=False)
        return result

    # ---------------------------------------------------------------------------- images

    async def image_present(self, image: str) -> bool:
        return await self._call(self._image_present, image)

    def _image_present(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.NotFound:
            return False
        return True

    async def pull_image(self, image: str) -> None:
        await self._call(self._pull, image)

    def _pull(self, image: str) -> None:
        repository, tag = split_image(image)
        try:
            self.api.pull(repository, tag=tag)
        except docker.errors.APIError as error:
            raise ImagePullError(f'failed to pull image "{image}": {_explain(error)}') from None

    async def list_images(self) -> list[ImageRecord]:
        images = await self._call(self.api.images)
        # Docker names a dangling image (a replaced tag, a build stage) `<none>:<none>`: that
        # is no name a pod could ask for, so it is left out (as Kubernetes' dockershim did).
        return [
            ImageRecord(
                tuple(
                    name
                    for name in [*(i.get("RepoTags") or ()), *(i.get("RepoDigests") or ())]
                    if not name.startswith("<none>")
                ),
                int(i.get("Size", 0)),
            )
            for i in images
        ]

    async def version(self) -> str:
        info = await self._call(self.api.version)
        return f"docker://{info.get('Version', 'unknown')}"

    # ---------------------------------------------------------------------------- volumes

    async def ensure_volume(self, name: str, *, labels: Mapping[str, str], tmpfs: bool) -> str:
        options = {"type": "tmpfs", "device": "tmpfs"} if tmpfs else None
        await self._call(
            self.api.create_volume, name, driver="local", driver_opts=options, labels=dict(labels)
        )
        return name

    async def remove_volumes(self, *, pod_uid: str) -> None:
        await self._call(self._remove_volumes, pod_uid)

    def _remove_volumes(self, pod_uid: str) -> None:
        found = self.api.volumes(
            filters={"label": [f"{L.NODE}={self.node}", f"{L.POD_UID}={pod_uid}"]}
        )
        for volume in found.get("Volumes") or ():
            with contextlib.suppress(docker.errors.NotFound):
                self.api.remove_volume(volume["Name"], force=True)


def split_image(image: str) -> tuple[str, str]:
    """ "repo[:tag][@digest]" → (repo, tag or digest); the tag defaults to "latest"."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return repository, digest
    name_start = image.rfind("/") + 1
    if ":" in image[name_start:]:
        repository, tag = image.rsplit(":", 1)
        return repository, tag
    return image, "latest"


def _explain(error: docker.errors.APIError) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)


_DONE = object()


async def _pump(stream: Any, pool: ThreadPoolExecutor) -> AsyncIterator[Any]:
    """Move a blocking iterator of chunks onto the event loop; closing it stops the reader."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)

    def put(item: Any) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def read() -> None:
        try:
            for chunk in stream:
                put(chunk)
        except Exception as error:  # closed under us (the consumer left), or a broken stream
            with contextlib.suppress(Exception):
                put(error)
        finally:
            with contextlib.suppress(Exception):
                put(_DONE)

    reader = loop.run_in_executor(pool, read)
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        with contextlib.suppress(Exception):
            stream.close()
        # Drain so that a reader blocked on a full queue can finish.
        while not reader.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0.01)


def demultiplex(sock: socket.socket, *, tty: bool) -> Iterator[tuple[int, bytes]]:
    """Docker's attach stream as (stream, data): 1 stdout, 2 stderr. A TTY is one raw stream."""
    if tty:
        while chunk := sock.recv(65536):
            yield 1, chunk
        return
    while True:
        header = _read_exactly(sock, 8)
        if header is None:
            return
        kind, size = struct.unpack(">BxxxL", header)
        payload = _read_exactly(sock, size)
        if payload is None:
            return
        yield kind, payload


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class ExecSession:
    """One exec: stdin in, (stream, bytes) out, then the exit code.

    The raw socket is read by a thread (see `_pump`); writes go through the runtime's pool.
    """

    def __init__(
        self, runtime: DockerRuntime, exec_id: str, sock: socket.socket, *, tty: bool
    ) -> None:
        self._runtime = runtime
        self.exec_id = exec_id
        self._sock = sock
        self._tty = tty

    async def write(self, data: bytes) -> None:
        await self._runtime._call(self._sock.sendall, data)

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            await self._runtime._call(self._sock.shutdown, socket.SHUT_WR)

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        return _pump(
            _Closing(demultiplex(self._sock, tty=self._tty), self._sock), self._runtime._pool
        )

    async def exit_code(self) -> int:
        for _ in range(50):  # the exec may need a moment to be reported as ended
            info = await self._runtime._call(self._runtime.api.exec_inspect, self.exec_id)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            await asyncio.sleep(0.05)
        return -1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class _Closing:
    """An iterator with a close() that closes the socket it reads (to unblock its reader)."""

    def __init__(self, iterator: Iterator[tuple[int, bytes]], sock: socket.socket) -> None:
        self._iterator = iterator
        self._sock = sock

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self._iterator

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
