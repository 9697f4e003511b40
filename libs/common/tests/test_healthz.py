"""/healthz: healthy while the work succeeds, 503 once it stops succeeding for too long."""

from __future__ import annotations

import asyncio

from bosun.common.healthz import HealthState, serve_health


def test_healthy_during_the_start_grace_then_only_with_recent_syncs() -> None:
    state = HealthState(stale_after=10, started=100.0)
    assert state.healthy(now=105)
    assert not state.healthy(now=111)
    state.last_success = 110.0
    assert state.healthy(now=119)
    assert not state.healthy(now=121)


async def get(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    return response


async def test_the_endpoint_answers_200_or_503() -> None:
    state = HealthState(stale_after=10)
    server = await serve_health(state, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await get(port, "/healthz")).startswith("HTTP/1.0 200")
        state.started -= 100
        state.last_error = "refused"
        unhealthy = await get(port, "/healthz")
        assert unhealthy.startswith("HTTP/1.0 503")
        assert "refused" in unhealthy
        assert (await get(port, "/other")).startswith("HTTP/1.0 404")
    finally:
        server.close()
