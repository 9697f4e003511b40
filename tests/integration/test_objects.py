"""Create, read, update, patch, delete and bind against a real apiserver on a real etcd."""

from __future__ import annotations

import pytest

from bosun.common import testing
from bosun.common.client import Client
from bosun.common.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidError,
    NotFoundError,
    PreconditionError,
)


async def test_system_namespaces_exist_at_start(client: Client) -> None:
    names = {ns.metadata.name for ns in (await client.namespaces.list()).items}
    assert {"default", "kube-system"} <= names


async def test_create_sets_server_metadata_and_defaults(client: Client) -> None:
    pod = await client.pods.create(testing.pod("web"))
    assert pod.metadata.uid
    assert pod.metadata.creation_timestamp.seconds > 0
    assert int(pod.metadata.resource_version) > 0
    assert pod.metadata.generation == 1
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.termination_grace_period_seconds == 30
    assert pod.status.phase == "Pending"


async def test_get_returns_what_create_stored(client: Client) -> None:
    created = await client.pods.create(testing.pod("web", labels={"app": "web"}))
    fetched = await client.pods.get("web")
    assert fetched == created


async def test_create_twice_is_already_exists(client: Client) -> None:
    await client.pods.create(testing.pod("web"))
    with pytest.raises(AlreadyExistsError, match='pods "web" already exists'):
        await client.pods.create(testing.pod("web"))


async def test_generate_name_appends_a_suffix(client: Client) -> None:
    pod = testing.pod("")
    pod.metadata.generate_name = "web-"
    created = await client.pods.create(pod)
    assert created.metadata.name.startswith("web-")
    assert len(created.metadata.name) == len("web-") + 5


async def test_create_in_missing_namespace_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError, match='namespaces "nowhere" not found'):
        await client.pods.create(testing.pod("web", namespace="nowhere"))


async def test_create_in_terminating_namespace_is_refused(client: Client) -> None:
    await client.namespaces.create(testing.namespace("going"))
    result = await client.namespaces.delete("going")
    assert not result.removed
    assert result.object.status.phase == "Terminating"
    with pytest.raises(PreconditionError, match="being terminated"):
        await client.pods.create(testing.pod("web", namespace="going"))


async def test_update_with_stale_resource_version_is_conflict(client: Client) -> None:
    created = await client.config_maps.create(testing.config_map("cfg", {"a": "1"}))
    created.data["a"] = "2"
    await client.config_maps.update(created)
    created.data["a"] = "3"
    with pytest.raises(ConflictError, match="the object has been modified"):
        await client.config_maps.update(created)


async def test_generation_changes_with_spec_only(client: Client) -> None:
    rs = await client.replica_sets.create(testing.replica_set("web", replicas=1))
    rs.metadata.labels["touched"] = "yes"
    relabelled = await client.replica_sets.update(rs)
    assert relabelled.metadata.generation == 1
    relabelled.spec.replicas = 3
    scaled = await client.replica_sets.update(relabelled)
    assert scaled.metadata.generation == 2


async def test_update_ignores_status_and_update_status_ignores_spec(client: Client) -> None:
    pod = await client.pods.create(testing.pod("web"))
    pod.status.phase = "Running"
    updated = await client.pods.update(pod)
    assert updated.status.phase == "Pending"
    updated.status.phase = "Running"
    updated.spec.active_deadline_seconds = 5
    status_updated = await client.pods.update_status(updated)
    assert status_updated.status.phase == "Running"
    assert not status_updated.spec.HasField("active_deadline_seconds")


async def test_immutable_selector_is_refused(client: Client) -> None:
    rs = await client.replica_sets.create(testing.replica_set("web"))
    rs.spec.selector.match_labels["app"] = "other"
    rs.spec.template.metadata.labels["app"] = "other"
    with pytest.raises(InvalidError, match=r"spec\.selector"):
        await client.replica_sets.update(rs)


async def test_merge_patch_changes_only_what_it_names(client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg", {"a": "1", "b": "2"}))
    patched = await client.config_maps.patch(
        "cfg", {"data": {"b": None, "c": "3"}, "metadata": {"labels": {"x": "y"}}}
    )
    assert dict(patched.data) == {"a": "1", "c": "3"}
    assert dict(patched.metadata.labels) == {"x": "y"}


async def test_patch_with_unknown_field_names_it(client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg"))
    with pytest.raises(InvalidError, match="nonsense"):
        await client.config_maps.patch("cfg", {"nonsense": 1})


async def test_status_patch(client: Client) -> None:
    await client.pods.create(testing.pod("web"))
    patched = await client.pods.patch("web", {"status": {"phase": "Running"}}, status=True)
    assert patched.status.phase == "Running"


async def test_delete_removes_and_get_is_not_found(client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg"))
    result = await client.config_maps.delete("cfg")
    assert result.removed
    with pytest.raises(NotFoundError):
        await client.config_maps.get("cfg")


async def test_delete_with_wrong_uid_precondition_is_refused(client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg"))
    with pytest.raises(PreconditionError, match="UID in precondition"):
        await client.config_maps.delete("cfg", uid="not-the-uid")
    assert await client.config_maps.get("cfg")


async def test_delete_with_stale_resource_version_precondition_is_conflict(client: Client) -> None:
    created = await client.config_maps.create(testing.config_map("cfg"))
    await client.config_maps.patch("cfg", {"data": {"k": "v"}})
    with pytest.raises(ConflictError):
        await client.config_maps.delete("cfg", resource_version=created.metadata.resource_version)


async def test_finalizers_hold_an_object_until_removed(client: Client) -> None:
    cfg = testing.config_map("cfg")
    cfg.metadata.finalizers.append("example.com/hold")
    await client.config_maps.create(cfg)
    result = await client.config_maps.delete("cfg")
    assert not result.removed
    held = await client.config_maps.get("cfg")
    assert held.metadata.HasField("deletion_timestamp")
    held.metadata.finalizers.append("example.com/another")
    with pytest.raises(InvalidError, match="no new finalizers"):
        await client.config_maps.update(held)
    del held.metadata.finalizers[:]
    await client.config_maps.update(held)
    with pytest.raises(NotFoundError):
        await client.config_maps.get("cfg")


async def test_bound_pod_is_deleted_gracefully(client: Client) -> None:
    await client.pods.create(testing.pod("web", node_name="node-1"))
    result = await client.pods.delete("web")
    assert not result.removed
    assert result.object.metadata.deletion_grace_period_seconds == 30
    terminating = await client.pods.get("web")
    assert terminating.metadata.HasField("deletion_timestamp")
    # The kubelet confirms the containers are gone with a zero grace period.
    final = await client.pods.delete("web", grace_period_seconds=0)
    assert final.removed
    with pytest.raises(NotFoundError):
        await client.pods.get("web")


async def test_unbound_pod_is_deleted_at_once(client: Client) -> None:
    await client.pods.create(testing.pod("web"))
    assert (await client.pods.delete("web")).removed


async def test_bind_sets_node_once(client: Client) -> None:
    await client.pods.create(testing.pod("web"))
    bound = await client.pods.bind("web", "node-1")
    assert bound.spec.node_name == "node-1"
    assert any(c.type == "PodScheduled" and c.status == "True" for c in bound.status.conditions)
    with pytest.raises(ConflictError, match="already assigned"):
        await client.pods.bind("web", "node-2")


async def test_cluster_scoped_kind_takes_no_namespace(client: Client) -> None:
    node = await client.nodes.create(testing.node("node-1"))
    assert node.metadata.namespace == ""
    assert (await client.nodes.get("node-1")).status.capacity["cpu"] == "4"


async def test_dry_run_stores_nothing(client: Client) -> None:
    await client.config_maps.create(testing.config_map("cfg"), dry_run=True)
    with pytest.raises(NotFoundError):
        await client.config_maps.get("cfg")


async def test_requests_are_counted_in_prometheus_metrics(client: Client) -> None:
    from prometheus_client import REGISTRY

    labels = {"grpc_method": "/bosun.api.apiserver.v1.ApiServer/Create", "grpc_code": "OK"}
    before = REGISTRY.get_sample_value("bosun_grpc_server_handled_total", labels) or 0.0
    await client.config_maps.create(testing.config_map("counted"))
    after = REGISTRY.get_sample_value("bosun_grpc_server_handled_total", labels)
    assert after == before + 1
