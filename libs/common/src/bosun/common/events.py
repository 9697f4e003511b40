"""EventRecorder: tell users what a component did to their objects, without ever slowing it down.

Problem it solves: controllers, the scheduler and the kubelet want to leave a trail a person can
read (`bosunctl describe pod web-0` → "Scheduled", "Pulled", "BackOff" …), but a reconcile loop
must not wait on, or fail because of, that trail, and a crash-looping pod must not turn into
thousands of Event objects. This is client-go's `record.EventRecorder` + `EventCorrelator`:

    recorder = EventRecorder(client.events, component="scheduler", host=node_name)
    recorder.start()
    recorder.record(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
    ...
    await recorder.stop()            # writes what is still queued, within a deadline

What happens to one `record()`:

1. It is synchronous and never blocks or raises. It copies what it needs out of the object at
   once (the caller may mutate the object afterwards), so the Event describes the object as it
   was when it was recorded, with the time of the `record()` call.
2. Spam filter: a token bucket per involved object and source (burst 25, one token back every
   5 minutes, as client-go's EventSourceObjectSpamFilter). Without a token the event is dropped.
   Repeats that would only be aggregated cost a token too: a pod that fails every ten seconds
   is reported 25 times, then once per five minutes.
3. It is appended to a bounded queue (`max_queue`); when the queue is full it is dropped.
4. The writer task takes events off the queue one at a time. An event equal to one written in
   the last `aggregation_window` (10 minutes since its last repeat) — same involved object (kind,
   apiVersion, namespace, name, uid, fieldPath), type, reason, message and source — becomes a
   merge patch of the existing Event: `count` + 1 and `lastTimestamp`. Anything else is a new
   Event named `<object name>.<hex nanoseconds>` (as Kubernetes names them) in the object's
   namespace, or in "default" for cluster-scoped objects. When the patch finds the Event gone
   (deleted, or expired) a new one is created, starting again from count 1.

Every event ends as exactly one of `bosun_events_total{result=written|aggregated|dropped}`.

Concurrency: one writer task is the only consumer, so the aggregation cache needs no lock and
the writes for one series happen in order (a patch never overtakes the create it patches).
`record()` may be called from the event loop's thread or from any other thread (blocking work
runs in executors and wants to record too): the spam filter and the queue sit behind a
`threading.Lock` that is held only for a few dictionary operations, never across an await, and
the writer is woken with `call_soon_threadsafe` when the caller is not on the loop's thread.
A write that fails transiently (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) is retried
after `retry_delays`; the merge patch carries the absolute count and a retried create that
reports AlreadyExists is the earlier attempt having landed, so retrying is safe. Other failures
drop the event (logged): the trail is best effort, the caller's work is not.

`stop()` lets the writer drain the queue until its deadline, then cancels it; whatever is left
is counted as dropped. Cancelling `stop()` itself cancels the writer too, so nothing outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeVar, cast

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter

from bosun.api.v1 import core_pb2, meta_pb2
from bosun.common import kinds
from bosun.common.errors import (
    AlreadyExistsError,
    ApiError,
    DeadlineExceededError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)

__all__ = [
    "NORMAL",
    "WARNING",
    "EventRecorder",
    "EventSink",
    "EventType",
    "RecorderStats",
    "object_reference",
]

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
NORMAL: Final = "Normal"
WARNING: Final = "Warning"
_TYPES: Final = frozenset((NORMAL, WARNING))

AGGREGATION_WINDOW: Final = 600.0  # seconds since the last repeat
SPAM_BURST: Final = 25
SPAM_REFILL_SECONDS: Final = 300.0  # one token back every 5 minutes
MAX_CACHE_ENTRIES: Final = 4096  # client-go's maxLruCacheEntries, for both caches

_EVENTS = Counter(
    "bosun_events_total",
    "Events handled by EventRecorder: written (new Event), aggregated (count++), dropped.",
    ["result"],
)
_WRITTEN = _EVENTS.labels("written")
_AGGREGATED = _EVENTS.labels("aggregated")
_DROPPED = _EVENTS.labels("dropped")

_TRANSIENT = (UnavailableError, DeadlineExceededError, ResourceExhaustedError)

R = TypeVar("R")


class EventSink(Protocol):
    """Where Events are written: `Client.events` (a ResourceClient[Event]) is one."""

    async def create(self, obj: core_pb2.Event, /) -> core_pb2.Event: ...

    async def patch(
        self, name: str, patch: Mapping[str, Any], /, *, namespace: str = ...
    ) -> core_pb2.Event: ...


@dataclass
class RecorderStats:
    """What one recorder did with the events it was given (the metric counts all recorders)."""

    written: int = 0
    aggregated: int = 0
    dropped_queue_full: int = 0
    dropped_rate_limited: int = 0
    # Bad input (unknown kind, bad type), a failed write, or recorded after/left over at stop().
    dropped_failed: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_rate_limited + self.dropped_failed


def object_reference(obj: Message) -> meta_pb2.ObjectReference:
    """The ObjectReference for an API object (an ObjectReference is returned as a copy).

    kind and apiVersion come from the kinds registry, so a message built without them works;
    a namespaced object without a namespace is taken to be in "default", as the client does.
    """
    if isinstance(obj, meta_pb2.ObjectReference):
        ref = meta_pb2.ObjectReference()
        ref.CopyFrom(obj)
        return ref
    info = kinds.for_message(obj)
    meta: Any = cast(Any, obj).metadata  # every kind has one; Message does not say so
    return meta_pb2.ObjectReference(
        kind=info.kind,
        api_version=info.api_version,
        namespace=(meta.namespace or "default") if info.namespaced else "",
        name=meta.name,
        uid=meta.uid,
        resource_version=meta.resource_version,
    )


# --------------------------------------------------------------------------- internals

_SeriesKey = tuple[str, str, str, str, str, str, str, str, str]  # see _Pending.series_key
_ObjectKey = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class _Pending:
    """One recorded event on its way to the writer (plain values, copied at record time)."""

    ref: meta_pb2.ObjectReference
    type: str
    reason: str
    message: str
    timestamp: float

    @property
    def series_key(self) -> _SeriesKey:
        # client-go's getEventKey without the source, which is the same for the whole recorder.
        ref = self.ref
        return (
            ref.kind,
            ref.api_version,
            ref.namespace,
            ref.name,
            ref.uid,
            ref.field_path,
            self.type,
            self.reason,
            self.message,
        )


@dataclass(slots=True)
class _Series:
    """The Event that repeats of one series are folded into."""

    name: str
    namespace: str
    count: int
    last_timestamp: float


class _Bucket:
    """A token bucket that refuses rather than reserves (client-go's TryAccept)."""

    __slots__ = ("last", "tokens")

    def __init__(self, burst: int, now: float) -> None:
        self.tokens = float(burst)
        self.last = now

    def try_take(self, now: float, *, burst: int, per_second: float) -> bool:
        elapsed = max(0.0, now - self.last)  # a wall clock may step backwards
        self.tokens = min(float(burst), self.tokens + elapsed * per_second)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def _timestamp(nanos: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(nanos)
    return stamp


def _nanos(seconds: float) -> int:
    return round(seconds * 1e9)


# --------------------------------------------------------------------------- recorder


class EventRecorder:
    """Records Events about API objects: aggregated, rate-limited, written in the background."""

    # Waits before the 2nd, 3rd … attempt of a write that failed transiently.
    retry_delays: tuple[float, ...] = (0.5, 2.0)

    def __init__(
        self,
        client_events: EventSink,
        *,
        component: str,
        host: str = "",
        clock: Callable[[], float] = time.time,
        max_queue: int = 1000,
        aggregation_window: float = AGGREGATION_WINDOW,
        spam_burst: int = SPAM_BURST,
        spam_refill_seconds: float = SPAM_REFILL_SECONDS,
    ) -> None:
        """`clock` is wall time in seconds since the epoch (Event timestamps and names)."""
        if not component:
            raise ValueError("component is required (it is the Event's source)")
        if max_queue < 1 or spam_burst < 1 or spam_refill_seconds <= 0:
            raise ValueError("need max_queue >= 1, spam_burst >= 1, spam_refill_seconds > 0")
        self._sink = client_events
        self.component = component
        self.host = host
        self._clock = clock
        self._max_queue = max_queue
        self._window = aggregation_window
        self._burst = spam_burst
        self._refill = 1.0 / spam_refill_seconds
        self.stats = RecorderStats()

        # Shared with record() callers (any thread): guarded by _lock.
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._buckets: OrderedDict[_ObjectKey, _Bucket] = OrderedDict()
        self._closed = False
        self._queue_full = False  # for logging the first drop of an overflow, not every one

        # The writer's own state (event loop thread only).
        self._series: OrderedDict[_SeriesKey, _Series] = OrderedDict()
        self._last_name_nanos = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public

    def record(self, obj: Message, type: EventType, reason: str, message: str) -> None:
        """Queue an Event about `obj`; returns at once and never raises (problems are logged)."""
        try:
            self._record(obj, type, reason, message)
        except Exception:
            log.exception("event %s/%s dropped: could not record it", type, reason)
            with self._lock:
                self._count_dropped("failed")

    def start(self) -> None:
        """Start the writer task on the running event loop (idempotent while running)."""
        if self._closed:
            raise RuntimeError("EventRecorder was stopped; create a new one")
        if self._task is None:
            self._spawn()

    def _spawn(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._task = self._loop.create_task(self._run(), name=f"event-recorder-{self.component}")
        self._wake.set()  # events recorded before start() are waiting

    async def stop(self, *, timeout: float = 5.0) -> None:
        """Write what is queued (at most `timeout` seconds), then stop; later records drop."""
        with self._lock:
            self._closed = True
            unstarted = self._task is None and bool(self._queue)
        if unstarted:
            self._spawn()  # recorded before start(): still worth writing
        task = self._task
        try:
            if task is not None and not task.done():
                self._wake.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout)
        finally:
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with self._lock:
                left = len(self._queue)
                self._queue.clear()
                for _ in range(left):
                    self._count_dropped("failed")
            if left:
                log.warning("event recorder stopped with %d events unwritten", left)

    async def __aenter__(self) -> EventRecorder:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ record side

    def _record(self, obj: Message, type: str, reason: str, message: str) -> None:
        now = self._clock()
        if type not in _TYPES:
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        ref = object_reference(obj)
        if not ref.name:
            raise ValueError(f"the {ref.kind} has no name")
        pending = _Pending(ref, type, reason, message, now)
        object_key: _ObjectKey = (ref.kind, ref.api_version, ref.namespace, ref.name, ref.uid)
        with self._lock:
            if self._closed:
                self._count_dropped("failed")
                log.debug("event %s dropped: recorder stopped", reason)
                return
            if not self._take_token(object_key, now):
                self._count_dropped("rate_limited")
                log.debug("event %s about %s/%s dropped: rate limited", reason, ref.kind, ref.name)
                return
            if len(self._queue) >= self._max_queue:
                self._count_dropped("queue_full")
                if not self._queue_full:
                    self._queue_full = True
                    log.warning("event queue full (%d): dropping events", self._max_queue)
                return
            self._queue_full = False
            self._queue.append(pending)
        self._notify()

    def _take_token(self, key: _ObjectKey, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
            if len(self._buckets) > MAX_CACHE_ENTRIES:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.try_take(now, burst=self._burst, per_second=self._refill)

    def _count_dropped(self, why: Literal["queue_full", "rate_limited", "failed"]) -> None:
        # Called with _lock held (stats are shared with other threads' record()).
        if why == "queue_full":
            self.stats.dropped_queue_full += 1
        elif why == "rate_limited":
            self.stats.dropped_rate_limited += 1
        else:
            self.stats.dropped_failed += 1
        _DROPPED.inc()

    def _notify(self) -> None:
        loop = self._loop
        if loop is None:
            return  # not started: start() wakes the writer
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: stop() accounts
                loop.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ writer side

    async def _run(self) -> None:
        while True:
            with self._lock:
                pending = self._queue.popleft() if self._queue else None
                closed = self._closed
            if pending is None:
                if closed:
                    return
                # Cleared before waiting, after the check: a record() in between has already
                # scheduled (or made) a set(), so no wake-up is lost.
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._write(pending)
            except asyncio.CancelledError:
                with self._lock:
                    self._count_dropped("failed")  # stop()'s deadline hit mid-write
                raise
            except Exception:
                log.exception("event %s dropped: writing it failed", pending.reason)
                with self._lock:
                    self._count_dropped("failed")

    async def _write(self, pending: _Pending) -> None:
        key = pending.series_key
        series = self._series.get(key)
        if series is not None and pending.timestamp - series.last_timestamp <= self._window:
            # Observed even when the write fails: the next patch carries the total count.
            series.count += 1
            series.last_timestamp = pending.timestamp
            self._series.move_to_end(key)
            patch = {
                "count": series.count,
                "lastTimestamp": _timestamp(_nanos(pending.timestamp)).ToJsonString(),
            }
            name, namespace = series.name, series.namespace
            try:
                await self._retrying(lambda: self._sink.patch(name, patch, namespace=namespace))
            except NotFoundError:
                log.debug("event %s/%s is gone; creating it anew", namespace, name)
                del self._series[key]
            except ApiError as error:
                self._dropped_write(pending, error)
                return
            else:
                self._count(aggregated=True)
                return
        await self._create(pending, key)

    async def _create(self, pending: _Pending, key: _SeriesKey) -> None:
        ref = pending.ref
        namespace = ref.namespace or "default"
        # Unique within this recorder even when the clock repeats a value (or is coarse).
        nanos = max(_nanos(pending.timestamp), self._last_name_nanos + 1)
        self._last_name_nanos = nanos
        event = core_pb2.Event(
            api_version="v1",
            kind="Event",
            involved_object=ref,
            reason=pending.reason,
            message=pending.message,
            source=core_pb2.EventSource(component=self.component, host=self.host),
            first_timestamp=_timestamp(nanos),
            last_timestamp=_timestamp(nanos),
            count=1,
            type=pending.type,
            reporting_component=self.component,
            reporting_instance=self.host,
        )
        event.metadata.name = f"{ref.name}.{nanos:x}"
        event.metadata.namespace = namespace
        try:
            await self._retrying(lambda: self._sink.create(event), created=True)
        except ApiError as error:
            self._dropped_write(pending, error)
            return
        self._series[key] = _Series(event.metadata.name, namespace, 1, pending.timestamp)
        if len(self._series) > MAX_CACHE_ENTRIES:
            self._series.popitem(last=False)
        self._count(aggregated=False)

    async def _retrying(
        self, call: Callable[[], Awaitable[R]], *, created: bool = False
    ) -> R | None:
        """`call()`, retried after each of `retry_delays` while it fails transiently."""
        delays = iter(self.retry_delays)
        attempted = False
        while True:
            try:
                return await call()
            except AlreadyExistsError:
                if created and attempted:
                    return None  # an earlier attempt landed before its answer was lost
                raise
            except _TRANSIENT as error:
                delay = next(delays, None)
                if delay is None:
                    raise
                log.debug("writing an event failed (%s); retrying in %.1fs", error, delay)
                attempted = True
                await asyncio.sleep(delay)

    def _count(self, *, aggregated: bool) -> None:
        with self._lock:
            if aggregated:
                self.stats.aggregated += 1
            else:
                self.stats.written += 1
        (_AGGREGATED if aggregated else _WRITTEN).inc()

    def _dropped_write(self, pending: _Pending, error: ApiError) -> None:
        ref = pending.ref
        log.warning(
            "event %s about %s %s/%s dropped: %s",
            pending.reason,
            ref.kind,
            ref.namespace,
            ref.name,
            error,
        )
        with self._lock:
            self._count_dropped("failed")
