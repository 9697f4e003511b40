"""NodePorts: two pods cannot use the same hostPort (and protocol) on one node; a hostIP of
0.0.0.0 conflicts with every address. Skipped for pods without host ports."""

from __future__ import annotations

from bosun.scheduler.cache import BoolArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import SKIP, SUCCESS, CycleState, Status, per_node_mask
from bosun.scheduler.podinfo import PodInfo

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not any(node.port_in_use(port) for port in pod.host_ports)


class NodePorts:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        return SUCCESS if pod.host_ports else SKIP

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        return per_node_mask(slots, cache, lambda node: fits(pod, node))

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        return Status.unschedulable(REASON)
