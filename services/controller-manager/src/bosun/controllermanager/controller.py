"""The shape every controller shares: a work queue of keys, workers, and an instrumented `sync`.

A controller's informer handlers only call `enqueue(key)` (or `enqueue_after`); they never read
the apiserver or write anything. Workers take keys from the queue and call `sync(key)`, which
reads the informer caches and moves the world one step toward the spec. Because `sync` looks at
the current state rather than at the event that woke it, it is correct whatever events were
missed or merged (level-triggered), and calling it twice is harmless (idempotent).

The work queue guarantees that one key is never synced by two workers at once, so per-key state
(for example expectations) needs no lock: everything runs on one event loop and a worker only
yields at `await` points inside its own key's sync.

A `sync` that raises is logged and retried with per-key exponential backoff (the queue's rate
limiter); one that succeeds resets the backoff. Nothing a sync raises ends the process.

Metrics, labelled by controller name:

* `bosun_workqueue_depth{name}` (from the work queue) — keys waiting;
* `bosun_controller_sync_duration_seconds{controller}` — sync latency;
* `bosun_controller_sync_errors_total{controller}` — failed syncs (each one is retried).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from bosun.common.informer import Informer
from bosun.common.workqueue import WorkQueue, default_rate_limiter, run_workers
from bosun.controllermanager.context import ControllerContext

log = logging.getLogger(__name__)

_SYNC_SECONDS = Histogram(
    "bosun_controller_sync_duration_seconds",
    "Time one sync(key) of a controller took.",
    ["controller"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
_SYNC_ERRORS = Counter(
    "bosun_controller_sync_errors_total",
    "sync(key) calls that raised (the key is retried with backoff).",
    ["controller"],
)


class Controller(abc.ABC):
    """A named reconcile loop: subclasses register handlers in `__init__` and implement `sync`.

    `workers` overrides `options.workers` for controllers whose keys must not be synced
    concurrently (one periodic key) or that want more parallelism.
    """

    name: str = ""

    def __init__(self, context: ControllerContext, *, workers: int | None = None) -> None:
        if not self.name:
            raise TypeError(f"{type(self).__name__} must set a name")
        self.client = context.client
        self.recorder = context.recorder
        self.options = context.options
        self.workers = workers if workers is not None else context.options.workers
        self.queue: WorkQueue[str] = WorkQueue(
            self.name,
            rate_limiter=default_rate_limiter(max_delay=context.options.max_retry_delay),
        )
        self._sync_seconds = _SYNC_SECONDS.labels(self.name)
        self._sync_errors = _SYNC_ERRORS.labels(self.name)

    # ------------------------------------------------------------------ for handlers

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    # ------------------------------------------------------------------ to implement

    @property
    @abc.abstractmethod
    def informers(self) -> Sequence[Informer[Any]]:
        """The informers whose caches `sync` reads; workers start once all have synced."""

    @abc.abstractmethod
    async def sync(self, key: str) -> None:
        """Reconcile one object; raise to be retried with backoff."""

    async def started(self) -> None:
        """Called once the caches have synced, before the workers run (periodic work hooks)."""
        return None

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Wait for the caches, then run the workers until cancelled."""
        await asyncio.gather(*(informer.wait_for_sync() for informer in self.informers))
        log.info("controller started", extra={"controller": self.name})
        await self.started()
        try:
            await run_workers(
                self.queue, self._instrumented_sync, workers=self.workers, on_error=self._failed
            )
        finally:
            self.queue.shutdown()

    async def _instrumented_sync(self, key: str) -> None:
        start = time.perf_counter()
        try:
            await self.sync(key)
        finally:
            self._sync_seconds.observe(time.perf_counter() - start)

    def _failed(self, key: str, error: Exception) -> None:
        self._sync_errors.inc()
        log.warning(
            "%s: sync of %s failed (retry %d): %s",
            self.name,
            key,
            self.queue.num_requeues(key) + 1,
            error,
            extra={"controller": self.name, "key": key},
        )


def split_key(key: str) -> tuple[str, str]:
    """("namespace", "name") from "namespace/name"; ("", "name") for cluster-scoped keys."""
    namespace, _, name = key.rpartition("/")
    return namespace, name
