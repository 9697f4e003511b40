"""The scheduler against a real apiserver and etcd, with Node objects created directly (no
kubelet): capacity is never overcommitted, placement rules hold, unschedulable pods wake up
when room appears, preemption evicts and nominates, and bind races are survived."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.quantity import milli_value
from bosun.common.testing import eventually
from bosun.scheduler.config import SchedulerConfig
from bosun.scheduler.framework import CycleState, Status
from bosun.scheduler.plugins.defaultbinder import DefaultBinder
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.registry import Handle, build_framework
from bosun.scheduler.scheduler import Scheduler
from bosun.scheduler.testing import make_node, make_pod

pytestmark = pytest.mark.integration

StartScheduler = Callable[..., Awaitable[Scheduler]]


def _config() -> SchedulerConfig:
    return SchedulerConfig(pod_initial_backoff_seconds=0.05, pod_max_backoff_seconds=0.5)


@pytest.fixture
async def start_scheduler(client: Client) -> AsyncIterator[StartScheduler]:
    running: list[asyncio.Task[None]] = []

    async def start(**kwargs: Any) -> Scheduler:
        kwargs.setdefault("config", _config())
        kwargs.setdefault("registry", CollectorRegistry())
        scheduler = Scheduler(client, **kwargs)
        running.append(asyncio.create_task(scheduler.run()))
        await eventually(lambda: scheduler.pods.has_synced, timeout=10)
        return scheduler

    yield start
    for task in running:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def kubelet_finishing_deletes(client: Client) -> AsyncIterator[None]:
    """Stands in for kubelets: completes graceful pod deletions at once."""

    async def run() -> None:
        async for event in client.pods.watch():
            pod = event.object
            if event.type != "DELETED" and pod.metadata.HasField("deletion_timestamp"):
                with contextlib.suppress(Exception):
                    await client.pods.delete(
                        pod.metadata.name, namespace=pod.metadata.namespace, grace_period_seconds=0
                    )

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _create_all(client: Client, objects: list[Any], create: Any, batch: int = 50) -> None:
    for start in range(0, len(objects), batch):
        await asyncio.gather(*(create(obj) for obj in objects[start : start + batch]))


async def _pods(client: Client) -> dict[str, core_pb2.Pod]:
    return {pod.metadata.name: pod for pod in (await client.pods.list_all()).items}


async def _wait_for(
    client: Client, condition: Callable[[dict[str, core_pb2.Pod]], bool], timeout: float = 15
) -> dict[str, core_pb2.Pod]:
    pods: dict[str, core_pb2.Pod] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                pods = await _pods(client)
                if condition(pods):
                    return pods
                await asyncio.sleep(0.05)
    except TimeoutError:
        where = {name: pod.spec.node_name or pod.status.conditions for name, pod in pods.items()}
        raise AssertionError(f"pods did not get there in {timeout} s: {where}") from None


def _unschedulable_condition(pod: core_pb2.Pod) -> core_pb2.PodCondition | None:
    for condition in pod.status.conditions:
        if condition.type == "PodScheduled" and condition.status == "False":
            return condition
    return None


async def test_burst_of_500_pods_onto_20_nodes_never_overcommits(
    client: Client, start_scheduler: StartScheduler
) -> None:
    await _create_all(client, [make_node(f"node-{i}") for i in range(20)], client.nodes.create)
    scheduler = await start_scheduler()
    # 20 nodes x 4 cpu = 80 cpu; 500 pods x 200m = 100 cpu: exactly 400 fit.
    pods = [make_pod(f"burst-{i}", cpu="200m", memory="256Mi") for i in range(500)]
    await _create_all(client, pods, client.pods.create)

    def settled(pods: dict[str, core_pb2.Pod]) -> bool:
        bound = sum(1 for pod in pods.values() if pod.spec.node_name)
        marked = sum(1 for pod in pods.values() if _unschedulable_condition(pod))
        return bound == 400 and marked == 100

    final = await _wait_for(client, settled, timeout=60)
    per_node: Counter[str] = Counter()
    for pod in final.values():
        if pod.spec.node_name:
            per_node[pod.spec.node_name] += milli_value(
                pod.spec.containers[0].resources.requests["cpu"]
            )
    assert len(per_node) == 20
    assert max(per_node.values()) <= 4000
    condition = _unschedulable_condition(next(p for p in final.values() if not p.spec.node_name))
    assert condition is not None
    assert condition.message == (
        "0/20 nodes are available: 20 Insufficient cpu. preemption: 0/20 nodes are available: "
        "20 No preemption victims found for incoming pod."
    )
    # Every bind confirmed by the informer; the metrics tell the same story.
    await eventually(lambda: scheduler.cache.assumed_count == 0, timeout=10)
    registry = scheduler.metrics_registry
    assert (
        registry.get_sample_value(
            "bosun_scheduler_schedule_attempts_total", {"result": "scheduled"}
        )
        == 400
    )
    assert registry.get_sample_value("bosun_scheduler_e2e_scheduling_duration_seconds_count") == 400


async def test_unschedulable_pod_is_scheduled_as_soon_as_a_node_fits(
    client: Client, start_scheduler: StartScheduler
) -> None:
    await client.nodes.create(make_node("small", cpu="2"))
    await client.nodes.create(
        make_node("tainted", cpu="16", taints=[("dedicated", "db", "NoSchedule")])
    )
    await start_scheduler()
    await client.pods.create(make_pod("big", cpu="8"))
    pods = await _wait_for(client, lambda p: _unschedulable_condition(p["big"]) is not None)
    condition = _unschedulable_condition(pods["big"])
    assert condition is not None
    assert condition.message == (
        "0/2 nodes are available: 1 Insufficient cpu, "
        "1 node(s) had untolerated taint {dedicated: db}. preemption: 0/2 nodes are available: "
        "1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )
    events = [e for e in (await client.events.list()).items if e.involved_object.name == "big"]
    assert any(e.reason == "FailedScheduling" for e in events)

    await client.nodes.create(make_node("large", cpu="16"))
    pods = await _wait_for(client, lambda p: p["big"].spec.node_name != "", timeout=5)
    assert pods["big"].spec.node_name == "large"
    await eventually_events(client, "big", "Scheduled")


async def eventually_events(client: Client, name: str, reason: str) -> None:
    async with asyncio.timeout(10):
        while True:
            events = (await client.events.list()).items
            if any(e.involved_object.name == name and e.reason == reason for e in events):
                return
            await asyncio.sleep(0.05)


async def test_taints_affinity_spread_and_anti_affinity_are_respected(
    client: Client, start_scheduler: StartScheduler
) -> None:
    nodes = [
        make_node("a1", labels={"zone": "a", "disk": "ssd"}),
        make_node("a2", labels={"zone": "a"}),
        make_node("b1", labels={"zone": "b", "disk": "ssd"}),
        make_node("b2", labels={"zone": "b"}),
        make_node("gpu", labels={"zone": "c"}, taints=[("gpu", "true", "NoSchedule")]),
    ]
    await _create_all(client, nodes, client.nodes.create)
    await start_scheduler()

    # Anti-affinity by hostname: at most one "solo" per node; gpu is tainted, so 4 fit.
    solos = []
    for index in range(5):
        pod = make_pod(f"solo-{index}", labels={"app": "solo"})
        anti = pod.spec.affinity.pod_anti_affinity
        term = anti.required_during_scheduling_ignored_during_execution.add(
            topology_key="kubernetes.io/hostname"
        )
        term.label_selector.match_labels["app"] = "solo"
        solos.append(pod)
    # Required node affinity: ssd nodes only.
    ssd = make_pod("ssd-only")
    ssd.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.add().match_expressions.add(
        key="disk", operator="In", values=["ssd"]
    )
    # Tolerates the gpu taint and selects the gpu node.
    gpu = make_pod(
        "gpu-job",
        node_selector={"zone": "c"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    )
    # Spread over zones with maxSkew 1. Zone c would count as an empty domain (taints do not
    # exclude nodes from the count, as in Kubernetes), so the pods select zones a and b.
    spread = []
    for index in range(4):
        pod = make_pod(f"spread-{index}", labels={"app": "spread"})
        pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.add().match_expressions.add(
            key="zone", operator="In", values=["a", "b"]
        )
        constraint = pod.spec.topology_spread_constraints.add(
            max_skew=1, topology_key="zone", when_unsatisfiable="DoNotSchedule"
        )
        constraint.label_selector.match_labels["app"] = "spread"
        spread.append(pod)
    for pod in [*solos, ssd, gpu, *spread]:
        await client.pods.create(pod)

    def done(pods: dict[str, core_pb2.Pod]) -> bool:
        bound = [p for p in pods.values() if p.spec.node_name]
        return (
            len(bound) == 4 + 1 + 1 + 4
            and _unschedulable_condition(
                next(p for n, p in pods.items() if n.startswith("solo") and not p.spec.node_name)
            )
            is not None
            if len(bound) == 10
            else False
        )

    pods = await _wait_for(client, done, timeout=20)
    solo_nodes = [
        p.spec.node_name for n, p in pods.items() if n.startswith("solo") and p.spec.node_name
    ]
    assert len(solo_nodes) == len(set(solo_nodes)) == 4
    assert "gpu" not in solo_nodes
    assert pods["ssd-only"].spec.node_name in {"a1", "b1"}
    assert pods["gpu-job"].spec.node_name == "gpu"
    zones = Counter(p.spec.node_name[0] for n, p in pods.items() if n.startswith("spread"))
    assert zones == {"a": 2, "b": 2}


async def test_preemption_evicts_lower_priority_pods_and_nominates(
    client: Client, start_scheduler: StartScheduler, kubelet_finishing_deletes: None
) -> None:
    await client.nodes.create(make_node("only", cpu="2"))
    await start_scheduler()
    for index in range(2):
        await client.pods.create(make_pod(f"low-{index}", cpu="1", priority=1))
    await _wait_for(client, lambda p: all(pod.spec.node_name for pod in p.values()) and len(p) == 2)
    await client.pods.create(make_pod("vip", cpu="1500m", priority=100))
    pods = await _wait_for(
        client, lambda p: "vip" in p and p["vip"].spec.node_name == "only", timeout=15
    )
    # 1500m needs both 1-cpu pods gone: both are victims.
    assert set(pods) == {"vip"}
    vip = pods["vip"]
    assert vip.status.nominated_node_name == "only"
    await eventually_events(client, "low-0", "Preempted")


async def test_lower_priority_pod_cannot_take_a_preemptors_room(
    client: Client, start_scheduler: StartScheduler, kubelet_finishing_deletes: None
) -> None:
    await client.nodes.create(make_node("only", cpu="2"))
    await start_scheduler()
    await client.pods.create(make_pod("low", cpu="2", priority=1))
    await _wait_for(client, lambda p: p["low"].spec.node_name == "only")
    await client.pods.create(make_pod("vip", cpu="2", priority=100))
    await client.pods.create(make_pod("sneaky", cpu="1", priority=0))
    pods = await _wait_for(client, lambda p: "low" not in p and p["vip"].spec.node_name == "only")
    assert pods["sneaky"].spec.node_name == ""


class RacingBinder:
    """Binds the pod to another node through the API just before the real bind: the
    apiserver then refuses ours with a conflict."""

    name = "RacingBinder"

    def __init__(self, client: Client, elsewhere: str) -> None:
        self.client = client
        self.elsewhere = elsewhere
        self.inner = DefaultBinder(client.pods)
        self.raced = 0

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        meta = pod.pod.metadata
        if meta.name.startswith("raced"):
            await self.client.pods.bind(meta.name, self.elsewhere, namespace=meta.namespace)
            self.raced += 1
        return await self.inner.bind(state, pod, node)


async def test_bind_conflict_is_survived_without_double_booking(
    client: Client, start_scheduler: StartScheduler
) -> None:
    await client.nodes.create(make_node("chosen", cpu="2"))
    await client.nodes.create(make_node("other", cpu="4", taints=[("x", "y", "NoSchedule")]))
    framework = build_framework(_config(), Handle(pods=client.pods))
    racer = RacingBinder(client, "other")
    framework.bind = [racer]
    scheduler = await start_scheduler(framework=framework)
    await client.pods.create(make_pod("raced", cpu="2"))
    pods = await _wait_for(client, lambda p: p["raced"].spec.node_name != "")
    assert pods["raced"].spec.node_name == "other"
    assert racer.raced == 1
    # The room on "chosen" was given back: a pod needing all of it still fits there.
    await client.pods.create(make_pod("after", cpu="2"))
    pods = await _wait_for(
        client, lambda p: p.get("after") is not None and p["after"].spec.node_name != ""
    )
    assert pods["after"].spec.node_name == "chosen"
    chosen = scheduler.cache.node("chosen")
    assert chosen is not None
    await eventually(lambda: set(chosen.pods) == {"default/after"}, timeout=5)
