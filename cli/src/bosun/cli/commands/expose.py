"""`expose`: a Service in front of a deployment, replica set, pod or another service.

As kubectl expose: the selector is the workload's (a Deployment's or ReplicaSet's
`spec.selector.matchLabels`, a Pod's labels, a Service's selector), the service is named after
the workload unless `--name` says otherwise, and `--target-port` defaults to `--port`. The
ClusterIP (and a NodePort) come from the apiserver.
"""

from __future__ import annotations

from typing import Any

import click

from bosun.api.v1 import core_pb2
from bosun.cli.errors import CliError, server_error
from bosun.cli.resources import object_ref, parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.common import kinds
from bosun.common.client import Client
from bosun.common.errors import ApiError

__all__ = ["expose"]

EXPOSABLE = ("Deployment", "ReplicaSet", "Pod", "Service")


def selector_of(kind: str, obj: Any) -> dict[str, str]:
    """The labels a Service must select to reach the workload's pods."""
    if kind in ("Deployment", "ReplicaSet"):
        if obj.spec.selector.match_expressions:
            raise CliError(
                f"error: cannot expose {kind} {obj.metadata.name}: its selector has "
                "matchExpressions, which a Service selector cannot express"
            )
        return dict(obj.spec.selector.match_labels)
    if kind == "Pod":
        return dict(obj.metadata.labels)
    return dict(obj.spec.selector)


@click.command()
@click.argument("resources", nargs=-1, required=True, metavar="KIND NAME | KIND/NAME")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="The service's port.")
@click.option("--target-port", default="", help="The pods' port: a number or a port name.")
@click.option("--name", "service_name", default="", help="The service's name (default: the same).")
@click.option(
    "--type",
    "service_type",
    type=click.Choice(["ClusterIP", "NodePort"]),
    default="ClusterIP",
    show_default=True,
)
@click.option("--protocol", type=click.Choice(["TCP", "UDP", "SCTP"]), default="TCP")
@click.option("--port-name", default="", help="A name for the port (e.g. http).")
@connection_options
@click.pass_context
def expose(
    ctx: click.Context,
    resources: tuple[str, ...],
    port: int,
    target_port: str,
    service_name: str,
    service_type: str,
    protocol: str,
    port_name: str,
) -> None:
    """Create a Service that selects the pods of a deployment, replica set, pod or service.

    \b
    Examples:
      bosunctl expose deployment web --port 80 --target-port 8080
      bosunctl expose deploy/web --port 80 --type NodePort --name web-public
    """
    targets = parse_targets(resources, verb="expose")
    if len(targets) != 1 or len(targets[0].names) != 1:
        raise click.UsageError("expose exactly one object: KIND NAME or KIND/NAME")
    target = targets[0]
    kind, name = target.info.kind, target.names[0]
    if kind not in EXPOSABLE:
        raise CliError(f"error: cannot expose a {kind}: expose deployments, replicasets, pods")
    current = session(ctx)

    async def work(client: Client) -> None:
        try:
            obj = await client.resource(kind).get(name, namespace=current.namespace)
        except ApiError as error:
            raise CliError(server_error(error)) from None
        selector = selector_of(kind, obj)
        if not selector:
            raise CliError(f"error: {object_ref(target.info, name)} has no labels to select")
        service = core_pb2.Service()
        service.metadata.name = service_name or name
        service.metadata.namespace = current.namespace
        service.metadata.labels.update(dict(obj.metadata.labels))
        service.spec.type = service_type
        service.spec.selector.update(selector)
        service.spec.ports.add(
            name=port_name, port=port, protocol=protocol, target_port=target_port or str(port)
        )
        try:
            await client.services.create(service)
        except ApiError as error:
            raise CliError(server_error(error)) from None
        click.echo(f"{object_ref(kinds.KINDS['Service'], service.metadata.name)} exposed")

    run(current, work)
