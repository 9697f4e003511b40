"""Kubernetes manifests load into protos unchanged, and bad ones name the path at fault."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.common.manifest import ManifestError, load_documents, to_dict, to_proto

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels:
    app.kubernetes.io/name: web
    version: 2
  creationTimestamp: null
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 25%
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: web
          image: nginx:1.25
          imagePullPolicy: IfNotPresent
          args: ["--port", "8080"]
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: DEBUG
              value: "true"
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 5
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
      targetPort: 8080
"""

POD_WITH_RESOURCES = """\
apiVersion: v1
kind: Pod
metadata:
  name: sized
spec:
  containers:
    - name: app
      image: busybox
      resources:
        limits: {cpu: 1, memory: 128974848}
        requests: {cpu: 0.5, memory: 64Mi}
"""


def _pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_deployment_manifest_loads() -> None:
    (deployment,) = load_documents(DEPLOYMENT, source="web.yaml")
    assert isinstance(deployment, apps_pb2.Deployment)
    assert deployment.metadata.name == "web"
    assert deployment.spec.replicas == 3
    assert dict(deployment.spec.selector.match_labels) == {"app": "web"}
    container = deployment.spec.template.spec.containers[0]
    assert container.image == "nginx:1.25"
    assert container.ports[0].container_port == 8080
    assert container.readiness_probe.http_get.port == "http"
    assert deployment.spec.template.spec.termination_grace_period_seconds == 10


def test_numeric_label_value_becomes_a_string() -> None:
    (deployment,) = load_documents(DEPLOYMENT)
    assert isinstance(deployment, apps_pb2.Deployment)
    assert deployment.metadata.labels["version"] == "2"


def test_int_or_string_max_surge_becomes_a_string() -> None:
    (deployment,) = load_documents(DEPLOYMENT)
    assert isinstance(deployment, apps_pb2.Deployment)
    assert deployment.spec.strategy.rolling_update.max_surge == "1"
    assert deployment.spec.strategy.rolling_update.max_unavailable == "25%"


def test_null_field_is_left_unset() -> None:
    (deployment,) = load_documents(DEPLOYMENT)
    assert isinstance(deployment, apps_pb2.Deployment)
    assert not deployment.metadata.HasField("creation_timestamp")


def test_service_numeric_target_port_becomes_a_string() -> None:
    (service,) = load_documents(SERVICE)
    assert isinstance(service, core_pb2.Service)
    assert service.spec.ports[0].port == 80
    assert service.spec.ports[0].target_port == "8080"


def test_pod_numeric_resource_quantities_become_strings() -> None:
    (pod,) = load_documents(POD_WITH_RESOURCES)
    assert isinstance(pod, core_pb2.Pod)
    resources = pod.spec.containers[0].resources
    assert dict(resources.limits) == {"cpu": "1", "memory": "128974848"}
    assert dict(resources.requests) == {"cpu": "0.5", "memory": "64Mi"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (3, "3"), (2.0, "2"), (0.25, "0.25"), ("x", "x")],
)
def test_scalars_in_string_fields_become_their_string(value: object, expected: str) -> None:
    pod = to_proto({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"k": value}}})
    assert isinstance(pod, core_pb2.Pod)
    assert pod.metadata.labels["k"] == expected


def test_yaml_timestamp_becomes_rfc3339() -> None:
    (event,) = load_documents(
        "apiVersion: v1\nkind: Event\nmetadata: {name: e}\nfirstTimestamp: 2024-01-02T03:04:05Z\n"
    )
    assert isinstance(event, core_pb2.Event)
    assert event.first_timestamp.ToJsonString() == "2024-01-02T03:04:05Z"


def test_numeric_string_for_an_integer_field_is_accepted() -> None:
    pod = to_proto(_pod({"terminationGracePeriodSeconds": "30"}))
    assert isinstance(pod, core_pb2.Pod)
    assert pod.spec.termination_grace_period_seconds == 30


def test_secret_data_is_base64() -> None:
    encoded = base64.b64encode(b"s3cret").decode()
    secret = to_proto({"apiVersion": "v1", "kind": "Secret", "data": {"password": encoded}})
    assert isinstance(secret, core_pb2.Secret)
    assert secret.data["password"] == b"s3cret"


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (
            _pod({"containers": [{"name": "a", "imagePullPolcy": "Always"}]}),
            "spec.containers[0].imagePullPolcy",
            'unknown field (did you mean "imagePullPolicy"?)',
        ),
        (_pod({"nonsense": 1}), "spec.nonsense", "unknown field"),
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"nmae": "x"}},
            "metadata.nmae",
            "unknown field",
        ),
    ],
)
def test_unknown_field_error_names_its_path(
    document: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        to_proto(document, source="pod.yaml")
    assert caught.value.path == path
    assert f"{path}: {message}" in str(caught.value)
    assert str(caught.value).startswith("pod.yaml: Pod")


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (
            _pod({"containers": [{"name": "a", "ports": [{"containerPort": "http"}]}]}),
            "spec.containers[0].ports[0].containerPort",
            "expected an integer, got a string 'http'",
        ),
        (_pod({"containers": {"name": "a"}}), "spec.containers", "expected a list"),
        (_pod({"hostNetwork": "yes"}), "spec.hostNetwork", "expected a boolean"),
        (_pod({"nodeSelector": ["a"]}), "spec.nodeSelector", "expected an object"),
        (
            _pod({"containers": [{"name": {"x": 1}}]}),
            "spec.containers[0].name",
            "expected a string",
        ),
        (_pod({"priority": 2**31}), "spec.priority", "2147483648 is out of range"),
        (_pod({"priority": 1.5}), "spec.priority", "expected an integer"),
        (
            {"apiVersion": "v1", "kind": "Secret", "data": {"k": "!!"}},
            "data[k]",
            "illegal base64 data",
        ),
    ],
)
def test_wrong_type_error_names_its_path(document: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        to_proto(document)
    assert caught.value.path == path
    assert f"{path}: {message}" in str(caught.value)


def test_unknown_kind_names_source_and_kind() -> None:
    with pytest.raises(ManifestError, match=r'^w\.yaml: unknown kind "Widget"'):
        to_proto({"apiVersion": "v1", "kind": "Widget"}, source="w.yaml")


def test_mismatched_api_version_names_source_and_kind() -> None:
    with pytest.raises(
        ManifestError, match=r'^d\.yaml: kind "Deployment" is served as apiVersion "apps/v1"'
    ):
        to_proto({"apiVersion": "extensions/v1beta1", "kind": "Deployment"}, source="d.yaml")


def test_missing_kind_is_required() -> None:
    with pytest.raises(ManifestError, match="kind: Required value"):
        to_proto({"apiVersion": "v1"})


def test_manifest_error_is_a_value_error() -> None:
    assert issubclass(ManifestError, ValueError)


def test_multi_document_yaml_loads_each_object_and_skips_empty_ones() -> None:
    objects = load_documents(f"---\n{DEPLOYMENT}---\n---\n{SERVICE}")
    assert [type(obj).__name__ for obj in objects] == ["Deployment", "Service"]


def test_error_in_a_later_document_names_the_document() -> None:
    text = f"{SERVICE}---\napiVersion: v1\nkind: Pod\nspec: {{bogus: 1}}\n"
    with pytest.raises(ManifestError, match=r"^all\.yaml \(document 2\): Pod: spec\.bogus"):
        load_documents(text, source="all.yaml")


def test_list_kind_is_expanded() -> None:
    text = (
        "apiVersion: v1\nkind: List\n"
        "items:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
    )
    (namespace,) = load_documents(text)
    assert isinstance(namespace, core_pb2.Namespace)
    assert namespace.metadata.name == "a"


def test_invalid_yaml_names_the_source() -> None:
    with pytest.raises(ManifestError, match=r"^bad\.yaml: invalid YAML"):
        load_documents("a: [", source="bad.yaml")


def test_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ManifestError, match="expected an object with apiVersion and kind"):
        load_documents("- a\n- b\n")


def test_to_dict_uses_kubernetes_names_and_round_trips() -> None:
    (deployment,) = load_documents(DEPLOYMENT)
    document = to_dict(deployment)
    assert document["apiVersion"] == "apps/v1"
    template_spec = document["spec"]["template"]["spec"]
    assert template_spec["terminationGracePeriodSeconds"] == 10
    assert template_spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert to_proto(document) == deployment


def test_to_dict_uses_json_name_overrides() -> None:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.status.pod_ip = "10.0.0.1"
    assert to_dict(pod)["status"] == {"podIP": "10.0.0.1"}
