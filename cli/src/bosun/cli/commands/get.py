"""`get`: list or fetch objects as a table, YAML, JSON or names; `-w` streams changes."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

import click

from bosun.cli.errors import PartialFailure, server_error
from bosun.cli.printers import OUTPUT_FORMATS, TableWriter, dump_json, dump_yaml, format_objects
from bosun.cli.printers import render_table as render
from bosun.cli.resources import Target, parse_targets
from bosun.cli.session import Session, connection_options, run, session
from bosun.cli.tables import sort_events, table_rows
from bosun.common.client import Client
from bosun.common.errors import DeadlineExceededError, ExpiredError, NotFoundError
from bosun.common.kinds import KindInfo
from bosun.common.manifest import to_dict

__all__ = ["get", "no_resources_message"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def no_resources_message(namespace: str, infos: Sequence[KindInfo]) -> str:
    if namespace and any(info.namespaced for info in infos):
        return f"No resources found in {namespace} namespace."
    return "No resources found"


class _Fetched:
    def __init__(self) -> None:
        self.groups: list[tuple[KindInfo, list[Any]]] = []
        self.failed = False


async def _fetch(
    client: Client,
    targets: Sequence[Target],
    *,
    namespace: str,
    label_selector: str,
    field_selector: str,
) -> _Fetched:
    fetched = _Fetched()
    for target in targets:
        resource = client.resource(target.info.kind)
        objects: list[Any] = []
        if target.names:
            for name in target.names:
                try:
                    objects.append(await resource.get(name, namespace=namespace))
                except NotFoundError as error:
                    click.echo(server_error(error), err=True)
                    fetched.failed = True
        else:
            listed = await resource.list_all(
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
            objects = listed.items
            if target.info.kind == "Event":
                objects = sort_events(objects)
        fetched.groups.append((target.info, objects))
    return fetched


def _print_tables(
    groups: Sequence[tuple[KindInfo, list[Any]]],
    *,
    wide: bool,
    all_namespaces: bool,
    show_labels: bool,
    no_headers: bool,
) -> None:
    now = _now()
    printed = False
    for info, objects in groups:
        if not objects:
            continue
        headers, rows = table_rows(
            info,
            objects,
            now=now,
            wide=wide,
            all_namespaces=all_namespaces,
            kind_prefix=len(groups) > 1,
            show_labels=show_labels,
        )
        if printed:
            click.echo("")
        click.echo(render(headers, rows, show_header=not no_headers))
        printed = True


async def _watch(
    client: Client,
    target: Target,
    current: Session,
    *,
    namespace: str,
    label_selector: str,
    field_selector: str,
    output: str,
    all_namespaces: bool,
    show_labels: bool,
    no_headers: bool,
) -> None:
    """Print the current objects, then every change, until interrupted (or the timeout)."""
    info = target.info
    resource = client.resource(info.kind)
    if len(target.names) > 1:
        raise click.UsageError("watch is only supported on one name at a time")
    if target.names:
        name_selector = f"metadata.name={target.names[0]}"
        field_selector = f"{field_selector},{name_selector}" if field_selector else name_selector
        first = await resource.get(target.names[0], namespace=namespace)
        objects, version = [first], str(first.metadata.resource_version)
    else:
        listed = await resource.list_all(
            namespace=namespace, label_selector=label_selector, field_selector=field_selector
        )
        objects, version = listed.items, listed.resource_version
    headers, _ = table_rows(
        info,
        [],
        now=_now(),
        wide=output == "wide",
        all_namespaces=all_namespaces,
        show_labels=show_labels,
    )
    writer = TableWriter(headers, show_header=not no_headers)

    def show(batch: Sequence[Any]) -> None:
        if not batch:
            return
        if output in ("yaml", "json"):
            for obj in batch:
                document = to_dict(obj)
                click.echo(
                    "---\n" + dump_yaml(document).rstrip("\n")
                    if output == "yaml"
                    else dump_json(document)
                )
            return
        if output == "name":
            click.echo(format_objects(batch, "name"))
            return
        _, rows = table_rows(
            info,
            batch,
            now=_now(),
            wide=output == "wide",
            all_namespaces=all_namespaces,
            show_labels=show_labels,
        )
        click.echo(writer.render(rows))

    if not objects and output not in ("yaml", "json", "name"):
        click.echo(no_resources_message(namespace, [info]), err=True)
    show(objects)
    while True:
        try:
            async for event in resource.watch(
                namespace=namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=version,
                timeout=current.watch_timeout,
            ):
                version = event.resource_version or version
                if event.type != "BOOKMARK":
                    show([event.object])
            return
        except DeadlineExceededError:
            return  # --request-timeout ended the watch
        except ExpiredError:
            # The server no longer holds our version: start over from the current state.
            listed = await resource.list_all(
                namespace=namespace, label_selector=label_selector, field_selector=field_selector
            )
            version = listed.resource_version
            show(listed.items)


@click.command()
@click.argument("resources", nargs=-1, metavar="KIND[,KIND…] [NAME…] | KIND/NAME…")
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Label selector.")
@click.option("--field-selector", default="", metavar="SELECTOR", help="Field selector.")
@click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), help="Output format.")
@click.option("-w", "--watch", is_flag=True, help="After listing, print changes as they happen.")
@click.option("--show-labels", is_flag=True, help="Add a LABELS column.")
@click.option("--no-headers", is_flag=True, help="Print tables without their header.")
@connection_options
@click.pass_context
def get(
    ctx: click.Context,
    resources: tuple[str, ...],
    all_namespaces: bool,
    selector: str,
    field_selector: str,
    output: str | None,
    watch: bool,
    show_labels: bool,
    no_headers: bool,
) -> None:
    """List objects, or show some by name.

    \b
    Examples:
      bosunctl get pods
      bosunctl get po web -o yaml
      bosunctl get deploy,rs -A -l app=web
      bosunctl get pods -w
    """
    targets = parse_targets(resources)
    named = any(target.names for target in targets)
    if named and (selector or field_selector):
        raise click.UsageError("names cannot be combined with -l or --field-selector")
    if named and all_namespaces:
        raise click.UsageError("a name cannot be retrieved across all namespaces (-A)")
    if watch and len(targets) > 1:
        raise click.UsageError("watch is only supported on one kind at a time")
    current = session(ctx)
    namespace = "" if all_namespaces else current.namespace
    format_ = output or "table"

    if watch:

        async def watching(client: Client) -> None:
            await _watch(
                client,
                targets[0],
                current,
                namespace=namespace,
                label_selector=selector,
                field_selector=field_selector,
                output=format_,
                all_namespaces=all_namespaces,
                show_labels=show_labels,
                no_headers=no_headers,
            )

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a watch
            run(current, watching)
        return

    async def fetching(client: Client) -> _Fetched:
        return await _fetch(
            client,
            targets,
            namespace=namespace,
            label_selector=selector,
            field_selector=field_selector,
        )

    fetched = run(current, fetching)
    objects = [obj for _, group in fetched.groups for obj in group]
    if format_ in ("yaml", "json", "name"):
        if objects or (not named and format_ != "name"):
            single = len(targets) == 1 and len(targets[0].names) == 1
            click.echo(format_objects(objects, format_, single=single))
    elif objects:
        _print_tables(
            fetched.groups,
            wide=format_ == "wide",
            all_namespaces=all_namespaces,
            show_labels=show_labels,
            no_headers=no_headers,
        )
    elif not named:
        click.echo(no_resources_message(namespace, [t.info for t in targets]), err=True)
    if fetched.failed:
        raise PartialFailure()
