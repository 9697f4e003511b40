"""Pod status from what the runtime reports: a pure function, so its rules are unit-tested.

The pod worker gathers, per container, a `ContainerView` (the current container instance, the
previous one for lastState, the probe verdicts, and a waiting reason the worker decided, such as
ImagePullBackOff or CrashLoopBackOff) and calls `compute_status`. Phase follows Kubernetes'
getPhase:

* init containers not all succeeded → Pending (Failed when one failed and restartPolicy Never);
* an app container waiting that never ran → Pending;
* any running → Running;
* all stopped: Always → Running (they restart); all succeeded → Succeeded; Never → Failed;
  OnFailure → Running (the failed ones restart).

Condition timestamps move only when the status flips, so an unchanged pod yields an identical
status and the worker can skip the write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from bosun.api.v1 import core_pb2
from bosun.kubelet.runtime import ContainerRecord

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class ContainerView:
    name: str
    image: str
    current: ContainerRecord | None = None
    previous: ContainerRecord | None = None
    restart_count: int = 0
    # A reason the worker decided (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
    # CreateContainerConfigError, ContainerCreating, PodInitializing) and its message.
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool = False


def timestamp(seconds: float | None) -> Timestamp:
    stamp = Timestamp()
    if seconds is not None:
        stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def terminated_reason(record: ContainerRecord) -> str:
    if record.oom_killed:
        return "OOMKilled"
    if record.error:
        return "ContainerCannotRun"
    return "Completed" if record.exit_code == 0 else "Error"


def terminated_state(record: ContainerRecord) -> core_pb2.ContainerState:
    state = core_pb2.ContainerState()
    t = state.terminated
    t.exit_code = record.exit_code
    t.reason = terminated_reason(record)
    if record.error:
        t.message = record.error
    if record.started_at is not None:
        t.started_at.CopyFrom(timestamp(record.started_at))
    if record.finished_at is not None:
        t.finished_at.CopyFrom(timestamp(record.finished_at))
    t.container_id = f"docker://{record.id}"
    return state


def container_status(view: ContainerView) -> core_pb2.ContainerStatus:
    status = core_pb2.ContainerStatus(
        name=view.name, image=view.image, restart_count=view.restart_count
    )
    current = view.current
    if current is not None:
        status.container_id = f"docker://{current.id}"
        status.image_id = current.image_id
    if view.waiting_reason:
        status.state.waiting.reason = view.waiting_reason
        if view.waiting_message:
            status.state.waiting.message = view.waiting_message
    elif current is None or current.state in ("created", "unknown"):
        status.state.waiting.reason = "ContainerCreating"
    elif current.state == "running":
        status.state.running.started_at.CopyFrom(timestamp(current.started_at))
    else:
        status.state.CopyFrom(terminated_state(current))
    # lastState: the previous instance; while waiting to restart, the one that just exited.
    if view.waiting_reason and current is not None and current.state == "exited":
        status.last_state.CopyFrom(terminated_state(current))
    elif view.previous is not None and view.previous.state == "exited":
        status.last_state.CopyFrom(terminated_state(view.previous))
    running = status.state.HasField("running")
    status.ready = running and view.ready
    status.started = running and view.started
    return status


def _exited_ok(status: core_pb2.ContainerStatus) -> bool:
    return status.state.HasField("terminated") and status.state.terminated.exit_code == 0


def _has_terminated(status: core_pb2.ContainerStatus) -> bool:
    return status.state.HasField("terminated") or status.last_state.HasField("terminated")


def pod_phase(
    restart_policy: str,
    init_statuses: Sequence[core_pb2.ContainerStatus],
    statuses: Sequence[core_pb2.ContainerStatus],
) -> str:
    policy = restart_policy or "Always"
    for init in init_statuses:
        if _exited_ok(init):
            continue
        terminated = init.state.terminated if init.state.HasField("terminated") else None
        if terminated is not None and policy == "Never":
            return "Failed"
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        if status.state.HasField("running"):
            running += 1
        elif status.state.HasField("terminated"):
            stopped += 1
            succeeded += status.state.terminated.exit_code == 0
        elif _has_terminated(status):
            stopped += 1  # waiting to restart after having run (CrashLoopBackOff)
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if policy == "Never" else "Running"


def _condition(
    old: Sequence[core_pb2.PodCondition], type_: str, ok: bool, reason: str, now: float
) -> core_pb2.PodCondition:
    value = "True" if ok else "False"
    condition = core_pb2.PodCondition(type=type_, status=value)
    if not ok and reason:
        condition.reason = reason
    for previous in old:
        if previous.type == type_ and previous.status == value:
            condition.last_transition_time.CopyFrom(previous.last_transition_time)
            break
    else:
        condition.last_transition_time.CopyFrom(timestamp(now))
    return condition


def compute_status(
    pod: core_pb2.Pod,
    *,
    init_views: Sequence[ContainerView],
    views: Sequence[ContainerView],
    host_ip: str,
    pod_ip: str,
    start_time: float,
    now: float,
) -> core_pb2.PodStatus:
    old = pod.status
    status = core_pb2.PodStatus(host_ip=host_ip, pod_ip=pod_ip, qos_class=old.qos_class)
    if pod_ip:
        status.pod_ips.add(ip=pod_ip)
    status.start_time.CopyFrom(
        old.start_time if old.HasField("start_time") else timestamp(start_time)
    )
    status.init_container_statuses.extend(container_status(v) for v in init_views)
    status.container_statuses.extend(container_status(v) for v in views)
    status.phase = pod_phase(
        pod.spec.restart_policy, status.init_container_statuses, status.container_statuses
    )
    initialized = all(_exited_ok(s) for s in status.init_container_statuses)
    ready = status.phase == "Running" and all(s.ready for s in status.container_statuses)
    not_ready = "PodCompleted" if status.phase in TERMINAL_PHASES else "ContainersNotReady"
    conditions = old.conditions
    status.conditions.extend(
        [
            _condition(conditions, "PodScheduled", True, "", now),
            _condition(
                conditions,
                "Initialized",
                initialized or status.phase == "Succeeded",
                "ContainersNotInitialized",
                now,
            ),
            _condition(conditions, "ContainersReady", ready, not_ready, now),
            _condition(conditions, "Ready", ready, not_ready, now),
        ]
    )
    return status
