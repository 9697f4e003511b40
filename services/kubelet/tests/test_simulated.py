from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.kubelet.simulated import exited_status, simulated_pod_status


def pod() -> core_pb2.Pod:
    obj = core_pb2.Pod()
    obj.metadata.name, obj.metadata.uid = "p", "0123456789abcdef"
    obj.spec.init_containers.add(name="setup", image="init:1")
    obj.spec.containers.add(name="a", image="a:1")
    obj.spec.containers.add(name="b", image="b:1")
    return obj


def test_a_simulated_pod_runs_with_every_container_ready() -> None:
    status = simulated_pod_status(pod(), pod_ip="10.128.3.7", host_ip="10.128.3.1", now=100)
    assert (status.phase, status.pod_ip, status.host_ip) == ("Running", "10.128.3.7", "10.128.3.1")
    assert {c.type: c.status for c in status.conditions} == dict.fromkeys(
        ("PodScheduled", "Initialized", "ContainersReady", "Ready"), "True"
    )
    assert status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert [
        (c.name, c.ready, c.state.running.started_at.seconds) for c in status.container_statuses
    ] == [
        ("a", True, 100),
        ("b", True, 100),
    ]


def test_exit_code_decides_succeeded_or_failed() -> None:
    running = simulated_pod_status(pod(), pod_ip="10.0.0.2", host_ip="10.0.0.1", now=100)
    done = exited_status(running, 0, now=160)
    assert done.phase == "Succeeded"
    terminated = done.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.started_at.seconds, terminated.finished_at.seconds) == (
        "Completed",
        100,
        160,
    )
    assert {c.type: c.status for c in done.conditions}["Ready"] == "False"
    failed = exited_status(running, 2, now=160)
    assert failed.phase == "Failed"
    assert failed.container_statuses[1].state.terminated.reason == "Error"
    assert running.phase == "Running"  # the running status is not modified
