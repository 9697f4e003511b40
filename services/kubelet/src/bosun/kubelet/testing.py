"""In-memory stand-ins for the runtime, the pod API and the event recorder, for unit tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf.message import Message

from bosun.api.v1 import core_pb2
from bosun.common.errors import NotFoundError
from bosun.kubelet import labels as L
from bosun.kubelet.runtime import (
    ContainerRecord,
    ContainerSpec,
    ExecResult,
    ImagePullError,
    ImageRecord,
)


@dataclass
class FakeRuntime:
    images: set[str] = field(default_factory=lambda: {"pause:1", "app:1"})
    pullable: set[str] = field(default_factory=set)
    containers: dict[str, ContainerRecord] = field(default_factory=dict)
    specs: dict[str, ContainerSpec] = field(default_factory=dict)
    stopped: list[tuple[str, float]] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)
    exec_results: dict[tuple[str, ...], ExecResult] = field(default_factory=dict)
    volumes: dict[str, Mapping[str, str]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def list_containers(self, *, pod_uid: str = "") -> list[ContainerRecord]:
        return [
            r for r in self.containers.values() if not pod_uid or r.labels.get(L.POD_UID) == pod_uid
        ]

    async def image_present(self, image: str) -> bool:
        return image in self.images

    async def pull_image(self, image: str) -> None:
        self.pulls.append(image)
        if image not in self.pullable:
            raise ImagePullError(f'failed to pull image "{image}": not found')
        self.images.add(image)

    async def create_and_start(self, spec: ContainerSpec) -> str:
        container_id = f"c{next(self._ids)}"
        self.specs[container_id] = spec
        self.containers[container_id] = ContainerRecord(
            id=container_id,
            labels=dict(spec.labels),
            state="running",
            created_at=time.time(),
            started_at=time.time(),
            image=spec.image,
            ip="10.0.0.9" if spec.labels.get(L.KIND) == "sandbox" else "",
        )
        return container_id

    def exit(self, container_id: str, code: int, *, ran_for: float = 0.0) -> None:
        record = self.containers[container_id]
        now = time.time()
        self.containers[container_id] = replace(
            record, state="exited", exit_code=code, started_at=now - ran_for, finished_at=now
        )

    async def stop_container(self, container_id: str, *, grace_seconds: float) -> None:
        self.stopped.append((container_id, grace_seconds))
        if self.containers[container_id].state == "running":
            self.exit(container_id, 137)

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def exec(
        self, container_id: str, command: Sequence[str], *, timeout: float
    ) -> ExecResult:
        return self.exec_results.get(tuple(command), ExecResult(0, b""))

    async def ensure_volume(self, name: str, *, labels: Mapping[str, str], tmpfs: bool) -> str:
        self.volumes[name] = labels
        return name

    async def remove_volumes(self, *, pod_uid: str) -> None:
        for name in [n for n, lb in self.volumes.items() if lb.get(L.POD_UID) == pod_uid]:
            del self.volumes[name]

    async def list_images(self) -> list[ImageRecord]:
        return [ImageRecord((image,), 1) for image in sorted(self.images)]

    async def version(self) -> str:
        return "fake://1"

    def by_name(self, name: str) -> list[ContainerRecord]:
        """Instances of an app/init container, oldest first."""
        found = [r for r in self.containers.values() if r.labels.get(L.CONTAINER_NAME) == name]
        return sorted(found, key=lambda r: L.attempt_of(r.labels))


@dataclass
class FakePods:
    statuses: list[core_pb2.PodStatus] = field(default_factory=list)
    deleted: list[tuple[str, int | None, str]] = field(default_factory=list)
    gone: bool = False

    async def update_status(self, obj: core_pb2.Pod, /) -> core_pb2.Pod:
        if self.gone:
            raise NotFoundError("pod not found")
        self.statuses.append(obj.status)
        return obj

    async def delete(
        self,
        name: str,
        *,
        namespace: str = "",
        grace_period_seconds: int | None = None,
        uid: str = "",
    ) -> object:
        self.deleted.append((name, grace_period_seconds, uid))
        return None


@dataclass
class FakeRecorder:
    events: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, obj: Message, type: Any, reason: str, message: str) -> None:
        self.events.append((type, reason, message))

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]
