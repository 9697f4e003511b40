"""Server-side defaults: Kubernetes' values for unset fields, and nothing set twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.apiserver.defaulting import apply_defaults, default_pull_policy
from bosun.common import testing
from bosun.common.kinds import KINDS, for_message


def defaulted(obj: Message) -> Any:
    apply_defaults(for_message(obj), obj)
    return obj


def deployment() -> apps_pb2.Deployment:
    obj = apps_pb2.Deployment()
    obj.metadata.name, obj.metadata.namespace = "web", "default"
    obj.spec.selector.match_labels["app"] = "web"
    obj.spec.template.metadata.labels["app"] = "web"
    obj.spec.template.spec.containers.add(name="web", image="nginx")
    return obj


def service() -> core_pb2.Service:
    obj = core_pb2.Service()
    obj.metadata.name, obj.metadata.namespace = "web", "default"
    obj.spec.ports.add(port=80)
    return obj


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_api_version_and_kind_come_from_the_registry(kind: str) -> None:
    info = KINDS[kind]
    obj: Any = info.message()
    apply_defaults(info, obj)
    assert (obj.api_version, obj.kind) == (info.api_version, info.kind)


POD_DEFAULTS: list[tuple[str, Callable[[Any], object], object]] = [
    ("restartPolicy", lambda p: p.spec.restart_policy, "Always"),
    ("terminationGracePeriodSeconds", lambda p: p.spec.termination_grace_period_seconds, 30),
    ("dnsPolicy", lambda p: p.spec.dns_policy, "ClusterFirst"),
    ("schedulerName", lambda p: p.spec.scheduler_name, "default-scheduler"),
    ("priority", lambda p: (p.spec.HasField("priority"), p.spec.priority), (True, 0)),
    ("enableServiceLinks", lambda p: p.spec.enable_service_links, True),
    (
        "terminationMessagePath",
        lambda p: p.spec.containers[0].termination_message_path,
        "/dev/termination-log",
    ),
    ("terminationMessagePolicy", lambda p: p.spec.containers[0].termination_message_policy, "File"),
    ("imagePullPolicy", lambda p: p.spec.containers[0].image_pull_policy, "IfNotPresent"),
]


@pytest.mark.parametrize(
    ("read", "expected"), [(r, e) for _, r, e in POD_DEFAULTS], ids=[n for n, _, _ in POD_DEFAULTS]
)
def test_pod_defaults(read: Callable[[Any], object], expected: object) -> None:
    assert read(defaulted(testing.pod("web"))) == expected


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("registry:5000/busybox", "Always"),
        ("registry:5000/busybox:1.36", "IfNotPresent"),
        ("registry:5000/team/busybox:latest", "Always"),
        ("busybox@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


def test_init_containers_are_defaulted_too() -> None:
    pod = testing.pod("web")
    pod.spec.init_containers.add(name="init", image="busybox:latest")
    assert defaulted(pod).spec.init_containers[0].image_pull_policy == "Always"


def test_explicit_pod_values_are_kept() -> None:
    pod = testing.pod("web")
    pod.spec.restart_policy = "Never"
    pod.spec.termination_grace_period_seconds = 0
    pod.spec.enable_service_links = False
    pod.spec.priority = 0
    pod.spec.containers[0].image_pull_policy = "Never"
    pod = defaulted(pod)
    assert pod.spec.restart_policy == "Never"
    assert pod.spec.termination_grace_period_seconds == 0
    assert pod.spec.enable_service_links is False
    assert pod.spec.containers[0].image_pull_policy == "Never"


def test_container_port_protocol_defaults_to_tcp() -> None:
    pod = testing.pod("web")
    pod.spec.containers[0].ports.add(container_port=80)
    pod.spec.containers[0].ports.add(container_port=53, protocol="UDP")
    assert [p.protocol for p in defaulted(pod).spec.containers[0].ports] == ["TCP", "UDP"]


def test_probe_defaults() -> None:
    pod = testing.pod("web")
    pod.spec.containers[0].liveness_probe.http_get.port = "8080"
    probe = defaulted(pod).spec.containers[0].liveness_probe
    assert (probe.timeout_seconds, probe.period_seconds) == (1, 10)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)
    assert (probe.http_get.scheme, probe.http_get.path) == ("HTTP", "/")


def test_unset_probe_stays_unset() -> None:
    pod = defaulted(testing.pod("web"))
    assert not pod.spec.containers[0].HasField("readiness_probe")


def test_toleration_operator_defaults_to_equal() -> None:
    pod = testing.pod("web")
    pod.spec.tolerations.add(key="k", value="v")
    pod.spec.tolerations.add(key="j", operator="Exists")
    assert [t.operator for t in defaulted(pod).spec.tolerations] == ["Equal", "Exists"]


def test_config_map_volume_mode_defaults_to_0644() -> None:
    pod = testing.pod("web")
    pod.spec.volumes.add(name="cfg").config_map.name = "cfg"
    assert defaulted(pod).spec.volumes[0].config_map.default_mode == 0o644


@pytest.mark.parametrize(
    "make", [lambda: testing.replica_set("web"), deployment], ids=["ReplicaSet", "Deployment"]
)
def test_unset_replicas_default_to_one(make: Callable[[], Any]) -> None:
    obj = make()
    obj.spec.ClearField("replicas")
    assert defaulted(obj).spec.replicas == 1


def test_zero_replicas_are_kept() -> None:
    rs = testing.replica_set("web", replicas=0)
    assert defaulted(rs).spec.replicas == 0


@pytest.mark.parametrize(
    "make", [lambda: testing.replica_set("web"), deployment], ids=["ReplicaSet", "Deployment"]
)
def test_pod_template_is_defaulted(make: Callable[[], Any]) -> None:
    spec = defaulted(make()).spec.template.spec
    assert spec.restart_policy == "Always"
    assert spec.containers[0].termination_message_policy == "File"


DEPLOYMENT_DEFAULTS: list[tuple[str, Callable[[Any], object], object]] = [
    ("strategy type", lambda d: d.spec.strategy.type, "RollingUpdate"),
    ("maxSurge", lambda d: d.spec.strategy.rolling_update.max_surge, "25%"),
    ("maxUnavailable", lambda d: d.spec.strategy.rolling_update.max_unavailable, "25%"),
    ("revisionHistoryLimit", lambda d: d.spec.revision_history_limit, 10),
    ("progressDeadlineSeconds", lambda d: d.spec.progress_deadline_seconds, 600),
    ("image pull policy", lambda d: d.spec.template.spec.containers[0].image_pull_policy, "Always"),
]


@pytest.mark.parametrize(
    ("read", "expected"),
    [(r, e) for _, r, e in DEPLOYMENT_DEFAULTS],
    ids=[n for n, _, _ in DEPLOYMENT_DEFAULTS],
)
def test_deployment_defaults(read: Callable[[Any], object], expected: object) -> None:
    assert read(defaulted(deployment())) == expected


def test_recreate_deployment_gets_no_rolling_update() -> None:
    obj = deployment()
    obj.spec.strategy.type = "Recreate"
    assert not defaulted(obj).spec.strategy.HasField("rolling_update")


def test_explicit_rolling_update_values_are_kept() -> None:
    obj = deployment()
    obj.spec.strategy.rolling_update.max_surge = "1"
    rolling = defaulted(obj).spec.strategy.rolling_update
    assert (rolling.max_surge, rolling.max_unavailable) == ("1", "25%")


SERVICE_DEFAULTS: list[tuple[str, Callable[[Any], object], object]] = [
    ("type", lambda s: s.spec.type, "ClusterIP"),
    ("sessionAffinity", lambda s: s.spec.session_affinity, "None"),
    ("port protocol", lambda s: s.spec.ports[0].protocol, "TCP"),
    ("targetPort", lambda s: s.spec.ports[0].target_port, "80"),
]


@pytest.mark.parametrize(
    ("read", "expected"),
    [(r, e) for _, r, e in SERVICE_DEFAULTS],
    ids=[n for n, _, _ in SERVICE_DEFAULTS],
)
def test_service_defaults(read: Callable[[Any], object], expected: object) -> None:
    assert read(defaulted(service())) == expected


def test_explicit_target_port_is_kept() -> None:
    obj = service()
    obj.spec.ports[0].target_port = "http"
    assert defaulted(obj).spec.ports[0].target_port == "http"


def test_secret_type_defaults_to_opaque() -> None:
    assert defaulted(core_pb2.Secret()).type == "Opaque"


def test_secret_string_data_is_merged_into_data_and_cleared() -> None:
    secret = core_pb2.Secret()
    secret.data["kept"] = b"1"
    secret.data["replaced"] = b"old"
    secret.string_data.update({"replaced": "new", "added": "ü"})
    secret = defaulted(secret)
    assert dict(secret.data) == {"kept": b"1", "replaced": b"new", "added": "ü".encode()}
    assert not secret.string_data


def test_namespace_phase_defaults_to_active() -> None:
    assert defaulted(testing.namespace("prod")).status.phase == "Active"


def test_event_count_and_type_defaults() -> None:
    event = defaulted(core_pb2.Event())
    assert (event.count, event.type) == (1, "Normal")


def test_event_explicit_count_and_type_are_kept() -> None:
    event = defaulted(core_pb2.Event(count=7, type="Warning"))
    assert (event.count, event.type) == (7, "Warning")


@pytest.mark.parametrize(
    "make",
    [
        lambda: testing.pod("web"),
        deployment,
        lambda: testing.replica_set("web"),
        service,
        lambda: core_pb2.Secret(string_data={"a": "b"}),
        lambda: testing.namespace("n"),
        lambda: core_pb2.Event(),
    ],
    ids=["Pod", "Deployment", "ReplicaSet", "Service", "Secret", "Namespace", "Event"],
)
def test_defaulting_is_idempotent(make: Callable[[], Message]) -> None:
    once = defaulted(make())
    twice = type(once)()
    twice.CopyFrom(once)
    apply_defaults(for_message(twice), twice)
    assert twice == once
