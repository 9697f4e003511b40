"""What bosunctl prints when something fails, and with which exit code.

Expected failures never show a traceback. They take two shapes, as kubectl's do:

    error: bad.yaml (document 2): Pod "web": spec.containers[0].imagePullPolcy: unknown field
    Error from server (NotFound): pods "web" not found

The first for what the client itself refuses (a bad manifest, an unknown kind, a missing
context), the second for a request the apiserver refused, with the server's own message and a
reason named after the error class (NotFound, AlreadyExists, Conflict, Invalid, …). Both exit 1;
click's usage errors exit 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
import grpc

from bosun.cli.config import ConfigError
from bosun.common.errors import ApiError
from bosun.common.kinds import UnknownKindError
from bosun.common.manifest import ManifestError
from bosun.common.selectors import SelectorError

__all__ = [
    "CliError",
    "ConnectError",
    "PartialFailure",
    "api_error_reason",
    "cli_errors",
    "server_error",
]


class CliError(click.ClickException):
    """A failure shown as-is (no "Error: " prefix added by click), exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), err=True)


class ConnectError(CliError):
    """The apiserver cannot be reached."""


class PartialFailure(CliError):
    """Some items failed and their errors were already printed: exit 1 without a message."""

    def __init__(self) -> None:
        super().__init__("")

    def show(self, file: IO[Any] | None = None) -> None:
        pass


def _camel(code: grpc.StatusCode) -> str:
    return "".join(part.capitalize() for part in code.name.split("_"))


def api_error_reason(error: ApiError) -> str:
    """NotFoundError -> "NotFound"; a plain ApiError is named after its status code."""
    name = type(error).__name__
    if type(error) is ApiError or not name.endswith("Error"):
        return _camel(error.code)
    return name.removesuffix("Error")


def server_error(error: ApiError, *, action: str = "", source: str = "") -> str:
    """`Error from server (Reason): [error when <action> "<source>": ]message`."""
    context = f'error when {action} "{source}": ' if action and source else ""
    return f"Error from server ({api_error_reason(error)}): {context}{error.message}"


def client_error(error: Exception) -> str:
    return f"error: {error}"


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn the library's expected exceptions into CliErrors (one place for all commands)."""
    try:
        yield
    except ApiError as error:
        raise CliError(server_error(error)) from None
    except (ManifestError, SelectorError, ConfigError, UnknownKindError) as error:
        raise CliError(client_error(error)) from None
    except OSError as error:  # a file that cannot be read or written (the config, a manifest)
        where = f" {error.filename}" if error.filename else ""
        raise CliError(f"error:{where}: {error.strerror or error}") from None
