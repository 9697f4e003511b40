"""Controller-manager against a real apiserver + etcd: cascading deletion, namespaces, service
accounts, pod GC, leader election, node lifecycle, and a controller-manager killed mid-rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.apiserver.server import ApiServer
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.testing import (
    config_map,
    deployment,
    eventually,
    lease,
    namespace,
    node,
    replica_set,
)
from bosun.controllermanager.context import Options
from bosun.controllermanager.manager import LeaderElection, known_controllers, run
from bosun.controllermanager.podutil import is_ready
from bosun.controllermanager.testing import (
    WORKLOAD_CONTROLLERS,
    PodStatusSimulator,
    running_controllers,
    set_image,
    until,
)

pytestmark = pytest.mark.integration


def web(*, replicas: int = 3, namespace: str = "default") -> apps_pb2.Deployment:
    return deployment(
        "web",
        replicas=replicas,
        image="web:1",
        namespace=namespace,
        max_surge="2",
        max_unavailable="0",
    )


async def count(client: Client, *, namespace: str = "default") -> tuple[int, int]:
    """(ReplicaSets, pods) in the namespace."""
    sets = await client.replica_sets.list(namespace=namespace)
    pods = await client.pods.list(namespace=namespace)
    return len(sets.items), len(pods.items)


async def gone(resource: Any, name: str, namespace: str = "default") -> bool:
    try:
        await resource.get(name, namespace=namespace)
    except NotFoundError:
        return True
    return False


async def deployed(client: Client, name: str, replicas: int) -> None:
    async def ready() -> bool:
        d = await client.deployments.get(name)
        return d.status.available_replicas == replicas and d.status.updated_replicas == replicas

    await until(ready, timeout=20)


# ------------------------------------------------------------------------ cascading deletion


async def test_background_delete_removes_replica_sets_and_pods(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(web())
        await deployed(client, "web", 3)
        result = await client.deployments.delete("web")
        assert result.removed  # background: the owner goes at once, dependents after

        async def empty() -> bool:
            return await count(client) == (0, 0)

        await until(empty)


async def test_foreground_delete_keeps_the_owner_until_dependents_are_gone(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(web())
        await deployed(client, "web", 3)
        listed = await client.deployments.list()
        observed: list[tuple[int, int]] = []

        async def follow() -> None:
            async for event in client.deployments.watch(resource_version=listed.resource_version):
                if event.type == "DELETED":
                    observed.append(await count(client))
                    return

        follower = asyncio.create_task(follow())
        result = await client.deployments.delete("web", propagation_policy="Foreground")
        assert not result.removed
        assert "foregroundDeletion" in result.object.metadata.finalizers
        await asyncio.wait_for(follower, 20)
    assert observed == [(0, 0)]  # when the Deployment went, nothing of it was left


async def test_orphan_delete_keeps_replica_sets_and_pods(client: Client) -> None:
    async with running_controllers(client), PodStatusSimulator(client):
        await client.deployments.create(web())
        await deployed(client, "web", 3)
        await client.deployments.delete("web", propagation_policy="Orphan")
        await until(lambda: gone(client.deployments, "web"))

        async def released() -> bool:
            sets = (await client.replica_sets.list()).items
            return len(sets) == 1 and not sets[0].metadata.owner_references

        await until(released)
        assert await count(client) == (1, 3)
        # The ReplicaSet still manages its pods: a deleted one comes back.
        victim = (await client.pods.list()).items[0]
        await client.pods.delete(victim.metadata.name)

        async def replaced() -> bool:
            pods = (await client.pods.list()).items
            return len(pods) == 3 and victim.metadata.name not in {p.metadata.name for p in pods}

        await until(replaced)


async def test_dependent_of_a_missing_owner_is_collected(client: Client) -> None:
    owned = config_map("orphan")
    owned.metadata.owner_references.add(
        api_version="apps/v1", kind="ReplicaSet", name="never-was", uid="0000-gone"
    )
    await client.config_maps.create(owned)
    kept = config_map("kept")
    rs = await client.replica_sets.create(replica_set("real", replicas=0))
    kept.metadata.owner_references.add(
        api_version="apps/v1", kind="ReplicaSet", name="real", uid=rs.metadata.uid
    )
    await client.config_maps.create(kept)
    async with running_controllers(client, ("garbagecollector",)):
        await until(lambda: gone(client.config_maps, "orphan"))
        assert not await gone(client.config_maps, "kept")


# ------------------------------------------------------------------------ namespaces


async def test_namespace_delete_empties_and_removes_the_namespace(client: Client) -> None:
    controllers = (*WORKLOAD_CONTROLLERS, "namespace", "serviceaccount")
    async with (
        running_controllers(client, controllers, namespace_resync=0.1),
        PodStatusSimulator(client),
    ):
        await client.namespaces.create(namespace("team"))
        await client.deployments.create(web(namespace="team"))
        await client.config_maps.create(config_map("settings", namespace="team"))

        async def up() -> bool:
            return await count(client, namespace="team") == (1, 3)

        await until(up)
        await client.namespaces.delete("team")
        marked = await client.namespaces.get("team")
        assert marked.status.phase == "Terminating"
        with pytest.raises(Exception, match="terminat"):
            await client.config_maps.create(config_map("late", namespace="team"))
        await until(lambda: gone(client.namespaces, "team", ""), timeout=20)
    for kind in ("Deployment", "ReplicaSet", "Pod", "ConfigMap", "ServiceAccount"):
        assert (await client.resource(kind).list(namespace="team")).items == []


async def test_every_namespace_gets_a_default_service_account(client: Client) -> None:
    async with running_controllers(client, ("serviceaccount",)):
        await client.namespaces.create(namespace("team"))
        await until(lambda: _exists(client.service_accounts, "default", "team"))
        await until(lambda: _exists(client.service_accounts, "default", "kube-system"))
        await client.service_accounts.delete("default", namespace="team")
        await until(lambda: _exists(client.service_accounts, "default", "team"))


async def _exists(resource: Any, name: str, namespace: str) -> bool:
    return not await gone(resource, name, namespace)


# ------------------------------------------------------------------------ pod GC


async def test_pod_gc_removes_pods_of_deleted_nodes_and_excess_terminated_pods(
    client: Client,
) -> None:
    from bosun.common.testing import pod

    await client.nodes.create(node("alive"))
    await client.pods.create(pod("on-ghost", node_name="ghost"))
    await client.pods.create(pod("on-alive", node_name="alive"))
    for index in range(4):
        done = await client.pods.create(pod(f"done-{index}"))
        done.status.phase = "Succeeded"
        await client.pods.update_status(done)
    async with running_controllers(
        client, ("podgc",), pod_gc_period=0.1, terminated_pod_gc_threshold=2
    ):

        async def collected() -> bool:
            names = {p.metadata.name for p in (await client.pods.list()).items}
            return names == {"on-alive", "done-2", "done-3"}

        await until(collected)


# ------------------------------------------------------------------------ leader election


async def test_two_replicas_never_both_lead_and_the_standby_takes_over(client: Client) -> None:
    election = LeaderElection(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)
    leading: set[str] = set()
    overlaps: list[set[str]] = []
    terms: list[str] = []

    def started(identity: str) -> None:
        leading.add(identity)
        terms.append(identity)
        if len(leading) > 1:
            overlaps.append(set(leading))

    def replica(identity: str) -> asyncio.Task[None]:
        return asyncio.create_task(
            run(
                client,
                controllers=["replicaset"],
                options=Options(),
                identity=identity,
                leader_election=election,
                on_started_leading=lambda: started(identity),
                on_stopped_leading=lambda: leading.discard(identity),
            )
        )

    replicas = {"a": replica("a"), "b": replica("b")}
    try:
        await eventually(lambda: len(terms) == 1)
        await client.replica_sets.create(replica_set("web", replicas=4))
        await until(lambda: _pods_equal(client, 4))
        first = terms[0]
        replicas.pop(first).cancel()  # the leader goes away (and releases the lease)
        await eventually(lambda: len(terms) == 2)
        await client.replica_sets.patch("web", {"spec": {"replicas": 6}})
        await until(lambda: _pods_equal(client, 6))
    finally:
        for task in replicas.values():
            task.cancel()
        await asyncio.gather(*replicas.values(), return_exceptions=True)
    assert overlaps == []
    assert terms[1] != first
    assert len((await client.pods.list()).items) == 6


async def _pods_equal(client: Client, expected: int) -> bool:
    return len((await client.pods.list()).items) == expected


# ------------------------------------------------------------------------ node lifecycle


class Heartbeats:
    """Renews node Leases and reports Ready=True, as each node's kubelet would."""

    def __init__(self, client: Client, names: Sequence[str]) -> None:
        self.client = client
        self.alive = set(names)
        self._task: asyncio.Task[None] | None = None

    async def register(self, name: str) -> None:
        obj = node(name)
        created = await self.client.nodes.create(obj)
        created.status.conditions.add(type="Ready", status="True", reason="KubeletReady")
        await self.client.nodes.update_status(created)
        await self.client.leases.create(lease(name, namespace="kube-node-lease"))

    async def _beat(self) -> None:
        while True:
            for name in sorted(self.alive):
                current = await self.client.leases.get(name, namespace="kube-node-lease")
                current.spec.holder_identity = name
                current.spec.renew_time.FromDatetime(datetime.now(UTC))
                await self.client.leases.update(current)
                reported = await self.client.nodes.get(name)
                ready = next(c for c in reported.status.conditions if c.type == "Ready")
                if ready.status != "True":
                    ready.status = "True"
                    ready.reason = "KubeletReady"
                    await self.client.nodes.update_status(reported)
            await asyncio.sleep(0.1)

    async def __aenter__(self) -> Heartbeats:
        for name in sorted(self.alive):
            await self.register(name)
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _bind_unbound(client: Client, node_name: str) -> None:
    """Play the scheduler for this test: bind every unbound, live pod to `node_name`."""
    for item in (await client.pods.list()).items:
        if not item.spec.node_name and not item.metadata.HasField("deletion_timestamp"):
            with contextlib.suppress(Exception):
                await client.pods.bind(item.metadata.name, node_name)


async def test_unreachable_node_is_tainted_and_its_pods_are_recreated_elsewhere(
    client: Client,
) -> None:
    options = {
        "node_monitor_period": 0.1,
        "node_monitor_grace_period": 1.0,
        "node_eviction_rate": 100.0,
        "default_toleration_seconds": 1,
    }
    controllers = ("replicaset", "nodelifecycle")
    async with (
        Heartbeats(client, ["n1", "n2"]) as beats,
        running_controllers(client, controllers, **options),
        PodStatusSimulator(client, node_name="n1") as kubelet1,
        PodStatusSimulator(client, node_name="n2"),
    ):
        await client.replica_sets.create(replica_set("web", replicas=2))
        await until(lambda: _pods_equal(client, 2))
        await _bind_unbound(client, "n1")

        async def running_on(node_name: str, expected: int) -> bool:
            pods = [
                p
                for p in (await client.pods.list()).items
                if p.spec.node_name == node_name and not p.metadata.HasField("deletion_timestamp")
            ]
            return len(pods) == expected and all(is_ready(p) for p in pods)

        await until(lambda: running_on("n1", 2))
        beats.alive.discard("n1")  # the kubelet of n1 stops
        kubelet1.paused = True

        async def unreachable() -> bool:
            n1 = await client.nodes.get("n1")
            ready = next(c for c in n1.status.conditions if c.type == "Ready")
            taints = {(t.key, t.effect) for t in n1.spec.taints}
            return ready.status == "Unknown" and taints == {
                ("node.kubernetes.io/unreachable", "NoSchedule"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
            }

        await until(unreachable, timeout=10)
        n2 = await client.nodes.get("n2")
        assert not n2.spec.taints  # the healthy node is left alone

        async def replaced() -> bool:
            await _bind_unbound(client, "n2")
            return await running_on("n2", 2)

        await until(replaced, timeout=15)
        beats.alive.add("n1")  # n1 comes back: its taint goes

        async def untainted() -> bool:
            return not (await client.nodes.get("n1")).spec.taints

        await until(untainted, timeout=10)


# ------------------------------------------------------------------------ crash mid-rollout


def _start_controller_manager(address: str, log: Path) -> subprocess.Popen[bytes]:
    binary = Path(sys.executable).with_name("bosun-controller-manager")
    return subprocess.Popen(
        [
            str(binary),
            "--apiserver",
            address,
            "--controllers",
            ",".join(WORKLOAD_CONTROLLERS),
            "--health-address",
            "127.0.0.1:0",
            "--metrics-port",
            "0",
            "--leader-elect-lease-duration",
            "2",
            "--leader-elect-renew-deadline",
            "1.5",
            "--leader-elect-retry-period",
            "0.2",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "BOSUN_TRACE_FILE": ""},
    )


@contextlib.asynccontextmanager
async def controller_manager_process(address: str, log: Path) -> AsyncIterator[Any]:
    process = _start_controller_manager(address, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


async def test_a_controller_manager_killed_mid_rollout_is_finished_by_its_successor(
    client: Client, apiserver: ApiServer, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{apiserver.port}"
    log = tmp_path / "controller-manager.log"
    async with PodStatusSimulator(client):
        async with controller_manager_process(address, log):
            await client.deployments.create(web(replicas=10))
            await deployed(client, "web", 10)
            pods_seen: dict[str, core_pb2.Pod] = {}
            extremes = {"max_pods": 0, "min_ready": 10}
            listed = await client.pods.list()
            pods_seen.update({p.metadata.name: p for p in listed.items})

            async def follow() -> None:
                async for event in client.pods.watch(resource_version=listed.resource_version):
                    if event.type == "BOOKMARK":
                        continue
                    if event.type == "DELETED":
                        pods_seen.pop(event.object.metadata.name, None)
                    else:
                        pods_seen[event.object.metadata.name] = event.object
                    ready = sum(1 for p in pods_seen.values() if is_ready(p))
                    extremes["max_pods"] = max(extremes["max_pods"], len(pods_seen))
                    extremes["min_ready"] = min(extremes["min_ready"], ready)

            follower = asyncio.create_task(follow())
            await set_image(client, "web", "web:2")

            async def midway() -> bool:
                images = [p.spec.containers[0].image for p in pods_seen.values()]
                return images.count("web:2") >= 2 and images.count("web:1") >= 4

            await until(midway, timeout=20, interval=0.005)
        # The process was just SIGKILLed, mid-rollout; a new one must take over.
        interrupted = [p.spec.containers[0].image for p in pods_seen.values()]
        assert "web:1" in interrupted
        async with controller_manager_process(address, log):

            async def finished() -> bool:
                d = await client.deployments.get("web")
                images = [p.spec.containers[0].image for p in pods_seen.values()]
                return (
                    d.status.updated_replicas == 10
                    and d.status.available_replicas == 10
                    and d.status.replicas == 10
                    and images.count("web:2") == 10
                    and len(images) == 10
                )

            await until(finished, timeout=30)
        follower.cancel()
    assert extremes["max_pods"] <= 12
    assert extremes["min_ready"] >= 10


# ------------------------------------------------------------------------ every controller


async def test_all_controllers_together_serve_a_deployment_behind_a_service(
    client: Client,
) -> None:
    service = core_pb2.Service(api_version="v1", kind="Service")
    service.metadata.name = "web"
    service.metadata.namespace = "default"
    service.spec.selector["app"] = "web"
    service.spec.ports.add(name="http", port=80, target_port="8080", protocol="TCP")
    async with running_controllers(client, known_controllers()), PodStatusSimulator(client):
        await client.services.create(service)
        await client.deployments.create(web())
        await deployed(client, "web", 3)

        async def endpoints_ready() -> bool:
            try:
                endpoints = await client.endpoints.get("web")
            except NotFoundError:
                return False
            addresses = [a for subset in endpoints.subsets for a in subset.addresses]
            return len(addresses) == 3

        await until(endpoints_ready)
        await until(lambda: _exists(client.service_accounts, "default", "default"))


async def test_when_most_nodes_go_silent_at_once_nothing_is_evicted(client: Client) -> None:
    # Every node unreachable together looks like the controller-manager's own network failing:
    # nodes are marked and kept free of new pods, but running pods are not evicted.
    options = {
        "node_monitor_period": 0.1,
        "node_monitor_grace_period": 1.0,
        "node_eviction_rate": 100.0,
        # Nodes fall silent a monitor period or so apart; the first may be tainted before the
        # second follows, and its taint must go again before this toleration runs out.
        "default_toleration_seconds": 2,
    }
    async with (
        Heartbeats(client, ["n1", "n2"]) as beats,
        running_controllers(client, ("replicaset", "nodelifecycle"), **options),
    ):
        await client.replica_sets.create(replica_set("web", replicas=2))
        await until(lambda: _pods_equal(client, 2))
        await _bind_unbound(client, "n1")
        beats.alive.clear()

        async def both_unknown_and_unschedulable() -> bool:
            nodes = (await client.nodes.list()).items
            return all(
                any(c.type == "Ready" and c.status == "Unknown" for c in n.status.conditions)
                and ("node.kubernetes.io/unreachable", "NoSchedule")
                in {(t.key, t.effect) for t in n.spec.taints}
                for n in nodes
            )

        await until(both_unknown_and_unschedulable, timeout=10)

        async def no_execute_taints_gone() -> bool:
            nodes = (await client.nodes.list()).items
            return all(t.effect != "NoExecute" for n in nodes for t in n.spec.taints)

        await until(no_execute_taints_gone, timeout=5)
        await asyncio.sleep(2.5)  # past the toleration: when an eviction would have happened
        nodes = (await client.nodes.list()).items
        pods = (await client.pods.list()).items
    assert all(t.effect != "NoExecute" for n in nodes for t in n.spec.taints)
    assert len(pods) == 2
    assert not any(p.metadata.HasField("deletion_timestamp") for p in pods)
