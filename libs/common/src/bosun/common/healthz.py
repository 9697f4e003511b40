"""`/healthz` over plain HTTP for components that have no gRPC server of their own.

kube-proxy serves it on :10256, the DNS server on :8080: 200 while the component's periodic
work succeeds. Healthy means the last success (`mark_success()`) is recent (within
`stale_after` seconds), or the component started less than that long ago. A minimal HTTP/1.0
responder on asyncio: one route, no body to parse, so no web framework.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

__all__ = ["HealthState", "serve_health"]


@dataclass
class HealthState:
    stale_after: float
    started: float = field(default_factory=time.monotonic)
    # Unhealthy until the first success (instead of healthy for `stale_after` after start).
    require_success: bool = False
    last_success: float | None = None
    last_error: str = ""

    def mark_success(self) -> None:
        self.last_success = time.monotonic()
        self.last_error = ""

    def mark_failure(self, error: str) -> None:
        self.last_error = error

    def healthy(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.require_success and self.last_success is None:
            return False
        reference = self.last_success if self.last_success is not None else self.started
        return now - reference <= self.stale_after


async def serve_health(state: HealthState, host: str, port: int) -> asyncio.Server:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request_line.decode(errors="replace").split()
            path = parts[1] if len(parts) > 1 else ""
            body: dict[str, object]
            if path.split("?")[0] not in ("/healthz", "/livez"):
                status, body = "404 Not Found", {"error": "not found"}
            elif state.healthy():
                status, body = "200 OK", {"healthy": True}
            else:
                status, body = (
                    "503 Service Unavailable",
                    {
                        "healthy": False,
                        "lastError": state.last_error,
                    },
                )
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(respond, host, port)
