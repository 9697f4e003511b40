"""`bosunctl expose`: a Service selecting a workload's pods."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bosun.common import testing
from bosun.common.client import Client

if TYPE_CHECKING:
    from conftest import Bosunctl


async def test_expose_deployment_selects_its_pods_with_a_cluster_ip(
    bosunctl: Bosunctl, client: Client
) -> None:
    await client.deployments.create(testing.deployment("web"))

    result = await bosunctl("expose", "deployment", "web", "--port", "80", "--target-port", "8080")

    assert result.exit_code == 0, result.stderr
    assert result.stdout == "service/web exposed\n"
    service = await client.services.get("web", namespace="default")
    assert dict(service.spec.selector) == {"app": "web"}
    assert (service.spec.ports[0].port, service.spec.ports[0].target_port) == (80, "8080")
    assert service.spec.cluster_ip


async def test_expose_as_node_port_under_another_name(bosunctl: Bosunctl, client: Client) -> None:
    await client.deployments.create(testing.deployment("web"))

    result = await bosunctl(
        "expose", "deploy/web", "--port", "80", "--type", "NodePort", "--name", "web-public"
    )

    assert result.exit_code == 0, result.stderr
    service = await client.services.get("web-public", namespace="default")
    assert service.spec.type == "NodePort"
    assert service.spec.ports[0].node_port >= 30000


async def test_expose_of_a_missing_deployment_prints_the_servers_message(
    bosunctl: Bosunctl,
) -> None:
    result = await bosunctl("expose", "deployment", "nope", "--port", "80")

    assert result.exit_code == 1
    assert result.stderr == 'Error from server (NotFound): deployments "nope" not found\n'


async def test_expose_twice_is_already_exists(bosunctl: Bosunctl, client: Client) -> None:
    await client.deployments.create(testing.deployment("web"))
    await bosunctl("expose", "deployment", "web", "--port", "80")

    again = await bosunctl("expose", "deployment", "web", "--port", "80")

    assert again.exit_code == 1
    assert "AlreadyExists" in again.stderr
