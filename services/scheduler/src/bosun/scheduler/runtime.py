"""Framework: one profile's plugins per extension point, and the scheduling algorithm over them.

`schedule(pod)` is kube-scheduler's `schedulePod`: PreFilter, Filter over every node (batched,
see framework.py), then Score over at most `nodes_to_score` of the feasible nodes, and the
highest total wins (ties broken at random so equal nodes share the load).

How many nodes are scored is Kubernetes' adaptive `percentageOfNodesToScore`: with the
percentage unset (0) it is 50% - nodes/125, but at least 5%, and never fewer than 100 nodes.
Kubernetes also *stops filtering* once it has that many feasible nodes; here filtering is a
vector operation over all nodes and costs little more than filtering a slice, so every node is
filtered and the scored sample is taken from the feasible ones, starting where the previous
cycle's sample ended (so, as in Kubernetes, successive pods look at different nodes).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bosun.scheduler.cache import IntArray, SchedulerCache
from bosun.scheduler.framework import (
    BindPlugin,
    CycleState,
    Diagnosis,
    FilterPlugin,
    PostFilterPlugin,
    PostFilterResult,
    PreFilterPlugin,
    ReservePlugin,
    ScorePlugin,
    Status,
    StatusCode,
)
from bosun.scheduler.podinfo import PodInfo

__all__ = ["FitError", "Framework", "ScheduleResult", "nodes_to_score"]

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5


def nodes_to_score(total: int, percentage: int = 0) -> int:
    """Kubernetes' numFeasibleNodesToFind."""
    if total < MIN_FEASIBLE_NODES_TO_FIND:
        return total
    if percentage <= 0:
        percentage = max(MIN_FEASIBLE_NODES_PERCENTAGE, 50 - total // 125)
    if percentage >= 100:
        return total
    return max(MIN_FEASIBLE_NODES_TO_FIND, total * percentage // 100)


class FitError(Exception):
    """No node can run the pod; `diagnosis` says why, node by node."""

    def __init__(self, pod: PodInfo, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message())
        self.pod = pod
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int


@dataclass
class Framework:
    """The plugins of one profile, in order, per extension point; `weights` for Score."""

    pre_filter: Sequence[PreFilterPlugin] = ()
    filter: Sequence[FilterPlugin] = ()
    post_filter: Sequence[PostFilterPlugin] = ()
    score: Sequence[ScorePlugin] = ()
    reserve: Sequence[ReservePlugin] = ()
    bind: Sequence[BindPlugin] = ()
    weights: dict[str, int] = field(default_factory=dict)
    percentage_of_nodes_to_score: int = 0
    rng: random.Random = field(default_factory=random.Random)
    _next_start: int = 0

    # ------------------------------------------------------------------ filtering

    def run_pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        for plugin in self.pre_filter:
            status = plugin.pre_filter(state, pod, cache)
            if status.is_skip:
                state.skip_filter.add(plugin.name)
            elif not status.is_success:
                return status.with_plugin(plugin.name)
        return Status()

    def find_feasible(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> tuple[IntArray, list[tuple[FilterPlugin, IntArray]]]:
        """The slots that pass every filter, and per filter the slots it rejected (a node is
        rejected by the first filter that fails it, as in Kubernetes)."""
        rejected: list[tuple[FilterPlugin, IntArray]] = []
        for plugin in self.filter:
            if plugin.name in state.skip_filter or slots.size == 0:
                continue
            mask = plugin.filter(state, pod, cache, slots)
            if not mask.all():
                rejected.append((plugin, slots[~mask]))
                slots = slots[mask]
        return slots, rejected

    def diagnose(
        self,
        state: CycleState,
        pod: PodInfo,
        cache: SchedulerCache,
        rejected: list[tuple[FilterPlugin, IntArray]],
        total: int,
    ) -> Diagnosis:
        statuses: dict[str, Status] = {}
        for plugin, slots in rejected:
            for slot in slots:
                node = cache.at(int(slot))
                status = plugin.explain(state, pod, cache, node)
                statuses[node.name] = status.with_plugin(plugin.name)
        return Diagnosis(total_nodes=total, node_statuses=statuses)

    def fits_on(self, pod: PodInfo, cache: SchedulerCache, slot: int) -> bool:
        """Whether `pod` passes PreFilter and every filter on one node, as the cache is now
        (preemption's what-ifs: PreFilter runs again, so topology spread counts and pod
        affinity domains reflect the pods the what-if removed)."""
        state = CycleState()
        if not self.run_pre_filter(state, pod, cache).is_success:
            return False
        feasible, _ = self.find_feasible(state, pod, cache, np.array([slot], dtype=np.intp))
        return feasible.size == 1

    # ------------------------------------------------------------------ scoring

    def run_score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> np.ndarray:  # type: ignore[type-arg]
        total = np.zeros(slots.size)
        for plugin in self.score:
            if plugin.name in state.skip_score:
                continue
            weight = self.weights.get(plugin.name, 1)
            if weight == 0:
                continue
            raw = plugin.score(state, pod, cache, slots)
            total += weight * plugin.normalize(raw)
        return total

    def _sample(self, feasible: IntArray, limit: int) -> IntArray:
        if feasible.size <= limit:
            return feasible
        start = self._next_start % feasible.size
        self._next_start = start + limit
        sample = feasible[start : start + limit]
        if sample.size < limit:
            sample = np.concatenate((sample, feasible[: limit - sample.size]))
        return sample

    # ------------------------------------------------------------------ the algorithm

    def schedule(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> ScheduleResult:
        """Choose a node for `pod`; FitError when there is none. Synchronous: see cache.py."""
        slots = cache.live_slots()
        total = int(slots.size)
        if total == 0:
            raise FitError(pod, Diagnosis(total_nodes=0))
        status = self.run_pre_filter(state, pod, cache)
        if not status.is_success:
            raise FitError(pod, Diagnosis(total_nodes=total, pre_filter=status))
        feasible, rejected = self.find_feasible(state, pod, cache, slots)
        if feasible.size == 0:
            raise FitError(pod, self.diagnose(state, pod, cache, rejected, total))
        if feasible.size == 1:
            return ScheduleResult(cache.at(int(feasible[0])).name, total, 1)
        sample = self._sample(feasible, nodes_to_score(total, self.percentage_of_nodes_to_score))
        scores = self.run_score(state, pod, cache, sample)
        best = np.flatnonzero(scores == scores.max())
        chosen = int(sample[best[self.rng.randrange(best.size)]])
        return ScheduleResult(cache.at(chosen).name, total, int(feasible.size))

    # ------------------------------------------------------------------ after filtering

    def run_post_filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, diagnosis: Diagnosis
    ) -> tuple[PostFilterResult | None, Status]:
        last = Status.unschedulable()
        for plugin in self.post_filter:
            result, status = plugin.post_filter(state, pod, cache, diagnosis, self)
            if result is not None:
                return result, status.with_plugin(plugin.name)
            last = status.with_plugin(plugin.name)
        return None, last

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for index, plugin in enumerate(self.reserve):
            status = plugin.reserve(state, pod, node)
            if not status.is_success:
                for done in reversed(self.reserve[: index + 1]):
                    done.unreserve(state, pod, node)
                return status.with_plugin(plugin.name)
        return Status()

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(self.reserve):
            plugin.unreserve(state, pod, node)

    async def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for plugin in self.bind:
            status = await plugin.bind(state, pod, node)
            if not status.is_skip:
                return status.with_plugin(plugin.name)
        return Status(StatusCode.ERROR, ("no bind plugin bound the pod",))
