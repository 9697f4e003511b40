"""The scheduling framework: plugin protocols, statuses, and the Framework that runs a profile.

As kube-scheduler's `pkg/scheduler/framework`, a scheduling cycle passes one pod through
extension points, each a list of small plugins:

    PreFilter  once per pod: precompute, or say the pod is unschedulable, or Skip (the plugin's
               Filter has nothing to check for this pod and is not run)
    Filter     which nodes can run the pod
    PostFilter only when no node can: try to make one (preemption)
    Score      rank the feasible nodes; each plugin's scores are normalized to 0..100 and
               multiplied by the plugin's weight, then summed
    Reserve    the node is chosen; Unreserve undoes it when a later step fails
    Bind       write the decision (the first binder that does not Skip decides)

A plugin never raises to say "no": it returns a Status with a code and reasons. The reasons of
all rejected nodes make up the FailedScheduling message ("0/5 nodes are available: 3
Insufficient cpu, 2 node(s) had untolerated taint {key: v}.").

Filter and Score are *batched*: a plugin gets the candidate node slots as a numpy array and
answers for all of them at once (a mask, a score vector), so the common plugins are vector
operations over the cache's node columns rather than Python loops over thousands of nodes.
`explain` gives the reasons for one rejected node and is called only to build the message
when the pod fits nowhere. Plugins that must look at each node (ports, pod affinity, topology
spread) use PreFilter Skip so that they cost nothing for pods that do not use the feature.

Concurrency: everything here except Bind is synchronous and runs inside one scheduling cycle
on the event loop's thread; see cache.py for why that keeps the cache consistent.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bosun.scheduler.cache import BoolArray, FloatArray, IntArray, NodeInfo, SchedulerCache
from bosun.scheduler.podinfo import PodInfo

__all__ = [
    "MAX_NODE_SCORE",
    "SKIP",
    "SUCCESS",
    "BindPlugin",
    "CycleState",
    "Diagnosis",
    "FilterPlugin",
    "FilterRunner",
    "Plugin",
    "PostFilterPlugin",
    "PostFilterResult",
    "PreFilterPlugin",
    "ReservePlugin",
    "ScorePlugin",
    "Status",
    "StatusCode",
    "full_mask",
    "normalize_scores",
    "per_node_mask",
    "summarize",
]

MAX_NODE_SCORE = 100.0


class StatusCode(enum.Enum):
    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"  # preemption might help
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"  # preemption cannot help
    ERROR = "Error"
    SKIP = "Skip"


@dataclass(frozen=True)
class Status:
    code: StatusCode = StatusCode.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""
    cause: BaseException | None = field(default=None, compare=False)  # for ERROR statuses

    @property
    def is_success(self) -> bool:
        return self.code is StatusCode.SUCCESS

    @property
    def is_skip(self) -> bool:
        return self.code is StatusCode.SKIP

    @classmethod
    def unschedulable(cls, *reasons: str, resolvable: bool = True) -> Status:
        code = StatusCode.UNSCHEDULABLE if resolvable else StatusCode.UNSCHEDULABLE_AND_UNRESOLVABLE
        return cls(code, reasons)

    @classmethod
    def error(cls, message: str, cause: BaseException | None = None) -> Status:
        return cls(StatusCode.ERROR, (message,), cause=cause)

    def with_plugin(self, plugin: str) -> Status:
        return Status(self.code, self.reasons, plugin, self.cause)


SUCCESS = Status()
SKIP = Status(StatusCode.SKIP)


class CycleState(dict[str, Any]):
    """Per-cycle scratch space, keyed by plugin name (PreFilter results for Filter/Score)."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, cache: SchedulerCache) -> Status:
        """Success, Skip (this plugin's Filter is not needed for `pod`) or a rejection."""
        ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> BoolArray:
        """For each node slot in `slots`, whether the pod may run there."""
        ...

    def explain(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, node: NodeInfo
    ) -> Status:
        """Why `node` was rejected (called only for nodes `filter` rejected)."""
        ...


@dataclass(frozen=True)
class Diagnosis:
    """Why a pod fit nowhere: the rejection Status of each rejected node, by node name."""

    total_nodes: int
    node_statuses: dict[str, Status] = field(default_factory=dict)
    pre_filter: Status | None = None

    def reason_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        if self.pre_filter is not None:
            for reason in self.pre_filter.reasons:
                counts[reason] += self.total_nodes
            return counts
        for status in self.node_statuses.values():
            for reason in status.reasons:
                counts[reason] += 1
        return counts

    def message(self) -> str:
        return summarize(self.total_nodes, self.reason_counts())


@dataclass(frozen=True)
class PostFilterResult:
    """A node made available for the pod (preemption): evict `victims`, nominate the pod."""

    nominated_node: str
    victims: tuple[PodInfo, ...] = ()


class FilterRunner(Protocol):
    """What PostFilter may ask of the framework: would the pod fit this node (what-ifs)?"""

    def fits_on(self, pod: PodInfo, cache: SchedulerCache, slot: int) -> bool: ...


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(
        self,
        state: CycleState,
        pod: PodInfo,
        cache: SchedulerCache,
        diagnosis: Diagnosis,
        framework: FilterRunner,
    ) -> tuple[PostFilterResult | None, Status]: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(
        self, state: CycleState, pod: PodInfo, cache: SchedulerCache, slots: IntArray
    ) -> FloatArray:
        """A raw score per node slot in `slots` (normalized afterwards)."""
        ...

    def normalize(self, scores: FloatArray) -> FloatArray:
        """Map raw scores to 0..MAX_NODE_SCORE (return them as they are if already there)."""
        ...


@runtime_checkable
class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None: ...


@runtime_checkable
class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        """Success, Skip (let the next binder decide), or a failure."""
        ...


def normalize_scores(scores: FloatArray, *, reverse: bool = False) -> FloatArray:
    """Kubernetes' DefaultNormalizeScore: scale so the highest is MAX_NODE_SCORE (reverse:
    the highest raw score becomes 0). All zeros stay zeros (or all MAX when reversed)."""
    if scores.size == 0:
        return scores
    top = float(scores.max())
    if top <= 0:
        return np.full_like(scores, MAX_NODE_SCORE) if reverse else np.zeros_like(scores)
    scaled: FloatArray = scores * (MAX_NODE_SCORE / top)
    return MAX_NODE_SCORE - scaled if reverse else scaled


def full_mask(n: int) -> BoolArray:
    return np.ones(n, dtype=np.bool_)


def per_node_mask(
    slots: IntArray, cache: SchedulerCache, check: Callable[[NodeInfo], bool]
) -> BoolArray:
    """A filter mask from a per-node predicate (for plugins whose check cannot be vectorised;
    they use PreFilter Skip so that it runs only for pods that need it)."""
    return np.fromiter((check(cache.at(int(s))) for s in slots), dtype=np.bool_, count=slots.size)


def summarize(total_nodes: int, counts: Counter[str]) -> str:
    """`0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {key: v}.`
    — most frequent reason first, ties alphabetically."""
    head = f"0/{total_nodes} nodes are available"
    if not counts:
        return f"{head}."
    parts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return f"{head}: " + ", ".join(f"{n} {reason}" for reason, n in parts) + "."
