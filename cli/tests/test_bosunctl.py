"""bosunctl against a real etcd and apiserver: each test one behaviour a user relies on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bosun.api.v1 import core_pb2, meta_pb2
from bosun.cli.applying import LAST_APPLIED
from bosun.common.client import Client
from bosun.common.localetcd import free_port

if TYPE_CHECKING:
    from conftest import Bosunctl

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
    tier: front
spec:
  containers:
  - name: web
    image: nginx:1.25
"""


SPEC = core_pb2.PodSpec(containers=[core_pb2.Container(name="main", image="busybox")])


def pod(name: str, *, labels: dict[str, str] | None = None, namespace: str = "default") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        }
    )


def event(name: str, *, reason: str, message: str, seconds: int) -> core_pb2.Event:
    result = core_pb2.Event(
        metadata=meta_pb2.ObjectMeta(name=name, namespace="default"),
        involved_object=meta_pb2.ObjectReference(kind="Pod", name="web", namespace="default"),
        reason=reason,
        message=message,
        type="Normal",
        count=1,
        source=core_pb2.EventSource(component="scheduler"),
    )
    result.last_timestamp.FromSeconds(seconds)
    return result


# ----------------------------------------------------------------------------- apply


async def test_apply_creates_then_reports_unchanged_then_configured(
    bosunctl: Bosunctl, client: Client
) -> None:
    path = bosunctl.write("pod.yaml", POD)

    first = await bosunctl("apply", "-f", path)
    second = await bosunctl("apply", "-f", path)
    bosunctl.write("pod.yaml", POD.replace("tier: front", "tier: back"))
    third = await bosunctl("apply", "-f", path)

    assert (first.stdout, second.stdout, third.stdout) == (
        "pod/web created\n",
        "pod/web unchanged\n",
        "pod/web configured\n",
    )
    stored = await client.pods.get("web")
    assert stored.metadata.labels["tier"] == "back"
    assert json.loads(stored.metadata.annotations[LAST_APPLIED])["metadata"]["labels"] == {
        "app": "web",
        "tier": "back",
    }


async def test_apply_removes_a_field_dropped_from_the_manifest_and_keeps_others(
    bosunctl: Bosunctl, client: Client
) -> None:
    path = bosunctl.write("pod.yaml", POD)
    await bosunctl("apply", "-f", path)
    await bosunctl("label", "pod", "web", "owner=ops")  # set by someone else

    bosunctl.write("pod.yaml", POD.replace("    tier: front\n", ""))
    result = await bosunctl("apply", "-f", path)

    assert result.stdout == "pod/web configured\n"
    stored = await client.pods.get("web")
    assert dict(stored.metadata.labels) == {"app": "web", "owner": "ops"}


async def test_apply_reads_every_document_of_a_directory(
    bosunctl: Bosunctl, client: Client
) -> None:
    bosunctl.write("app/a.yaml", pod("a") + "---\n" + pod("b"))
    bosunctl.write("app/c.yml", pod("c"))
    bosunctl.write("app/notes.txt", "not a manifest")

    result = await bosunctl("apply", "-f", str(bosunctl.workdir / "app"))

    assert result.stdout.splitlines() == ["pod/a created", "pod/b created", "pod/c created"]
    assert sorted(p.metadata.name for p in (await client.pods.list()).items) == ["a", "b", "c"]


async def test_create_refuses_an_existing_object(bosunctl: Bosunctl) -> None:
    path = bosunctl.write("pod.yaml", POD)
    await bosunctl("create", "-f", path)

    result = await bosunctl("create", "-f", path)

    assert result.exit_code == 1
    assert result.stderr == (
        f'Error from server (AlreadyExists): error when creating "{path}": '
        'pods "web" already exists\n'
    )


async def test_replace_writes_the_manifest_over_the_object(
    bosunctl: Bosunctl, client: Client
) -> None:
    path = bosunctl.write("pod.yaml", POD)
    await bosunctl("create", "-f", path)
    bosunctl.write("pod.yaml", POD.replace("    tier: front\n", ""))

    result = await bosunctl("replace", "-f", path)

    assert result.stdout == "pod/web replaced\n"
    assert dict((await client.pods.get("web")).metadata.labels) == {"app": "web"}


# ------------------------------------------------------------------------------- get


async def test_get_pods_prints_kubectl_columns(bosunctl: Bosunctl) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    plain = await bosunctl("get", "pods")
    wide = await bosunctl("get", "po", "-o", "wide")

    header, row = plain.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["web", "0/1", "Pending", "0"]
    assert row.split()[4].endswith("s")
    assert header.index("READY") == row.index("0/1")  # columns line up
    assert wide.stdout.splitlines()[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
    ]  # fmt: skip
    assert wide.stdout.splitlines()[1].split()[-2:] == ["<none>", "<none>"]


async def test_get_all_namespaces_adds_a_namespace_column(bosunctl: Bosunctl) -> None:
    await bosunctl(
        "apply",
        "-f",
        bosunctl.write(
            "all.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n---\n"
            + pod("a")
            + "---\n"
            + pod("b", namespace="team"),
        ),
    )

    result = await bosunctl("get", "pods", "-A")

    lines = [line.split()[:2] for line in result.stdout.splitlines()]
    assert lines == [["NAMESPACE", "NAME"], ["default", "a"], ["team", "b"]]


async def test_get_output_yaml_applies_back_unchanged(bosunctl: Bosunctl, client: Client) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    dumped = await bosunctl("get", "pod", "web", "-o", "yaml")
    reapplied = await bosunctl("apply", "-f", "-", stdin=dumped.stdout)

    document = yaml.safe_load(dumped.stdout)
    stored = await client.pods.get("web")
    assert (document["kind"], document["metadata"]["name"]) == ("Pod", "web")
    assert document["metadata"]["resourceVersion"] == stored.metadata.resource_version
    assert reapplied.stdout == "pod/web unchanged\n"


async def test_get_filters_by_label_selector(bosunctl: Bosunctl) -> None:
    manifest = pod("a", labels={"app": "web"}) + "---\n" + pod("b", labels={"app": "db"})
    await bosunctl("apply", "-f", bosunctl.write("pods.yaml", manifest))

    result = await bosunctl("get", "pods", "-l", "app in (web,cache)", "-o", "name")

    assert result.stdout == "pod/a\n"


async def test_get_filters_by_field_selector(bosunctl: Bosunctl, client: Client) -> None:
    manifest = pod("a") + "---\n" + pod("b")
    await bosunctl("apply", "-f", bosunctl.write("pods.yaml", manifest))
    await client.pods.bind("b", "node-1")

    result = await bosunctl("get", "pods", "--field-selector", "spec.nodeName=node-1", "-o", "name")

    assert result.stdout == "pod/b\n"


async def test_get_of_nothing_says_no_resources_found(bosunctl: Bosunctl) -> None:
    result = await bosunctl("get", "pods")

    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "No resources found in default namespace.\n"


async def test_get_watch_prints_changes_as_rows(bosunctl: Bosunctl, client: Client) -> None:
    await bosunctl("apply", "-f", bosunctl.write("a.yaml", pod("a")))
    watching = asyncio.create_task(bosunctl("get", "pods", "-w", "--request-timeout", "2s"))
    await asyncio.sleep(0.7)
    # (not through bosunctl: CliRunner swaps sys.stdout, so two runs at once mix output)
    await client.pods.create(core_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="b"), spec=SPEC))

    result = await watching

    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["NAME", "a", "b"]


# -------------------------------------------------------------------------- describe


async def test_describe_shows_the_objects_events_newest_last(
    bosunctl: Bosunctl, client: Client
) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))
    await client.events.create(event("web.2", reason="Pulled", message="pulled", seconds=2_000))
    await client.events.create(event("web.1", reason="Scheduled", message="placed", seconds=1_000))

    result = await bosunctl("describe", "pod", "web")

    text = result.stdout
    assert text.startswith("Name:")
    assert "Labels:" in text
    events = text[text.index("Events:") :].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert [line.split()[1] for line in events[3:]] == ["Scheduled", "Pulled"]


async def test_describe_without_events_says_none(bosunctl: Bosunctl) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    result = await bosunctl("describe", "pods", "web")

    assert result.stdout.splitlines()[-1].split() == ["Events:", "<none>"]


# ---------------------------------------------------------------------------- delete


async def test_delete_prints_what_it_deleted(bosunctl: Bosunctl, client: Client) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    result = await bosunctl("delete", "pod", "web")

    assert result.stdout == 'pod "web" deleted\n'
    assert (await client.pods.list()).items == []


async def test_delete_wait_returns_once_the_object_is_gone(
    bosunctl: Bosunctl, client: Client
) -> None:
    manifest = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: [example.com/hold]
"""
    await bosunctl("apply", "-f", bosunctl.write("cm.yaml", manifest))

    deleting = asyncio.create_task(bosunctl("delete", "cm", "held", "--wait", "--timeout", "10s"))
    await asyncio.sleep(0.5)
    assert not deleting.done()  # held by its finalizer
    await client.config_maps.patch("held", {"metadata": {"finalizers": None}})
    result = await asyncio.wait_for(deleting, 10)

    assert (result.exit_code, result.stdout) == (0, 'configmap "held" deleted\n')


# ---------------------------------------------------------------------- label/annotate


async def test_label_adds_and_removes_labels(bosunctl: Bosunctl, client: Client) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    result = await bosunctl("label", "pod", "web", "env=prod", "tier-")

    assert result.stdout == "pod/web labeled\n"
    assert dict((await client.pods.get("web")).metadata.labels) == {"app": "web", "env": "prod"}


async def test_label_refuses_to_change_a_value_without_overwrite(
    bosunctl: Bosunctl, client: Client
) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    refused = await bosunctl("label", "pod", "web", "tier=back")
    allowed = await bosunctl("label", "pods/web", "tier=back", "--overwrite")

    assert refused.exit_code == 1
    assert refused.stderr == "error: 'tier' already has a value (front), and --overwrite is false\n"
    assert allowed.stdout == "pod/web labeled\n"
    assert (await client.pods.get("web")).metadata.labels["tier"] == "back"


async def test_annotate_refuses_to_change_a_value_without_overwrite(
    bosunctl: Bosunctl, client: Client
) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))
    added = await bosunctl("annotate", "pod", "web", "note=first")

    refused = await bosunctl("annotate", "pod", "web", "note=second")
    allowed = await bosunctl("annotate", "pod", "web", "note=second", "--overwrite")

    assert added.stdout == "pod/web annotated\n"
    assert refused.exit_code == 1
    assert "--overwrite is false" in refused.stderr
    assert allowed.stdout == "pod/web annotated\n"
    assert (await client.pods.get("web")).metadata.annotations["note"] == "second"


# ------------------------------------------------------------------------------ wait


async def test_wait_returns_when_the_condition_becomes_true(
    bosunctl: Bosunctl, client: Client
) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))
    waiting = asyncio.create_task(bosunctl("wait", "pod/web", "--for=condition=Ready"))
    await asyncio.sleep(0.5)

    stored = await client.pods.get("web")
    stored.status.conditions.add(type="Ready", status="True")
    await client.pods.update_status(stored)
    result = await asyncio.wait_for(waiting, 10)

    assert (result.exit_code, result.stdout) == (0, "pod/web condition met\n")


async def test_wait_times_out_with_an_error(bosunctl: Bosunctl) -> None:
    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", POD))

    result = await bosunctl("wait", "pod", "web", "--for=condition=Ready", "--timeout", "0.3s")

    assert result.exit_code == 1
    assert result.stderr == "error: timed out waiting for the condition on pod/web\n"


# ---------------------------------------------------------------------------- errors


async def test_bad_manifest_error_names_file_document_and_field(
    bosunctl: Bosunctl, client: Client
) -> None:
    bad = pod("fine") + "---\n" + POD.replace("image: nginx", "imag: nginx")
    path = bosunctl.write("bad.yaml", bad)

    result = await bosunctl("apply", "-f", path)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path} (document 2): ")
    assert "spec.containers[0].imag: unknown field" in result.stderr
    assert "Traceback" not in result.stderr
    assert (await client.pods.list()).items == []  # nothing is sent when any document is bad


async def test_server_refusal_prints_the_servers_message(bosunctl: Bosunctl) -> None:
    result = await bosunctl("get", "pod", "missing")

    assert result.exit_code == 1
    assert result.stderr == 'Error from server (NotFound): pods "missing" not found\n'


async def test_unknown_kind_is_an_error(bosunctl: Bosunctl) -> None:
    result = await bosunctl("get", "widgets")

    assert result.exit_code == 1
    assert result.stderr.startswith('error: the server doesn\'t have a resource type "widgets"')


async def test_usage_error_exits_2(bosunctl: Bosunctl) -> None:
    result = await bosunctl("get", "pods", "-o", "xml")

    assert result.exit_code == 2


# --------------------------------------------------------------------- config, misc


async def test_config_use_context_switches_server(
    bosunctl: Bosunctl, config_file: Path, server_address: str
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    await bosunctl("config", "set-context", "dead", "--server", dead)

    switched = await bosunctl("config", "use-context", "dead")
    unreachable = await bosunctl("get", "ns")
    await bosunctl("config", "use-context", "test")
    reachable = await bosunctl("get", "ns", "default", "-o", "name")
    current = await bosunctl("config", "current-context")

    assert switched.stdout == 'Switched to context "dead".\n'
    assert unreachable.exit_code == 1
    assert unreachable.stderr.startswith(f"Unable to connect to the server {dead}")
    assert reachable.stdout == "namespace/default\n"
    assert current.stdout == "test\n"


async def test_config_context_namespace_is_the_default_namespace(bosunctl: Bosunctl) -> None:
    await bosunctl(
        "apply",
        "-f",
        bosunctl.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"),
    )
    await bosunctl("config", "set-context", "--current", "--namespace", "team")

    await bosunctl("apply", "-f", bosunctl.write("pod.yaml", pod("a", namespace="team")))
    result = await bosunctl("get", "pods", "-o", "name")

    assert result.stdout == "pod/a\n"


async def test_api_resources_lists_pod_with_its_short_name(bosunctl: Bosunctl) -> None:
    result = await bosunctl("api-resources")

    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]


async def test_version_reports_a_reachable_server(bosunctl: Bosunctl, server_address: str) -> None:
    result = await bosunctl("version")

    assert result.stdout.startswith("Client Version: v")
    assert f"Server: {server_address} (serving)" in result.stdout


async def test_events_lists_events_oldest_first(bosunctl: Bosunctl, client: Client) -> None:
    await client.events.create(event("web.2", reason="Pulled", message="pulled", seconds=2_000))
    await client.events.create(event("web.1", reason="Scheduled", message="placed", seconds=1_000))

    result = await bosunctl("events")

    lines = result.stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [line.split()[2] for line in lines[1:]] == ["Scheduled", "Pulled"]
    assert lines[1].split()[3] == "pod/web"
