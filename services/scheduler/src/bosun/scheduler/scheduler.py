"""Scheduler: informers → cache and queue → one scheduling cycle at a time → asynchronous binds.

    scheduler = Scheduler(client, config)
    await scheduler.run()            # until cancelled (leader election cancels it on loss)

Data flow (client-go shape: informer handlers only update the cache or the queue):

* namespaces informer → namespace labels in the cache (pod affinity's namespaceSelector).
* nodes informer → cache nodes; a node added, or changed in spec/labels/allocatable, moves the
  unschedulable pods back to the active queue.
* one pods informer (not finished pods), split by its handlers as kube-scheduler's are:
  assigned pods (spec.nodeName set) → cache pods, which confirms assumed pods, and a deleted
  one frees room (unschedulable pods move); pending pods for our `schedulerName` → the queue.
  A bind is then one watch event (pending → assigned), not a delete on one watch and an add on
  another. Updates that change only the status (our own PodScheduled condition, for instance)
  do not wake a pod.

Scheduling cycle (`schedule_one`, synchronous): PreFilter/Filter/Score (runtime.Framework),
Reserve, then `cache.assume` — all without awaiting, so no other cycle or informer event can
run in between, and the next pod already sees this one's room as taken. The binding cycle is
a task: Bind, then `finish_binding` and a `Scheduled` Event, or on failure `forget` (the room
is given back), Unreserve, and the pod goes back to the queue with backoff — unless the
apiserver says it is already bound (ConflictError: someone else won; the informer will report
where) or gone. At most `max_binds_in_flight` binds run at once; the loop waits for a free
slot before the next cycle.

A pod that fits nowhere runs PostFilter (preemption), gets a `FailedScheduling` Event with the
diagnosis and a PodScheduled=False condition (written only when it changes), and waits in the
unschedulable pool. Each cycle is one OpenTelemetry span (`scheduling_cycle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import ApiError, ConflictError, NotFoundError, PreconditionError
from bosun.common.events import NORMAL, WARNING, EventRecorder, EventSink
from bosun.common.informer import Informer
from bosun.scheduler.cache import SchedulerCache
from bosun.scheduler.config import SchedulerConfig
from bosun.scheduler.eventsink import RateLimitedEventSink
from bosun.scheduler.framework import CycleState, PostFilterResult
from bosun.scheduler.metrics import SchedulerMetrics
from bosun.scheduler.podinfo import PodInfo, pod_key
from bosun.scheduler.queue import QueuedPod, SchedulingQueue
from bosun.scheduler.registry import Handle, build_framework
from bosun.scheduler.runtime import FitError, Framework

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)

_FINISHED = "status.phase!=Succeeded,status.phase!=Failed"


def _node_changed(old: core_pb2.Node, new: core_pb2.Node) -> bool:
    """Could this node update make a pending pod fit (or stop fitting)?"""
    return (
        old.spec != new.spec
        or old.metadata.labels != new.metadata.labels
        or old.status.allocatable != new.status.allocatable
        or old.status.images != new.status.images
    )


def _pod_spec_changed(old: core_pb2.Pod, new: core_pb2.Pod) -> bool:
    return old.spec != new.spec or old.metadata.labels != new.metadata.labels


class Scheduler:
    def __init__(
        self,
        client: Client,
        config: SchedulerConfig | None = None,
        *,
        framework: Framework | None = None,
        registry: CollectorRegistry = REGISTRY,
        max_binds_in_flight: int = 256,
        assumed_ttl: float = 30.0,
        max_unschedulable_seconds: float = 60.0,
        events: bool = True,
        event_qps: float = 50.0,
        event_burst: int = 100,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        """`event_qps`/`event_burst` bound the Event writes (see eventsink.py); qps 0: none."""
        self.client = client
        self.tracer = trace.get_tracer("bosun.scheduler", tracer_provider=tracer_provider)
        self.config = config or SchedulerConfig()
        self.framework = framework or build_framework(self.config, Handle(pods=client.pods))
        self.cache = SchedulerCache(assumed_ttl=assumed_ttl)
        self.queue = SchedulingQueue(
            initial_backoff=self.config.pod_initial_backoff_seconds,
            max_backoff=self.config.pod_max_backoff_seconds,
            max_unschedulable=max_unschedulable_seconds,
        )
        self.metrics_registry = registry
        self.metrics = SchedulerMetrics.for_registry(registry)
        sink: EventSink = client.events
        if event_qps > 0:
            sink = RateLimitedEventSink(sink, qps=event_qps, burst=event_burst)
        self.recorder = (
            EventRecorder(sink, component=self.config.scheduler_name) if events else None
        )
        self.nodes: Informer[core_pb2.Node] = Informer(client.nodes)
        self.namespaces: Informer[core_pb2.Namespace] = Informer(client.namespaces)
        self.pods: Informer[core_pb2.Pod] = Informer(client.pods, field_selector=_FINISHED)
        self._bind_slots = asyncio.Semaphore(max_binds_in_flight)
        self._binds_in_flight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wire_handlers()

    # ------------------------------------------------------------------ informer handlers

    def _wire_handlers(self) -> None:
        self.nodes.add_handler(
            on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted
        )
        self.pods.add_handler(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )
        self.namespaces.add_handler(
            on_add=self.cache.set_namespace,
            on_update=lambda old, new: self._namespace_changed(new),
            on_delete=lambda namespace: self.cache.remove_namespace(namespace.metadata.name),
        )

    def _node_added(self, node: core_pb2.Node) -> None:
        self.cache.add_node(node)
        self.queue.move_all()

    def _node_updated(self, old: core_pb2.Node, new: core_pb2.Node) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self.queue.move_all()

    def _node_deleted(self, node: core_pb2.Node) -> None:
        self.cache.remove_node(node.metadata.name)

    def _namespace_changed(self, namespace: core_pb2.Namespace) -> None:
        labels = dict(namespace.metadata.labels)
        if self.cache.namespace_labels.get(namespace.metadata.name) != labels:
            self.cache.set_namespace(namespace)
            self.queue.move_all()  # a namespaceSelector may match (or stop matching) now

    def _ours(self, pod: core_pb2.Pod) -> bool:
        return pod.spec.scheduler_name == self.config.scheduler_name

    def _pod_added(self, pod: core_pb2.Pod) -> None:
        if pod.spec.node_name:
            self.cache.add_pod(pod)
        elif self._ours(pod):
            self._pending_added(pod)

    def _pod_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        if new.spec.node_name:
            if not old.spec.node_name:  # bound (by us, or by someone else)
                self.queue.delete(pod_key(new))
                self.cache.remove_nomination(pod_key(new))
            self.cache.update_pod(new)
        elif self._ours(new):
            self._pending_updated(old, new)

    def _pod_deleted(self, pod: core_pb2.Pod) -> None:
        if pod.spec.node_name:
            self.cache.remove_pod(pod_key(pod))
            self.queue.move_all()
        elif self._ours(pod):
            self._pending_deleted(pod)

    def _pending_added(self, pod: core_pb2.Pod) -> None:
        if pod.metadata.HasField("deletion_timestamp"):
            return
        if self.cache.node_of(pod_key(pod)) is not None:
            return  # assumed: our bind is in flight
        info = PodInfo.of(pod)
        if pod.status.nominated_node_name:
            # A preemptor nominated before a restart (or by another replica) keeps its room.
            self.cache.nominate(info, pod.status.nominated_node_name)
        self.queue.add_or_update(info)

    def _pending_updated(self, old: core_pb2.Pod, new: core_pb2.Pod) -> None:
        key = pod_key(new)
        if new.metadata.HasField("deletion_timestamp"):
            self.queue.delete(key)
            return
        if self.cache.node_of(key) is not None:
            return
        self.queue.add_or_update(PodInfo.of(new), wake=_pod_spec_changed(old, new))

    def _pending_deleted(self, pod: core_pb2.Pod) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self.cache.node_of(key) is None:
            self.cache.remove_nomination(key)

    # ------------------------------------------------------------------ running

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Sync the informers, then schedule until cancelled."""
        if self.recorder is not None:
            self.recorder.start()
        informers = (self.namespaces, self.nodes, self.pods)
        for informer in informers:
            informer.start()
        try:
            for informer in informers:
                await informer.wait_for_sync()
            log.info(
                "scheduler caches synced",
                extra={
                    "nodes": self.cache.node_count(),
                    "pending": sum(self.queue.lengths().values()),
                },
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(self.queue.run_flusher(), name="scheduler-queue-flusher")
                group.create_task(self._housekeeping(), name="scheduler-housekeeping")
                group.create_task(self._schedule_loop(), name="scheduler-loop")
        finally:
            self.queue.close()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for informer in informers:
                await informer.stop()
            if self.recorder is not None:
                await self.recorder.stop(timeout=2.0)

    async def _housekeeping(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.cache.cleanup_expired():
                self.queue.move_all()
            self._report_lengths()

    def _report_lengths(self) -> None:
        lengths = self.queue.lengths()
        lengths["in_flight_binds"] = self._binds_in_flight
        self.metrics.set_pending(lengths)

    async def _schedule_loop(self) -> None:
        while True:
            await self._bind_slots.acquire()
            try:
                queued = await self.queue.pop()
            except BaseException:
                self._bind_slots.release()
                raise
            if not self.schedule_one(queued):
                self._bind_slots.release()
            await asyncio.sleep(0)  # let informer events and bind results in

    # ------------------------------------------------------------------ scheduling cycle

    def schedule_one(self, queued: QueuedPod) -> bool:
        """One scheduling cycle; True when a bind was started (it holds a bind slot)."""
        info = queued.info
        if info.pod.metadata.HasField("deletion_timestamp") or self.cache.node_of(info.key):
            self.queue.done(info.key)
            return False
        state = CycleState()
        with self.tracer.start_as_current_span(
            "scheduling_cycle",
            attributes={"pod": info.key, "attempt": queued.attempts},
        ) as span:
            started = time.perf_counter()
            try:
                result = self.framework.schedule(state, info, self.cache)
            except FitError as error:
                self.metrics.algorithm_seconds.observe(time.perf_counter() - started)
                span.set_attribute("result", "unschedulable")
                self._unschedulable(queued, state, error)
                return False
            except Exception as error:
                log.exception("scheduling %s failed", info.key)
                span.record_exception(error)
                span.set_attribute("result", "error")
                self.metrics.attempts.labels(result="error").inc()
                self.queue.requeue(queued, unschedulable=False)
                return False
            self.metrics.algorithm_seconds.observe(time.perf_counter() - started)
            node = result.node
            span.set_attribute("node", node)
            span.set_attribute("feasible_nodes", result.feasible)
            status = self.framework.run_reserve(state, info, node)
            if not status.is_success:
                span.set_attribute("result", "error")
                self.metrics.attempts.labels(result="error").inc()
                self.queue.requeue(queued, unschedulable=False)
                return False
            self.cache.assume(info, node)
            self.queue.done(info.key)
            span.set_attribute("result", "assumed")
        self._binds_in_flight += 1
        self._spawn(self._bind(queued, state, node), f"bind-{info.key}")
        return True

    def _unschedulable(self, queued: QueuedPod, state: CycleState, error: FitError) -> None:
        info = queued.info
        diagnosis = error.diagnosis
        message = diagnosis.message()
        if self.framework.post_filter and diagnosis.node_statuses:
            self.metrics.preemption_attempts.inc()
            result, status = self.framework.run_post_filter(state, info, self.cache, diagnosis)
            if result is not None:
                self.cache.nominate(info, result.nominated_node)
                self._spawn(self._preempt(info, result), f"preempt-{info.key}")
            elif status.reasons:
                message = f"{message} preemption: {status.reasons[0]}"
        self.metrics.attempts.labels(result="unschedulable").inc()
        self.queue.requeue(queued, unschedulable=True)
        log.info("pod %s is unschedulable: %s", info.key, message)
        if self.recorder is not None:
            self.recorder.record(info.pod, WARNING, "FailedScheduling", message)
        self._spawn(self._mark_unschedulable(info.pod, message), f"condition-{info.key}")

    # ------------------------------------------------------------------ API writes

    async def _bind(self, queued: QueuedPod, state: CycleState, node: str) -> None:
        info = queued.info
        try:
            status = await self.framework.run_bind(state, info, node)
        finally:
            self._binds_in_flight -= 1
            self._bind_slots.release()
        if status.is_success:
            self.cache.finish_binding(info.key)
            self.cache.remove_nomination(info.key)
            self.metrics.attempts.labels(result="scheduled").inc()
            self.metrics.e2e_seconds.observe(time.monotonic() - queued.added)
            if self.recorder is not None:
                self.recorder.record(
                    info.pod, NORMAL, "Scheduled", f"Successfully assigned {info.key} to {node}"
                )
            return
        self.cache.forget(info.key)
        self.framework.run_unreserve(state, info, node)
        self.queue.move_all()  # the room it held is free again
        self.metrics.attempts.labels(result="error").inc()
        reason = "; ".join(status.reasons)
        if isinstance(status.cause, ConflictError | NotFoundError | PreconditionError):
            # Bound elsewhere, deleted or being deleted: the informers will tell the rest.
            log.info("binding %s to %s not done: %s", info.key, node, reason)
            return
        log.warning("binding %s to %s failed: %s", info.key, node, reason)
        if self.recorder is not None:
            self.recorder.record(
                info.pod, WARNING, "FailedScheduling", f"Binding rejected: {reason}"
            )
        current = self.pods.store.get(info.key)
        if (
            current is not None
            and not current.spec.node_name
            and not current.metadata.HasField("deletion_timestamp")
        ):
            self.queue.retry_after_error(queued)

    async def _mark_unschedulable(self, pod: core_pb2.Pod, message: str) -> None:
        """PodScheduled=False, reason Unschedulable (skipped when already saying this)."""
        for condition in pod.status.conditions:
            if (
                condition.type == "PodScheduled"
                and condition.status == "False"
                and condition.message == message
            ):
                return
        conditions = [
            {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
            for c in pod.status.conditions
            if c.type != "PodScheduled"
        ]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastTransitionTime": now,
            }
        )
        await self._write_status(pod, {"status": {"conditions": conditions}})

    async def _write_status(self, pod: core_pb2.Pod, patch: dict[str, Any]) -> None:
        meta = pod.metadata
        try:
            await self.client.pods.patch(meta.name, patch, namespace=meta.namespace, status=True)
        except ApiError as error:
            log.info("status of %s not updated: %s", pod_key(pod), error)

    async def _preempt(self, info: PodInfo, result: PostFilterResult) -> None:
        node = result.nominated_node
        log.info(
            "pod %s preempts %d pod(s) on %s",
            info.key,
            len(result.victims),
            node,
            extra={"victims": [v.key for v in result.victims]},
        )
        await self._write_status(info.pod, {"status": {"nominatedNodeName": node}})
        for victim in result.victims:
            meta = victim.pod.metadata
            if self.recorder is not None:
                self.recorder.record(
                    victim.pod, NORMAL, "Preempted", f"Preempted by {info.key} on node {node}"
                )
            try:
                await self.client.pods.delete(meta.name, namespace=meta.namespace, uid=meta.uid)
            except NotFoundError:
                pass
            except ApiError as error:
                log.warning("could not evict %s: %s", victim.key, error)
                continue
            self.metrics.preemption_victims.inc()
