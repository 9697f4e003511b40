"""Bosun's container images and deployment manifests.

Containers (a Docker engine is needed): scripts/build_images.sh builds every image (bosun/etcd,
apiserver, scheduler, controller-manager, kubelet, proxy, dns, pause, busybox; cached: a few
seconds; cold, with the debootstrap base image: a few minutes), then

* etcd and the apiserver run as containers on a user-defined network of their own, the
  apiserver's ports published on 127.0.0.1 (ports Docker picks), and this process talks to it
  with bosun.common.client: a ConfigMap round trip, the gRPC health check, the image's own health
  probe, a non-root user, /metrics, a clean stop on SIGTERM;
* deploy/compose/docker-compose.yaml comes up as a compose project of its own (docker-compose 1.29
  or the compose v2 plugin) and every container turns healthy; `bosunctl apply` sends it a
  ConfigMap, a Deployment and a Service: the controller-manager makes a ReplicaSet and pods, the
  scheduler binds them to the (simulated) kubelet's node, which runs them; the DNS server answers
  the Service's name on the published port; the kube-proxy image, in a network namespace of its
  own (not the host's, unlike the compose service), writes the Service's iptables chains.
* the same compose file with docker-compose.kubelet-docker.yaml: the kubelet runs a Deployment's
  pod as real containers on this host's Docker engine (removed afterwards).

Everything a test starts carries a unique name and is removed by a finalizer, also when the test
fails. Without a Docker engine (or a compose command) these tests skip, except in CI (CI=true),
where they fail: CI must run them.

Manifests (no Docker): the compose file's shape, and the Helm chart, which cannot be rendered here
(no helm binary): values.yaml against values.schema.json, every `.Values` path that a template
uses exists in values.yaml, and the template actions nest.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from tests.integration.environment import unavailable

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_images.sh"
COMPOSE_FILE = ROOT / "deploy" / "compose" / "docker-compose.yaml"
CHART = ROOT / "deploy" / "helm" / "bosun"
TAG = "dev"
ETCD_IMAGE = f"bosun/etcd:{TAG}"
APISERVER_IMAGE = f"bosun/apiserver:{TAG}"
PROXY_IMAGE = f"bosun/proxy:{TAG}"
# What a plain `compose up` starts (kube-proxy is behind the "proxy" profile).
COMPOSE_SERVICES = ("etcd", "apiserver", "scheduler", "controller-manager", "kubelet", "dns")
COMPONENTS = ("scheduler", "controller-manager", "kubelet", "proxy", "dns")
LABEL = "org.bosun.test=test_containers"

# The first run builds the base image (debootstrap, ~1 min) and downloads the wheelhouse.
container_test = pytest.mark.timeout(900)


# ------------------------------------------------------------------------------------ helpers


def _run(*argv: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result.stdout.strip()


def docker(*args: str, timeout: float = 120) -> str:
    return _run("docker", *args, timeout=timeout)


def _quiet(*argv: str, env: dict[str, str] | None = None) -> None:
    """Run a cleanup command, ignoring failures (the thing may never have been created)."""
    subprocess.run(argv, capture_output=True, timeout=120, env=env, check=False)


def _logs(*containers: str) -> str:
    parts = []
    for name in containers:
        result = subprocess.run(
            ["docker", "logs", "--tail", "40", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        parts.append(f"--- docker logs {name}\n{result.stdout}{result.stderr}")
    return "\n".join(parts)


def _published(port_output: str) -> str:
    """'127.0.0.1:49153' from `docker port` / `compose port` output."""
    for line in port_output.splitlines():
        if line.startswith("127.0.0.1:"):
            return line.strip()
    raise AssertionError(f"no 127.0.0.1 address in {port_output!r}")


def grpc_health(target: str, timeout: float = 2.0) -> str:
    with grpc.insecure_channel(target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def wait_serving(target: str, describe: Callable[[], str], timeout: float = 60.0) -> None:
    """Wait for the gRPC health check on `target` to say SERVING; fail with `describe()`."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if grpc_health(target, timeout=1.0) == "SERVING":
                return
        except grpc.RpcError as error:
            last = f"{error.code().name}: {error.details()}"
        time.sleep(0.25)
    raise AssertionError(f"{target} not SERVING after {timeout}s ({last})\n{describe()}")


async def configmap_round_trip(target: str, name: str) -> None:
    async with Client(target, timeout=15) as client:
        configmap = core_pb2.ConfigMap()
        configmap.metadata.name = name
        configmap.metadata.namespace = "default"
        configmap.data["where"] = "in a container"
        created = await client.config_maps.create(configmap)
        fetched = await client.config_maps.get(name, namespace="default")
    assert created.metadata.uid
    assert fetched.metadata.uid == created.metadata.uid
    assert dict(fetched.data) == {"where": "in a container"}


@pytest.fixture(scope="module")
def images() -> None:
    """Build (or find cached) the images with scripts/build_images.sh."""
    if shutil.which("docker") is None:
        unavailable("no docker command (apt-get install docker.io)")
    info = subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False)
    if info.returncode != 0:
        unavailable("no Docker engine answers `docker info` (start dockerd)")
    _run("bash", str(BUILD_SCRIPT), timeout=840, env={**os.environ, "TAG": TAG})


# ---------------------------------------------------------------------------- docker run


@dataclass
class ContainerCluster:
    network: str
    etcd: str
    apiserver: str
    apiserver_address: str
    metrics_address: str


@pytest.fixture
def container_cluster(images: None) -> Iterator[ContainerCluster]:
    name = f"bosun-test-{uuid.uuid4().hex[:10]}"
    etcd, apiserver = f"{name}-etcd", f"{name}-apiserver"
    try:  # the `finally` removes whatever was made, also when starting fails half-way
        docker("network", "create", "--label", LABEL, name)
        docker(
            "run", "--detach", "--pull", "never", "--name", etcd, "--label", LABEL,
            "--network", name, "--network-alias", "etcd",
            "--env", "ETCD_ADVERTISE_CLIENT_URLS=http://etcd:2379",
            ETCD_IMAGE,
        )  # fmt: skip
        docker(
            "run", "--detach", "--pull", "never", "--name", apiserver, "--label", LABEL,
            "--network", name,
            "--publish", "127.0.0.1::6443", "--publish", "127.0.0.1::9090",
            APISERVER_IMAGE, "--listen", "0.0.0.0:6443", "--etcd-servers", "etcd:2379",
        )  # fmt: skip
        address = _published(docker("port", apiserver, "6443/tcp"))
        metrics = _published(docker("port", apiserver, "9090/tcp"))
        wait_serving(address, lambda: _logs(etcd, apiserver))
        yield ContainerCluster(name, etcd, apiserver, address, metrics)
    finally:
        _quiet("docker", "rm", "--force", "--volumes", apiserver, etcd)
        _quiet("docker", "network", "rm", name)


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as page:
        return str(page.read().decode())


@container_test
async def test_apiserver_container_serves_clients_on_the_host(
    container_cluster: ContainerCluster,
) -> None:
    cluster = container_cluster
    await configmap_round_trip(cluster.apiserver_address, "from-the-host")
    assert grpc_health(cluster.apiserver_address) == "SERVING"

    # The probe behind the image's HEALTHCHECK works inside the container.
    assert docker("exec", cluster.apiserver, "grpc-health-probe").endswith("SERVING")
    assert docker("exec", cluster.etcd, "/usr/local/bin/etcdctl", "endpoint", "health")

    # Unprivileged users, as the images (and the Helm chart's securityContext) promise.
    assert docker("exec", cluster.apiserver, "id", "-u") == "10001"
    assert docker("inspect", "--format", "{{.Config.User}}", cluster.etcd) == "65532:65532"

    metrics = await asyncio.to_thread(_get, f"http://{cluster.metrics_address}/metrics")
    assert "bosun_grpc_server_handled_total" in metrics

    # SIGTERM: the apiserver drains and exits 0 (PID 1 is bosun-apiserver itself).
    docker("stop", "--time", "20", cluster.apiserver, timeout=60)
    state = json.loads(docker("inspect", "--format", "{{json .State}}", cluster.apiserver))
    assert state["ExitCode"] == 0, _logs(cluster.apiserver)
    assert "shutting down" in _logs(cluster.apiserver)


# ------------------------------------------------------------------------------- compose


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works, else Debian's `docker-compose` (1.29)."""
    if shutil.which("docker"):
        plugin = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@dataclass
class ComposeProject:
    name: str
    containers: dict[str, str]
    apiserver_address: str
    dns_port: int


def wait_healthy(containers: dict[str, str], timeout: float = 90.0) -> None:
    """Wait until Docker reports every container's HEALTHCHECK as healthy."""
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        status = {
            service: docker("inspect", "--format", "{{.State.Health.Status}}", container)
            for service, container in containers.items()
        }
        if set(status.values()) == {"healthy"}:
            return
        time.sleep(1)
    raise AssertionError(f"not healthy after {timeout}s: {status}\n{_logs(*containers.values())}")


@pytest.fixture(scope="module")
def compose_project(images: None) -> Iterator[ComposeProject]:
    """One compose project for the module's compose tests (bringing it up is ~30 s)."""
    command = compose_command()
    if command is None:
        unavailable("no `docker compose` nor `docker-compose` (apt-get install docker-compose)")
    # Port 0: Docker picks free ports on 127.0.0.1.
    project = f"bosuntest{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "BOSUN_TAG": TAG,
        "BOSUN_APISERVER_PORT": "0",
        "BOSUN_METRICS_PORT": "0",
        "BOSUN_DNS_PORT": "0",
        "BOSUN_NODE_NAME": project,
    }
    compose = [*command, "--file", str(COMPOSE_FILE), "--project-name", project]
    try:  # the `finally` removes the project (and its volume), also when `up` fails
        _run(*compose, "up", "--detach", timeout=180, env=env)
        containers = {
            service: _run(*compose, "ps", "--quiet", service, env=env)
            for service in COMPOSE_SERVICES
        }
        address = _published(_run(*compose, "port", "apiserver", "6443", env=env))
        dns = _published(_run(*compose, "port", "--protocol", "udp", "dns", "5353", env=env))
        wait_serving(address, lambda: _logs(*containers.values()))
        wait_healthy(containers)
        yield ComposeProject(project, containers, address, int(dns.rpartition(":")[2]))
    finally:
        _quiet(*compose, "down", "--volumes", "--remove-orphans", "--timeout", "20", env=env)


MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: from-compose
  labels: {app: web}
data:
  where: in a compose stack
"""

WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: bosun/busybox:dev
          command: ["httpd", "-f", "-p", "8080"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
      targetPort: 8080
"""


def bosunctl(address: str, *args: str, stdin: str | None = None) -> str:
    """Run the bosunctl of this venv against `address`, with no config file of the user's."""
    command = [str(Path(sys.executable).with_name("bosunctl")), "--server", address, *args]
    env = {**os.environ, "BOSUN_CONFIG": os.devnull}
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, f"{command} exited {result.returncode}: {result.stderr}"
    return result.stdout


def wait_for(
    what: str, check: Callable[[], Any], describe: Callable[[], str], timeout: float
) -> Any:
    """Poll `check` until it returns something truthy; fail with `describe()` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout}s\n{describe()}")


def dns_query(port: int, name: str) -> list[str]:
    """The A records the server on 127.0.0.1:port (UDP) gives for `name`."""
    from dnslib import QTYPE, DNSRecord

    reply = DNSRecord.parse(DNSRecord.question(name).send("127.0.0.1", port, timeout=3))
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]


@container_test
async def test_compose_stack_serves_bosunctl(compose_project: ComposeProject) -> None:
    project, containers = compose_project, compose_project.containers
    address = project.apiserver_address
    applied = await asyncio.to_thread(bosunctl, address, "apply", "-f", "-", stdin=MANIFEST)
    assert "configmap/from-compose created" in applied
    fetched = yaml.safe_load(
        await asyncio.to_thread(bosunctl, address, "get", "cm", "from-compose", "-o", "yaml")
    )
    assert fetched["data"] == {"where": "in a compose stack"}
    assert fetched["metadata"]["labels"] == {"app": "web"}
    assert fetched["metadata"]["uid"]

    # The healthcheck commands the compose file declares work inside their containers.
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    for service, container in containers.items():
        test = spec["services"][service]["healthcheck"]["test"]
        assert test[0] == "CMD"
        docker("exec", container, *test[1:])
    # etcd's data is in the project's named volume.
    mounts = json.loads(docker("inspect", "--format", "{{json .Mounts}}", containers["etcd"]))
    assert [m["Name"] for m in mounts if m["Destination"] == "/var/lib/etcd"] == [
        f"{project.name}_etcd-data"
    ]
    # The components run as the users the compose file and images promise.
    for service in ("scheduler", "controller-manager", "kubelet", "dns"):
        assert docker("exec", containers[service], "id", "-u") == "10001", service


@container_test
async def test_compose_stack_runs_a_deployment(compose_project: ComposeProject) -> None:
    project, containers = compose_project, compose_project.containers
    address = project.apiserver_address

    def get(*args: str) -> Any:
        return yaml.safe_load(bosunctl(address, "get", *args, "-o", "yaml"))

    def describe() -> str:
        return bosunctl(address, "get", "deploy,rs,pods,nodes", "-o", "wide") + _logs(
            containers["controller-manager"], containers["scheduler"], containers["kubelet"]
        )

    applied = await asyncio.to_thread(bosunctl, address, "apply", "-f", "-", stdin=WORKLOAD)
    assert "deployment.apps/web created" in applied
    assert "service/web created" in applied

    # The kubelet's hollow node registers as Ready under the name the compose file gives it.
    node = f"{project.name}-0"

    def node_ready() -> bool:
        nodes = {n["metadata"]["name"]: n for n in get("nodes")["items"]}
        conditions = nodes[node]["status"]["conditions"] if node in nodes else []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # The controller-manager: Deployment -> ReplicaSet -> 2 pods; the scheduler binds them to the
    # kubelet's node; the kubelet reports them Running.
    def running_pods() -> list[Any] | None:
        pods = get("pods", "-l", "app=web")["items"]
        bound = [p for p in pods if p["spec"].get("nodeName") == node]
        if len(bound) == 2 and all(p["status"].get("phase") == "Running" for p in bound):
            return bound
        return None

    pods = await asyncio.to_thread(
        wait_for, "2 pods Running on " + node, running_pods, describe, 60
    )
    replicasets = await asyncio.to_thread(get, "rs", "-l", "app=web")
    assert [rs["status"]["readyReplicas"] for rs in replicasets["items"]] == [2]
    assert {ref["kind"] for p in pods for ref in p["metadata"]["ownerReferences"]} == {"ReplicaSet"}
    assert await asyncio.to_thread(node_ready)

    # The cluster DNS answers the Service's name with its ClusterIP, on the published port.
    service = await asyncio.to_thread(get, "svc", "web")
    cluster_ip = service["spec"]["clusterIP"]
    assert cluster_ip
    answer = await asyncio.to_thread(
        wait_for,
        "DNS answer for web.default.svc.cluster.local",
        lambda: dns_query(project.dns_port, "web.default.svc.cluster.local"),
        lambda: _logs(containers["dns"]),
        20,
    )
    assert answer == [cluster_ip]


@container_test
async def test_proxy_image_programs_iptables(compose_project: ComposeProject) -> None:
    """The kube-proxy image against the compose stack, in a network namespace of its own.

    The compose service runs in the host's network namespace (its purpose: the host's rules), so
    the test runs the same image on the project's network instead, with the same capabilities,
    and reads the rules it wrote inside that namespace: nothing on the host changes.
    """
    project = compose_project
    address = project.apiserver_address
    workload = WORKLOAD.replace("web", "proxied").replace("replicas: 2", "replicas: 1")
    await asyncio.to_thread(bosunctl, address, "apply", "-f", "-", stdin=workload)

    def endpoint() -> tuple[str, str] | None:
        pods = yaml.safe_load(bosunctl(address, "get", "pods", "-l", "app=proxied", "-o", "yaml"))
        ips = [p["status"].get("podIP") for p in pods["items"]]
        service = yaml.safe_load(bosunctl(address, "get", "svc", "proxied", "-o", "yaml"))
        return (service["spec"]["clusterIP"], ips[0]) if ips and ips[0] else None

    cluster_ip, pod_ip = await asyncio.to_thread(
        wait_for, "a Running pod behind service/proxied", endpoint, lambda: "", 60
    )
    name = f"{project.name}-proxy"
    try:
        docker(
            "run", "--detach", "--pull", "never", "--name", name, "--label", LABEL,
            "--network", f"{project.name}_default",
            "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW",
            "--read-only", "--tmpfs", "/run", "--tmpfs", "/tmp",
            PROXY_IMAGE, "--apiserver", "apiserver:6443", "--healthz-address", "127.0.0.1:10256",
        )  # fmt: skip
        await asyncio.to_thread(wait_healthy, {"proxy": name}, 60)
        assert docker("exec", name, "id", "-u") == "0"  # root, deliberately (see its Dockerfile)

        # The Service's ClusterIP leads, through the proxy's chains, to a DNAT to the pod.
        def rules() -> str | None:
            saved = docker("exec", name, "iptables-legacy-save", "-t", "nat")
            return saved if f"{cluster_ip}/32" in saved and f"{pod_ip}:8080" in saved else None

        saved = await asyncio.to_thread(
            wait_for, f"nat rules {cluster_ip} -> {pod_ip}:8080", rules, lambda: _logs(name), 30
        )
        assert ":BOSUN-SERVICES" in saved, saved
        # SIGTERM: it stops cleanly and leaves the rules for the next proxy (or --cleanup).
        docker("stop", "--time", "20", name, timeout=60)
        state = json.loads(docker("inspect", "--format", "{{json .State}}", name))
        assert state["ExitCode"] == 0, _logs(name)
    finally:
        _quiet("docker", "rm", "--force", name)


@container_test
def test_compose_kubelet_docker_override_runs_real_containers(images: None) -> None:
    """docker-compose.kubelet-docker.yaml: the kubelet runs a pod as real containers on the host.

    A project of its own (the kubelet's flags differ). The pods' containers are siblings on the
    host that `down` does not know, so the test deletes the Deployment first and then removes
    whatever still carries its node's label.
    """
    command = compose_command()
    if command is None:
        unavailable("no `docker compose` nor `docker-compose` (apt-get install docker-compose)")
    project = f"bosuntest{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "BOSUN_TAG": TAG,
        "BOSUN_APISERVER_PORT": "0",
        "BOSUN_METRICS_PORT": "0",
        "BOSUN_DNS_PORT": "0",
        "BOSUN_NODE_NAME": project,
    }
    override = COMPOSE_FILE.with_name("docker-compose.kubelet-docker.yaml")
    compose = [*command, "--file", str(COMPOSE_FILE), "--file", str(override)]
    compose += ["--project-name", project]
    node_label = f"label=io.bosun.node={project}"
    address = ""
    try:
        _run(*compose, "up", "--detach", "etcd", "apiserver", "scheduler",
             "controller-manager", "kubelet", timeout=180, env=env)  # fmt: skip
        address = _published(_run(*compose, "port", "apiserver", "6443", env=env))
        kubelet = _run(*compose, "ps", "--quiet", "kubelet", env=env)
        workload = WORKLOAD.split("---")[0].replace("replicas: 2", "replicas: 1")
        workload = workload.replace('["httpd", "-f", "-p", "8080"]', '["sleep", "3600"]')
        bosunctl(address, "apply", "-f", "-", stdin=workload)

        def running() -> Any:
            pods = yaml.safe_load(bosunctl(address, "get", "pods", "-l", "app=web", "-o", "yaml"))
            return [
                p
                for p in pods["items"]
                if p["spec"].get("nodeName") == project and p["status"].get("phase") == "Running"
            ]

        def describe() -> str:
            return bosunctl(address, "get", "pods,nodes", "-o", "wide") + _logs(kubelet)

        (pod,) = wait_for("a Running pod", running, describe, 90)
        # Real containers, labelled with the node: the sandbox (bosun/pause) and the container.
        images = docker("ps", "--filter", node_label, "--format", "{{.Image}}").split()
        assert sorted(images) == [f"bosun/busybox:{TAG}", f"bosun/pause:{TAG}"], images
        assert pod["status"]["podIP"]
        bosunctl(address, "delete", "deployment", "web", "--wait")
    finally:
        _quiet(*compose, "down", "--volumes", "--remove-orphans", "--timeout", "20", env=env)
        leftovers = subprocess.run(
            ["docker", "ps", "--all", "--quiet", "--filter", node_label],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()  # fmt: skip
        if leftovers:
            _quiet("docker", "rm", "--force", "--volumes", *leftovers)


# ------------------------------------------------------------------------------ manifests


def test_compose_file_declares_the_stack() -> None:
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    # docker-compose 1.29 rejects a top-level `name`; `version` is obsolete in compose v2.
    assert set(spec) == {"services", "volumes"}
    assert set(spec["services"]) == {*COMPOSE_SERVICES, "proxy"}
    assert "etcd-data" in spec["volumes"]
    for name, service in spec["services"].items():
        assert service["image"].startswith(f"bosun/{name}:"), name
        assert service["pull_policy"] == "never", name
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name
    apiserver = spec["services"]["apiserver"]
    assert apiserver["depends_on"]["etcd"]["condition"] == "service_healthy"
    assert "--etcd-servers=etcd:2379" in apiserver["command"]
    assert all(port.startswith("${BOSUN_BIND_ADDRESS:-127.0.0.1}:") for port in apiserver["ports"])
    for name in COMPONENTS:
        service = spec["services"][name]
        assert service["depends_on"] == {"apiserver": {"condition": "service_healthy"}}, name
        apiserver_flag = (
            "--apiserver=127.0.0.1:" if name == "proxy" else "--apiserver=apiserver:6443"
        )
        assert any(arg.startswith(apiserver_flag) for arg in service["command"]), name
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
    # kube-proxy: the host's network and NET_ADMIN, opt-in; nothing else is privileged.
    proxy = spec["services"]["proxy"]
    assert proxy["network_mode"] == "host"
    assert proxy["profiles"] == ["proxy"]
    assert set(proxy["cap_add"]) == {"NET_ADMIN", "NET_RAW"}
    assert proxy["cap_drop"] == ["ALL"]
    assert all("cap_add" not in s for n, s in spec["services"].items() if n != "proxy")
    assert all(not s.get("privileged") for s in spec["services"].values())
    # The simulated kubelet runs unprivileged, with no Docker socket.
    kubelet = spec["services"]["kubelet"]
    assert "--runtime=simulated" in kubelet["command"]
    assert kubelet["user"] == "10001:10001"
    assert "volumes" not in kubelet
    assert all(
        port.startswith("${BOSUN_BIND_ADDRESS:-127.0.0.1}:")
        for port in spec["services"]["dns"]["ports"]
    )


def test_compose_config_is_accepted() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no compose command to validate with")
    _run(*command, "--file", str(COMPOSE_FILE), "config", "--quiet", timeout=60)
    # With the override that gives the kubelet the Docker runtime.
    override = COMPOSE_FILE.with_name("docker-compose.kubelet-docker.yaml")
    merged = yaml.safe_load(
        _run(*command, "--file", str(COMPOSE_FILE), "--file", str(override), "config", timeout=60)
    )
    kubelet = merged["services"]["kubelet"]
    assert "--runtime=docker" in kubelet["command"]
    assert any(
        str(v).startswith("/var/run/docker.sock:")
        or (isinstance(v, dict) and v.get("source") == "/var/run/docker.sock")
        for v in kubelet["volumes"]
    )


def _values() -> dict[str, Any]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


def _schema() -> dict[str, Any]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert isinstance(schema, dict)
    return schema


# The JSON Schema keywords values.schema.json may use: the ones `_validate` implements (so that a
# keyword it would silently ignore cannot creep in), plus annotations.
_KEYWORDS = {
    "type", "properties", "additionalProperties", "required", "items", "enum",
    "minimum", "maximum", "minLength", "minItems", "pattern",
    "$schema", "title", "description",
}  # fmt: skip
_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """A JSON Schema (draft-07) validator for the keywords in _KEYWORDS."""
    where = path or "(root)"
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(value, name) for name in names):
            return [f"{where}: {value!r} is not of type {types}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: {value!r} is too short")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            errors += _validate(item, schema.get("items", {}), f"{path}[{index}]")
    if isinstance(value, dict):
        errors += [
            f"{where}: {key!r} is required"
            for key in schema.get("required", ())
            if key not in value
        ]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key in properties:
                errors += _validate(item, properties[key], child)
            elif extra is False:
                errors.append(f"{where}: unknown key {key!r}")
            elif isinstance(extra, dict):
                errors += _validate(item, extra, child)
    return errors


def _schema_keywords(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        found |= set(schema)
        for key, sub in schema.items():
            if key == "properties":
                for prop in sub.values():
                    found |= _schema_keywords(prop)
            elif key in ("items", "additionalProperties"):
                found |= _schema_keywords(sub)
    return found


def _check_values(values: dict[str, Any]) -> list[str]:
    schema = _schema()
    errors = _validate(values, schema)
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        return errors
    validator = jsonschema.Draft7Validator(schema)
    return errors + [f"jsonschema: {e.message}" for e in validator.iter_errors(values)]


def test_helm_values_match_the_schema() -> None:
    assert _schema_keywords(_schema()) <= _KEYWORDS
    assert _check_values(_values()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v["etcd"].update(replicaCount=2), "replicaCount: 2 is not one of"),
        (lambda v: v["apiserver"].update(replicas=3), "unknown key 'replicas'"),
        (lambda v: v["apiserver"]["image"].update(pullPolicy="Sometimes"), "pullPolicy"),
        (lambda v: v["etcd"]["persistence"].update(size="lots"), "does not match"),
        (lambda v: v["externalEtcd"].update(endpoints=["etcd"]), "does not match"),
        (lambda v: v.update(kubeProxy={}), "unknown key 'kubeProxy'"),
        (lambda v: v["scheduler"].update(leaderElect=True), "unknown key 'leaderElect'"),
        (
            lambda v: v["kubelet"].update(runtime="containerd"),
            "runtime: 'containerd' is not one of",
        ),
        (lambda v: v["dns"]["service"].update(clusterIP="dns"), "does not match"),
        (lambda v: v["proxy"].update(clusterCIDR="10.0.0.0"), "does not match"),
        (lambda v: v["controllerManager"].pop("leaderElection"), "'leaderElection' is required"),
    ],
    ids=[
        "etcd-members",
        "unknown-key",
        "pull-policy",
        "volume-size",
        "endpoint",
        "component",
        "scheduler-key",
        "kubelet-runtime",
        "dns-cluster-ip",
        "proxy-cidr",
        "cm-leader-election",
    ],
)
def test_helm_schema_rejects_bad_values(
    change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    values = _values()
    change(values)
    errors = _check_values(values)
    assert any(expected in error for error in errors), errors


def _templates() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((CHART / "templates").iterdir()) if p.is_file()}


def test_helm_templates_use_only_defined_values() -> None:
    values = _values()
    missing = []
    for name, text in _templates().items():
        for match in re.finditer(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            node: Any = values
            for key in match.group(1).strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    missing.append(f"{name}: .Values{match.group(1)}")
                    break
                node = node[key]
    assert missing == []


def test_helm_template_actions_nest() -> None:
    openers = {"if", "range", "with", "define", "block"}
    for name, text in _templates().items():
        assert text.count("{{") == text.count("}}"), name
        stack: list[str] = []
        for action in re.findall(r"\{\{-?\s*(.*?)\s*-?\}\}", text, flags=re.DOTALL):
            if action.startswith("/*"):
                continue
            word = re.split(r"[\s(]", action, maxsplit=1)[0]
            if word in openers:
                stack.append(word)
            elif word == "else":
                assert stack, f"{name}: `else` outside a block"
                assert stack[-1] in ("if", "with", "range"), f"{name}: `else` in {stack[-1]}"
            elif word == "end":
                assert stack, f"{name}: `end` without an opener"
                stack.pop()
        assert stack == [], f"{name}: unclosed {stack}"


def test_helm_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name == "bosun"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    expected = {
        "_helpers.tpl", "NOTES.txt", "serviceaccount.yaml", "apiserver-deployment.yaml",
        "apiserver-service.yaml", "etcd-statefulset.yaml", "etcd-service.yaml",
        "scheduler-deployment.yaml", "controller-manager-deployment.yaml",
        "kubelet-daemonset.yaml", "proxy-daemonset.yaml", "dns-deployment.yaml", "dns-service.yaml",
        "poddisruptionbudgets.yaml",
    }  # fmt: skip
    assert expected <= set(_templates())


def _helm() -> str | None:
    """A helm 3 binary: $HELM, else `helm` on PATH (none is installed here by default)."""
    return os.environ.get("HELM") or shutil.which("helm")


@pytest.mark.parametrize(
    "settings",
    [
        [],
        ["kubelet.runtime=simulated", "dns.service.clusterIP=10.96.0.53"],
        ["etcd.enabled=false", "externalEtcd.endpoints={10.0.0.5:2379}", "proxy.enabled=false"],
        ["scheduler.replicaCount=1", "scheduler.leaderElection.enabled=false"],
    ],
    ids=["defaults", "simulated-kubelet", "external-etcd", "single-scheduler"],
)
def test_helm_chart_renders(settings: list[str]) -> None:
    """`helm lint` and `helm template` accept the chart; every object parses, with our labels."""
    helm = _helm()
    if helm is None:
        pytest.skip("no helm binary (set HELM=/path/to/helm)")
    flags = [arg for setting in settings for arg in ("--set", setting)]
    _run(helm, "lint", "--strict", str(CHART), *flags, timeout=60)
    rendered = _run(helm, "template", "t", str(CHART), "--namespace", "bosun", *flags, timeout=60)
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Deployment", "t-bosun-apiserver") in kinds
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "t", obj["metadata"]["name"]
        assert obj["metadata"]["namespace"] == "bosun", obj["metadata"]["name"]
    workloads = {
        o["metadata"]["name"]: o for o in objects if o["kind"] in ("Deployment", "DaemonSet")
    }
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "t-bosun", name
        for container in pod["containers"]:
            assert container["resources"]["requests"], name
            if name != "t-bosun-etcd":
                assert any(a.startswith("--") for a in container["args"]), name


def test_helm_chart_refuses_replicas_without_leader_election() -> None:
    helm = _helm()
    if helm is None:
        pytest.skip("no helm binary (set HELM=/path/to/helm)")
    setting = "controllerManager.leaderElection.enabled=false"
    result = subprocess.run(
        [helm, "template", "t", str(CHART), "--set", setting],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "controllerManager.leaderElection.enabled is false" in result.stderr
