"""What every controller is built from: the client, the shared informers, events, tunables.

Every period and threshold is a field of `Options` (and a command-line flag in `main`), so tests
can run the same code with periods of a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from bosun.common.client import Client
from bosun.common.events import EventRecorder
from bosun.controllermanager.informers import InformerFactory


@dataclass
class Options:
    # Workers per controller (concurrent syncs of distinct keys).
    workers: int = 2
    # ReplicaSet: most pods created or deleted in one sync (Kubernetes' burstReplicas).
    burst_replicas: int = 500
    # Expectations not observed within this many seconds are dropped.
    expectations_ttl: float = 300.0
    # Longest backoff before a failing key is retried.
    max_retry_delay: float = 60.0
    # Namespace: seconds between checks while a namespace still has content.
    namespace_resync: float = 1.0
    # Pod GC: seconds between runs, and terminated pods kept before the oldest are deleted.
    pod_gc_period: float = 20.0
    terminated_pod_gc_threshold: int = 12500
    # Node lifecycle.
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    default_toleration_seconds: int = 300
    # Nodes that may be tainted (and so start losing pods) per second, and at once.
    node_eviction_rate: float = 0.1
    node_eviction_burst: int = 1
    # Pods evicted per second across the cluster.
    pod_eviction_rate: float = 10.0
    # When at least this fraction of nodes is unhealthy, evict nothing (likely a network
    # problem between the controller-manager and the nodes, not a fleet of dead nodes).
    unhealthy_nodes_threshold: float = 0.55


@dataclass
class ControllerContext:
    client: Client
    informers: InformerFactory
    recorder: EventRecorder
    options: Options
