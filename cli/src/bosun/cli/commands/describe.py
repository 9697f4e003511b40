"""`describe`: objects as readable text, each followed by the Events about it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from bosun.cli.commands.get import no_resources_message
from bosun.cli.describers import describe_object
from bosun.cli.errors import PartialFailure, server_error
from bosun.cli.resources import parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.cli.tables import sort_events
from bosun.common.client import Client
from bosun.common.errors import NotFoundError
from bosun.common.kinds import KindInfo

__all__ = ["describe", "events_for"]


async def events_for(client: Client, info: KindInfo, obj: Any) -> list[Any]:
    """The Events whose involvedObject is `obj`, oldest first.

    Selected by kind, name (and namespace) on the server; events that name another object of
    the same name (an earlier incarnation, by uid) are left out.
    """
    meta = obj.metadata
    selector = f"involvedObject.kind={info.kind},involvedObject.name={meta.name}"
    if info.namespaced:
        selector += f",involvedObject.namespace={meta.namespace}"
    listed = await client.events.list_all(
        namespace=meta.namespace if info.namespaced else "", field_selector=selector
    )
    return sort_events(
        [
            event
            for event in listed.items
            if not event.involved_object.uid or event.involved_object.uid == meta.uid
        ]
    )


@click.command()
@click.argument("resources", nargs=-1, metavar="KIND [NAME…] | KIND/NAME…")
@click.option("-l", "--selector", default="", metavar="SELECTOR", help="Label selector.")
@connection_options
@click.pass_context
def describe(ctx: click.Context, resources: tuple[str, ...], selector: str) -> None:
    """Show details of objects and their Events.

    Example: bosunctl describe pod web
    """
    targets = parse_targets(resources, verb="describe")
    current = session(ctx)

    async def work(client: Client) -> tuple[list[str], bool]:
        texts: list[str] = []
        failed = False
        for target in targets:
            resource = client.resource(target.info.kind)
            objects: list[Any] = []
            if target.names:
                for name in target.names:
                    try:
                        objects.append(await resource.get(name, namespace=current.namespace))
                    except NotFoundError as error:
                        click.echo(server_error(error), err=True)
                        failed = True
            else:
                listed = await resource.list_all(
                    namespace=current.namespace, label_selector=selector
                )
                objects = listed.items
            now = dt.datetime.now(dt.UTC)
            for obj in objects:
                events = await events_for(client, target.info, obj)
                texts.append(describe_object(target.info, obj, events, now))
        return texts, failed

    texts, failed = run(current, work)
    if texts:
        click.echo("\n\n".join(texts))
    elif not failed:
        click.echo(no_resources_message(current.namespace, [t.info for t in targets]), err=True)
    if failed:
        raise PartialFailure()
