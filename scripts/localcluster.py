#!/usr/bin/env python3
"""A local Bosun cluster: supervised processes under `.bosun/` in the repository root.

    .venv/bin/python scripts/localcluster.py up       # start what is not running, wait for health
    .venv/bin/python scripts/localcluster.py status   # table of components, up/down
    .venv/bin/python scripts/localcluster.py logs -f  # follow every component's log
    .venv/bin/python scripts/localcluster.py down     # SIGTERM, 10 s grace, then SIGKILL

Each component is one `Component` entry in `COMPONENTS`, started in list order (and stopped in
reverse): a command line, the ports it listens on, an address to show, and a health probe. Every
process is started detached (its own session, so it outlives `make up` and Ctrl-C in the shell),
logs to `.bosun/logs/<name>.log` and has its pid in `.bosun/run/<name>.pid`. Data lives in
`.bosun/etcd` and survives `down`; `make clean` removes it.

`up` is idempotent: a component whose pid file names a live process of the right program is
left alone (and reported), one that died is restarted, and each is waited on until its health
probe passes before the next one starts, because later components need the earlier ones.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
MARKER = "===="  # starts the line `up` writes into a component's log before starting it


@dataclass(frozen=True)
class Config:
    """Where things live and which ports they use (from the command line)."""

    state_dir: Path
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    apiserver_port: int = 6443
    metrics_port: int = 9090

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def etcd_endpoint(self) -> str:
        return f"127.0.0.1:{self.etcd_client_port}"

    @property
    def apiserver_address(self) -> str:
        return f"127.0.0.1:{self.apiserver_port}"


@dataclass(frozen=True)
class Component:
    """One supervised process of the local cluster."""

    name: str
    command: Callable[[Config], list[str]]
    address: Callable[[Config], str]
    # Ports the component binds; `up` refuses to start it when another process holds one.
    ports: Callable[[Config], list[int]]
    # One quick health check; `up` repeats it until it passes or `start_timeout` runs out.
    healthy: Callable[[Config], bool]
    start_timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)

    def pid_file(self, config: Config) -> Path:
        return config.run_dir / f"{self.name}.pid"

    def log_file(self, config: Config) -> Path:
        return config.log_dir / f"{self.name}.log"


# ---------------------------------------------------------------------------- health probes


def etcd_healthy(config: Config) -> bool:
    url = f"http://{config.etcd_endpoint}/health"
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return b'"health":"true"' in response.read()
    except OSError:
        return False


def grpc_healthy(target: str, service: str = "") -> bool:
    """The standard gRPC health check (grpc.health.v1), answered SERVING."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


# ---------------------------------------------------------------------------- the components


def etcd_command(config: Config) -> list[str]:
    # The same command line the test fixtures use, on fixed ports and a persistent data dir.
    from bosun.common.localetcd import LocalEtcd

    etcd = LocalEtcd(
        config.state_dir / "etcd",
        client_port=config.etcd_client_port,
        peer_port=config.etcd_peer_port,
    )
    return etcd.command()


def apiserver_command(config: Config) -> list[str]:
    return [
        str(VENV_BIN / "bosun-apiserver"),
        "--etcd-servers", config.etcd_endpoint,
        "--listen", config.apiserver_address,
        "--metrics-port", str(config.metrics_port), "--metrics-address", "127.0.0.1",
    ]  # fmt: skip


# Later components are one entry each, started after the ones they need, e.g.:
#   Component("scheduler",
#             command=lambda c: [str(VENV_BIN / "bosun-scheduler"),
#                                "--apiserver", c.apiserver_address, "--metrics-port", "9091"],
#             address=lambda c: "127.0.0.1:9091 (metrics)",
#             ports=lambda c: [9091],
#             healthy=lambda c: grpc_healthy("127.0.0.1:10259")),
# and likewise controller-manager, kubelet, proxy.
COMPONENTS: list[Component] = [
    Component(
        name="etcd",
        command=etcd_command,
        address=lambda c: c.etcd_endpoint,
        ports=lambda c: [c.etcd_client_port, c.etcd_peer_port],
        healthy=etcd_healthy,
    ),
    Component(
        name="apiserver",
        command=apiserver_command,
        address=lambda c: f"{c.apiserver_address} (metrics :{c.metrics_port})",
        ports=lambda c: [c.apiserver_port, c.metrics_port],
        healthy=lambda c: grpc_healthy(c.apiserver_address),
        start_timeout=60.0,
        env={"PYTHONUNBUFFERED": "1"},
    ),
]


# ---------------------------------------------------------------------------- process helpers


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; it only waits to be reaped.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_ours(pid: int, component: Component, config: Config) -> bool:
    """Guard against pid reuse: the live process must be running the component's program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return process_alive(pid)  # no /proc: trust the pid file
    program = Path(component.command(config)[0]).name.encode()
    return any(Path(os.fsdecode(arg)).name.encode() == program for arg in cmdline[:3])


def running_pid(component: Component, config: Config) -> int | None:
    pid = read_pid(component.pid_file(config))
    if pid is not None and process_alive(pid) and is_ours(pid, component, config):
        return pid
    return None


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines the latest start wrote (from its `====` marker on)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    starts = [i for i, line in enumerate(text) if line.startswith(MARKER)]
    since = text[starts[-1] :] if starts else text
    return "\n".join("    " + line for line in since[-lines:])


def start(component: Component, config: Config) -> subprocess.Popen[bytes]:
    command = component.command(config)
    if not Path(command[0]).exists():
        raise SystemExit(f"{component.name}: {command[0]} does not exist; run `make install` first")
    busy = [port for port in component.ports(config) if port_in_use(port)]
    if busy:
        raise SystemExit(
            f"{component.name}: port(s) {', '.join(map(str, busy))} already in use by another "
            f"process (not one this script started); stop it or choose other ports "
            f"(see --help)"
        )
    log_path = component.log_file(config)
    with log_path.open("ab") as log:
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        log.write(f"{MARKER} {stamp} localcluster: starting {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: survives the shell, killpg stops it
            env={**os.environ, **component.env},
        )
    component.pid_file(config).write_text(f"{process.pid}\n")
    return process


def wait_healthy(
    component: Component, config: Config, process: subprocess.Popen[bytes] | None
) -> float:
    """Seconds until healthy; exits the script with the log tail if it dies or times out."""
    began = time.monotonic()
    deadline = began + component.start_timeout
    while time.monotonic() < deadline:
        if component.healthy(config):
            return time.monotonic() - began
        if process is not None and process.poll() is not None:
            component.pid_file(config).unlink(missing_ok=True)
            raise SystemExit(
                f"{component.name}: exited with code {process.returncode} while starting; "
                f"last lines of {rel(component.log_file(config))}:\n"
                f"{log_tail(component.log_file(config))}"
            )
        time.sleep(0.1)
    raise SystemExit(
        f"{component.name}: not healthy after {component.start_timeout:.0f}s (it is still "
        f"running; `make down` stops it); last lines of {rel(component.log_file(config))}:\n"
        f"{log_tail(component.log_file(config))}"
    )


def stop(component: Component, config: Config, grace: float) -> str:
    pid_file = component.pid_file(config)
    pid = running_pid(component, config)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return "not running"
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process_alive(pid):
            pid_file.unlink(missing_ok=True)
            return f"stopped (pid {pid})"
        time.sleep(0.1)
    signal_group(pid, signal.SIGKILL)
    for _ in range(50):
        if not process_alive(pid):
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return f"killed (pid {pid}) after {grace:.0f}s without exiting on SIGTERM"


def signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the component's process group (it leads its own session), or just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def rel(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


# ---------------------------------------------------------------------------- output


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def status_rows(config: Config, components: Sequence[Component]) -> list[list[str]]:
    rows = [["COMPONENT", "STATE", "PID", "ADDRESS", "LOG"]]
    for component in components:
        pid = running_pid(component, config)
        state = "down" if pid is None else "up" if component.healthy(config) else "unhealthy"
        rows.append([
            component.name, state, str(pid) if pid else "-",
            component.address(config), rel(component.log_file(config)),
        ])  # fmt: skip
    return rows


def next_steps(config: Config) -> str:
    apiserver = config.apiserver_address
    data = rel(config.state_dir / "etcd")
    return f"""
Try:
  make status                      # this table, with up/down per component
  make logs                        # follow every log (Ctrl-C stops)
  .venv/bin/python -c "from bosun.common.client import SyncClient; \\
print([ns.metadata.name for ns in SyncClient('{apiserver}').namespaces.list().items])"
  .venv/bin/etcdctl --endpoints {config.etcd_endpoint} get /registry --prefix --keys-only
  curl -s http://127.0.0.1:{config.metrics_port}/metrics | head
  make down                        # stop everything (the data in {data} stays)"""


# ---------------------------------------------------------------------------- commands


def cmd_up(config: Config, components: Sequence[Component]) -> int:
    for directory in (config.run_dir, config.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for component in components:
        pid = running_pid(component, config)
        process = None
        if pid is not None:
            print(f"{component.name}: already running (pid {pid})")
        else:
            was_dead = component.pid_file(config).exists()
            process = start(component, config)
            verb = "was dead, restarted" if was_dead else "started"
            print(f"{component.name}: {verb} (pid {process.pid}), waiting until healthy ...")
        took = wait_healthy(component, config, process)
        if process is not None:
            print(f"{component.name}: healthy after {took:.1f}s")
    print()
    print_table(status_rows(config, components))
    print(next_steps(config))
    return 0


def cmd_down(config: Config, components: Sequence[Component], grace: float) -> int:
    for component in reversed(components):
        print(f"{component.name}: {stop(component, config, grace)}")
    return 0


def cmd_status(config: Config, components: Sequence[Component]) -> int:
    print_table(status_rows(config, components))
    return 0


def cmd_logs(config: Config, components: Sequence[Component], follow: bool, lines: int) -> int:
    files = [str(c.log_file(config)) for c in components if c.log_file(config).exists()]
    if not files:
        print(f"no logs yet in {rel(config.log_dir)} (run `make up`)")
        return 0
    command = ["tail", "-n", str(lines), *(["-F"] if follow else []), *files]
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.call(command)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="localcluster",
        description="Run a local Bosun cluster (etcd + apiserver, later the other components) "
        "as supervised processes under .bosun/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("BOSUN_STATE_DIR", REPO / ".bosun")),
        help="pid files, logs and etcd data (env BOSUN_STATE_DIR)",
    )
    parser.add_argument("--etcd-client-port", type=int, default=2379, help="etcd client port")
    parser.add_argument("--etcd-peer-port", type=int, default=2380, help="etcd peer port")
    parser.add_argument("--apiserver-port", type=int, default=6443, help="apiserver gRPC port")
    parser.add_argument(
        "--metrics-port", type=int, default=9090, help="the apiserver's Prometheus port"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="COMPONENT",
        choices=[c.name for c in COMPONENTS],
        help="act on this component only (repeatable)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start what is not running and wait until healthy")
    down = commands.add_parser("down", help="stop everything (SIGTERM, then SIGKILL)")
    down.add_argument(
        "--grace", type=float, default=10.0, help="seconds to wait after SIGTERM before SIGKILL"
    )
    commands.add_parser("status", help="show each component as up or down")
    logs = commands.add_parser("logs", help="show (or follow) the components' logs")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=50)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Keep our progress lines and error messages (stderr) in order when piped, as under make.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    config = Config(
        state_dir=args.state_dir.resolve(),
        etcd_client_port=args.etcd_client_port,
        etcd_peer_port=args.etcd_peer_port,
        apiserver_port=args.apiserver_port,
        metrics_port=args.metrics_port,
    )
    components = [c for c in COMPONENTS if not args.only or c.name in args.only]
    if args.command == "up":
        return cmd_up(config, components)
    if args.command == "down":
        return cmd_down(config, components, args.grace)
    if args.command == "status":
        return cmd_status(config, components)
    return cmd_logs(config, components, args.follow, args.lines)


if __name__ == "__main__":
    sys.exit(main())
