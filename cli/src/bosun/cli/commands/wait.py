"""`wait`: block until objects have a condition (`--for=condition=Ready`) or are gone."""

from __future__ import annotations

import asyncio

import click

from bosun.cli.durations import Duration
from bosun.cli.errors import CliError
from bosun.cli.resources import object_ref, parse_targets
from bosun.cli.session import connection_options, run, session
from bosun.cli.waiting import ObjectDeletedError, wait_for_condition, wait_until_deleted
from bosun.common.client import Client

__all__ = ["parse_for", "wait"]


def parse_for(text: str) -> tuple[str, str, str]:
    """`delete` -> ("delete", "", ""); `condition=Ready[=False]` -> ("condition", "Ready", ...)."""
    if text == "delete":
        return "delete", "", ""
    kind, _, rest = text.partition("=")
    if kind == "condition" and rest:
        condition, _, want = rest.partition("=")
        if condition:
            return "condition", condition, want or "True"
    raise click.BadParameter(
        f"unrecognized condition {text!r}: use delete or condition=NAME[=VALUE]",
        param_hint="'--for'",
    )


@click.command()
@click.argument("resources", nargs=-1, metavar="KIND NAME… | KIND/NAME…")
@click.option(
    "--for",
    "for_",
    required=True,
    metavar="delete|condition=NAME[=VALUE]",
    help="What to wait for: deletion, or a status condition (value default True).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=30.0,
    show_default="30s",
    help="Give up after this long (0: check once).",
)
@connection_options
@click.pass_context
def wait(ctx: click.Context, resources: tuple[str, ...], for_: str, timeout: float) -> None:
    """Wait until objects have a condition, or are deleted.

    Example: bosunctl wait pod/web --for=condition=Ready --timeout 1m
    """
    mode, condition, want = parse_for(for_)
    targets = parse_targets(resources, verb="wait for")
    for target in targets:
        if not target.names:
            raise click.UsageError(f"name the {target.info.resource} to wait for")
    current = session(ctx)

    async def work(client: Client) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for target in targets:
            info = target.info
            resource = client.resource(info.kind)
            namespace = current.namespace if info.namespaced else ""
            for name in target.names:
                remaining = 0.0 if timeout == 0 else max(deadline - loop.time(), 0.001)
                ref = object_ref(info, name)
                if mode == "delete":
                    if not await wait_until_deleted(
                        resource, name, namespace=namespace, timeout=remaining
                    ):
                        raise CliError(f"error: timed out waiting for the condition on {ref}")
                    click.echo(f"{ref} deleted")
                    continue
                try:
                    found = await wait_for_condition(
                        resource,
                        name,
                        condition,
                        want=want,
                        namespace=namespace,
                        timeout=remaining,
                    )
                except ObjectDeletedError:
                    raise CliError(
                        f"error: {ref} was deleted while waiting for condition {condition}"
                    ) from None
                if found is None:
                    raise CliError(f"error: timed out waiting for the condition on {ref}")
                click.echo(f"{ref} condition met")

    run(current, work)
