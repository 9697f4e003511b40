"""Deployment status and its conditions, computed from the Deployment's ReplicaSets.

* `Available`: True while at least `replicas - maxUnavailable` pods are available.
* `Progressing`: True `ReplicaSetUpdated` while the rollout moves (its lastUpdateTime advances
  whenever it does), True `NewReplicaSetAvailable` once complete, False
  `ProgressDeadlineExceeded` when it has not moved for `progressDeadlineSeconds`; Unknown
  `DeploymentPaused` / `DeploymentResumed` around a pause.
A condition whose status and reason are unchanged is left alone, so a sync that finds nothing
new writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from bosun.api.v1 import apps_pb2
from bosun.controllermanager.deployment import util

Deployment = util.Deployment
ReplicaSet = util.ReplicaSet
DeploymentStatus = apps_pb2.DeploymentStatus

AVAILABLE = "Available"
PROGRESSING = "Progressing"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

NO_DEADLINE = 2**31 - 1


def condition(status: DeploymentStatus, kind: str) -> apps_pb2.DeploymentCondition | None:
    for item in status.conditions:
        if item.type == kind:
            return item
    return None


def set_condition(
    status: DeploymentStatus,
    kind: str,
    value: str,
    reason: str,
    message: str,
    *,
    now: datetime,
    refresh: bool = False,
) -> None:
    """Set a condition; unchanged status+reason keeps it as is unless `refresh` (progress made)."""
    current = condition(status, kind)
    if current is not None and current.status == value and current.reason == reason and not refresh:
        return
    fresh = apps_pb2.DeploymentCondition(type=kind, status=value, reason=reason, message=message)
    fresh.last_update_time.FromDatetime(now)
    if current is not None and current.status == value:
        fresh.last_transition_time.CopyFrom(current.last_transition_time)
    else:
        fresh.last_transition_time.FromDatetime(now)
    kept = [item for item in status.conditions if item.type != kind]
    del status.conditions[:]
    status.conditions.extend([*kept, fresh])


def calculate(
    deployment: Deployment, sets: Sequence[ReplicaSet], new: ReplicaSet | None, *, now: datetime
) -> DeploymentStatus:
    status = DeploymentStatus()
    status.CopyFrom(deployment.status)
    status.observed_generation = deployment.metadata.generation
    status.replicas = sum(rs.status.replicas for rs in sets)
    status.updated_replicas = new.status.replicas if new is not None else 0
    status.ready_replicas = sum(rs.status.ready_replicas for rs in sets)
    status.available_replicas = util.available_replicas(sets)
    status.unavailable_replicas = max(util.spec_replicas(sets) - status.available_replicas, 0)
    minimum = deployment.spec.replicas - util.max_unavailable(deployment)
    if status.available_replicas >= minimum:
        set_condition(
            status,
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now=now,
        )
    else:
        set_condition(
            status,
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now=now,
        )
    return status


def complete(deployment: Deployment, status: DeploymentStatus) -> bool:
    replicas = deployment.spec.replicas
    return (
        status.updated_replicas == replicas
        and status.replicas == replicas
        and status.available_replicas == replicas
        and status.observed_generation >= deployment.metadata.generation
    )


def progressed(old: DeploymentStatus, new: DeploymentStatus) -> bool:
    return (
        new.updated_replicas > old.updated_replicas
        or (new.replicas - new.updated_replicas) < (old.replicas - old.updated_replicas)
        or new.ready_replicas > old.ready_replicas
        or new.available_replicas > old.available_replicas
    )


def deadline(deployment: Deployment) -> int | None:
    spec = deployment.spec
    if not spec.HasField("progress_deadline_seconds"):
        return None
    value = spec.progress_deadline_seconds
    return None if value == NO_DEADLINE else value


def seconds_left(deployment: Deployment, status: DeploymentStatus, now: datetime) -> float | None:
    """Seconds until the rollout times out; None when it cannot (no deadline, done, timed out)."""
    limit = deadline(deployment)
    progressing = condition(status, PROGRESSING)
    if limit is None or progressing is None or progressing.reason in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    if progressing.status != "True":
        return None
    since = progressing.last_update_time.ToDatetime(tzinfo=UTC)
    return (since - now).total_seconds() + limit


def rollout_progress(
    deployment: Deployment, status: DeploymentStatus, new: ReplicaSet | None, *, now: datetime
) -> None:
    """Update the Progressing condition of `status` (computed by `calculate`) in place."""
    if deadline(deployment) is None:
        return
    name = new.metadata.name if new is not None else ""
    if complete(deployment, status):
        set_condition(
            status,
            PROGRESSING,
            "True",
            NEW_RS_AVAILABLE,
            f'ReplicaSet "{name}" has successfully progressed.',
            now=now,
        )
    elif progressed(deployment.status, status):
        set_condition(
            status,
            PROGRESSING,
            "True",
            RS_UPDATED,
            f'ReplicaSet "{name}" is progressing.',
            now=now,
            refresh=True,
        )
    else:
        left = seconds_left(deployment, status, now)
        if left is not None and left <= 0:
            set_condition(
                status,
                PROGRESSING,
                "False",
                TIMED_OUT,
                f'ReplicaSet "{name}" has timed out progressing.',
                now=now,
            )
