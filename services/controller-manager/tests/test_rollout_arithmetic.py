"""Rolling-update arithmetic (pure functions): surge, unavailability, proportional scaling."""

from __future__ import annotations

import pytest

from bosun.api.v1 import apps_pb2
from bosun.controllermanager.deployment import rolling, util


def deployment(
    replicas: int, *, surge: str = "25%", unavailable: str = "25%", strategy: str = "RollingUpdate"
) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.spec.replicas = replicas
    d.spec.strategy.type = strategy
    d.spec.strategy.rolling_update.max_surge = surge
    d.spec.strategy.rolling_update.max_unavailable = unavailable
    return d


def rs(
    name: str,
    replicas: int,
    *,
    available: int | None = None,
    reported: int | None = None,
    created: int = 0,
    max_replicas: int | None = None,
) -> apps_pb2.ReplicaSet:
    out = apps_pb2.ReplicaSet()
    out.metadata.name = name
    out.metadata.creation_timestamp.seconds = created
    out.spec.replicas = replicas
    out.status.replicas = replicas if reported is None else reported
    out.status.available_replicas = replicas if available is None else available
    if max_replicas is not None:
        out.metadata.annotations[util.MAX_REPLICAS] = str(max_replicas)
    return out


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (10, "25%", "25%", (3, 2)),  # surge rounds up, unavailability down
        (10, "2", "0", (2, 0)),
        (10, "0%", "0%", (0, 1)),  # both zero would never progress: one may be unavailable
        (3, "50%", "50%", (2, 1)),
        (1, "0", "0", (0, 1)),
    ],
)
def test_fenceposts_resolve_numbers_and_percentages(
    replicas: int, surge: str, unavailable: str, expected: tuple[int, int]
) -> None:
    assert util.resolve_fenceposts(deployment(replicas, surge=surge, unavailable=unavailable)) == (
        expected
    )


def test_recreate_has_no_surge_and_no_unavailability_budget() -> None:
    d = deployment(4, strategy="Recreate")
    assert util.resolve_fenceposts(d) == (0, 0)
    assert util.max_unavailable(d) == 0


def test_new_set_grows_only_up_to_replicas_plus_surge() -> None:
    d = deployment(10, surge="2", unavailable="0")
    old, new = rs("old", 10), rs("new", 0)
    assert rolling.new_set_replicas(d, [old, new], new) == 2


def test_new_set_waits_for_pods_an_old_set_has_not_deleted_yet() -> None:
    d = deployment(10, surge="2", unavailable="0")
    # The old set was scaled to 8 but still reports its 10 pods: no room to grow yet.
    old, new = rs("old", 8, reported=10), rs("new", 2)
    assert rolling.new_set_replicas(d, [old, new], new) == 2
    old.status.replicas = 8
    assert rolling.new_set_replicas(d, [old, new], new) == 4


def test_old_sets_shrink_only_as_far_as_availability_allows() -> None:
    d = deployment(10, surge="2", unavailable="0")
    old = rs("old", 10)
    assert rolling.old_sets_scale_down(d, [old], rs("new", 2, available=0)) == {}
    assert rolling.old_sets_scale_down(d, [old], rs("new", 2, available=1)) == {"old": 9}
    assert rolling.old_sets_scale_down(d, [old], rs("new", 2, available=2)) == {"old": 8}


def test_unavailable_old_replicas_are_removed_first_and_oldest_set_first() -> None:
    d = deployment(10, surge="0", unavailable="3")
    older = rs("older", 4, available=1, created=1)
    newer = rs("newer", 6, available=6, created=2)
    # 3 may go: the 3 unavailable pods of the older set, not available ones.
    assert rolling.old_sets_scale_down(d, [older, newer], rs("new", 0)) == {"older": 1}


def test_scaling_mid_rollout_is_proportional_to_set_sizes() -> None:
    d = deployment(20, surge="3", unavailable="2")
    old = rs("old", 8, created=1, max_replicas=13)
    new = rs("new", 5, created=2, max_replicas=13)
    assert rolling.proportional_scale(d, new, [old]) == {"old": 14, "new": 9}


def test_scaling_down_mid_rollout_takes_from_the_largest_set_first() -> None:
    d = deployment(5, surge="1", unavailable="0")
    old = rs("old", 8, created=1, max_replicas=11)
    new = rs("new", 3, created=2, max_replicas=11)
    sizes = rolling.proportional_scale(d, new, [old])
    assert sum(sizes.values()) == 6
    assert sizes["old"] > sizes["new"]


def test_a_changed_replica_count_is_a_scaling_event() -> None:
    d = deployment(5)
    current = rs("a", 3)
    current.metadata.annotations[util.DESIRED_REPLICAS] = "5"
    assert not rolling.is_scaling_event(d, [current])
    d.spec.replicas = 7
    assert rolling.is_scaling_event(d, [current])
