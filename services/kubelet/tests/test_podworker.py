from __future__ import annotations

import time
from pathlib import Path

import pytest

from bosun.api.v1 import core_pb2
from bosun.kubelet import labels as L
from bosun.kubelet.backoff import Backoff
from bosun.kubelet.context import KubeletContext, WorkerSettings
from bosun.kubelet.podworker import PodWorker, pull_policy, resource_limits, should_restart
from bosun.kubelet.testing import FakePods, FakeRecorder, FakeRuntime
from bosun.kubelet.volumes import VolumeManager


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.runtime = FakeRuntime()
        self.pods = FakePods()
        self.recorder = FakeRecorder()
        self.clock = Clock()
        self.ctx = KubeletContext(
            node_name="node-a",
            host_ip="192.168.0.2",
            runtime=self.runtime,
            pods=self.pods,
            recorder=self.recorder,
            volumes=VolumeManager(
                tmp_path,
                self.runtime,
                node="node-a",
                config_map=lambda ns, n: None,
                secret=lambda ns, n: None,
            ),
            config_map=lambda ns, n: None,
            secret=lambda ns, n: None,
            services=lambda ns: [],
            settings=WorkerSettings(pod_infra_image="pause:1"),
            crash_backoff=Backoff(initial=10, maximum=40, clock=self.clock),
            pull_backoff=Backoff(initial=10, maximum=40, clock=self.clock),
        )

    def worker(self, pod: core_pb2.Pod | None, uid: str = "uid-1") -> PodWorker:
        return PodWorker(self.ctx, uid, pod)

    @property
    def status(self) -> core_pb2.PodStatus:
        return self.pods.statuses[-1]

    def app(self, name: str = "app") -> core_pb2.ContainerStatus:
        return next(s for s in self.status.container_statuses if s.name == name)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def make_pod(*containers: str, policy: str = "Always", image: str = "app:1") -> core_pb2.Pod:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name, pod.metadata.namespace, pod.metadata.uid = "web", "default", "uid-1"
    pod.spec.node_name = "node-a"
    pod.spec.restart_policy = policy
    for name in containers:
        pod.spec.containers.add(name=name, image=image, command=["run"], args=["--fast"])
    return pod


async def test_first_sync_starts_a_sandbox_and_joins_the_containers_to_it(world: World) -> None:
    await world.worker(make_pod("app", "side")).sync()
    sandbox = [r for r in world.runtime.containers.values() if r.labels[L.KIND] == "sandbox"]
    assert len(sandbox) == 1
    app_spec = next(
        s for s in world.runtime.specs.values() if s.labels.get(L.CONTAINER_NAME) == "app"
    )
    assert app_spec.network_mode == f"container:{sandbox[0].id}"
    assert (app_spec.entrypoint, app_spec.command) == (["run"], ["--fast"])
    assert {k: app_spec.labels[k] for k in (L.NODE, L.POD_UID, L.KIND, L.ATTEMPT)} == {
        L.NODE: "node-a",
        L.POD_UID: "uid-1",
        L.KIND: "app",
        L.ATTEMPT: "0",
    }
    assert world.status.phase == "Running"
    assert (world.status.pod_ip, world.status.host_ip) == ("10.0.0.9", "192.168.0.2")
    assert world.recorder.reasons().count("Started") == 2


async def test_crash_loop_restarts_at_once_then_backs_off(world: World) -> None:
    worker = world.worker(make_pod("app"))
    await worker.sync()
    [first] = world.runtime.by_name("app")
    world.runtime.exit(first.id, 1)
    await worker.sync()
    assert [L.attempt_of(r.labels) for r in world.runtime.by_name("app")] == [0, 1]
    assert world.app().restart_count == 1
    second = world.runtime.by_name("app")[-1]
    world.runtime.exit(second.id, 1)
    await worker.sync()
    assert len(world.runtime.by_name("app")) == 2  # in backoff: nothing started
    status = world.app()
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert "back-off 10s" in status.state.waiting.message
    assert status.last_state.terminated.exit_code == 1
    assert world.status.phase == "Running"
    assert "BackOff" in world.recorder.reasons()
    world.clock.offset = 10.5
    await worker.sync()
    # Restarted; garbage collection keeps only the newest exited instance (lastState, logs).
    assert [L.attempt_of(r.labels) for r in world.runtime.by_name("app")] == [1, 2]
    assert world.app().state.HasField("running")
    assert world.app().restart_count == 2


async def test_restart_policy_decides_what_restarts(world: World) -> None:
    assert should_restart("Always", 0)
    assert should_restart("", 0)
    assert should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0)
    assert not should_restart("Never", 1)
    worker = world.worker(make_pod("app", policy="OnFailure"))
    await worker.sync()
    world.runtime.exit(world.runtime.by_name("app")[0].id, 0)
    await worker.sync()
    assert len(world.runtime.by_name("app")) == 1
    assert world.status.phase == "Succeeded"


async def test_init_containers_run_one_at_a_time_in_order(world: World) -> None:
    pod = make_pod("app")
    pod.spec.init_containers.add(name="one", image="app:1")
    pod.spec.init_containers.add(name="two", image="app:1")
    worker = world.worker(pod)
    await worker.sync()
    assert [
        r.labels[L.CONTAINER_NAME]
        for r in world.runtime.containers.values()
        if r.labels[L.KIND] != "sandbox"
    ] == ["one"]
    assert world.status.phase == "Pending"
    assert world.app().state.waiting.reason == "PodInitializing"
    world.runtime.exit(world.runtime.by_name("one")[0].id, 0)
    await worker.sync()
    assert len(world.runtime.by_name("two")) == 1
    assert not world.runtime.by_name("app")
    world.runtime.exit(world.runtime.by_name("two")[0].id, 0)
    await worker.sync()
    assert len(world.runtime.by_name("app")) == 1
    assert world.status.phase == "Running"


async def test_failed_init_container_with_restart_never_fails_the_pod(world: World) -> None:
    pod = make_pod("app", policy="Never")
    pod.spec.init_containers.add(name="one", image="app:1")
    worker = world.worker(pod)
    await worker.sync()
    world.runtime.exit(world.runtime.by_name("one")[0].id, 1)
    await worker.sync()
    assert world.status.phase == "Failed"
    assert not world.runtime.by_name("app")


async def test_pull_failure_is_err_image_pull_then_image_pull_back_off(world: World) -> None:
    worker = world.worker(make_pod("app", image="missing:1"))
    await worker.sync()
    assert world.app().state.waiting.reason == "ErrImagePull"
    assert world.status.phase == "Pending"
    await worker.sync()
    assert world.app().state.waiting.reason == "ImagePullBackOff"
    assert world.runtime.pulls == ["missing:1"]
    world.runtime.pullable.add("missing:1")
    world.clock.offset = 11
    await worker.sync()
    assert world.app().state.HasField("running")
    assert {"Pulling", "Failed", "BackOff", "Pulled"} <= set(world.recorder.reasons())


async def test_pull_policies(world: World) -> None:
    assert pull_policy(core_pb2.Container(image="busybox")) == "Always"
    assert pull_policy(core_pb2.Container(image="busybox:latest")) == "Always"
    assert pull_policy(core_pb2.Container(image="registry:5000/busybox")) == "Always"
    assert pull_policy(core_pb2.Container(image="busybox:1.36")) == "IfNotPresent"
    pod = make_pod("app", image="absent:1")
    pod.spec.containers[0].image_pull_policy = "Never"
    await world.worker(pod).sync()
    assert world.app().state.waiting.reason == "ErrImageNeverPull"
    assert world.runtime.pulls == []
    pod = make_pod("app")
    pod.metadata.uid = "uid-2"
    pod.spec.containers[0].image_pull_policy = "Always"
    world.runtime.pullable.add("app:1")
    await world.worker(pod, "uid-2").sync()
    assert world.runtime.pulls == ["app:1"]


def test_resources_map_to_docker_limits() -> None:
    container = core_pb2.Container()
    container.resources.limits.update({"cpu": "1500m", "memory": "128Mi"})
    container.resources.requests.update({"cpu": "250m"})
    assert resource_limits(container) == (1_500_000_000, 128 * 1024 * 1024, 256)
    assert resource_limits(core_pb2.Container()) == (0, 0, 0)


async def test_a_new_worker_adopts_running_containers(world: World) -> None:
    pod = make_pod("app")
    await world.worker(pod).sync()
    before = dict(world.runtime.containers)
    pod.status.CopyFrom(world.status)
    writes = len(world.pods.statuses)
    await world.worker(pod).sync()  # as after a kubelet restart: no memory but the labels
    assert world.runtime.containers == before
    assert len(world.pods.statuses) == writes  # the same status: nothing to write


async def test_dead_sandbox_is_replaced_and_takes_its_containers_along(world: World) -> None:
    worker = world.worker(make_pod("app"))
    await worker.sync()
    sandbox = next(r for r in world.runtime.containers.values() if r.labels[L.KIND] == "sandbox")
    world.runtime.exit(sandbox.id, 0)
    await worker.sync()
    sandboxes = [r for r in world.runtime.containers.values() if r.labels[L.KIND] == "sandbox"]
    assert sorted(L.attempt_of(r.labels) for r in sandboxes) == [0, 1]
    current = world.runtime.by_name("app")[-1]
    assert current.state == "running"
    assert L.attempt_of(current.labels) == 1
    new_sandbox = next(r for r in sandboxes if L.attempt_of(r.labels) == 1)
    assert world.runtime.specs[current.id].network_mode == f"container:{new_sandbox.id}"


async def test_deleted_pod_is_stopped_with_its_grace_then_removed(world: World) -> None:
    pod = make_pod("app")
    worker = world.worker(pod)
    await worker.sync()
    app_id = world.runtime.by_name("app")[0].id
    deleted = core_pb2.Pod()
    deleted.CopyFrom(pod)
    deleted.metadata.deletion_timestamp.GetCurrentTime()
    deleted.metadata.deletion_grace_period_seconds = 7
    worker.update(deleted)
    assert await worker.sync() is True
    assert (app_id, 7) in world.runtime.stopped
    assert world.runtime.containers == {}
    assert world.pods.deleted == [("web", 0, "uid-1")]
    assert "Killing" in world.recorder.reasons()


async def test_pod_gone_from_the_api_uses_the_grace_on_the_labels(world: World) -> None:
    pod = make_pod("app")
    pod.spec.termination_grace_period_seconds = 3
    await world.worker(pod).sync()
    assert await world.worker(None).sync() is True
    assert {grace for _, grace in world.runtime.stopped} == {3, 0}  # app: 3 s, sandbox: at once
    assert world.runtime.containers == {}
    assert world.pods.deleted == []


async def test_status_write_is_skipped_when_nothing_changed(world: World) -> None:
    worker = world.worker(make_pod("app"))
    await worker.sync()
    writes = len(world.pods.statuses)
    await worker.sync()
    await worker.sync()
    assert len(world.pods.statuses) == writes


async def test_active_deadline_stops_the_containers_and_fails_the_pod(world: World) -> None:
    pod = make_pod("app")
    pod.spec.active_deadline_seconds = 30
    worker = world.worker(pod)
    await worker.sync()
    assert world.status.phase == "Running"
    app_id = world.runtime.by_name("app")[0].id
    started = core_pb2.Pod()
    started.CopyFrom(pod)
    started.status.CopyFrom(world.status)
    started.status.start_time.FromSeconds(int(time.time()) - 31)
    worker.update(started)
    await worker.sync()
    assert world.runtime.containers[app_id].state == "exited"
    assert (world.status.phase, world.status.reason) == ("Failed", "DeadlineExceeded")
    assert "DeadlineExceeded" in world.recorder.reasons()
    writes = len(world.pods.statuses)
    await worker.sync()  # nothing restarts and nothing more is written
    assert len(world.pods.statuses) == writes
    assert len(world.runtime.by_name("app")) == 1


async def test_a_volume_that_cannot_be_set_up_keeps_the_pod_creating(world: World) -> None:
    pod = make_pod("app")
    pod.spec.volumes.add(name="cfg", config_map=core_pb2.ConfigMapVolumeSource(name="absent"))
    worker = world.worker(pod)
    await worker.sync()
    await worker.sync()
    status = world.app()
    assert status.state.waiting.reason == "ContainerCreating"
    assert 'configmap "absent" not found' in status.state.waiting.message
    assert world.status.phase == "Pending"
    assert world.recorder.reasons().count("FailedMount") == 1  # not once per sync
    assert not world.runtime.by_name("app")
