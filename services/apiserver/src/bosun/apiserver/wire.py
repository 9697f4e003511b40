"""Hand-assembled protobuf wire bytes for the hot paths of List, Get and Watch.

The watch cache keeps every object as the serialized bytes of its `Object` envelope, so that a
List of 5,000 pods or an event fanned out to 100 watchers is a byte concatenation, not a
parse-and-serialize per object per client. The functions here produce exactly the bytes the
protobuf runtime would (field tag, varint length, payload), for messages whose schema is fixed
in proto/bosun/api/apiserver/v1/apiserver.proto:

    Object       { oneof kind { <kind> = N } }           field N, length-delimited
    WatchEvent   { EventType type = 1; Object object = 2; }
    ListResponse { ListMeta metadata = 1; repeated Object items = 2; }
    ListMeta     { string resource_version = 1; string continue = 2; optional int64 remaining = 3; }

Stored values (etcd) hold the kind's message without metadata.resourceVersion (the revision is
etcd's). `with_resource_version` appends a second `metadata { resource_version }` field; protobuf
merges repeated occurrences of a singular message field, so parsers see one ObjectMeta with the
revision set, and no decode/re-encode is needed.
"""

from __future__ import annotations

from collections.abc import Iterable

from bosun.api.v1 import object_pb2

_LENGTH_DELIMITED = 2
_VARINT = 0
# Every kind keeps ObjectMeta in field 3, and ObjectMeta keeps resource_version in field 5.
_METADATA_FIELD = 3
_RESOURCE_VERSION_FIELD = 5

ENVELOPE_FIELD_NUMBERS: dict[str, int] = {
    field.name: field.number for field in object_pb2.Object.DESCRIPTOR.oneofs_by_name["kind"].fields
}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def tag(field_number: int, wire_type: int) -> bytes:
    return varint((field_number << 3) | wire_type)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return tag(field_number, _LENGTH_DELIMITED) + varint(len(payload)) + payload


def with_resource_version(message_bytes: bytes, resource_version: int) -> bytes:
    rv = str(resource_version).encode()
    meta = length_delimited(_RESOURCE_VERSION_FIELD, rv)
    return message_bytes + length_delimited(_METADATA_FIELD, meta)


def envelope(envelope_field: str, message_bytes: bytes) -> bytes:
    """The bytes of an `Object` envelope carrying one kind's serialized message."""
    return length_delimited(ENVELOPE_FIELD_NUMBERS[envelope_field], message_bytes)


def watch_event(event_type: int, envelope_bytes: bytes) -> bytes:
    return tag(1, _VARINT) + varint(event_type) + length_delimited(2, envelope_bytes)


def list_response(
    items: Iterable[bytes],
    *,
    resource_version: int,
    continue_token: str = "",
    remaining: int | None = None,
) -> bytes:
    meta = length_delimited(1, str(resource_version).encode())
    if continue_token:
        meta += length_delimited(2, continue_token.encode())
    if remaining is not None:
        meta += tag(3, _VARINT) + varint(remaining)
    parts = [length_delimited(1, meta)]
    parts.extend(length_delimited(2, item) for item in items)
    return b"".join(parts)
