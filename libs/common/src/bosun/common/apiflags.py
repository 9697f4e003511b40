"""The flags every component uses to reach the apiserver, and reading them.

    add_apiserver_arguments(parser)        # --apiserver, --token-file, --ca-cert-file
    credentials = read_credentials(args)   # the token and CA, read once at start

The token comes from a file, never from the command line, so it does not show in `ps`; a CA
certificate switches the connection to TLS. A file that cannot be read is a usage error naming
the flag and the file.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Credentials", "add_apiserver_arguments", "read_credentials"]


@dataclass(frozen=True)
class Credentials:
    token: str | None
    ca_cert: bytes | None


def add_apiserver_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("apiserver")
    group.add_argument("--apiserver", default="127.0.0.1:6443", help="apiserver host:port")
    group.add_argument("--token-file", type=Path, help="file with a bearer token for the apiserver")
    group.add_argument(
        "--ca-cert-file", type=Path, help="CA certificate: talk TLS to the apiserver"
    )


def read_credentials(args: argparse.Namespace) -> Credentials:
    """The token and CA the flags name; SystemExit (status 2) naming the file if unreadable."""
    try:
        token = args.token_file.read_text().strip() if args.token_file else None
        ca_cert = args.ca_cert_file.read_bytes() if args.ca_cert_file else None
    except OSError as error:
        raise SystemExit(f"error: cannot read {error.filename}: {error.strerror}") from None
    return Credentials(token or None, ca_cert)
