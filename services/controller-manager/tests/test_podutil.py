"""Which pods count, which are ready or available, and which a scale-down deletes first."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.controllermanager import podutil


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready_since: float | None = None,
    restarts: int = 0,
    created: int = 0,
) -> core_pb2.Pod:
    out = core_pb2.Pod()
    out.metadata.name = name
    out.metadata.creation_timestamp.seconds = created
    out.spec.node_name = node
    out.status.phase = phase
    if ready_since is not None:
        condition = out.status.conditions.add(type="Ready", status="True")
        condition.last_transition_time.FromNanoseconds(int(ready_since * 1e9))
    out.status.container_statuses.add(name="c", restart_count=restarts)
    return out


def test_finished_and_deleting_pods_are_not_active() -> None:
    deleting = pod("d")
    deleting.metadata.deletion_timestamp.seconds = 1
    assert podutil.is_active(pod("a"))
    assert not podutil.is_active(pod("s", phase="Succeeded"))
    assert not podutil.is_active(deleting)


def test_available_needs_min_ready_seconds_of_readiness() -> None:
    ready = pod("r", ready_since=100.0)
    assert podutil.is_available(ready, 0, now=100.0)
    assert not podutil.is_available(ready, 10, now=105.0)
    assert podutil.is_available(ready, 10, now=110.0)
    assert podutil.available_in(ready, 10, now=105.0) == 5.0
    assert not podutil.is_available(pod("n"), 0, now=100.0)


def test_deletion_order_prefers_unscheduled_then_pending_then_unready() -> None:
    pods = [
        pod("ready", node="n1", ready_since=100),
        pod("unscheduled", phase="Pending"),
        pod("pending", node="n2", phase="Pending"),
        pod("not-ready", node="n3"),
    ]
    order = [p.metadata.name for p in podutil.deletion_order(pods, now=1000)]
    assert order == ["unscheduled", "pending", "not-ready", "ready"]


def test_among_ready_pods_shorter_readiness_then_more_restarts_then_newer_go_first() -> None:
    pods = [
        pod("veteran", node="n1", ready_since=100, created=1),
        pod("fresh", node="n2", ready_since=900, created=1),
        pod("flappy", node="n3", ready_since=100, restarts=4, created=1),
        pod("younger", node="n4", ready_since=100, created=5),
    ]
    order = [p.metadata.name for p in podutil.deletion_order(pods, now=1000)]
    assert order == ["fresh", "flappy", "younger", "veteran"]


def test_deletion_order_spreads_what_remains_across_nodes() -> None:
    pods = [
        pod("a1", node="a", ready_since=10),
        pod("a2", node="a", ready_since=10),
        pod("b1", node="b", ready_since=10),
    ]
    first = podutil.deletion_order(pods, now=100)[0]
    assert first.spec.node_name == "a"
