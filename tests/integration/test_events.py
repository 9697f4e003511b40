"""EventRecorder against a real apiserver: repeats aggregate, types stay apart, gone is re-made."""

from __future__ import annotations

import pytest

from bosun.api.v1 import core_pb2
from bosun.common import testing
from bosun.common.client import Client
from bosun.common.events import EventRecorder

pytestmark = pytest.mark.integration


async def events_about(client: Client, name: str, namespace: str) -> list[core_pb2.Event]:
    listed = await client.events.list(namespace=namespace)
    events = [event for event in listed.items if event.involved_object.name == name]
    return sorted(events, key=lambda event: event.metadata.name)


async def test_repeats_aggregate_and_types_are_separate_events(client: Client) -> None:
    pod = await client.pods.create(testing.pod("web-0"))
    recorder = EventRecorder(client.events, component="integration-test", host="here")
    recorder.start()
    for _ in range(5):
        recorder.record(pod, "Warning", "BackOff", "back-off restarting failed container")
    recorder.record(pod, "Normal", "BackOff", "back-off restarting failed container")
    await recorder.stop()

    events = await events_about(client, "web-0", "default")
    assert sorted((event.type, event.count) for event in events) == [
        ("Normal", 1),
        ("Warning", 5),
    ]
    warning = next(event for event in events if event.type == "Warning")
    assert warning.involved_object.kind == "Pod"
    assert warning.involved_object.uid == pod.metadata.uid
    assert warning.source.component == "integration-test"
    assert warning.last_timestamp.ToNanoseconds() >= warning.first_timestamp.ToNanoseconds()
    assert recorder.stats.written == 2
    assert recorder.stats.aggregated == 4
    assert recorder.stats.dropped == 0


async def test_cluster_scoped_object_and_deleted_event(client: Client) -> None:
    node = await client.nodes.create(testing.node("node-1"))
    recorder = EventRecorder(client.events, component="integration-test")
    recorder.start()
    recorder.record(node, "Normal", "Starting", "starting kubelet")
    await testing.eventually(lambda: recorder.stats.written == 1)
    [first] = await events_about(client, "node-1", "default")
    assert first.involved_object.namespace == ""

    await client.events.delete(first.metadata.name, namespace="default")
    # The recorder does not know it is gone: its patch finds NotFound, and it creates anew.
    recorder.record(node, "Normal", "Starting", "starting kubelet")
    await recorder.stop()
    [event] = await events_about(client, "node-1", "default")
    assert event.metadata.name != first.metadata.name
    assert event.count == 1
    assert recorder.stats.written == 2
