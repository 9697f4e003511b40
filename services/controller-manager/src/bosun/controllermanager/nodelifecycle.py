"""Node lifecycle: notices nodes that stopped heartbeating, taints them, evicts their pods.

Every `node_monitor_period` (key `monitor`):

1. Health. A kubelet proves it is alive by renewing its Lease (`kube-node-lease/<node>`) and by
   posting the Ready condition's heartbeat. The controller records, on its *own* monotonic
   clock, when it last saw either change — so clock skew between nodes and the controller
   cannot make a node look dead or alive. A node unseen for `node_monitor_grace_period`
   (`node_startup_grace_period` before it first reported Ready) gets every condition set to
   Unknown (reason NodeStatusUnknown), and its pods' Ready condition set to False.
2. Taints. Ready=Unknown → `node.kubernetes.io/unreachable`; Ready=False →
   `node.kubernetes.io/not-ready`; Ready=True → neither; each with effect NoSchedule (the
   scheduler keeps new pods away) and NoExecute (running pods leave). Adding a NoExecute taint
   is what starts evictions, so those additions are rate-limited (`node_eviction_rate`, a token
   bucket). While at least `unhealthy_nodes_threshold` of the nodes are unhealthy, NoExecute
   taints are not added and those already there are removed (Kubernetes' full-disruption mode):
   that many nodes failing at once is more likely a network partition around the control plane
   than dead machines, and evicting everything would make it worse. NoSchedule taints and
   removals are never delayed.
3. Evictions. A pod on a node with NoExecute taints is evicted (deleted) unless it tolerates
   them all; a toleration with `tolerationSeconds` keeps it that long after the taint was
   added. Pods without a toleration for the unreachable/not-ready taints get one of
   `default_toleration_seconds` (as Kubernetes' DefaultTolerationSeconds admission does). A pod
   not yet due is re-queued (key `pod:<namespace>/<name>`) for the moment it is; evictions
   themselves go through a second token bucket (`pod_eviction_rate`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bosun.api.v1 import coordination_pb2, core_pb2
from bosun.common.errors import ConflictError, NotFoundError
from bosun.common.informer import Informer, object_key
from bosun.controllermanager import podutil
from bosun.controllermanager.context import ControllerContext
from bosun.controllermanager.controller import Controller
from bosun.controllermanager.informers import NODE_INDEX

log = logging.getLogger(__name__)

Node = core_pb2.Node
Pod = core_pb2.Pod
LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"
CONDITION_TAINTS = frozenset({UNREACHABLE, NOT_READY})
MONITOR = "monitor"
POD_PREFIX = "pod:"


class RateLimit:
    """A token bucket that is only asked, never borrowed from: `try_take` or try again later."""

    def __init__(self, *, qps: float, burst: int, clock: Any = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def try_take(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


@dataclass
class _Health:
    signature: tuple[Any, ...]
    observed_at: float


def ready_status(node: Node) -> str | None:
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return str(condition.status)
    return None


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.operator == "Exists":
        return not toleration.key or toleration.key == taint.key
    return toleration.key == taint.key and toleration.value == taint.value


def eviction_time(pod: Pod, taints: Sequence[core_pb2.Taint], default_seconds: int) -> float | None:
    """Wall-clock time at which `pod` must leave a node with these NoExecute taints.

    None: it tolerates them forever. A taint no toleration matches evicts at once, except the
    unreachable/not-ready taints, which untolerated pods tolerate for `default_seconds`.
    """
    due: float | None = None
    for taint in taints:
        added = podutil.seconds(taint.time_added) if taint.HasField("time_added") else time.time()
        matching = [t for t in pod.spec.tolerations if tolerates(t, taint)]
        if not matching:
            if taint.key not in (UNREACHABLE, NOT_READY):
                return added
            limit = added + default_seconds
        else:
            bounded = [t.toleration_seconds for t in matching if t.HasField("toleration_seconds")]
            if len(bounded) < len(matching):
                continue  # some toleration matches forever
            limit = added + max(min(bounded), 0)
        due = limit if due is None else min(due, limit)
    return due


class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def __init__(self, context: ControllerContext) -> None:
        super().__init__(context, workers=1)  # one periodic pass at a time
        self.nodes: Informer[Node] = context.informers.informer("Node")
        self.leases: Informer[coordination_pb2.Lease] = context.informers.informer("Lease")
        self.pods: Informer[Pod] = context.informers.informer("Pod")
        self._health: dict[str, _Health] = {}
        self._taint_limiter = RateLimit(
            qps=context.options.node_eviction_rate, burst=context.options.node_eviction_burst
        )
        rate = context.options.pod_eviction_rate
        self._eviction_limiter = RateLimit(qps=rate, burst=max(int(rate), 1))
        self.nodes.add_handler(on_delete=self._node_deleted)

    @property
    def informers(self) -> Sequence[Informer[Any]]:
        return (self.nodes, self.leases, self.pods)

    def _node_deleted(self, node: Node) -> None:
        self._health.pop(node.metadata.name, None)

    async def started(self) -> None:
        self.enqueue(MONITOR)

    async def sync(self, key: str) -> None:
        if key == MONITOR:
            try:
                await self._monitor()
            finally:
                self.enqueue_after(MONITOR, self.options.node_monitor_period)
        elif key.startswith(POD_PREFIX):
            pod = self.pods.store.get(key.removeprefix(POD_PREFIX))
            if pod is not None:
                node = self.nodes.store.get(pod.spec.node_name)
                if node is not None:
                    await self._maybe_evict(pod, self._no_execute_taints(node))

    # ------------------------------------------------------------------ health

    async def _monitor(self) -> None:
        now = time.monotonic()
        nodes = self.nodes.store.list()
        for node in nodes:
            if self._stale(node, now):
                await self._mark_unknown(node)
        nodes = self.nodes.store.list()
        unhealthy = [node for node in nodes if ready_status(node) != "True"]
        may_taint = (
            not nodes or len(unhealthy) / len(nodes) < self.options.unhealthy_nodes_threshold
        )
        for node in nodes:
            await self._reconcile_taints(node, may_taint=may_taint)
        for node in self.nodes.store.list():
            taints = self._no_execute_taints(node)
            if taints:
                for pod in self.pods.store.by_index(NODE_INDEX, node.metadata.name):
                    await self._maybe_evict(pod, taints)

    def _stale(self, node: Node, now: float) -> bool:
        name = node.metadata.name
        lease = self.leases.store.get_by_name(name, LEASE_NAMESPACE)
        heartbeat = max(
            (c.last_heartbeat_time.ToNanoseconds() for c in node.status.conditions),
            default=0,
        )
        renew = lease.spec.renew_time.ToNanoseconds() if lease is not None else 0
        signature = (renew, heartbeat)
        health = self._health.get(name)
        if health is None or health.signature != signature:
            self._health[name] = _Health(signature, now)
            return False
        status = ready_status(node)
        grace = (
            self.options.node_startup_grace_period
            if status is None
            else self.options.node_monitor_grace_period
        )
        return now - health.observed_at > grace and status != "Unknown"

    async def _mark_unknown(self, node: Node) -> None:
        updated = Node()
        updated.CopyFrom(node)
        now = datetime.now(UTC)
        conditions = list(updated.status.conditions)
        if not any(c.type == "Ready" for c in conditions):
            conditions.append(core_pb2.NodeCondition(type="Ready"))
        del updated.status.conditions[:]
        for condition in conditions:
            if condition.status != "Unknown":
                condition.status = "Unknown"
                condition.reason = "NodeStatusUnknown"
                condition.message = "Kubelet stopped posting node status."
                condition.last_transition_time.FromDatetime(now)
            updated.status.conditions.append(condition)
        try:
            await self.client.nodes.update_status(updated)
        except (NotFoundError, ConflictError):
            return  # gone, or the kubelet just wrote: look again next period
        log.info("node %s stopped reporting: Ready=Unknown", node.metadata.name)
        self.recorder.record(
            node, "Normal", "NodeNotReady", f"Node {node.metadata.name} status is now: NodeNotReady"
        )
        for pod in self.pods.store.by_index(NODE_INDEX, node.metadata.name):
            await self._mark_pod_not_ready(pod)

    async def _mark_pod_not_ready(self, pod: Pod) -> None:
        condition = podutil.ready_condition(pod)
        if condition is None or condition.status != "True":
            return
        updated = Pod()
        updated.CopyFrom(pod)
        for item in updated.status.conditions:
            if item.type == "Ready":
                item.status = "False"
                item.reason = "NodeNotReady"
                item.last_transition_time.FromDatetime(datetime.now(UTC))
        try:
            await self.client.pods.update_status(updated)
        except (NotFoundError, ConflictError):
            return

    # ------------------------------------------------------------------ taints

    @staticmethod
    def _no_execute_taints(node: Node) -> list[core_pb2.Taint]:
        return [taint for taint in node.spec.taints if taint.effect == NO_EXECUTE]

    async def _reconcile_taints(self, node: Node, *, may_taint: bool) -> None:
        """Make our taints match the Ready condition; NoExecute additions are rate-limited."""
        key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(ready_status(node) or "")
        wanted = {(key, NO_SCHEDULE), (key, NO_EXECUTE)} if key else set()
        present = {(t.key, t.effect) for t in node.spec.taints if t.key in CONDITION_TAINTS}
        adds_no_execute = any(effect == NO_EXECUTE for _, effect in wanted - present)
        if not may_taint:
            # Too many nodes unhealthy at once: evict nothing, and stop evictions under way.
            wanted = {taint for taint in wanted if taint[1] != NO_EXECUTE}
        elif adds_no_execute and not self._taint_limiter.try_take():
            # No token: the NoExecute taint waits for a later period.
            wanted = {taint for taint in wanted if taint[1] != NO_EXECUTE}
        if wanted == present:
            return
        updated = Node()
        updated.CopyFrom(node)
        del updated.spec.taints[:]
        now = datetime.now(UTC)
        for taint in node.spec.taints:
            if taint.key not in CONDITION_TAINTS or (taint.key, taint.effect) in wanted:
                updated.spec.taints.append(taint)  # kept as is, with its timeAdded
        for taint_key, effect in sorted(wanted - present):
            added = updated.spec.taints.add(key=taint_key, effect=effect)
            added.time_added.FromDatetime(now)
        try:
            await self.client.nodes.update(updated)
        except (NotFoundError, ConflictError):
            return
        log.info(
            "node %s taints: %s",
            node.metadata.name,
            ", ".join(f"{k}:{e}" for k, e in sorted(wanted)) or "none of ours",
        )

    # ------------------------------------------------------------------ evictions

    async def _maybe_evict(self, pod: Pod, taints: Sequence[core_pb2.Taint]) -> None:
        if not taints or pod.metadata.HasField("deletion_timestamp"):
            return
        due = eviction_time(pod, taints, self.options.default_toleration_seconds)
        if due is None:
            return
        key = POD_PREFIX + object_key(pod)
        wait = due - time.time()
        if wait > 0:
            self.enqueue_after(key, wait)
            return
        if not self._eviction_limiter.try_take():
            self.enqueue_after(key, 1.0 / self._eviction_limiter.qps)
            return
        try:
            await self.client.pods.delete(
                pod.metadata.name, namespace=pod.metadata.namespace, uid=pod.metadata.uid
            )
        except NotFoundError:
            return
        log.info("evicted pod %s from node %s", object_key(pod), pod.spec.node_name)
        self.recorder.record(
            pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {object_key(pod)}"
        )
