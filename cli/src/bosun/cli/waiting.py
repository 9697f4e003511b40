"""Waiting on an object: until it is gone (`delete --wait`, `wait --for=delete`) or until a
status condition holds (`wait --for=condition=Ready`).

Both read the object once and then watch it (a field selector on its name) from that read's
resourceVersion, so a change between the read and the watch cannot be missed. A watch that the
server ends is resumed from the last version seen; one whose version has expired reads the
object again. Deadlines are the caller's `timeout` (None: wait until it happens).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bosun.common.client import ResourceClient
from bosun.common.errors import ExpiredError, NotFoundError
from bosun.common.manifest import to_dict

__all__ = ["ObjectDeletedError", "condition_status", "wait_for_condition", "wait_until_deleted"]


class ObjectDeletedError(Exception):
    """The object was deleted while waiting for one of its conditions."""


def condition_status(obj: Any, condition: str) -> str | None:
    """The status ("True", "False", "Unknown") of condition `condition`; None when absent.

    Condition types compare without regard to case, as kubectl wait compares them.
    """
    status = to_dict(obj).get("status") or {}
    for item in status.get("conditions") or []:
        if str(item.get("type", "")).lower() == condition.lower():
            return str(item.get("status", ""))
    return None


async def _wait_deleted(
    resource: ResourceClient[Any], name: str, namespace: str, uid: str, version: str
) -> None:
    selector = f"metadata.name={name}"
    while True:
        try:
            async for event in resource.watch(
                namespace=namespace, field_selector=selector, resource_version=version
            ):
                obj: Any = event.object
                if event.type == "DELETED" and (not uid or obj.metadata.uid == uid):
                    return
                if event.type == "ADDED" and uid and obj.metadata.uid != uid:
                    return  # ours went and another of the same name came
                version = event.resource_version or version
        except ExpiredError:
            try:
                current: Any = await resource.get(name, namespace=namespace)
            except NotFoundError:
                return
            if uid and current.metadata.uid != uid:
                return
            version = str(current.metadata.resource_version)


async def wait_until_deleted(
    resource: ResourceClient[Any],
    name: str,
    *,
    namespace: str = "",
    timeout: float | None = None,
) -> bool:
    """True once the object is gone (or was never there), False when `timeout` ran out."""
    try:
        obj: Any = await resource.get(name, namespace=namespace)
    except NotFoundError:
        return True
    if timeout == 0:
        return False
    meta = obj.metadata
    try:
        await asyncio.wait_for(
            _wait_deleted(resource, name, namespace, str(meta.uid), str(meta.resource_version)),
            timeout,
        )
    except TimeoutError:
        return False
    return True


def _met(obj: Any, condition: str, want: str) -> bool:
    status = condition_status(obj, condition)
    return status is not None and status.lower() == want.lower()


async def _wait_condition(
    resource: ResourceClient[Any], obj: Any, condition: str, want: str, namespace: str
) -> Any:
    name = str(obj.metadata.name)
    version = str(obj.metadata.resource_version)
    selector = f"metadata.name={name}"
    while True:
        try:
            async for event in resource.watch(
                namespace=namespace, field_selector=selector, resource_version=version
            ):
                if event.type == "DELETED":
                    raise ObjectDeletedError(name)
                if event.type != "BOOKMARK" and _met(event.object, condition, want):
                    return event.object
                version = event.resource_version or version
        except ExpiredError:
            current = await resource.get(name, namespace=namespace)
            if _met(current, condition, want):
                return current
            version = str(current.metadata.resource_version)


async def wait_for_condition(
    resource: ResourceClient[Any],
    name: str,
    condition: str,
    *,
    want: str = "True",
    namespace: str = "",
    timeout: float | None = None,
) -> Any | None:
    """The object once condition `condition` has status `want`; None when `timeout` ran out.

    NotFoundError when there is no such object; ObjectDeletedError when it goes meanwhile.
    """
    obj: Any = await resource.get(name, namespace=namespace)
    if _met(obj, condition, want):
        return obj
    if timeout == 0:
        return None
    try:
        return await asyncio.wait_for(
            _wait_condition(resource, obj, condition, want, namespace), timeout
        )
    except TimeoutError:
        return None
