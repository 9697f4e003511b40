"""TaintToleration: a node's NoSchedule/NoExecute taints keep off pods that do not tolerate
them (Filter); PreferNoSchedule taints only lower the node's score (Score).

Filter is vectorised over the cache's `tainted` column: untainted nodes pass without a look;
only tainted nodes are checked one by one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from bosun.api.v1 import core_pb2
from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import CycleState, Status, normalize_scores
from bosun.scheduler.podinfo import PodInfo

NAME = "TaintToleration"
_FILTER_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


def tolerates(toleration: core_pb2.Toleration, taint: core_pb2.Taint) -> bool:
    """Kubernetes' Toleration.ToleratesTaint."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and toleration.value == taint.value


def untolerated(
    taints: Iterable[core_pb2.Taint],
    tolerations: Iterable[core_pb2.Toleration],
    effects: frozenset[str],
) -> list[core_pb2.Taint]:
    tolerations = list(tolerations)
    return [
        taint
        for taint in taints
        if taint.effect in effects and not any(tolerates(t, taint) for t in tolerations)
    ]


class TaintToleration:
    name = NAME

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        mask: BoolArray = ~cache.tainted[slots]
        tolerations = pod.pod.spec.tolerations
        for index in np.flatnonzero(~mask):
            node = cache.at(int(slots[index])).node
            assert node is not None
            mask[index] = not untolerated(node.spec.taints, tolerations, _FILTER_EFFECTS)
        return mask

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        assert node.node is not None
        bad = untolerated(node.node.spec.taints, pod.pod.spec.tolerations, _FILTER_EFFECTS)
        if not bad:
            return Status()
        taint = bad[0]
        return Status.unschedulable(
            f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}", resolvable=False
        )

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        scores = np.zeros(slots.size)
        soft = np.flatnonzero(cache.prefer_no_schedule[slots])
        if soft.size == 0:
            return scores
        tolerations = [t for t in pod.pod.spec.tolerations if t.effect in ("", "PreferNoSchedule")]
        for index in soft:
            node = cache.at(int(slots[index])).node
            assert node is not None
            scores[index] = len(
                untolerated(node.spec.taints, tolerations, frozenset({"PreferNoSchedule"}))
            )
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        return normalize_scores(scores, reverse=True)
