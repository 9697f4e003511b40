"""`bosunctl`: the command group, error handling and the console-script entry point."""

from __future__ import annotations

import click
from opentelemetry import trace

from bosun.cli.commands.apply import apply, create, replace
from bosun.cli.commands.config import config
from bosun.cli.commands.delete import delete
from bosun.cli.commands.describe import describe
from bosun.cli.commands.events import events
from bosun.cli.commands.expose import expose
from bosun.cli.commands.get import get
from bosun.cli.commands.info import api_resources, client_version, version
from bosun.cli.commands.label import annotate, label
from bosun.cli.commands.local import local
from bosun.cli.commands.nodes import cordon, drain, uncordon
from bosun.cli.commands.podio import exec_, logs, top
from bosun.cli.commands.rollout import rollout
from bosun.cli.commands.scale import scale
from bosun.cli.commands.set_image import set_group
from bosun.cli.commands.wait import wait
from bosun.cli.errors import cli_errors
from bosun.cli.session import GlobalOptions, connection_options
from bosun.cli.telemetry import command_span

__all__ = ["cli", "main"]


class BosunGroup(click.Group):
    """Runs every command inside one error handler (see bosun.cli.errors) and trace span."""

    def invoke(self, ctx: click.Context) -> object:
        with command_span(), cli_errors():
            return super().invoke(ctx)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        # Only now is the command known: name the span that `invoke` opened after it.
        trace.get_current_span().update_name(f"bosunctl {name}")
        return name, command, rest


@click.group(
    cls=BosunGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(client_version(), "--version", prog_name="bosunctl")
@connection_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """bosunctl controls a Bosun cluster, as kubectl controls Kubernetes.

    \b
    Start with:
      bosunctl get pods                  list pods in the current namespace
      bosunctl apply -f app.yaml         create or update objects from manifests
      bosunctl describe pod web          details and events of one object
      bosunctl api-resources             the kinds you can use
    """
    ctx.ensure_object(GlobalOptions)


for command in (
    apply,
    create,
    replace,
    get,
    describe,
    delete,
    label,
    annotate,
    wait,
    events,
    api_resources,
    version,
    config,
    local,
    expose,
    logs,
    exec_,
    top,
    scale,
    rollout,
    set_group,
    cordon,
    uncordon,
    drain,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="bosunctl")
