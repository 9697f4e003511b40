"""Leader election on a Lease object, as client-go's `tools/leaderelection`.

Problem it solves: a replicated component (scheduler, controller-manager) must have exactly one
active replica, and a standby must take over soon after the active one dies, without a human.
All candidates race for one Lease (`coordination.k8s.io/v1`); its `holder_identity` is the
leader, who proves it is alive by moving `renew_time` forward every `retry_period`.

Rules, in the order `try_acquire_or_renew` applies them:

* No lease: create one naming us (create fails with AlreadyExists for all but one candidate).
* Held by someone else and not expired (`renew_time + lease_duration_seconds >= now`): do
  nothing; we are a follower. An empty holder (a released lease) counts as expired.
* Held by us, or expired: write ourselves in with `renew_time = now`. When the holder changes,
  `acquire_time = now` and `lease_transitions` goes up by one.
* Every write carries the `resource_version` that was read, so the apiserver rejects all but
  one of several candidates that saw the same version (ConflictError). Two candidates can
  never both win; a loser just tries again after `retry_period`.

A leader that cannot renew for `renew_deadline` (apiserver unreachable, conflicts) stops
leading on its own, and so does one that sees another holder in the lease. Because
`renew_deadline < lease_duration`, it has stopped before any follower may consider the lease
expired, so two replicas never act as leader at once — given that candidates' clocks agree to
within `lease_duration - renew_deadline` (expiry is judged on the `renew_time` the leader wrote).

Concurrency: `run()` is one task. While leading, `on_started_leading()` runs as a child task
(the leader's work); it is cancelled, and awaited, before `on_stopped_leading()` is called, so
the work never overlaps a successor's. If that work ends by itself (returns or raises) this
replica steps down and releases the lease. Cancelling `run()` stops leading the same way and,
with `release_on_cancel`, releases the lease (clears `holder_identity`) so a standby takes over
at its next retry instead of waiting for the lease to expire. After losing the lease, `run()`
campaigns again. Time comes from the injectable `clock` (now) and `sleep` (waiting), so tests
drive it without real delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bosun.api.v1 import coordination_pb2, meta_pb2
from bosun.common import kinds
from bosun.common.errors import AlreadyExistsError, ApiError, ConflictError, NotFoundError

log = logging.getLogger(__name__)

Lease = coordination_pb2.Lease

JITTER_FACTOR = 1.2
"""A follower's retry waits retry_period · (1 + random · JITTER_FACTOR), as client-go's."""


class LeaseClient(Protocol):
    """What the elector needs from the apiserver; `Client.leases` is one."""

    async def get(self, name: str, *, namespace: str) -> coordination_pb2.Lease: ...

    async def create(self, lease: coordination_pb2.Lease, /) -> coordination_pb2.Lease: ...

    async def update(self, lease: coordination_pb2.Lease, /) -> coordination_pb2.Lease: ...


Clock = Callable[[], datetime | float]
"""Returns now: an aware datetime, or seconds since the epoch."""

Sleep = Callable[[float], Awaitable[None]]
LeadingWork = Callable[[], Awaitable[None]]
"""Runs while this replica leads; cancelled when it stops leading."""

StoppedCallback = Callable[[], Awaitable[None] | None]
NewLeaderCallback = Callable[[str], Awaitable[None] | None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """Campaigns for, holds and renews one Lease; see the module docstring."""

    def __init__(
        self,
        *,
        leases: LeaseClient,
        name: str,
        namespace: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        on_started_leading: LeadingWork | None = None,
        on_stopped_leading: StoppedCallback | None = None,
        on_new_leader: NewLeaderCallback | None = None,
        release_on_cancel: bool = True,
    ) -> None:
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "need 0 < retry_period < renew_deadline < lease_duration "
                f"(got {retry_period}, {renew_deadline}, {lease_duration})"
            )
        self.leases = leases
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self._clock = clock
        self._sleep = sleep
        self._on_started_leading = on_started_leading
        self._on_stopped_leading = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._leading = False
        self._observed: coordination_pb2.Lease | None = None
        self._reported_leader = ""
        self._last_renew: datetime | None = None

    # ----------------------------------------------------------------------------- state

    @property
    def is_leader(self) -> bool:
        """True while this replica leads (between on_started_leading and on_stopped_leading)."""
        return self._leading

    @property
    def leader(self) -> str:
        """The holder seen in the lease at the last read or write ("" if none)."""
        return self._holder(self._observed) if self._observed is not None else ""

    def now(self) -> datetime:
        value = self._clock()
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return datetime.fromtimestamp(value, UTC)

    # ---------------------------------------------------------------------- one attempt

    async def try_acquire_or_renew(self) -> bool:
        """One read-and-write of the lease; True when we hold it afterwards.

        API errors (unreachable apiserver, lost races) are logged and give False.
        """
        now = self.now()
        try:
            current = await self.leases.get(self.name, namespace=self.namespace)
        except NotFoundError:
            return await self._create(now)
        except ApiError as error:
            log.warning("reading lease %s/%s failed: %s", self.namespace, self.name, error)
            return False
        await self._observe(current)
        holder = self._holder(current)
        if holder and holder != self.identity and not self._expired(current, now):
            return False

        desired = coordination_pb2.Lease()
        desired.CopyFrom(current)  # keeps metadata.resource_version: optimistic concurrency
        spec = desired.spec
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = self._duration_seconds()
        spec.renew_time.FromDatetime(now)
        if holder != self.identity:
            spec.acquire_time.FromDatetime(now)
            spec.lease_transitions = current.spec.lease_transitions + 1
        try:
            written = await self.leases.update(desired)
        except ConflictError:
            log.debug("lost a race writing lease %s/%s", self.namespace, self.name)
            return False
        except ApiError as error:
            log.warning("writing lease %s/%s failed: %s", self.namespace, self.name, error)
            return False
        self._last_renew = now
        await self._observe(written)
        return True

    async def _create(self, now: datetime) -> bool:
        info = kinds.KINDS["Lease"]
        lease = coordination_pb2.Lease(
            api_version=info.api_version,
            kind=info.kind,
            metadata=meta_pb2.ObjectMeta(name=self.name, namespace=self.namespace),
        )
        spec = lease.spec
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = self._duration_seconds()
        spec.acquire_time.FromDatetime(now)
        spec.renew_time.FromDatetime(now)
        spec.lease_transitions = 0
        try:
            created = await self.leases.create(lease)
        except (AlreadyExistsError, ConflictError):
            return False
        except ApiError as error:
            log.warning("creating lease %s/%s failed: %s", self.namespace, self.name, error)
            return False
        self._last_renew = now
        await self._observe(created)
        return True

    async def release(self) -> bool:
        """Give the lease up if we hold it, so another candidate can take it at once.

        Writes over the version we last saw: if anyone changed the lease since, it is no
        longer ours to release and nothing is written. True when the lease was released.
        """
        observed = self._observed
        if observed is None or self._holder(observed) != self.identity:
            return False
        released = coordination_pb2.Lease()
        released.CopyFrom(observed)
        now = self.now()
        released.spec.ClearField("holder_identity")
        released.spec.lease_duration_seconds = 1
        released.spec.renew_time.FromDatetime(now)
        released.spec.acquire_time.FromDatetime(now)
        try:
            written = await self.leases.update(released)
        except ApiError as error:
            log.warning("releasing lease %s/%s failed: %s", self.namespace, self.name, error)
            return False
        self._observed = written
        log.info(
            "released lease %s/%s", self.namespace, self.name, extra={"identity": self.identity}
        )
        return True

    # ------------------------------------------------------------------------- run loop

    async def run(self) -> None:
        """Campaign, lead, and campaign again after losing the lease, until cancelled."""
        work: asyncio.Task[None] | None = None
        try:
            while True:
                await self._acquire()
                work = self._start_leading()
                reason = await self._renew_until_lost(work)
                await self._stop_leading(work, reason)
                work = None
                if reason == "leading work ended":
                    await self.release()
                await self._sleep(self._jittered())
        finally:
            if self._leading:
                await self._stop_leading(work, "elector cancelled")
                if self.release_on_cancel:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.release(), timeout=self.renew_deadline)

    async def _acquire(self) -> None:
        while not await self._attempt():
            await self._sleep(self._jittered())

    async def _attempt(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            log.warning("lease %s/%s: attempt timed out", self.namespace, self.name)
        except Exception:
            log.exception("lease %s/%s: attempt failed", self.namespace, self.name)
        return False

    def _start_leading(self) -> asyncio.Task[None] | None:
        self._leading = True
        log.info(
            "became leader for lease %s/%s",
            self.namespace,
            self.name,
            extra={"identity": self.identity},
        )
        if self._on_started_leading is None:
            return None
        return asyncio.create_task(
            self._lead_work(self._on_started_leading), name=f"leading:{self.name}"
        )

    @staticmethod
    async def _lead_work(work: LeadingWork) -> None:
        await work()

    async def _renew_until_lost(self, work: asyncio.Task[None] | None) -> str:
        """Renew every retry_period; return why leadership ended."""
        while True:
            sleeper = asyncio.ensure_future(self._sleep(self.retry_period))
            try:
                await asyncio.wait(
                    {sleeper} if work is None else {sleeper, work},
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                sleeper.cancel()
            if work is not None and work.done():
                if not work.cancelled() and work.exception() is not None:
                    log.error("leading work failed", exc_info=work.exception())
                return "leading work ended"
            last = self._last_renew or self.now()
            remaining = self.renew_deadline - (self.now() - last).total_seconds()
            if remaining > 0 and await self._attempt(remaining):
                continue
            if self.leader and self.leader != self.identity:
                return f"lease taken by {self.leader}"
            elapsed = (self.now() - last).total_seconds()
            if elapsed >= self.renew_deadline:
                return f"failed to renew for {elapsed:.1f}s (renew deadline {self.renew_deadline}s)"

    async def _stop_leading(self, work: asyncio.Task[None] | None, reason: str) -> None:
        self._leading = False
        log.warning(
            "stopped leading lease %s/%s: %s",
            self.namespace,
            self.name,
            reason,
            extra={"identity": self.identity},
        )
        if work is not None and not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
        await self._call(self._on_stopped_leading)

    # -------------------------------------------------------------------------- helpers

    async def _observe(self, lease: coordination_pb2.Lease) -> None:
        self._observed = lease
        holder = self._holder(lease)
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            log.info("lease %s/%s is held by %s", self.namespace, self.name, holder)
            await self._call(self._on_new_leader, holder)

    @staticmethod
    def _holder(lease: coordination_pb2.Lease) -> str:
        return lease.spec.holder_identity if lease.spec.HasField("holder_identity") else ""

    def _expired(self, lease: coordination_pb2.Lease, now: datetime) -> bool:
        spec = lease.spec
        if not spec.HasField("renew_time"):
            return True
        seconds = (
            spec.lease_duration_seconds
            if spec.HasField("lease_duration_seconds") and spec.lease_duration_seconds > 0
            else self.lease_duration
        )
        renewed = spec.renew_time.ToDatetime(tzinfo=UTC)
        return renewed + timedelta(seconds=seconds) < now

    def _duration_seconds(self) -> int:
        return max(1, math.ceil(self.lease_duration))

    def _jittered(self) -> float:
        return self.retry_period * (1.0 + random.random() * JITTER_FACTOR)

    @staticmethod
    async def _call(callback: Callable[..., Awaitable[None] | None] | None, *args: str) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("leader election callback %r failed", callback)
