"""Bad input gets a status code and a message naming the problem; stored data is unchanged."""

from __future__ import annotations

import grpc
import pytest

from bosun.api.apiserver.v1 import apiserver_pb2
from bosun.api.v1 import object_pb2
from bosun.apiserver.server import ApiServer
from bosun.common import testing
from bosun.common.client import Client
from bosun.common.errors import InvalidError, ResourceExhaustedError


async def raw_call(server: ApiServer, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = channel.unary_unary(f"/bosun.api.apiserver.v1.ApiServer/{method}")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(payload, timeout=5)
        return caught.value


@pytest.fixture
async def stored(client: Client) -> bytes:
    await client.config_maps.create(testing.config_map("keep", {"a": "1"}))
    listed = await client.config_maps.list()
    return b"".join(sorted(c.SerializeToString(deterministic=True) for c in listed.items))


async def assert_unchanged(client: Client, before: bytes) -> None:
    listed = await client.config_maps.list()
    after = b"".join(sorted(c.SerializeToString(deterministic=True) for c in listed.items))
    assert after == before


async def test_unknown_kind_is_invalid(client: Client) -> None:
    with pytest.raises(InvalidError, match="unknown kind 'Widget'"):
        await client.call("List", apiserver_pb2.ListRequest(kind="Widget"), 5, ())


async def test_envelope_without_a_kind_is_invalid(apiserver: ApiServer) -> None:
    request = apiserver_pb2.CreateRequest(object=object_pb2.Object())
    error = await raw_call(apiserver, "Create", request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carries no kind" in (error.details() or "")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: setattr(p.metadata, "name", "Not_Valid"), "metadata.name"),
        (lambda p: p.metadata.labels.update({"bad key!": "v"}), "metadata.labels"),
        (lambda p: p.metadata.labels.update({"k": "v" * 64}), "metadata.labels"),
        (lambda p: p.spec.ClearField("containers"), "spec.containers"),
        (lambda p: setattr(p.spec.containers[0], "image", ""), "spec.containers[0].image"),
        (lambda p: setattr(p.spec, "restart_policy", "Sometimes"), "spec.restartPolicy"),
    ],
)
async def test_invalid_pod_is_refused_with_the_field_path(
    client: Client, stored: bytes, mutate: object, message: str
) -> None:
    pod = testing.pod("web")
    mutate(pod)  # type: ignore[operator]
    with pytest.raises(InvalidError, match=message.replace("[", r"\[").replace("]", r"\]")):
        await client.pods.create(pod)
    await assert_unchanged(client, stored)


async def test_invalid_update_leaves_the_stored_object_unchanged(
    client: Client, stored: bytes
) -> None:
    keep = await client.config_maps.get("keep")
    keep.data["bad key!"] = "x"
    with pytest.raises(InvalidError, match="data"):
        await client.config_maps.update(keep)
    await assert_unchanged(client, stored)


async def test_oversized_object_is_resource_exhausted(client: Client, stored: bytes) -> None:
    big = testing.config_map("big", {"blob": "x" * (2 * 1024 * 1024)})
    with pytest.raises(ResourceExhaustedError, match="too large"):
        await client.config_maps.create(big)
    await assert_unchanged(client, stored)


async def test_malformed_selector_names_the_problem(client: Client) -> None:
    with pytest.raises(InvalidError, match="labelSelector"):
        await client.config_maps.list(label_selector="a in (b")


async def test_garbage_bytes_are_invalid_argument(
    apiserver: ApiServer, client: Client, stored: bytes
) -> None:
    error = await raw_call(apiserver, "Create", b"\xff\xff\xff\xff garbage")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid bosun.api.apiserver.v1.CreateRequest" in (error.details() or "")
    await assert_unchanged(client, stored)


async def test_wrong_wire_type_is_invalid_argument(apiserver: ApiServer) -> None:
    # Field 1 (object) sent as a varint instead of a message.
    error = await raw_call(apiserver, "Update", b"\x08\x01")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_patch_that_is_not_json_is_invalid(client: Client, stored: bytes) -> None:
    with pytest.raises(InvalidError, match="not valid JSON"):
        await client.config_maps.patch("keep", "{nope")
    await assert_unchanged(client, stored)


async def test_patch_with_wrong_type_names_the_field(client: Client, stored: bytes) -> None:
    with pytest.raises(InvalidError, match="data"):
        await client.config_maps.patch("keep", {"data": ["not", "a", "map"]})
    await assert_unchanged(client, stored)
