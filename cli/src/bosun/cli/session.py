"""Global flags, the connection they resolve to, and running one command's async work.

Connection flags (`--server`, `--context`, `-n`, `--token`, …) are accepted both before the
command (`bosunctl -n prod get pods`) and after it (`bosunctl get pods -n prod`), as kubectl
accepts them anywhere. Each flag's callback records the value in one `GlobalOptions` object on
the root click context, which every sub-context shares; a command then asks `session(ctx)` for
the resolved `Session` (flags over the config file's context over the defaults).

Every command runs its API calls in one `asyncio.run`: a fresh event loop and a fresh
`Client` per invocation. That keeps the CLI synchronous from click's point of view (and from a
test's, which runs it in a thread beside the apiserver's loop). Before the first call the
channel must connect: an apiserver that is not there is reported at once as "Unable to connect",
instead of every call waiting for it until its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc

from bosun.cli.config import (
    DEFAULT_NAMESPACE,
    DEFAULT_SERVER,
    Config,
    ConfigError,
    config_path,
    load_config,
)
from bosun.cli.durations import Duration
from bosun.cli.errors import CliError, ConnectError
from bosun.common.client import Client

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "GlobalOptions",
    "Session",
    "config_option",
    "connection_options",
    "load_cli_config",
    "run",
    "session",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CALL_TIMEOUT = 30.0


@dataclass
class GlobalOptions:
    config: str | None = None
    context: str | None = None
    server: str | None = None
    namespace: str | None = None
    token: str | None = None
    certificate_authority: str | None = None
    request_timeout: float | None = None


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and param.name is not None:
        setattr(ctx.ensure_object(GlobalOptions), param.name, value)
    return value


def config_option(function: F) -> F:
    """`--config PATH`, for commands (like `config …`) that take no connection flags."""
    return click.option(
        "--config",
        metavar="PATH",
        expose_value=False,
        callback=_store,
        help="Config file (default: $BOSUN_CONFIG or ~/.bosun/config).",
    )(function)


_CONNECTION_OPTIONS: tuple[Callable[[F], F], ...] = (
    click.option(
        "--request-timeout",
        type=Duration(),
        expose_value=False,
        callback=_store,
        help="Limit for each request, and for watches (30s, 2m; default 30s, watches unlimited).",
    ),
    click.option(
        "--certificate-authority",
        metavar="PATH",
        expose_value=False,
        callback=_store,
        help="PEM file of the CA that signed the apiserver's certificate (enables TLS).",
    ),
    click.option(
        "--token", metavar="TOKEN", expose_value=False, callback=_store, help="Bearer token."
    ),
    click.option(
        "-n",
        "--namespace",
        metavar="NS",
        expose_value=False,
        callback=_store,
        help="Namespace (default: the context's namespace, else default).",
    ),
    click.option(
        "--context", metavar="NAME", expose_value=False, callback=_store, help="Config context."
    ),
    click.option(
        "-s",
        "--server",
        metavar="HOST:PORT",
        expose_value=False,
        callback=_store,
        help=f"Apiserver address (default: the context's server, else {DEFAULT_SERVER}).",
    ),
    config_option,
)


def connection_options(function: F) -> F:
    for option in _CONNECTION_OPTIONS:
        function = option(function)
    return function


@dataclass(frozen=True)
class Session:
    """Where and how to talk to the apiserver, resolved from flags, config and defaults."""

    server: str
    namespace: str
    namespace_explicit: bool
    context_name: str
    token: str | None = None
    ca_cert: bytes | None = None
    request_timeout: float | None = None

    @property
    def call_timeout(self) -> float:
        return self.request_timeout or DEFAULT_CALL_TIMEOUT

    @property
    def watch_timeout(self) -> float | None:
        """Watches run until interrupted, unless --request-timeout bounds them."""
        return self.request_timeout or None

    def client(self) -> Client:
        return Client(
            self.server, token=self.token, ca_cert=self.ca_cert, timeout=self.call_timeout
        )


def _options(ctx: click.Context) -> GlobalOptions:
    found = ctx.find_object(GlobalOptions)
    return found if found is not None else GlobalOptions()


def load_cli_config(ctx: click.Context) -> Config:
    return load_config(config_path(_options(ctx).config))


def session(ctx: click.Context) -> Session:
    options = _options(ctx)
    try:
        config = load_config(config_path(options.config))
    except ConfigError as error:
        raise CliError(f"error: {error}") from None
    context_name = options.context or config.current_context
    context = config.context(context_name) if context_name else None
    if options.context and context is None:
        raise CliError(f'error: context "{options.context}" does not exist in {config.path}')
    server = options.server or (context.server if context else "") or DEFAULT_SERVER
    namespace = options.namespace or (context.namespace if context else "") or DEFAULT_NAMESPACE
    token = options.token or (context.token if context else "") or None
    # A CA path from the command line is relative to the working directory, one from the
    # config file to the file's directory.
    path: Path | None = None
    if options.certificate_authority:
        path = Path(options.certificate_authority).expanduser()
    elif context and context.certificate_authority:
        path = config.resolve_path(context.certificate_authority)
    ca_cert: bytes | None = None
    if path is not None:
        try:
            ca_cert = path.read_bytes()
        except OSError as error:
            raise CliError(
                f"error: cannot read certificate authority {path}: {error.strerror}"
            ) from None
    return Session(
        server=server,
        namespace=namespace,
        namespace_explicit=options.namespace is not None,
        context_name=context.name if context else "",
        token=token,
        ca_cert=ca_cert,
        request_timeout=options.request_timeout,
    )


async def ensure_connected(channel: grpc.aio.Channel, server: str, timeout: float) -> None:
    """Wait until `channel` is READY; ConnectError at its first failure or after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.READY:
        remaining = deadline - loop.time()
        if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE or remaining <= 0:
            raise ConnectError(
                f"Unable to connect to the server {server}: "
                + ("the connection failed" if remaining > 0 else f"no answer within {timeout:g}s")
                + " (is the apiserver running there? see --server, --context and"
                " `bosunctl config view`)"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
        state = channel.get_state(try_to_connect=True)


def run(current: Session, work: Callable[[Client], Awaitable[T]]) -> T:
    """Run `work(client)` on a fresh event loop with a connected client, then close it."""

    async def main() -> T:
        client = current.client()
        try:
            await ensure_connected(client.channel, current.server, current.call_timeout)
            return await work(client)
        finally:
            await client.close()

    return asyncio.run(main())
