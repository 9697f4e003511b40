"""Object validation: every error collected, each rendered with its Kubernetes field path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import Message

from bosun.api.v1 import apps_pb2, coordination_pb2, core_pb2
from bosun.apiserver.defaulting import apply_defaults
from bosun.apiserver.validation import (
    ErrorType,
    FieldError,
    validate_object,
    validate_status_update,
    validate_update,
)
from bosun.common import testing
from bosun.common.kinds import KINDS, for_message

Mutation = Callable[[Any], object]


def _set(target: Any, **fields: Any) -> Any:
    """Set fields on a message and return it (usable inside a lambda)."""
    for name, value in fields.items():
        setattr(target, name, value)
    return target


def rendered(obj: Message) -> list[str]:
    return [str(error) for error in validate_object(for_message(obj), obj)]


def assert_error(obj: Message, expected: str) -> None:
    errors = rendered(obj)
    assert any(error.startswith(expected) for error in errors), errors


def pod() -> core_pb2.Pod:
    return testing.pod("web")


def deployment() -> apps_pb2.Deployment:
    obj = apps_pb2.Deployment(api_version="apps/v1", kind="Deployment")
    obj.metadata.name, obj.metadata.namespace = "web", "default"
    obj.spec.replicas = 2
    obj.spec.selector.match_labels["app"] = "web"
    obj.spec.template.metadata.labels["app"] = "web"
    obj.spec.template.spec.containers.add(name="web", image="nginx:1.25")
    return obj


def service() -> core_pb2.Service:
    obj = core_pb2.Service(api_version="v1", kind="Service")
    obj.metadata.name, obj.metadata.namespace = "web", "default"
    obj.spec.selector["app"] = "web"
    obj.spec.ports.add(port=80, target_port="8080")
    return obj


def event() -> core_pb2.Event:
    obj = core_pb2.Event(api_version="v1", kind="Event", reason="Started")
    obj.metadata.name, obj.metadata.namespace = "web.1", "default"
    obj.involved_object.kind, obj.involved_object.name = "Pod", "web"
    return obj


def secret() -> core_pb2.Secret:
    obj = core_pb2.Secret(api_version="v1", kind="Secret")
    obj.metadata.name, obj.metadata.namespace = "creds", "default"
    obj.data["password"] = b"x"
    return obj


def service_account() -> core_pb2.ServiceAccount:
    obj = core_pb2.ServiceAccount(api_version="v1", kind="ServiceAccount")
    obj.metadata.name, obj.metadata.namespace = "default", "default"
    return obj


def endpoints() -> core_pb2.Endpoints:
    obj = core_pb2.Endpoints(api_version="v1", kind="Endpoints")
    obj.metadata.name, obj.metadata.namespace = "web", "default"
    subset = obj.subsets.add()
    subset.addresses.add(ip="10.0.0.1")
    subset.ports.add(port=8080, protocol="TCP")
    return obj


def persistent_volume() -> core_pb2.PersistentVolume:
    obj = core_pb2.PersistentVolume(api_version="v1", kind="PersistentVolume")
    obj.metadata.name = "pv-1"
    obj.spec.capacity["storage"] = "1Gi"
    obj.spec.access_modes.append("ReadWriteOnce")
    obj.spec.host_path.path = "/srv/pv-1"
    return obj


def persistent_volume_claim() -> core_pb2.PersistentVolumeClaim:
    obj = core_pb2.PersistentVolumeClaim(api_version="v1", kind="PersistentVolumeClaim")
    obj.metadata.name, obj.metadata.namespace = "data", "default"
    obj.spec.access_modes.append("ReadWriteOnce")
    obj.spec.resources.requests["storage"] = "1Gi"
    return obj


VALID: dict[str, Callable[[], Message]] = {
    "Pod": pod,
    "Deployment": deployment,
    "ReplicaSet": lambda: testing.replica_set("web"),
    "Service": service,
    "Node": lambda: testing.node("node-1"),
    "Namespace": lambda: testing.namespace("prod"),
    "Lease": lambda: testing.lease("node-1"),
    "ConfigMap": lambda: testing.config_map("cfg", {"a.conf": "x"}),
    "Secret": secret,
    "Event": event,
    "ServiceAccount": service_account,
    "Endpoints": endpoints,
    "PersistentVolume": persistent_volume,
    "PersistentVolumeClaim": persistent_volume_claim,
}


# ---------------------------------------------------------------------------- FieldError


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (FieldError.required("spec.containers"), "spec.containers: Required value"),
        (
            FieldError.required("metadata.name", "name or generateName is required"),
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            FieldError.invalid("spec.replicas", -1, "must be greater than or equal to 0"),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            FieldError.invalid("spec.selector", {"app": "x"}, "field is immutable"),
            'spec.selector: Invalid value: {"app":"x"}: field is immutable',
        ),
        (FieldError("a.b", "bad", "v"), 'a.b: Invalid value: "v": bad'),
        (
            FieldError.not_supported("spec.restartPolicy", "Sometimes", ("Always", "Never")),
            'spec.restartPolicy: Unsupported value: "Sometimes": supported values: '
            '"Always", "Never"',
        ),
        (
            FieldError.duplicate("spec.containers[1].name", "a"),
            'spec.containers[1].name: Duplicate value: "a"',
        ),
        (FieldError.forbidden("spec", "no"), "spec: Forbidden: no"),
        (FieldError.too_long("data", 10), "data: Too long: must have at most 10 bytes"),
        (FieldError.not_found("x.name", "vol"), 'x.name: Not found: "vol"'),
        (FieldError.invalid("x", True, "m"), "x: Invalid value: true: m"),
        (FieldError.invalid("x", None, "m"), "x: Invalid value: null: m"),
    ],
)
def test_field_error_renders_as_kubernetes_does(error: FieldError, text: str) -> None:
    assert str(error) == text


def test_field_error_type_defaults_to_invalid() -> None:
    assert FieldError("a", "m").type is ErrorType.INVALID


def test_invalid_name_renders_the_rfc_1123_message() -> None:
    obj = testing.pod("Foo_")
    assert rendered(obj) == [
        'metadata.name: Invalid value: "Foo_": a lowercase RFC 1123 subdomain must consist of '
        "lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character"
    ]


# ---------------------------------------------------------------------------- valid objects


@pytest.mark.parametrize("kind", sorted(VALID))
def test_minimal_object_of_each_kind_is_valid(kind: str) -> None:
    assert rendered(VALID[kind]()) == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_defaulted_object_of_each_kind_is_valid(kind: str) -> None:
    obj = VALID[kind]()
    apply_defaults(KINDS[kind], obj)
    assert rendered(obj) == []


def test_every_kind_has_a_valid_example() -> None:
    assert set(VALID) == set(KINDS)


# ---------------------------------------------------------------------------- metadata


def _set_generate_name(obj: Any, prefix: str) -> None:
    obj.metadata.name = ""
    obj.metadata.generate_name = prefix


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda p: _set(p.metadata, name=""),
            "metadata.name: Required value: name or generateName is required",
        ),
        (
            lambda p: _set(p.metadata, name="a" * 254),
            'metadata.name: Invalid value: "'
            + "a" * 254
            + '": must be no more than 253 characters',
        ),
        (lambda p: _set_generate_name(p, "Web-"), 'metadata.generateName: Invalid value: "Web-"'),
        (lambda p: _set(p.metadata, namespace=""), "metadata.namespace: Required value"),
        (
            lambda p: _set(p.metadata, namespace="a.b"),
            'metadata.namespace: Invalid value: "a.b": a lowercase RFC 1123 label',
        ),
        (
            lambda p: p.metadata.labels.update({"bad key!": "v"}),
            'metadata.labels: Invalid value: "bad key!": name part must consist of',
        ),
        (
            lambda p: p.metadata.labels.update({"k": "v" * 64}),
            'metadata.labels: Invalid value: "'
            + "v" * 64
            + '": must be no more than 63 characters',
        ),
        (
            lambda p: p.metadata.labels.update({"k": "-v"}),
            'metadata.labels: Invalid value: "-v": a valid label must be an empty string or '
            "consist of alphanumeric characters",
        ),
        (
            lambda p: p.metadata.labels.update({"Example.com/k": "v"}),
            'metadata.labels: Invalid value: "Example.com/k": prefix part a lowercase RFC 1123',
        ),
        (
            lambda p: p.metadata.annotations.update({"a/b/c": "v"}),
            'metadata.annotations: Invalid value: "a/b/c": a qualified name must consist of',
        ),
        (
            lambda p: p.metadata.annotations.update({"big": "x" * (256 * 1024)}),
            "metadata.annotations: Too long: must have at most 262144 bytes",
        ),
        (
            lambda p: p.metadata.owner_references.add(kind="ReplicaSet", name="rs", uid="u"),
            "metadata.ownerReferences[0].apiVersion: Required value",
        ),
        (
            lambda p: p.metadata.owner_references.add(api_version="v1", kind="K", name="n"),
            "metadata.ownerReferences[0].uid: Required value",
        ),
        (
            lambda p: [
                p.metadata.owner_references.add(
                    api_version="v1", kind="K", name=n, uid=n, controller=True
                )
                for n in "ab"
            ],
            "metadata.ownerReferences: Invalid value: 2: Only one reference can have Controller",
        ),
        (
            lambda p: p.metadata.finalizers.append("bad finalizer"),
            'metadata.finalizers[0]: Invalid value: "bad finalizer"',
        ),
    ],
)
def test_invalid_metadata(mutate: Mutation, expected: str) -> None:
    obj = pod()
    mutate(obj)
    assert_error(obj, expected)


def test_generate_name_alone_is_enough() -> None:
    obj = pod()
    _set_generate_name(obj, "web-")
    assert rendered(obj) == []


def test_namespace_name_must_be_a_dns_label() -> None:
    assert_error(
        testing.namespace("a.b"), 'metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label'
    )


def test_namespace_name_is_limited_to_63_characters() -> None:
    assert_error(testing.namespace("a" * 64), "metadata.name: Invalid value")


def test_cluster_scoped_kind_may_not_have_a_namespace() -> None:
    node = testing.node("node-1")
    node.metadata.namespace = "default"
    assert rendered(node) == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_service_name_must_be_a_dns_1035_label() -> None:
    obj = service()
    obj.metadata.name = "1web"
    assert_error(obj, 'metadata.name: Invalid value: "1web": a DNS-1035 label')


# ---------------------------------------------------------------------------- pods


def _container(p: Any, **fields: Any) -> Any:
    return p.spec.containers.add(**{"name": "extra", "image": "busybox", **fields})


def _probe(p: Any) -> Any:
    return p.spec.containers[0].liveness_probe


def _add_volume(p: Any, name: str = "data", *sources: str) -> Any:
    volume = p.spec.volumes.add(name=name)
    for source in sources or ("empty_dir",):
        getattr(volume, source).SetInParent()
    return volume


POD_CASES: list[tuple[str, Mutation, str]] = [
    ("no containers", lambda p: p.spec.ClearField("containers"), "spec.containers: Required value"),
    (
        "container name required",
        lambda p: _set(p.spec.containers[0], name=""),
        "spec.containers[0].name: Required value",
    ),
    (
        "container name dns label",
        lambda p: _set(p.spec.containers[0], name="Web"),
        'spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label',
    ),
    (
        "duplicate container names",
        lambda p: _container(p, name="c0"),
        'spec.containers[1].name: Duplicate value: "c0"',
    ),
    (
        "init and app container names unique",
        lambda p: p.spec.init_containers.add(name="c0", image="busybox"),
        'spec.containers[0].name: Duplicate value: "c0"',
    ),
    (
        "image required",
        lambda p: _set(p.spec.containers[0], image=""),
        "spec.containers[0].image: Required value",
    ),
    (
        "init container image required",
        lambda p: p.spec.init_containers.add(name="init"),
        "spec.initContainers[0].image: Required value",
    ),
    (
        "container port zero",
        lambda p: p.spec.containers[0].ports.add(container_port=0),
        "spec.containers[0].ports[0].containerPort: Invalid value: 0: must be between 1 and 65535",
    ),
    (
        "container port too high",
        lambda p: p.spec.containers[0].ports.add(container_port=70000),
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000",
    ),
    (
        "host port too high",
        lambda p: p.spec.containers[0].ports.add(container_port=80, host_port=70000),
        "spec.containers[0].ports[0].hostPort: Invalid value: 70000",
    ),
    (
        "port protocol",
        lambda p: p.spec.containers[0].ports.add(container_port=80, protocol="HTTP"),
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"TCP", "UDP", "SCTP"',
    ),
    (
        "port name too long",
        lambda p: p.spec.containers[0].ports.add(container_port=80, name="a-very-long-port-name"),
        'spec.containers[0].ports[0].name: Invalid value: "a-very-long-port-name": must be no '
        "more than 15 characters",
    ),
    (
        "port names unique",
        lambda p: p.spec.containers[0].ports.extend(
            [
                core_pb2.ContainerPort(name="http", container_port=80),
                core_pb2.ContainerPort(name="http", container_port=81),
            ]
        ),
        'spec.containers[0].ports[1].name: Duplicate value: "http"',
    ),
    (
        "restart policy",
        lambda p: _set(p.spec, restart_policy="Sometimes"),
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"',
    ),
    (
        "pull policy",
        lambda p: _set(p.spec.containers[0], image_pull_policy="Sometimes"),
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes"',
    ),
    (
        "dns policy",
        lambda p: _set(p.spec, dns_policy="Google"),
        'spec.dnsPolicy: Unsupported value: "Google"',
    ),
    (
        "volume names unique",
        lambda p: [_add_volume(p), _add_volume(p)],
        'spec.volumes[1].name: Duplicate value: "data"',
    ),
    (
        "volume name dns label",
        lambda p: _add_volume(p, name="Data"),
        'spec.volumes[0].name: Invalid value: "Data"',
    ),
    (
        "volume needs a source",
        lambda p: p.spec.volumes.add(name="data"),
        "spec.volumes[0]: Required value: must specify a volume type",
    ),
    (
        "volume has one source",
        lambda p: _add_volume(p, "data", "empty_dir", "host_path"),
        "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
    ),
    (
        "hostPath path required",
        lambda p: _add_volume(p, "data", "host_path"),
        "spec.volumes[0].hostPath.path: Required value",
    ),
    (
        "configMap name required",
        lambda p: _add_volume(p, "data", "config_map"),
        "spec.volumes[0].configMap.name: Required value",
    ),
    (
        "volume mount refers to a volume",
        lambda p: p.spec.containers[0].volume_mounts.add(name="missing", mount_path="/data"),
        'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
    ),
    (
        "volume mount path required",
        lambda p: [_add_volume(p), p.spec.containers[0].volume_mounts.add(name="data")],
        "spec.containers[0].volumeMounts[0].mountPath: Required value",
    ),
    (
        "probe needs a handler",
        lambda p: _probe(p).SetInParent(),
        "spec.containers[0].livenessProbe: Required value: must specify a handler type",
    ),
    (
        "probe has one handler",
        lambda p: [
            _probe(p).exec.command.append("true"),
            _set(_probe(p).tcp_socket, port="80"),
        ],
        "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 "
        "handler type",
    ),
    (
        "probe numbers non-negative",
        lambda p: [_probe(p).exec.command.append("true"), _set(_probe(p), period_seconds=-1)],
        "spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater "
        "than or equal to 0",
    ),
    (
        "probe http port",
        lambda p: _set(_probe(p).http_get, port="0"),
        "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1",
    ),
    (
        "probe named port",
        lambda p: _set(_probe(p).http_get, port="Http_"),
        'spec.containers[0].livenessProbe.httpGet.port: Invalid value: "Http_": must contain only',
    ),
    (
        "liveness success threshold",
        lambda p: [
            _probe(p).exec.command.append("true"),
            _set(_probe(p), success_threshold=2),
        ],
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
    ),
    (
        "bad quantity",
        lambda p: p.spec.containers[0].resources.limits.update({"cpu": "lots"}),
        'spec.containers[0].resources.limits[cpu]: Invalid value: "lots": quantities must match',
    ),
    (
        "negative quantity",
        lambda p: p.spec.containers[0].resources.requests.update({"cpu": "-1"}),
        'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater than or '
        "equal to 0",
    ),
    (
        "request above limit",
        lambda p: [
            p.spec.containers[0].resources.limits.update({"memory": "1Gi"}),
            p.spec.containers[0].resources.requests.update({"memory": "2Gi"}),
        ],
        'spec.containers[0].resources.requests[memory]: Invalid value: "2Gi": must be less than '
        "or equal to memory limit of 1Gi",
    ),
    (
        "toleration operator",
        lambda p: p.spec.tolerations.add(key="k", operator="Maybe"),
        'spec.tolerations[0].operator: Unsupported value: "Maybe": supported values: "Equal", '
        '"Exists"',
    ),
    (
        "exists toleration has no value",
        lambda p: p.spec.tolerations.add(key="k", operator="Exists", value="v"),
        'spec.tolerations[0].operator: Invalid value: "v": value must be empty when `operator` '
        "is 'Exists'",
    ),
    (
        "toleration effect",
        lambda p: p.spec.tolerations.add(key="k", effect="NoRun"),
        'spec.tolerations[0].effect: Unsupported value: "NoRun": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"',
    ),
    (
        "empty key needs exists",
        lambda p: p.spec.tolerations.add(operator="Equal"),
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` '
        "is empty",
    ),
    (
        "toleration seconds need NoExecute",
        lambda p: p.spec.tolerations.add(key="k", effect="NoSchedule", toleration_seconds=5),
        "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute'",
    ),
    (
        "grace period non-negative",
        lambda p: _set(p.spec, termination_grace_period_seconds=-1),
        "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0",
    ),
    (
        "active deadline positive",
        lambda p: _set(p.spec, active_deadline_seconds=0),
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1",
    ),
    (
        "node selector labels",
        lambda p: p.spec.node_selector.update({"bad key": "v"}),
        'spec.nodeSelector: Invalid value: "bad key"',
    ),
    (
        "env var name",
        lambda p: p.spec.containers[0].env.add(name="1VAR", value="x"),
        'spec.containers[0].env[0].name: Invalid value: "1VAR": a valid environment variable name',
    ),
    (
        "node affinity operator",
        lambda p: (
            p.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms.add().match_expressions.add(
                key="zone", operator="Near"
            )
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
        'nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: "Near"',
    ),
    (
        "pod affinity topology key",
        lambda p: (
            p.spec.affinity.pod_affinity.required_during_scheduling_ignored_during_execution.add()
        ),
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
        "Required value",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in POD_CASES], ids=[n for n, _, _ in POD_CASES]
)
def test_invalid_pod(mutate: Mutation, expected: str) -> None:
    obj = pod()
    mutate(obj)
    assert_error(obj, expected)


def test_pod_with_volumes_mounts_and_probes_is_valid() -> None:
    obj = pod()
    _add_volume(obj, "data", "empty_dir")
    config = _add_volume(obj, "config", "config_map")
    config.config_map.name = "cfg"
    container = obj.spec.containers[0]
    container.volume_mounts.add(name="data", mount_path="/data")
    container.volume_mounts.add(name="config", mount_path="/etc/app", read_only=True)
    container.ports.add(name="http", container_port=8080, protocol="TCP")
    container.liveness_probe.http_get.port = "http"
    container.readiness_probe.tcp_socket.port = "8080"
    container.resources.limits.update({"cpu": "1", "memory": "128Mi"})
    container.resources.requests.update({"cpu": "500m", "memory": "64Mi"})
    obj.spec.tolerations.add(
        key="node.kubernetes.io/not-ready",
        operator="Exists",
        effect="NoExecute",
        toleration_seconds=300,
    )
    obj.spec.tolerations.add(operator="Exists")
    assert rendered(obj) == []


def test_all_errors_are_collected() -> None:
    obj = testing.pod("Bad_Name")
    obj.spec.containers[0].image = ""
    obj.spec.restart_policy = "Sometimes"
    obj.metadata.labels["bad key"] = "v"
    assert [error.split(":")[0] for error in rendered(obj)] == [
        "metadata.name",
        "metadata.labels",
        "spec.containers[0].image",
        "spec.restartPolicy",
    ]


# ---------------------------------------------------------------------------- workloads


def _no_selector(d: Any) -> None:
    d.spec.ClearField("selector")


WORKLOAD_CASES: list[tuple[str, Mutation, str]] = [
    ("selector required", _no_selector, "spec.selector: Required value"),
    (
        "selector non-empty",
        lambda d: d.spec.selector.match_labels.clear(),
        "spec.selector: Required value",
    ),
    (
        "selector matches template",
        lambda d: d.spec.template.metadata.labels.update(app="db"),
        'spec.template.metadata.labels: Invalid value: {"app":"db"}: `selector` does not match '
        "template `labels`",
    ),
    (
        "selector operator",
        lambda d: d.spec.selector.match_expressions.add(key="a", operator="Is"),
        'spec.selector.matchExpressions[0].operator: Unsupported value: "Is"',
    ),
    (
        "selector In values",
        lambda d: d.spec.selector.match_expressions.add(key="a", operator="In"),
        "spec.selector.matchExpressions[0].values: Required value",
    ),
    (
        "replicas non-negative",
        lambda d: _set(d.spec, replicas=-1),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
    ),
    ("template required", lambda d: d.spec.ClearField("template"), "spec.template: Required value"),
    (
        "template pod spec path",
        lambda d: _set(d.spec.template.spec.containers[0], image=""),
        "spec.template.spec.containers[0].image: Required value",
    ),
    (
        "template port path",
        lambda d: d.spec.template.spec.containers[0].ports.extend(
            [
                core_pb2.ContainerPort(container_port=80),
                core_pb2.ContainerPort(container_port=0),
            ]
        ),
        "spec.template.spec.containers[0].ports[1].containerPort: Invalid value: 0",
    ),
    (
        "template restart policy",
        lambda d: _set(d.spec.template.spec, restart_policy="Never"),
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ),
]


@pytest.mark.parametrize(
    "make", [deployment, lambda: testing.replica_set("web")], ids=["Deployment", "ReplicaSet"]
)
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(m, e) for _, m, e in WORKLOAD_CASES],
    ids=[n for n, _, _ in WORKLOAD_CASES],
)
def test_invalid_workload(make: Callable[[], Any], mutate: Mutation, expected: str) -> None:
    obj = make()
    mutate(obj)
    assert_error(obj, expected)


def _rolling(d: Any, surge: str, unavailable: str) -> Any:
    d.spec.strategy.rolling_update.max_surge = surge
    d.spec.strategy.rolling_update.max_unavailable = unavailable
    return d


DEPLOYMENT_CASES: list[tuple[str, Mutation, str]] = [
    (
        "strategy type",
        lambda d: _set(d.spec.strategy, type="BlueGreen"),
        'spec.strategy.type: Unsupported value: "BlueGreen": supported values: "RollingUpdate", '
        '"Recreate"',
    ),
    (
        "not both zero",
        lambda d: _rolling(d, "0", "0%"),
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when '
        "`maxSurge` is 0",
    ),
    (
        "negative surge",
        lambda d: _rolling(d, "-1", "1"),
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal",
    ),
    (
        "malformed percent",
        lambda d: _rolling(d, "1.5%", "1"),
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "1.5%": a valid percent string',
    ),
    (
        "not a number",
        lambda d: _rolling(d, "lots", "1"),
        'spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": must be an integer or a '
        "percentage",
    ),
    (
        "unavailable over 100%",
        lambda d: _rolling(d, "1", "120%"),
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "120%": must not be greater '
        "than 100%",
    ),
    (
        "recreate has no rolling update",
        lambda d: [_set(d.spec.strategy, type="Recreate"), _rolling(d, "1", "1")],
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'",
    ),
    (
        "revision history",
        lambda d: _set(d.spec, revision_history_limit=-1),
        "spec.revisionHistoryLimit: Invalid value: -1",
    ),
    (
        "progress deadline above min ready",
        lambda d: [
            _set(d.spec, min_ready_seconds=10),
            _set(d.spec, progress_deadline_seconds=5),
        ],
        "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(m, e) for _, m, e in DEPLOYMENT_CASES],
    ids=[n for n, _, _ in DEPLOYMENT_CASES],
)
def test_invalid_deployment(mutate: Mutation, expected: str) -> None:
    obj = deployment()
    mutate(obj)
    assert_error(obj, expected)


@pytest.mark.parametrize(("surge", "unavailable"), [("25%", "25%"), ("1", "0"), ("0", "1")])
def test_valid_rolling_update(surge: str, unavailable: str) -> None:
    obj = deployment()
    _rolling(obj, surge, unavailable)
    assert rendered(obj) == []


# ---------------------------------------------------------------------------- services


SERVICE_CASES: list[tuple[str, Mutation, str]] = [
    (
        "type",
        lambda s: _set(s.spec, type="Magic"),
        'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "NodePort", '
        '"LoadBalancer", "ExternalName"',
    ),
    (
        "port range",
        lambda s: _set(s.spec.ports[0], port=0),
        "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
    ),
    ("ports required", lambda s: s.spec.ClearField("ports"), "spec.ports: Required value"),
    (
        "names required with several ports",
        lambda s: s.spec.ports.add(name="b", port=81),
        "spec.ports[0].name: Required value",
    ),
    (
        "names unique",
        lambda s: [
            _set(s.spec.ports[0], name="http"),
            s.spec.ports.add(name="http", port=81),
        ],
        'spec.ports[1].name: Duplicate value: "http"',
    ),
    (
        "session affinity",
        lambda s: _set(s.spec, session_affinity="Sticky"),
        'spec.sessionAffinity: Unsupported value: "Sticky": supported values: "None", "ClientIP"',
    ),
    (
        "target port range",
        lambda s: _set(s.spec.ports[0], target_port="70000"),
        "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535",
    ),
    (
        "target port name",
        lambda s: _set(s.spec.ports[0], target_port="no--way"),
        'spec.ports[0].targetPort: Invalid value: "no--way": must not contain consecutive hyphens',
    ),
    (
        "port protocol",
        lambda s: _set(s.spec.ports[0], protocol="ICMP"),
        'spec.ports[0].protocol: Unsupported value: "ICMP"',
    ),
    (
        "cluster IP",
        lambda s: _set(s.spec, cluster_ip="10.0.0.300"),
        'spec.clusterIP: Invalid value: "10.0.0.300": must be a valid IP address',
    ),
    (
        "external name required",
        lambda s: _set(s.spec, type="ExternalName"),
        "spec.externalName: Required value",
    ),
    (
        "node port on cluster IP",
        lambda s: _set(s.spec.ports[0], node_port=30080),
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(m, e) for _, m, e in SERVICE_CASES],
    ids=[n for n, _, _ in SERVICE_CASES],
)
def test_invalid_service(mutate: Mutation, expected: str) -> None:
    obj = service()
    mutate(obj)
    assert_error(obj, expected)


@pytest.mark.parametrize("target_port", ["8080", "http", ""])
def test_service_target_port_is_a_number_or_a_name(target_port: str) -> None:
    obj = service()
    obj.spec.ports[0].target_port = target_port
    assert rendered(obj) == []


def test_headless_service_needs_no_ports() -> None:
    obj = service()
    obj.spec.ClearField("ports")
    obj.spec.cluster_ip = "None"
    assert rendered(obj) == []


# ---------------------------------------------------------------------------- other kinds


OTHER_CASES: list[tuple[str, Callable[[], Message], Mutation, str]] = [
    (
        "taint effect",
        lambda: testing.node("n"),
        lambda n: n.spec.taints.add(key="k", effect="Never"),
        'spec.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"',
    ),
    (
        "taint effect required",
        lambda: testing.node("n"),
        lambda n: n.spec.taints.add(key="k"),
        "spec.taints[0].effect: Required value",
    ),
    (
        "taint key required",
        lambda: testing.node("n"),
        lambda n: n.spec.taints.add(effect="NoSchedule"),
        "spec.taints[0].key: Required value",
    ),
    (
        "taints unique",
        lambda: testing.node("n"),
        lambda n: [
            n.spec.taints.add(key="k", effect="NoSchedule"),
            n.spec.taints.add(key="k", value="x", effect="NoSchedule"),
        ],
        'spec.taints[1]: Duplicate value: "k:NoSchedule"',
    ),
    (
        "lease duration",
        lambda: testing.lease("l"),
        lambda lease: _set(lease.spec, lease_duration_seconds=0),
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
    ),
    (
        "config map key",
        lambda: testing.config_map("c"),
        lambda c: c.data.update({"bad key": "x"}),
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric '
        "characters, '-', '_' or '.'",
    ),
    (
        "config map dot-dot key",
        lambda: testing.config_map("c"),
        lambda c: c.data.update({"..": "x"}),
        "data[..]: Invalid value: \"..\": must not be '..'",
    ),
    (
        "config map binary duplicate",
        lambda: testing.config_map("c", {"k": "v"}),
        lambda c: c.binary_data.update({"k": b"v"}),
        'binaryData[k]: Invalid value: "k": duplicate of key present in data',
    ),
    (
        "secret key",
        secret,
        lambda s: s.data.update({"a/b": b"x"}),
        'data[a/b]: Invalid value: "a/b": a valid config key',
    ),
    (
        "secret string data key",
        secret,
        lambda s: s.string_data.update({"a b": "x"}),
        'stringData[a b]: Invalid value: "a b"',
    ),
    (
        "event kind",
        event,
        lambda e: _set(e.involved_object, kind=""),
        "involvedObject.kind: Required value",
    ),
    (
        "event name",
        event,
        lambda e: _set(e.involved_object, name=""),
        "involvedObject.name: Required value",
    ),
    (
        "event namespace",
        event,
        lambda e: _set(e.involved_object, namespace="other"),
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace',
    ),
    (
        "event type",
        event,
        lambda e: _set(e, type="Fatal"),
        'type: Unsupported value: "Fatal": supported values: "Normal", "Warning"',
    ),
    (
        "namespace finalizer",
        lambda: testing.namespace("n"),
        lambda n: n.spec.finalizers.append("not valid!"),
        'spec.finalizers[0]: Invalid value: "not valid!"',
    ),
    (
        "endpoints address",
        endpoints,
        lambda e: _set(e.subsets[0].addresses[0], ip="nope"),
        'subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IP address',
    ),
    (
        "endpoints port",
        endpoints,
        lambda e: _set(e.subsets[0].ports[0], port=0),
        "subsets[0].ports[0].port: Invalid value: 0",
    ),
]


@pytest.mark.parametrize(
    ("make", "mutate", "expected"),
    [(k, m, e) for _, k, m, e in OTHER_CASES],
    ids=[n for n, _, _, _ in OTHER_CASES],
)
def test_invalid_other_kinds(make: Callable[[], Message], mutate: Mutation, expected: str) -> None:
    obj = make()
    mutate(obj)
    assert_error(obj, expected)


def test_lease_duration_may_be_unset() -> None:
    lease = testing.lease("l")
    assert not lease.spec.HasField("lease_duration_seconds")
    assert rendered(lease) == []


# ---------------------------------------------------------------------------- updates


def _stored(obj: Message) -> Any:
    info = for_message(obj)
    apply_defaults(info, obj)
    message: Any = obj
    message.metadata.uid = "uid-1"
    message.metadata.creation_timestamp.seconds = 1_700_000_000
    return obj


def updated_errors(make: Callable[[], Message], mutate: Mutation) -> list[str]:
    old = _stored(make())
    new = type(old)()
    new.CopyFrom(old)
    mutate(new)
    return [str(error) for error in validate_update(for_message(old), new, old)]


def _add_toleration(p: Any) -> None:
    p.spec.tolerations.add(key="k", operator="Exists")


def _bump_images(p: Any) -> None:
    p.spec.containers[0].image = "busybox:1.37"


UPDATE_ALLOWED: list[tuple[str, Callable[[], Message], Mutation]] = [
    ("pod image", pod, _bump_images),
    (
        "pod init image",
        lambda: _with_init(pod()),
        lambda p: _set(p.spec.init_containers[0], image="busybox:1.37"),
    ),
    ("pod active deadline set", pod, lambda p: _set(p.spec, active_deadline_seconds=60)),
    ("pod toleration added", pod, _add_toleration),
    ("pod labels", pod, lambda p: p.metadata.labels.update(app="web")),
    ("pod node name set once", pod, lambda p: _set(p.spec, node_name="node-1")),
    ("deployment replicas", deployment, lambda d: _set(d.spec, replicas=5)),
    (
        "deployment template",
        deployment,
        lambda d: _set(d.spec.template.spec.containers[0], image="nginx:1.26"),
    ),
    (
        "config map data",
        lambda: testing.config_map("c", {"a": "1"}),
        lambda c: c.data.update(a="2"),
    ),
    ("service ports", service, lambda s: _set(s.spec.ports[0], port=81)),
]


def _with_init(p: core_pb2.Pod) -> core_pb2.Pod:
    p.spec.init_containers.add(name="init", image="busybox:1.36")
    return p


@pytest.mark.parametrize(
    ("make", "mutate"),
    [(k, m) for _, k, m in UPDATE_ALLOWED],
    ids=[n for n, _, _ in UPDATE_ALLOWED],
)
def test_allowed_update(make: Callable[[], Message], mutate: Mutation) -> None:
    assert updated_errors(make, mutate) == []


def _immutable_config(c: Any) -> Any:
    c.immutable = True
    return c


def _bound_pod() -> core_pb2.Pod:
    return testing.pod("web", node_name="node-1")


def _deadline_pod() -> core_pb2.Pod:
    p = pod()
    p.spec.active_deadline_seconds = 60
    return p


def _tolerating_pod() -> core_pb2.Pod:
    p = pod()
    _add_toleration(p)
    return p


def _service_with_ip() -> core_pb2.Service:
    s = service()
    s.spec.cluster_ip = "10.96.0.10"
    return s


UPDATE_REFUSED: list[tuple[str, Callable[[], Message], Mutation, str]] = [
    (
        "name",
        pod,
        lambda p: _set(p.metadata, name="other"),
        'metadata.name: Invalid value: "other": field is immutable',
    ),
    (
        "namespace",
        pod,
        lambda p: _set(p.metadata, namespace="other"),
        'metadata.namespace: Invalid value: "other": field is immutable',
    ),
    (
        "uid",
        pod,
        lambda p: _set(p.metadata, uid="uid-2"),
        'metadata.uid: Invalid value: "uid-2": field is immutable',
    ),
    (
        "creation timestamp",
        pod,
        lambda p: _set(p.metadata.creation_timestamp, seconds=1),
        'metadata.creationTimestamp: Invalid value: "1970-01-01T00:00:01Z": field is immutable',
    ),
    (
        "pod container ports",
        pod,
        lambda p: p.spec.containers[0].ports.add(container_port=80, protocol="TCP"),
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`",
    ),
    (
        "pod container added",
        pod,
        lambda p: _container(p, name="c1"),
        "spec: Forbidden: pod updates may not change fields",
    ),
    (
        "pod restart policy",
        pod,
        lambda p: _set(p.spec, restart_policy="Never"),
        "spec: Forbidden: pod updates may not change fields",
    ),
    (
        "pod node name changed",
        _bound_pod,
        lambda p: _set(p.spec, node_name="node-2"),
        'spec.nodeName: Invalid value: "node-2": field is immutable',
    ),
    (
        "pod active deadline raised",
        _deadline_pod,
        lambda p: _set(p.spec, active_deadline_seconds=120),
        "spec.activeDeadlineSeconds: Invalid value: 120: must be less than or equal to previous",
    ),
    (
        "pod active deadline removed",
        _deadline_pod,
        lambda p: p.spec.ClearField("active_deadline_seconds"),
        "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer",
    ),
    (
        "pod toleration removed",
        _tolerating_pod,
        lambda p: p.spec.ClearField("tolerations"),
        "spec.tolerations: Forbidden: existing tolerations may not be removed or changed",
    ),
    (
        "replica set selector",
        lambda: testing.replica_set("web"),
        lambda r: [
            r.spec.selector.match_labels.update(app="other"),
            r.spec.template.metadata.labels.update(app="other"),
        ],
        'spec.selector: Invalid value: {"matchLabels":{"app":"other"}}: field is immutable',
    ),
    (
        "deployment selector",
        deployment,
        lambda d: [
            d.spec.selector.match_labels.update(tier="x"),
            d.spec.template.metadata.labels.update(tier="x"),
        ],
        "spec.selector: Invalid value:",
    ),
    (
        "immutable config map data",
        lambda: _immutable_config(testing.config_map("c", {"a": "1"})),
        lambda c: c.data.update(a="2"),
        "data: Forbidden: field is immutable when `immutable` is set",
    ),
    (
        "immutable config map flag",
        lambda: _immutable_config(testing.config_map("c")),
        lambda c: _set(c, immutable=False),
        "immutable: Forbidden: field is immutable when `immutable` is set",
    ),
    (
        "immutable secret data",
        lambda: _immutable_config(secret()),
        lambda s: s.data.update(password=b"y"),
        "data: Forbidden: field is immutable when `immutable` is set",
    ),
    (
        "secret type",
        secret,
        lambda s: _set(s, type="kubernetes.io/tls"),
        'type: Invalid value: "kubernetes.io/tls": field is immutable',
    ),
    (
        "service cluster IP",
        _service_with_ip,
        lambda s: _set(s.spec, cluster_ip="10.96.0.11"),
        'spec.clusterIP: Invalid value: "10.96.0.11": field is immutable',
    ),
]


@pytest.mark.parametrize(
    ("make", "mutate", "expected"),
    [(k, m, e) for _, k, m, e in UPDATE_REFUSED],
    ids=[n for n, _, _, _ in UPDATE_REFUSED],
)
def test_refused_update(make: Callable[[], Message], mutate: Mutation, expected: str) -> None:
    errors = updated_errors(make, mutate)
    assert any(error.startswith(expected) for error in errors), errors


def test_forbidden_pod_update_names_what_changed() -> None:
    errors = updated_errors(pod, lambda p: _set(p.spec.containers[0], working_dir="/tmp"))
    assert errors == [
        "spec: Forbidden: pod updates may not change fields other than "
        "`spec.containers[*].image`, `spec.initContainers[*].image`, "
        "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to existing "
        "tolerations) (changed: spec.containers[0].workingDir)"
    ]


def test_update_also_validates_the_new_object() -> None:
    errors = updated_errors(pod, lambda p: p.metadata.labels.update({"bad key": "v"}))
    assert errors == [
        'metadata.labels: Invalid value: "bad key": name part must consist of '
        "alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character"
    ]


def test_status_update_checks_metadata_only() -> None:
    old = _stored(pod())
    new = core_pb2.Pod()
    new.CopyFrom(old)
    new.status.phase = "Whatever"
    new.spec.restart_policy = "Sometimes"
    assert validate_status_update(KINDS["Pod"], new, old) == []


def test_status_update_refuses_identity_changes() -> None:
    old = _stored(pod())
    new = core_pb2.Pod()
    new.CopyFrom(old)
    new.metadata.uid = "uid-2"
    new.metadata.labels["bad key"] = "v"
    errors = [str(e) for e in validate_status_update(KINDS["Pod"], new, old)]
    assert [e.split(":")[0] for e in errors] == ["metadata.labels", "metadata.uid"]


def test_lease_validation_uses_its_own_kind() -> None:
    lease = coordination_pb2.Lease(api_version="coordination.k8s.io/v1", kind="Lease")
    lease.metadata.name, lease.metadata.namespace = "l", "kube-node-lease"
    lease.spec.lease_duration_seconds = 40
    assert rendered(lease) == []
