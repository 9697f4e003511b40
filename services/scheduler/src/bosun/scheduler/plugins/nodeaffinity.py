"""NodeAffinity: `nodeSelector` and required node affinity limit where a pod may run (Filter);
preferred node affinity terms add their weight to the nodes they match (Score).

Requirement operators: In, NotIn, Exists, DoesNotExist, Gt, Lt (Gt/Lt compare the label as an
integer; a label that is not an integer does not match). Terms are ORed, the expressions in a
term ANDed; a term with no expressions matches nothing. `matchFields` supports
`metadata.name` (In/NotIn), as Kubernetes does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bosun.api.v1 import core_pb2
from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import (
    SKIP,
    SUCCESS,
    CycleState,
    Status,
    normalize_scores,
    per_node_mask,
)
from bosun.scheduler.podinfo import PodInfo

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def requirement_matches(
    requirement: core_pb2.NodeSelectorRequirement, values: Mapping[str, str]
) -> bool:
    operator = requirement.operator
    present = requirement.key in values
    value = values.get(requirement.key, "")
    if operator == "In":
        return present and value in requirement.values
    if operator == "NotIn":
        return not present or value not in requirement.values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(requirement.values) != 1:
            return False
        mine, theirs = _as_int(value), _as_int(requirement.values[0])
        if mine is None or theirs is None:
            return False
        return mine > theirs if operator == "Gt" else mine < theirs
    return False


def term_matches(term: core_pb2.NodeSelectorTerm, node: NodeInfo) -> bool:
    if not term.match_expressions and not term.match_fields:
        return False
    fields = {"metadata.name": node.name}
    return all(requirement_matches(r, node.labels) for r in term.match_expressions) and all(
        requirement_matches(r, fields) for r in term.match_fields
    )


def terms_match(terms: Sequence[core_pb2.NodeSelectorTerm], node: NodeInfo) -> bool:
    return any(term_matches(term, node) for term in terms)


def required_matches(pod: core_pb2.Pod, node: NodeInfo) -> bool:
    """nodeSelector AND required node affinity (also used by PodTopologySpread)."""
    for key, value in pod.spec.node_selector.items():
        if node.labels.get(key) != value:
            return False
    affinity = pod.spec.affinity.node_affinity
    if affinity.HasField("required_during_scheduling_ignored_during_execution"):
        terms = affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
        return terms_match(terms, node)
    return True


def has_required(pod: core_pb2.Pod) -> bool:
    return bool(pod.spec.node_selector) or pod.spec.affinity.node_affinity.HasField(
        "required_during_scheduling_ignored_during_execution"
    )


class NodeAffinity:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        affinity = pod.pod.spec.affinity.node_affinity
        if not affinity.preferred_during_scheduling_ignored_during_execution:
            state.skip_score.add(NAME)
        return SUCCESS if has_required(pod.pod) else SKIP

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        return per_node_mask(slots, cache, lambda node: required_matches(pod.pod, node))

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        return Status.unschedulable(REASON, resolvable=False)

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        preferred = (
            pod.pod.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
        )
        scores = np.zeros(slots.size)
        for index, slot in enumerate(slots):
            node = cache.at(int(slot))
            scores[index] = sum(t.weight for t in preferred if term_matches(t.preference, node))
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        return normalize_scores(scores)
