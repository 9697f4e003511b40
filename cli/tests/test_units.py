"""The CLI's pure parts, without a server: merge patches, formatting, parsing, config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
import pytest

from bosun.api.v1 import core_pb2
from bosun.cli.applying import LAST_APPLIED, applied_configuration, three_way_patch
from bosun.cli.commands.label import Changes, parse_changes, planned_patch
from bosun.cli.commands.wait import parse_for
from bosun.cli.config import Config, ConfigError, Context, load_config, save_config
from bosun.cli.describers import DescribeWriter
from bosun.cli.durations import human_duration, parse_duration
from bosun.cli.errors import CliError
from bosun.cli.printers import render_table
from bosun.cli.resources import kind_label, parse_targets
from bosun.cli.tables import pod_status, table_rows
from bosun.common.kinds import KINDS

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# ------------------------------------------------------------------- three-way merge


def test_three_way_patch_deletes_what_the_last_manifest_set_and_this_one_does_not() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}}
    modified = {"metadata": {"labels": {"a": "1"}}}
    current = {"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}}

    assert three_way_patch(original, modified, current) == {"metadata": {"labels": {"b": None}}}


def test_three_way_patch_keeps_fields_nobody_applied() -> None:
    current = {"spec": {"replicas": 3, "paused": True}}

    assert three_way_patch(None, {"spec": {"replicas": 3}}, current) == {}


def test_three_way_patch_sets_changed_and_new_fields() -> None:
    original = {"spec": {"replicas": 1}}
    modified = {"spec": {"replicas": 2, "minReadySeconds": 5}}
    current = {"spec": {"replicas": 1}}

    assert three_way_patch(original, modified, current) == {
        "spec": {"replicas": 2, "minReadySeconds": 5}
    }


def test_applied_configuration_drops_server_fields_and_the_annotation() -> None:
    dumped = {
        "kind": "Pod",
        "metadata": {
            "name": "web",
            "uid": "u",
            "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {LAST_APPLIED: "{}"},
        },
        "status": {"phase": "Running"},
    }

    assert applied_configuration(dumped) == {"kind": "Pod", "metadata": {"name": "web"}}


# ------------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (190, "3m10s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (10 * 3600, "10h"),
        (4 * 86400, "4d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (30 * 86400, "30d"),
        (-5, "<invalid>"),
    ],
)
def test_human_duration_matches_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


@pytest.mark.parametrize(
    ("text", "seconds"), [("30", 30.0), ("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5)]
)
def test_parse_duration_reads_go_style_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_parse_duration_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("soon")


# ------------------------------------------------------------------- names, parsing


def test_parse_targets_reads_kind_lists_and_kind_slash_name() -> None:
    several = parse_targets(["po,svc", "web"])
    slashed = parse_targets(["pod/a", "deploy/b", "pods/c"])

    assert [(t.info.kind, t.names) for t in several] == [
        ("Pod", ("web",)),
        ("Service", ("web",)),
    ]
    assert [(t.info.kind, t.names) for t in slashed] == [
        ("Pod", ("a", "c")),
        ("Deployment", ("b",)),
    ]


def test_kind_label_names_the_group_of_non_core_kinds() -> None:
    assert (kind_label(KINDS["Pod"]), kind_label(KINDS["Deployment"])) == (
        "pod",
        "deployment.apps",
    )


def test_parse_changes_splits_names_from_updates() -> None:
    resources, changes = parse_changes(["pod", "web", "a=1", "b-"], what="label")

    assert resources == ["pod", "web"]
    assert changes == Changes({"a": "1"}, ["b"])


def test_parse_changes_refuses_an_invalid_label_value() -> None:
    with pytest.raises(CliError, match="invalid label value"):
        parse_changes(["pod", "web", "a=not valid"], what="label")


def test_planned_patch_needs_overwrite_for_a_different_value() -> None:
    changes = Changes({"a": "2"}, [])

    with pytest.raises(CliError, match="--overwrite is false"):
        planned_patch({"a": "1"}, changes, overwrite=False)
    assert planned_patch({"a": "1"}, changes, overwrite=True) == {"a": "2"}
    assert planned_patch({"a": "2"}, changes, overwrite=False) == {}


def test_wait_for_parses_condition_and_delete() -> None:
    assert parse_for("delete") == ("delete", "", "")
    assert parse_for("condition=Ready") == ("condition", "Ready", "True")
    assert parse_for("condition=Ready=False") == ("condition", "Ready", "False")
    with pytest.raises(click.BadParameter):
        parse_for("jsonpath={.x}")


# --------------------------------------------------------------------------- output


def test_render_table_separates_columns_by_three_spaces() -> None:
    text = render_table(["NAME", "AGE"], [["web", "5s"], ["a-longer-name", "3m"]])

    assert text.splitlines() == [
        "NAME            AGE",
        "web             5s",
        "a-longer-name   3m",
    ]


def test_pod_status_prefers_a_waiting_containers_reason() -> None:
    pod = core_pb2.Pod()
    pod.status.phase = "Pending"
    pod.status.container_statuses.add(name="a").state.waiting.reason = "ImagePullBackOff"

    assert pod_status(pod, NOW) == "ImagePullBackOff"


def test_pod_status_is_terminating_once_deletion_started() -> None:
    pod = core_pb2.Pod()
    pod.status.phase = "Running"
    pod.metadata.deletion_timestamp.FromSeconds(1)

    assert pod_status(pod, NOW) == "Terminating"


def test_pod_rows_show_ready_containers_and_restarts() -> None:
    pod = core_pb2.Pod()
    pod.metadata.name = "web"
    pod.metadata.creation_timestamp.FromDatetime(NOW - dt.timedelta(minutes=3))
    pod.spec.containers.add(name="a")
    pod.spec.containers.add(name="b")
    pod.status.phase = "Running"
    pod.status.container_statuses.add(name="a", ready=True, restart_count=2)
    pod.status.container_statuses.add(name="b", ready=False, restart_count=1)

    headers, rows = table_rows(KINDS["Pod"], [pod], now=NOW)

    assert headers == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows == [["web", "1/2", "Running", "3", "3m"]]


def test_describe_writer_aligns_values_of_a_block() -> None:
    w = DescribeWriter()
    w.line(0, "Name:", "web")
    w.line(0, "Namespace:", "default")
    w.line(0, "Containers:")
    w.line(1, "Image:", "nginx")

    assert w.text().splitlines() == [
        "Name:       web",
        "Namespace:  default",
        "Containers:",
        "  Image:  nginx",
    ]


# --------------------------------------------------------------------------- config


def test_config_round_trips_through_its_file(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config"
    config = Config(path, "a", [Context("a", server="h:1", namespace="ns", token="t")])

    save_config(config)

    assert load_config(path) == config
    assert path.stat().st_mode & 0o777 == 0o600


def test_config_that_does_not_exist_is_empty(tmp_path: Path) -> None:
    assert load_config(tmp_path / "none") == Config(tmp_path / "none")


def test_config_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("contexts:\n- name: a\n  sever: h:1\n")

    with pytest.raises(ConfigError, match=r"contexts\[0\]\.sever: unknown field"):
        load_config(path)
