"""Each score plugin, table-driven: which node a pod prefers (scores after normalization)."""

from __future__ import annotations

import pytest

from bosun.scheduler.plugins.imagelocality import ImageLocality, normalized_image_name
from bosun.scheduler.plugins.interpodaffinity import InterPodAffinity
from bosun.scheduler.plugins.nodeaffinity import NodeAffinity
from bosun.scheduler.plugins.noderesources import (
    ArgsError,
    NodeResourcesBalancedAllocation,
    NodeResourcesFit,
)
from bosun.scheduler.plugins.podtopologyspread import PodTopologySpread
from bosun.scheduler.plugins.tainttoleration import TaintToleration
from bosun.scheduler.testing import make_cache, make_node, make_pod, score_nodes


def _two_nodes_one_busy():  # type: ignore[no-untyped-def]
    return make_cache(
        [make_node("busy", cpu="4", memory="8Gi"), make_node("idle", cpu="4", memory="8Gi")],
        [make_pod("x", cpu="2", memory="4Gi", node_name="busy")],
    )


@pytest.mark.parametrize(
    ("strategy", "preferred"),
    [
        pytest.param("LeastAllocated", "idle", id="least allocated spreads"),
        pytest.param("MostAllocated", "busy", id="most allocated packs"),
    ],
)
def test_fit_scoring_strategies(strategy: str, preferred: str) -> None:
    plugin = NodeResourcesFit({"scoringStrategy": {"type": strategy}})
    scores = score_nodes(plugin, make_pod("p", cpu="1", memory="1Gi"), _two_nodes_one_busy())
    assert max(scores, key=scores.__getitem__) == preferred


def test_least_allocated_formula() -> None:
    # idle: cpu (4000-1000)/4000 = 75, memory (8Gi-2Gi)/8Gi = 75 → 75.
    scores = score_nodes(
        NodeResourcesFit(), make_pod("p", cpu="1", memory="2Gi"), _two_nodes_one_busy()
    )
    assert scores["idle"] == 75
    assert scores["busy"] == 25


def test_fit_rejects_unknown_strategy_naming_the_field() -> None:
    with pytest.raises(ArgsError, match=r"scoringStrategy\.type"):
        NodeResourcesFit({"scoringStrategy": {"type": "Random"}})


def test_balanced_allocation_prefers_even_cpu_and_memory_use() -> None:
    cache = make_cache(
        [make_node("cpu-heavy", cpu="4", memory="8Gi"), make_node("even", cpu="4", memory="8Gi")],
        [
            make_pod("x", cpu="3", memory="1Gi", node_name="cpu-heavy"),
            make_pod("y", cpu="2", memory="4Gi", node_name="even"),
        ],
    )
    scores = score_nodes(
        NodeResourcesBalancedAllocation(), make_pod("p", cpu="1", memory="1Gi"), cache
    )
    assert scores["even"] > scores["cpu-heavy"]


def test_prefer_no_schedule_taints_lower_the_score_unless_tolerated() -> None:
    cache = make_cache(
        [make_node("spot", taints=[("spot", "", "PreferNoSchedule")]), make_node("ok")]
    )
    assert score_nodes(TaintToleration(), make_pod("p"), cache) == {"spot": 0, "ok": 100}
    tolerant = make_pod("t", tolerations=[{"key": "spot", "operator": "Exists"}])
    assert score_nodes(TaintToleration(), tolerant, cache) == {"spot": 100, "ok": 100}


def test_preferred_node_affinity_weights() -> None:
    cache = make_cache(
        [make_node("a", labels={"disk": "ssd"}), make_node("b", labels={"disk": "hdd"})]
    )
    pod = make_pod("p")
    preferred = pod.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    term = preferred.add(weight=10)
    term.preference.match_expressions.add(key="disk", operator="In", values=["ssd"])
    term = preferred.add(weight=5)
    term.preference.match_expressions.add(key="disk", operator="In", values=["hdd"])
    assert score_nodes(NodeAffinity(), pod, cache) == {"a": 100, "b": 50}


def test_image_locality_prefers_nodes_with_big_images() -> None:
    cache = make_cache(
        [
            make_node("has", images={"app:1": 500 * 1024 * 1024}),
            make_node("lacks"),
        ]
    )
    scores = score_nodes(ImageLocality(), make_pod("p", image="app:1"), cache)
    assert scores["has"] > 0
    assert scores["lacks"] == 0


def test_schedule_anyway_spread_prefers_emptier_domains() -> None:
    nodes = [make_node("a", labels={"zone": "a"}), make_node("b", labels={"zone": "b"})]
    pods = [make_pod(f"w{i}", labels={"app": "web"}, node_name="a") for i in range(3)]
    pod = make_pod("p", labels={"app": "web"})
    constraint = pod.spec.topology_spread_constraints.add(
        max_skew=1, topology_key="zone", when_unsatisfiable="ScheduleAnyway"
    )
    constraint.label_selector.match_labels["app"] = "web"
    assert score_nodes(PodTopologySpread(), pod, make_cache(nodes, pods)) == {"a": 0, "b": 100}


def test_preferred_pod_anti_affinity_scores_away_from_matching_pods() -> None:
    cache = make_cache(
        [make_node("a"), make_node("b")], [make_pod("w", labels={"app": "web"}, node_name="a")]
    )
    pod = make_pod("p", labels={"app": "web"})
    anti = pod.spec.affinity.pod_anti_affinity
    weighted = anti.preferred_during_scheduling_ignored_during_execution.add(weight=50)
    weighted.pod_affinity_term.topology_key = "kubernetes.io/hostname"
    weighted.pod_affinity_term.label_selector.match_labels["app"] = "web"
    assert score_nodes(InterPodAffinity(), pod, cache) == {"a": 0, "b": 100}


def test_pods_without_preferences_skip_affinity_scoring() -> None:
    cache = make_cache([make_node("a"), make_node("b")])
    assert score_nodes(InterPodAffinity(), make_pod("p"), cache) == {"a": 0, "b": 0}


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("nginx", "nginx:latest"),
        ("nginx:1.25", "nginx:1.25"),
        ("registry:5000/app", "registry:5000/app:latest"),
        ("app@sha256:abc", "app@sha256:abc"),
    ],
)
def test_image_names_without_tag_mean_latest(name: str, normalized: str) -> None:
    assert normalized_image_name(name) == normalized
