"""Rolling-update and scaling arithmetic, as pure functions of the ReplicaSets' current state.

Each function returns the replica counts to write (`{name: replicas}`, only the ones that
change); the controller writes them and the next sync recomputes from what it then sees. This
is Kubernetes' arithmetic (pkg/controller/deployment/rolling.go, sync.go) with one deliberate
difference: the pods a set may still have are counted as max(spec.replicas, status.replicas)
(`util.pod_upper_bound`), so a new set is never scaled up while an old set that was scaled down
still has the pods it is about to delete. That makes "never more than replicas + maxSurge pods"
hold for the pods that exist, not just for the sum of `spec.replicas`.

Invariants, with R = spec.replicas, S = maxSurge, U = maxUnavailable:

* scale-up of the new set: pods (upper bound) stay ≤ R + S;
* scale-down of old sets: available pods stay ≥ R - U, counting only pods that are available
  now (old sets' unavailable pods are removed first: they add nothing to availability).
"""

from __future__ import annotations

from collections.abc import Sequence

from bosun.controllermanager.deployment import util

Deployment = util.Deployment
ReplicaSet = util.ReplicaSet


def new_set_replicas(
    deployment: Deployment, all_sets: Sequence[ReplicaSet], new: ReplicaSet
) -> int:
    """How many replicas the new set should have now (NewRSNewReplicas)."""
    replicas = deployment.spec.replicas
    if not util.is_rolling(deployment):
        return replicas
    current = util.pod_upper_bound(all_sets)
    max_total = replicas + util.max_surge(deployment)
    if current >= max_total:
        return new.spec.replicas
    scale_up = min(max_total - current, replicas - new.spec.replicas)
    return new.spec.replicas + max(scale_up, 0)


def old_sets_scale_down(
    deployment: Deployment, old_sets: Sequence[ReplicaSet], new: ReplicaSet | None
) -> dict[str, int]:
    """New sizes for old sets: unhealthy replicas first, then healthy ones, oldest set first."""
    if util.spec_replicas(old_sets) == 0:
        return {}
    all_sets = [*old_sets, new]
    min_available = deployment.spec.replicas - util.max_unavailable(deployment)
    new_unavailable = 0 if new is None else new.spec.replicas - new.status.available_replicas
    max_scaled_down = util.spec_replicas(all_sets) - min_available - max(new_unavailable, 0)
    if max_scaled_down <= 0:
        return {}
    sizes = {rs.metadata.name: rs.spec.replicas for rs in old_sets}
    ordered = util.by_creation(list(old_sets))
    # 1. Unavailable replicas of old sets cost no availability: remove them first.
    cleaned = 0
    for rs in ordered:
        if cleaned >= max_scaled_down:
            break
        size = sizes[rs.metadata.name]
        unhealthy = size - rs.status.available_replicas
        if size == 0 or unhealthy <= 0:
            continue
        step = min(max_scaled_down - cleaned, unhealthy)
        sizes[rs.metadata.name] = size - step
        cleaned += step
    # 2. Available replicas, as far as availability allows.
    available = util.available_replicas([new]) + sum(
        min(rs.status.available_replicas, sizes[rs.metadata.name]) for rs in old_sets
    )
    budget = min(available - min_available, max_scaled_down - cleaned)
    for rs in ordered:
        if budget <= 0:
            break
        size = sizes[rs.metadata.name]
        if size == 0:
            continue
        step = min(size, budget)
        sizes[rs.metadata.name] = size - step
        budget -= step
    return {name: size for name, size in sizes.items() if size != _size(old_sets, name)}


def _size(sets: Sequence[ReplicaSet], name: str) -> int:
    return next(rs.spec.replicas for rs in sets if rs.metadata.name == name)


def proportional_scale(
    deployment: Deployment, new: ReplicaSet | None, old_sets: Sequence[ReplicaSet]
) -> dict[str, int]:
    """Spread a change of `spec.replicas` mid-rollout over the active sets by their size.

    Each active set gets its share of the difference between what the sets may hold
    (R + maxSurge) and what they hold, in proportion to its size relative to the
    `max-replicas` it was last scaled for; rounding leftovers go to the largest set.
    """
    sets = util.active([rs for rs in (*old_sets, new) if rs is not None])
    if not sets:
        return {}
    replicas = deployment.spec.replicas
    allowed = replicas + util.max_surge(deployment) if replicas > 0 else 0
    to_add = allowed - util.spec_replicas(sets)
    if to_add > 0:  # largest first, newer first on ties
        sets.sort(key=lambda rs: (-rs.spec.replicas, -_created(rs)))
    else:  # largest first, older first on ties
        sets.sort(key=lambda rs: (-rs.spec.replicas, _created(rs)))
    sizes: dict[str, int] = {}
    added = 0
    for rs in sets:
        share = 0
        if to_add != 0 and added != to_add:
            share = _proportion(deployment, rs, to_add, added)
        sizes[rs.metadata.name] = rs.spec.replicas + share
        added += share
    leftover = to_add - added
    if leftover:
        first = sets[0].metadata.name
        sizes[first] = max(sizes[first] + leftover, 0)
    return {rs.metadata.name: sizes[rs.metadata.name] for rs in sets}


def _created(rs: ReplicaSet) -> float:
    stamp = rs.metadata.creation_timestamp
    return stamp.seconds + stamp.nanos / 1e9


def _proportion(deployment: Deployment, rs: ReplicaSet, to_add: int, added: int) -> int:
    if rs.spec.replicas == 0:
        return 0
    allowed = to_add - added
    fraction = _fraction(deployment, rs)
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(deployment: Deployment, rs: ReplicaSet) -> int:
    if deployment.spec.replicas == 0:
        return -rs.spec.replicas
    target = deployment.spec.replicas + util.max_surge(deployment)
    annotated = util.annotated_int(rs, util.MAX_REPLICAS)
    if not annotated:
        annotated = deployment.status.replicas or target
    return round(rs.spec.replicas * target / annotated) - rs.spec.replicas


def is_scaling_event(deployment: Deployment, sets: Sequence[ReplicaSet]) -> bool:
    """The Deployment's replicas differ from what an active set was last scaled for."""
    for rs in util.active(sets):
        desired = util.annotated_int(rs, util.DESIRED_REPLICAS)
        if desired is not None and desired != deployment.spec.replicas:
            return True
    return False
