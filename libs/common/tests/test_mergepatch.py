"""RFC 7386 JSON merge patch: the appendix examples, both directions, and no mutation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bosun.common.mergepatch import apply_merge_patch, create_merge_patch

# RFC 7386 appendix A: (original, patch, result).
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]

# The RFC's section 3 example.
RFC_DOCUMENT = {
    "title": "Goodbye!",
    "author": {"givenName": "John", "familyName": "Doe"},
    "tags": ["example", "sample"],
    "content": "This will be unchanged",
}
RFC_PATCH = {
    "title": "Hello!",
    "phoneNumber": "+01-123-456-7890",
    "author": {"familyName": None},
    "tags": ["example"],
}
RFC_RESULT = {
    "title": "Hello!",
    "author": {"givenName": "John"},
    "tags": ["example"],
    "content": "This will be unchanged",
    "phoneNumber": "+01-123-456-7890",
}


@pytest.mark.parametrize(("original", "patch", "result"), RFC_EXAMPLES)
def test_rfc7386_appendix_examples(original: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(original, patch) == result


def test_rfc7386_section_3_example() -> None:
    assert apply_merge_patch(RFC_DOCUMENT, RFC_PATCH) == RFC_RESULT


@pytest.mark.parametrize(("original", "patch", "result"), RFC_EXAMPLES)
def test_apply_never_mutates_its_inputs(original: Any, patch: Any, result: Any) -> None:
    original_before, patch_before = copy.deepcopy(original), copy.deepcopy(patch)
    apply_merge_patch(original, patch)
    assert original == original_before
    assert patch == patch_before


def test_result_shares_no_mutable_values_with_the_inputs() -> None:
    target = {"keep": {"x": [1]}, "nested": {"a": 1}}
    patch = {"new": {"list": [2]}, "nested": {"b": 2}}
    result = apply_merge_patch(target, patch)
    result["keep"]["x"].append(9)
    result["new"]["list"].append(9)
    assert target == {"keep": {"x": [1]}, "nested": {"a": 1}}
    assert patch == {"new": {"list": [2]}, "nested": {"b": 2}}


@pytest.mark.parametrize(
    ("original", "modified"),
    [
        (o, r)
        for o, _, r in RFC_EXAMPLES
        if isinstance(o, dict) and isinstance(r, dict) and None not in r.values()
    ]
    + [(RFC_DOCUMENT, RFC_RESULT)],
)
def test_created_patch_turns_original_into_modified(
    original: dict[str, Any], modified: dict[str, Any]
) -> None:
    patch = create_merge_patch(original, modified)
    assert apply_merge_patch(original, patch) == modified


def test_created_patch_for_rfc_example_is_the_rfc_patch() -> None:
    assert create_merge_patch(RFC_DOCUMENT, RFC_RESULT) == RFC_PATCH


def test_created_patch_of_equal_objects_is_empty() -> None:
    assert create_merge_patch({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}}) == {}


def test_created_patch_distinguishes_true_from_one() -> None:
    assert create_merge_patch({"a": 1}, {"a": True}) == {"a": True}


def test_created_patch_treats_one_and_one_point_zero_as_equal() -> None:
    assert create_merge_patch({"a": 1}, {"a": 1.0}) == {}


def test_created_patch_deletes_removed_nested_keys() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    modified = {"metadata": {"labels": {"a": "1"}}}
    assert create_merge_patch(original, modified) == {"metadata": {"labels": {"b": None}}}


def test_create_never_mutates_its_inputs() -> None:
    original = {"a": {"b": [1]}, "gone": 1}
    modified = {"a": {"b": [2]}, "new": {"c": [3]}}
    before = copy.deepcopy((original, modified))
    patch = create_merge_patch(original, modified)
    patch["new"]["c"].append(4)
    assert (original, modified) == before
