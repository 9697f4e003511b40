"""RFC 7386 JSON merge patch over plain JSON values (dicts, lists, str, numbers, bools, None).

`apply_merge_patch` applies a patch: an object patch merges key by key, recursing into nested
objects, a `null` member deletes the key, and anything else (a list, a scalar) replaces the
target wholesale. `create_merge_patch` computes the smallest patch that turns one object into
another. Neither mutates its inputs; results share no mutable values with them.

A merge patch cannot set a value to `null` (null means "delete"), and lists are replaced, never
merged: both are properties of RFC 7386, not of this implementation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_merge_patch", "create_merge_patch"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """The result of applying merge patch `patch` to `target` (RFC 7386, section 2)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    if isinstance(target, Mapping):
        result = {key: value for key, value in target.items() if key not in patch}
        result = copy.deepcopy(result)
    else:
        target, result = {}, {}
    for key, value in patch.items():
        if value is None:
            continue
        result[key] = apply_merge_patch(target.get(key), value)
    return result


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON sees it: True is not 1, and 1 equals 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(
            _json_equal(value, right[key]) for key, value in left.items()
        )
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return type(left) is type(right) and bool(left == right)


def create_merge_patch(original: Mapping[str, Any], modified: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `original` into `modified`: {} when they are equal.

    A member of `modified` whose value is None cannot be expressed (null deletes): it is
    emitted as null, so applying the patch removes the key instead.
    """
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
            continue
        old = original[key]
        if _json_equal(old, value):
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            patch[key] = create_merge_patch(old, value)
        else:
            patch[key] = copy.deepcopy(value)
    return patch
