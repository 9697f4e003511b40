"""`label` and `annotate`: set (`k=v`) or remove (`k-`) keys with a merge patch.

As kubectl, changing a key that already has a different value needs `--overwrite`. The check is
made on the object as read, and the patch carries that read's resourceVersion, so a concurrent
change makes the server refuse the patch (a conflict) and the whole check is made again, rather
than overwriting a value that was never checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from bosun.cli.errors import CliError, PartialFailure, server_error
from bosun.cli.resources import object_ref, parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import ApiError, ConflictError
from bosun.common.kinds import KindInfo
from bosun.common.selectors import label_value_errors, qualified_name_errors

__all__ = ["annotate", "label", "parse_changes", "planned_patch"]

_ATTEMPTS = 5


@dataclass(frozen=True)
class Changes:
    set: dict[str, str]
    remove: list[str]


def _is_change(arg: str) -> bool:
    return "=" in arg or (arg.endswith("-") and len(arg) > 1)


def parse_changes(args: Sequence[str], *, what: str) -> tuple[list[str], Changes]:
    """Split arguments into the resource part and the `k=v` / `k-` changes (which come last)."""
    first = next((index for index, arg in enumerate(args) if _is_change(arg)), len(args))
    resources, raw = list(args[:first]), args[first:]
    if not raw:
        raise click.UsageError(f"at least one {what} update is required (key=value or key-)")
    changes = Changes({}, [])
    for arg in raw:
        if "=" in arg:
            key, _, value = arg.partition("=")
            changes.set[key] = value
        elif arg.endswith("-"):
            changes.remove.append(arg[:-1])
        else:
            raise click.UsageError(f"{what} updates must come after the names: {arg!r}")
        key = arg.partition("=")[0] if "=" in arg else arg[:-1]
        errors = qualified_name_errors(key)
        if errors:
            raise CliError(f'error: invalid {what} key "{key}": {"; ".join(errors)}')
    both = set(changes.set) & set(changes.remove)
    if both:
        raise CliError(f"error: can not both modify and remove the {what} {sorted(both)[0]!r}")
    if what == "label":
        for key, value in changes.set.items():
            errors = label_value_errors(value)
            if errors:
                raise CliError(f'error: invalid label value "{key}={value}": {"; ".join(errors)}')
    return resources, changes


def planned_patch(
    existing: Mapping[str, str], changes: Changes, *, overwrite: bool
) -> dict[str, Any]:
    """The map patch (`{key: value | None}`) that applies `changes`; {} when nothing changes.

    CliError for a key whose different value would be replaced without `overwrite`.
    """
    patch: dict[str, Any] = {}
    for key, value in changes.set.items():
        if key in existing and existing[key] != value and not overwrite:
            raise CliError(
                f"error: '{key}' already has a value ({existing[key]}), and --overwrite is false"
            )
        if existing.get(key) != value:
            patch[key] = value
    for key in changes.remove:
        if key in existing:
            patch[key] = None
    return patch


def _run_update(
    ctx: click.Context, args: tuple[str, ...], overwrite: bool, *, what: str, field: str
) -> None:
    resource_args, changes = parse_changes(args, what=what)
    targets = parse_targets(resource_args, verb=what)
    for target in targets:
        if not target.names:
            raise click.UsageError(f"name a {target.info.singular} to {what}")
    current = session(ctx)
    past = "labeled" if what == "label" else "annotated"

    async def update(client: Client, info: KindInfo, name: str) -> str:
        resource = client.resource(info.kind)
        namespace = current.namespace if info.namespaced else ""
        for _attempt in range(_ATTEMPTS):
            obj: Any = await resource.get(name, namespace=namespace)
            existing = dict(getattr(obj.metadata, field))
            patch = planned_patch(existing, changes, overwrite=overwrite)
            if not patch:
                return f"{object_ref(info, name)} not {past}"
            body = {
                "metadata": {
                    field: patch,
                    "resourceVersion": str(obj.metadata.resource_version),
                }
            }
            try:
                await resource.patch(name, body, namespace=namespace)
            except ConflictError:
                continue
            return f"{object_ref(info, name)} {past}"
        raise ConflictError(f'{info.resource} "{name}" keeps changing; try again')

    async def work(client: Client) -> bool:
        failed = False
        for target in targets:
            for name in target.names:
                try:
                    click.echo(await update(client, target.info, name))
                except ApiError as error:
                    click.echo(server_error(error), err=True)
                    failed = True
        return failed

    if run(current, work):
        raise PartialFailure()


@click.command()
@click.argument("args", nargs=-1, metavar="KIND NAME… KEY=VALUE… KEY-…")
@click.option("--overwrite", is_flag=True, help="Allow replacing a label's existing value.")
@connection_options
@click.pass_context
def label(ctx: click.Context, args: tuple[str, ...], overwrite: bool) -> None:
    """Add, change or remove labels.

    A changed value needs --overwrite; KEY- removes KEY.
    Example: bosunctl label pod web tier=front env-
    """
    _run_update(ctx, args, overwrite, what="label", field="labels")


@click.command()
@click.argument("args", nargs=-1, metavar="KIND NAME… KEY=VALUE… KEY-…")
@click.option("--overwrite", is_flag=True, help="Allow replacing an annotation's value.")
@connection_options
@click.pass_context
def annotate(ctx: click.Context, args: tuple[str, ...], overwrite: bool) -> None:
    """Add, change or remove annotations.

    A changed value needs --overwrite; KEY- removes KEY.
    Example: bosunctl annotate pod web note="on call: ops"
    """
    _run_update(ctx, args, overwrite, what="annotation", field="annotations")
