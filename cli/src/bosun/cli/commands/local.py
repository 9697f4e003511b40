"""`local up|down|status|logs`: a cluster of supervised processes (see bosun.cli.localcluster).

`up` also writes a context for the cluster into the config file and makes it the current one,
as kind and minikube do, so that `bosunctl get pods` works right after.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import click

from bosun.cli.config import Context, save_config
from bosun.cli.errors import CliError
from bosun.cli.localcluster.components import COMPONENTS, Component, Settings, kubelet_runtime
from bosun.cli.localcluster.supervisor import (
    ClusterError,
    display_path,
    running_pid,
    start,
    status_rows,
    stop,
    wait_healthy,
)
from bosun.cli.printers import render_table
from bosun.cli.session import config_option, load_cli_config

__all__ = ["local"]

CONTEXT_NAME = "bosun-local"
_SETTINGS = "bosun.local.settings"
_ONLY = "bosun.local.only"


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.meta[_SETTINGS]
    return settings


def _components(ctx: click.Context) -> list[Component]:
    only: tuple[str, ...] = ctx.meta[_ONLY]
    return [c for c in COMPONENTS if not only or c.name in only]


@click.group()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=".bosun",
    envvar="BOSUN_STATE_DIR",
    show_default=True,
    help="Pid files, logs and etcd data (env BOSUN_STATE_DIR).",
)
@click.option("--etcd-client-port", type=click.IntRange(1, 65535), default=2379, show_default=True)
@click.option("--etcd-peer-port", type=click.IntRange(1, 65535), default=2380, show_default=True)
@click.option("--apiserver-port", type=click.IntRange(1, 65535), default=6443, show_default=True)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=9090,
    show_default=True,
    help="The apiserver's Prometheus port.",
)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice([c.name for c in COMPONENTS]),
    help="Act on this component only (repeatable).",
)
@click.pass_context
def local(
    ctx: click.Context,
    state_dir: Path,
    etcd_client_port: int,
    etcd_peer_port: int,
    apiserver_port: int,
    metrics_port: int,
    only: tuple[str, ...],
) -> None:
    """Run a cluster on this machine: etcd, the apiserver and every other component.

    \b
    Each is a process of its own, started in the background with its log in
    STATE_DIR/logs/; etcd keeps its data in STATE_DIR/etcd across restarts.
    """
    ctx.meta[_SETTINGS] = Settings(
        state_dir=state_dir.resolve(),
        etcd_client_port=etcd_client_port,
        etcd_peer_port=etcd_peer_port,
        apiserver_port=apiserver_port,
        metrics_port=metrics_port,
    )
    ctx.meta[_ONLY] = only


def _write_context(ctx: click.Context, settings: Settings) -> str:
    """Point the context `bosun-local` at this cluster and make it current; its config path."""
    config = load_cli_config(ctx)
    context = config.context(CONTEXT_NAME)
    if context is None:
        context = Context(CONTEXT_NAME, namespace="default")
        config.contexts.append(context)
    context.server = settings.apiserver_address
    config.current_context = CONTEXT_NAME
    save_config(config)
    return str(config.path)


def _print_status(settings: Settings, components: list[Component]) -> None:
    rows = [
        [row.component, row.state, str(row.pid or "-"), row.address, row.log]
        for row in status_rows(settings, components)
    ]
    click.echo(render_table(["COMPONENT", "STATE", "PID", "ADDRESS", "LOG"], rows))


def _next_steps(settings: Settings, config_file: str) -> str:
    data = display_path(settings.etcd_data_dir)
    return f"""
bosunctl now uses the context "{CONTEXT_NAME}" (in {config_file}). Try:
  bosunctl get nodes
  bosunctl apply -f <manifest.yaml>  # a Deployment, a Service, …
  bosunctl get pods -A -o wide
  dig @127.0.0.1 -p {settings.dns_port} <service>.<namespace>.svc.cluster.local
  bosunctl local status            # this table again
  bosunctl local logs -f           # follow every component's log
  curl -s http://127.0.0.1:{settings.metrics_port}/metrics | head
  bosunctl local down              # stop everything (the data in {data} stays)
(From the repository: `make status`, `make logs`, `make down`; bosunctl is .venv/bin/bosunctl.)"""


@local.command("up")
@config_option
@click.pass_context
def up(ctx: click.Context) -> None:
    """Start what is not running, wait until each is healthy, write the bosunctl context."""
    settings, components = _settings(ctx), _components(ctx)
    try:
        for component in list(components):
            reason = component.unavailable(settings)
            if reason is not None and running_pid(component, settings) is None:
                click.echo(f"{component.name}: skipped: {reason}", err=True)
                components.remove(component)
                continue
            pid = running_pid(component, settings)
            process = None
            if pid is not None:
                click.echo(f"{component.name}: already running (pid {pid})")
            else:
                was_dead = component.pid_file(settings).exists()
                process = start(component, settings)
                verb = "was dead, restarted" if was_dead else "started"
                click.echo(f"{component.name}: {verb} (pid {process.pid}), waiting until healthy")
                if component.name == "kubelet":
                    runtime, why = kubelet_runtime()
                    click.echo(f"kubelet: {runtime} runtime" + (f" ({why})" if why else ""))
            took = wait_healthy(component, settings, process)
            if process is not None:
                click.echo(f"{component.name}: healthy after {took:.1f}s")
    except ClusterError as error:
        raise CliError(f"error: {error}") from None
    config_file = _write_context(ctx, settings)
    click.echo()
    _print_status(settings, components)
    click.echo(_next_steps(settings, config_file))


@local.command("down")
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
@click.pass_context
def down(ctx: click.Context, grace: float) -> None:
    """Stop every component, last started first (SIGTERM, then SIGKILL after --grace)."""
    settings = _settings(ctx)
    for component in reversed(_components(ctx)):
        click.echo(f"{component.name}: {stop(component, settings, grace)}")


@local.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Show each component as up, unhealthy, down or skipped; exit 1 unless all that can run
    are up."""
    settings, components = _settings(ctx), _components(ctx)
    rows = status_rows(settings, components)
    _print_status(settings, components)
    if any(row.state not in ("up", "skipped") for row in rows):
        ctx.exit(1)


@local.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("-n", "--lines", type=click.IntRange(0), default=50, show_default=True)
@click.pass_context
def logs(ctx: click.Context, follow: bool, lines: int) -> None:
    """Print the last lines of each component's log (or follow them)."""
    settings = _settings(ctx)
    files = [str(c.log_file(settings)) for c in _components(ctx) if c.log_file(settings).exists()]
    if not files:
        click.echo(f"no logs yet in {display_path(settings.log_dir)} (bosunctl local up)")
        return
    command = ["tail", "-n", str(lines), *(["-F"] if follow else []), *files]
    with contextlib.suppress(KeyboardInterrupt):
        ctx.exit(subprocess.call(command, stdout=sys.stdout, env=os.environ))
