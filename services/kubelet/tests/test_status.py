from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.kubelet.runtime import ContainerRecord, ContainerRunState
from bosun.kubelet.status import ContainerView, compute_status, container_status, pod_phase


def record(state: ContainerRunState, exit_code: int = 0, **fields: object) -> ContainerRecord:
    return ContainerRecord(
        id=f"id-{state}-{exit_code}",
        labels={},
        state=state,
        exit_code=exit_code,
        started_at=100.0,
        finished_at=110.0 if state == "exited" else None,
        **fields,
    )  # type: ignore[arg-type]


def running() -> core_pb2.ContainerStatus:
    return container_status(ContainerView("a", "img", current=record("running"), ready=True))


def exited(code: int) -> core_pb2.ContainerStatus:
    return container_status(ContainerView("a", "img", current=record("exited", code)))


def waiting(reason: str, *, ran_before: bool = False) -> core_pb2.ContainerStatus:
    current = record("exited", 1) if ran_before else None
    return container_status(ContainerView("a", "img", current=current, waiting_reason=reason))


def test_container_states_and_last_state() -> None:
    status = running()
    assert status.state.running.started_at.seconds == 100
    assert status.ready
    status = exited(0)
    assert (status.state.terminated.reason, status.state.terminated.exit_code) == ("Completed", 0)
    status = exited(2)
    assert status.state.terminated.reason == "Error"
    status = container_status(
        ContainerView("a", "img", current=record("exited", 137, oom_killed=True))
    )
    assert status.state.terminated.reason == "OOMKilled"
    status = waiting("CrashLoopBackOff", ran_before=True)
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated.exit_code == 1
    status = container_status(
        ContainerView(
            "a", "img", current=record("running"), previous=record("exited", 3), restart_count=1
        )
    )
    assert (status.last_state.terminated.exit_code, status.restart_count) == (3, 1)
    assert container_status(ContainerView("a", "img")).state.waiting.reason == "ContainerCreating"


def test_ready_needs_running_and_the_probe_verdict() -> None:
    assert not container_status(
        ContainerView("a", "i", current=record("running"), ready=False)
    ).ready
    assert not container_status(ContainerView("a", "i", current=record("exited"), ready=True)).ready


def test_phase_follows_kubernetes_get_phase() -> None:
    assert pod_phase("Always", [], [waiting("ContainerCreating")]) == "Pending"
    assert pod_phase("Always", [], [running(), waiting("ErrImagePull")]) == "Pending"
    assert pod_phase("Always", [], [running()]) == "Running"
    assert pod_phase("Always", [], [waiting("CrashLoopBackOff", ran_before=True)]) == "Running"
    assert pod_phase("Always", [], [exited(0)]) == "Running"
    assert pod_phase("Never", [], [exited(0), exited(0)]) == "Succeeded"
    assert pod_phase("Never", [], [exited(0), exited(1)]) == "Failed"
    assert pod_phase("OnFailure", [], [exited(0), exited(1)]) == "Running"
    assert pod_phase("OnFailure", [], [exited(0)]) == "Succeeded"


def test_init_containers_gate_the_phase() -> None:
    assert pod_phase("Always", [running()], [waiting("PodInitializing")]) == "Pending"
    assert pod_phase("Always", [exited(1)], [waiting("PodInitializing")]) == "Pending"
    assert pod_phase("Never", [exited(1)], [waiting("PodInitializing")]) == "Failed"
    assert pod_phase("Never", [exited(0)], [running()]) == "Running"


def pod() -> core_pb2.Pod:
    obj = core_pb2.Pod()
    obj.metadata.name = "p"
    obj.spec.containers.add(name="a", image="img")
    return obj


def test_conditions_and_stable_transition_times() -> None:
    view = ContainerView("a", "img", current=record("running"), ready=True)
    first = compute_status(
        pod(),
        init_views=[],
        views=[view],
        host_ip="1.2.3.4",
        pod_ip="10.0.0.5",
        start_time=50,
        now=200,
    )
    assert (first.phase, first.pod_ip, first.host_ip) == ("Running", "10.0.0.5", "1.2.3.4")
    assert [p.ip for p in first.pod_ips] == ["10.0.0.5"]
    assert {c.type: c.status for c in first.conditions} == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    again = pod()
    again.status.CopyFrom(first)
    same = compute_status(
        again,
        init_views=[],
        views=[view],
        host_ip="1.2.3.4",
        pod_ip="10.0.0.5",
        start_time=99,
        now=300,
    )
    assert same == first  # nothing changed: an identical status (the worker skips the write)
    unready = ContainerView("a", "img", current=record("running"), ready=False)
    flipped = compute_status(
        again,
        init_views=[],
        views=[unready],
        host_ip="1.2.3.4",
        pod_ip="10.0.0.5",
        start_time=99,
        now=300,
    )
    ready = next(c for c in flipped.conditions if c.type == "Ready")
    assert (ready.status, ready.reason, ready.last_transition_time.seconds) == (
        "False",
        "ContainersNotReady",
        300,
    )
    assert flipped.start_time.seconds == 50
