"""One scheduling cycle end to end without an apiserver: a span per cycle, metrics by result,
the pod assumed before its bind returns, and a failed bind giving the room back."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from bosun.common.client import Client
from bosun.common.errors import UnavailableError
from bosun.common.testing import eventually
from bosun.scheduler.config import SchedulerConfig
from bosun.scheduler.framework import CycleState, Status
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.queue import QueuedPod
from bosun.scheduler.registry import Handle, build_framework
from bosun.scheduler.scheduler import Scheduler
from bosun.scheduler.testing import make_node, make_pod


class GatedBinder:
    """Binds when released; fails with UNAVAILABLE when told to."""

    name = "GatedBinder"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.fail = False
        self.calls: list[tuple[str, str]] = []

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        self.calls.append((pod.key, node))
        await self.release.wait()
        if self.fail:
            return Status.error("apiserver unavailable", UnavailableError("down"))
        return Status()


def _scheduler(binder: GatedBinder) -> tuple[Scheduler, InMemorySpanExporter, CollectorRegistry]:
    client = Client("127.0.0.1:1", tracing=False)  # never called: the binder is fake
    framework = build_framework(SchedulerConfig(), Handle(pods=client.pods))
    framework.bind = [binder]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    scheduler = Scheduler(
        client, framework=framework, registry=registry, events=False, tracer_provider=provider
    )
    scheduler.cache.add_node(make_node("node-1", cpu="1"))
    return scheduler, exporter, registry


def _attempts(registry: CollectorRegistry, result: str) -> float:
    value = registry.get_sample_value("bosun_scheduler_schedule_attempts_total", {"result": result})
    return value or 0.0


async def test_pod_is_assumed_before_the_bind_returns_and_confirmed_after() -> None:
    binder = GatedBinder()
    scheduler, exporter, registry = _scheduler(binder)
    first = QueuedPod(PodInfo.of(make_pod("a", cpu="1")), added=0.0)
    assert scheduler.schedule_one(first)
    # While the bind is in flight the node is full: the next pod does not fit.
    second = QueuedPod(PodInfo.of(make_pod("b", cpu="1")), added=0.0)
    scheduler.queue._in_flight[second.key] = second  # as `pop` would have left it
    assert not scheduler.schedule_one(second)
    assert scheduler.queue.lengths()["unschedulable"] == 1
    binder.release.set()
    await eventually(lambda: _attempts(registry, "scheduled") == 1)
    assert binder.calls == [("default/a", "node-1")]
    assert _attempts(registry, "unschedulable") == 1
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["scheduling_cycle", "scheduling_cycle"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["result"] == "assumed"
    assert spans[0].attributes["node"] == "node-1"
    assert spans[1].attributes is not None
    assert spans[1].attributes["result"] == "unschedulable"
    assert (
        registry.get_sample_value("bosun_scheduler_scheduling_algorithm_duration_seconds_count")
        == 2
    )


async def test_failed_bind_forgets_the_pod_and_frees_the_node() -> None:
    binder = GatedBinder()
    binder.fail = True
    binder.release.set()
    scheduler, _, registry = _scheduler(binder)
    assert scheduler.schedule_one(QueuedPod(PodInfo.of(make_pod("a", cpu="1")), added=0.0))
    await eventually(lambda: _attempts(registry, "error") == 1)
    node = scheduler.cache.node("node-1")
    assert node is not None
    assert node.pods == {}
    assert not scheduler.cache.is_assumed("default/a")


async def test_informer_handlers_split_pods_between_queue_and_cache() -> None:
    scheduler, _, _ = _scheduler(GatedBinder())
    pending = make_pod("p", cpu="500m", scheduler_name="default-scheduler")
    pending.status.nominated_node_name = "node-1"
    scheduler._pod_added(pending)
    assert scheduler.queue.lengths()["active"] == 1
    assert scheduler.cache.nominated_node_of("default/p") == "node-1"  # kept across restarts
    other = make_pod("theirs", scheduler_name="other-scheduler")
    scheduler._pod_added(other)
    assert scheduler.queue.lengths()["active"] == 1  # not ours: ignored

    bound = make_pod("p", cpu="500m", node_name="node-1", scheduler_name="default-scheduler")
    scheduler._pod_updated(pending, bound)
    assert "default/p" not in scheduler.queue
    assert scheduler.cache.nominated_node_of("default/p") is None
    assert scheduler.cache.node_of("default/p") == "node-1"

    scheduler._pod_deleted(bound)
    assert scheduler.cache.node_of("default/p") is None
