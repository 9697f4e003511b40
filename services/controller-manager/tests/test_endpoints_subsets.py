"""Which pods become which Endpoints addresses, on which ports."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.controllermanager.endpoints import desired_subsets


def service(*ports: tuple[str, int, str], publish_not_ready: bool = False) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = "web", "default"
    svc.spec.selector["app"] = "web"
    svc.spec.publish_not_ready_addresses = publish_not_ready
    for name, port, target in ports:
        svc.spec.ports.add(name=name, port=port, target_port=target, protocol="TCP")
    return svc


def pod(
    name: str,
    ip: str,
    *,
    ready: bool = True,
    labels: dict[str, str] | None = None,
    named_port: tuple[str, int] | None = None,
    phase: str = "Running",
    terminating: bool = False,
) -> core_pb2.Pod:
    obj = core_pb2.Pod()
    obj.metadata.name, obj.metadata.namespace, obj.metadata.uid = name, "default", f"uid-{name}"
    obj.metadata.labels.update(labels if labels is not None else {"app": "web"})
    container = obj.spec.containers.add(name="app", image="busybox")
    if named_port:
        container.ports.add(name=named_port[0], container_port=named_port[1], protocol="TCP")
    obj.spec.node_name = "node-1"
    obj.status.phase = phase
    obj.status.pod_ip = ip
    obj.status.conditions.add(type="Ready", status="True" if ready else "False")
    if terminating:
        obj.metadata.deletion_timestamp.GetCurrentTime()
    return obj


def ips(addresses: object) -> list[str]:
    return [address.ip for address in addresses]  # type: ignore[attr-defined]


def test_ready_pods_are_addresses_and_the_others_not_ready_addresses() -> None:
    (subset,) = desired_subsets(
        service(("http", 80, "8080")),
        [pod("b", "10.0.0.2"), pod("a", "10.0.0.1"), pod("c", "10.0.0.3", ready=False)],
    )
    assert ips(subset.addresses) == ["10.0.0.1", "10.0.0.2"]
    assert ips(subset.not_ready_addresses) == ["10.0.0.3"]
    assert [(p.name, p.port) for p in subset.ports] == [("http", 8080)]
    assert subset.addresses[0].target_ref.name == "a"
    assert subset.addresses[0].node_name == "node-1"


def test_pods_not_selected_without_ip_terminating_or_finished_are_left_out() -> None:
    subsets = desired_subsets(
        service(("", 80, "80")),
        [
            pod("other", "10.0.0.1", labels={"app": "db"}),
            pod("pending", ""),
            pod("leaving", "10.0.0.3", terminating=True),
            pod("done", "10.0.0.4", phase="Succeeded"),
        ],
    )
    assert subsets == []


def test_a_named_target_port_is_resolved_per_pod() -> None:
    subsets = desired_subsets(
        service(("http", 80, "web")),
        [
            pod("a", "10.0.0.1", named_port=("web", 8080)),
            pod("b", "10.0.0.2", named_port=("web", 9090)),
        ],
    )
    assert sorted((s.ports[0].port, ips(s.addresses)[0]) for s in subsets) == [
        (8080, "10.0.0.1"),
        (9090, "10.0.0.2"),
    ]


def test_a_pod_without_the_named_port_serves_only_the_other_ports() -> None:
    (subset,) = desired_subsets(
        service(("http", 80, "web"), ("metrics", 9100, "9100")), [pod("a", "10.0.0.1")]
    )
    assert [(p.name, p.port) for p in subset.ports] == [("metrics", 9100)]


def test_publish_not_ready_addresses_makes_every_pod_an_address() -> None:
    (subset,) = desired_subsets(
        service(("", 80, "80"), publish_not_ready=True), [pod("a", "10.0.0.1", ready=False)]
    )
    assert ips(subset.addresses) == ["10.0.0.1"]
    assert list(subset.not_ready_addresses) == []


def test_a_service_without_a_selector_selects_nothing() -> None:
    svc = service(("", 80, "80"))
    svc.spec.selector.clear()
    assert desired_subsets(svc, [pod("a", "10.0.0.1")]) == []
