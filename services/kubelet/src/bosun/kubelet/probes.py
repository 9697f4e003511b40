"""Container probes: running one check, and the per-container loop that applies thresholds.

`run_probe` performs one exec / httpGet / tcpSocket check and says success or failure (with a
message for the Unhealthy event). `ProbeWorker` is one asyncio task per (container, probe
type): it waits `initialDelaySeconds`, then checks every `periodSeconds`, and flips its result
only after `successThreshold` consecutive successes or `failureThreshold` consecutive failures,
as Kubernetes does. It calls `on_change` when the result flips; the pod worker reacts (restart
on liveness/startup failure, Ready on readiness) on its own task, so probes never touch the
runtime's containers themselves.

Initial results follow Kubernetes: readiness starts as failure, liveness as success, startup
as failure until it first succeeds (then the startup worker stops: it has done its job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bosun.api.v1 import core_pb2
from bosun.kubelet.runtime import ContainerRuntime

log = logging.getLogger(__name__)

ProbeType = Literal["liveness", "readiness", "startup"]


@dataclass(frozen=True)
class ProbeOutcome:
    success: bool
    message: str = ""


def resolve_port(port: str, container: core_pb2.Container) -> int:
    """IntOrString: a number, or the name of one of the container's ports."""
    if port.isdigit():
        return int(port)
    for declared in container.ports:
        if declared.name == port:
            return declared.container_port
    raise ValueError(f"port {port!r} is neither a number nor a named port of the container")


async def http_get(
    host: str, port: int, path: str, *, scheme: str, headers: Sequence[tuple[str, str]]
) -> ProbeOutcome:
    """One HTTP/1.0 GET; success is a status in [200, 400), as in Kubernetes."""
    context: ssl.SSLContext | None = None
    if scheme.upper() == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # Kubernetes skips verification for probes too
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {host}:{port}", "User-Agent: bosun-probe"]
        lines += [f"{name}: {value}" for name, value in headers]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1").strip()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return ProbeOutcome(False, f"HTTP probe failed: bad response {status_line!r}")
    code = int(parts[1])
    if 200 <= code < 400:
        return ProbeOutcome(True)
    return ProbeOutcome(False, f"HTTP probe failed with statuscode: {code}")


async def run_probe(
    probe: core_pb2.Probe,
    container: core_pb2.Container,
    *,
    container_id: str,
    pod_ip: str,
    runtime: ContainerRuntime,
) -> ProbeOutcome:
    """One check, bounded by timeoutSeconds (default 1 s); never raises."""
    timeout = float(probe.timeout_seconds or 1)
    try:
        if probe.HasField("exec"):
            result = await runtime.exec(container_id, list(probe.exec.command), timeout=timeout)
            if result.exit_code == 0:
                return ProbeOutcome(True)
            output = result.output.decode(errors="replace").strip()[-200:]
            return ProbeOutcome(
                False, f"exec probe exited {result.exit_code}" + (f": {output}" if output else "")
            )
        if probe.HasField("http_get"):
            action = probe.http_get
            port = resolve_port(action.port, container)
            headers = [(h.name, h.value) for h in action.http_headers]
            return await asyncio.wait_for(
                http_get(
                    action.host or pod_ip,
                    port,
                    action.path,
                    scheme=action.scheme or "HTTP",
                    headers=headers,
                ),
                timeout,
            )
        if probe.HasField("tcp_socket"):
            port = resolve_port(probe.tcp_socket.port, container)
            host = probe.tcp_socket.host or pod_ip
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return ProbeOutcome(True)
        return ProbeOutcome(False, "probe has no handler (exec, httpGet or tcpSocket)")
    except TimeoutError:
        return ProbeOutcome(False, f"probe timed out after {timeout:g}s")
    except (OSError, ValueError) as error:
        return ProbeOutcome(False, f"probe failed: {error}")
    except Exception as error:  # the runtime's own errors (container gone, engine down)
        return ProbeOutcome(False, f"probe errored: {error}")


Check = Callable[[], Awaitable[ProbeOutcome]]


class ProbeWorker:
    """The loop for one probe of one container instance (a restarted container gets a new one).

    `result` is the thresholded verdict; `on_change(worker)` runs after every flip and
    `on_failure(worker, message)` after every failed check (for Unhealthy events).
    """

    def __init__(
        self,
        probe_type: ProbeType,
        probe: core_pb2.Probe,
        check: Check,
        *,
        on_change: Callable[[ProbeWorker], None],
        on_failure: Callable[[ProbeWorker, str], None] = lambda worker, message: None,
        gate: Callable[[], bool] = lambda: True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        initial: bool | None = None,
    ) -> None:
        self.probe_type = probe_type
        self.probe = probe
        self._check = check
        self._on_change = on_change
        self._on_failure = on_failure
        # Liveness and readiness wait for the startup probe: `gate` says whether it passed.
        self._gate = gate
        self._sleep = sleep
        self.result = probe_type == "liveness" if initial is None else initial
        # Liveness/startup: the failure threshold was crossed, the container must be restarted.
        self.killed = False
        self.last_message = ""
        self._successes = 0
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def period(self) -> float:
        return float(self.probe.period_seconds or 10)

    @property
    def success_threshold(self) -> int:
        return max(1, self.probe.success_threshold or 1)

    @property
    def failure_threshold(self) -> int:
        return max(1, self.probe.failure_threshold or 3)

    def start(self, name: str) -> None:
        self._task = asyncio.create_task(self.run(), name=name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        await self._sleep(float(self.probe.initial_delay_seconds))
        while True:
            if self._gate():
                outcome = await self._check()
                self.observe(outcome)
                if self.probe_type == "startup" and self.result:
                    return  # started: the startup probe is done for this container
            await self._sleep(self.period)

    def observe(self, outcome: ProbeOutcome) -> None:
        """Apply one check's outcome to the thresholds (the unit-testable core)."""
        if outcome.success:
            self._successes += 1
            self._failures = 0
            if not self.result and self._successes >= self.success_threshold:
                self.result = True
                self._on_change(self)
            return
        self._failures += 1
        self._successes = 0
        self.last_message = outcome.message
        self._on_failure(self, outcome.message)
        if self._failures >= self.failure_threshold and (
            self.result or self.probe_type != "readiness"
        ):
            # Liveness/startup report every threshold crossing (each one is a restart);
            # readiness only reports the flip to failure.
            self.result = False
            self._failures = 0
            self.killed = self.probe_type != "readiness"
            self._on_change(self)
