"""`describe`: an object as readable sections, in the layout of kubectl's describers.

`DescribeWriter` is kubectl's PrefixWriter over a tabwriter: each line is a list of cells at an
indent level, and consecutive lines with several cells are aligned column by column (two spaces
of padding), so `Name:`, `Namespace:` and `Labels:` line their values up. One describer per
kind adds the fields that matter for it (a pod's containers and conditions, a deployment's
replicas and template, …); kinds without one get their metadata and spec/status as YAML. Every
description ends with the object's Events, oldest first, newest last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bosun.cli.applying import LAST_APPLIED
from bosun.cli.durations import human_duration, to_datetime
from bosun.cli.printers import dump_yaml
from bosun.cli.tables import NONE, ROLE_PREFIX, event_last_seen
from bosun.common.kinds import KindInfo
from bosun.common.manifest import to_dict

__all__ = ["DescribeWriter", "describe_object", "events_section"]

_PADDING = 2


class DescribeWriter:
    def __init__(self) -> None:
        self._lines: list[list[str]] = []

    def line(self, level: int, *cells: Any) -> None:
        texts = [str(cell) for cell in cells] or [""]
        texts[0] = "  " * level + texts[0]
        self._lines.append(texts)

    def text(self) -> str:
        out: list[str] = []
        block: list[list[str]] = []

        def flush() -> None:
            widths: dict[int, int] = {}
            for cells in block:
                for index, cell in enumerate(cells[:-1]):
                    widths[index] = max(widths.get(index, 0), len(cell))
            for cells in block:
                padded = [
                    cell.ljust(widths[index] + _PADDING) for index, cell in enumerate(cells[:-1])
                ]
                out.append(("".join(padded) + cells[-1]).rstrip())
            block.clear()

        for cells in self._lines:
            if len(cells) > 1:
                block.append(cells)
                continue
            flush()
            out.append(cells[0].rstrip())
        flush()
        return "\n".join(out)


def _timestamp(value: Any) -> str:
    moment = to_datetime(value)
    return NONE if moment is None else moment.strftime("%a, %d %b %Y %H:%M:%S %z")


def _multiline(w: DescribeWriter, level: int, title: str, lines: Sequence[str]) -> None:
    if not lines:
        w.line(level, f"{title}:", NONE)
        return
    w.line(level, f"{title}:", lines[0])
    for extra in lines[1:]:
        w.line(level, "", extra)


def _labels(w: DescribeWriter, title: str, labels: Mapping[str, str], level: int = 0) -> None:
    _multiline(w, level, title, [f"{key}={value}" for key, value in sorted(labels.items())])


def _annotations(w: DescribeWriter, annotations: Mapping[str, str], level: int = 0) -> None:
    shown = {key: value for key, value in annotations.items() if key != LAST_APPLIED}
    _multiline(w, level, "Annotations", [f"{key}: {value}" for key, value in sorted(shown.items())])


def _metadata(w: DescribeWriter, info: KindInfo, obj: Any, *, created: bool = True) -> None:
    meta = obj.metadata
    w.line(0, "Name:", meta.name)
    if info.namespaced:
        w.line(0, "Namespace:", meta.namespace)
    _labels(w, "Labels", meta.labels)
    _annotations(w, meta.annotations)
    if created:
        w.line(0, "CreationTimestamp:", _timestamp(meta.creation_timestamp))
    if meta.HasField("deletion_timestamp"):
        w.line(0, "Terminating since:", _timestamp(meta.deletion_timestamp))
    if meta.finalizers:
        w.line(0, "Finalizers:", f"[{' '.join(meta.finalizers)}]")
    for owner in meta.owner_references:
        if owner.HasField("controller") and owner.controller:
            w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")


def _conditions(w: DescribeWriter, conditions: Sequence[Any], level: int = 0) -> None:
    if not conditions:
        return
    w.line(level, "Conditions:")
    w.line(level + 1, "Type", "Status", "Reason", "Message")
    w.line(level + 1, "----", "------", "------", "-------")
    for condition in conditions:
        w.line(
            level + 1,
            condition.type,
            condition.status,
            condition.reason or "",
            condition.message or "",
        )


# -------------------------------------------------------------------------- containers


def _state(w: DescribeWriter, level: int, title: str, state: Any) -> None:
    if state.HasField("running"):
        w.line(level, f"{title}:", "Running")
        w.line(level + 1, "Started:", _timestamp(state.running.started_at))
    elif state.HasField("waiting"):
        w.line(level, f"{title}:", "Waiting")
        if state.waiting.reason:
            w.line(level + 1, "Reason:", state.waiting.reason)
    elif state.HasField("terminated"):
        terminated = state.terminated
        w.line(level, f"{title}:", "Terminated")
        if terminated.reason:
            w.line(level + 1, "Reason:", terminated.reason)
        w.line(level + 1, "Exit Code:", terminated.exit_code)
        w.line(level + 1, "Started:", _timestamp(terminated.started_at))
        w.line(level + 1, "Finished:", _timestamp(terminated.finished_at))
    elif title == "State":
        w.line(level, f"{title}:", "Waiting")


def _container(w: DescribeWriter, level: int, container: Any, status: Any | None) -> None:
    w.line(level, f"{container.name}:")
    inner = level + 1
    if status is not None and status.container_id:
        w.line(inner, "Container ID:", status.container_id)
    w.line(inner, "Image:", container.image)
    if status is not None and status.image_id:
        w.line(inner, "Image ID:", status.image_id)
    ports = [f"{p.container_port}/{p.protocol or 'TCP'}" for p in container.ports]
    w.line(inner, "Port:" if len(ports) <= 1 else "Ports:", ", ".join(ports) or NONE)
    if container.command:
        _multiline(w, inner, "Command", list(container.command))
    if container.args:
        _multiline(w, inner, "Args", list(container.args))
    if status is not None:
        _state(w, inner, "State", status.state)
        _state(w, inner, "Last State", status.last_state)
        w.line(inner, "Ready:", "True" if status.ready else "False")
        w.line(inner, "Restart Count:", status.restart_count)
    for title, values in (
        ("Limits", container.resources.limits),
        ("Requests", container.resources.requests),
    ):
        if values:
            w.line(inner, f"{title}:")
            for key, value in sorted(values.items()):
                w.line(inner + 1, f"{key}:", value)
    if container.env:
        w.line(inner, "Environment:")
        for env in container.env:
            value = env.value
            if env.HasField("value_from"):
                source = env.value_from
                if source.HasField("field_ref"):
                    value = f"({source.field_ref.field_path})"
                elif source.HasField("config_map_key_ref"):
                    ref = source.config_map_key_ref
                    value = f"<set to the key '{ref.key}' of config map '{ref.name}'>"
                elif source.HasField("secret_key_ref"):
                    ref = source.secret_key_ref
                    value = f"<set to the key '{ref.key}' in secret '{ref.name}'>"
            w.line(inner + 1, f"{env.name}:", value)
    else:
        w.line(inner, "Environment:", NONE)
    mounts = [
        f"{m.mount_path} from {m.name} ({'ro' if m.read_only else 'rw'})"
        for m in container.volume_mounts
    ]
    _multiline(w, inner, "Mounts", mounts)


def _containers(
    w: DescribeWriter, level: int, title: str, containers: Sequence[Any], statuses: Sequence[Any]
) -> None:
    if not containers:
        return
    by_name = {status.name: status for status in statuses}
    w.line(level, f"{title}:")
    for container in containers:
        _container(w, level + 1, container, by_name.get(container.name))


def _volumes(w: DescribeWriter, level: int, volumes: Sequence[Any]) -> None:
    if not volumes:
        w.line(level, "Volumes:", NONE)
        return
    w.line(level, "Volumes:")
    for volume in volumes:
        w.line(level + 1, f"{volume.name}:")
        source = next(
            (
                name
                for name in ("empty_dir", "host_path", "config_map", "secret")
                if volume.HasField(name)
            ),
            "",
        )
        if source:
            w.line(level + 2, "Type:", source.replace("_", " ").title().replace(" ", ""))
        if volume.HasField("config_map"):
            w.line(level + 2, "Name:", volume.config_map.name)
        elif volume.HasField("secret"):
            w.line(level + 2, "SecretName:", volume.secret.secret_name)
        elif volume.HasField("host_path"):
            w.line(level + 2, "Path:", volume.host_path.path)
        elif volume.HasField("persistent_volume_claim"):
            w.line(level + 2, "ClaimName:", volume.persistent_volume_claim.claim_name)


def _pod_template(w: DescribeWriter, template: Any) -> None:
    w.line(0, "Pod Template:")
    _labels(w, "Labels", template.metadata.labels, level=1)
    if template.metadata.annotations:
        _annotations(w, template.metadata.annotations, level=1)
    spec = template.spec
    _containers(w, 1, "Init Containers", spec.init_containers, [])
    _containers(w, 1, "Containers", spec.containers, [])
    _volumes(w, 1, spec.volumes)


# ------------------------------------------------------------------------------ kinds


def _pod(w: DescribeWriter, info: KindInfo, pod: Any) -> None:
    spec, status = pod.spec, pod.status
    meta = pod.metadata
    w.line(0, "Name:", meta.name)
    w.line(0, "Namespace:", meta.namespace)
    w.line(0, "Priority:", spec.priority if spec.HasField("priority") else 0)
    if spec.service_account_name:
        w.line(0, "Service Account:", spec.service_account_name)
    node = spec.node_name or NONE
    if spec.node_name and status.host_ip:
        node = f"{spec.node_name}/{status.host_ip}"
    w.line(0, "Node:", node)
    if status.HasField("start_time"):
        w.line(0, "Start Time:", _timestamp(status.start_time))
    _labels(w, "Labels", meta.labels)
    _annotations(w, meta.annotations)
    if meta.HasField("deletion_timestamp"):
        w.line(0, "Status:", "Terminating")
        w.line(0, "Termination Grace Period:", f"{meta.deletion_grace_period_seconds}s")
    else:
        w.line(0, "Status:", status.phase or "Pending")
    if status.reason:
        w.line(0, "Reason:", status.reason)
    if status.message:
        w.line(0, "Message:", status.message)
    w.line(0, "IP:", status.pod_ip)
    ips = [ip.ip for ip in status.pod_ips]
    if ips:
        w.line(0, "IPs:")
        for ip in ips:
            w.line(1, "IP:", ip)
    else:
        w.line(0, "IPs:", NONE)
    for owner in meta.owner_references:
        if owner.HasField("controller") and owner.controller:
            w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")
    _containers(w, 0, "Init Containers", spec.init_containers, status.init_container_statuses)
    _containers(w, 0, "Containers", spec.containers, status.container_statuses)
    _conditions(w, status.conditions)
    _volumes(w, 0, spec.volumes)
    if status.qos_class:
        w.line(0, "QoS Class:", status.qos_class)
    _labels(w, "Node-Selectors", spec.node_selector)
    tolerations = []
    for toleration in spec.tolerations:
        text = toleration.key or "<all>"
        if toleration.operator == "Exists":
            text += ":" if not toleration.effect else ""
        elif toleration.value:
            text += f"={toleration.value}"
        if toleration.effect:
            text += f":{toleration.effect}"
        if toleration.HasField("toleration_seconds"):
            text += f" for {toleration.toleration_seconds}s"
        tolerations.append(text)
    _multiline(w, 0, "Tolerations", tolerations)


def _node(w: DescribeWriter, info: KindInfo, node: Any) -> None:
    roles = sorted(
        key.removeprefix(ROLE_PREFIX) for key in node.metadata.labels if key.startswith(ROLE_PREFIX)
    )
    w.line(0, "Name:", node.metadata.name)
    w.line(0, "Roles:", ",".join(roles) or NONE)
    _labels(w, "Labels", node.metadata.labels)
    _annotations(w, node.metadata.annotations)
    w.line(0, "CreationTimestamp:", _timestamp(node.metadata.creation_timestamp))
    taints = [
        f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
        for t in node.spec.taints
    ]
    _multiline(w, 0, "Taints", taints)
    w.line(0, "Unschedulable:", "true" if node.spec.unschedulable else "false")
    status = node.status
    if status.conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type", "Status", "LastHeartbeatTime", "Reason", "Message")
        w.line(1, "----", "------", "-----------------", "------", "-------")
        for c in status.conditions:
            w.line(1, c.type, c.status, _timestamp(c.last_heartbeat_time), c.reason, c.message)
    if status.addresses:
        w.line(0, "Addresses:")
        for address in status.addresses:
            w.line(1, f"{address.type}:", address.address)
    for title, values in (("Capacity", status.capacity), ("Allocatable", status.allocatable)):
        if values:
            w.line(0, f"{title}:")
            for key, value in sorted(values.items()):
                w.line(1, f"{key}:", value)
    system = status.node_info
    if system.ByteSize():
        w.line(0, "System Info:")
        for title, value in (
            ("Machine ID", system.machine_id),
            ("Boot ID", system.boot_id),
            ("Kernel Version", system.kernel_version),
            ("OS Image", system.os_image),
            ("Operating System", system.operating_system),
            ("Architecture", system.architecture),
            ("Container Runtime Version", system.container_runtime_version),
            ("Kubelet Version", system.kubelet_version),
        ):
            w.line(1, f"{title}:", value)
    if node.spec.pod_cidr:
        w.line(0, "PodCIDR:", node.spec.pod_cidr)


def _selector_text(selector: Any) -> str:
    terms = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    for expression in selector.match_expressions:
        values = ",".join(expression.values)
        terms.append(f"{expression.key} {expression.operator.lower()} ({values})")
    return ",".join(terms) or NONE


def _replicas(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


def _deployment(w: DescribeWriter, info: KindInfo, deployment: Any) -> None:
    _metadata(w, info, deployment)
    spec, status = deployment.spec, deployment.status
    w.line(0, "Selector:", _selector_text(spec.selector))
    unavailable = status.unavailable_replicas
    w.line(
        0,
        "Replicas:",
        f"{_replicas(spec)} desired | {status.updated_replicas} updated | {status.replicas} "
        f"total | {status.available_replicas} available | {unavailable} unavailable",
    )
    strategy = spec.strategy.type or "RollingUpdate"
    w.line(0, "StrategyType:", strategy)
    w.line(0, "MinReadySeconds:", spec.min_ready_seconds)
    if strategy == "RollingUpdate":
        rolling = spec.strategy.rolling_update
        w.line(
            0,
            "RollingUpdateStrategy:",
            f"{rolling.max_unavailable or '25%'} max unavailable, "
            f"{rolling.max_surge or '25%'} max surge",
        )
    _pod_template(w, spec.template)
    _conditions(w, status.conditions)


def _replicaset(w: DescribeWriter, info: KindInfo, rs: Any) -> None:
    _metadata(w, info, rs)
    spec, status = rs.spec, rs.status
    w.line(0, "Selector:", _selector_text(spec.selector))
    w.line(0, "Replicas:", f"{status.replicas} current / {_replicas(spec)} desired")
    w.line(0, "Ready Replicas:", status.ready_replicas)
    _pod_template(w, spec.template)
    _conditions(w, status.conditions)


def _service(w: DescribeWriter, info: KindInfo, service: Any) -> None:
    _metadata(w, info, service, created=False)
    spec = service.spec
    _labels(w, "Selector", spec.selector)
    w.line(0, "Type:", spec.type or "ClusterIP")
    w.line(0, "IP:", spec.cluster_ip or NONE)
    if spec.cluster_ips:
        w.line(0, "IPs:", ",".join(spec.cluster_ips))
    if spec.external_ips:
        w.line(0, "External IPs:", ",".join(spec.external_ips))
    if spec.external_name:
        w.line(0, "External Name:", spec.external_name)
    for port in spec.ports:
        name = port.name or "<unset>"
        protocol = port.protocol or "TCP"
        w.line(0, "Port:", f"{name}  {port.port}/{protocol}")
        w.line(0, "TargetPort:", f"{port.target_port or port.port}/{protocol}")
        if port.node_port:
            w.line(0, "NodePort:", f"{name}  {port.node_port}/{protocol}")
    w.line(0, "Session Affinity:", spec.session_affinity or "None")


def _endpoints(w: DescribeWriter, info: KindInfo, endpoints: Any) -> None:
    _metadata(w, info, endpoints, created=False)
    if not endpoints.subsets:
        w.line(0, "Subsets:", NONE)
        return
    w.line(0, "Subsets:")
    for subset in endpoints.subsets:
        w.line(1, "Addresses:", ",".join(a.ip for a in subset.addresses) or NONE)
        w.line(1, "NotReadyAddresses:", ",".join(a.ip for a in subset.not_ready_addresses) or NONE)
        if subset.ports:
            w.line(1, "Ports:")
            w.line(2, "Name", "Port", "Protocol")
            w.line(2, "----", "----", "--------")
            for port in subset.ports:
                w.line(2, port.name or "<unset>", port.port, port.protocol or "TCP")


def _configmap(w: DescribeWriter, info: KindInfo, configmap: Any) -> None:
    _metadata(w, info, configmap, created=False)
    w.line(0, "")
    w.line(0, "Data")
    w.line(0, "====")
    for key, value in sorted(configmap.data.items()):
        w.line(0, f"{key}:")
        w.line(0, "----")
        for text in str(value).splitlines() or [""]:
            w.line(0, text)
        w.line(0, "")
    w.line(0, "")
    w.line(0, "BinaryData")
    w.line(0, "====")
    for key, value in sorted(configmap.binary_data.items()):
        w.line(0, f"{key}:", f"{len(value)} bytes")


def _secret(w: DescribeWriter, info: KindInfo, secret: Any) -> None:
    _metadata(w, info, secret, created=False)
    w.line(0, "")
    w.line(0, "Type:", secret.type or "Opaque")
    w.line(0, "")
    w.line(0, "Data")
    w.line(0, "====")
    sizes = {key: len(value) for key, value in secret.data.items()}
    sizes.update({key: len(value.encode()) for key, value in secret.string_data.items()})
    for key, size in sorted(sizes.items()):
        w.line(0, f"{key}:", f"{size} bytes")


def _namespace(w: DescribeWriter, info: KindInfo, namespace: Any) -> None:
    _metadata(w, info, namespace, created=False)
    w.line(0, "Status:", namespace.status.phase or "Active")
    _conditions(w, namespace.status.conditions)


def _generic(w: DescribeWriter, info: KindInfo, obj: Any) -> None:
    _metadata(w, info, obj)
    document = to_dict(obj)
    for key in ("apiVersion", "kind", "metadata"):
        document.pop(key, None)
    for key, value in document.items():
        title = key[:1].upper() + key[1:]
        if isinstance(value, dict | list):
            w.line(0, f"{title}:")
            for text in dump_yaml(value).splitlines():
                w.line(1, text)
        else:
            w.line(0, f"{title}:", value)


_DESCRIBERS: dict[str, Callable[[DescribeWriter, KindInfo, Any], None]] = {
    "Pod": _pod,
    "Node": _node,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "Service": _service,
    "Endpoints": _endpoints,
    "ConfigMap": _configmap,
    "Secret": _secret,
    "Namespace": _namespace,
}


def events_section(w: DescribeWriter, events: Sequence[Any], now: dt.datetime) -> None:
    """`Events:` with one line per event (oldest first), or `<none>`."""
    if not events:
        w.line(0, "Events:", NONE)
        return
    w.line(0, "Events:")
    w.line(1, "Type", "Reason", "Age", "From", "Message")
    w.line(1, "----", "------", "----", "----", "-------")
    for event in events:
        last = event_last_seen(event)
        age = NONE if last is None else human_duration((now - last).total_seconds())
        first = to_datetime(event.first_timestamp)
        if event.count > 1 and first is not None:
            span = human_duration((now - first).total_seconds())
            age = f"{age} (x{event.count} over {span})"
        source = event.source.component or event.reporting_component
        w.line(1, event.type, event.reason, age, source, str(event.message).strip())


def describe_object(info: KindInfo, obj: Any, events: Sequence[Any], now: dt.datetime) -> str:
    w = DescribeWriter()
    _DESCRIBERS.get(info.kind, _generic)(w, info, obj)
    if info.kind != "Event":
        events_section(w, events, now)
    return w.text()
