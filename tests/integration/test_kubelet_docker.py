"""The kubelet against a real Docker engine and a real apiserver + etcd.

Each test runs an in-process kubelet (the same `DockerKubelet` the `bosun-kubelet` command
assembles) for a node of its own name, with short periods and backoffs so that behaviour
measured in minutes in production takes seconds here. Images are built locally from Debian's
busybox-static (services/kubelet/images/build.sh): nothing is pulled.

Every container and volume a test creates carries the label io.bosun.node=<the test's node>,
and a finalizer removes them all, also when the test fails. Without a Docker engine these tests
skip, except in CI (CI=true), where they fail: CI must run them.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from bosun.api.kubelet.v1 import kubelet_pb2, kubelet_pb2_grpc
from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.localetcd import free_port
from bosun.kubelet import labels as L
from bosun.kubelet.context import WorkerSettings
from bosun.kubelet.server import DockerKubelet, KubeletConfig
from tests.integration.environment import unavailable

ROOT = Path(__file__).resolve().parents[2]
BUILD_IMAGES = ROOT / "services" / "kubelet" / "images" / "build.sh"
TAG = "kubelet-test"
BUSYBOX = f"bosun/busybox:{TAG}"
PAUSE = f"bosun/pause:{TAG}"

pytestmark = pytest.mark.timeout(120)

KubeletFactory = Callable[..., Awaitable[DockerKubelet]]


@pytest.fixture(scope="module")
def images() -> Iterator[None]:
    try:
        import docker

        docker.from_env(timeout=10).ping()
    except Exception as error:
        unavailable(f"no Docker engine answers ({error})")
    result = subprocess.run(
        [str(BUILD_IMAGES), TAG], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"building the test images failed:\n{result.stderr[-3000:]}")
    return


def _remove_node_leftovers(node: str) -> None:
    import docker

    engine = docker.from_env(timeout=60)
    try:
        for container in engine.api.containers(all=True, filters={"label": f"{L.NODE}={node}"}):
            engine.api.remove_container(container["Id"], force=True, v=True)
        for volume in (
            engine.api.volumes(filters={"label": f"{L.NODE}={node}"}).get("Volumes") or ()
        ):
            engine.api.remove_volume(volume["Name"], force=True)
    finally:
        engine.close()


@pytest.fixture
async def start_kubelet(
    images: None, client: Client, tmp_path: Path
) -> AsyncIterator[KubeletFactory]:
    node = f"kt-{uuid.uuid4().hex[:8]}"
    running: list[DockerKubelet] = []

    async def start(**overrides: Any) -> DockerKubelet:
        config = KubeletConfig(
            apiserver="unused",
            listen="",
            node_name=node,
            node_ip="127.0.0.1",
            root_dir=tmp_path / "kubelet",
            settings=WorkerSettings(pod_infra_image=PAUSE, resync_period=1.0),
            lease_interval=1.0,
            status_interval=1.0,
            housekeeping_interval=1.0,
            crashloop_initial=1.0,
            crashloop_max=8.0,
            pull_backoff_initial=1.0,
            pull_backoff_max=4.0,
        )
        for name, value in overrides.items():
            setattr(config, name, value)
        kubelet = DockerKubelet(config, client=client)
        await kubelet.start()
        running.append(kubelet)
        return kubelet

    try:
        yield start
    finally:
        for kubelet in running:
            await kubelet.stop()
        await asyncio.to_thread(_remove_node_leftovers, node)


# ------------------------------------------------------------------------------------ helpers


def make_pod(name: str, node: str, *containers: core_pb2.Container, **spec: Any) -> core_pb2.Pod:
    pod = core_pb2.Pod(api_version="v1", kind="Pod")
    pod.metadata.name = name
    pod.metadata.namespace = "default"
    pod.spec.node_name = node
    pod.spec.containers.extend(containers)
    for key, value in spec.items():
        setattr(pod.spec, key, value)
    return pod


def sh(name: str, script: str, **fields: Any) -> core_pb2.Container:
    return core_pb2.Container(
        name=name,
        image=BUSYBOX,
        image_pull_policy="IfNotPresent",
        command=["sh", "-c", script],
        **fields,
    )


async def wait_for(
    client: Client,
    name: str,
    condition: Callable[[core_pb2.Pod], bool],
    *,
    timeout: float = 30.0,
    what: str = "",
) -> core_pb2.Pod:
    deadline = time.monotonic() + timeout
    pod = None
    while time.monotonic() < deadline:
        try:
            pod = await client.pods.get(name)
        except NotFoundError:
            pod = None
        if pod is not None and condition(pod):
            return pod
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or 'condition'}; last pod: {pod}")


def status_of(pod: core_pb2.Pod, container: str) -> core_pb2.ContainerStatus:
    for status in [*pod.status.container_statuses, *pod.status.init_container_statuses]:
        if status.name == container:
            return status
    raise AssertionError(f"no status for container {container!r} in {pod.status}")


def condition(pod: core_pb2.Pod, kind: str) -> str:
    return next((c.status for c in pod.status.conditions if c.type == kind), "")


def running(pod: core_pb2.Pod) -> bool:
    return pod.status.phase == "Running"


def logs_of(kubelet: DockerKubelet, container_id: str) -> str:
    return kubelet.runtime.api.logs(container_id.removeprefix("docker://")).decode()


# ------------------------------------------------------------------------------------ tests


async def test_node_registers_with_labels_and_heartbeats_its_lease(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet(taints=["dedicated=test:NoSchedule"])
    name = kubelet.config.node_name
    node = await client.nodes.get(name)
    assert node.metadata.labels["kubernetes.io/hostname"] == name
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        ("dedicated", "test", "NoSchedule")
    ]
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"
    assert int(node.status.capacity["pods"]) == 110
    assert {c.type: c.status for c in node.status.conditions} == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    assert any(BUSYBOX in image.names for image in node.status.images)
    first = (await client.leases.get(name, namespace="kube-node-lease")).spec.renew_time
    await asyncio.sleep(2.5)
    lease = await client.leases.get(name, namespace="kube-node-lease")
    assert lease.spec.holder_identity == name
    assert lease.spec.renew_time.ToNanoseconds() > first.ToNanoseconds()


async def test_two_containers_share_localhost_and_one_pod_ip(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    starts_before = (
        REGISTRY.get_sample_value("bosun_kubelet_container_starts_total", {"kind": "app"}) or 0.0
    )
    server = sh(
        "web",
        "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www",
    )
    fetcher = sh(
        "fetch",
        "until wget -q -O - http://localhost:8080/ ; do sleep 0.2; done; exec sleep 3600",
    )
    await client.pods.create(make_pod("duo", kubelet.config.node_name, server, fetcher))
    pod = await wait_for(
        client,
        "duo",
        lambda p: (
            running(p) and all(s.state.HasField("running") for s in p.status.container_statuses)
        ),
        what="both containers running",
    )
    assert pod.status.pod_ip
    assert pod.status.pod_ip != "127.0.0.1"
    assert pod.status.host_ip == "127.0.0.1"
    assert condition(pod, "Ready") == "True"
    starts = REGISTRY.get_sample_value("bosun_kubelet_container_starts_total", {"kind": "app"})
    assert starts == starts_before + 2
    assert (REGISTRY.get_sample_value("bosun_kubelet_pod_start_duration_seconds_count") or 0) >= 1

    async def fetched() -> bool:
        return "hello-from-web" in logs_of(kubelet, status_of(pod, "fetch").container_id)

    deadline = time.monotonic() + 15
    while not await fetched():
        assert time.monotonic() < deadline, "fetch container never got the page over localhost"
        await asyncio.sleep(0.2)


async def test_init_container_output_in_empty_dir_is_read_by_the_app(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    mount = [core_pb2.VolumeMount(name="work", mount_path="/work")]
    pod = make_pod(
        "init",
        kubelet.config.node_name,
        sh("app", "cat /work/msg; exec sleep 3600", volume_mounts=mount),
    )
    pod.spec.init_containers.extend(
        [
            sh("first", "echo one > /work/msg", volume_mounts=mount),
            sh("second", "echo two >> /work/msg", volume_mounts=mount),
        ]
    )
    pod.spec.volumes.add(name="work", empty_dir=core_pb2.EmptyDirVolumeSource())
    await client.pods.create(pod)
    pod = await wait_for(client, "init", running, what="Running after init containers")
    for name in ("first", "second"):
        terminated = status_of(pod, name).state.terminated
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert condition(pod, "Initialized") == "True"
    await asyncio.sleep(0.5)
    assert logs_of(kubelet, status_of(pod, "app").container_id).split() == ["one", "two"]


async def test_env_from_fields_config_maps_secrets_and_services(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    config = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    config.metadata.name, config.metadata.namespace = "settings", "default"
    config.data["color"] = "blue"
    await client.config_maps.create(config)
    secret = core_pb2.Secret(api_version="v1", kind="Secret")
    secret.metadata.name, secret.metadata.namespace = "creds", "default"
    secret.data["password"] = b"s3cret"
    await client.secrets.create(secret)
    service = core_pb2.Service(api_version="v1", kind="Service")
    service.metadata.name, service.metadata.namespace = "my-db", "default"
    service.spec.cluster_ip = "10.96.0.42"
    service.spec.ports.add(name="sql", port=5432, target_port="5432", protocol="TCP")
    await client.services.create(service)
    await asyncio.sleep(0.5)  # the kubelet's informers see them

    env = [
        core_pb2.EnvVar(name="PLAIN", value="x"),
        core_pb2.EnvVar(name="EXPANDED", value="$(PLAIN)-y"),
        core_pb2.EnvVar(
            name="POD_NAME",
            value_from=core_pb2.EnvVarSource(
                field_ref=core_pb2.ObjectFieldSelector(field_path="metadata.name")
            ),
        ),
        core_pb2.EnvVar(
            name="POD_IP",
            value_from=core_pb2.EnvVarSource(
                field_ref=core_pb2.ObjectFieldSelector(field_path="status.podIP")
            ),
        ),
        core_pb2.EnvVar(
            name="COLOR",
            value_from=core_pb2.EnvVarSource(
                config_map_key_ref=core_pb2.ConfigMapKeySelector(name="settings", key="color")
            ),
        ),
        core_pb2.EnvVar(
            name="PASSWORD",
            value_from=core_pb2.EnvVarSource(
                secret_key_ref=core_pb2.SecretKeySelector(name="creds", key="password")
            ),
        ),
    ]
    container = sh("app", "env | sort; exec sleep 3600", env=env, working_dir="/tmp")
    await client.pods.create(make_pod("envy", kubelet.config.node_name, container))
    pod = await wait_for(client, "envy", running, what="Running")
    await asyncio.sleep(0.5)
    lines = set(logs_of(kubelet, status_of(pod, "app").container_id).split())
    expected = {
        "PLAIN=x",
        "EXPANDED=x-y",
        "POD_NAME=envy",
        f"POD_IP={pod.status.pod_ip}",
        "COLOR=blue",
        "PASSWORD=s3cret",
        "MY_DB_SERVICE_HOST=10.96.0.42",
        "MY_DB_SERVICE_PORT=5432",
        "MY_DB_SERVICE_PORT_SQL=5432",
        "PWD=/tmp",
    }
    assert expected <= lines, expected - lines


async def test_missing_config_map_key_waits_with_create_container_config_error(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    env = [
        core_pb2.EnvVar(
            name="X",
            value_from=core_pb2.EnvVarSource(
                config_map_key_ref=core_pb2.ConfigMapKeySelector(name="absent", key="k")
            ),
        )
    ]
    await client.pods.create(
        make_pod("cfgerr", kubelet.config.node_name, sh("app", "sleep 1", env=env))
    )
    pod = await wait_for(
        client,
        "cfgerr",
        lambda p: (
            bool(p.status.container_statuses)
            and status_of(p, "app").state.waiting.reason == "CreateContainerConfigError"
        ),
        what="CreateContainerConfigError",
    )
    assert pod.status.phase == "Pending"
    assert "absent" in status_of(pod, "app").state.waiting.message


async def test_crashing_container_backs_off_with_growing_delays(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    await client.pods.create(make_pod("crash", kubelet.config.node_name, sh("app", "exit 3")))
    restarts: dict[int, float] = {}
    saw_backoff = False
    deadline = time.monotonic() + 40
    while len(restarts) < 5 and time.monotonic() < deadline:
        pod = await client.pods.get("crash")
        if pod.status.container_statuses:
            status = status_of(pod, "app")
            restarts.setdefault(status.restart_count, time.monotonic())
            if status.state.waiting.reason == "CrashLoopBackOff":
                saw_backoff = True
                assert status.last_state.terminated.exit_code == 3
                assert pod.status.phase == "Running"  # restartPolicy Always: it restarts
        await asyncio.sleep(0.1)
    assert saw_backoff
    assert sorted(restarts) == [0, 1, 2, 3, 4], restarts
    gaps = [restarts[n + 1] - restarts[n] for n in range(4)]
    # Windows (initial 1 s, doubling): restart 1 at once, then 1 s, 2 s, 4 s after each exit.
    assert gaps[0] < 1.0, gaps
    assert 0.7 < gaps[1] < 2.0, gaps
    assert 1.7 < gaps[2] < 3.2, gaps
    assert 3.6 < gaps[3] < 5.5, gaps


async def test_restart_policy_never_ends_in_succeeded_or_failed(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    node = kubelet.config.node_name
    await client.pods.create(make_pod("ok", node, sh("app", "exit 0"), restart_policy="Never"))
    await client.pods.create(make_pod("bad", node, sh("app", "exit 2"), restart_policy="Never"))
    ok = await wait_for(client, "ok", lambda p: p.status.phase == "Succeeded", what="Succeeded")
    bad = await wait_for(client, "bad", lambda p: p.status.phase == "Failed", what="Failed")
    assert status_of(ok, "app").state.terminated.reason == "Completed"
    assert status_of(bad, "app").state.terminated.exit_code == 2
    assert status_of(bad, "app").restart_count == 0
    assert condition(bad, "Ready") == "False"


async def test_failing_liveness_probe_restarts_the_container(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    probe = core_pb2.Probe(
        exec=core_pb2.ExecAction(command=["cat", "/tmp/healthy"]),
        period_seconds=1,
        failure_threshold=2,
    )
    container = sh(
        "app",
        "touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600",
        liveness_probe=probe,
    )
    pod = make_pod("live", kubelet.config.node_name, container)
    pod.spec.termination_grace_period_seconds = 1
    await client.pods.create(pod)
    pod = await wait_for(
        client,
        "live",
        lambda p: bool(p.status.container_statuses) and status_of(p, "app").restart_count >= 1,
        timeout=30,
        what="a liveness restart",
    )
    assert status_of(pod, "app").last_state.HasField("terminated")
    events = await client.events.list(namespace="default")
    reasons = {e.reason for e in events.items if e.involved_object.name == "live"}
    assert {"Unhealthy", "Killing", "Started"} <= reasons


async def test_readiness_http_probe_drives_the_ready_condition(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    probe = core_pb2.Probe(
        http_get=core_pb2.HTTPGetAction(path="/ready.html", port="http"),
        period_seconds=1,
        failure_threshold=1,
    )
    container = sh(
        "web",
        "mkdir -p /www && exec httpd -f -p 8080 -h /www",
        readiness_probe=probe,
        ports=[core_pb2.ContainerPort(name="http", container_port=8080)],
    )
    await client.pods.create(make_pod("ready", kubelet.config.node_name, container))
    pod = await wait_for(client, "ready", running, what="Running")
    await asyncio.sleep(1.5)
    pod = await client.pods.get("ready")
    assert condition(pod, "Ready") == "False"
    assert not status_of(pod, "web").ready
    container_id = status_of(pod, "web").container_id.removeprefix("docker://")
    api = kubelet.runtime.api

    def run(*command: str) -> None:
        api.exec_start(api.exec_create(container_id, list(command)))

    await asyncio.to_thread(run, "touch", "/www/ready.html")
    await wait_for(client, "ready", lambda p: condition(p, "Ready") == "True", what="Ready")
    await asyncio.to_thread(run, "rm", "/www/ready.html")
    pod = await wait_for(
        client, "ready", lambda p: condition(p, "Ready") == "False", what="unready"
    )
    assert status_of(pod, "web").restart_count == 0  # readiness never restarts


async def test_missing_image_reports_image_pull_backoff(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    container = core_pb2.Container(name="app", image="bosun/no-such-image:1")
    created = await client.pods.create(make_pod("noimage", kubelet.config.node_name, container))
    # A watch sees every status the kubelet writes (ErrImagePull may last only milliseconds
    # before the next sync, inside the backoff window, reports ImagePullBackOff).
    reasons: list[str] = []
    pod = created
    async with asyncio.timeout(20):
        async for event in client.pods.watch(
            field_selector="metadata.name=noimage",
            resource_version=created.metadata.resource_version,
        ):
            pod = event.object
            if pod.status.container_statuses:
                reasons.append(status_of(pod, "app").state.waiting.reason)
            if "ImagePullBackOff" in reasons and "ErrImagePull" in reasons:
                break
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    assert pod.status.phase == "Pending"
    assert "no-such-image" in status_of(pod, "app").state.waiting.message
    node = await client.nodes.get(kubelet.config.node_name)
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"


async def test_graceful_delete_sends_sigterm_then_removes_the_pod(
    start_kubelet: KubeletFactory, client: Client, tmp_path: Path
) -> None:
    kubelet = await start_kubelet()
    marker = tmp_path / "marker"
    marker.mkdir()
    container = sh(
        "app",
        "trap 'echo got-term > /marker/term; exit 0' TERM; while :; do sleep 0.1; done",
        volume_mounts=[core_pb2.VolumeMount(name="marker", mount_path="/marker")],
    )
    pod = make_pod("graceful", kubelet.config.node_name, container)
    pod.spec.volumes.add(name="marker", host_path=core_pb2.HostPathVolumeSource(path=str(marker)))
    pod.spec.termination_grace_period_seconds = 10
    await client.pods.create(pod)
    await wait_for(client, "graceful", running, what="Running")
    started = time.monotonic()
    await client.pods.delete("graceful")
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.pods.get("graceful")
        except NotFoundError:
            break
        assert time.monotonic() < deadline, "the kubelet never removed the pod object"
        await asyncio.sleep(0.1)
    assert (marker / "term").read_text().strip() == "got-term"
    assert time.monotonic() - started < 8, "SIGTERM was honoured; no need to wait for SIGKILL"
    remaining = await kubelet.runtime.list_containers()
    assert remaining == []


async def test_container_ignoring_sigterm_is_killed_after_the_grace_period(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    container = sh("app", "trap '' TERM; while :; do sleep 0.1; done")
    pod = make_pod("stubborn", kubelet.config.node_name, container)
    pod.spec.termination_grace_period_seconds = 2
    await client.pods.create(pod)
    await wait_for(client, "stubborn", running, what="Running")
    started = time.monotonic()
    await client.pods.delete("stubborn")
    while True:
        try:
            await client.pods.get("stubborn")
        except NotFoundError:
            break
        assert time.monotonic() - started < 20
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - started
    assert 1.8 < elapsed < 8, elapsed


async def test_kubelet_restart_adopts_running_containers_without_restarts(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    first = await start_kubelet()
    probe = core_pb2.Probe(exec=core_pb2.ExecAction(command=["true"]), period_seconds=1)
    await client.pods.create(
        make_pod(
            "keep", first.config.node_name, sh("app", "exec sleep 3600", readiness_probe=probe)
        )
    )
    pod = await wait_for(client, "keep", lambda p: condition(p, "Ready") == "True", what="Ready")
    before = status_of(pod, "app").container_id
    ids_before = {r.id for r in await first.runtime.list_containers()}
    await first.stop()
    second = await start_kubelet()
    await asyncio.sleep(3)  # several syncs and housekeeping rounds
    pod = await client.pods.get("keep")
    status = status_of(pod, "app")
    assert (status.container_id, status.restart_count) == (before, 0)
    assert condition(pod, "Ready") == "True"
    assert {r.id for r in await second.runtime.list_containers()} == ids_before


async def test_kubelet_removes_containers_of_pods_deleted_while_it_was_down(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    first = await start_kubelet()
    pod = make_pod("orphan", first.config.node_name, sh("app", "exec sleep 3600"))
    # `sleep` as PID 1 ignores SIGTERM: the grace (kept on the container's labels) is all it gets.
    pod.spec.termination_grace_period_seconds = 1
    await client.pods.create(pod)
    await wait_for(client, "orphan", running, what="Running")
    await first.stop()
    await client.pods.delete("orphan", grace_period_seconds=0)
    second = await start_kubelet()
    deadline = time.monotonic() + 15
    while await second.runtime.list_containers():
        assert time.monotonic() < deadline, "orphaned containers were not removed"
        await asyncio.sleep(0.2)


async def test_config_map_change_reaches_the_mounted_file(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    config = core_pb2.ConfigMap(api_version="v1", kind="ConfigMap")
    config.metadata.name, config.metadata.namespace = "app-config", "default"
    config.data["greeting"] = "hello"
    await client.config_maps.create(config)
    container = sh(
        "app",
        "exec sleep 3600",
        volume_mounts=[core_pb2.VolumeMount(name="cfg", mount_path="/config")],
    )
    pod = make_pod("cfg", kubelet.config.node_name, container)
    pod.spec.volumes.add(name="cfg", config_map=core_pb2.ConfigMapVolumeSource(name="app-config"))
    await client.pods.create(pod)
    pod = await wait_for(client, "cfg", running, what="Running")
    container_id = status_of(pod, "app").container_id.removeprefix("docker://")

    async def read() -> str:
        result = await kubelet.runtime.exec(container_id, ["cat", "/config/greeting"], timeout=5)
        return result.output.decode()

    assert await read() == "hello"
    config = await client.config_maps.get("app-config")
    config.data["greeting"] = "bonjour"
    await client.config_maps.update(config)
    deadline = time.monotonic() + 10
    while await read() != "bonjour":
        assert time.monotonic() < deadline, "the new value never reached the file"
        await asyncio.sleep(0.2)


async def test_memory_empty_dir_is_tmpfs_shared_by_the_pods_containers(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    mount = [core_pb2.VolumeMount(name="mem", mount_path="/mem")]
    writer = sh("writer", "echo shared > /mem/file; exec sleep 3600", volume_mounts=mount)
    reader = sh(
        "reader",
        "until [ -f /mem/file ]; do sleep 0.1; done; cat /mem/file; grep ' /mem ' /proc/mounts;"
        " exec sleep 3600",
        volume_mounts=mount,
    )
    pod = make_pod("mem", kubelet.config.node_name, writer, reader)
    pod.spec.volumes.add(name="mem", empty_dir=core_pb2.EmptyDirVolumeSource(medium="Memory"))
    await client.pods.create(pod)
    pod = await wait_for(client, "mem", running, what="Running")
    await asyncio.sleep(1)
    output = logs_of(kubelet, status_of(pod, "reader").container_id)
    assert "shared" in output
    assert "tmpfs" in output


async def test_resources_become_docker_cpu_and_memory_limits(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    container = sh("app", "exec sleep 3600")
    container.resources.limits.update({"cpu": "500m", "memory": "64Mi"})
    await client.pods.create(make_pod("limited", kubelet.config.node_name, container))
    pod = await wait_for(client, "limited", running, what="Running")
    container_id = status_of(pod, "app").container_id.removeprefix("docker://")
    host_config = (await asyncio.to_thread(kubelet.runtime.api.inspect_container, container_id))[
        "HostConfig"
    ]
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["Memory"] == 64 * 1024 * 1024


async def test_host_port_publishes_the_container_port_on_the_node(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    host_port = free_port()
    container = sh(
        "web",
        "mkdir -p /www && echo via-host-port > /www/index.html && exec httpd -f -p 8080 -h /www",
        ports=[core_pb2.ContainerPort(container_port=8080, host_port=host_port)],
    )
    await client.pods.create(make_pod("hostport", kubelet.config.node_name, container))
    await wait_for(client, "hostport", running, what="Running")

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=2) as response:
            return str(response.read().decode())

    deadline = time.monotonic() + 10
    while True:
        try:
            assert (await asyncio.to_thread(fetch)).strip() == "via-host-port"
            break
        except OSError:
            assert time.monotonic() < deadline, "nothing answered on the hostPort"
            await asyncio.sleep(0.2)


async def test_host_network_pod_gets_the_node_ip(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    pod = make_pod("hostnet", kubelet.config.node_name, sh("app", "exec sleep 3600"))
    pod.spec.host_network = True
    await client.pods.create(pod)
    pod = await wait_for(client, "hostnet", running, what="Running")
    assert pod.status.pod_ip == pod.status.host_ip == "127.0.0.1"


async def test_a_dead_sandbox_is_recreated_with_the_pods_containers(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    pod = make_pod("phoenix", kubelet.config.node_name, sh("app", "exec sleep 3600"))
    pod.spec.termination_grace_period_seconds = 1
    await client.pods.create(pod)
    pod = await wait_for(client, "phoenix", running, what="Running")
    before = status_of(pod, "app").container_id
    [sandbox] = [
        r for r in await kubelet.runtime.list_containers() if r.labels[L.KIND] == "sandbox"
    ]
    await asyncio.to_thread(kubelet.runtime.api.kill, sandbox.id)
    pod = await wait_for(
        client,
        "phoenix",
        lambda p: (
            running(p)
            and status_of(p, "app").container_id != before
            and status_of(p, "app").state.HasField("running")
        ),
        what="a new sandbox and container",
    )
    assert status_of(pod, "app").restart_count == 1
    sandboxes = [
        r for r in await kubelet.runtime.list_containers() if r.labels[L.KIND] == "sandbox"
    ]
    assert sorted(r.state for r in sandboxes) == ["exited", "running"]


async def test_active_deadline_fails_the_pod_and_stops_its_containers(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet()
    pod = make_pod("deadline", kubelet.config.node_name, sh("app", "exec sleep 3600"))
    pod.spec.active_deadline_seconds = 2
    pod.spec.termination_grace_period_seconds = 0
    await client.pods.create(pod)
    pod = await wait_for(
        client, "deadline", lambda p: p.status.phase == "Failed", what="Failed", timeout=15
    )
    assert pod.status.reason == "DeadlineExceeded"
    assert not [r for r in await kubelet.runtime.list_containers() if r.state == "running"]


# ------------------------------------------------------------------ the kubelet's gRPC service


async def test_kubelet_service_streams_logs_runs_exec_and_reports_stats(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet(listen=":0")  # the node IP (127.0.0.1 here), any port
    node = await client.nodes.get(kubelet.config.node_name)
    assert node.status.daemon_endpoints.kubelet_endpoint.port == kubelet.port
    container = sh("app", "i=0; while :; do i=$((i+1)); echo line-$i; sleep 0.2; done")
    await client.pods.create(make_pod("talk", kubelet.config.node_name, container))
    await wait_for(client, "talk", running, what="Running")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{kubelet.port}") as channel:
        stub = kubelet_pb2_grpc.KubeletStub(channel)

        # Logs, followed: new lines keep arriving on the open stream.
        call = stub.ContainerLogs(
            kubelet_pb2.LogsRequest(namespace="default", pod="talk", follow=True)
        )
        received = b""
        async for chunk in call:
            received += chunk.data
            if b"line-8" in received:
                break
        call.cancel()
        assert b"line-1\n" in received

        tail = stub.ContainerLogs(
            kubelet_pb2.LogsRequest(namespace="default", pod="talk", tail_lines=1)
        )
        assert len(b"".join([c.data async for c in tail]).splitlines()) == 1

        # Exec with stdin: the command reads it to the end and exits with its own code.
        async def requests() -> AsyncIterator[kubelet_pb2.ExecRequest]:
            yield kubelet_pb2.ExecRequest(
                start=kubelet_pb2.ExecStart(
                    namespace="default",
                    pod="talk",
                    command=["sh", "-c", "tr a-z A-Z; echo err >&2; exit 3"],
                    stdin=True,
                )
            )
            yield kubelet_pb2.ExecRequest(stdin=b"hello ")
            yield kubelet_pb2.ExecRequest(stdin=b"exec\n", stdin_eof=True)

        stdout, stderr, codes = b"", b"", []
        async for response in stub.Exec(requests()):
            stdout += response.stdout
            stderr += response.stderr
            if response.HasField("exit_code"):
                codes.append(response.exit_code)
        assert (stdout, stderr, codes) == (b"HELLO EXEC\n", b"err\n", [3])

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.ContainerLogs(
                kubelet_pb2.LogsRequest(namespace="default", pod="nope")
            ).read()
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        stats = await stub.Stats(kubelet_pb2.StatsRequest(namespace="default"))
        [pod_stats] = stats.pods
        assert (pod_stats.name, pod_stats.containers[0].name) == ("talk", "app")
        assert pod_stats.memory_working_set_bytes > 0
        assert stats.node.memory_capacity_bytes > 0


async def test_apiserver_proxies_logs_exec_and_stats_to_the_pods_kubelet(
    start_kubelet: KubeletFactory, client: Client
) -> None:
    kubelet = await start_kubelet(listen="127.0.0.1:0")
    container = sh("app", "echo started; exec sleep 3600")
    await client.pods.create(make_pod("proxied", kubelet.config.node_name, container))
    await wait_for(client, "proxied", running, what="Running")
    stub = kubelet_pb2_grpc.KubeletStub(client.channel)  # the apiserver's own address

    logs = stub.ContainerLogs(kubelet_pb2.LogsRequest(namespace="default", pod="proxied"))
    deadline = time.monotonic() + 10
    while b"started" not in b"".join([c.data async for c in logs]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
        logs = stub.ContainerLogs(kubelet_pb2.LogsRequest(namespace="default", pod="proxied"))

    async def hostname() -> AsyncIterator[kubelet_pb2.ExecRequest]:
        start = kubelet_pb2.ExecStart(namespace="default", pod="proxied", command=["hostname"])
        yield kubelet_pb2.ExecRequest(start=start)

    output = [r async for r in stub.Exec(hostname())]
    assert b"".join(r.stdout for r in output).strip() == b"proxied"
    assert output[-1].exit_code == 0

    stats = await stub.Stats(kubelet_pb2.StatsRequest(node=kubelet.config.node_name))
    assert [p.name for p in stats.pods] == ["proxied"]

    unscheduled = make_pod("floating", "", sh("app", "sleep 1"))
    await client.pods.create(unscheduled)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ContainerLogs(
            kubelet_pb2.LogsRequest(namespace="default", pod="floating")
        ).read()
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Stats(kubelet_pb2.StatsRequest(node="no-such-node"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def bosunctl(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """bosunctl in-process (call it in a thread: it runs its own event loop)."""
    from click.testing import CliRunner

    from bosun.cli.main import cli

    result = CliRunner().invoke(cli, list(args), input=stdin, prog_name="bosunctl")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_bosunctl_logs_follow_exec_and_top(
    start_kubelet: KubeletFactory, client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOSUN_CONFIG", str(tmp_path / "no-config"))
    kubelet = await start_kubelet(listen="127.0.0.1:0")
    server = ["--server", client.target]
    container = sh("app", "i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.2; done")
    await client.pods.create(make_pod("ticker", kubelet.config.node_name, container))
    await wait_for(client, "ticker", running, what="Running")
    await asyncio.sleep(0.5)

    code, out, _ = await asyncio.to_thread(bosunctl, "logs", "ticker", "--tail", "2", *server)
    assert code == 0
    assert len(out.splitlines()) == 2

    # -f keeps the stream open: over 3 s it prints lines written after it started.
    code, out, _ = await asyncio.to_thread(
        bosunctl, "logs", "-f", "ticker", "--tail", "1", "--request-timeout", "3s", *server
    )
    assert len(out.splitlines()) >= 10, out

    code, out, err = await asyncio.to_thread(
        bosunctl, "exec", "ticker", *server, "--", "sh", "-c", "echo out; echo err >&2; exit 4"
    )
    assert (code, out, err) == (4, "out\n", "err\n")
    code, out, _ = await asyncio.to_thread(
        bosunctl, "exec", "-i", "ticker", *server, "--", "wc", "-c", stdin="12345"
    )
    assert (code, out.strip()) == (0, "5")

    code, out, _ = await asyncio.to_thread(bosunctl, "top", "pods", *server)
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert out.splitlines()[1].split()[0] == "ticker"
    code, out, _ = await asyncio.to_thread(bosunctl, "top", "nodes", *server)
    assert code == 0
    assert kubelet.config.node_name in out

    code, _, err = await asyncio.to_thread(bosunctl, "logs", "absent", *server)
    assert code == 1
    assert "Error from server (NotFound)" in err


async def test_kubelet_rides_out_an_apiserver_restart(
    start_kubelet: KubeletFactory, client: Client, apiserver: Any, start_apiserver: Any
) -> None:
    kubelet = await start_kubelet()
    pod = make_pod("steady", kubelet.config.node_name, sh("app", "exec sleep 3600"))
    # Not 0: with a grace period the apiserver only marks the pod, and the kubelet removes it.
    pod.spec.termination_grace_period_seconds = 1
    await client.pods.create(pod)
    pod = await wait_for(client, "steady", running, what="Running")
    container_id = status_of(pod, "app").container_id
    port = apiserver.port
    await apiserver.stop(0)
    await asyncio.sleep(2)  # heartbeats and watches fail meanwhile; containers keep running
    await start_apiserver(listen=f"127.0.0.1:{port}")
    lease = await client.leases.get(kubelet.config.node_name, namespace="kube-node-lease")
    renewed = lease.spec.renew_time.ToNanoseconds()
    await client.pods.delete("steady")  # the kubelet must see this through its resumed watch
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.pods.get("steady")
        except NotFoundError:
            break
        assert time.monotonic() < deadline, "the kubelet never finished the deletion"
        await asyncio.sleep(0.2)
    lease = await client.leases.get(kubelet.config.node_name, namespace="kube-node-lease")
    assert lease.spec.renew_time.ToNanoseconds() > renewed  # heartbeats resumed
    remaining = {r.id for r in await kubelet.runtime.list_containers()}
    assert container_id.removeprefix("docker://") not in remaining


async def test_claim_bound_to_a_host_path_volume_is_mounted(
    start_kubelet: KubeletFactory, client: Client, tmp_path: Path
) -> None:
    kubelet = await start_kubelet()
    disk = tmp_path / "disk"
    pvc = core_pb2.PersistentVolumeClaim(api_version="v1", kind="PersistentVolumeClaim")
    pvc.metadata.name, pvc.metadata.namespace = "data", "default"
    pvc.spec.access_modes.append("ReadWriteOnce")
    pvc.spec.resources.requests["storage"] = "1Gi"
    pvc = await client.resource("PersistentVolumeClaim").create(pvc)
    container = sh(
        "app",
        "echo persisted > /data/file; exec sleep 3600",
        volume_mounts=[core_pb2.VolumeMount(name="vol", mount_path="/data")],
    )
    pod = make_pod("claimant", kubelet.config.node_name, container)
    pod.spec.volumes.add(
        name="vol",
        persistent_volume_claim=core_pb2.PersistentVolumeClaimVolumeSource(claim_name="data"),
    )
    await client.pods.create(pod)
    # Unbound: the pod waits, saying why.
    await wait_for(
        client,
        "claimant",
        lambda p: (
            bool(p.status.container_statuses)
            and "is not bound" in status_of(p, "app").state.waiting.message
        ),
        what="waiting for the claim",
    )
    # Bind it (what the PV binder does): the volume names the claim, the claim the volume.
    pv = core_pb2.PersistentVolume(api_version="v1", kind="PersistentVolume")
    pv.metadata.name = f"pv-{kubelet.config.node_name}"
    pv.spec.capacity["storage"] = "1Gi"
    pv.spec.access_modes.append("ReadWriteOnce")
    pv.spec.host_path.path = str(disk)
    pv.spec.host_path.type = "DirectoryOrCreate"
    pv.spec.claim_ref.namespace, pv.spec.claim_ref.name = "default", "data"
    pv.spec.claim_ref.uid = pvc.metadata.uid
    await client.resource("PersistentVolume").create(pv)
    pvc.spec.volume_name = pv.metadata.name
    await client.resource("PersistentVolumeClaim").update(pvc)
    await wait_for(client, "claimant", running, what="Running once bound")
    deadline = time.monotonic() + 10
    while not (disk / "file").exists():
        assert time.monotonic() < deadline, "the container's write never reached the volume"
        await asyncio.sleep(0.1)
    assert (disk / "file").read_text() == "persisted\n"
