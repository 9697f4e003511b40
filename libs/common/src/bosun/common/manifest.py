"""Kubernetes manifests (YAML or JSON documents) to and from Bosun's API protos.

A manifest written for Kubernetes must load unchanged, but YAML and Kubernetes are looser than
proto3 JSON: `cpu: 1`, `targetPort: 8080` and `version: 2` are numbers where the proto field
(a quantity, an IntOrString, a map<string, string> value) is a string, and YAML turns `yes` into
a bool and an unquoted timestamp into a datetime. So `to_proto` walks the message descriptor
alongside the document, normalising those values and checking every field on the way, and only
then hands the result to `json_format.ParseDict`. Walking it ourselves is also what lets every
error name the JSON path it is about (`spec.containers[0].imagePullPolcy: unknown field`) rather
than protobuf's description of its own recursion.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import difflib
from collections.abc import Mapping
from typing import Any, cast

import yaml  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from bosun.common.kinds import KINDS

__all__ = ["ManifestError", "load_documents", "to_dict", "to_proto"]


class ManifestError(ValueError):
    """A document that is not a valid object of a known kind; the message names where."""

    def __init__(self, message: str, *, source: str = "<input>", path: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.path = path


class _FieldError(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


_INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_TIMESTAMP = "google.protobuf.Timestamp"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _rfc3339(value: dt.datetime | dt.date) -> str:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _key(key: Any) -> str:
    """A mapping key as JSON has it (YAML 1.1 reads an unquoted `on:` key as True)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _fields_by_json_name(descriptor: Descriptor) -> dict[str, FieldDescriptor]:
    fields: dict[str, FieldDescriptor] = {}
    for field in descriptor.fields:
        fields[field.name] = field
        fields[field.json_name] = field
    return fields


def _normalise_message(descriptor: Descriptor, value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _FieldError(path, f"expected an object, got {_type_name(value)} {_show(value)}")
    fields = _fields_by_json_name(descriptor)
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _key(key)
        field = fields.get(name)
        child = _join(path, name)
        if field is None:
            known = sorted({f.json_name for f in descriptor.fields})
            hint = difflib.get_close_matches(name, known, n=1)
            suffix = f' (did you mean "{hint[0]}"?)' if hint else ""
            raise _FieldError(child, f"unknown field{suffix}")
        if item is None:
            continue  # null means unset, as in Kubernetes (`creationTimestamp: null`)
        out[field.json_name] = _normalise_field(field, item, child)
    return out


def _normalise_field(field: FieldDescriptor, value: Any, path: str) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, Mapping):
            raise _FieldError(path, f"expected an object, got {_type_name(value)} {_show(value)}")
        value_field = field.message_type.fields_by_name["value"]
        return {
            _key(key): _normalise_single(value_field, item, f"{path}[{_key(key)}]")
            for key, item in value.items()
            if item is not None
        }
    if field.is_repeated:
        if not isinstance(value, list):
            raise _FieldError(path, f"expected a list, got {_type_name(value)} {_show(value)}")
        return [
            _normalise_single(field, item, f"{path}[{index}]") for index, item in enumerate(value)
        ]
    return _normalise_single(field, value, path)


def _normalise_single(field: FieldDescriptor, value: Any, path: str) -> Any:
    if field.message_type is not None:
        if field.message_type.full_name == _TIMESTAMP:
            if isinstance(value, dt.datetime | dt.date):
                return _rfc3339(value)
            if not isinstance(value, str):
                raise _FieldError(path, f"expected an RFC 3339 timestamp, got {_show(value)}")
            return value
        if field.message_type.full_name.startswith("google.protobuf."):
            return value
        return _normalise_message(field.message_type, value, path)
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _normalise_bytes(value, path)
        return _normalise_string(value, path)
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        if not isinstance(value, bool):
            raise _FieldError(path, f"expected a boolean, got {_type_name(value)} {_show(value)}")
        return value
    if cpp in _INT_RANGES:
        return _normalise_int(cpp, value, path)
    if cpp in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _FieldError(path, f"expected a number, got {_type_name(value)} {_show(value)}")
        return value
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _FieldError(path, f"expected an enum name, got {_show(value)}")
        return value
    return value


def _normalise_string(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return _rfc3339(value)
    raise _FieldError(path, f"expected a string, got {_type_name(value)} {_show(value)}")


def _normalise_bytes(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _FieldError(path, f"expected base64 data, got {_type_name(value)} {_show(value)}")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _FieldError(path, f"illegal base64 data {_show(value)}") from None
    return value


def _normalise_int(cpp: int, value: Any, path: str) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None:
        raise _FieldError(path, f"expected an integer, got {_type_name(value)} {_show(value)}")
    low, high = _INT_RANGES[cpp]
    if not low <= number <= high:
        raise _FieldError(path, f"{number} is out of range [{low}, {high}]")
    return number


def to_proto(document: Mapping[str, Any], *, source: str = "<input>") -> Message:
    """The API message `document` describes, chosen by its `apiVersion` and `kind`."""
    if not isinstance(document, Mapping):
        raise ManifestError(
            f"{source}: expected an object with apiVersion and kind, got {_type_name(document)}",
            source=source,
        )
    kind = document.get("kind")
    api_version = document.get("apiVersion")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{source}: kind: Required value", source=source, path="kind")
    info = KINDS.get(kind)
    if info is None:
        known = ", ".join(sorted(KINDS))
        raise ManifestError(
            f'{source}: unknown kind "{kind}" (known kinds: {known})', source=source, path="kind"
        )
    if api_version != info.api_version:
        raise ManifestError(
            f'{source}: kind "{kind}" is served as apiVersion "{info.api_version}", not '
            + (f'"{api_version}"' if api_version is not None else "an unset apiVersion"),
            source=source,
            path="apiVersion",
        )
    message = info.message()
    where = f"{source}: {kind}"
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if isinstance(name, str) and name:
        where = f'{where} "{name}"'
    try:
        descriptor = cast(Descriptor, info.message.DESCRIPTOR)
        normalised = _normalise_message(descriptor, document, "")
    except _FieldError as error:
        raise ManifestError(f"{where}: {error}", source=source, path=error.path) from None
    try:
        json_format.ParseDict(normalised, message)
    except json_format.ParseError as error:
        raise ManifestError(f"{where}: {error}", source=source) from None
    return message


def to_dict(message: Message) -> dict[str, Any]:
    """The message as a Kubernetes-style JSON object (camelCase names, unset fields omitted)."""
    result: dict[str, Any] = json_format.MessageToDict(
        message, preserving_proto_field_name=False, unquote_int64_if_possible=True
    )
    return result


def load_documents(text: str, *, source: str = "<input>") -> list[Message]:
    """Every object in a (multi-document) YAML or JSON text; `kind: List` items are expanded.

    Empty documents are skipped. Errors name the source and, in a multi-document text, which
    document (counting from 1).
    """
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise ManifestError(f"{source}: invalid YAML: {error}", source=source) from None
    messages: list[Message] = []
    for index, document in enumerate(documents, start=1):
        where = f"{source} (document {index})" if len(documents) > 1 else source
        if not isinstance(document, Mapping):
            raise ManifestError(
                f"{where}: expected an object with apiVersion and kind, got {_type_name(document)}",
                source=where,
            )
        if document.get("kind") == "List" and document.get("apiVersion") == "v1":
            items = document.get("items") or []
            if not isinstance(items, list):
                raise ManifestError(f"{where}: items: expected a list", source=where, path="items")
            for item_index, item in enumerate(items):
                messages.append(to_proto(item, source=f"{where} items[{item_index}]"))
            continue
        messages.append(to_proto(document, source=where))
    return messages
