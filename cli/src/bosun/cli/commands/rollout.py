"""`rollout status|history|undo|pause|resume|restart` for Deployments, as kubectl's.

Everything here is client-side, as in Kubernetes' apps/v1: the controller-manager rolls out
whatever template the Deployment has, so

* `undo` copies the template of the ReplicaSet with the wanted revision (the previous one by
  default) back into the Deployment — the controller then re-uses that ReplicaSet;
* `pause` / `resume` flip `spec.paused`;
* `restart` stamps `kubectl.kubernetes.io/restartedAt` on the pod template, which makes the
  template new and so rolls every pod;
* `status` follows the Deployment until its rollout is complete (or has exceeded its progress
  deadline: exit code 1).

Writes carry the resourceVersion that was read, so a concurrent change is a conflict, not a
silent overwrite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from bosun.api.v1 import apps_pb2, core_pb2
from bosun.cli.errors import CliError
from bosun.cli.session import connection_options, run, session
from bosun.common.client import Client
from bosun.common.errors import NotFoundError

__all__ = ["rollback_template", "rollout", "rollout_message"]

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _deployment_name(resource: str, name: str | None) -> str:
    kind, slash, rest = resource.partition("/")
    if slash:
        if name:
            raise click.UsageError("give either deployment/NAME or deployment NAME")
        name = rest
    if kind.lower() not in ("deployment", "deployments", "deploy", "deployment.apps"):
        raise CliError(f'error: rollout supports deployments only, not "{kind}"')
    if not name:
        raise click.UsageError("name a deployment")
    return name


def _revision(rs: apps_pb2.ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


async def _owned_sets(client: Client, deployment: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    listed = await client.replica_sets.list(namespace=deployment.metadata.namespace)
    return [
        rs
        for rs in listed.items
        if any(
            ref.uid == deployment.metadata.uid and ref.controller
            for ref in rs.metadata.owner_references
        )
    ]


def rollback_template(
    deployment: apps_pb2.Deployment, sets: Sequence[apps_pb2.ReplicaSet], to_revision: int = 0
) -> core_pb2.PodTemplateSpec:
    """The template `undo` restores: revision `to_revision`, or the one before the current."""
    by_revision = sorted(sets, key=_revision)
    if to_revision:
        for rs in by_revision:
            if _revision(rs) == to_revision:
                break
        else:
            raise CliError(f"error: unable to find specified revision {to_revision} in history")
    else:
        if len(by_revision) < 2:
            raise CliError("error: no rollout history found for deployment")
        current = int(deployment.metadata.annotations.get(REVISION, "0") or 0)
        earlier = [rs for rs in by_revision if _revision(rs) != current]
        if not earlier:
            raise CliError("error: no previous revision to roll back to")
        rs = earlier[-1]
    template = core_pb2.PodTemplateSpec()
    template.CopyFrom(rs.spec.template)
    template.metadata.labels.pop(POD_TEMPLATE_HASH, None)
    return template


def rollout_message(deployment: apps_pb2.Deployment) -> tuple[str, bool]:
    """(what kubectl prints, whether the rollout is done); CliError past the deadline."""
    name = deployment.metadata.name
    status = deployment.status
    if deployment.metadata.generation > status.observed_generation:
        return "Waiting for deployment spec update to be observed...", False
    for condition in status.conditions:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            raise CliError(f'error: deployment "{name}" exceeded its progress deadline')
    replicas = deployment.spec.replicas
    if status.updated_replicas < replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {status.updated_replicas} '
            f"out of {replicas} new replicas have been updated...",
            False,
        )
    if status.replicas > status.updated_replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{status.replicas - status.updated_replicas} old replicas are pending termination...",
            False,
        )
    if status.available_replicas < status.updated_replicas:
        return (
            f'Waiting for deployment "{name}" rollout to finish: {status.available_replicas} '
            f"of {status.updated_replicas} updated replicas are available...",
            False,
        )
    return f'deployment "{name}" successfully rolled out', True


@click.group()
def rollout() -> None:
    """Manage the rollout of a deployment: status, history, undo, pause, resume, restart."""


_resource = click.argument("resource", metavar="deployment/NAME | deployment")
_name = click.argument("name", required=False)


@rollout.command("status")
@_resource
@_name
@click.option(
    "-w", "--watch", type=click.BOOL, default=True, help="Wait until the rollout finishes."
)
@click.option("--timeout", type=float, default=0, help="Seconds to wait (0: no limit).")
@connection_options
@click.pass_context
def status_command(
    ctx: click.Context, resource: str, name: str | None, watch: bool, timeout: float
) -> None:
    """Show a rollout's progress; with --watch (the default), until it is done."""
    deployment_name = _deployment_name(resource, name)
    current = session(ctx)

    async def work(client: Client) -> None:
        last = ""
        async with asyncio.timeout(timeout or None):
            while True:
                deployment = await client.deployments.get(
                    deployment_name, namespace=current.namespace
                )
                message, done = rollout_message(deployment)
                if message != last:
                    click.echo(message)
                    last = message
                if done or not watch:
                    return
                await asyncio.sleep(0.5)

    try:
        run(current, work)
    except TimeoutError:
        raise CliError("error: timed out waiting for the condition") from None


@rollout.command("history")
@_resource
@_name
@click.option("--revision", type=int, default=0, help="Show the template of one revision.")
@connection_options
@click.pass_context
def history_command(ctx: click.Context, resource: str, name: str | None, revision: int) -> None:
    """List a deployment's revisions (ReplicaSets) with their change causes."""
    deployment_name = _deployment_name(resource, name)
    current = session(ctx)

    async def work(client: Client) -> None:
        deployment = await client.deployments.get(deployment_name, namespace=current.namespace)
        sets = sorted(await _owned_sets(client, deployment), key=_revision)
        if revision:
            for rs in sets:
                if _revision(rs) == revision:
                    template = rs.spec.template
                    click.echo(f"deployment.apps/{deployment_name} with revision #{revision}")
                    click.echo("Pod Template:")
                    click.echo(f"  Labels: {dict(template.metadata.labels)}")
                    for container in template.spec.containers:
                        click.echo(f"  Container {container.name}: image {container.image}")
                    return
            raise CliError(f"error: unable to find the specified revision {revision}")
        click.echo(f"deployment.apps/{deployment_name}")
        click.echo(f"{'REVISION':<10}CHANGE-CAUSE")
        for rs in sets:
            cause = rs.metadata.annotations.get(CHANGE_CAUSE, "<none>")
            click.echo(f"{_revision(rs):<10}{cause}")

    run(current, work)


@rollout.command("undo")
@_resource
@_name
@click.option("--to-revision", type=int, default=0, help="Revision to go back to (0: previous).")
@connection_options
@click.pass_context
def undo_command(ctx: click.Context, resource: str, name: str | None, to_revision: int) -> None:
    """Roll back to the previous (or a given) revision's pod template."""
    deployment_name = _deployment_name(resource, name)
    current = session(ctx)

    async def work(client: Client) -> str:
        deployment = await client.deployments.get(deployment_name, namespace=current.namespace)
        template = rollback_template(deployment, await _owned_sets(client, deployment), to_revision)
        if template == deployment.spec.template:
            return (
                f"deployment.apps/{deployment_name} skipped rollback "
                "(current template already matches the target revision)"
            )
        deployment.spec.template.CopyFrom(template)
        await client.deployments.update(deployment)
        return f"deployment.apps/{deployment_name} rolled back"

    click.echo(run(current, work))


def _patch_command(verb: str, patch: dict[str, object], done: str, help_text: str) -> None:
    @rollout.command(verb, help=help_text)
    @_resource
    @_name
    @connection_options
    @click.pass_context
    def command(ctx: click.Context, resource: str, name: str | None) -> None:
        deployment_name = _deployment_name(resource, name)
        current = session(ctx)

        async def work(client: Client) -> str:
            try:
                before = await client.deployments.get(deployment_name, namespace=current.namespace)
            except NotFoundError as error:
                raise CliError(f"Error from server (NotFound): {error.message}") from None
            wanted = patch.get("paused")
            if wanted is not None and before.spec.paused == wanted:
                return f"deployment.apps/{deployment_name} is already {done}"
            body: dict[str, object] = {
                "metadata": {"resourceVersion": before.metadata.resource_version},
                "spec": patch if wanted is not None else _restart_patch(),
            }
            await client.deployments.patch(deployment_name, body, namespace=current.namespace)
            return f"deployment.apps/{deployment_name} {done}"

        click.echo(run(current, work))


def _restart_patch() -> dict[str, object]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}


_patch_command("pause", {"paused": True}, "paused", "Pause a deployment's rollouts.")
_patch_command("resume", {"paused": False}, "resumed", "Resume a paused deployment.")
_patch_command("restart", {}, "restarted", "Restart every pod of a deployment (a new rollout).")
