"""The kubelet's Prometheus metrics (served on --metrics-port with everything else).

Names follow the Kubernetes kubelet's where one exists (`kubelet_pod_worker_duration_seconds`,
`kubelet_pod_start_duration_seconds`, `kubelet_running_pods`), with the `bosun_` prefix.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SYNC_SECONDS = Histogram(
    "bosun_kubelet_pod_worker_duration_seconds",
    "Time one pod worker sync takes (list containers, act, write status).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SYNC_ERRORS = Counter(
    "bosun_kubelet_pod_worker_errors_total", "Pod worker syncs that failed (and were retried)."
)
POD_START_SECONDS = Histogram(
    "bosun_kubelet_pod_start_duration_seconds",
    "From the kubelet first seeing a pod to all of its containers running.",
    buckets=(0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0, 120.0, 300.0),
)
CONTAINER_STARTS = Counter(
    "bosun_kubelet_container_starts_total", "Containers started, by kind.", ["kind"]
)
RUNNING_PODS = Gauge("bosun_kubelet_running_pods", "Pods with a pod worker on this kubelet.")
HEARTBEATS = Counter(
    "bosun_kubelet_node_heartbeats_total", "Lease renewals, by result.", ["result"]
)
