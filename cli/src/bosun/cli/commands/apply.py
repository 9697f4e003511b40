"""`apply -f`, `create -f`, `replace -f`: write the objects of manifests.

Every manifest is read and checked before the first request. Each object is then sent on its
own: a refused object is reported (`Error from server (…): error when creating "file": …`) and
the others still go, and the command exits 1 if any was refused, as kubectl does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import click

from bosun.cli.applying import apply_object
from bosun.cli.errors import CliError, PartialFailure, server_error
from bosun.cli.manifests import ManifestObject, read_manifests, target_namespace
from bosun.cli.resources import object_ref
from bosun.cli.session import Session, connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import ApiError

__all__ = ["apply", "create", "replace"]

# An action writes one object and returns what happened and the object's (final) name.
Action = Callable[[Client, ManifestObject, str], Awaitable[tuple[str, str]]]


def _filename_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option(
        "-R", "--recursive", is_flag=True, help="Also read the subdirectories of directories."
    )(function)
    return click.option(
        "-f",
        "--filename",
        "filenames",
        multiple=True,
        metavar="FILE|DIR|-",
        help="Manifest file, directory of *.yaml/*.yml/*.json, or - for stdin (repeatable).",
    )(function)


def _write_all(
    current: Session, items: Sequence[ManifestObject], verb: str, action: Action
) -> None:
    targets = [
        (item, target_namespace(item, current.namespace, explicit=current.namespace_explicit))
        for item in items
    ]

    async def work(client: Client) -> bool:
        failed = False
        for item, namespace in targets:
            try:
                outcome, name = await action(client, item, namespace)
            except ApiError as error:
                click.echo(server_error(error, action=verb, source=item.source), err=True)
                failed = True
                continue
            click.echo(f"{object_ref(item.info, name)} {outcome}")
        return failed

    if run(current, work):
        raise PartialFailure()


async def _apply(client: Client, item: ManifestObject, namespace: str) -> tuple[str, str]:
    return (await apply_object(client, item, namespace)).action, item.name


async def _create(client: Client, item: ManifestObject, namespace: str) -> tuple[str, str]:
    message = item.message
    if item.info.namespaced:
        message.metadata.namespace = namespace
    created = await client.resource(item.info.kind).create(message)
    return "created", str(created.metadata.name)


async def _replace(client: Client, item: ManifestObject, namespace: str) -> tuple[str, str]:
    resource = client.resource(item.info.kind)
    message = item.message
    if item.info.namespaced:
        message.metadata.namespace = namespace
    if not message.metadata.resource_version:
        current = await resource.get(item.name, namespace=namespace)
        message.metadata.resource_version = current.metadata.resource_version
    await resource.update(message)
    return "replaced", item.name


def _require_names(items: Sequence[ManifestObject], verb: str) -> None:
    for item in items:
        if not item.name:
            raise CliError(
                f"error: {item.source}: {item.info.kind}: metadata.name: Required value "
                f"({verb} needs a name; `create` accepts metadata.generateName)"
            )


@click.command()
@_filename_options
@connection_options
@click.pass_context
def apply(ctx: click.Context, filenames: tuple[str, ...], recursive: bool) -> None:
    """Create or update objects to match manifests.

    A three-way merge, as kubectl's client-side apply: fields removed from a manifest since
    the last apply are removed from the object; fields set by others are kept.
    Example: bosunctl apply -f app.yaml
    """
    items = read_manifests(filenames, recursive=recursive)
    _require_names(items, "apply")
    _write_all(session(ctx), items, "applying", _apply)


@click.command()
@_filename_options
@connection_options
@click.pass_context
def create(ctx: click.Context, filenames: tuple[str, ...], recursive: bool) -> None:
    """Create the objects of manifests.

    An object that exists already is an error (see apply).
    """
    items = read_manifests(filenames, recursive=recursive)
    _write_all(session(ctx), items, "creating", _create)


@click.command()
@_filename_options
@connection_options
@click.pass_context
def replace(ctx: click.Context, filenames: tuple[str, ...], recursive: bool) -> None:
    """Replace objects with the manifests' version.

    Spec and metadata become what the manifest says; status is kept.
    """
    items = read_manifests(filenames, recursive=recursive)
    _require_names(items, "replace")
    _write_all(session(ctx), items, "replacing", _replace)
