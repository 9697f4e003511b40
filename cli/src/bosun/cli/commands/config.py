"""`config`: read and edit the config file's contexts (see bosun.cli.config for its shape)."""

from __future__ import annotations

import click

from bosun.cli.config import DEFAULT_NAMESPACE, DEFAULT_SERVER, Config, Context, save_config
from bosun.cli.errors import CliError
from bosun.cli.printers import dump_yaml, render_table
from bosun.cli.session import config_option, load_cli_config

__all__ = ["config"]


def _load(ctx: click.Context) -> Config:
    return load_cli_config(ctx)


@click.group()
@config_option
def config() -> None:
    """Show or change contexts (server, credentials, namespace)."""


@config.command("view")
@click.option("--raw", is_flag=True, help="Show tokens instead of REDACTED.")
@click.option("--minify", is_flag=True, help="Only the current context.")
@config_option
@click.pass_context
def view(ctx: click.Context, raw: bool, minify: bool) -> None:
    """Print the config file (tokens redacted)."""
    current = _load(ctx)
    if minify and not current.current_context:
        raise CliError("error: current-context is not set")
    document = current.to_dict(redact=not raw, only=current.current_context if minify else None)
    click.echo(dump_yaml(document).rstrip("\n"))


@config.command("current-context")
@config_option
@click.pass_context
def current_context(ctx: click.Context) -> None:
    """Print the name of the current context."""
    current = _load(ctx)
    if not current.current_context:
        raise CliError("error: current-context is not set")
    click.echo(current.current_context)


@config.command("use-context")
@click.argument("name")
@config_option
@click.pass_context
def use_context(ctx: click.Context, name: str) -> None:
    """Make NAME the current context."""
    current = _load(ctx)
    if current.context(name) is None:
        raise CliError(f'error: no context exists with the name: "{name}"')
    current.current_context = name
    save_config(current)
    click.echo(f'Switched to context "{name}".')


@config.command("set-context")
@click.argument("name", required=False)
@click.option("--current", "use_current", is_flag=True, help="Change the current context.")
@click.option("--server", help=f"Apiserver address (HOST:PORT; default {DEFAULT_SERVER}).")
@click.option("--namespace", help=f"Default namespace (default {DEFAULT_NAMESPACE}).")
@click.option("--certificate-authority", metavar="PATH", help="CA file (PEM); enables TLS.")
@click.option("--token", help="Bearer token.")
@config_option
@click.pass_context
def set_context(
    ctx: click.Context,
    name: str | None,
    use_current: bool,
    server: str | None,
    namespace: str | None,
    certificate_authority: str | None,
    token: str | None,
) -> None:
    """Create context NAME, or change the fields given (an empty value unsets one)."""
    current = _load(ctx)
    if use_current:
        if name:
            raise click.UsageError("give either NAME or --current")
        if not current.current_context:
            raise CliError("error: current-context is not set")
        name = current.current_context
    if not name:
        raise click.UsageError("missing context NAME (or --current)")
    context = current.context(name)
    created = context is None
    if context is None:
        context = Context(name)
        current.contexts.append(context)
    if server is not None:
        context.server = server
    if namespace is not None:
        context.namespace = namespace
    if certificate_authority is not None:
        context.certificate_authority = certificate_authority
    if token is not None:
        context.token = token
    save_config(current)
    click.echo(f'Context "{name}" {"created" if created else "modified"}.')


@config.command("delete-context")
@click.argument("name")
@config_option
@click.pass_context
def delete_context(ctx: click.Context, name: str) -> None:
    """Remove context NAME."""
    current = _load(ctx)
    context = current.context(name)
    if context is None:
        raise CliError(f"error: cannot delete context {name}, not in {current.path}")
    current.contexts.remove(context)
    if current.current_context == name:
        current.current_context = ""
        click.echo(
            "warning: this removed your active context, use `bosunctl config use-context` "
            "to select a different one",
            err=True,
        )
    save_config(current)
    click.echo(f"deleted context {name} from {current.path}")


@config.command("get-contexts")
@config_option
@click.pass_context
def get_contexts(ctx: click.Context) -> None:
    """List the contexts; the current one is marked with *."""
    current = _load(ctx)
    rows = [
        [
            "*" if context.name == current.current_context else "",
            context.name,
            context.server or DEFAULT_SERVER,
            context.namespace or "",
        ]
        for context in current.contexts
    ]
    click.echo(render_table(["CURRENT", "NAME", "SERVER", "NAMESPACE"], rows))
