"""`api-resources` (the kinds this Bosun serves) and `version` (client, and the server's reach)."""

from __future__ import annotations

import asyncio
from importlib import metadata

import click
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bosun.cli.errors import CliError
from bosun.cli.printers import render_table
from bosun.cli.resources import group_of
from bosun.cli.session import connection_options, session
from bosun.common.grpcutil import create_channel
from bosun.common.kinds import KINDS

__all__ = ["api_resources", "client_version", "version"]

APISERVER_SERVICE = "bosun.api.apiserver.v1.ApiServer"


def client_version() -> str:
    try:
        return metadata.version("bosun-cli")
    except metadata.PackageNotFoundError:
        return "unknown"


@click.command("api-resources")
@click.option(
    "--namespaced",
    type=click.BOOL,
    default=None,
    help="Only namespaced (true) or cluster-scoped (false) kinds.",
)
@click.option("-o", "--output", type=click.Choice(["wide", "name"]), default=None)
def api_resources(namespaced: bool | None, output: str | None) -> None:
    """List the kinds of objects and their short names."""
    infos = sorted(KINDS.values(), key=lambda info: (group_of(info), info.resource))
    if namespaced is not None:
        infos = [info for info in infos if info.namespaced == namespaced]
    if output == "name":
        for info in infos:
            group = group_of(info)
            click.echo(f"{info.resource}.{group}" if group else info.resource)
        return
    rows = [
        [
            info.resource,
            ",".join(info.short_names),
            info.api_version,
            "true" if info.namespaced else "false",
            info.kind,
        ]
        for info in infos
    ]
    click.echo(render_table(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], rows))


async def _check_server(
    target: str, token: str | None, ca_cert: bytes | None, timeout: float
) -> str:
    """The apiserver's health status, asked once without waiting for a connection."""
    channel = create_channel(target, ca_cert=ca_cert, token=token, tracing=False)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(
            health_pb2.HealthCheckRequest(service=APISERVER_SERVICE), timeout=timeout
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
    finally:
        await channel.close()


@click.command()
@click.option("--client", "client_only", is_flag=True, help="Only the client's version.")
@connection_options
@click.pass_context
def version(ctx: click.Context, client_only: bool) -> None:
    """Print the client version and the server's state."""
    click.echo(f"Client Version: v{client_version()}")
    if client_only:
        return
    current = session(ctx)
    try:
        status = asyncio.run(
            _check_server(
                current.server, current.token, current.ca_cert, min(current.call_timeout, 10.0)
            )
        )
    except grpc.aio.AioRpcError as error:
        reason = error.details() or error.code().name
        raise CliError(f"Server: {current.server} is not reachable: {reason}") from None
    click.echo(f"Server: {current.server} ({status.lower().replace('_', ' ')})")
