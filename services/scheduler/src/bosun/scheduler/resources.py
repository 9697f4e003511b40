"""Resource vectors: what a pod requests and what a node offers, as fixed-order numbers.

Every resource the scheduler accounts for has a column: cpu (millicores), memory (bytes),
ephemeral-storage (bytes) and pods (count). A pod's request is computed once, the way
Kubernetes' `resource.PodRequests` does: for each resource, the larger of the sum over the app
containers and the largest single init container (init containers run one at a time before the
app containers, so the pod needs room for whichever phase is bigger). Every pod asks for one
"pods" slot.

Scoring uses the "non-zero" request instead: a container without a cpu or memory request is
counted as 100m cpu / 200Mi memory (Kubernetes' DefaultMilliCPURequest, DefaultMemoryRequest),
so that many request-less pods do not all pile onto one node that looks empty.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import numpy.typing as npt

from bosun.api.v1 import core_pb2
from bosun.common.quantity import QuantityError, milli_value, value

__all__ = [
    "CPU",
    "EPHEMERAL_STORAGE",
    "MEMORY",
    "NAMES",
    "PODS",
    "Vector",
    "node_allocatable",
    "pod_nonzero_requests",
    "pod_requests",
]

Vector = npt.NDArray[np.float64]

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = range(4)
NAMES = ("cpu", "memory", "ephemeral-storage", "pods")
DEFAULT_MILLI_CPU_REQUEST = 100.0
DEFAULT_MEMORY_REQUEST = 200.0 * 1024 * 1024


@functools.lru_cache(maxsize=4096)
def _amount(name: str, text: str) -> float:
    """A quantity in the column's unit; malformed text counts as 0 (the apiserver validates).
    Memoized: a cluster's pods repeat a handful of quantity strings, and parsing them exactly
    (fractions) is the costliest part of reading a pod."""
    try:
        return float(milli_value(text) if name == "cpu" else value(text))
    except QuantityError:
        return 0.0


def _container_requests(requests: Mapping[str, str]) -> Vector:
    vector = np.zeros(len(NAMES))
    for index, name in enumerate(NAMES[:PODS]):
        text = requests.get(name)
        if text:
            vector[index] = _amount(name, text)
    return vector


def _combine(app: Iterable[Vector], init: Iterable[Vector]) -> Vector:
    total = np.zeros(len(NAMES))
    for vector in app:
        total += vector
    for vector in init:
        np.maximum(total, vector, out=total)
    return total


def _pod_total(pod: core_pb2.Pod, per_container: Callable[[Mapping[str, str]], Vector]) -> Vector:
    spec = pod.spec
    total = _combine(
        (per_container(c.resources.requests) for c in spec.containers),
        (per_container(c.resources.requests) for c in spec.init_containers),
    )
    total[PODS] = 1.0
    return total


def pod_requests(pod: core_pb2.Pod) -> Vector:
    """max(sum(app containers), max(init containers)) per resource, plus one pod slot."""
    return _pod_total(pod, _container_requests)


def _nonzero(requests: Mapping[str, str]) -> Vector:
    vector = _container_requests(requests)
    if "cpu" not in requests:
        vector[CPU] = DEFAULT_MILLI_CPU_REQUEST
    if "memory" not in requests:
        vector[MEMORY] = DEFAULT_MEMORY_REQUEST
    return vector


def pod_nonzero_requests(pod: core_pb2.Pod) -> Vector:
    """As pod_requests, with defaults for missing cpu/memory requests (for scoring only)."""
    return _pod_total(pod, _nonzero)


def node_allocatable(node: core_pb2.Node) -> Vector:
    """The node's allocatable (capacity where allocatable is not reported) as a vector."""
    source = node.status.allocatable or node.status.capacity
    vector = np.zeros(len(NAMES))
    for index, name in enumerate(NAMES):
        text = source.get(name) or node.status.capacity.get(name)
        if text:
            vector[index] = _amount(name, text)
    return vector
