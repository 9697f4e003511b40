"""`cordon`, `uncordon`, `drain`: take a node out of scheduling, and empty it.

`drain` cordons the node, then deletes its pods, as kubectl's does (there is no eviction
subresource yet, so PodDisruptionBudgets are not consulted). Before deleting anything it
checks every pod, and refuses — leaving the node cordoned and every pod in place — when a pod
would be lost for good: one no controller will re-create (needs `--force`), a DaemonSet's
(its controller would put it straight back; `--ignore-daemonsets` skips them), one with
emptyDir data (`--delete-emptydir-data`). Mirror pods (static pods) are skipped. It then waits
until the deleted pods are gone (`--timeout`).
"""

from __future__ import annotations

import asyncio

import click

from bosun.api.v1 import core_pb2
from bosun.cli.errors import CliError
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import NotFoundError

__all__ = ["cordon", "drain", "drain_plan", "uncordon"]

MIRROR = "kubernetes.io/config.mirror"


async def _set_unschedulable(client: Client, name: str, value: bool) -> str:
    try:
        node = await client.nodes.get(name)
    except NotFoundError as error:
        raise CliError(f"Error from server (NotFound): {error.message}") from None
    if node.spec.unschedulable == value:
        return f"node/{name} already {'cordoned' if value else 'uncordoned'}"
    patch = {
        "metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"unschedulable": value},
    }
    await client.nodes.patch(name, patch)
    return f"node/{name} {'cordoned' if value else 'uncordoned'}"


@click.command()
@click.argument("node")
@connection_options
@click.pass_context
def cordon(ctx: click.Context, node: str) -> None:
    """Mark a node unschedulable."""
    click.echo(run(session(ctx), lambda client: _set_unschedulable(client, node, True)))


@click.command()
@click.argument("node")
@connection_options
@click.pass_context
def uncordon(ctx: click.Context, node: str) -> None:
    """Mark a node schedulable again."""
    click.echo(run(session(ctx), lambda client: _set_unschedulable(client, node, False)))


def _controller_kind(pod: core_pb2.Pod) -> str:
    for ref in pod.metadata.owner_references:
        if ref.controller:
            return str(ref.kind)
    return ""


def drain_plan(
    pods: list[core_pb2.Pod],
    *,
    force: bool,
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
) -> tuple[list[core_pb2.Pod], list[str]]:
    """(pods to delete, reasons the drain must stop); kubectl's pod filters."""
    delete: list[core_pb2.Pod] = []
    problems: list[str] = []
    for pod in pods:
        ref = f"{pod.metadata.namespace}/{pod.metadata.name}"
        if MIRROR in pod.metadata.annotations:
            continue
        finished = pod.status.phase in ("Succeeded", "Failed")
        kind = _controller_kind(pod)
        if kind == "DaemonSet" and not finished:
            if not ignore_daemonsets:
                problems.append(
                    f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets): {ref}"
                )
            continue
        if not kind and not finished and not force:
            problems.append(
                "cannot delete Pods that declare no controller (use --force to override): " + ref
            )
            continue
        if any(volume.HasField("empty_dir") for volume in pod.spec.volumes) and not (
            delete_emptydir_data or finished
        ):
            problems.append(
                f"cannot delete Pods with local storage (use --delete-emptydir-data): {ref}"
            )
            continue
        delete.append(pod)
    return delete, problems


@click.command()
@click.argument("node")
@click.option("--force", is_flag=True, help="Also delete pods no controller manages.")
@click.option("--ignore-daemonsets", is_flag=True, help="Leave DaemonSet pods in place.")
@click.option("--delete-emptydir-data", is_flag=True, help="Delete pods with emptyDir volumes.")
@click.option("--grace-period", type=int, default=-1, help="Seconds pods get (-1: their own).")
@click.option("--timeout", type=float, default=0, help="Seconds to wait (0: no limit).")
@connection_options
@click.pass_context
def drain(
    ctx: click.Context,
    node: str,
    force: bool,
    ignore_daemonsets: bool,
    delete_emptydir_data: bool,
    grace_period: int,
    timeout: float,
) -> None:
    """Cordon a node and delete its pods, so their controllers re-create them elsewhere."""
    current = session(ctx)

    async def work(client: Client) -> None:
        click.echo(await _set_unschedulable(client, node, True))
        listed = await client.pods.list(field_selector=f"spec.nodeName={node}")
        victims, problems = drain_plan(
            listed.items,
            force=force,
            ignore_daemonsets=ignore_daemonsets,
            delete_emptydir_data=delete_emptydir_data,
        )
        if problems:
            listing = "\n  ".join(problems)
            raise CliError(f'error: unable to drain node "{node}":\n  {listing}')
        for pod in victims:
            click.echo(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name}")
            try:
                await client.pods.delete(
                    pod.metadata.name,
                    namespace=pod.metadata.namespace,
                    uid=pod.metadata.uid,
                    grace_period_seconds=grace_period if grace_period >= 0 else None,
                )
            except NotFoundError:
                continue
        try:
            async with asyncio.timeout(timeout or None):
                for pod in victims:
                    await _wait_gone(client, pod)
                    click.echo(f"pod/{pod.metadata.name} evicted")
        except TimeoutError:
            raise CliError(f"error: timed out waiting for the pods of node {node} to go") from None
        click.echo(f"node/{node} drained")

    run(current, work)


async def _wait_gone(client: Client, pod: core_pb2.Pod) -> None:
    while True:
        try:
            current = await client.pods.get(pod.metadata.name, namespace=pod.metadata.namespace)
        except NotFoundError:
            return
        if current.metadata.uid != pod.metadata.uid:
            return
        await asyncio.sleep(0.2)
