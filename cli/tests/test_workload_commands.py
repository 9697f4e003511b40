"""bosunctl scale, rollout, set image, cordon/uncordon/drain against a real apiserver.

No controller-manager runs here: each test sets up the objects a controller would have made
(ReplicaSets with revisions, pods on a node) and checks what the command writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bosun.api.v1 import apps_pb2
from bosun.common.client import Client
from bosun.common.testing import deployment, node, pod

if TYPE_CHECKING:
    from conftest import Bosunctl


async def owned_set(
    client: Client, owner: apps_pb2.Deployment, *, image: str, revision: int, pod_hash: str
) -> apps_pb2.ReplicaSet:
    """A ReplicaSet as the Deployment controller makes them (hash label, revision, owner)."""
    rs = apps_pb2.ReplicaSet(api_version="apps/v1", kind="ReplicaSet")
    rs.metadata.name = f"{owner.metadata.name}-{pod_hash}"
    rs.metadata.namespace = "default"
    rs.metadata.annotations["deployment.kubernetes.io/revision"] = str(revision)
    rs.metadata.annotations["kubernetes.io/change-cause"] = f"image {image}"
    rs.metadata.owner_references.add(
        api_version="apps/v1",
        kind="Deployment",
        name=owner.metadata.name,
        uid=owner.metadata.uid,
        controller=True,
    )
    rs.spec.replicas = 0
    rs.spec.selector.match_labels.update(
        {"app": owner.metadata.name, "pod-template-hash": pod_hash}
    )
    rs.spec.template.CopyFrom(owner.spec.template)
    rs.spec.template.metadata.labels["pod-template-hash"] = pod_hash
    rs.spec.template.spec.containers[0].image = image
    return await client.replica_sets.create(rs)


async def test_scale_sets_replicas_and_honours_current_replicas(
    bosunctl: Bosunctl, client: Client
) -> None:
    await client.deployments.create(deployment("web", replicas=2, image="web:1"))

    scaled = await bosunctl("scale", "deployment", "web", "--replicas", "5")
    refused = await bosunctl("scale", "deploy/web", "--replicas", "1", "--current-replicas", "2")

    assert (scaled.exit_code, scaled.stdout) == (0, "deployment.apps/web scaled\n")
    assert refused.exit_code == 1
    assert "expected replicas to be 2, was 5" in refused.stderr
    assert (await client.deployments.get("web")).spec.replicas == 5


async def test_scale_refuses_kinds_without_replicas(bosunctl: Bosunctl, client: Client) -> None:
    await client.pods.create(pod("web"))
    result = await bosunctl("scale", "pod", "web", "--replicas", "2")
    assert result.exit_code == 1
    assert "cannot scale a Pod" in result.stderr


async def test_set_image_changes_the_named_container_only(
    bosunctl: Bosunctl, client: Client
) -> None:
    created = deployment("web", replicas=2, image="web:1")
    created.spec.template.spec.containers.add(name="sidecar", image="proxy:1")
    await client.deployments.create(created)

    result = await bosunctl("set", "image", "deployment/web", "app=web:2")
    unknown = await bosunctl("set", "image", "deployment/web", "nope=x:1")

    assert result.stdout == "deployment.apps/web image updated\n"
    images = [c.image for c in (await client.deployments.get("web")).spec.template.spec.containers]
    assert images == ["web:2", "proxy:1"]
    assert unknown.exit_code == 1
    assert 'unable to find container named "nope"' in unknown.stderr


async def test_rollout_undo_restores_the_previous_revisions_template(
    bosunctl: Bosunctl, client: Client
) -> None:
    current = await client.deployments.create(deployment("web", replicas=2, image="web:3"))
    await owned_set(client, current, image="web:1", revision=1, pod_hash="aaa")
    await owned_set(client, current, image="web:2", revision=2, pod_hash="bbb")
    await owned_set(client, current, image="web:3", revision=3, pod_hash="ccc")
    current.metadata.annotations["deployment.kubernetes.io/revision"] = "3"
    current = await client.deployments.update(current)

    previous = await bosunctl("rollout", "undo", "deployment/web")
    undone = await client.deployments.get("web")
    chosen = await bosunctl("rollout", "undo", "deployment", "web", "--to-revision", "1")
    to_first = await client.deployments.get("web")
    missing = await bosunctl("rollout", "undo", "deployment/web", "--to-revision", "9")

    assert previous.stdout == "deployment.apps/web rolled back\n"
    assert undone.spec.template.spec.containers[0].image == "web:2"
    assert "pod-template-hash" not in undone.spec.template.metadata.labels
    assert chosen.exit_code == 0
    assert to_first.spec.template.spec.containers[0].image == "web:1"
    assert missing.exit_code == 1
    assert "unable to find specified revision 9" in missing.stderr


async def test_rollout_history_lists_revisions_with_change_causes(
    bosunctl: Bosunctl, client: Client
) -> None:
    current = await client.deployments.create(deployment("web", replicas=2, image="web:1"))
    await owned_set(client, current, image="web:2", revision=2, pod_hash="bbb")
    await owned_set(client, current, image="web:1", revision=1, pod_hash="aaa")

    result = await bosunctl("rollout", "history", "deployment/web")

    assert result.stdout.splitlines() == [
        "deployment.apps/web",
        "REVISION  CHANGE-CAUSE",
        "1         image web:1",
        "2         image web:2",
    ]


async def test_rollout_pause_resume_and_restart_edit_the_deployment(
    bosunctl: Bosunctl, client: Client
) -> None:
    await client.deployments.create(deployment("web", replicas=2, image="web:1"))

    paused = await bosunctl("rollout", "pause", "deployment/web")
    again = await bosunctl("rollout", "pause", "deployment/web")
    is_paused = (await client.deployments.get("web")).spec.paused
    resumed = await bosunctl("rollout", "resume", "deployment/web")
    restarted = await bosunctl("rollout", "restart", "deployment/web")
    final = await client.deployments.get("web")

    assert paused.stdout == "deployment.apps/web paused\n"
    assert again.stdout == "deployment.apps/web is already paused\n"
    assert is_paused
    assert resumed.stdout == "deployment.apps/web resumed\n"
    assert not final.spec.paused
    assert restarted.stdout == "deployment.apps/web restarted\n"
    assert "kubectl.kubernetes.io/restartedAt" in final.spec.template.metadata.annotations


async def test_rollout_status_reports_progress_and_completion(
    bosunctl: Bosunctl, client: Client
) -> None:
    current = await client.deployments.create(deployment("web", replicas=2, image="web:1"))
    current.status.observed_generation = current.metadata.generation
    current.status.replicas = 3
    current.status.updated_replicas = 2
    current.status.available_replicas = 2
    current = await client.deployments.update_status(current)

    pending = await bosunctl("rollout", "status", "deployment/web", "--watch=false")
    current.status.replicas = 2
    await client.deployments.update_status(current)
    done = await bosunctl("rollout", "status", "deployment/web")

    assert pending.stdout == (
        'Waiting for deployment "web" rollout to finish: '
        "1 old replicas are pending termination...\n"
    )
    assert done.stdout == 'deployment "web" successfully rolled out\n'


async def test_cordon_and_uncordon_flip_unschedulable(bosunctl: Bosunctl, client: Client) -> None:
    await client.nodes.create(node("n1"))

    cordoned = await bosunctl("cordon", "n1")
    flag = (await client.nodes.get("n1")).spec.unschedulable
    uncordoned = await bosunctl("uncordon", "n1")

    assert cordoned.stdout == "node/n1 cordoned\n"
    assert flag
    assert uncordoned.stdout == "node/n1 uncordoned\n"
    assert not (await client.nodes.get("n1")).spec.unschedulable


async def test_drain_refuses_unmanaged_pods_without_force_then_deletes_them(
    bosunctl: Bosunctl, client: Client
) -> None:
    await client.nodes.create(node("n1"))
    await client.pods.create(pod("loose", node_name="n1"))
    managed = pod("managed", node_name="n1")
    managed.metadata.owner_references.add(
        api_version="apps/v1", kind="ReplicaSet", name="web", uid="u-1", controller=True
    )
    await client.pods.create(managed)
    await client.pods.create(pod("elsewhere", node_name="n2"))

    refused = await bosunctl("drain", "n1")
    kept = sorted(p.metadata.name for p in (await client.pods.list()).items)
    drained = await bosunctl("drain", "n1", "--force", "--grace-period", "0", "--timeout", "10")

    assert refused.exit_code == 1
    assert "cannot delete Pods that declare no controller" in refused.stderr
    assert kept == ["elsewhere", "loose", "managed"]
    assert drained.exit_code == 0
    assert drained.stdout.endswith("node/n1 drained\n")
    assert [p.metadata.name for p in (await client.pods.list()).items] == ["elsewhere"]
    assert (await client.nodes.get("n1")).spec.unschedulable
