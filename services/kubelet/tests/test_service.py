from __future__ import annotations

import grpc
import pytest

from bosun.kubelet import labels as L
from bosun.kubelet.runtime import ContainerRecord
from bosun.kubelet.service import LookupError_, cpu_nano_cores, memory_working_set, pick_container


def record(container: str, attempt: int, *, kind: str = "app", pod: str = "web") -> ContainerRecord:
    return ContainerRecord(
        id=f"{pod}-{container}-{attempt}",
        labels={
            L.POD_NAMESPACE: "default",
            L.POD_NAME: pod,
            L.CONTAINER_NAME: container,
            L.KIND: kind,
            L.ATTEMPT: str(attempt),
        },
        state="running",
    )


RECORDS = [
    record("app", 0),
    record("app", 1),
    record("init", 0, kind="init"),
    record("only", 0, pod="single"),
    ContainerRecord(id="sandbox", labels={L.POD_NAME: "web", L.KIND: "sandbox"}, state="running"),
]


def test_pick_container_newest_previous_and_the_only_one() -> None:
    query = {"namespace": "default", "pod": "web"}
    assert pick_container(RECORDS, container="app", **query).id == "web-app-1"
    assert pick_container(RECORDS, container="app", previous=True, **query).id == "web-app-0"
    assert pick_container(RECORDS, container="init", **query).id == "web-init-0"
    assert (
        pick_container(RECORDS, namespace="default", pod="single", container="").id
        == "single-only-0"
    )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"pod": "absent", "container": ""}, grpc.StatusCode.NOT_FOUND),
        ({"pod": "web", "container": "nope"}, grpc.StatusCode.NOT_FOUND),
        ({"pod": "single", "container": "only", "previous": True}, grpc.StatusCode.NOT_FOUND),
    ],
)
def test_pick_container_errors(query: dict[str, object], code: grpc.StatusCode) -> None:
    with pytest.raises(LookupError_) as error:
        pick_container(RECORDS, namespace="default", **query)  # type: ignore[arg-type]
    assert error.value.code == code


def test_a_pod_with_several_containers_needs_a_name() -> None:
    records = [*RECORDS, record("side", 0)]
    with pytest.raises(LookupError_, match=r"choose one of: \['app', 'side'\]"):
        pick_container(records, namespace="default", pod="web", container="")


def test_cpu_rate_and_working_set_from_docker_samples() -> None:
    sample = {
        "cpu_stats": {
            "cpu_usage": {"total_usage": 3_000_000_000},
            "system_cpu_usage": 20_000_000_000,
            "online_cpus": 2,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": 2_000_000_000},
            "system_cpu_usage": 10_000_000_000,
        },
        "memory_stats": {"usage": 50_000_000, "stats": {"inactive_file": 10_000_000}},
    }
    assert cpu_nano_cores(sample) == 200_000_000  # 0.1 of the host's 2 CPUs busy: 0.2 cores
    assert memory_working_set(sample) == (40_000_000, 50_000_000)
    assert cpu_nano_cores({}) == 0
