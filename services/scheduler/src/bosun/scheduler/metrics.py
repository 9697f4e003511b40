"""The scheduler's Prometheus metrics (names follow kube-scheduler's, prefixed `bosun_`).

* `bosun_scheduler_schedule_attempts_total{result}`: scheduled | unschedulable | error;
* `bosun_scheduler_scheduling_algorithm_duration_seconds`: filter + score for one pod;
* `bosun_scheduler_e2e_scheduling_duration_seconds`: first attempt to successful bind;
* `bosun_scheduler_pending_pods{queue}`: active | backoff | unschedulable | in_flight_binds;
* `bosun_scheduler_preemption_attempts_total`, `bosun_scheduler_preemption_victims_total`.

One set per CollectorRegistry (`SchedulerMetrics.for_registry`), so several schedulers in one
process (tests, a standby replica) share the series instead of failing to register twice.
"""

from __future__ import annotations

from typing import ClassVar
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from bosun.common.metrics import LATENCY_BUCKETS

__all__ = ["SchedulerMetrics"]

# Finer at the low end: one cycle takes a fraction of a millisecond.
_ALGORITHM_BUCKETS = (0.0001, 0.00025, *LATENCY_BUCKETS[:12])


class SchedulerMetrics:
    _by_registry: ClassVar[WeakKeyDictionary[CollectorRegistry, SchedulerMetrics]] = (
        WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "bosun_scheduler_schedule_attempts_total",
            "Scheduling attempts by result",
            ["result"],
            registry=registry,
        )
        self.algorithm_seconds = Histogram(
            "bosun_scheduler_scheduling_algorithm_duration_seconds",
            "Time to filter and score the nodes for one pod",
            buckets=_ALGORITHM_BUCKETS,
            registry=registry,
        )
        self.e2e_seconds = Histogram(
            "bosun_scheduler_e2e_scheduling_duration_seconds",
            "Time from a pod's first scheduling attempt to its successful bind",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "bosun_scheduler_pending_pods",
            "Pods waiting, by queue (and binds in flight)",
            ["queue"],
            registry=registry,
        )
        self.preemption_attempts = Counter(
            "bosun_scheduler_preemption_attempts_total",
            "Preemption attempts (PostFilter runs)",
            registry=registry,
        )
        self.preemption_victims = Counter(
            "bosun_scheduler_preemption_victims_total",
            "Pods evicted by preemption",
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> SchedulerMetrics:
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics

    def set_pending(self, lengths: dict[str, int]) -> None:
        for queue, length in lengths.items():
            self.pending.labels(queue=queue).set(length)
