"""--apiserver, --token-file and --ca-cert-file, as every component reads them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bosun.common.apiflags import add_apiserver_arguments, read_credentials


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_apiserver_arguments(parser)
    return parser.parse_args(argv)


def test_without_files_there_is_no_token_and_no_tls() -> None:
    args = parse()
    assert args.apiserver == "127.0.0.1:6443"
    credentials = read_credentials(args)
    assert (credentials.token, credentials.ca_cert) == (None, None)


def test_the_token_file_is_read_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "ca.pem").write_bytes(b"PEM")
    credentials = read_credentials(
        parse("--token-file", str(tmp_path / "token"), "--ca-cert-file", str(tmp_path / "ca.pem"))
    )
    assert (credentials.token, credentials.ca_cert) == ("s3cret", b"PEM")


def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SystemExit, match=str(missing)):
        read_credentials(parse("--token-file", str(missing)))
