"""Deployment bookkeeping shared by the rollout strategies: hashes, revisions, surge arithmetic.

Annotations (Kubernetes' names, so tools that read them keep working):

* `deployment.kubernetes.io/revision` on each ReplicaSet (and the Deployment): the rollout
  number of its template; the new ReplicaSet always has the highest.
* `deployment.kubernetes.io/desired-replicas` / `max-replicas` on each ReplicaSet: the
  Deployment's replicas (and replicas + maxSurge) when the set was last scaled. A mismatch with
  the Deployment means the user scaled it: a scaling event, handled by proportional scaling.

A ReplicaSet belongs to a template by the label `pod-template-hash`, a hash of the Deployment's
pod template (plus the collision count, bumped when a name is taken by a different template).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bosun.api.v1 import apps_pb2, core_pb2

Deployment = apps_pb2.Deployment
ReplicaSet = apps_pb2.ReplicaSet

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
POD_TEMPLATE_HASH = "pod-template-hash"
# Annotations the Deployment's own bookkeeping (or kubectl) owns; never copied to ReplicaSets.
_NOT_COPIED = {
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "kubectl.kubernetes.io/last-applied-configuration",
}

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def _safe_encode(text: str) -> str:
    """Kubernetes' SafeEncodeString: no vowels (no words), no look-alike characters."""
    return "".join(_SAFE_ALPHABET[ord(char) % len(_SAFE_ALPHABET)] for char in text)


def template_hash(template: core_pb2.PodTemplateSpec, collision_count: int = 0) -> str:
    """A short, stable name fragment for a pod template (deterministic serialization)."""
    plain = core_pb2.PodTemplateSpec()
    plain.CopyFrom(template)
    plain.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    data = plain.SerializeToString(deterministic=True)
    if collision_count:
        data += collision_count.to_bytes(4, "big")
    return _safe_encode(str(_fnv32a(data)))


def templates_equal(a: core_pb2.PodTemplateSpec, b: core_pb2.PodTemplateSpec) -> bool:
    """Equal ignoring the pod-template-hash label (Kubernetes' EqualIgnoreHash)."""
    left, right = core_pb2.PodTemplateSpec(), core_pb2.PodTemplateSpec()
    left.CopyFrom(a)
    right.CopyFrom(b)
    left.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    right.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    return left == right


def revision(rs: ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(sets: Iterable[ReplicaSet]) -> int:
    return max((revision(rs) for rs in sets), default=0)


def copy_annotations(deployment: Deployment, rs: ReplicaSet) -> bool:
    """Copy the Deployment's annotations onto `rs`, except bookkeeping; True if any changed."""
    changed = False
    for key, value in deployment.metadata.annotations.items():
        if key in _NOT_COPIED:
            continue
        if rs.metadata.annotations.get(key) != value:
            rs.metadata.annotations[key] = value
            changed = True
    return changed


# ------------------------------------------------------------------------ surge arithmetic


def _int_or_percent(value: str, total: int, *, round_up: bool) -> int:
    text = value.strip()
    if not text:
        return 0
    if text.endswith("%"):
        percent = int(text[:-1])
        scaled = percent * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def is_rolling(deployment: Deployment) -> bool:
    return deployment.spec.strategy.type != "Recreate"


def resolve_fenceposts(deployment: Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts; both 0 would deadlock, so unavailable is 1."""
    if not is_rolling(deployment):
        return 0, 0
    rolling = deployment.spec.strategy.rolling_update
    replicas = deployment.spec.replicas
    surge = _int_or_percent(rolling.max_surge or "25%", replicas, round_up=True)
    unavailable = _int_or_percent(rolling.max_unavailable or "25%", replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Deployment) -> int:
    return resolve_fenceposts(deployment)[0]


def max_unavailable(deployment: Deployment) -> int:
    if not is_rolling(deployment) or deployment.spec.replicas == 0:
        return 0
    return min(resolve_fenceposts(deployment)[1], deployment.spec.replicas)


# ------------------------------------------------------------------------ replica counts


def spec_replicas(sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.spec.replicas for rs in sets if rs is not None)


def pod_upper_bound(sets: Iterable[ReplicaSet | None]) -> int:
    """Pods the sets may have right now: the larger of what each wants and what it reports.

    A set scaled down still has its old pods until its controller deletes them and reports the
    lower count, so counting only `spec.replicas` would let a scale-up overshoot maxSurge.
    """
    return sum(max(rs.spec.replicas, rs.status.replicas) for rs in sets if rs is not None)


def available_replicas(sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.available_replicas for rs in sets if rs is not None)


def active(sets: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    return [rs for rs in sets if rs.spec.replicas > 0]


def by_creation(sets: Sequence[ReplicaSet]) -> list[ReplicaSet]:
    return sorted(
        sets,
        key=lambda rs: (
            rs.metadata.creation_timestamp.seconds,
            rs.metadata.creation_timestamp.nanos,
            rs.metadata.name,
        ),
    )


def annotated_int(rs: ReplicaSet, key: str) -> int | None:
    try:
        return int(rs.metadata.annotations[key])
    except (KeyError, ValueError):
        return None


def set_replica_annotations(deployment: Deployment, rs: ReplicaSet) -> bool:
    """Record the Deployment's replicas (and + maxSurge) on `rs`; True when anything changed."""
    desired = str(deployment.spec.replicas)
    maximum = str(deployment.spec.replicas + max_surge(deployment))
    changed = False
    for key, value in ((DESIRED_REPLICAS, desired), (MAX_REPLICAS, maximum)):
        if rs.metadata.annotations.get(key) != value:
            rs.metadata.annotations[key] = value
            changed = True
    return changed
