"""NodeResourcesFit (Filter + Score) and NodeResourcesBalancedAllocation (Score).

Fit: a pod fits when, for every resource it requests (cpu, memory, ephemeral-storage) and for
the pod count, requested-on-node + pod-request ≤ allocatable. One vector comparison over the
cache's `requested`/`allocatable` columns for all candidate nodes. Pods nominated to a node by
preemption, with at least the incoming pod's priority, count as if they were there already, so
a lower-priority pod cannot take the room a preemptor is waiting for.

Scoring strategies (pluginConfig args `scoringStrategy: {type: LeastAllocated|MostAllocated,
resources: [{name: cpu, weight: 1}, ...]}`), on the "non-zero" requests (see resources.py):

    LeastAllocated  Σ w·(allocatable - requested)/allocatable · 100 / Σ w   (spread pods out)
    MostAllocated   Σ w·requested/allocatable · 100 / Σ w                    (pack pods tightly)

BalancedAllocation: 100 · (1 - standard deviation of requested/allocatable over cpu and
memory), so nodes whose cpu and memory fill up evenly are preferred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.framework import MAX_NODE_SCORE, CycleState, Status
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.resources import CPU, MEMORY, NAMES, PODS

FIT = "NodeResourcesFit"
BALANCED = "NodeResourcesBalancedAllocation"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"


class ArgsError(ValueError):
    """Invalid plugin arguments; the message names the field."""


def _nominated_extra(pod: PodInfo, cache: SchedulerCache, slots: IntArray) -> FloatArray | None:
    if not cache.nominated:
        return None
    extra = np.zeros((slots.size, len(NAMES)))
    position = {int(slot): index for index, slot in enumerate(slots)}
    for node_name, pods in cache.nominated.items():
        node = cache.node(node_name)
        if node is None or node.slot not in position:
            continue
        for key, other in pods.items():
            if key != pod.key and other.priority >= pod.priority:
                extra[position[node.slot]] += other.requests
    return extra


def _shortfalls(pod: PodInfo, requested: FloatArray, allocatable: FloatArray) -> BoolArray:
    """Per node and resource: does the pod not fit? (Only resources the pod asks for.)"""
    asked = pod.requests > 0
    asked[PODS] = True
    over: BoolArray = (requested + pod.requests > allocatable) & asked
    return over


class NodeResourcesFit:
    name = FIT

    def __init__(self, args: Mapping[str, Any] | None = None) -> None:
        strategy = dict((args or {}).get("scoringStrategy") or {})
        self.strategy = strategy.get("type", LEAST_ALLOCATED)
        if self.strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ArgsError(
                f"scoringStrategy.type: unsupported value {self.strategy!r} "
                f"(expected {LEAST_ALLOCATED} or {MOST_ALLOCATED})"
            )
        resources = strategy.get("resources") or [
            {"name": "cpu", "weight": 1},
            {"name": "memory", "weight": 1},
        ]
        self.weights = np.zeros(len(NAMES))
        for index, resource in enumerate(resources):
            name = resource.get("name") if isinstance(resource, Mapping) else None
            if name not in NAMES:
                raise ArgsError(
                    f"scoringStrategy.resources[{index}].name: unsupported resource {name!r} "
                    f"(expected one of {', '.join(NAMES)})"
                )
            self.weights[NAMES.index(name)] = float(resource.get("weight", 1))
        self._scored = [int(r) for r in np.flatnonzero(self.weights > 0)]
        self._weight_sum = float(self.weights.sum()) or 1.0

    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        if not cache.nominated:
            # The common case: one contiguous comparison per requested resource over every
            # slot, then pick the candidates (cheaper than gathering their rows first).
            fits: BoolArray = cache.free[PODS] >= pod.requests[PODS]
            for index in np.flatnonzero(pod.requests[:PODS] > 0):
                fits &= cache.free[index] >= pod.requests[index]
            return fits[slots]
        requested = cache.requested[slots]
        extra = _nominated_extra(pod, cache, slots)
        if extra is not None:
            requested = requested + extra
        over = _shortfalls(pod, requested, cache.allocatable[slots])
        return np.logical_not(over.any(axis=1))

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        slots = np.array([node.slot], dtype=np.intp)
        requested = cache.requested[slots]
        extra = _nominated_extra(pod, cache, slots)
        if extra is not None:
            requested = requested + extra
        over = _shortfalls(pod, requested, cache.allocatable[slots])[0]
        reasons = tuple(
            "Too many pods" if index == PODS else f"Insufficient {NAMES[index]}"
            for index in np.flatnonzero(over)
        )
        return Status.unschedulable(*reasons)

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        total = np.zeros(slots.size)
        for resource in self._scored:
            weight = self.weights[resource]
            capacity = cache.allocatable_rows[resource][slots]
            taken = cache.nonzero_rows[resource][slots] + pod.nonzero_requests[resource]
            with np.errstate(divide="ignore", invalid="ignore"):
                if self.strategy == LEAST_ALLOCATED:
                    fraction = np.where(
                        (capacity > 0) & (taken <= capacity), (capacity - taken) / capacity, 0.0
                    )
                else:
                    fraction = np.where(capacity > 0, np.minimum(taken, capacity) / capacity, 0.0)
            total += weight * fraction
        scores: FloatArray = np.floor(total * MAX_NODE_SCORE / self._weight_sum)
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        return scores


class NodeResourcesBalancedAllocation:
    name = BALANCED

    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        fractions = []
        for resource in (CPU, MEMORY):
            capacity = cache.allocatable_rows[resource][slots]
            taken = cache.nonzero_rows[resource][slots] + pod.nonzero_requests[resource]
            with np.errstate(divide="ignore", invalid="ignore"):
                fractions.append(np.where(capacity > 0, np.minimum(taken / capacity, 1.0), 1.0))
        std = np.abs(fractions[0] - fractions[1]) / 2
        scores: FloatArray = np.floor((1.0 - std) * MAX_NODE_SCORE)
        return scores

    def normalize(self, scores: FloatArray) -> FloatArray:
        return scores
