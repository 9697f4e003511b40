"""Controller-manager against a real apiserver + etcd: ReplicaSets, Deployments, rollouts.

Pods become Running/Ready through `PodStatusSimulator` (a kubelet test double); the
controllers under test run in-process, exactly as `bosun-controller-manager` runs them.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import REGISTRY

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.cli.commands.rollout import rollback_template
from bosun.common.client import Client
from bosun.common.testing import deployment, replica_set
from bosun.controllermanager.podutil import is_ready
from bosun.controllermanager.testing import (
    PodStatusSimulator,
    running_controllers,
    set_image,
    until,
)

pytestmark = pytest.mark.integration


async def pods_of(client: Client, app: str) -> list[core_pb2.Pod]:
    return (await client.pods.list(label_selector=f"app={app}")).items


async def wait_complete(client: Client, name: str, image: str, *, timeout: float = 30.0) -> None:
    """Until the Deployment reports a finished rollout and its pods all run `image`."""
    state: dict[str, object] = {}

    async def poll() -> None:
        async with asyncio.timeout(timeout):
            while True:
                d = await client.deployments.get(name)
                pods = await pods_of(client, name)
                state.update(status=d.status, pods=len(pods))
                replicas = d.spec.replicas
                if (
                    d.status.observed_generation >= d.metadata.generation
                    and d.status.updated_replicas == replicas
                    and d.status.replicas == replicas
                    and d.status.available_replicas == replicas
                    and len(pods) == replicas
                    and all(p.spec.containers[0].image == image for p in pods)
                ):
                    return
                await asyncio.sleep(0.05)

    try:
        await poll()
    except TimeoutError:
        raise AssertionError(f"rollout of {name} to {image} did not complete: {state}") from None


async def test_replicaset_creates_owned_pods_and_reports_status(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        rs = await client.replica_sets.create(replica_set("web", replicas=3))
        async with asyncio.timeout(15):
            while True:
                current = await client.replica_sets.get("web")
                if current.status.ready_replicas == 3 and current.status.available_replicas == 3:
                    break
                await asyncio.sleep(0.05)
        assert current.status.observed_generation == current.metadata.generation
        pods = await pods_of(client, "web")
        assert len(pods) == 3
        for pod in pods:
            (ref,) = pod.metadata.owner_references
            assert (ref.kind, ref.uid, ref.controller) == ("ReplicaSet", rs.metadata.uid, True)
    syncs = REGISTRY.get_sample_value(
        "bosun_controller_sync_duration_seconds_count", {"controller": "replicaset"}
    )
    assert syncs is not None
    assert syncs > 0


async def test_replicaset_scales_down_and_replaces_deleted_pods(client: Client) -> None:
    async with running_controllers(client, ("replicaset",)):
        await client.replica_sets.create(replica_set("web", replicas=4))
        await _until(client, "web", 4)
        victim = (await pods_of(client, "web"))[0]
        await client.pods.delete(victim.metadata.name)
        await _until(client, "web", 4)
        names = {p.metadata.name for p in await pods_of(client, "web")}
        assert victim.metadata.name not in names
        await client.replica_sets.patch("web", {"spec": {"replicas": 1}})
        await _until(client, "web", 1)


async def test_replicaset_adopts_orphans_and_releases_relabelled_pods(client: Client) -> None:
    from bosun.common.testing import pod

    orphan = await client.pods.create(pod("stray", labels={"app": "web"}))
    async with running_controllers(client, ("replicaset",)):
        rs = await client.replica_sets.create(replica_set("web", replicas=2))
        await _until(client, "web", 2)
        adopted = await client.pods.get("stray")
        assert [r.uid for r in adopted.metadata.owner_references] == [rs.metadata.uid]
        await client.pods.patch("stray", {"metadata": {"labels": {"app": "other"}}})

        async def released() -> bool:
            current = await client.pods.get("stray")
            return not current.metadata.owner_references

        await until(released)
        await _until(client, "web", 2)
    assert orphan.metadata.uid == adopted.metadata.uid


async def _until(client: Client, app: str, count: int, timeout: float = 15.0) -> None:
    async def ok() -> bool:
        return len(await pods_of(client, app)) == count

    await until(ok, timeout=timeout)


class RolloutWatch:
    """Follows the Deployment's pods from a watch and records the extremes of every moment."""

    def __init__(self, client: Client, app: str) -> None:
        self.client = client
        self.app = app
        self.pods: dict[str, core_pb2.Pod] = {}
        self.max_pods = 0
        self.max_images = 0
        self.min_ready: int | None = None
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    def _observe(self) -> None:
        live = [p for p in self.pods.values() if not p.metadata.HasField("deletion_timestamp")]
        ready = sum(1 for p in live if is_ready(p))
        self.max_pods = max(self.max_pods, len(self.pods))
        images = {p.spec.containers[0].image for p in self.pods.values()}
        self.max_images = max(self.max_images, len(images))
        self.min_ready = ready if self.min_ready is None else min(self.min_ready, ready)

    async def start(self) -> None:
        listed = await self.client.pods.list(label_selector=f"app={self.app}")
        self.pods = {p.metadata.name: p for p in listed.items}
        self._observe()
        ready = asyncio.Event()

        async def follow() -> None:
            stream = self.client.pods.watch(
                label_selector=f"app={self.app}", resource_version=listed.resource_version
            )
            ready.set()
            async for event in stream:
                if event.type == "BOOKMARK":
                    continue
                self.events += 1
                if event.type == "DELETED":
                    self.pods.pop(event.object.metadata.name, None)
                else:
                    self.pods[event.object.metadata.name] = event.object
                self._observe()

        self._task = asyncio.create_task(follow())
        await ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def test_rolling_update_never_exceeds_surge_nor_drops_below_replicas(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(
            deployment("web", replicas=10, image="web:1", max_surge="2", max_unavailable="0")
        )
        await wait_complete(client, "web", "web:1")
        watch = RolloutWatch(client, "web")
        await watch.start()
        await set_image(client, "web", "web:2")
        await wait_complete(client, "web", "web:2", timeout=60)
        await watch.stop()
    assert watch.events > 20  # the rollout was seen, not just its end
    assert watch.max_pods <= 12
    assert watch.min_ready is not None
    assert watch.min_ready >= 10
    sets = (await client.replica_sets.list()).items
    by_image = {rs.spec.template.spec.containers[0].image: rs for rs in sets}
    assert by_image["web:2"].spec.replicas == 10
    assert by_image["web:1"].spec.replicas == 0
    assert by_image["web:2"].metadata.annotations["deployment.kubernetes.io/revision"] == "2"


async def test_rollback_restores_the_previous_template_and_reuses_its_replica_set(
    client: Client,
) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(deployment("web", replicas=3, image="web:1"))
        await wait_complete(client, "web", "web:1")
        first = {rs.metadata.uid for rs in (await client.replica_sets.list()).items}
        await set_image(client, "web", "web:2")
        await wait_complete(client, "web", "web:2")

        current = await client.deployments.get("web")
        sets = (await client.replica_sets.list()).items
        current.spec.template.CopyFrom(rollback_template(current, sets))
        await client.deployments.update(current)
        await wait_complete(client, "web", "web:1")

    rolled_back = await client.deployments.get("web")
    assert rolled_back.spec.template.spec.containers[0].image == "web:1"
    assert rolled_back.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    sets = (await client.replica_sets.list()).items
    assert len(sets) == 2  # the revision-1 set came back as revision 3, no third set
    (active,) = [rs for rs in sets if rs.spec.replicas == 3]
    assert active.metadata.uid in first
    assert active.metadata.annotations["deployment.kubernetes.io/revision"] == "3"
    assert active.metadata.annotations["deployment.kubernetes.io/revision-history"] == "1"


async def test_recreate_removes_every_old_pod_before_starting_new_ones(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(
            deployment("job", replicas=3, image="web:1", strategy="Recreate")
        )
        await wait_complete(client, "job", "web:1")
        watch = RolloutWatch(client, "job")
        await watch.start()
        await set_image(client, "job", "web:2")
        await wait_complete(client, "job", "web:2")
        await watch.stop()
    assert watch.max_images == 1
    assert watch.max_pods <= 3


async def test_scaling_mid_rollout_spreads_replicas_proportionally(client: Client) -> None:
    # No pod ever becomes ready, so the rollout stalls with both sets active.
    async with running_controllers(client):
        await client.deployments.create(
            deployment("web", replicas=10, image="web:1", max_surge="3", max_unavailable="2")
        )

        async def sizes_are(expected: dict[str, int]) -> bool:
            sets = (await client.replica_sets.list()).items
            return {rs.spec.template.spec.containers[0].image: rs.spec.replicas for rs in sets} == (
                expected
            )

        await until(lambda: sizes_are({"web:1": 10}))
        await set_image(client, "web", "web:2")
        # Stalled at 10 + maxSurge: old 8 (2 unavailable allowed), new 5.
        await until(lambda: sizes_are({"web:1": 8, "web:2": 5}))
        await client.deployments.patch("web", {"spec": {"replicas": 20}})
        # 20 + maxSurge = 23, shared 8:5 — old 8·23/13 ≈ 14, new 5·23/13 ≈ 9.
        await until(lambda: sizes_are({"web:1": 14, "web:2": 9}))
        d = await client.deployments.get("web")
    assert d.spec.replicas == 20


def _condition(d: apps_pb2.Deployment, kind: str) -> apps_pb2.DeploymentCondition | None:
    return next((c for c in d.status.conditions if c.type == kind), None)


async def test_a_rollout_that_stops_progressing_reports_its_deadline_exceeded(
    client: Client,
) -> None:
    async with running_controllers(client):  # no pod ever becomes ready
        stuck = deployment("web", replicas=2)
        stuck.spec.progress_deadline_seconds = 1
        await client.deployments.create(stuck)

        async def timed_out() -> bool:
            condition = _condition(await client.deployments.get("web"), "Progressing")
            return condition is not None and condition.reason == "ProgressDeadlineExceeded"

        await until(timed_out, timeout=10)
    d = await client.deployments.get("web")
    progressing = _condition(d, "Progressing")
    available = _condition(d, "Available")
    assert progressing is not None
    assert progressing.status == "False"
    assert available is not None
    assert (available.status, available.reason) == ("False", "MinimumReplicasUnavailable")


async def test_a_paused_deployment_does_not_roll_out_until_resumed(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(deployment("web", replicas=2, image="web:1"))
        await wait_complete(client, "web", "web:1")
        await client.deployments.patch("web", {"spec": {"paused": True}})

        async def marked_paused() -> bool:
            condition = _condition(await client.deployments.get("web"), "Progressing")
            return condition is not None and condition.reason == "DeploymentPaused"

        await until(marked_paused)
        await set_image(client, "web", "web:2")
        await client.deployments.patch("web", {"spec": {"replicas": 3}})  # scaling still works
        await _until(client, "web", 3)
        paused = await client.deployments.get("web")
        assert paused.status.observed_generation == paused.metadata.generation
        assert len((await client.replica_sets.list()).items) == 1  # no rollout started
        await client.deployments.patch("web", {"spec": {"paused": False}})
        await wait_complete(client, "web", "web:2")


async def test_old_replica_sets_beyond_the_history_limit_are_deleted(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        limited = deployment("web", replicas=1, image="web:1")
        limited.spec.revision_history_limit = 1
        await client.deployments.create(limited)
        for image in ("web:1", "web:2", "web:3", "web:4"):
            if image != "web:1":
                await set_image(client, "web", image)
            await wait_complete(client, "web", image)

        async def trimmed() -> bool:
            return len((await client.replica_sets.list()).items) == 2

        await until(trimmed)
    revisions = sorted(
        rs.metadata.annotations["deployment.kubernetes.io/revision"]
        for rs in (await client.replica_sets.list()).items
    )
    assert revisions == ["3", "4"]


async def test_pods_count_as_available_only_after_min_ready_seconds(client: Client) -> None:
    async with running_controllers(client, ("replicaset",)), PodStatusSimulator(client):
        slow = replica_set("web", replicas=2)
        slow.spec.min_ready_seconds = 1
        await client.replica_sets.create(slow)

        async def ready_not_available() -> bool:
            rs = await client.replica_sets.get("web")
            return rs.status.ready_replicas == 2 and rs.status.available_replicas == 0

        await until(ready_not_available)

        async def available() -> bool:
            return (await client.replica_sets.get("web")).status.available_replicas == 2

        await until(available, timeout=5)


async def test_controllers_record_events_users_need(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(deployment("web", replicas=2, image="web:1"))
        await wait_complete(client, "web", "web:1")

        async def recorded() -> bool:
            reasons = {
                (e.involved_object.kind, e.reason) for e in (await client.events.list()).items
            }
            return {("Deployment", "ScalingReplicaSet"), ("ReplicaSet", "SuccessfulCreate")} <= (
                reasons
            )

        await until(recorded)
