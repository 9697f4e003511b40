"""What the node has: capacity, free memory and disk, addresses (read from the host, or given).

Everything here is a plain function over /proc and the filesystem, cheap enough to call on
every node status update; tests pass their own values instead.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostInfo:
    cpu: str
    memory_bytes: int
    ephemeral_storage_bytes: int
    kernel_version: str
    os_image: str
    architecture: str
    machine_id: str
    boot_id: str


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return values


def memory_available() -> int:
    info = meminfo()
    return info.get("MemAvailable", info.get("MemFree", 0))


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def cpu_count() -> int:
    """CPUs this process may run on (the node's CPU capacity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def read_host(root_dir: Path) -> HostInfo:
    cpus = cpu_count()
    root_dir.mkdir(parents=True, exist_ok=True)
    disk = shutil.disk_usage(root_dir)
    return HostInfo(
        cpu=str(cpus or 1),
        memory_bytes=meminfo().get("MemTotal", 0),
        ephemeral_storage_bytes=disk.total,
        kernel_version=platform.release(),
        os_image=os_image(),
        architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(
            platform.machine(), platform.machine()
        ),
        machine_id=_read("/etc/machine-id"),
        boot_id=_read("/proc/sys/kernel/random/boot_id"),
    )


def disk_free_fraction(root_dir: Path) -> float:
    usage = shutil.disk_usage(root_dir)
    return usage.free / usage.total if usage.total else 1.0


def detect_node_ip(towards: str) -> str:
    """The local address that routes to `towards` (host or host:port); no packet is sent."""
    host = towards.rsplit(":", 1)[0].strip("[]") if ":" in towards else towards
    try:
        target = socket.gethostbyname(host)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))
            address: str = probe.getsockname()[0]
            return address
    except OSError:
        return "127.0.0.1"
