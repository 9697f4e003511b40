"""Pod facts the workload controllers agree on: active, ready, available, and deletion rank."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from bosun.api.v1 import core_pb2

Pod = core_pb2.Pod

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_active(pod: Pod) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField(
        "deletion_timestamp"
    )


def ready_condition(pod: Pod) -> core_pb2.PodCondition | None:
    for condition in pod.status.conditions:
        if condition.type == "Ready":
            return condition
    return None


def is_ready(pod: Pod) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.status == "True"


def seconds(timestamp: Timestamp) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9


def is_available(pod: Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least `min_ready_seconds` (measured from the Ready condition's transition)."""
    condition = ready_condition(pod)
    if condition is None or condition.status != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    if not condition.HasField("last_transition_time"):
        return False
    return seconds(condition.last_transition_time) + min_ready_seconds <= now


def available_in(pod: Pod, min_ready_seconds: int, now: float) -> float | None:
    """Seconds until a ready pod becomes available; None when it is not ready (or already is)."""
    condition = ready_condition(pod)
    if condition is None or condition.status != "True" or min_ready_seconds <= 0:
        return None
    remaining = seconds(condition.last_transition_time) + min_ready_seconds - now
    return remaining if remaining > 0 else None


def restarts(pod: Pod) -> int:
    return sum(status.restart_count for status in pod.status.container_statuses)


def deletion_order(pods: Sequence[Pod], now: float | None = None) -> list[Pod]:
    """Pods sorted least valuable first: the ones a scale-down should delete first.

    As Kubernetes' ActivePodsWithRanks: unassigned before assigned; Pending before Unknown
    before Running; not ready before ready; pods sharing a node with more of their siblings
    first (spreads what remains); ready for a shorter time first; more restarts first; newer
    before older.
    """
    current = datetime.now(UTC).timestamp() if now is None else now
    per_node = Counter(pod.spec.node_name for pod in pods if pod.spec.node_name)

    def rank(pod: Pod) -> tuple[int, int, int, int, float, int, float]:
        condition = ready_condition(pod)
        ready = is_ready(pod)
        ready_for = (
            current - seconds(condition.last_transition_time)
            if ready and condition is not None
            else 0.0
        )
        return (
            1 if pod.spec.node_name else 0,
            _PHASE_RANK.get(pod.status.phase, 0),
            1 if ready else 0,
            -per_node[pod.spec.node_name] if pod.spec.node_name else 0,
            ready_for,
            -restarts(pod),
            -seconds(pod.metadata.creation_timestamp),
        )

    return sorted(pods, key=rank)


def now_seconds() -> float:
    return datetime.now(UTC).timestamp()
