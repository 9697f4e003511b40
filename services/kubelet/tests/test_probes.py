from __future__ import annotations

import asyncio

from bosun.api.v1 import core_pb2
from bosun.kubelet.probes import (
    ProbeOutcome,
    ProbeType,
    ProbeWorker,
    http_get,
    resolve_port,
    run_probe,
)
from bosun.kubelet.runtime import ExecResult
from bosun.kubelet.testing import FakeRuntime

OK = ProbeOutcome(True)
FAIL = ProbeOutcome(False, "nope")


def worker(probe_type: ProbeType, **fields: int) -> tuple[ProbeWorker, list[bool], list[str]]:
    flips: list[bool] = []
    failures: list[str] = []
    probe = core_pb2.Probe(**fields)

    async def never() -> ProbeOutcome:
        raise AssertionError("not called in these tests")

    made = ProbeWorker(
        probe_type,
        probe,
        never,
        on_change=lambda w: flips.append(w.result),
        on_failure=lambda w, message: failures.append(message),
    )
    return made, flips, failures


def test_readiness_starts_failed_and_needs_success_threshold_successes() -> None:
    probe, flips, _ = worker("readiness", success_threshold=2, failure_threshold=2)
    assert probe.result is False
    probe.observe(OK)
    assert flips == []
    probe.observe(OK)
    assert (probe.result, flips) == (True, [True])
    probe.observe(FAIL)
    assert probe.result is True  # one failure is below the threshold
    probe.observe(FAIL)
    assert (probe.result, flips, probe.killed) == (False, [True, False], False)


def test_liveness_starts_healthy_and_kills_after_failure_threshold() -> None:
    probe, flips, failures = worker("liveness", failure_threshold=3)
    assert probe.result is True
    probe.observe(FAIL)
    probe.observe(FAIL)
    probe.observe(OK)  # a success resets the count
    probe.observe(FAIL)
    probe.observe(FAIL)
    assert flips == []
    assert not probe.killed
    probe.observe(FAIL)
    assert (probe.result, flips, probe.killed) == (False, [False], True)
    assert failures == ["nope"] * 5


def test_startup_failure_threshold_marks_the_container_for_restart() -> None:
    probe, flips, _ = worker("startup", failure_threshold=2)
    assert probe.result is False
    probe.observe(FAIL)
    probe.observe(FAIL)
    assert probe.killed
    assert flips == [False]


def test_defaults_follow_kubernetes() -> None:
    probe, _, _ = worker("liveness")
    assert (probe.period, probe.success_threshold, probe.failure_threshold) == (10.0, 1, 3)


async def test_run_loop_waits_initial_delay_then_probes_every_period() -> None:
    sleeps: list[float] = []
    outcomes = iter([OK, FAIL, FAIL])
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 3:
            done.set()
            await asyncio.Event().wait()

    async def check() -> ProbeOutcome:
        return next(outcomes)

    probe = ProbeWorker(
        "readiness",
        core_pb2.Probe(initial_delay_seconds=5, period_seconds=2, failure_threshold=2),
        check,
        on_change=lambda w: None,
        sleep=sleep,
    )
    probe.start("test")
    await asyncio.wait_for(done.wait(), 2)
    await probe.stop()
    assert sleeps == [5, 2, 2, 2]
    assert probe.result is False


async def test_startup_gate_holds_liveness_back() -> None:
    calls = 0
    started = False

    async def check() -> ProbeOutcome:
        nonlocal calls
        calls += 1
        return FAIL

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    probe = ProbeWorker(
        "liveness",
        core_pb2.Probe(failure_threshold=1),
        check,
        on_change=lambda w: None,
        gate=lambda: started,
        sleep=sleep,
    )
    probe.start("gated")
    for _ in range(20):
        await asyncio.sleep(0)
    assert calls == 0
    assert probe.result is True
    started = True
    for _ in range(20):
        await asyncio.sleep(0)
    await probe.stop()
    assert calls > 0
    assert probe.killed


async def test_exec_probe_succeeds_on_exit_zero_and_reports_output_otherwise() -> None:
    runtime = FakeRuntime()
    runtime.exec_results[("check",)] = ExecResult(1, b"disk full\n")
    container = core_pb2.Container(name="app")
    good = core_pb2.Probe(exec=core_pb2.ExecAction(command=["ok"]))
    bad = core_pb2.Probe(exec=core_pb2.ExecAction(command=["check"]))
    assert (await run_probe(good, container, container_id="c", pod_ip="", runtime=runtime)).success
    outcome = await run_probe(bad, container, container_id="c", pod_ip="", runtime=runtime)
    assert not outcome.success
    assert "disk full" in outcome.message


async def serve_http(status: int) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_http_probe_accepts_2xx_and_3xx_only() -> None:
    for status, success in ((200, True), (302, True), (404, False), (500, False)):
        server, port = await serve_http(status)
        async with server:
            outcome = await http_get("127.0.0.1", port, "/healthz", scheme="HTTP", headers=[])
        assert outcome.success is success, status


async def test_tcp_probe_and_named_ports() -> None:
    server, port = await serve_http(200)
    container = core_pb2.Container(
        name="web", ports=[core_pb2.ContainerPort(name="http", container_port=port)]
    )
    assert resolve_port("http", container) == port
    probe = core_pb2.Probe(tcp_socket=core_pb2.TCPSocketAction(port="http"))
    async with server:
        outcome = await run_probe(
            probe, container, container_id="c", pod_ip="127.0.0.1", runtime=FakeRuntime()
        )
    assert outcome.success
    server.close()
    await server.wait_closed()
    closed = await run_probe(
        probe, container, container_id="c", pod_ip="127.0.0.1", runtime=FakeRuntime()
    )
    assert not closed.success
    assert "probe failed" in closed.message


async def test_unknown_named_port_is_a_failure_not_a_crash() -> None:
    probe = core_pb2.Probe(tcp_socket=core_pb2.TCPSocketAction(port="nope"))
    outcome = await run_probe(
        probe,
        core_pb2.Container(name="x"),
        container_id="c",
        pod_ip="127.0.0.1",
        runtime=FakeRuntime(),
    )
    assert not outcome.success
    assert "named port" in outcome.message
