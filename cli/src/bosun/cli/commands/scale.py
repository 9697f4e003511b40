"""`scale`: set `spec.replicas` of Deployments and ReplicaSets.

With `--current-replicas` the change is made only if the object still has that many replicas
(checked on the object read, and the patch carries that read's resourceVersion, so a
concurrent change is a conflict rather than a lost check).
"""

from __future__ import annotations

import click

from bosun.cli.errors import CliError, PartialFailure, server_error
from bosun.cli.resources import object_ref, parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import ApiError

__all__ = ["scale"]

SCALABLE = ("Deployment", "ReplicaSet")


@click.command()
@click.argument("resources", nargs=-1, required=True, metavar="KIND NAME… | KIND/NAME…")
@click.option("--replicas", type=click.IntRange(min=0), required=True, help="The new size.")
@click.option(
    "--current-replicas",
    type=int,
    default=-1,
    help="Only scale if the current size is this (-1: any).",
)
@connection_options
@click.pass_context
def scale(
    ctx: click.Context, resources: tuple[str, ...], replicas: int, current_replicas: int
) -> None:
    """Set the number of replicas of a deployment or replica set.

    \b
    Examples:
      bosunctl scale deployment web --replicas 5
      bosunctl scale rs/web-6d4cf56db6 --replicas 0 --current-replicas 2
    """
    targets = parse_targets(resources, verb="scale")
    for target in targets:
        if target.info.kind not in SCALABLE:
            raise CliError(
                f"error: cannot scale a {target.info.kind}: scale deployments or replicasets"
            )
        if not target.names:
            raise click.UsageError(f"name the {target.info.singular} to scale")
    current = session(ctx)

    async def work(client: Client) -> bool:
        failed = False
        for target in targets:
            resource = client.resource(target.info.kind)
            for name in target.names:
                try:
                    obj = await resource.get(name, namespace=current.namespace)
                    if current_replicas >= 0 and obj.spec.replicas != current_replicas:
                        raise CliError(
                            f"error: expected replicas to be {current_replicas}, "
                            f"was {obj.spec.replicas}"
                        )
                    patch = {
                        "metadata": {"resourceVersion": obj.metadata.resource_version},
                        "spec": {"replicas": replicas},
                    }
                    await resource.patch(name, patch, namespace=current.namespace)
                    click.echo(f"{object_ref(target.info, name)} scaled")
                except ApiError as error:
                    click.echo(server_error(error), err=True)
                    failed = True
        return failed

    if run(current, work):
        raise PartialFailure()
