"""The hand-assembled wire bytes parse as the messages they stand for."""

from __future__ import annotations

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.api.v1 import object_pb2
from bosun.apiserver import wire
from bosun.common import testing


def test_varint_matches_protobuf_encoding() -> None:
    for value in (1, 127, 128, 300, 2**31, 2**63 - 1):
        message = apiserver_pb2.ListRequest(limit=value)
        assert message.SerializeToString() == b"\x28" + wire.varint(value)


def test_resource_version_suffix_sets_the_field_and_keeps_the_rest() -> None:
    pod = testing.pod("web", labels={"app": "web"})
    pod.metadata.resource_version = "7"
    patched = wire.with_resource_version(pod.SerializeToString(), 12345)
    parsed = type(pod).FromString(patched)
    assert parsed.metadata.resource_version == "12345"
    assert parsed.metadata.labels["app"] == "web"
    assert parsed.spec == pod.spec


def test_envelope_is_an_object_carrying_the_kind() -> None:
    pod = testing.pod("web")
    envelope = object_pb2.Object.FromString(wire.envelope("pod", pod.SerializeToString()))
    assert envelope.WhichOneof("kind") == "pod"
    assert envelope.pod == pod


def test_watch_event_and_list_response_parse() -> None:
    item = wire.envelope("pod", testing.pod("web").SerializeToString())
    event = apiserver_pb2.WatchEvent.FromString(wire.watch_event(apiserver_pb2.MODIFIED, item))
    assert event.type == apiserver_pb2.MODIFIED
    assert event.object.pod.metadata.name == "web"
    listed = apiserver_pb2.ListResponse.FromString(
        wire.list_response([item, item], resource_version=9, continue_token="t", remaining=4)
    )
    assert listed.metadata.resource_version == "9"
    assert listed.metadata.continue_token == "t"
    assert listed.metadata.remaining_item_count == 4
    assert len(listed.items) == 2
