"""DefaultPreemption (PostFilter): when a pod fits nowhere, find one node where evicting
lower-priority pods would make it fit, choosing the fewest and least important victims.

For each node whose rejection preemption could resolve (status Unschedulable, not
UnschedulableAndUnresolvable — a taint or a node selector is not fixed by evicting pods):

1. Remove, in the cache, every pod on it with a lower priority than the preemptor (pods whose
   binding is still in flight, and pods already terminating, are left alone) and run the
   filters on the node. No fit: the node is not a candidate.
2. Reprieve: put the removed pods back one at a time, most important first (higher priority,
   then older), keeping each one that still leaves room. The rest are the victims.

The chosen node minimises, in order: the highest victim priority, the number of victims, the
sum of their priorities. The scheduler evicts the victims (graceful delete) and nominates the
preemptor to the node (status.nominatedNodeName; the cache keeps its room from lower-priority
pods) and the preemptor is retried when the victims are gone.

A preemptor already nominated to a node where lower-priority pods are still terminating does
not preempt again: it waits for them (Kubernetes' PodEligibleToPreemptOthers). Pods with
`preemptionPolicy: Never` never preempt.

The cache's what-if removal is synchronous (see cache.without_pods), and each what-if runs
PreFilter again, so evicting a pod resolves resources and host ports as well as pod
anti-affinity and topology spread conflicts (Kubernetes' AddPod/RemovePod extensions, by
recomputation).
"""

from __future__ import annotations

from collections import Counter

from bosun.scheduler.cache import SchedulerCache
from bosun.scheduler.framework import (
    CycleState,
    Diagnosis,
    FilterRunner,
    PostFilterResult,
    Status,
    StatusCode,
    summarize,
)
from bosun.scheduler.podinfo import PodInfo

NAME = "DefaultPreemption"
MAX_CANDIDATES = 100


def _importance(pod: PodInfo) -> tuple[int, float]:
    created = pod.pod.metadata.creation_timestamp
    return (-pod.priority, created.seconds + created.nanos / 1e9)


def _no_candidates(diagnosis: Diagnosis, candidates: int) -> str:
    """Kubernetes' wording: `0/3 nodes are available: 1 No preemption victims found for
    incoming pod, 2 Preemption is not helpful for scheduling.`"""
    counts = Counter[str]()
    if candidates:
        counts["No preemption victims found for incoming pod"] = candidates
    unhelpful = len(diagnosis.node_statuses) - candidates
    if unhelpful:
        counts["Preemption is not helpful for scheduling"] = unhelpful
    return summarize(diagnosis.total_nodes, counts)


class DefaultPreemption:
    name = NAME

    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        cache: SchedulerCache,
        diagnosis: Diagnosis,
        framework: FilterRunner,
    ) -> tuple[PostFilterResult | None, Status]:
        if pod.pod.spec.preemption_policy == "Never":
            return None, Status.unschedulable("not eligible due to preemptionPolicy=Never.")
        if self._waiting_for_victims(pod, cache):
            return None, Status.unschedulable(
                "not eligible: pods on the nominated node are still terminating"
            )
        best: tuple[tuple[int, int, int], str, list[PodInfo]] | None = None
        candidates = [
            name
            for name, status in diagnosis.node_statuses.items()
            if status.code is StatusCode.UNSCHEDULABLE
        ]
        for name in candidates[:MAX_CANDIDATES]:
            victims = self._victims(pod, cache, name, framework)
            if victims is None:
                continue
            rank = (
                max(v.priority for v in victims) if victims else -(2**31),
                len(victims),
                sum(v.priority for v in victims),
            )
            if best is None or rank < best[0]:
                best = (rank, name, victims)
        if best is None:
            return None, Status.unschedulable(_no_candidates(diagnosis, len(candidates)))
        return PostFilterResult(best[1], tuple(best[2])), Status()

    @staticmethod
    def _waiting_for_victims(pod: PodInfo, cache: SchedulerCache) -> bool:
        nominated = cache.nominated_node_of(pod.key) or pod.pod.status.nominated_node_name
        node = cache.node(nominated) if nominated else None
        if node is None:
            return False
        return any(
            other.priority < pod.priority and other.pod.metadata.HasField("deletion_timestamp")
            for other in node.pods.values()
        )

    @staticmethod
    def _victims(
        pod: PodInfo, cache: SchedulerCache, name: str, framework: FilterRunner
    ) -> list[PodInfo] | None:
        node = cache.node(name)
        if node is None:
            return None
        lower = sorted(
            (
                other
                for other in node.pods.values()
                if other.priority < pod.priority
                and not cache.is_assumed(other.key)
                and not other.pod.metadata.HasField("deletion_timestamp")
            ),
            key=_importance,
        )
        if not lower:
            return None
        with cache.without_pods([p.key for p in lower]):
            if not framework.fits_on(pod, cache, node.slot):
                return None
        victims = list(lower)
        for candidate in lower:
            remaining = [v.key for v in victims if v is not candidate]
            with cache.without_pods(remaining):
                if framework.fits_on(pod, cache, node.slot):
                    victims.remove(candidate)
        return victims
