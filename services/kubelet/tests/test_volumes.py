from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bosun.api.v1 import core_pb2
from bosun.kubelet.runtime import Mount
from bosun.kubelet.testing import FakeRuntime
from bosun.kubelet.volumes import VolumeError, VolumeManager, project_files


def test_projection_is_atomic_symlinks_and_a_no_op_when_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "cm"
    assert project_files(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert (target / "a").read_text() == "1"
    assert (target / "dir" / "b").read_text() == "2"
    assert os.readlink(target / "a") == "..data/a"
    version = os.readlink(target / "..data")
    assert not project_files(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)})
    assert os.readlink(target / "..data") == version
    assert project_files(target, {"a": (b"changed", 0o644)})
    assert (target / "a").read_text() == "changed"
    assert not (target / "dir").exists()  # keys that went away disappear
    assert not (target / version).exists()  # the old version is cleaned up
    assert sorted(p.name for p in target.iterdir() if p.name.startswith("..")) == sorted(
        ["..data", os.readlink(target / "..data")]
    )


def test_projection_rejects_paths_that_escape(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="must be relative"):
        project_files(tmp_path / "x", {"../evil": (b"", 0o644)})


def manager(tmp_path: Path, runtime: FakeRuntime) -> VolumeManager:
    def config_map(namespace: str, name: str) -> core_pb2.ConfigMap | None:
        if name != "cfg":
            return None
        cm = core_pb2.ConfigMap()
        cm.data.update({"k1": "v1", "k2": "v2"})
        return cm

    def secret(namespace: str, name: str) -> core_pb2.Secret | None:
        if name != "sec":
            return None
        s = core_pb2.Secret()
        s.data["token"] = b"t"
        return s

    return VolumeManager(tmp_path / "root", runtime, node="n", config_map=config_map, secret=secret)


def check_sources(sources: dict[str, Mount], runtime: FakeRuntime, host: Path) -> None:
    assert Path(sources["scratch"].source).is_dir()
    assert sources["mem"] == Mount("bosun-u1-mem", "", volume=True)
    assert runtime.volumes["bosun-u1-mem"]["io.bosun.pod.uid"] == "u1"
    assert host.is_dir()
    assert sources["host"].source == str(host)
    cfg = Path(sources["cfg"].source)
    assert sorted(p.name for p in cfg.iterdir() if not p.name.startswith("..")) == ["renamed"]
    assert (cfg / "renamed").read_text() == "v2"
    assert ((cfg / "renamed").stat().st_mode & 0o777) == 0o600
    assert sources["cfg"].read_only
    assert (Path(sources["sec"].source) / "token").read_text() == "t"


async def test_prepare_sets_up_every_kind_of_volume(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    volumes = manager(tmp_path, runtime)
    pod = core_pb2.Pod()
    pod.metadata.uid, pod.metadata.namespace = "u1", "default"
    host = tmp_path / "host"
    spec = pod.spec
    spec.volumes.add(name="scratch", empty_dir=core_pb2.EmptyDirVolumeSource())
    spec.volumes.add(name="mem", empty_dir=core_pb2.EmptyDirVolumeSource(medium="Memory"))
    spec.volumes.add(
        name="host",
        host_path=core_pb2.HostPathVolumeSource(path=str(host), type="DirectoryOrCreate"),
    )
    cm = spec.volumes.add(name="cfg", config_map=core_pb2.ConfigMapVolumeSource(name="cfg"))
    cm.config_map.items.add(key="k2", path="renamed", mode=0o600)
    spec.volumes.add(name="sec", secret=core_pb2.SecretVolumeSource(secret_name="sec"))
    sources = await volumes.prepare(pod)
    check_sources(sources, runtime, host)
    await volumes.cleanup("u1")
    assert not volumes.pod_dir("u1").exists()
    assert runtime.volumes == {}


async def test_missing_sources_and_failed_type_checks_are_volume_errors(tmp_path: Path) -> None:
    volumes = manager(tmp_path, FakeRuntime())
    for volume in (
        core_pb2.Volume(name="a", config_map=core_pb2.ConfigMapVolumeSource(name="absent")),
        core_pb2.Volume(name="b", secret=core_pb2.SecretVolumeSource(secret_name="absent")),
        core_pb2.Volume(
            name="c",
            host_path=core_pb2.HostPathVolumeSource(path=str(tmp_path / "no"), type="Directory"),
        ),
    ):
        pod = core_pb2.Pod()
        pod.metadata.uid = "u"
        pod.spec.volumes.append(volume)
        with pytest.raises(VolumeError):
            await volumes.prepare(pod)
    optional = core_pb2.Pod()
    optional.metadata.uid = "u"
    optional.spec.volumes.add(
        name="o", config_map=core_pb2.ConfigMapVolumeSource(name="absent", optional=True)
    )
    assert "o" in await volumes.prepare(optional)


def test_mounts_resolve_volume_names_read_only_and_sub_paths(tmp_path: Path) -> None:
    sources = {"data": Mount(str(tmp_path), ""), "cfg": Mount("/cfg", "", read_only=True)}
    container = core_pb2.Container(
        volume_mounts=[
            core_pb2.VolumeMount(name="data", mount_path="/data", sub_path="sub"),
            core_pb2.VolumeMount(name="cfg", mount_path="/etc/cfg"),
        ]
    )
    mounts = VolumeManager.mounts_for(container, sources)
    assert mounts == [
        Mount(str(tmp_path / "sub"), "/data"),
        Mount("/cfg", "/etc/cfg", read_only=True),
    ]
    assert (tmp_path / "sub").is_dir()
    with pytest.raises(VolumeError, match="no volume"):
        VolumeManager.mounts_for(
            core_pb2.Container(volume_mounts=[core_pb2.VolumeMount(name="x", mount_path="/x")]),
            sources,
        )


def claim_and_volume(
    tmp_path: Path, *, bound: bool = True, claimed_by: str = "claim-uid"
) -> VolumeManager:
    pvc = core_pb2.PersistentVolumeClaim()
    pvc.metadata.name, pvc.metadata.namespace, pvc.metadata.uid = "data", "default", "claim-uid"
    if bound:
        pvc.spec.volume_name = "pv-1"
    pv = core_pb2.PersistentVolume()
    pv.metadata.name = "pv-1"
    pv.spec.host_path.path = str(tmp_path / "disk")
    pv.spec.host_path.type = "DirectoryOrCreate"
    pv.spec.claim_ref.uid = claimed_by
    pv.spec.claim_ref.namespace, pv.spec.claim_ref.name = "default", "data"
    return VolumeManager(
        tmp_path / "root",
        FakeRuntime(),
        node="n",
        config_map=lambda ns, n: None,
        secret=lambda ns, n: None,
        claim=lambda ns, n: pvc if (ns, n) == ("default", "data") else None,
        volume=lambda ns, n: pv if n == "pv-1" else None,
    )


def claim_pod(name: str = "data", *, read_only: bool = False) -> core_pb2.Pod:
    pod = core_pb2.Pod()
    pod.metadata.uid, pod.metadata.namespace = "u", "default"
    pod.spec.volumes.add(
        name="vol",
        persistent_volume_claim=core_pb2.PersistentVolumeClaimVolumeSource(
            claim_name=name, read_only=read_only
        ),
    )
    return pod


async def test_a_bound_claim_mounts_its_volumes_host_path(tmp_path: Path) -> None:
    sources = await claim_and_volume(tmp_path).prepare(claim_pod(read_only=True))
    assert sources["vol"] == Mount(str(tmp_path / "disk"), "", read_only=True)


@pytest.mark.parametrize(
    ("manager_args", "claim", "message"),
    [
        ({}, "other", 'persistentvolumeclaim "other" not found'),
        ({"bound": False}, "data", 'persistentvolumeclaim "data" is not bound'),
        ({"claimed_by": "someone-else"}, "data", "bound to another claim"),
    ],
)
async def test_claims_that_cannot_be_mounted(
    tmp_path: Path, manager_args: dict[str, Any], claim: str, message: str
) -> None:
    with pytest.raises(VolumeError, match=message):
        await claim_and_volume(tmp_path, **manager_args).prepare(claim_pod(claim))
