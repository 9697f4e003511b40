"""The framework as a whole: the default profile's choices, the FailedScheduling summary,
adaptive node sampling, and preemption's choice of victims."""

from __future__ import annotations

from pathlib import Path

import pytest

from bosun.api.v1 import core_pb2
from bosun.scheduler.config import ConfigError, SchedulerConfig, load_config, parse_config
from bosun.scheduler.framework import CycleState
from bosun.scheduler.plugins.defaultbinder import DefaultBinder
from bosun.scheduler.podinfo import PodInfo
from bosun.scheduler.registry import Handle, build_framework
from bosun.scheduler.runtime import FitError, Framework, nodes_to_score
from bosun.scheduler.testing import make_cache, make_node, make_pod


class NoBinds:
    async def bind(
        self, name: str, node_name: str, *, namespace: str = "", uid: str = ""
    ) -> core_pb2.Pod:
        raise AssertionError("not called")


def _framework(config: SchedulerConfig | None = None) -> Framework:
    return build_framework(config or SchedulerConfig(), Handle(pods=NoBinds()))


def test_failed_scheduling_message_counts_reasons_most_frequent_first() -> None:
    nodes = [make_node(f"small{i}", cpu="1") for i in range(3)] + [
        make_node(f"tainted{i}", taints=[("key", "v", "NoSchedule")]) for i in range(2)
    ]
    with pytest.raises(FitError) as caught:
        _framework().schedule(CycleState(), PodInfo.of(make_pod("p", cpu="2")), make_cache(nodes))
    assert str(caught.value) == (
        "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) had untolerated taint {key: v}."
    )


def test_no_nodes_at_all() -> None:
    with pytest.raises(FitError, match=r"^0/0 nodes are available\.$"):
        _framework().schedule(CycleState(), PodInfo.of(make_pod("p")), make_cache([]))


def test_default_profile_spreads_pods_over_nodes() -> None:
    cache = make_cache([make_node(f"n{i}") for i in range(4)])
    framework = _framework()
    for index in range(8):
        info = PodInfo.of(make_pod(f"p{index}", cpu="500m", memory="1Gi"))
        cache.assume(info, framework.schedule(CycleState(), info, cache).node)
    assert sorted(len(node.pods) for node in cache.nodes()) == [2, 2, 2, 2]


def test_never_overcommits_when_nodes_fill_up() -> None:
    cache = make_cache([make_node(f"n{i}", cpu="2") for i in range(3)])
    framework = _framework()
    placed = 0
    for index in range(10):
        info = PodInfo.of(make_pod(f"p{index}", cpu="1"))
        try:
            node = framework.schedule(CycleState(), info, cache).node
        except FitError:
            continue
        cache.assume(info, node)
        placed += 1
    assert placed == 6
    assert (cache.requested[cache.live_slots()] <= cache.allocatable[cache.live_slots()]).all()


@pytest.mark.parametrize(
    ("total", "percentage", "expected"),
    [
        (50, 0, 50),
        (500, 0, 230),  # 50 - 4 = 46%
        (5000, 0, 500),  # 50 - 40 = 10%
        (20000, 0, 1000),  # floor of 5%
        (1000, 100, 1000),
        (1000, 1, 100),  # never fewer than 100
    ],
)
def test_adaptive_number_of_nodes_to_score(total: int, percentage: int, expected: int) -> None:
    assert nodes_to_score(total, percentage) == expected


# ---------------------------------------------------------------- preemption


def _preempt(cache_pods: list[core_pb2.Pod], nodes: list[core_pb2.Node], pod: core_pb2.Pod):  # type: ignore[no-untyped-def]
    cache = make_cache(nodes, cache_pods)
    framework = _framework()
    info = PodInfo.of(pod)
    state = CycleState()
    with pytest.raises(FitError) as caught:
        framework.schedule(state, info, cache)
    result, _ = framework.run_post_filter(state, info, cache, caught.value.diagnosis)
    return result


def test_preemption_picks_the_node_with_the_fewest_lowest_priority_victims() -> None:
    nodes = [make_node("a", cpu="2"), make_node("b", cpu="2")]
    pods = [
        make_pod("a-low1", cpu="1", priority=1, node_name="a"),
        make_pod("a-low2", cpu="1", priority=1, node_name="a"),
        make_pod("b-low", cpu="1", priority=1, node_name="b"),
        make_pod("b-mid", cpu="1", priority=5, node_name="b"),
    ]
    result = _preempt(pods, nodes, make_pod("vip", cpu="1", priority=10))
    assert result is not None
    assert result.nominated_node == "a"
    assert [v.key for v in result.victims] == ["default/a-low1"] or [
        v.key for v in result.victims
    ] == ["default/a-low2"]


def test_preemption_never_evicts_equal_or_higher_priority_pods() -> None:
    nodes = [make_node("a", cpu="1")]
    pods = [make_pod("peer", cpu="1", priority=10, node_name="a")]
    assert _preempt(pods, nodes, make_pod("vip", cpu="1", priority=10)) is None


def test_preemption_does_not_help_against_taints() -> None:
    nodes = [make_node("a", cpu="1", taints=[("k", "v", "NoSchedule")])]
    pods = [make_pod("low", cpu="1", priority=0, node_name="a")]
    assert _preempt(pods, nodes, make_pod("vip", cpu="1", priority=10)) is None


def test_preemption_policy_never() -> None:
    nodes = [make_node("a", cpu="1")]
    pods = [make_pod("low", cpu="1", node_name="a")]
    pod = make_pod("vip", cpu="1", priority=10)
    pod.spec.preemption_policy = "Never"
    assert _preempt(pods, nodes, pod) is None


# ---------------------------------------------------------------- configuration


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scheduler.yaml"
    path.write_text(text)
    return path


def test_config_enables_plugins_and_sets_weights(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
  - schedulerName: batch
    plugins:
      score:
        disabled: [{name: NodeResourcesBalancedAllocation}]
        enabled: [{name: ImageLocality, weight: 7}]
    pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated}}
""",
        )
    )
    assert config.scheduler_name == "batch"
    framework = _framework(config)
    names = [plugin.name for plugin in framework.score]
    assert "NodeResourcesBalancedAllocation" not in names
    assert framework.weights["ImageLocality"] == 7
    assert framework.weights["TaintToleration"] == 3
    assert framework.percentage_of_nodes_to_score == 30
    assert isinstance(framework.bind[0], DefaultBinder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("percentageOfNodesToScore: 120", r"percentageOfNodesToScore: must be an integer"),
        ("profiles: [{plugins: {sc0re: {}}}]", r"profiles\[0\]\.plugins\.sc0re: unknown field"),
        (
            "profiles: [{plugins: {score: {enabled: [{name: ImageLocality, weight: 0.5}]}}}]",
            r"profiles\[0\]\.plugins\.score\.enabled\[0\]\.weight",
        ),
        ("kind: Pod", r"kind: must be"),
        ("profiles: [{}, {}]", r"only one profile"),
        ("- a\n- b", r"must be a mapping"),
        ("a: [", r"not valid YAML"),
    ],
)
def test_bad_config_names_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]},
            r"profiles\[0\]\.plugins\.filter\.enabled\[0\]: unknown plugin 'Nope'",
        ),
        (
            {"profiles": [{"plugins": {"score": {"enabled": [{"name": "NodePorts"}]}}}]},
            r"does not implement score",
        ),
        (
            {"profiles": [{"plugins": {"bind": {"disabled": [{"name": "*"}]}}}]},
            r"no bind plugin",
        ),
        (
            {
                "profiles": [
                    {
                        "pluginConfig": [
                            {"name": "NodeResourcesFit", "args": {"scoringStrategy": {"type": "X"}}}
                        ]
                    }
                ]
            },
            r"pluginConfig\[NodeResourcesFit\]\.args: scoringStrategy\.type",
        ),
    ],
)
def test_bad_plugin_configuration_is_refused(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _framework(parse_config(document, "test.yaml"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_preemption_reprieves_the_more_important_pods() -> None:
    nodes = [make_node("a", cpu="2")]
    pods = [
        make_pod("least", cpu="1", priority=1, node_name="a"),
        make_pod("more", cpu="1", priority=5, node_name="a"),
    ]
    result = _preempt(pods, nodes, make_pod("vip", cpu="1", priority=10))
    assert result is not None
    assert [v.key for v in result.victims] == ["default/least"]


def test_preemptor_waits_while_its_victims_terminate() -> None:
    terminating = make_pod("going", cpu="1", priority=1, node_name="a")
    terminating.metadata.deletion_timestamp.seconds = 1
    nodes = [make_node("a", cpu="1")]
    pod = make_pod("vip", cpu="1", priority=10)
    pod.status.nominated_node_name = "a"
    cache = make_cache(nodes, [terminating])
    framework = _framework()
    info = PodInfo.of(pod)
    state = CycleState()
    with pytest.raises(FitError) as caught:
        framework.schedule(state, info, cache)
    result, status = framework.run_post_filter(state, info, cache, caught.value.diagnosis)
    assert result is None
    assert "terminating" in status.reasons[0]


def test_preemption_resolves_anti_affinity_by_evicting_the_conflicting_pod() -> None:
    nodes = [make_node("a", cpu="4")]
    pods = [make_pod("rival", cpu="100m", priority=1, labels={"app": "web"}, node_name="a")]
    pod = make_pod("vip", cpu="100m", priority=10, labels={"app": "web"})
    anti = pod.spec.affinity.pod_anti_affinity
    term = anti.required_during_scheduling_ignored_during_execution.add(
        topology_key="kubernetes.io/hostname"
    )
    term.label_selector.match_labels["app"] = "web"
    result = _preempt(pods, nodes, pod)
    assert result is not None
    assert [v.key for v in result.victims] == ["default/rival"]
