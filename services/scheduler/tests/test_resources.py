"""Pod requests as Kubernetes computes them, and node allocatable."""

from __future__ import annotations

import pytest

from bosun.scheduler.resources import (
    CPU,
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    node_allocatable,
    pod_nonzero_requests,
    pod_requests,
)
from bosun.scheduler.testing import make_node, make_pod


def _with_containers(app: list[dict[str, str]], init: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    pod = make_pod("p")
    del pod.spec.containers[:]
    for index, requests in enumerate(app):
        pod.spec.containers.add(name=f"a{index}").resources.requests.update(requests)
    for index, requests in enumerate(init):
        pod.spec.init_containers.add(name=f"i{index}").resources.requests.update(requests)
    return pod


@pytest.mark.parametrize(
    ("app", "init", "cpu", "memory"),
    [
        pytest.param([{"cpu": "500m"}, {"cpu": "250m"}], [], 750, 0, id="app containers add up"),
        pytest.param([{"cpu": "500m"}], [{"cpu": "2"}], 2000, 0, id="a bigger init container wins"),
        pytest.param(
            [{"cpu": "1", "memory": "1Gi"}, {"cpu": "1"}],
            [{"cpu": "1500m", "memory": "2Gi"}, {"cpu": "100m"}],
            2000,
            2 * 1024**3,
            id="max per resource, not per container",
        ),
        pytest.param([{}], [], 0, 0, id="no requests"),
    ],
)
def test_pod_requests_count_init_containers_as_kubernetes(
    app: list[dict[str, str]], init: list[dict[str, str]], cpu: float, memory: float
) -> None:
    requests = pod_requests(_with_containers(app, init))
    assert requests[CPU] == cpu
    assert requests[MEMORY] == memory
    assert requests[PODS] == 1


def test_nonzero_requests_default_missing_cpu_and_memory() -> None:
    requests = pod_nonzero_requests(_with_containers([{}, {"cpu": "1"}], []))
    assert requests[CPU] == DEFAULT_MILLI_CPU_REQUEST + 1000
    assert requests[MEMORY] == 2 * DEFAULT_MEMORY_REQUEST


def test_node_allocatable_parses_quantities() -> None:
    vector = node_allocatable(make_node("n", cpu="3500m", memory="2Gi", ephemeral_storage="10G"))
    assert vector[CPU] == 3500
    assert vector[MEMORY] == 2 * 1024**3
    assert vector[EPHEMERAL_STORAGE] == 10 * 10**9
    assert vector[PODS] == 110
