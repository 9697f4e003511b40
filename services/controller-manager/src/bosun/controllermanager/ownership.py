"""Owner references: which controller owns which object, and adopting or releasing objects.

A controller (ReplicaSet, Deployment) owns the objects that carry an owner reference with
`controller: true` and its uid. Selection is by labels, ownership by reference, and the two
can disagree; `claim` resolves that the way Kubernetes' ControllerRefManager does:

* owned and matching the selector: keep;
* owned but no longer matching (someone relabelled it): release — remove our reference, so
  the object is an orphan again and some other controller may adopt it;
* not owned by any controller and matching: adopt — add our controller reference — unless the
  owner is being deleted (an owner on its way out must not collect new dependents);
* owned by another controller: never touched.

Writes are JSON merge patches carrying the object's uid and the resourceVersion that was read,
so a concurrent change makes the apiserver refuse the patch (conflict) instead of overwriting
references it did not see; the error propagates and the sync is retried with fresh state.
An object that vanished meanwhile (NotFound) is simply not claimed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from bosun.api.v1 import meta_pb2
from bosun.common.client import ResourceClient
from bosun.common.errors import NotFoundError
from bosun.common.informer import Store, object_key
from bosun.common.selectors import LabelSelector
from bosun.controllermanager.informers import CONTROLLER_INDEX, orphans_of


def controller_ref(obj: Any) -> meta_pb2.OwnerReference | None:
    for ref in obj.metadata.owner_references:
        if ref.HasField("controller") and ref.controller:
            return ref  # type: ignore[no-any-return]
    return None


def owner_key(obj: Any, kind: str, owners: Store[Any]) -> str | None:
    """The cache key of `obj`'s controller when it is a cached `kind` with the referenced uid.

    A reference to an owner the cache does not have (yet), or to an earlier object of the same
    name, gives None: there is nothing of ours to wake.
    """
    ref = controller_ref(obj)
    if ref is None or ref.kind != kind:
        return None
    owner = owners.get_by_name(ref.name, obj.metadata.namespace)
    if owner is None or owner.metadata.uid != ref.uid:
        return None
    return object_key(owner)


def claim_candidates(owner: Any, objects: Store[Any]) -> list[Any]:
    """What `owner` might claim: the objects it controls and the orphans in its namespace."""
    return [
        *objects.by_index(CONTROLLER_INDEX, owner.metadata.uid),
        *objects.by_index(CONTROLLER_INDEX, orphans_of(owner.metadata.namespace)),
    ]


def selecting_owners(obj: Any, owners: Store[Any]) -> list[str]:
    """Keys of the cached owners in `obj`'s namespace whose (non-empty) selector matches it."""
    keys: list[str] = []
    for owner in owners.list(obj.metadata.namespace):
        selector = LabelSelector.from_proto(owner.spec.selector)
        if not selector.is_empty and selector.matches(obj.metadata.labels):
            keys.append(object_key(owner))
    return keys


def new_controller_ref(owner: Any) -> meta_pb2.OwnerReference:
    return meta_pb2.OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=owner.metadata.name,
        uid=owner.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )


def _ref_dict(ref: meta_pb2.OwnerReference) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": ref.api_version,
        "kind": ref.kind,
        "name": ref.name,
        "uid": ref.uid,
    }
    if ref.HasField("controller"):
        out["controller"] = ref.controller
    if ref.HasField("block_owner_deletion"):
        out["blockOwnerDeletion"] = ref.block_owner_deletion
    return out


def owner_refs_patch(obj: Any, refs: Iterable[meta_pb2.OwnerReference]) -> dict[str, Any]:
    """A merge patch replacing `obj`'s owner references, conditioned on its uid and version."""
    return {
        "metadata": {
            "uid": obj.metadata.uid,
            "resourceVersion": obj.metadata.resource_version,
            "ownerReferences": [_ref_dict(ref) for ref in refs],
        }
    }


def _is_deleting(obj: Any) -> bool:
    return bool(obj.metadata.HasField("deletion_timestamp"))


async def claim(
    owner: Any,
    selector: LabelSelector,
    candidates: Iterable[Any],
    resource: ResourceClient[Any],
    *,
    can_adopt: Callable[[], Awaitable[bool]],
) -> list[Any]:
    """The candidates `owner` controls after adopting matching orphans and releasing others.

    `can_adopt` is awaited at most once, before the first adoption: it should re-read the owner
    from the apiserver (not the cache) and say whether it may still adopt (not being deleted,
    same uid), so that an owner deleted a moment ago does not adopt anything.
    """
    owner_uid = owner.metadata.uid
    claimed: list[Any] = []
    adoption_allowed: bool | None = None
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(obj.metadata.labels)
        if ref is not None:
            if ref.uid != owner_uid:
                continue
            if matches:
                claimed.append(obj)
            elif not _is_deleting(obj):
                await _release(obj, owner_uid, resource)
            continue
        if not matches or _is_deleting(obj) or _is_deleting(owner):
            continue
        if adoption_allowed is None:
            adoption_allowed = await can_adopt()
        if not adoption_allowed:
            continue
        adopted = await _adopt(obj, owner, resource)
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _adopt(obj: Any, owner: Any, resource: ResourceClient[Any]) -> Any | None:
    refs = [*obj.metadata.owner_references, new_controller_ref(owner)]
    try:
        return await resource.patch(
            obj.metadata.name, owner_refs_patch(obj, refs), namespace=obj.metadata.namespace
        )
    except NotFoundError:
        return None


async def _release(obj: Any, owner_uid: str, resource: ResourceClient[Any]) -> None:
    refs = [ref for ref in obj.metadata.owner_references if ref.uid != owner_uid]
    with contextlib.suppress(NotFoundError):
        await resource.patch(
            obj.metadata.name, owner_refs_patch(obj, refs), namespace=obj.metadata.namespace
        )
