"""`apply`: kubectl's client-side apply, a three-way merge sent as a JSON merge patch.

Three versions of an object meet:

* original: what the previous apply sent, kept in the object's
  `kubectl.kubernetes.io/last-applied-configuration` annotation;
* modified: the manifest now being applied (plus that annotation, now recording it);
* current: the object on the server, with what controllers, defaulting and other writers
  added.

The patch sets every field of the manifest that differs from the current object, and deletes
(`null`) the fields the previous manifest set and this one no longer does. Fields nobody ever
applied (defaults, status, labels added by someone else) are left alone: they are in neither
manifest. The patch carries no resourceVersion, so it lands on whatever the object is when it
arrives, as kubectl's does.

Lists cannot be merged by a JSON merge patch: a list that differs from the server's (say
`containers`, whose items the server defaults) is sent whole and defaulted again. So "does this
apply change anything" is decided by the server: the patch is first sent as a dry run, and when
its result equals the current object apart from the bookkeeping annotation, nothing is written
and the object is `unchanged`. (The annotation then keeps recording the previous manifest,
which set the same values.)

The applied configuration is the manifest without what the server owns (uid,
resourceVersion, creationTimestamp, …, status), so the output of `get -o yaml` can be applied
back without recording server fields as the user's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bosun.cli.manifests import ManifestObject
from bosun.common.client import Client
from bosun.common.errors import AlreadyExistsError, NotFoundError
from bosun.common.manifest import to_dict, to_proto

__all__ = [
    "LAST_APPLIED",
    "ApplyResult",
    "applied_configuration",
    "apply_object",
    "three_way_patch",
]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# metadata the server sets; never part of what a user applies.
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)


@dataclass(frozen=True)
class ApplyResult:
    action: str  # "created" | "configured" | "unchanged"
    object: Any


def _drop_annotation(document: dict[str, Any]) -> None:
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        return
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del metadata["annotations"]


def applied_configuration(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """`manifest` without server-owned fields and without the last-applied annotation."""
    document = copy.deepcopy(dict(manifest))
    document.pop("status", None)
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        for key in _SERVER_METADATA:
            metadata.pop(key, None)
    _drop_annotation(document)
    return document


def _with_annotation(applied: Mapping[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(dict(applied))
    metadata = document.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {})
    annotations[LAST_APPLIED] = json.dumps(applied, sort_keys=True, separators=(",", ":"))
    return document


def _changes(current: Mapping[str, Any], modified: Mapping[str, Any]) -> dict[str, Any]:
    """What of `modified` differs from `current` (no deletions)."""
    patch: dict[str, Any] = {}
    for key, value in modified.items():
        old = current.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = _changes(old, value)
            if nested:
                patch[key] = nested
        elif key not in current or old != value or type(old) is not type(value):
            patch[key] = copy.deepcopy(value)
    return patch


def _deletions(original: Mapping[str, Any], modified: Mapping[str, Any]) -> dict[str, Any]:
    """null for every field `original` has and `modified` does not (recursively)."""
    patch: dict[str, Any] = {}
    for key, value in original.items():
        if key not in modified:
            patch[key] = None
        elif isinstance(value, Mapping) and isinstance(modified[key], Mapping):
            nested = _deletions(value, modified[key])
            if nested:
                patch[key] = nested
    return patch


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def three_way_patch(
    original: Mapping[str, Any] | None,
    modified: Mapping[str, Any],
    current: Mapping[str, Any],
) -> dict[str, Any]:
    """The merge patch that makes `current` carry `modified`, dropping what `original` set."""
    return _merge(_deletions(original or {}, modified), _changes(current, modified))


def _last_applied(current: Mapping[str, Any]) -> dict[str, Any] | None:
    text = (current.get("metadata") or {}).get("annotations", {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None  # not ours to interpret: behave as for an object never applied
    return document if isinstance(document, dict) else None


def _pruned(value: Any) -> Any:
    """`value` without empty objects: an unset message and an empty one mean the same."""
    if not isinstance(value, Mapping):
        return value
    pruned = {key: _pruned(item) for key, item in value.items()}
    return {key: item for key, item in pruned.items() if item != {}}


def _comparable(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` as compared by "did anything change": no resourceVersion or annotation."""
    result = copy.deepcopy(dict(document))
    metadata = result.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("resourceVersion", None)
    _drop_annotation(result)
    pruned: dict[str, Any] = _pruned(result)
    return pruned


async def apply_object(client: Client, item: ManifestObject, namespace: str) -> ApplyResult:
    """Create `item` when absent, else three-way merge it into the current object."""
    resource = client.resource(item.info.kind)
    applied = applied_configuration(to_dict(item.message))
    modified = _with_annotation(applied)
    name = item.name
    for _attempt in range(3):
        try:
            current_message = await resource.get(name, namespace=namespace)
        except NotFoundError:
            created = to_proto(modified, source=item.source)
            if item.info.namespaced:
                created.metadata.namespace = namespace  # type: ignore[attr-defined]
            try:
                return ApplyResult("created", await resource.create(created))
            except AlreadyExistsError:
                continue  # created meanwhile: merge into it instead
        current = to_dict(current_message)
        patch = three_way_patch(_last_applied(current), modified, current)
        if not patch:
            return ApplyResult("unchanged", current_message)
        # A dry run first: when the patch would change nothing but the bookkeeping annotation
        # (a list sent whole and defaulted again, `get -o yaml` output applied back), nothing
        # is written and the object keeps its resourceVersion.
        preview = await resource.patch(name, patch, namespace=namespace, dry_run=True)
        if _comparable(to_dict(preview)) == _comparable(current):
            return ApplyResult("unchanged", current_message)
        result = await resource.patch(name, patch, namespace=namespace)
        return ApplyResult("configured", result)
    raise AlreadyExistsError(f'{item.info.resource} "{name}" keeps being created and deleted')
