from __future__ import annotations

import pytest

from bosun.api.v1 import core_pb2
from bosun.kubelet.envvars import EnvError, container_env, expand, service_env


def pod() -> core_pb2.Pod:
    obj = core_pb2.Pod()
    obj.metadata.name, obj.metadata.namespace, obj.metadata.uid = "web-1", "prod", "u-1"
    obj.metadata.labels["app"] = "web"
    obj.spec.node_name = "node-a"
    obj.status.pod_ip, obj.status.host_ip = "10.0.0.7", "192.168.1.2"
    obj.spec.containers.add(name="app")
    return obj


def config_maps(namespace: str, name: str) -> core_pb2.ConfigMap | None:
    if (namespace, name) != ("prod", "cfg"):
        return None
    cm = core_pb2.ConfigMap()
    cm.data.update({"mode": "fast", "level": "3"})
    return cm


def secrets(namespace: str, name: str) -> core_pb2.Secret | None:
    if (namespace, name) != ("prod", "sec"):
        return None
    secret = core_pb2.Secret()
    secret.data["token"] = b"abc"
    return secret


def ref(**fields: object) -> core_pb2.EnvVarSource:
    return core_pb2.EnvVarSource(**fields)  # type: ignore[arg-type]


def env_of(
    container: core_pb2.Container, target: core_pb2.Pod | None = None, **kwargs: object
) -> dict[str, str]:
    return container_env(
        target or pod(), container, config_map=config_maps, secret=secrets, **kwargs
    )  # type: ignore[arg-type]


def test_field_refs() -> None:
    fields = {
        "N": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "NODE": "spec.nodeName",
        "IP": "status.podIP",
        "HOST": "status.hostIP",
        "APP": "metadata.labels['app']",
    }
    container = core_pb2.Container(
        env=[
            core_pb2.EnvVar(
                name=k, value_from=ref(field_ref=core_pb2.ObjectFieldSelector(field_path=v))
            )
            for k, v in fields.items()
        ]
    )
    assert env_of(container) == {
        "N": "web-1",
        "NS": "prod",
        "UID": "u-1",
        "NODE": "node-a",
        "IP": "10.0.0.7",
        "HOST": "192.168.1.2",
        "APP": "web",
    }


def test_config_map_and_secret_refs_and_env_from_with_prefix() -> None:
    container = core_pb2.Container(
        env_from=[
            core_pb2.EnvFromSource(
                prefix="CFG_", config_map_ref=core_pb2.ConfigMapEnvSource(name="cfg")
            ),
            core_pb2.EnvFromSource(secret_ref=core_pb2.SecretEnvSource(name="sec")),
        ],
        env=[
            core_pb2.EnvVar(
                name="MODE",
                value_from=ref(
                    config_map_key_ref=core_pb2.ConfigMapKeySelector(name="cfg", key="mode")
                ),
            ),
            core_pb2.EnvVar(
                name="TOKEN",
                value_from=ref(secret_key_ref=core_pb2.SecretKeySelector(name="sec", key="token")),
            ),
        ],
    )
    assert env_of(container) == {
        "CFG_mode": "fast",
        "CFG_level": "3",
        "token": "abc",
        "MODE": "fast",
        "TOKEN": "abc",
    }


def test_missing_references_fail_unless_optional() -> None:
    missing_key = core_pb2.EnvVar(
        name="X",
        value_from=ref(config_map_key_ref=core_pb2.ConfigMapKeySelector(name="cfg", key="nope")),
    )
    with pytest.raises(EnvError, match='key "nope" in configmap "cfg" not found'):
        env_of(core_pb2.Container(env=[missing_key]))
    missing_secret = core_pb2.EnvVar(
        name="Y", value_from=ref(secret_key_ref=core_pb2.SecretKeySelector(name="other", key="k"))
    )
    with pytest.raises(EnvError, match='secret "other" not found'):
        env_of(core_pb2.Container(env=[missing_secret]))
    missing_secret.value_from.secret_key_ref.optional = True
    missing_key.value_from.config_map_key_ref.optional = True
    assert env_of(core_pb2.Container(env=[missing_key, missing_secret])) == {}


def test_expansion_of_earlier_variables() -> None:
    assert expand("$(A)-$(B)-$$(A)-$(MISSING)", {"A": "1", "B": "2"}) == "1-2-$(A)-$(MISSING)"
    container = core_pb2.Container(
        env=[core_pb2.EnvVar(name="A", value="x"), core_pb2.EnvVar(name="B", value="$(A)y")]
    )
    assert env_of(container) == {"A": "x", "B": "xy"}


def test_resource_field_ref_rounds_up() -> None:
    target = pod()
    target.spec.containers[0].resources.limits.update({"cpu": "500m", "memory": "64Mi"})
    container = target.spec.containers[0]
    container.env.add(
        name="CPU",
        value_from=ref(resource_field_ref=core_pb2.ResourceFieldSelector(resource="limits.cpu")),
    )
    container.env.add(
        name="MEM",
        value_from=ref(
            resource_field_ref=core_pb2.ResourceFieldSelector(
                resource="limits.memory", divisor="1Mi"
            )
        ),
    )
    assert env_of(container, target) == {"CPU": "1", "MEM": "64"}


def service(name: str, ip: str, *ports: tuple[str, int]) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name = name
    svc.spec.cluster_ip = ip
    for port_name, number in ports:
        svc.spec.ports.add(name=port_name, port=number)
    return svc


def test_service_links_like_kubernetes() -> None:
    services = [
        service("redis-master", "10.0.0.11", ("", 6379)),
        service("web", "10.0.0.12", ("http", 80), ("https", 443)),
        service("headless", "None", ("x", 1)),
    ]
    assert service_env(services) == {
        "REDIS_MASTER_SERVICE_HOST": "10.0.0.11",
        "REDIS_MASTER_SERVICE_PORT": "6379",
        "WEB_SERVICE_HOST": "10.0.0.12",
        "WEB_SERVICE_PORT": "80",
        "WEB_SERVICE_PORT_HTTP": "80",
        "WEB_SERVICE_PORT_HTTPS": "443",
    }
    target = pod()
    target.spec.enable_service_links = False
    assert env_of(target.spec.containers[0], target, services=services) == {}
