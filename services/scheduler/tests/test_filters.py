"""Each filter plugin, table-driven: which nodes a pod may go to, and why not."""

from __future__ import annotations

from typing import Any

import pytest

from bosun.api.v1 import core_pb2
from bosun.scheduler.framework import CycleState, StatusCode
from bosun.scheduler.plugins.interpodaffinity import InterPodAffinity
from bosun.scheduler.plugins.nodeaffinity import NodeAffinity
from bosun.scheduler.plugins.nodename import NodeName
from bosun.scheduler.plugins.nodeports import NodePorts
from bosun.scheduler.plugins.noderesources import NodeResourcesFit
from bosun.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from bosun.scheduler.plugins.podtopologyspread import PodTopologySpread
from bosun.scheduler.plugins.tainttoleration import TaintToleration
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.testing import filter_nodes, make_cache, make_node, make_pod


def _passing(result: dict[str, bool]) -> set[str]:
    return {name for name, ok in result.items() if ok}


# ---------------------------------------------------------------- NodeResourcesFit


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        pytest.param("1", "1Gi", {"small", "big"}, id="fits both"),
        pytest.param("3", "1Gi", {"big"}, id="cpu only on big"),
        pytest.param("1", "20Gi", {"big"}, id="memory only on big"),
        pytest.param("9", "", set(), id="fits none"),
        pytest.param("", "", {"small", "big"}, id="no requests fit anywhere with pod room"),
    ],
)
def test_resources_fit_compares_requests_with_free_allocatable(
    cpu: str, memory: str, expected: set[str]
) -> None:
    cache = make_cache(
        [make_node("small", cpu="4", memory="8Gi"), make_node("big", cpu="8", memory="64Gi")],
        [make_pod("used", cpu="2", memory="4Gi", node_name="small")],
    )
    pod = make_pod("p", cpu=cpu, memory=memory)
    assert _passing(filter_nodes(NodeResourcesFit(), pod, cache)) == expected


def test_resources_fit_counts_pods_and_explains_each_shortfall() -> None:
    cache = make_cache(
        [make_node("full", cpu="1", pods=1)], [make_pod("x", cpu="500m", node_name="full")]
    )
    pod = make_pod("p", cpu="1")
    plugin = NodeResourcesFit()
    assert filter_nodes(plugin, pod, cache) == {"full": False}
    status = plugin.explain(CycleState(), PodInfo.of(pod), cache, cache.at(0))
    assert status.reasons == ("Insufficient cpu", "Too many pods")


def test_resources_fit_keeps_room_for_a_higher_priority_nominated_pod() -> None:
    cache = make_cache([make_node("n", cpu="2")])
    cache.nominate(PodInfo.of(make_pod("vip", cpu="2", priority=100)), "n")
    assert filter_nodes(NodeResourcesFit(), make_pod("low", cpu="1"), cache) == {"n": False}
    assert filter_nodes(NodeResourcesFit(), make_pod("high", cpu="1", priority=100), cache) == {
        "n": False
    }
    assert filter_nodes(NodeResourcesFit(), make_pod("vip", cpu="2", priority=100), cache) == {
        "n": True
    }


# ---------------------------------------------------------------- NodeUnschedulable, NodeName


def test_unschedulable_node_rejects_pods_unless_tolerated() -> None:
    cache = make_cache([make_node("cordoned", unschedulable=True), make_node("open")])
    assert _passing(filter_nodes(NodeUnschedulable(), make_pod("p"), cache)) == {"open"}
    tolerant = make_pod(
        "t",
        tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
    )
    assert _passing(filter_nodes(NodeUnschedulable(), tolerant, cache)) == {"cordoned", "open"}


def test_node_name_limits_the_pod_to_that_node() -> None:
    cache = make_cache([make_node("a"), make_node("b")])
    pod = make_pod("p")
    assert _passing(filter_nodes(NodeName(), pod, cache)) == {"a", "b"}
    pod.spec.node_name = "b"
    assert _passing(filter_nodes(NodeName(), pod, cache)) == {"b"}


# ---------------------------------------------------------------- TaintToleration


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        pytest.param([], {"clean", "soft"}, id="no tolerations"),
        pytest.param(
            [{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}],
            {"clean", "soft", "gpu"},
            id="equal with value and effect",
        ),
        pytest.param(
            [{"key": "gpu", "value": "no"}], {"clean", "soft"}, id="wrong value does not tolerate"
        ),
        pytest.param(
            [{"key": "gpu", "operator": "Exists"}], {"clean", "soft", "gpu"}, id="exists any value"
        ),
        pytest.param(
            [{"operator": "Exists"}],
            {"clean", "soft", "gpu", "evict"},
            id="empty key with exists tolerates everything",
        ),
        pytest.param(
            [{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}],
            {"clean", "soft"},
            id="effect must match",
        ),
    ],
)
def test_taints_keep_off_pods_that_do_not_tolerate_them(
    tolerations: list[dict[str, str]], expected: set[str]
) -> None:
    cache = make_cache(
        [
            make_node("clean"),
            make_node("soft", taints=[("spot", "true", "PreferNoSchedule")]),
            make_node("gpu", taints=[("gpu", "yes", "NoSchedule")]),
            make_node("evict", taints=[("dying", "", "NoExecute")]),
        ]
    )
    pod = make_pod("p", tolerations=tolerations)
    assert _passing(filter_nodes(TaintToleration(), pod, cache)) == expected


def test_taint_reason_names_the_taint() -> None:
    cache = make_cache([make_node("gpu", taints=[("gpu", "yes", "NoSchedule")])])
    status = TaintToleration().explain(CycleState(), PodInfo.of(make_pod("p")), cache, cache.at(0))
    assert status.reasons == ("node(s) had untolerated taint {gpu: yes}",)


# ---------------------------------------------------------------- NodeAffinity


def _requirement(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


def _with_required(pod: core_pb2.Pod, *terms: list[dict[str, Any]]) -> core_pb2.Pod:
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    for expressions in terms:
        term = required.node_selector_terms.add()
        for expression in expressions:
            term.match_expressions.add(**expression)
    return pod


_ZONED = [
    make_node("a", labels={"zone": "z1", "cores": "8"}),
    make_node("b", labels={"zone": "z2", "cores": "32"}),
    make_node("c", labels={"cores": "x"}),
]


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        pytest.param([[_requirement("zone", "In", "z1")]], {"a"}, id="In"),
        pytest.param([[_requirement("zone", "NotIn", "z1")]], {"b", "c"}, id="NotIn (and absent)"),
        pytest.param([[_requirement("zone", "Exists")]], {"a", "b"}, id="Exists"),
        pytest.param([[_requirement("zone", "DoesNotExist")]], {"c"}, id="DoesNotExist"),
        pytest.param([[_requirement("cores", "Gt", "16")]], {"b"}, id="Gt (non-integer: no)"),
        pytest.param([[_requirement("cores", "Lt", "16")]], {"a"}, id="Lt"),
        pytest.param(
            [[_requirement("zone", "In", "z1")], [_requirement("zone", "In", "z2")]],
            {"a", "b"},
            id="terms are ORed",
        ),
        pytest.param(
            [[_requirement("zone", "Exists"), _requirement("cores", "Gt", "10")]],
            {"b"},
            id="expressions are ANDed",
        ),
        pytest.param([[]], set(), id="an empty term matches nothing"),
    ],
)
def test_required_node_affinity_operators(
    terms: list[list[dict[str, Any]]], expected: set[str]
) -> None:
    pod = _with_required(make_pod("p"), *terms)
    assert _passing(filter_nodes(NodeAffinity(), pod, make_cache(_ZONED))) == expected


def test_node_selector_and_affinity_must_both_match() -> None:
    pod = _with_required(
        make_pod("p", node_selector={"cores": "8"}), [_requirement("zone", "Exists")]
    )
    assert _passing(filter_nodes(NodeAffinity(), pod, make_cache(_ZONED))) == {"a"}


def test_match_fields_selects_by_node_name() -> None:
    pod = make_pod("p")
    required = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    required.node_selector_terms.add().match_fields.add(
        key="metadata.name", operator="In", values=["c"]
    )
    assert _passing(filter_nodes(NodeAffinity(), pod, make_cache(_ZONED))) == {"c"}


# ---------------------------------------------------------------- NodePorts


def test_host_ports_conflict_on_the_same_node_only() -> None:
    cache = make_cache(
        [make_node("a"), make_node("b")], [make_pod("web", host_ports=[80], node_name="a")]
    )
    assert _passing(filter_nodes(NodePorts(), make_pod("p", host_ports=[80]), cache)) == {"b"}
    assert _passing(filter_nodes(NodePorts(), make_pod("q", host_ports=[81]), cache)) == {"a", "b"}


def test_host_ip_specific_port_conflicts_with_wildcard() -> None:
    cache = make_cache([make_node("a")], [make_pod("web", host_ports=[80], node_name="a")])
    pod = make_pod("p")
    pod.spec.containers[0].ports.add(container_port=80, host_port=80, host_ip="10.0.0.1")
    assert filter_nodes(NodePorts(), pod, cache) == {"a": False}


# ---------------------------------------------------------------- PodTopologySpread


def _spread(pod: core_pb2.Pod, key: str, skew: int, when: str = "DoNotSchedule") -> core_pb2.Pod:
    constraint = pod.spec.topology_spread_constraints.add(
        max_skew=skew, topology_key=key, when_unsatisfiable=when
    )
    constraint.label_selector.match_labels.update(pod.metadata.labels)
    return pod


def _zones() -> list[core_pb2.Node]:
    return [
        make_node("a1", labels={"zone": "a"}),
        make_node("a2", labels={"zone": "a"}),
        make_node("b1", labels={"zone": "b"}),
        make_node("nolabel"),
    ]


@pytest.mark.parametrize(
    ("existing", "skew", "expected"),
    [
        pytest.param([], 1, {"a1", "a2", "b1"}, id="empty: any labelled node"),
        pytest.param(["a1"], 1, {"b1"}, id="one in zone a: only zone b keeps skew 1"),
        pytest.param(["a1"], 2, {"a1", "a2", "b1"}, id="skew 2 allows a second in a"),
        pytest.param(["a1", "b1"], 1, {"a1", "a2", "b1"}, id="balanced: anywhere labelled"),
    ],
)
def test_topology_spread_keeps_skew_within_max(
    existing: list[str], skew: int, expected: set[str]
) -> None:
    pods = [
        make_pod(f"e{i}", labels={"app": "web"}, node_name=node) for i, node in enumerate(existing)
    ]
    cache = make_cache(_zones(), pods)
    pod = _spread(make_pod("p", labels={"app": "web"}), "zone", skew)
    assert _passing(filter_nodes(PodTopologySpread(), pod, cache)) == expected


def test_topology_spread_ignores_pods_that_do_not_match_and_other_namespaces() -> None:
    pods = [
        make_pod("other", labels={"app": "db"}, node_name="a1"),
        make_pod("elsewhere", namespace="x", labels={"app": "web"}, node_name="a1"),
    ]
    cache = make_cache(_zones(), pods)
    pod = _spread(make_pod("p", labels={"app": "web"}), "zone", 1)
    assert _passing(filter_nodes(PodTopologySpread(), pod, cache)) == {"a1", "a2", "b1"}


# ---------------------------------------------------------------- InterPodAffinity


def _term(labels: dict[str, str], key: str = "kubernetes.io/hostname") -> core_pb2.PodAffinityTerm:
    term = core_pb2.PodAffinityTerm(topology_key=key)
    term.label_selector.match_labels.update(labels)
    return term


def test_required_anti_affinity_avoids_nodes_with_matching_pods() -> None:
    cache = make_cache(
        [make_node("a"), make_node("b")], [make_pod("w", labels={"app": "web"}, node_name="a")]
    )
    pod = make_pod("p", labels={"app": "web"})
    pod.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.append(
        _term({"app": "web"})
    )
    assert _passing(filter_nodes(InterPodAffinity(), pod, cache)) == {"b"}


def test_existing_pods_anti_affinity_is_respected_symmetrically() -> None:
    loner = make_pod("loner", labels={"app": "loner"}, node_name="a")
    loner.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.append(
        _term({"app": "web"})
    )
    cache = make_cache([make_node("a"), make_node("b")], [loner])
    web = make_pod("p", labels={"app": "web"})
    assert _passing(filter_nodes(InterPodAffinity(), web, cache)) == {"b"}
    assert _passing(filter_nodes(InterPodAffinity(), make_pod("q"), cache)) == {"a", "b"}


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        pytest.param({"b": {"app": "db"}}, {"b"}, id="goes where the matching pod is"),
        pytest.param({}, set(), id="no matching pod anywhere and not self-matching: nowhere"),
    ],
)
def test_required_affinity_by_zone(existing: dict[str, dict[str, str]], expected: set[str]) -> None:
    nodes = [make_node("a", labels={"zone": "1"}), make_node("b", labels={"zone": "2"})]
    pods = [make_pod(f"e-{n}", labels=labels, node_name=n) for n, labels in existing.items()]
    pod = make_pod("p", labels={"app": "web"})
    pod.spec.affinity.pod_affinity.required_during_scheduling_ignored_during_execution.append(
        _term({"app": "db"}, key="zone")
    )
    assert _passing(filter_nodes(InterPodAffinity(), pod, make_cache(nodes, pods))) == expected


def test_first_pod_of_a_self_affine_group_may_go_anywhere() -> None:
    cache = make_cache([make_node("a"), make_node("b")])
    pod = make_pod("p", labels={"app": "web"})
    pod.spec.affinity.pod_affinity.required_during_scheduling_ignored_during_execution.append(
        _term({"app": "web"})
    )
    assert _passing(filter_nodes(InterPodAffinity(), pod, cache)) == {"a", "b"}


def test_topology_spread_min_domains_counts_missing_domains_as_empty() -> None:
    cache = make_cache(
        [make_node("a1", labels={"zone": "a"}), make_node("b1", labels={"zone": "b"})],
        [make_pod("e0", labels={"app": "web"}, node_name="a1")],
    )
    pod = _spread(make_pod("p", labels={"app": "web"}), "zone", 1)
    pod.spec.topology_spread_constraints[0].min_domains = 3
    # Fewer domains (2) than minDomains (3): the global minimum is 0, so zone a (1 pod) would
    # reach skew 2; zone b (0 pods) stays at 1.
    assert _passing(filter_nodes(PodTopologySpread(), pod, cache)) == {"b1"}


def test_topology_spread_rejects_nodes_without_the_key_as_unresolvable() -> None:
    cache = make_cache([make_node("bare")])
    pod = _spread(make_pod("p", labels={"app": "web"}), "zone", 1)
    plugin = PodTopologySpread()
    state = CycleState()
    info = PodInfo.of(pod)
    plugin.pre_filter(state, info, cache)
    status = plugin.explain(state, info, cache, cache.at(0))
    assert status.reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",
    )
    assert status.code is StatusCode.UNSCHEDULABLE_AND_UNRESOLVABLE


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param(None, {"a", "b"}, id="no selector: the pod's own namespace only"),
        pytest.param({}, {"b"}, id="empty selector: every namespace"),
        pytest.param({"team": "web"}, {"b"}, id="selector matching the other namespace"),
        pytest.param({"team": "db"}, {"a", "b"}, id="selector matching nothing"),
    ],
)
def test_anti_affinity_namespace_selector(
    selector: dict[str, str] | None, expected: set[str]
) -> None:
    cache = make_cache(
        [make_node("a"), make_node("b")],
        [make_pod("w", namespace="frontend", labels={"app": "web"}, node_name="a")],
    )
    frontend = core_pb2.Namespace()
    frontend.metadata.name = "frontend"
    frontend.metadata.labels["team"] = "web"
    cache.set_namespace(frontend)
    pod = make_pod("p", namespace="default", labels={"app": "web"})
    anti = pod.spec.affinity.pod_anti_affinity
    term = anti.required_during_scheduling_ignored_during_execution.add(
        topology_key="kubernetes.io/hostname"
    )
    term.label_selector.match_labels["app"] = "web"
    if selector is not None:
        term.namespace_selector.SetInParent()
        term.namespace_selector.match_labels.update(selector)
    assert _passing(filter_nodes(InterPodAffinity(), pod, cache)) == expected
