"""`set image`: change container images of a workload's pod template (or of a pod).

`CONTAINER=IMAGE` pairs name containers (init containers too); `*=IMAGE` sets every one. An
unknown container name is an error, and nothing is written. The update carries the
resourceVersion that was read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from bosun.api.v1 import core_pb2
from bosun.cli.errors import CliError
from bosun.cli.resources import object_ref, parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client

__all__ = ["apply_images", "set_group"]


def _pod_spec(obj: Any) -> core_pb2.PodSpec:
    if obj.DESCRIPTOR.name == "Pod":
        return obj.spec  # type: ignore[no-any-return]
    return obj.spec.template.spec  # type: ignore[no-any-return]


def apply_images(spec: core_pb2.PodSpec, images: Mapping[str, str]) -> bool:
    """Set the images in `spec`; True when anything changed. CliError for an unknown name."""
    containers = [*spec.init_containers, *spec.containers]
    names = {container.name for container in containers}
    unknown = sorted(name for name in images if name != "*" and name not in names)
    if unknown:
        raise CliError(f'error: unable to find container named "{unknown[0]}"')
    changed = False
    for container in containers:
        image = images.get(container.name, images.get("*"))
        if image is not None and container.image != image:
            container.image = image
            changed = True
    return changed


@click.group("set")
def set_group() -> None:
    """Set specific features on objects (image)."""


@set_group.command("image")
@click.argument("args", nargs=-1, required=True, metavar="KIND NAME… CONTAINER=IMAGE…")
@connection_options
@click.pass_context
def image(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Update the image of containers in a pod template.

    \b
    Examples:
      bosunctl set image deployment/web web=nginx:1.27
      bosunctl set image deployment web '*=nginx:1.27'
    """
    first = next((i for i, arg in enumerate(args) if "=" in arg), len(args))
    resources, pairs = args[:first], args[first:]
    if not pairs:
        raise click.UsageError("give at least one CONTAINER=IMAGE")
    images: dict[str, str] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if not name or not value:
            raise click.UsageError(f"expected CONTAINER=IMAGE, got {pair!r}")
        images[name] = value
    targets = parse_targets(resources, verb="set image on")
    current = session(ctx)

    async def work(client: Client) -> None:
        for target in targets:
            if not target.names:
                raise click.UsageError(f"name the {target.info.singular}")
            resource = client.resource(target.info.kind)
            for name in target.names:
                obj = await resource.get(name, namespace=current.namespace)
                if apply_images(_pod_spec(obj), images):
                    await resource.update(obj)
                    click.echo(f"{object_ref(target.info, name)} image updated")
                else:
                    click.echo(f"{object_ref(target.info, name)} unchanged")

    run(current, work)
