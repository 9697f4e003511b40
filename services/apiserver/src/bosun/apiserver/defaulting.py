"""Server-side defaults, applied in place before validation on every create and update.

These are Kubernetes' defaults for the fields Bosun has, so an object reads back as it would
from a Kubernetes apiserver: a Pod gets `restartPolicy: Always`, a 30 s grace period, an image
pull policy derived from its image's tag, probe timings; a Deployment gets one replica and a
25%/25% rolling update; a Service gets `type: ClusterIP` and target ports equal to its ports;
a Secret's write-only `stringData` is folded into `data`.

Defaulting only fills what is unset, so it is idempotent: applying it to an object that was
already defaulted (an update of a stored object) changes nothing, which keeps updates from
looking like spec changes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.common.kinds import KindInfo

__all__ = ["apply_defaults", "default_pull_policy"]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS = 10800
DEFAULT_VOLUME_MODE = 0o644
MAX_UNAVAILABLE = MAX_SURGE = "25%"


def default_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image, IfNotPresent for a tag or digest."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    _, colon, tag = last.rpartition(":")
    if not colon or tag == "latest":
        return "Always"
    return "IfNotPresent"


def _default_probe(probe: core_pb2.Probe) -> None:
    if probe.timeout_seconds == 0:
        probe.timeout_seconds = 1
    if probe.period_seconds == 0:
        probe.period_seconds = 10
    if probe.success_threshold == 0:
        probe.success_threshold = 1
    if probe.failure_threshold == 0:
        probe.failure_threshold = 3
    if probe.HasField("http_get"):
        if not probe.http_get.scheme:
            probe.http_get.scheme = "HTTP"
        if not probe.http_get.path:
            probe.http_get.path = "/"


def _default_container(container: core_pb2.Container) -> None:
    if not container.image_pull_policy:
        container.image_pull_policy = default_pull_policy(container.image)
    if not container.termination_message_path:
        container.termination_message_path = DEFAULT_TERMINATION_MESSAGE_PATH
    if not container.termination_message_policy:
        container.termination_message_policy = "File"
    for port in container.ports:
        if not port.protocol:
            port.protocol = "TCP"
    for env in container.env:
        if env.value_from.HasField("field_ref") and not env.value_from.field_ref.api_version:
            env.value_from.field_ref.api_version = "v1"
    if container.HasField("liveness_probe"):
        _default_probe(container.liveness_probe)
    if container.HasField("readiness_probe"):
        _default_probe(container.readiness_probe)
    if container.HasField("startup_probe"):
        _default_probe(container.startup_probe)


def _default_pod_spec(spec: core_pb2.PodSpec) -> None:
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.scheduler_name:
        spec.scheduler_name = DEFAULT_SCHEDULER_NAME
    if not spec.HasField("priority"):
        spec.priority = 0
    if not spec.HasField("enable_service_links"):
        spec.enable_service_links = True
    for container in (*spec.init_containers, *spec.containers):
        _default_container(container)
    for toleration in spec.tolerations:
        if not toleration.operator:
            toleration.operator = "Equal"
    for volume in spec.volumes:
        if volume.HasField("config_map") and not volume.config_map.HasField("default_mode"):
            volume.config_map.default_mode = DEFAULT_VOLUME_MODE
        if volume.HasField("secret") and not volume.secret.HasField("default_mode"):
            volume.secret.default_mode = DEFAULT_VOLUME_MODE


def _default_pod(obj: Any) -> None:
    pod: core_pb2.Pod = obj
    _default_pod_spec(pod.spec)


def _default_replica_set(obj: Any) -> None:
    rs: apps_pb2.ReplicaSet = obj
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    if rs.spec.HasField("template"):
        _default_pod_spec(rs.spec.template.spec)


def _default_deployment(obj: Any) -> None:
    deployment: apps_pb2.Deployment = obj
    spec = deployment.spec
    if not spec.HasField("replicas"):
        spec.replicas = 1
    if not spec.strategy.type:
        spec.strategy.type = "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        rolling = spec.strategy.rolling_update
        if not rolling.max_unavailable:
            rolling.max_unavailable = MAX_UNAVAILABLE
        if not rolling.max_surge:
            rolling.max_surge = MAX_SURGE
    if not spec.HasField("revision_history_limit"):
        spec.revision_history_limit = 10
    if not spec.HasField("progress_deadline_seconds"):
        spec.progress_deadline_seconds = 600
    if spec.HasField("template"):
        _default_pod_spec(spec.template.spec)


def _default_service(obj: Any) -> None:
    service: core_pb2.Service = obj
    spec = service.spec
    if not spec.type:
        spec.type = "ClusterIP"
    if not spec.session_affinity:
        spec.session_affinity = "None"
    if spec.session_affinity == "ClientIP":
        client_ip = spec.session_affinity_config.client_ip
        if not client_ip.HasField("timeout_seconds"):
            client_ip.timeout_seconds = DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS
    if spec.type != "ExternalName" and not spec.internal_traffic_policy:
        spec.internal_traffic_policy = "Cluster"
    if spec.type in ("NodePort", "LoadBalancer") and not spec.external_traffic_policy:
        spec.external_traffic_policy = "Cluster"
    for port in spec.ports:
        if not port.protocol:
            port.protocol = "TCP"
        if not port.target_port:
            port.target_port = str(port.port)


def _default_secret(obj: Any) -> None:
    secret: core_pb2.Secret = obj
    if not secret.type:
        secret.type = "Opaque"
    for key, value in secret.string_data.items():
        secret.data[key] = value.encode()
    secret.ClearField("string_data")


def _default_namespace(obj: Any) -> None:
    namespace: core_pb2.Namespace = obj
    if not namespace.status.phase:
        namespace.status.phase = "Active"


def _default_event(obj: Any) -> None:
    event: core_pb2.Event = obj
    if event.count < 1:
        event.count = 1
    if not event.type:
        event.type = "Normal"


def _default_persistent_volume(obj: Any) -> None:
    pv: core_pb2.PersistentVolume = obj
    if not pv.spec.persistent_volume_reclaim_policy:
        pv.spec.persistent_volume_reclaim_policy = "Retain"
    if not pv.spec.volume_mode:
        pv.spec.volume_mode = "Filesystem"
    if not pv.status.phase:
        pv.status.phase = "Pending"


def _default_persistent_volume_claim(obj: Any) -> None:
    pvc: core_pb2.PersistentVolumeClaim = obj
    if not pvc.spec.volume_mode:
        pvc.spec.volume_mode = "Filesystem"
    if not pvc.status.phase:
        pvc.status.phase = "Pending"


_DEFAULTERS = {
    "PersistentVolume": _default_persistent_volume,
    "PersistentVolumeClaim": _default_persistent_volume_claim,
    "Pod": _default_pod,
    "ReplicaSet": _default_replica_set,
    "Deployment": _default_deployment,
    "Service": _default_service,
    "Secret": _default_secret,
    "Namespace": _default_namespace,
    "Event": _default_event,
}


def apply_defaults(info: KindInfo, obj: Message) -> None:
    """Fill `obj`'s unset fields with Kubernetes' defaults for `info`'s kind, in place."""
    message: Any = obj
    message.api_version = info.api_version
    message.kind = info.kind
    defaulter = _DEFAULTERS.get(info.kind)
    if defaulter is not None:
        defaulter(message)
