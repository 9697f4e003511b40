"""The scheduler cache: assume → confirm / forget / expire, and node columns kept in step."""

from __future__ import annotations

import pytest

from bosun.scheduler.cache import SchedulerCache
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.resources import CPU, PODS
from bosun.scheduler.testing import make_cache, make_node, make_pod


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _requested(cache: SchedulerCache, node: str) -> tuple[float, float]:
    info = cache.node(node)
    assert info is not None
    return float(cache.requested[info.slot][CPU]), float(cache.requested[info.slot][PODS])


def test_assumed_pod_counts_at_once_and_confirmation_does_not_double_count() -> None:
    cache = make_cache([make_node("n")])
    pod = make_pod("p", cpu="1")
    cache.assume(PodInfo.of(pod), "n")
    assert _requested(cache, "n") == (1000, 1)
    bound = make_pod("p", cpu="1", node_name="n")
    cache.add_pod(bound)
    assert _requested(cache, "n") == (1000, 1)
    assert not cache.is_assumed("default/p")


def test_forget_gives_the_room_back() -> None:
    cache = make_cache([make_node("n")])
    cache.assume(PodInfo.of(make_pod("p", cpu="1")), "n")
    cache.forget("default/p")
    assert _requested(cache, "n") == (0, 0)
    assert cache.node_of("default/p") is None


def test_forget_does_not_remove_a_confirmed_pod() -> None:
    cache = make_cache([make_node("n")])
    cache.assume(PodInfo.of(make_pod("p", cpu="1")), "n")
    cache.add_pod(make_pod("p", cpu="1", node_name="n"))
    cache.forget("default/p")
    assert _requested(cache, "n") == (1000, 1)


def test_pod_bound_elsewhere_moves_to_that_node() -> None:
    cache = make_cache([make_node("a"), make_node("b")])
    cache.assume(PodInfo.of(make_pod("p", cpu="1")), "a")
    cache.add_pod(make_pod("p", cpu="1", node_name="b"))
    assert _requested(cache, "a") == (0, 0)
    assert _requested(cache, "b") == (1000, 1)


def test_unconfirmed_assumed_pod_expires_after_binding_finished() -> None:
    clock = FakeClock()
    cache = SchedulerCache(assumed_ttl=30, clock=clock)
    cache.add_node(make_node("n"))
    cache.assume(PodInfo.of(make_pod("p", cpu="1")), "n")
    clock.now = 100
    assert cache.cleanup_expired() == []  # binding not finished: never expires
    cache.finish_binding("default/p")
    clock.now = 129
    assert cache.cleanup_expired() == []
    clock.now = 131
    assert cache.cleanup_expired() == ["default/p"]
    assert _requested(cache, "n") == (0, 0)


def test_assuming_a_pod_twice_is_refused() -> None:
    cache = make_cache([make_node("n")])
    cache.assume(PodInfo.of(make_pod("p")), "n")
    with pytest.raises(ValueError, match="already"):
        cache.assume(PodInfo.of(make_pod("p")), "n")


def test_node_slots_are_reused_and_grow() -> None:
    cache = SchedulerCache(initial_capacity=2)
    for index in range(5):
        cache.add_node(make_node(f"n{index}"))
    assert cache.node_count() == 5
    assert cache.capacity >= 5
    cache.remove_node("n0")
    assert cache.node_count() == 4
    cache.add_node(make_node("fresh"))
    assert {info.name for info in cache.nodes()} == {"n1", "n2", "n3", "n4", "fresh"}
    fresh = cache.node("fresh")
    assert fresh is not None
    assert cache.valid[fresh.slot]


def test_deleted_node_keeps_its_pods_until_they_go() -> None:
    cache = make_cache([make_node("n")], [make_pod("p", cpu="1", node_name="n")])
    cache.remove_node("n")
    assert cache.node("n") is None
    assert cache.node_count() == 0
    cache.add_node(make_node("n"))
    assert _requested(cache, "n") == (1000, 1)


def test_without_pods_restores_everything() -> None:
    cache = make_cache([make_node("n")], [make_pod("p", cpu="1", node_name="n")])
    with cache.without_pods(["default/p"]):
        assert _requested(cache, "n") == (0, 0)
    assert _requested(cache, "n") == (1000, 1)


def test_image_index_follows_node_updates() -> None:
    cache = make_cache([make_node("n", images={"app:1": 10})])
    assert cache.image_slots["app:1"]
    cache.update_node(make_node("n", images={"app:2": 10}))
    assert "app:1" not in cache.image_slots
    assert "app:2" in cache.image_slots
