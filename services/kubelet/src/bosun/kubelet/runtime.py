"""The container runtime interface the pod workers drive, and the records it returns.

The kubelet keeps no durable state of its own: everything it needs to adopt a pod's containers
after a restart is in the runtime, on labels (see `labels`). A `ContainerRecord` is one
container as the runtime reports it; `ContainerSpec` is everything needed to create one.

Implementations are async and must never block the event loop (the Docker one runs the
blocking SDK in a thread pool). All methods are safe to call concurrently for different pods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

ContainerKind = Literal["sandbox", "init", "app"]
ContainerRunState = Literal["created", "running", "exited", "unknown"]


class ImagePullError(Exception):
    """The image could not be pulled (or is absent and the policy forbids pulling)."""

    def __init__(self, message: str, *, reason: str = "ErrImagePull") -> None:
        super().__init__(message)
        self.reason = reason


class ContainerStartError(Exception):
    """The runtime refused an operation (create, start); the message says why."""


@dataclass(frozen=True)
class Mount:
    """A bind mount from the host (`source` a path) or a runtime volume (`volume` True)."""

    source: str
    target: str
    read_only: bool = False
    volume: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    labels: Mapping[str, str]
    entrypoint: Sequence[str] | None = None
    command: Sequence[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str = ""
    mounts: Sequence[Mount] = ()
    # "container:<id>" to join a sandbox's network namespace; "" for the runtime's default.
    network_mode: str = ""
    hostname: str = ""
    # (container port, protocol) → (host ip, host port): hostPorts, published on the sandbox.
    port_bindings: Mapping[tuple[int, str], tuple[str, int]] = field(default_factory=dict)
    nano_cpus: int = 0
    memory_bytes: int = 0
    cpu_shares: int = 0
    tty: bool = False
    stdin: bool = False
    # The pod's resolv.conf (set on the sandbox; the containers joining it share it).
    dns_servers: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()


@dataclass(frozen=True)
class ContainerRecord:
    id: str
    labels: Mapping[str, str]
    state: ContainerRunState
    exit_code: int = 0
    # Wall-clock seconds since the epoch; None when the runtime has no value.
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    image: str = ""
    image_id: str = ""
    oom_killed: bool = False
    error: str = ""
    ip: str = ""


@dataclass(frozen=True)
class ImageRecord:
    names: tuple[str, ...]
    size_bytes: int


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


class ContainerRuntime(Protocol):
    """What a pod worker needs from a container engine."""

    async def list_containers(self, *, pod_uid: str = "") -> list[ContainerRecord]:
        """This node's containers (all of them, or one pod's), running or not."""

    async def image_present(self, image: str) -> bool: ...

    async def pull_image(self, image: str) -> None:
        """Pull `image`; ImagePullError when that fails."""

    async def create_and_start(self, spec: ContainerSpec) -> str:
        """Create and start a container; its id. ContainerStartError when it cannot."""

    async def stop_container(self, container_id: str, *, grace_seconds: float) -> None:
        """SIGTERM, then SIGKILL after `grace_seconds`; returns once it has stopped."""

    async def remove_container(self, container_id: str) -> None:
        """Remove a container (stopping it at once if it still runs); absent is fine."""

    async def exec(
        self, container_id: str, command: Sequence[str], *, timeout: float
    ) -> ExecResult:
        """Run `command` in the container; TimeoutError after `timeout` seconds."""

    async def ensure_volume(self, name: str, *, labels: Mapping[str, str], tmpfs: bool) -> str:
        """Create (or find) a named runtime volume; its name."""

    async def remove_volumes(self, *, pod_uid: str) -> None: ...

    async def list_images(self) -> list[ImageRecord]: ...

    async def version(self) -> str: ...
