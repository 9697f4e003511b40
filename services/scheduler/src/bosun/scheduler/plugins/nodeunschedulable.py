"""NodeUnschedulable: a cordoned node (spec.unschedulable) takes no new pods, unless the pod
tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint. Vectorised on the cache's
`unschedulable` column."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.scheduler.cache import BoolArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import CycleState, Status, full_mask
from bosun.scheduler.plugins.tainttoleration import tolerates
from bosun.scheduler.podinfo import PodInfo

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
_UNSCHEDULABLE_TAINT = core_pb2.Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeUnschedulable:
    name = NAME

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        if any(tolerates(t, _UNSCHEDULABLE_TAINT) for t in pod.pod.spec.tolerations):
            return full_mask(slots.size)
        mask: BoolArray = ~cache.unschedulable[slots]
        return mask

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        return Status.unschedulable(REASON, resolvable=False)
