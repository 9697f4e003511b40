"""PodInfo: what the scheduler derives from a pod once, instead of on every node it looks at.

A pod is read many times per scheduling cycle (once per candidate node by several plugins) and
again whenever an incoming pod's affinity is checked against it. Parsing quantities, label
selectors and host ports on each of those reads would dominate the cycle, so they are computed
here when the informer delivers the pod, and the PodInfo is replaced when the pod changes.
PodInfo is immutable by convention: code that needs a changed pod builds a new one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from bosun.api.v1 import core_pb2
from bosun.common.selectors import LabelSelector
from bosun.scheduler.resources import Vector, pod_nonzero_requests, pod_requests

__all__ = ["AffinityTerm", "HostPort", "PodInfo", "pod_key"]

HostPort = tuple[str, str, int]
"""(hostIP, protocol, hostPort); hostIP "0.0.0.0" means every address."""


def pod_key(pod: core_pb2.Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


@dataclass(frozen=True)
class AffinityTerm:
    """A parsed PodAffinityTerm: which pods it selects, and over which topology key."""

    selector: LabelSelector | None  # None (unset in the pod): selects no pod
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None
    topology_key: str
    weight: int = 0

    @classmethod
    def parse(
        cls, term: core_pb2.PodAffinityTerm, owner_namespace: str, weight: int = 0
    ) -> AffinityTerm:
        namespaces = frozenset(term.namespaces)
        namespace_selector = (
            LabelSelector.from_proto(term.namespace_selector)
            if term.HasField("namespace_selector")
            else None
        )
        if not namespaces and namespace_selector is None:
            namespaces = frozenset({owner_namespace})
        return cls(
            selector=LabelSelector.from_proto(term.label_selector)
            if term.HasField("label_selector")
            else None,
            namespaces=namespaces,
            namespace_selector=namespace_selector,
            topology_key=term.topology_key,
            weight=weight,
        )

    def matches(
        self, pod: PodInfo, namespace_labels: Mapping[str, Mapping[str, str]] | None = None
    ) -> bool:
        """True when `pod` is one this term selects: in one of `namespaces`, or in a namespace
        whose labels (`namespace_labels`, by name) the namespaceSelector matches — an empty
        namespaceSelector matches every namespace — and carrying the labels `selector` asks."""
        if pod.namespace not in self.namespaces:
            if self.namespace_selector is None:
                return False
            labels = (namespace_labels or {}).get(pod.namespace, {})
            if not self.namespace_selector.matches(labels):
                return False
        return self.selector is not None and self.selector.matches(pod.labels)


def _host_ports(pod: core_pb2.Pod) -> tuple[HostPort, ...]:
    ports: list[HostPort] = []
    for container in pod.spec.containers:
        for port in container.ports:
            if port.host_port > 0:
                ports.append((port.host_ip or "0.0.0.0", port.protocol or "TCP", port.host_port))
    return tuple(ports)


@dataclass(frozen=True, eq=False)
class PodInfo:
    pod: core_pb2.Pod
    key: str
    uid: str
    namespace: str
    labels: dict[str, str]
    priority: int
    requests: Vector
    nonzero_requests: Vector
    host_ports: tuple[HostPort, ...]
    required_affinity: tuple[AffinityTerm, ...]
    required_anti_affinity: tuple[AffinityTerm, ...]
    preferred_affinity: tuple[AffinityTerm, ...]
    preferred_anti_affinity: tuple[AffinityTerm, ...]
    created: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, pod: core_pb2.Pod) -> PodInfo:
        namespace = pod.metadata.namespace
        affinity = pod.spec.affinity
        pod_affinity = affinity.pod_affinity
        anti = affinity.pod_anti_affinity
        return cls(
            pod=pod,
            key=pod_key(pod),
            uid=pod.metadata.uid,
            namespace=namespace,
            labels=dict(pod.metadata.labels),
            priority=int(pod.spec.priority),
            requests=pod_requests(pod),
            nonzero_requests=pod_nonzero_requests(pod),
            host_ports=_host_ports(pod),
            required_affinity=tuple(
                AffinityTerm.parse(t, namespace)
                for t in pod_affinity.required_during_scheduling_ignored_during_execution
            ),
            required_anti_affinity=tuple(
                AffinityTerm.parse(t, namespace)
                for t in anti.required_during_scheduling_ignored_during_execution
            ),
            preferred_affinity=tuple(
                AffinityTerm.parse(t.pod_affinity_term, namespace, t.weight)
                for t in pod_affinity.preferred_during_scheduling_ignored_during_execution
            ),
            preferred_anti_affinity=tuple(
                AffinityTerm.parse(t.pod_affinity_term, namespace, t.weight)
                for t in anti.preferred_during_scheduling_ignored_during_execution
            ),
        )

    def bound_as(self, pod: core_pb2.Pod) -> PodInfo:
        """This pod as the informer reports it once bound: what was derived from its spec is
        kept (binding changes only nodeName and status), unless the labels changed too."""
        if dict(pod.metadata.labels) != self.labels:
            return PodInfo.of(pod)
        return dataclasses.replace(self, pod=pod)

    @property
    def has_affinity_terms(self) -> bool:
        return bool(
            self.required_affinity
            or self.required_anti_affinity
            or self.preferred_affinity
            or self.preferred_anti_affinity
        )
