"""`events`: the Events of a namespace (or all), oldest first; `-w` streams new ones."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

import click

from bosun.cli.commands.get import no_resources_message
from bosun.cli.printers import TableWriter
from bosun.cli.resources import parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.cli.tables import sort_events, table_rows
from bosun.common.client import Client
from bosun.common.errors import DeadlineExceededError, ExpiredError
from bosun.common.kinds import KINDS

__all__ = ["events"]


@click.command()
@click.option("-A", "--all-namespaces", is_flag=True, help="Events of every namespace.")
@click.option("-w", "--watch", is_flag=True, help="After listing, print new events as they come.")
@click.option(
    "--for",
    "for_",
    default="",
    metavar="KIND/NAME",
    help="Only events about this object (pod/web).",
)
@click.option(
    "--types",
    default="",
    metavar="TYPE[,TYPE]",
    help="Only events of these types (Normal, Warning).",
)
@connection_options
@click.pass_context
def events(ctx: click.Context, all_namespaces: bool, watch: bool, for_: str, types: str) -> None:
    """List Events, newest last.

    Examples: bosunctl events -A; bosunctl events --for pod/web -w
    """
    current = session(ctx)
    namespace = "" if all_namespaces else current.namespace
    selector = ""
    if for_:
        [target] = parse_targets([for_], verb="show events for")
        if len(target.names) != 1:
            raise click.BadParameter("expected KIND/NAME", param_hint="'--for'")
        selector = f"involvedObject.kind={target.info.kind},involvedObject.name={target.names[0]}"
    wanted = {part.strip().lower() for part in types.split(",") if part.strip()}
    info = KINDS["Event"]

    def keep(batch: Sequence[Any]) -> list[Any]:
        return [e for e in batch if not wanted or str(e.type).lower() in wanted]

    def rows(batch: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
        return table_rows(info, batch, now=dt.datetime.now(dt.UTC), all_namespaces=all_namespaces)

    writer = TableWriter(rows([])[0])

    def show(batch: Sequence[Any]) -> None:
        if batch:
            click.echo(writer.render(rows(batch)[1]))

    async def work(client: Client) -> None:
        listed = await client.events.list_all(namespace=namespace, field_selector=selector)
        initial = sort_events(keep(listed.items))
        if not initial:
            click.echo(no_resources_message(namespace, [info]), err=True)
        show(initial)
        if not watch:
            return
        version = listed.resource_version
        while True:
            try:
                async for event in client.events.watch(
                    namespace=namespace,
                    field_selector=selector,
                    resource_version=version,
                    timeout=current.watch_timeout,
                ):
                    version = event.resource_version or version
                    if event.type in ("ADDED", "MODIFIED"):
                        show(keep([event.object]))
                return
            except DeadlineExceededError:
                return
            except ExpiredError:
                relisted = await client.events.list_all(
                    namespace=namespace, field_selector=selector
                )
                version = relisted.resource_version

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a watch
        run(current, work)
