"""PodTopologySpread: keep matching pods spread evenly over topology domains.

For each constraint (topologyKey, maxSkew, labelSelector) PreFilter counts, per domain (a value
of the topology label), the pods in the incoming pod's namespace that the selector matches, over
the nodes that have the label and that the pod's nodeSelector/required node affinity allows
(Kubernetes' nodeAffinityPolicy: Honor). Then:

* Filter (whenUnsatisfiable: DoNotSchedule): placing the pod on a node must keep
  count(node's domain) + 1 - min(count over domains) ≤ maxSkew (the +1 only when the pod
  matches its own selector). A node without the topology label is rejected. With
  `minDomains` set and fewer domains than that, the global minimum counts as 0.
* Score (whenUnsatisfiable: ScheduleAnyway): fewer matching pods in the node's domains is
  better; normalized so the emptiest node gets 100.

Pods without constraints of a kind skip that half (PreFilter Skip / no score).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from bosun.api.v1 import core_pb2
from bosun.common.selectors import LabelSelector
from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    CycleState,
    Status,
    per_node_mask,
)
from bosun.scheduler.plugins.nodeaffinity import required_matches
from bosun.scheduler.podinfo import PodInfo

NAME = "PodTopologySpread"
REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


@dataclass(frozen=True)
class _Constraint:
    topology_key: str
    max_skew: int
    selector: LabelSelector | None
    min_domains: int
    self_match: int
    counts: Counter[str]

    @property
    def minimum(self) -> int:
        if not self.counts or len(self.counts) < self.min_domains:
            return 0
        return min(self.counts.values())


def _build(
    constraints: list[core_pb2.TopologySpreadConstraint], pod: PodInfo, cache: SchedulerCache
) -> list[_Constraint]:
    parsed = []
    for constraint in constraints:
        selector = (
            LabelSelector.from_proto(constraint.label_selector)
            if constraint.HasField("label_selector")
            else None
        )
        parsed.append((constraint, selector, Counter[str]()))
    for node in cache.nodes():
        if not required_matches(pod.pod, node):
            continue
        for constraint, selector, counts in parsed:
            domain = node.labels.get(constraint.topology_key)
            if domain is None:
                continue
            counts[domain] += sum(
                1
                for other in node.pods.values()
                if selector is not None
                and other.namespace == pod.namespace
                and not other.pod.metadata.HasField("deletion_timestamp")
                and selector.matches(other.labels)
            )
    return [
        _Constraint(
            topology_key=constraint.topology_key,
            max_skew=max(int(constraint.max_skew), 1),
            selector=selector,
            min_domains=int(constraint.min_domains) if constraint.HasField("min_domains") else 1,
            self_match=int(selector is not None and selector.matches(pod.labels)),
            counts=counts,
        )
        for constraint, selector, counts in parsed
    ]


def _constraints(pod: PodInfo, kind: str) -> list[core_pb2.TopologySpreadConstraint]:
    return [
        c
        for c in pod.pod.spec.topology_spread_constraints
        if (c.when_unsatisfiable or "DoNotSchedule") == kind
    ]


class PodTopologySpread:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        soft = _constraints(pod, "ScheduleAnyway")
        if soft:
            state[f"{NAME}/score"] = _build(soft, pod, cache)
        else:
            state.skip_score.add(NAME)
        hard = _constraints(pod, "DoNotSchedule")
        if not hard:
            return SKIP
        state[NAME] = _build(hard, pod, cache)
        return SUCCESS

    def _reason(self, state: CycleState, node: NodeInfo) -> str | None:
        constraints: list[_Constraint] = state[NAME]
        for constraint in constraints:
            domain = node.labels.get(constraint.topology_key)
            if domain is None:
                return MISSING_LABEL
            skew = constraint.counts[domain] + constraint.self_match - constraint.minimum
            if skew > constraint.max_skew:
                return REASON
        return None

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        return per_node_mask(slots, cache, lambda node: self._reason(state, node) is None)

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        reason = self._reason(state, node)
        if reason is None:
            return Status()
        return Status.unschedulable(reason, resolvable=reason != MISSING_LABEL)

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        constraints: list[_Constraint] = state.get(f"{NAME}/score", [])
        scores = np.full(slots.size, np.nan)
        for index, slot in enumerate(slots):
            node = cache.at(int(slot))
            total = 0.0
            for constraint in constraints:
                domain = node.labels.get(constraint.topology_key)
                if domain is None:
                    break
                total += constraint.counts[domain] * np.log(len(constraint.counts) + 2)
            else:
                scores[index] = total
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        """Fewest matching pods → 100, most → 0; nodes missing a topology label (NaN) → 0."""
        known = ~np.isnan(scores)
        result = np.zeros(scores.size)
        if not known.any():
            return result
        low, high = scores[known].min(), scores[known].max()
        if high == low:
            result[known] = MAX_NODE_SCORE
        else:
            result[known] = np.floor(MAX_NODE_SCORE * (high - scores[known]) / (high - low))
        return result
