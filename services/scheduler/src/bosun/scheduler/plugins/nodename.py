"""NodeName: a pod that names a node (spec.nodeName) fits only that node."""

from __future__ import annotations

import numpy as np

from bosun.scheduler.cache import BoolArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import SKIP, SUCCESS, CycleState, Status
from bosun.scheduler.podinfo import PodInfo

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        return SUCCESS if pod.pod.spec.node_name else SKIP

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        wanted = cache.node(pod.pod.spec.node_name)
        return slots == wanted.slot if wanted is not None else np.zeros(slots.size, dtype=np.bool_)

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        return Status.unschedulable(REASON, resolvable=False)
