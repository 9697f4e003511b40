"""InterPodAffinity: place a pod near (affinity) or away from (anti-affinity) other pods, by
topology domain (the value of a node label such as `kubernetes.io/hostname` or a zone).

PreFilter collects, over the pods in the cache, the topology domains (key, value) that matter:

* for each of the incoming pod's required affinity terms: the domains holding a matching pod;
* for its required anti-affinity terms: the domains holding a matching pod (forbidden);
* for every existing pod with a required anti-affinity term that matches the incoming pod:
  that pod's domain for the term's key (forbidden: "existing pods anti-affinity").

Filter then checks a node's labels against those sets. As in Kubernetes, when no pod in the
cluster matches the incoming pod's affinity terms but the pod matches them itself, it may go
anywhere (otherwise the first pod of a group that wants to be together could never start).

Score: preferred terms of the incoming pod (and, symmetrically, existing pods' preferred terms
that match the incoming pod) add (affinity) or subtract (anti-affinity) their weight for every
node in the domain of each matching pod; normalized min..max → 0..100.

Pods without any affinity terms skip Filter when no existing pod has required anti-affinity,
and skip Score when no existing pod has preferred terms: cost only for those who use it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    CycleState,
    Status,
    per_node_mask,
)
from bosun.scheduler.podinfo import AffinityTerm, PodInfo

NAME = "InterPodAffinity"
AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"

Domain = tuple[str, str]


@dataclass
class _FilterState:
    affinity: list[set[Domain]] = field(default_factory=list)  # one set per required term
    anti_affinity: set[Domain] = field(default_factory=set)
    existing_anti_affinity: set[Domain] = field(default_factory=set)
    affinity_matches_nobody: bool = False
    pod_matches_own_affinity: bool = False


def _pods_with_nodes(cache: SchedulerCache) -> Iterator[tuple[PodInfo, NodeInfo]]:
    for node in cache.nodes():
        for pod in node.pods.values():
            yield pod, node


def _domain(node: NodeInfo, key: str) -> Domain | None:
    value = node.labels.get(key)
    return None if value is None else (key, value)


class InterPodAffinity:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        namespaces = cache.namespace_labels
        existing = cache.pods_with_affinity
        if not (pod.preferred_affinity or pod.preferred_anti_affinity) and not any(
            p.preferred_affinity or p.preferred_anti_affinity for p in existing.values()
        ):
            state.skip_score.add(NAME)
        wants = pod.required_affinity or pod.required_anti_affinity
        existing_anti = [p for p in existing.values() if p.required_anti_affinity]
        if not wants and not existing_anti:
            return SKIP
        result = _FilterState(affinity=[set() for _ in pod.required_affinity])
        for other_key in [p.key for p in existing_anti]:
            other = existing[other_key]
            node_name = cache.node_of(other.key)
            node = cache.node(node_name) if node_name else None
            if node is None:
                continue
            for term in other.required_anti_affinity:
                if term.matches(pod, namespaces):
                    domain = _domain(node, term.topology_key)
                    if domain is not None:
                        result.existing_anti_affinity.add(domain)
        if wants:
            for other, node in _pods_with_nodes(cache):
                for index, term in enumerate(pod.required_affinity):
                    domain = _domain(node, term.topology_key)
                    if domain is not None and term.matches(other, namespaces):
                        result.affinity[index].add(domain)
                for term in pod.required_anti_affinity:
                    domain = _domain(node, term.topology_key)
                    if domain is not None and term.matches(other, namespaces):
                        result.anti_affinity.add(domain)
        result.affinity_matches_nobody = all(not found for found in result.affinity)
        result.pod_matches_own_affinity = all(
            t.matches(pod, namespaces) for t in pod.required_affinity
        )
        state[NAME] = result
        return SUCCESS

    def _reason(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> str | None:
        result: _FilterState = state[NAME]
        labels = node.labels
        for key, value in result.existing_anti_affinity:
            if labels.get(key) == value:
                return EXISTING_ANTI_AFFINITY_REASON
        for term in pod.required_anti_affinity:
            domain = _domain(node, term.topology_key)
            if domain is not None and domain in result.anti_affinity:
                return ANTI_AFFINITY_REASON
        if pod.required_affinity:
            if result.affinity_matches_nobody and result.pod_matches_own_affinity:
                if all(_domain(node, t.topology_key) for t in pod.required_affinity):
                    return None
                return AFFINITY_REASON
            for index, term in enumerate(pod.required_affinity):
                domain = _domain(node, term.topology_key)
                if domain is None or domain not in result.affinity[index]:
                    return AFFINITY_REASON
        return None

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        return per_node_mask(slots, cache, lambda node: self._reason(state, pod, node) is None)

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        reason = self._reason(state, pod, node)
        if reason is None:
            return Status()
        # Anti-affinity can be resolved by evicting the pods that cause it; affinity cannot.
        return Status.unschedulable(reason, resolvable=reason != AFFINITY_REASON)

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        weights: Counter[Domain] = Counter()
        namespaces = cache.namespace_labels

        def add(
            terms: tuple[AffinityTerm, ...], target: PodInfo, node: NodeInfo, sign: int
        ) -> None:
            for term in terms:
                domain = _domain(node, term.topology_key)
                if domain is not None and term.matches(target, namespaces):
                    weights[domain] += sign * term.weight

        mine = pod.preferred_affinity or pod.preferred_anti_affinity
        for other, node in _pods_with_nodes(cache):
            if mine:
                add(pod.preferred_affinity, other, node, 1)
                add(pod.preferred_anti_affinity, other, node, -1)
            if other.preferred_affinity or other.preferred_anti_affinity:
                add(other.preferred_affinity, pod, node, 1)
                add(other.preferred_anti_affinity, pod, node, -1)
        scores = np.zeros(slots.size)
        if not weights:
            return scores
        for index, slot in enumerate(slots):
            labels = cache.at(int(slot)).labels
            scores[index] = sum(
                weight for (key, value), weight in weights.items() if labels.get(key) == value
            )
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        if scores.size == 0:
            return scores
        low, high = float(scores.min()), float(scores.max())
        if high == low:
            return np.zeros(scores.size)
        normalized: FloatArray = np.floor(MAX_NODE_SCORE * (scores - low) / (high - low))
        return normalized
