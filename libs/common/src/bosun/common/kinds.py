"""The registry of API kinds: one table that the apiserver, the client and the CLI all read.

A kind's entry says how it is named (kind, plural resource, short names), which group/version
it belongs to, whether it is namespaced, whether it has a status subresource, and which field of
the `Object` envelope carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from bosun.api.v1 import apps_pb2, coordination_pb2, core_pb2, object_pb2


@dataclass(frozen=True)
class KindInfo:
    kind: str
    api_version: str
    resource: str
    envelope_field: str
    message: type[Message]
    namespaced: bool
    has_status: bool
    short_names: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()


_ALL: tuple[KindInfo, ...] = (
    KindInfo(
        "Namespace", "v1", "namespaces", "namespace", core_pb2.Namespace, False, True, ("ns",)
    ),
    KindInfo("Node", "v1", "nodes", "node", core_pb2.Node, False, True, ("no",)),
    KindInfo("Pod", "v1", "pods", "pod", core_pb2.Pod, True, True, ("po",)),
    KindInfo("Event", "v1", "events", "event", core_pb2.Event, True, False, ("ev",)),
    KindInfo(
        "Lease", "coordination.k8s.io/v1", "leases", "lease", coordination_pb2.Lease, True, False
    ),
    KindInfo(
        "ConfigMap", "v1", "configmaps", "config_map", core_pb2.ConfigMap, True, False, ("cm",)
    ),
    KindInfo("Secret", "v1", "secrets", "secret", core_pb2.Secret, True, False),
    KindInfo(
        "ServiceAccount",
        "v1",
        "serviceaccounts",
        "service_account",
        core_pb2.ServiceAccount,
        True,
        False,
        ("sa",),
    ),
    KindInfo("Service", "v1", "services", "service", core_pb2.Service, True, True, ("svc",)),
    KindInfo("Endpoints", "v1", "endpoints", "endpoints", core_pb2.Endpoints, True, False, ("ep",)),
    KindInfo(
        "ReplicaSet",
        "apps/v1",
        "replicasets",
        "replica_set",
        apps_pb2.ReplicaSet,
        True,
        True,
        ("rs",),
    ),
    KindInfo(
        "Deployment",
        "apps/v1",
        "deployments",
        "deployment",
        apps_pb2.Deployment,
        True,
        True,
        ("deploy",),
    ),
    KindInfo(
        "PersistentVolume",
        "v1",
        "persistentvolumes",
        "persistent_volume",
        core_pb2.PersistentVolume,
        False,
        True,
        ("pv",),
    ),
    KindInfo(
        "PersistentVolumeClaim",
        "v1",
        "persistentvolumeclaims",
        "persistent_volume_claim",
        core_pb2.PersistentVolumeClaim,
        True,
        True,
        ("pvc",),
    ),
)

KINDS: dict[str, KindInfo] = {info.kind: info for info in _ALL}
_BY_MESSAGE: dict[str, KindInfo] = {info.message.DESCRIPTOR.full_name: info for info in _ALL}
_BY_FIELD: dict[str, KindInfo] = {info.envelope_field: info for info in _ALL}
_BY_ANY_NAME: dict[str, KindInfo] = {}
for _info in _ALL:
    for _name in (_info.kind, _info.resource, _info.singular, *_info.short_names):
        _BY_ANY_NAME[_name.lower()] = _info


class UnknownKindError(LookupError):
    """Raised for a kind, resource or short name that the registry does not know."""


def lookup(name: str) -> KindInfo:
    """Resolve a kind ("Pod"), a resource ("pods"), a singular ("pod") or a short name ("po")."""
    try:
        return _BY_ANY_NAME[name.lower()]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise UnknownKindError(f"unknown kind {name!r} (known kinds: {known})") from None


def for_message(message: Message) -> KindInfo:
    """The kind whose message type `message` is."""
    try:
        return _BY_MESSAGE[message.DESCRIPTOR.full_name]
    except KeyError:
        raise UnknownKindError(f"{message.DESCRIPTOR.full_name} is not an API kind") from None


def wrap(message: Message) -> object_pb2.Object:
    """Put a kind's message into the `Object` envelope."""
    info = for_message(message)
    envelope = object_pb2.Object()
    getattr(envelope, info.envelope_field).CopyFrom(message)
    return envelope


def unwrap(envelope: object_pb2.Object) -> tuple[KindInfo, Any]:
    """The kind and message carried by an envelope; UnknownKindError when it carries none."""
    field = envelope.WhichOneof("kind")
    if field is None:
        raise UnknownKindError("the object envelope carries no kind (Object.kind is unset)")
    return _BY_FIELD[field], getattr(envelope, field)
