"""EventRecorder: aggregation, naming, the bounded queue, the spam filter, re-creation, stop()."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from google.protobuf import json_format
from prometheus_client import REGISTRY

from bosun.api.v1 import core_pb2, meta_pb2
from bosun.common import testing
from bosun.common.errors import AlreadyExistsError, ApiError, NotFoundError, UnavailableError
from bosun.common.events import EventRecorder, object_reference
from bosun.common.mergepatch import apply_merge_patch

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeEvents:
    """An in-memory Event store with the apiserver's create/merge-patch semantics."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], core_pb2.Event] = {}
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None  # when set up, every call waits for it
        self.errors: list[ApiError] = []  # raised by the next calls, in order

    async def _enter(self, call: str) -> None:
        self.calls.append(call)
        if self.gate is not None:
            await self.gate.wait()
        if self.errors:
            raise self.errors.pop(0)

    async def create(self, obj: core_pb2.Event, /) -> core_pb2.Event:
        await self._enter("create")
        key = (obj.metadata.namespace, obj.metadata.name)
        if key in self.store:
            raise AlreadyExistsError(f"event {key} already exists")
        stored = core_pb2.Event()
        stored.CopyFrom(obj)
        self.store[key] = stored
        return stored

    async def patch(
        self, name: str, patch: Mapping[str, Any], /, *, namespace: str = ""
    ) -> core_pb2.Event:
        await self._enter("patch")
        key = (namespace, name)
        if key not in self.store:
            raise NotFoundError(f"event {key} not found")
        merged = apply_merge_patch(json_format.MessageToDict(self.store[key]), patch)
        patched = core_pb2.Event()
        json_format.ParseDict(merged, patched)
        self.store[key] = patched
        return patched

    def events(self) -> list[core_pb2.Event]:
        return sorted(self.store.values(), key=lambda event: event.metadata.name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> FakeEvents:
    return FakeEvents()


@pytest.fixture
def recorder(sink: FakeEvents, clock: FakeClock) -> EventRecorder:
    return EventRecorder(sink, component="test-controller", host="node-a", clock=clock)


def web_pod(name: str = "web-0") -> core_pb2.Pod:
    pod = testing.pod(name)
    pod.metadata.uid = f"uid-{name}"
    pod.metadata.resource_version = "42"
    return pod


def metric(result: str) -> float:
    return REGISTRY.get_sample_value("bosun_events_total", {"result": result}) or 0.0


# ------------------------------------------------------------------------- event contents


async def test_a_new_event_describes_the_object_and_the_source(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    recorder.start()
    recorder.record(web_pod(), "Normal", "Scheduled", "assigned default/web-0 to node-a")
    await recorder.stop()

    [event] = sink.events()
    assert event.api_version == "v1"
    assert event.kind == "Event"
    assert event.metadata.namespace == "default"
    assert event.metadata.name == f"web-0.{round(T0 * 1e9):x}"
    ref = event.involved_object
    assert (ref.kind, ref.api_version, ref.namespace, ref.name) == ("Pod", "v1", "default", "web-0")
    assert (ref.uid, ref.resource_version) == ("uid-web-0", "42")
    assert (event.type, event.reason) == ("Normal", "Scheduled")
    assert event.message == "assigned default/web-0 to node-a"
    assert (event.source.component, event.source.host) == ("test-controller", "node-a")
    assert event.reporting_component == "test-controller"
    assert event.count == 1
    assert event.first_timestamp.ToNanoseconds() == round(T0 * 1e9)
    assert event.last_timestamp == event.first_timestamp


async def test_cluster_scoped_objects_get_events_in_default(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    node = testing.node("node-a")
    node.metadata.uid = "uid-node-a"
    recorder.start()
    recorder.record(node, "Warning", "NodeNotReady", "node stopped posting status")
    await recorder.stop()

    [event] = sink.events()
    assert event.metadata.namespace == "default"
    assert event.involved_object.kind == "Node"
    assert event.involved_object.namespace == ""
    assert event.metadata.name.startswith("node-a.")


def test_object_reference_of_a_reference_is_a_copy() -> None:
    ref = meta_pb2.ObjectReference(kind="Pod", name="p", namespace="ns", field_path="spec")
    copied = object_reference(ref)
    assert copied == ref
    assert copied is not ref
    pod = testing.replica_set("rs")
    assert object_reference(pod).api_version == "apps/v1"


async def test_the_event_shows_the_object_as_it_was_recorded(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    pod = web_pod()
    recorder.record(pod, "Normal", "Created", "created")
    pod.metadata.name = "renamed"
    pod.metadata.resource_version = "43"
    recorder.start()
    await recorder.stop()

    [event] = sink.events()
    assert event.involved_object.name == "web-0"
    assert event.involved_object.resource_version == "42"


# ---------------------------------------------------------------------------- aggregation


async def test_repeats_increment_count_and_last_timestamp(
    recorder: EventRecorder, sink: FakeEvents, clock: FakeClock
) -> None:
    written, aggregated = metric("written"), metric("aggregated")
    for _ in range(3):
        recorder.record(web_pod(), "Warning", "BackOff", "back-off restarting failed container")
        clock.advance(10)
    recorder.start()
    await recorder.stop()

    [event] = sink.events()
    assert event.count == 3
    assert event.first_timestamp.ToNanoseconds() == round(T0 * 1e9)
    assert event.last_timestamp.ToNanoseconds() == round((T0 + 20) * 1e9)
    assert sink.calls == ["create", "patch", "patch"]
    assert (recorder.stats.written, recorder.stats.aggregated) == (1, 2)
    assert metric("written") - written == 1
    assert metric("aggregated") - aggregated == 2


@pytest.mark.parametrize(
    ("second_type", "second_reason", "second_message"),
    [
        ("Warning", "BackOff", "a different message"),
        ("Warning", "Failed", "back-off"),
        ("Normal", "BackOff", "back-off"),
    ],
)
async def test_a_different_message_reason_or_type_is_a_new_event(
    recorder: EventRecorder,
    sink: FakeEvents,
    second_type: Any,
    second_reason: str,
    second_message: str,
) -> None:
    recorder.start()
    recorder.record(web_pod(), "Warning", "BackOff", "back-off")
    recorder.record(web_pod(), second_type, second_reason, second_message)
    await recorder.stop()

    events = sink.events()
    assert len(events) == 2
    assert [event.count for event in events] == [1, 1]
    # Same clock reading, still two distinct names.
    assert events[0].metadata.name != events[1].metadata.name


async def test_a_different_object_is_a_new_event(recorder: EventRecorder, sink: FakeEvents) -> None:
    recorder.start()
    recorder.record(web_pod("web-0"), "Normal", "Pulled", "pulled")
    recorder.record(web_pod("web-1"), "Normal", "Pulled", "pulled")
    same_name_new_uid = web_pod("web-0")
    same_name_new_uid.metadata.uid = "uid-recreated"
    recorder.record(same_name_new_uid, "Normal", "Pulled", "pulled")
    await recorder.stop()

    assert len(sink.events()) == 3


async def test_repeats_after_the_window_start_a_new_event(
    recorder: EventRecorder, sink: FakeEvents, clock: FakeClock
) -> None:
    recorder.start()
    recorder.record(web_pod(), "Normal", "Pulled", "pulled")
    clock.advance(599)
    recorder.record(web_pod(), "Normal", "Pulled", "pulled")  # within 10 min of the last one
    clock.advance(601)
    recorder.record(web_pod(), "Normal", "Pulled", "pulled")
    await recorder.stop()

    events = sink.events()
    assert [event.count for event in events] == [2, 1]


async def test_patch_that_finds_the_event_gone_creates_it_anew(
    recorder: EventRecorder, sink: FakeEvents, clock: FakeClock
) -> None:
    recorder.start()
    recorder.record(web_pod(), "Warning", "BackOff", "back-off")
    await testing.eventually(lambda: recorder.stats.written == 1)
    [first] = sink.events()
    sink.store.clear()  # deleted (expired) behind the recorder's back

    clock.advance(30)
    recorder.record(web_pod(), "Warning", "BackOff", "back-off")
    clock.advance(30)
    recorder.record(web_pod(), "Warning", "BackOff", "back-off")
    await recorder.stop()

    [event] = sink.events()
    assert sink.calls == ["create", "patch", "create", "patch"]
    assert event.metadata.name != first.metadata.name
    assert event.count == 2  # the new object counts from 1 again
    assert event.first_timestamp.ToNanoseconds() == round((T0 + 30) * 1e9)
    assert event.last_timestamp.ToNanoseconds() == round((T0 + 60) * 1e9)
    assert (recorder.stats.written, recorder.stats.aggregated) == (2, 1)


# ------------------------------------------------------------------- never block, drop


async def test_record_never_blocks_and_drops_beyond_max_queue(
    sink: FakeEvents, clock: FakeClock
) -> None:
    sink.gate = asyncio.Event()  # the apiserver does not answer
    recorder = EventRecorder(sink, component="c", clock=clock, max_queue=5)
    recorder.start()
    recorder.record(web_pod("first"), "Normal", "R", "m")
    await asyncio.sleep(0)  # the writer takes it and hangs in create()
    assert sink.calls == ["create"]

    dropped = metric("dropped")
    started = time.perf_counter()
    for index in range(8):
        recorder.record(web_pod(f"p{index}"), "Normal", "R", "m")
    assert time.perf_counter() - started < 0.5
    assert recorder.stats.dropped_queue_full == 3
    assert metric("dropped") - dropped == 3

    sink.gate.set()
    await recorder.stop()
    names = {event.involved_object.name for event in sink.events()}
    assert names == {"first", "p0", "p1", "p2", "p3", "p4"}
    assert recorder.stats.written == 6


async def test_record_never_raises(recorder: EventRecorder, sink: FakeEvents) -> None:
    recorder.start()
    recorder.record(core_pb2.PodSpec(), "Normal", "R", "not an API kind")
    recorder.record(web_pod(), "Info", "R", "bad type")  # type: ignore[arg-type]
    recorder.record(core_pb2.Pod(), "Normal", "R", "no name")
    await recorder.stop()
    recorder.record(web_pod(), "Normal", "R", "after stop")

    assert sink.events() == []
    assert recorder.stats.dropped_failed == 4


async def test_a_failed_write_is_dropped_and_the_writer_goes_on(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    sink.errors = [ApiError("boom")]
    recorder.start()
    recorder.record(web_pod("a"), "Normal", "R", "m")
    recorder.record(web_pod("b"), "Normal", "R", "m")
    await recorder.stop()

    assert [event.involved_object.name for event in sink.events()] == ["b"]
    assert (recorder.stats.dropped_failed, recorder.stats.written) == (1, 1)


async def test_transient_failures_are_retried(recorder: EventRecorder, sink: FakeEvents) -> None:
    recorder.retry_delays = (0.0, 0.0)
    sink.errors = [UnavailableError("apiserver restarting"), UnavailableError("still")]
    recorder.start()
    recorder.record(web_pod(), "Normal", "R", "m")
    await recorder.stop()

    assert sink.calls == ["create"] * 3
    assert len(sink.events()) == 1
    assert recorder.stats.written == 1


async def test_a_retried_create_that_had_landed_counts_as_written(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    recorder.retry_delays = (0.0,)
    real_create = sink.create

    async def lands_then_times_out(obj: core_pb2.Event, /) -> core_pb2.Event:
        if not sink.store:
            await real_create(obj)
            raise UnavailableError("connection lost after the write")
        return await real_create(obj)

    sink.create = lands_then_times_out  # type: ignore[method-assign]
    recorder.start()
    recorder.record(web_pod(), "Normal", "R", "m")
    recorder.record(web_pod(), "Normal", "R", "m")
    await recorder.stop()

    [event] = sink.events()
    assert event.count == 2
    assert recorder.stats.written == 1
    assert recorder.stats.dropped == 0


# ------------------------------------------------------------------------------ spam filter


async def test_spam_filter_allows_a_burst_then_one_per_five_minutes(
    recorder: EventRecorder, sink: FakeEvents, clock: FakeClock
) -> None:
    for index in range(30):
        recorder.record(web_pod(), "Warning", "Failed", f"attempt {index}")
    assert recorder.stats.dropped_rate_limited == 5

    # Another object, or another recorder (source), has its own bucket.
    recorder.record(web_pod("other"), "Warning", "Failed", "attempt")
    assert recorder.stats.dropped_rate_limited == 5

    clock.advance(299)
    recorder.record(web_pod(), "Warning", "Failed", "late")
    assert recorder.stats.dropped_rate_limited == 6
    clock.advance(1)
    recorder.record(web_pod(), "Warning", "Failed", "late")
    recorder.record(web_pod(), "Warning", "Failed", "late")
    assert recorder.stats.dropped_rate_limited == 7

    recorder.start()
    await recorder.stop()
    assert recorder.stats.written == 27  # 25 + "other" + one "late"
    assert len(sink.events()) == 27


async def test_repeats_cost_a_token_too(recorder: EventRecorder, sink: FakeEvents) -> None:
    for _ in range(40):
        recorder.record(web_pod(), "Warning", "BackOff", "back-off")
    recorder.start()
    await recorder.stop()

    [event] = sink.events()
    assert event.count == 25
    assert recorder.stats.dropped_rate_limited == 15


# ------------------------------------------------------------------------ start and stop


async def test_stop_flushes_what_is_queued(recorder: EventRecorder, sink: FakeEvents) -> None:
    recorder.start()
    for index in range(10):
        recorder.record(web_pod(f"p{index}"), "Normal", "Created", "created")
    await recorder.stop()

    assert len(sink.events()) == 10
    assert recorder.stats.written == 10


async def test_stop_without_start_still_writes_what_was_recorded(
    recorder: EventRecorder, sink: FakeEvents
) -> None:
    recorder.record(web_pod(), "Normal", "Created", "created")
    await recorder.stop()
    assert len(sink.events()) == 1


async def test_stop_gives_up_at_its_deadline(sink: FakeEvents, clock: FakeClock) -> None:
    sink.gate = asyncio.Event()  # never set
    recorder = EventRecorder(sink, component="c", clock=clock)
    recorder.start()
    for index in range(3):
        recorder.record(web_pod(f"p{index}"), "Normal", "R", "m")
    started = time.perf_counter()
    await recorder.stop(timeout=0.1)

    assert time.perf_counter() - started < 2
    assert sink.events() == []
    # The one being written when the deadline hit, and the two behind it.
    assert recorder.stats.dropped_failed == 3
    with pytest.raises(RuntimeError):
        recorder.start()


async def test_async_context_manager(sink: FakeEvents, clock: FakeClock) -> None:
    async with EventRecorder(sink, component="c", clock=clock) as recorder:
        recorder.record(web_pod(), "Normal", "R", "m")
    assert len(sink.events()) == 1


async def test_record_from_another_thread(recorder: EventRecorder, sink: FakeEvents) -> None:
    recorder.start()

    def record_five() -> None:
        for index in range(5):
            recorder.record(web_pod(f"t{index}"), "Normal", "R", "m")

    thread = threading.Thread(target=record_five)
    thread.start()
    await asyncio.to_thread(thread.join)
    await testing.eventually(lambda: recorder.stats.written == 5, timeout=5)
    await recorder.stop()
    assert len(sink.events()) == 5


def test_constructor_checks_its_arguments(sink: FakeEvents) -> None:
    with pytest.raises(ValueError, match="component"):
        EventRecorder(sink, component="")
    with pytest.raises(ValueError, match="max_queue"):
        EventRecorder(sink, component="c", max_queue=0)
