"""Expectations: what a controller is waiting to see in its cache after its own writes.

Problem it solves: a ReplicaSet controller that creates 3 pods will be woken again before its
informer has seen them (the RS's status changes, another pod event arrives). Its cache still
shows 3 pods too few, and without a memory of its writes it would create 3 more. So before it
writes, it records how many creations (and which deletions) it expects to observe; informer
handlers count them down as the events arrive; `sync` only manages replicas when the
expectations of that controller key are satisfied (client-go's ControllerExpectations and
UIDTrackingExpectations).

Deletions are tracked by pod key, not by count: a pod deleted by someone else while we also
deleted it must not be counted twice, and a DELETED event for a pod we did not delete must not
satisfy an expectation for one we did.

An expectation that is never observed (a watch event lost to a relist, a create that failed
after the request was sent) would block the controller forever, so expectations expire after
`ttl` seconds and the controller then trusts its cache again.

Concurrency: only called from the event loop thread (handlers and syncs); no awaits inside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

DEFAULT_TTL = 300.0


@dataclass
class _Expected:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    set_at: float = 0.0


class Expectations:
    """Per controller key: pending creations (a count) and deletions (a set of object keys)."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._items: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        entry = self._items.setdefault(key, _Expected())
        entry.adds += count
        entry.set_at = self._clock()

    def expect_deletions(self, key: str, object_keys: Iterable[str]) -> None:
        entry = self._items.setdefault(key, _Expected())
        entry.deletes.update(object_keys)
        entry.set_at = self._clock()

    def creation_observed(self, key: str) -> None:
        entry = self._items.get(key)
        if entry is not None and entry.adds > 0:
            entry.adds -= 1

    def deletion_observed(self, key: str, object_key: str) -> None:
        entry = self._items.get(key)
        if entry is not None:
            entry.deletes.discard(object_key)

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending, or what is pending has waited longer than `ttl`."""
        entry = self._items.get(key)
        if entry is None:
            return True
        if entry.adds <= 0 and not entry.deletes:
            return True
        return self._clock() - entry.set_at > self.ttl

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for `key`."""
        entry = self._items.get(key)
        return (0, 0) if entry is None else (entry.adds, len(entry.deletes))

    def forget(self, key: str) -> None:
        self._items.pop(key, None)
