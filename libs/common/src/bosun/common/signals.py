"""How every component's process learns it should stop."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call from the running loop): a component awaits it,
    then shuts down in its own order instead of being killed mid-write by the default handler."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
