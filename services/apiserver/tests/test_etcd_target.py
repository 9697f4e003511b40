"""How `--etcd-servers` endpoints become the gRPC target the apiserver dials."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from bosun.apiserver.etcd_target import Endpoint, parse_endpoint, resolve_target
from bosun.apiserver.main import parse_args


def target(*endpoints: str) -> str:
    return asyncio.run(resolve_target(endpoints))


def test_addresses_only_are_dialled_round_robin_as_ipv4() -> None:
    assert target("10.0.0.1:2379", "10.0.0.2:2379") == "ipv4:10.0.0.1:2379,10.0.0.2:2379"


def test_localhost_means_ipv4_loopback() -> None:
    assert target("localhost:2379") == "ipv4:127.0.0.1:2379"


def test_a_single_host_name_is_left_to_grpc_dns_resolution() -> None:
    assert target("etcd:2379") == "dns:///etcd:2379"


def test_url_form_of_the_kubernetes_flag_is_accepted() -> None:
    assert parse_endpoint("http://etcd-0.etcd:2379/") == Endpoint("etcd-0.etcd", 2379)


def test_ipv6_endpoints_keep_their_brackets() -> None:
    assert target("[::1]:2379") == "ipv6:[::1]:2379"


def test_several_endpoints_with_names_are_resolved_to_all_their_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    addresses = {"etcd-0": ["10.1.0.1", "10.1.0.2"]}

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in addresses[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert target("etcd-0:2379", "10.2.0.1:2379") == (
        "ipv4:10.1.0.1:2379,10.1.0.2:2379,10.2.0.1:2379"
    )


@pytest.mark.parametrize("bad", ["etcd", "etcd:", "etcd:http", ":2379", "etcd:70000"])
def test_an_endpoint_without_a_valid_port_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not host:port"):
        parse_endpoint(bad)


def test_the_flag_refuses_a_bad_endpoint_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--etcd-servers", "127.0.0.1:2379,etcd"])
    assert exit_info.value.code == 2
    assert "--etcd-servers" in capsys.readouterr().err


def test_the_flag_splits_a_comma_separated_list() -> None:
    args = parse_args(["--etcd-servers", "etcd-0:2379, etcd-1:2379"])
    assert args.etcd_servers == ["etcd-0:2379", "etcd-1:2379"]
