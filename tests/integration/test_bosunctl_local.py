"""bosunctl as a user runs it: a subprocess against a cluster that `bosunctl local up` started.

One cluster (etcd + apiserver as supervised processes, on free ports, state in a temporary
directory) serves the whole module; every test works in a namespace of its own. The config file
(BOSUN_CONFIG) and the span file (BOSUN_TRACE_FILE) are temporary too, so nothing of the user's
is read or written.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

BOSUNCTL = str(Path(sys.executable).with_name("bosunctl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class LocalCluster:
    state_dir: Path
    config_file: Path
    trace_file: Path
    ports: list[str]
    env: dict[str, str]

    def bosunctl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        done = subprocess.run(
            [BOSUNCTL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.bosunctl(*args, stdin=stdin)
        assert result.exit_code == 0, f"bosunctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def local(self, command: str, *args: str) -> Result:
        # etcd and the apiserver only: the other components listen on fixed ports, which
        # would collide with a cluster that `make up` runs on the same machine.
        only = ["--only", "etcd", "--only", "apiserver"]
        return self.bosunctl(
            "local", "--state-dir", str(self.state_dir), *self.ports, *only, command, *args,
            timeout=120,
        )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("local")
    ports = [
        "--etcd-client-port", str(free_port()), "--etcd-peer-port", str(free_port()),
        "--apiserver-port", str(free_port()), "--metrics-port", str(free_port()),
    ]  # fmt: skip
    env = {
        **os.environ,
        "BOSUN_CONFIG": str(root / "config"),
        "BOSUN_TRACE_FILE": str(root / "spans.jsonl"),
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export spans within 0.1 s, not 5 s
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        env.pop(name, None)
    local = LocalCluster(root / "state", root / "config", root / "spans.jsonl", ports, env)
    started = local.local("up")
    try:
        assert started.exit_code == 0, started.stderr
        yield local
    finally:
        local.local("down")


@pytest.fixture
def namespace(cluster: LocalCluster) -> str:
    name = f"test-{uuid.uuid4().hex[:8]}"
    cluster.ok(
        "create", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
    )
    return name


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web, tier: front}
data:
  color: blue
  size: large
"""

DEPLOYMENT = """\
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
        image: busybox
        command: [httpd, -f, -p, "8080"]
"""


# ------------------------------------------------------------------------ the local cluster


def test_up_writes_a_current_context_pointing_at_the_cluster(cluster: LocalCluster) -> None:
    config = yaml.safe_load(cluster.config_file.read_text())
    assert config["current-context"] == "bosun-local"
    (context,) = config["contexts"]
    assert context["server"] == f"127.0.0.1:{cluster.ports[5]}"


def test_up_again_reports_the_running_cluster(cluster: LocalCluster) -> None:
    again = cluster.local("up")
    assert again.exit_code == 0, again.stderr
    assert "etcd: already running" in again.stdout
    assert "apiserver: already running" in again.stdout


def test_status_lists_every_component_up(cluster: LocalCluster) -> None:
    status = cluster.local("status")
    assert status.exit_code == 0
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()[1:]}
    assert states == {"etcd": "up", "apiserver": "up"}


def test_objects_survive_down_and_up(cluster: LocalCluster, namespace: str) -> None:
    cluster.ok("apply", "-n", namespace, "-f", "-", stdin=CONFIG_MAP)
    down = cluster.local("down")
    assert down.exit_code == 0
    assert cluster.local("status").exit_code == 1
    up = cluster.local("up")
    assert up.exit_code == 0, up.stderr
    fetched = yaml.safe_load(cluster.ok("get", "cm", "settings", "-n", namespace, "-o", "yaml"))
    assert fetched["data"] == {"color": "blue", "size": "large"}


# ------------------------------------------------------------------------- round trips


def test_apply_creates_then_is_unchanged_then_configures(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "cm.yaml", CONFIG_MAP)
    assert cluster.ok("apply", "-n", namespace, "-f", path) == "configmap/settings created\n"
    assert cluster.ok("apply", "-n", namespace, "-f", path) == "configmap/settings unchanged\n"
    write(tmp_path, "cm.yaml", CONFIG_MAP.replace("color: blue", "color: green"))
    assert cluster.ok("apply", "-n", namespace, "-f", path) == "configmap/settings configured\n"
    fetched = yaml.safe_load(cluster.ok("get", "cm", "settings", "-n", namespace, "-o", "yaml"))
    assert fetched["data"]["color"] == "green"


def test_apply_prunes_what_the_manifest_no_longer_sets_and_keeps_the_rest(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "cm.yaml", CONFIG_MAP)
    cluster.ok("apply", "-n", namespace, "-f", path)
    cluster.ok("label", "-n", namespace, "cm", "settings", "owner=ops")  # not the manifest's
    write(
        tmp_path, "cm.yaml", CONFIG_MAP.replace("  size: large\n", "").replace(", tier: front", "")
    )
    cluster.ok("apply", "-n", namespace, "-f", path)

    fetched = yaml.safe_load(cluster.ok("get", "cm", "settings", "-n", namespace, "-o", "yaml"))
    assert fetched["data"] == {"color": "blue"}
    assert fetched["metadata"]["labels"] == {"app": "web", "owner": "ops"}


def test_get_yaml_output_applies_back_unchanged(cluster: LocalCluster, namespace: str) -> None:
    cluster.ok("apply", "-n", namespace, "-f", "-", stdin=DEPLOYMENT)
    exported = cluster.ok("get", "deploy", "web", "-n", namespace, "-o", "yaml")

    assert cluster.ok("apply", "-f", "-", stdin=exported) == "deployment.apps/web unchanged\n"
    assert cluster.ok("get", "deploy", "web", "-n", namespace, "-o", "yaml") == exported


def test_delete_removes_the_object(cluster: LocalCluster, namespace: str) -> None:
    cluster.ok("apply", "-n", namespace, "-f", "-", stdin=CONFIG_MAP)
    assert cluster.ok("delete", "-n", namespace, "cm", "settings", "--wait") == (
        'configmap "settings" deleted\n'
    )
    gone = cluster.bosunctl("get", "-n", namespace, "cm", "settings")
    assert gone.exit_code == 1
    assert gone.stderr == 'Error from server (NotFound): configmaps "settings" not found\n'


# ------------------------------------------------------------------------- bad manifests


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        pytest.param(
            CONFIG_MAP.replace("kind: ConfigMap", "kind: Widget"),
            'unknown kind "Widget"',
            id="unknown-kind",
        ),
        pytest.param(CONFIG_MAP.replace("  color: blue", "  color: [blue"), "YAML", id="bad-yaml"),
        pytest.param(
            DEPLOYMENT.replace("replicas: 2", "replicas: two"),
            'Deployment "web": spec.replicas',
            id="wrong-type",
        ),
        pytest.param(
            DEPLOYMENT.replace("image: busybox", "imagee: busybox"),
            "spec.template.spec.containers[0].imagee: unknown field",
            id="unknown-field",
        ),
        pytest.param(
            CONFIG_MAP + "---\n" + DEPLOYMENT.replace("replicas: 2", "replica: 2"),
            '(document 2): Deployment "web": spec.replica: unknown field',
            id="second-document",
        ),
    ],
)
def test_a_bad_manifest_names_the_file_and_field_and_fails(
    cluster: LocalCluster, namespace: str, tmp_path: Path, manifest: str, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", manifest)
    result = cluster.bosunctl("apply", "-n", namespace, "-f", path)

    assert result.exit_code != 0
    assert path in result.stderr
    assert message.lower() in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.ok("get", "cm,deploy", "-n", namespace) == ""


# ------------------------------------------------------------------------------- tracing


def read_spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def test_one_apply_is_one_trace_from_bosunctl_through_the_apiserver_to_etcd(
    cluster: LocalCluster, namespace: str
) -> None:
    cluster.ok("apply", "-n", namespace, "-f", "-", stdin=CONFIG_MAP.replace("settings", "traced"))

    def trace_of_apply() -> list[dict[str, Any]]:
        spans = read_spans(cluster.trace_file)
        roots = [s for s in spans if s["name"] == "bosunctl apply"]
        if not roots:
            return []
        trace_id = roots[-1]["trace_id"]
        return [s for s in spans if s["trace_id"] == trace_id]

    deadline = time.monotonic() + 15
    while not any(s["service"] == "bosun-apiserver" for s in trace_of_apply()):
        assert time.monotonic() < deadline, "the apiserver's spans never reached the file"
        time.sleep(0.1)
    spans = trace_of_apply()
    by_id = {s["span_id"]: s for s in spans}

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        return by_id[span["parent_span_id"]]

    (root,) = [s for s in spans if not s["parent_span_id"]]
    assert (root["name"], root["service"]) == ("bosunctl apply", "bosunctl")
    server_create = next(
        s for s in spans if s["kind"] == "SERVER" and s["name"].endswith("/Create")
    )
    client_create = parent(server_create)
    assert (client_create["kind"], client_create["service"]) == ("CLIENT", "bosunctl")
    assert parent(client_create) == root
    etcd_txn = next(s for s in spans if s["name"] == "etcdserverpb.KV/Txn")
    assert etcd_txn["service"] == "bosun-apiserver"
    assert parent(etcd_txn) == server_create
