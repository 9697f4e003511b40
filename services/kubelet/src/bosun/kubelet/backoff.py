"""Per-key exponential backoff for container restarts and image pulls, as Kubernetes does it.

CrashLoopBackOff: a container that exits is restarted at once the first time; `next(key)` then
opens a window of `initial` (10 s) measured from when it exited, and every further restart
doubles the window, capped at `maximum` (5 min). A container that had run for `reset_after`
(10 min) before exiting starts over: restarted at once, next window `initial` again. The same
arithmetic, under its own keys, spaces out failed image pulls (ErrImagePull, then
ImagePullBackOff while the window is open).

State is in memory, keyed by pod uid and container name; a restarted kubelet starts the count
over, which costs at most one early restart. Times are wall-clock seconds (containers' finish
times come from the runtime as wall-clock); the clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Backoff:
    def __init__(
        self,
        *,
        initial: float = 10.0,
        maximum: float = 300.0,
        reset_after: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("need 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self.reset_after = reset_after
        self.clock = clock
        # key → the current window in seconds (absent: no failure remembered).
        self._windows: dict[str, float] = {}

    def window(self, key: str) -> float:
        return self._windows.get(key, 0.0)

    def next(self, key: str) -> float:
        """Record a restart (or retry) of `key` now; returns the window the next one will wait."""
        current = self._windows.get(key)
        window = self.initial if current is None else min(self.maximum, current * 2)
        self._windows[key] = window
        return window

    def remaining(self, key: str, since: float) -> float:
        """Seconds `key` must still wait, counting its window from `since` (0: go ahead)."""
        window = self._windows.get(key)
        if window is None:
            return 0.0
        return max(0.0, since + window - self.clock())

    def reset_if_ran(self, key: str, ran_for: float) -> None:
        """Forget `key`'s failures when its last run lasted at least `reset_after`."""
        if ran_for >= self.reset_after:
            self._windows.pop(key, None)

    def forget(self, key: str) -> None:
        self._windows.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._windows if k.startswith(prefix)]:
            del self._windows[key]
