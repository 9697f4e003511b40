"""The resolver a pod's sandbox gets, per dnsPolicy."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.kubelet.context import WorkerSettings
from bosun.kubelet.podworker import pod_dns

CLUSTER = WorkerSettings(cluster_dns=("10.96.0.10",))


def pod(policy: str = "", *, host_network: bool = False) -> core_pb2.Pod:
    obj = core_pb2.Pod()
    obj.metadata.name, obj.metadata.namespace = "web", "shop"
    obj.spec.dns_policy = policy
    obj.spec.host_network = host_network
    return obj


def test_cluster_first_uses_the_cluster_dns_with_the_namespace_search_path() -> None:
    assert pod_dns(pod(), CLUSTER) == (
        ("10.96.0.10",),
        ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local"),
        ("ndots:5",),
    )


def test_default_policy_and_a_kubelet_without_cluster_dns_use_the_nodes_resolver() -> None:
    assert pod_dns(pod("Default"), CLUSTER) == ((), (), ())
    assert pod_dns(pod(), WorkerSettings()) == ((), (), ())


def test_host_network_pods_need_cluster_first_with_host_net() -> None:
    assert pod_dns(pod(host_network=True), CLUSTER) == ((), (), ())
    assert pod_dns(pod("ClusterFirstWithHostNet", host_network=True), CLUSTER)[0] == ("10.96.0.10",)
