"""Network namespaces for tests: a "node" with a bridge, "pods" on veth pairs, a link to the host.

    host (this process)  --veth 10.213.<n>.1/30 <-> 10.213.<n>.2/30--  node netns
                                                                        br0 10.244.<n>.1/24
    pod netns k: eth0 10.244.<n>.<10+k>/24, default via 10.244.<n>.1  --veth-- br0

Every name carries a short random id, and `Topology.close()` deletes all of it (deleting a
namespace removes its veths and the processes' sockets; the processes are killed first), so
tests never touch anything they did not create and leave nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.environment import unavailable

__all__ = ["Pod", "Topology", "require_root_networking", "run"]


def run(*argv: str, check: bool = True, timeout: float = 30) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def require_root_networking() -> None:
    """Fail under CI, skip elsewhere, when namespaces or iptables cannot be used here."""
    problem = ""
    if os.geteuid() != 0:
        problem = "network namespace tests need root"
    elif shutil.which("ip") is None:
        problem = "no `ip` command (apt-get install iproute2)"
    elif (
        shutil.which("iptables-legacy-restore") is None and shutil.which("iptables-restore") is None
    ):
        problem = "no iptables-restore (apt-get install iptables)"
    if problem:
        unavailable(problem)


@dataclass
class Pod:
    name: str
    netns: str
    ip: str
    server: subprocess.Popen[bytes] | None = None


@dataclass
class Topology:
    subnet: int
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    pods: list[Pod] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def node(self) -> str:
        return f"bn-{self.tag}"

    @property
    def host_ip(self) -> str:
        return f"10.213.{self.subnet}.1"

    @property
    def node_ip(self) -> str:
        return f"10.213.{self.subnet}.2"

    @property
    def bridge_ip(self) -> str:
        return f"10.244.{self.subnet}.1"

    @property
    def pod_cidr(self) -> str:
        return f"10.244.{self.subnet}.0/24"

    def in_node(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        return run("ip", "netns", "exec", self.node, *argv, check=check, timeout=timeout)

    def create(self) -> None:
        node, host_end, node_end = self.node, f"bh-{self.tag}", f"bnh-{self.tag}"
        run("ip", "netns", "add", node)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end)
        run("ip", "link", "set", node_end, "netns", node)
        run("ip", "addr", "add", f"{self.host_ip}/30", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        self.in_node("ip", "link", "set", "lo", "up")
        self.in_node("ip", "addr", "add", f"{self.node_ip}/30", "dev", node_end)
        self.in_node("ip", "link", "set", node_end, "up")
        # Like any node, a default route: locally generated packets to a Service IP are
        # routed before nat OUTPUT rewrites their destination, so they need one.
        self.in_node("ip", "route", "add", "default", "via", self.host_ip)
        self.in_node("ip", "link", "add", "br0", "type", "bridge")
        self.in_node("ip", "addr", "add", f"{self.bridge_ip}/24", "dev", "br0")
        self.in_node("ip", "link", "set", "br0", "up")
        self.in_node("sysctl", "-qw", "net.ipv4.ip_forward=1")

    def add_pod(self, name: str, root: Path) -> Pod:
        """A pod namespace on the bridge, serving its own name over HTTP on port 8080."""
        index = len(self.pods)
        netns, outside = f"bp-{self.tag}-{index}", f"bv-{self.tag}-{index}"
        ip = f"10.244.{self.subnet}.{10 + index}"
        run("ip", "netns", "add", netns)
        run("ip", "link", "add", outside, "netns", self.node, "type", "veth", "peer", "name",
            "eth0", "netns", netns)  # fmt: skip
        self.in_node("ip", "link", "set", outside, "master", "br0", "up")
        run("ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", netns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "netns", "exec", netns, "ip", "link", "set", "eth0", "up")
        run("ip", "netns", "exec", netns, "ip", "route", "add", "default", "via", self.bridge_ip)
        site = root / name
        site.mkdir(parents=True)
        (site / "index.html").write_text(name)
        server = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "http.server", "8080",
             "--bind", "0.0.0.0", "--directory", str(site)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        pod = Pod(name, netns, ip, server)
        self.pods.append(pod)
        return pod

    def wait_serving(self, timeout: float = 10) -> None:
        """Until every pod answers on its own IP from the node."""
        for pod in self.pods:
            deadline = time.monotonic() + timeout
            while True:
                answered = self.in_node(
                    sys.executable, "-c", FETCH, f"http://{pod.ip}:8080/", "1", check=False
                )
                if pod.name in answered:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"pod {pod.name} at {pod.ip} never answered")
                time.sleep(0.1)

    def start_in_node(self, *argv: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.node, *argv],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in [*self.processes, *(p.server for p in self.pods if p.server)]:
            if process.poll() is None:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        for pod in self.pods:
            run("ip", "netns", "del", pod.netns, check=False)
        run("ip", "netns", "del", self.node, check=False)
        run("ip", "link", "del", f"bh-{self.tag}", check=False)


# Fetch a URL N times, each on a new connection; print one JSON object: body -> count, plus
# "error:<kind>" -> count for failures. Runs inside a namespace with `python -c`.
FETCH = """
import collections, json, socket, sys, time, urllib.request
url, count = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
seen = collections.Counter()
for _ in range(count):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as page:
            seen[page.read().decode()] += 1
    except Exception as error:
        reason = getattr(error, "reason", error)
        seen["error:" + type(reason).__name__] += 1
print(json.dumps(seen))
"""
