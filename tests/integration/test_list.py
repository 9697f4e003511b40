"""List: selectors, pagination and consistency."""

from __future__ import annotations

import pytest

from bosun.common import testing
from bosun.common.client import Client
from bosun.common.errors import InvalidError


@pytest.fixture
async def labelled_pods(client: Client) -> None:
    await client.namespaces.create(testing.namespace("other"))
    specs = [
        ("a", "default", {"app": "web", "tier": "front"}),
        ("b", "default", {"app": "web", "tier": "back"}),
        ("c", "default", {"app": "db"}),
        ("d", "other", {"app": "web", "legacy": "true"}),
    ]
    for name, namespace, labels in specs:
        await client.pods.create(testing.pod(name, namespace=namespace, labels=labels))
    await client.pods.bind("a", "node-1")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", {"a", "b", "d"}),
        ("app!=web", {"c"}),
        ("tier in (front,back)", {"a", "b"}),
        ("app notin (web)", {"c"}),
        ("tier", {"a", "b"}),
        ("!tier", {"c", "d"}),
        ("app=web,!legacy", {"a", "b"}),
    ],
)
@pytest.mark.usefixtures("labelled_pods")
async def test_label_selectors(client: Client, selector: str, expected: set[str]) -> None:
    pods = await client.pods.list(label_selector=selector)
    assert {p.metadata.name for p in pods.items} == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=b", {"b"}),
        ("metadata.namespace=other", {"d"}),
        ("spec.nodeName=node-1", {"a"}),
        ("spec.nodeName=", {"b", "c", "d"}),
        ("status.phase=Pending,metadata.name!=a", {"b", "c", "d"}),
    ],
)
@pytest.mark.usefixtures("labelled_pods")
async def test_field_selectors(client: Client, selector: str, expected: set[str]) -> None:
    pods = await client.pods.list(field_selector=selector)
    assert {p.metadata.name for p in pods.items} == expected


@pytest.mark.usefixtures("labelled_pods")
async def test_namespace_scopes_a_list(client: Client) -> None:
    pods = await client.pods.list(namespace="other")
    assert [p.metadata.name for p in pods.items] == ["d"]


async def test_malformed_label_selector_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidError, match="labelSelector"):
        await client.pods.list(label_selector="app in (web")


async def test_unsupported_field_selector_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidError, match=r"spec\.hostname"):
        await client.pods.list(field_selector="spec.hostname=x")


async def test_limit_and_continue_page_through_a_consistent_snapshot(client: Client) -> None:
    for index in range(25):
        await client.config_maps.create(testing.config_map(f"cm-{index:02d}"))
    first = await client.config_maps.list(limit=10)
    assert len(first.items) == 10
    assert first.continue_token
    assert first.remaining_item_count == 15
    # A change after the first page is not visible in later pages of the same List.
    await client.config_maps.create(testing.config_map("cm-99"))
    await client.config_maps.delete("cm-24")
    names = [c.metadata.name for c in first.items]
    token = first.continue_token
    while token:
        page = await client.config_maps.list(limit=10, continue_token=token)
        assert page.resource_version == first.resource_version
        names += [c.metadata.name for c in page.items]
        token = page.continue_token
    assert names == [f"cm-{index:02d}" for index in range(25)]


async def test_list_all_follows_continue_tokens(client: Client) -> None:
    for index in range(12):
        await client.config_maps.create(testing.config_map(f"cm-{index:02d}"))
    everything = await client.config_maps.list_all(page_size=5)
    assert len(everything.items) == 12
