"""Starting, watching and stopping the local cluster's processes.

Every process is started detached (a session of its own, so it outlives `make up` and a Ctrl-C
in the shell), logs to `<state>/logs/<name>.log` and has its pid in `<state>/run/<name>.pid`.
`up` is idempotent: a component whose pid file names a live process of the right program is left
alone, one that died is started again, and each is waited on until its health probe passes
before the next one starts, because later components need the earlier ones. `down` stops them
in reverse order: SIGTERM to the process group, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bosun.cli.localcluster.components import Component, Settings

__all__ = [
    "ClusterError",
    "StatusRow",
    "display_path",
    "log_tail",
    "running_pid",
    "start",
    "status_rows",
    "stop",
    "wait_healthy",
]

MARKER = "===="  # starts the line `start` writes into a component's log before each start


class ClusterError(RuntimeError):
    """A component could not be started; the message says which, why, and its log's tail."""


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


def _is_ours(pid: int, component: Component, settings: Settings) -> bool:
    """Guard against pid reuse: the live process must be running the component's program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return process_alive(pid)  # no /proc: trust the pid file
    program = Path(component.command(settings)[0]).name
    return any(Path(os.fsdecode(arg)).name == program for arg in cmdline[:3])


def running_pid(component: Component, settings: Settings) -> int | None:
    pid = read_pid(component.pid_file(settings))
    if pid is not None and process_alive(pid) and _is_ours(pid, component, settings):
        return pid
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines the latest start wrote (from its marker on)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    starts = [i for i, line in enumerate(text) if line.startswith(MARKER)]
    since = text[starts[-1] :] if starts else text
    return "\n".join("    " + line for line in since[-lines:])


def start(component: Component, settings: Settings) -> subprocess.Popen[bytes]:
    command = component.command(settings)
    if not Path(command[0]).exists():
        raise ClusterError(
            f"{component.name}: {command[0]} does not exist; run `make install` first"
        )
    busy = [port for port in component.ports(settings) if _port_in_use(port)]
    if busy:
        raise ClusterError(
            f"{component.name}: port(s) {', '.join(map(str, busy))} already in use by a process "
            f"this cluster did not start; stop it or choose other ports (bosunctl local up --help)"
        )
    for directory in (settings.run_dir, settings.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    with component.log_file(settings).open("ab") as log:
        stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        log.write(f"{MARKER} {stamp} bosunctl local: starting {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: survives the shell; killpg stops it
            env={**os.environ, **component.env},
        )
    component.pid_file(settings).write_text(f"{process.pid}\n")
    return process


def wait_healthy(
    component: Component, settings: Settings, process: subprocess.Popen[bytes] | None
) -> float:
    """Seconds until healthy; ClusterError with the log's tail if it exits or times out."""
    began = time.monotonic()
    deadline = began + component.start_timeout
    log = component.log_file(settings)
    while time.monotonic() < deadline:
        if component.healthy(settings):
            return time.monotonic() - began
        if process is not None and process.poll() is not None:
            component.pid_file(settings).unlink(missing_ok=True)
            raise ClusterError(
                f"{component.name}: exited with code {process.returncode} while starting; "
                f"last lines of {display_path(log)}:\n{log_tail(log)}"
            )
        time.sleep(0.1)
    raise ClusterError(
        f"{component.name}: not healthy after {component.start_timeout:.0f}s (it is still "
        f"running; `bosunctl local down` stops it); last lines of {display_path(log)}:\n"
        f"{log_tail(log)}"
    )


def _signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the component's process group (it leads its own session), or just the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return not process_alive(pid)


def stop(component: Component, settings: Settings, grace: float) -> str:
    """Stop the component if it runs; say what happened."""
    pid_file = component.pid_file(settings)
    pid = running_pid(component, settings)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return "not running"
    _signal_group(pid, signal.SIGTERM)
    if _wait_exit(pid, grace):
        pid_file.unlink(missing_ok=True)
        return f"stopped (pid {pid})"
    _signal_group(pid, signal.SIGKILL)
    _wait_exit(pid, 5.0)
    pid_file.unlink(missing_ok=True)
    return f"killed (pid {pid}) after {grace:.0f}s without exiting on SIGTERM"


@dataclass(frozen=True)
class StatusRow:
    component: str
    state: str  # up, unhealthy, down, or skipped (it cannot run on this machine)
    pid: int | None
    address: str
    log: str


def status_rows(settings: Settings, components: Sequence[Component]) -> list[StatusRow]:
    rows = []
    for component in components:
        pid = running_pid(component, settings)
        if pid is None:
            state = "skipped" if component.unavailable(settings) else "down"
        else:
            state = "up" if component.healthy(settings) else "unhealthy"
        rows.append(
            StatusRow(
                component.name,
                state,
                pid,
                component.address(settings),
                display_path(component.log_file(settings)),
            )
        )
    return rows
