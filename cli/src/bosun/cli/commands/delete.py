"""`delete`: by kind and name, by selector, or the objects of manifests; `--wait` until gone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import click

from bosun.cli.durations import Duration
from bosun.cli.errors import CliError, PartialFailure, server_error
from bosun.cli.manifests import read_manifests, target_namespace
from bosun.cli.resources import kind_label, object_ref, parse_targets
from bosun.cli.session import Session, connection_options, run, session
from bosun.cli.waiting import wait_until_deleted
from bosun.common.client import Client
from bosun.common.errors import ApiError, NotFoundError
from bosun.common.kinds import KindInfo

__all__ = ["delete"]

_CASCADE = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}


@dataclass(frozen=True)
class _Victim:
    info: KindInfo
    name: str
    namespace: str
    source: str = ""


def _from_arguments(
    client_targets: tuple[str, ...], *, selector: str, all_: bool
) -> tuple[list[_Victim], list[tuple[KindInfo, str]]]:
    """Named victims, and (kind, selector) pairs still to be listed."""
    targets = parse_targets(client_targets, verb="delete")
    named: list[_Victim] = []
    to_list: list[tuple[KindInfo, str]] = []
    for target in targets:
        if target.names:
            if selector or all_:
                raise click.UsageError("names cannot be combined with -l or --all")
            named.extend(_Victim(target.info, name, "") for name in target.names)
        elif selector or all_:
            to_list.append((target.info, selector))
        else:
            raise click.UsageError(
                "resource(s) were provided, but no name was specified (use a name, -l or --all)"
            )
    return named, to_list


@click.command()
@click.argument("resources", nargs=-1, metavar="KIND NAME… | KIND/NAME…")
@click.option(
    "-f",
    "--filename",
    "filenames",
    multiple=True,
    metavar="FILE|DIR|-",
    help="Delete the objects of these manifests.",
)
@click.option("-R", "--recursive", is_flag=True, help="Also read subdirectories of -f dirs.")
@click.option(
    "-l",
    "--selector",
    default="",
    metavar="SELECTOR",
    help="Delete the objects matching this label selector.",
)
@click.option("--all", "all_", is_flag=True, help="Delete every object of the kind.")
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Wait until the objects are gone (finalizers, graceful pod deletion).",
)
@click.option(
    "--timeout",
    type=Duration(),
    default=None,
    help="With --wait: give up after this long (30s, 2m; default: no limit).",
)
@click.option(
    "--grace-period",
    type=int,
    default=-1,
    help="Seconds a pod gets to stop (0: at once; -1: the pod's own setting).",
)
@click.option(
    "--cascade",
    type=click.Choice(sorted(_CASCADE)),
    default="background",
    help="What happens to dependents: deleted in the background, first "
    "(foreground), or kept (orphan).",
)
@click.option("--ignore-not-found", is_flag=True, help="A missing object is not an error.")
@connection_options
@click.pass_context
def delete(
    ctx: click.Context,
    resources: tuple[str, ...],
    filenames: tuple[str, ...],
    recursive: bool,
    selector: str,
    all_: bool,
    wait: bool,
    timeout: float | None,
    grace_period: int,
    cascade: str,
    ignore_not_found: bool,
) -> None:
    """Delete objects (by name, selector or manifest).

    \b
    Examples:
      bosunctl delete pod web
      bosunctl delete pods -l app=web --wait
      bosunctl delete -f app.yaml
    """
    if filenames and resources:
        raise click.UsageError("give either -f or KIND NAME…, not both")
    current = session(ctx)
    victims: list[_Victim] = []
    to_list: list[tuple[KindInfo, str]] = []
    if filenames:
        for item in read_manifests(filenames, recursive=recursive):
            namespace = target_namespace(
                item, current.namespace, explicit=current.namespace_explicit
            )
            victims.append(_Victim(item.info, item.name, namespace, item.source))
    else:
        victims, to_list = _from_arguments(resources, selector=selector, all_=all_)
        victims = [
            _Victim(v.info, v.name, current.namespace if v.info.namespaced else "") for v in victims
        ]

    async def work(client: Client) -> bool:
        return await _delete_all(
            client,
            current,
            victims,
            to_list,
            wait=wait,
            timeout=timeout,
            grace_period=grace_period if grace_period >= 0 else None,
            propagation=_CASCADE[cascade],
            ignore_not_found=ignore_not_found,
        )

    if run(current, work):
        raise PartialFailure()


async def _delete_all(
    client: Client,
    current: Session,
    victims: list[_Victim],
    to_list: list[tuple[KindInfo, str]],
    *,
    wait: bool,
    timeout: float | None,
    grace_period: int | None,
    propagation: str,
    ignore_not_found: bool,
) -> bool:
    """Delete every victim; True when any failed (each failure is printed)."""
    for info, selector in to_list:
        namespace = current.namespace if info.namespaced else ""
        listed = await client.resource(info.kind).list_all(
            namespace=namespace, label_selector=selector
        )
        victims.extend(_Victim(info, obj.metadata.name, namespace) for obj in listed.items)
        if not listed.items:
            click.echo(
                "No resources found" + (f" in {namespace} namespace." if namespace else ""),
                err=True,
            )
    failed = False
    pending: list[_Victim] = []
    for victim in victims:
        resource = client.resource(victim.info.kind)
        try:
            result = await resource.delete(
                victim.name,
                namespace=victim.namespace,
                grace_period_seconds=grace_period,
                propagation_policy=propagation,
            )
        except NotFoundError as error:
            if not ignore_not_found:
                click.echo(
                    server_error(error, action="deleting", source=victim.source)
                    if victim.source
                    else server_error(error),
                    err=True,
                )
                failed = True
            continue
        except ApiError as error:
            click.echo(server_error(error), err=True)
            failed = True
            continue
        click.echo(f'{kind_label(victim.info)} "{victim.name}" deleted')
        if wait and not result.removed:
            pending.append(victim)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    for victim in pending:
        gone = await wait_until_deleted(
            client.resource(victim.info.kind),
            victim.name,
            namespace=victim.namespace,
            timeout=None if deadline is None else max(deadline - loop.time(), 0.001),
        )
        if not gone:
            raise CliError(
                "error: timed out waiting for the condition on "
                f"{object_ref(victim.info, victim.name)}"
            )
    return failed
