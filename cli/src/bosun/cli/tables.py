"""The columns `bosunctl get` shows for each kind, computed as kubectl's printers compute them.

A kind's table is a list of `Column`s: a header and a function from (object, now) to the
cell's text. `wide` columns appear only with `-o wide`. Kinds without a table of their own get
NAME and AGE. `now` is passed in so that ages are computed once per table and are testable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bosun.cli.durations import age, human_duration, to_datetime
from bosun.cli.resources import kind_label
from bosun.common.kinds import KindInfo

__all__ = [
    "Column",
    "columns_for",
    "event_last_seen",
    "pod_status",
    "sort_events",
    "table_rows",
]

Cell = Callable[[Any, dt.datetime], str]
NONE = "<none>"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell
    wide: bool = False


def _name(obj: Any, now: dt.datetime) -> str:
    return str(obj.metadata.name)


def _age(obj: Any, now: dt.datetime) -> str:
    return age(obj.metadata.creation_timestamp, now)


NAME = Column("NAME", _name)
AGE = Column("AGE", _age)


def _join(values: Sequence[str], *, limit: int = 0) -> str:
    values = [value for value in values if value]
    if not values:
        return NONE
    if limit and len(values) > limit:
        return ",".join(values[:limit]) + f" + {len(values) - limit} more..."
    return ",".join(values)


def _selector(labels: Any) -> str:
    return _join([f"{key}={value}" for key, value in sorted(labels.items())])


# ---------------------------------------------------------------------------------- pods


def _pod_ready(pod: Any, now: dt.datetime) -> str:
    ready = sum(1 for status in pod.status.container_statuses if status.ready)
    return f"{ready}/{len(pod.spec.containers)}"


def _terminated_reason(terminated: Any) -> str:
    if terminated.reason:
        return str(terminated.reason)
    if terminated.signal:
        return f"Signal:{terminated.signal}"
    return f"ExitCode:{terminated.exit_code}"


def pod_status(pod: Any, now: dt.datetime | None = None) -> str:
    """The STATUS column: the most telling of phase, reason and container states."""
    status = pod.status
    reason = status.reason or status.phase or "Pending"
    initializing = False
    for index, init in enumerate(status.init_container_statuses):
        state = init.state
        if state.HasField("terminated") and state.terminated.exit_code == 0:
            continue
        initializing = True
        if state.HasField("terminated"):
            terminated = state.terminated
            reason = "Init:" + (
                terminated.reason
                or (
                    f"Signal:{terminated.signal}"
                    if terminated.signal
                    else f"ExitCode:{terminated.exit_code}"
                )
            )
        elif state.HasField("waiting") and state.waiting.reason not in ("", "PodInitializing"):
            reason = f"Init:{state.waiting.reason}"
        else:
            reason = f"Init:{index}/{len(pod.spec.init_containers)}"
        break
    if not initializing:
        running = False
        for container in reversed(status.container_statuses):
            state = container.state
            if state.HasField("waiting") and state.waiting.reason:
                reason = state.waiting.reason
            elif state.HasField("terminated"):
                reason = _terminated_reason(state.terminated)
            elif state.HasField("running") and container.ready:
                running = True
        if reason == "Completed" and running:
            reason = "Running"
    if pod.metadata.HasField("deletion_timestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_restarts(pod: Any, now: dt.datetime) -> str:
    return str(sum(status.restart_count for status in pod.status.container_statuses))


def _or_none(value: str) -> str:
    return value or NONE


POD_COLUMNS = (
    NAME,
    Column("READY", _pod_ready),
    Column("STATUS", pod_status),
    Column("RESTARTS", _pod_restarts),
    AGE,
    Column("IP", lambda pod, now: _or_none(pod.status.pod_ip), wide=True),
    Column("NODE", lambda pod, now: _or_none(pod.spec.node_name), wide=True),
)

# ---------------------------------------------------------------------------------- nodes


def _condition(conditions: Any, kind: str) -> str:
    for condition in conditions:
        if condition.type == kind:
            return str(condition.status)
    return ""


def _node_status(node: Any, now: dt.datetime) -> str:
    ready = _condition(node.status.conditions, "Ready")
    status = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if node.spec.unschedulable:
        status += ",SchedulingDisabled"
    return status


ROLE_PREFIX = "node-role.kubernetes.io/"


def _node_roles(node: Any, now: dt.datetime) -> str:
    roles = sorted(
        key.removeprefix(ROLE_PREFIX)
        for key in node.metadata.labels
        if key.startswith(ROLE_PREFIX) and key != ROLE_PREFIX
    )
    return _join(roles)


def _node_address(kind: str) -> Cell:
    def cell(node: Any, now: dt.datetime) -> str:
        return _join([a.address for a in node.status.addresses if a.type == kind])

    return cell


NODE_COLUMNS = (
    NAME,
    Column("STATUS", _node_status),
    Column("ROLES", _node_roles),
    AGE,
    Column("VERSION", lambda node, now: _or_none(node.status.node_info.kubelet_version)),
    Column("INTERNAL-IP", _node_address("InternalIP"), wide=True),
    Column("EXTERNAL-IP", _node_address("ExternalIP"), wide=True),
    Column("OS-IMAGE", lambda node, now: _or_none(node.status.node_info.os_image), wide=True),
    Column(
        "KERNEL-VERSION",
        lambda node, now: _or_none(node.status.node_info.kernel_version),
        wide=True,
    ),
    Column(
        "CONTAINER-RUNTIME",
        lambda node, now: _or_none(node.status.node_info.container_runtime_version),
        wide=True,
    ),
)

# ------------------------------------------------------------------------ workloads


def _replicas(spec: Any) -> int:
    return int(spec.replicas) if spec.HasField("replicas") else 1


def _containers(obj: Any, now: dt.datetime) -> str:
    return _join([c.name for c in obj.spec.template.spec.containers])


def _images(obj: Any, now: dt.datetime) -> str:
    return _join([c.image for c in obj.spec.template.spec.containers])


def _label_selector(obj: Any, now: dt.datetime) -> str:
    selector = obj.spec.selector
    terms = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    for expression in selector.match_expressions:
        operator = expression.operator
        if operator == "Exists":
            terms.append(expression.key)
        elif operator == "DoesNotExist":
            terms.append(f"!{expression.key}")
        else:
            values = ",".join(expression.values)
            terms.append(f"{expression.key} {operator.lower()} ({values})")
    return _join(terms)


WORKLOAD_WIDE = (
    Column("CONTAINERS", _containers, wide=True),
    Column("IMAGES", _images, wide=True),
    Column("SELECTOR", _label_selector, wide=True),
)

DEPLOYMENT_COLUMNS = (
    NAME,
    Column("READY", lambda d, now: f"{d.status.ready_replicas}/{_replicas(d.spec)}"),
    Column("UP-TO-DATE", lambda d, now: str(d.status.updated_replicas)),
    Column("AVAILABLE", lambda d, now: str(d.status.available_replicas)),
    AGE,
    *WORKLOAD_WIDE,
)

REPLICASET_COLUMNS = (
    NAME,
    Column("DESIRED", lambda rs, now: str(_replicas(rs.spec))),
    Column("CURRENT", lambda rs, now: str(rs.status.replicas)),
    Column("READY", lambda rs, now: str(rs.status.ready_replicas)),
    AGE,
    *WORKLOAD_WIDE,
)

# ------------------------------------------------------------------------- networking


def _service_external_ip(service: Any, now: dt.datetime) -> str:
    spec = service.spec
    external = list(spec.external_ips)
    if spec.type == "LoadBalancer":
        ingress = [i.ip or i.hostname for i in service.status.load_balancer.ingress]
        external = ingress + external
        return _join(external) if external else "<pending>"
    if spec.type == "ExternalName":
        return str(spec.external_name)
    return _join(external)


def _service_ports(service: Any, now: dt.datetime) -> str:
    ports = []
    for port in service.spec.ports:
        text = f"{port.port}:{port.node_port}" if port.node_port else str(port.port)
        ports.append(f"{text}/{port.protocol or 'TCP'}")
    return _join(ports)


def _endpoints(endpoints: Any, now: dt.datetime) -> str:
    addresses: list[str] = []
    for subset in endpoints.subsets:
        ports = [port.port for port in subset.ports] or [0]
        for address in subset.addresses:
            for port in ports:
                addresses.append(f"{address.ip}:{port}" if port else address.ip)
    return _join(addresses, limit=3)


SERVICE_COLUMNS = (
    NAME,
    Column("TYPE", lambda s, now: s.spec.type or "ClusterIP"),
    Column("CLUSTER-IP", lambda s, now: _or_none(s.spec.cluster_ip)),
    Column("EXTERNAL-IP", _service_external_ip),
    Column("PORT(S)", _service_ports),
    AGE,
    Column("SELECTOR", lambda s, now: _selector(s.spec.selector), wide=True),
)

ENDPOINTS_COLUMNS = (NAME, Column("ENDPOINTS", _endpoints), AGE)

# ----------------------------------------------------------------------- config, misc

CONFIGMAP_COLUMNS = (
    NAME,
    Column("DATA", lambda cm, now: str(len(cm.data) + len(cm.binary_data))),
    AGE,
)

SECRET_COLUMNS = (
    NAME,
    Column("TYPE", lambda s, now: s.type or "Opaque"),
    Column("DATA", lambda s, now: str(len(set(s.data) | set(s.string_data)))),
    AGE,
)

NAMESPACE_COLUMNS = (NAME, Column("STATUS", lambda ns, now: ns.status.phase or "Active"), AGE)

SERVICEACCOUNT_COLUMNS = (NAME, Column("SECRETS", lambda sa, now: str(len(sa.secrets))), AGE)

LEASE_COLUMNS = (
    NAME,
    Column(
        "HOLDER",
        lambda lease, now: (
            lease.spec.holder_identity if lease.spec.HasField("holder_identity") else ""
        ),
    ),
    AGE,
)


def event_last_seen(event: Any) -> dt.datetime | None:
    """When an event last happened: lastTimestamp, else eventTime, firstTimestamp, creation."""
    for timestamp in (
        event.last_timestamp,
        event.event_time,
        event.first_timestamp,
        event.metadata.creation_timestamp,
    ):
        moment = to_datetime(timestamp)
        if moment is not None:
            return moment
    return None


def sort_events(events: Sequence[Any]) -> list[Any]:
    """Oldest first, newest last (as `kubectl events` and describe show them)."""
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(events, key=lambda event: event_last_seen(event) or floor)


def _event_last_seen(event: Any, now: dt.datetime) -> str:
    moment = event_last_seen(event)
    return "<unknown>" if moment is None else human_duration((now - moment).total_seconds())


def _event_object(event: Any, now: dt.datetime) -> str:
    involved = event.involved_object
    return f"{involved.kind.lower()}/{involved.name}" if involved.kind else str(involved.name)


EVENT_COLUMNS = (
    Column("LAST SEEN", _event_last_seen),
    Column("TYPE", lambda e, now: str(e.type)),
    Column("REASON", lambda e, now: str(e.reason)),
    Column("OBJECT", _event_object),
    Column("MESSAGE", lambda e, now: str(e.message).strip()),
)

_COLUMNS: dict[str, Sequence[Column]] = {
    "Pod": POD_COLUMNS,
    "Node": NODE_COLUMNS,
    "Namespace": NAMESPACE_COLUMNS,
    "Deployment": DEPLOYMENT_COLUMNS,
    "ReplicaSet": REPLICASET_COLUMNS,
    "Service": SERVICE_COLUMNS,
    "Endpoints": ENDPOINTS_COLUMNS,
    "ConfigMap": CONFIGMAP_COLUMNS,
    "Secret": SECRET_COLUMNS,
    "Event": EVENT_COLUMNS,
    "ServiceAccount": SERVICEACCOUNT_COLUMNS,
    "Lease": LEASE_COLUMNS,
}


def columns_for(info: KindInfo, *, wide: bool = False) -> list[Column]:
    columns = _COLUMNS.get(info.kind, (NAME, AGE))
    return [column for column in columns if wide or not column.wide]


def table_rows(
    info: KindInfo,
    objects: Sequence[Any],
    *,
    now: dt.datetime,
    wide: bool = False,
    all_namespaces: bool = False,
    kind_prefix: bool = False,
    show_labels: bool = False,
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for `objects` of one kind.

    all_namespaces adds a leading NAMESPACE column, kind_prefix writes names as `pod/web` (when
    several kinds are listed together), show_labels adds a trailing LABELS column.
    """
    columns = columns_for(info, wide=wide)
    headers = [column.header for column in columns]
    if all_namespaces and info.namespaced:
        headers.insert(0, "NAMESPACE")
    if show_labels:
        headers.append("LABELS")
    rows: list[list[str]] = []
    for obj in objects:
        row = [column.cell(obj, now) for column in columns]
        if kind_prefix and columns and columns[0] is NAME:
            row[0] = f"{kind_label(info)}/{row[0]}"
        if all_namespaces and info.namespaced:
            row.insert(0, str(obj.metadata.namespace))
        if show_labels:
            row.append(_selector(obj.metadata.labels))
        rows.append(row)
    return headers, rows
