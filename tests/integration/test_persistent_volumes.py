"""PersistentVolume and PersistentVolumeClaim through the apiserver: defaults, validation."""

from __future__ import annotations

import pytest

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import InvalidError


def volume(name: str = "pv-1", path: str = "/srv/pv-1") -> core_pb2.PersistentVolume:
    pv = core_pb2.PersistentVolume(api_version="v1", kind="PersistentVolume")
    pv.metadata.name = name
    pv.spec.capacity["storage"] = "1Gi"
    pv.spec.access_modes.append("ReadWriteOnce")
    pv.spec.host_path.path = path
    return pv


def claim(name: str = "data") -> core_pb2.PersistentVolumeClaim:
    pvc = core_pb2.PersistentVolumeClaim(api_version="v1", kind="PersistentVolumeClaim")
    pvc.metadata.name, pvc.metadata.namespace = name, "default"
    pvc.spec.access_modes.append("ReadWriteOnce")
    pvc.spec.resources.requests["storage"] = "500Mi"
    return pvc


async def test_volumes_and_claims_are_defaulted_and_stored(client: Client) -> None:
    pv = await client.resource("PersistentVolume").create(volume())
    assert (pv.spec.persistent_volume_reclaim_policy, pv.spec.volume_mode, pv.status.phase) == (
        "Retain",
        "Filesystem",
        "Pending",
    )
    assert not pv.metadata.namespace  # cluster-scoped
    pvc = await client.resource("PersistentVolumeClaim").create(claim())
    assert (pvc.status.phase, pvc.spec.volume_mode) == ("Pending", "Filesystem")
    pvc.status.phase = "Bound"
    bound = await client.resource("PersistentVolumeClaim").update_status(pvc)
    assert bound.status.phase == "Bound"
    listed = await client.resource("pvc").list(namespace="default")
    assert [c.metadata.name for c in listed.items] == ["data"]


async def test_invalid_volumes_and_claims_name_the_field(client: Client) -> None:
    bad = volume()
    bad.spec.ClearField("host_path")
    bad.spec.access_modes[0] = "ReadWriteSometimes"
    with pytest.raises(InvalidError) as error:
        await client.resource("PersistentVolume").create(bad)
    assert "spec.hostPath" in str(error.value)
    assert "spec.accessModes[0]" in str(error.value)
    no_size = claim()
    no_size.spec.resources.ClearField("requests")
    with pytest.raises(InvalidError, match=r"spec.resources.requests\[storage\]"):
        await client.resource("PersistentVolumeClaim").create(no_size)
