"""The rules the proxy wants for given Services and Endpoints (no kernel involved)."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.proxy.iptables import Rule, quote, restore_text, split_rule
from bosun.proxy.rules import (
    MARK_MASQ,
    NODEPORTS,
    SERVICES,
    RuleBuilder,
    desired_tables,
    service_ports,
)


def service(
    name: str,
    *,
    cluster_ip: str = "10.96.0.10",
    type: str = "ClusterIP",
    ports: tuple[tuple[str, int, int], ...] = (("", 80, 0),),
    affinity: bool = False,
) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.cluster_ip, svc.spec.type = cluster_ip, type
    for port_name, port, node_port in ports:
        svc.spec.ports.add(name=port_name, port=port, protocol="TCP", node_port=node_port)
    if affinity:
        svc.spec.session_affinity = "ClientIP"
        svc.spec.session_affinity_config.client_ip.timeout_seconds = 30
    return svc


def endpoints(
    name: str,
    ready: list[str],
    *,
    not_ready: list[str] = (),
    port_name: str = "",  # type: ignore[assignment]
) -> core_pb2.Endpoints:
    obj = core_pb2.Endpoints()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    subset = obj.subsets.add()
    for ip in ready:
        subset.addresses.add(ip=ip)
    for ip in not_ready:
        subset.not_ready_addresses.add(ip=ip)
    subset.ports.add(name=port_name, port=8080, protocol="TCP")
    return obj


def nat_for(svc: core_pb2.Service, eps: core_pb2.Endpoints | None = None) -> dict[str, list[Rule]]:
    return desired_tables(service_ports([svc], [eps] if eps else []))["nat"]


def test_n_endpoints_are_chosen_with_probabilities_one_in_n_then_n_minus_one() -> None:
    svc = service("web")
    eps = endpoints("web", ["10.0.0.3", "10.0.0.1", "10.0.0.2"])
    (port,) = service_ports([svc], [eps])
    rules = nat_for(svc, eps)[port.chain]
    assert [rule.split("--probability ")[1].split()[0] for rule in rules[:2]] == [
        "0.33333333333",
        "0.50000000000",
    ]
    assert "statistic" not in rules[2]  # the last endpoint takes whatever is left
    assert [rule.split("-j ")[1] for rule in rules] == [
        port.endpoint_chain(endpoint) for endpoint in port.endpoints
    ]


def test_each_endpoint_chain_dnats_to_its_pod_and_marks_hairpin_traffic() -> None:
    svc = service("web")
    eps = endpoints("web", ["10.0.0.1"])
    (port,) = service_ports([svc], [eps])
    masq, dnat = nat_for(svc, eps)[port.endpoint_chain(port.endpoints[0])]
    assert masq.startswith("-s 10.0.0.1/32 ")
    assert masq.endswith(f"-j {MARK_MASQ}")
    assert dnat.endswith("-j DNAT --to-destination 10.0.0.1:8080")


def test_a_service_without_ready_endpoints_is_rejected_in_the_filter_table() -> None:
    svc = service("web")
    tables = desired_tables(service_ports([svc], [endpoints("web", [], not_ready=["10.0.0.1"])]))
    (reject,) = tables["filter"][SERVICES]
    assert reject.startswith("-d 10.96.0.10/32 -p tcp ")
    assert '--comment "default/web has no endpoints"' in reject
    assert reject.endswith("-j REJECT")
    assert [rule.split("-j ")[1] for rule in tables["nat"][SERVICES]] == [NODEPORTS]


def test_not_ready_addresses_get_no_traffic() -> None:
    (port,) = service_ports(
        [service("web")], [endpoints("web", ["10.0.0.1"], not_ready=["10.0.0.2"])]
    )
    assert [endpoint.ip for endpoint in port.endpoints] == ["10.0.0.1"]


def test_named_service_ports_take_the_endpoint_ports_of_the_same_name() -> None:
    svc = service("web", ports=(("http", 80, 0), ("metrics", 9090, 0)))
    (http, metrics) = service_ports([svc], [endpoints("web", ["10.0.0.1"], port_name="http")])
    assert [e.port for e in http.endpoints] == [8080]
    assert metrics.endpoints == ()


def test_node_ports_mark_for_masquerade_then_jump_to_the_service() -> None:
    svc = service("web", type="NodePort", ports=(("", 80, 30080),))
    eps = endpoints("web", ["10.0.0.1"])
    (port,) = service_ports([svc], [eps])
    rules = nat_for(svc, eps)[NODEPORTS]
    assert [rule.split("-j ")[1] for rule in rules] == [MARK_MASQ, port.chain]
    assert all("-m tcp --dport 30080 " in rule for rule in rules)


def test_client_ip_affinity_checks_recent_clients_before_choosing_at_random() -> None:
    svc = service("web", affinity=True)
    eps = endpoints("web", ["10.0.0.1", "10.0.0.2"])
    (port,) = service_ports([svc], [eps])
    rules = nat_for(svc, eps)[port.chain]
    sticky = [rule for rule in rules if "-m recent --rcheck --seconds 30 --reap" in rule]
    assert len(sticky) == 2
    assert rules.index(sticky[-1]) < min(i for i, r in enumerate(rules) if "statistic" in r)
    dnat = nat_for(svc, eps)[port.endpoint_chain(port.endpoints[0])][1]
    assert f"-m recent --set --name {port.endpoint_chain(port.endpoints[0])} " in dnat


def test_headless_and_external_name_services_get_no_rules() -> None:
    headless = service("headless", cluster_ip="None")
    external = service("external", cluster_ip="", type="ExternalName")
    assert service_ports([headless, external], []) == []


def test_chain_names_are_stable_and_fit_iptables() -> None:
    (first,) = service_ports([service("a-rather-long-service-name")], [])
    (again,) = service_ports([service("a-rather-long-service-name")], [])
    assert first.chain == again.chain
    assert len(first.chain) <= 28
    assert first.chain.startswith("BOSUN-SVC-")


def test_a_cluster_cidr_masquerades_traffic_from_outside_the_pod_network() -> None:
    svc = service("web")
    eps = endpoints("web", ["10.0.0.1"])
    ports = service_ports([svc], [eps])
    rules = desired_tables(ports, cluster_cidr="10.244.0.0/16")["nat"][ports[0].chain]
    assert split_rule(rules[0])[:3] == ["!", "-s", "10.244.0.0/16"]
    assert rules[0].endswith(f"-j {MARK_MASQ}")


def test_large_clusters_drop_comments_from_service_and_endpoint_chains() -> None:
    svc = service("web")
    eps = endpoints("web", ["10.0.0.1", "10.0.0.2"])
    ports = service_ports([svc], [eps])
    small = RuleBuilder().tables(ports)["nat"]
    large = RuleBuilder(large_cluster_endpoints=1).tables(ports)["nat"]
    assert "comment" in small[ports[0].chain][0]
    assert all("comment" not in rule for rule in large[ports[0].chain])
    assert "comment" in large[SERVICES][0]  # service rules keep theirs


def test_an_unchanged_port_reuses_its_chains_from_the_last_build() -> None:
    builder = RuleBuilder()
    ports = service_ports([service("web")], [endpoints("web", ["10.0.0.1"])])
    first = builder.tables(ports)["nat"][ports[0].chain]
    assert builder.tables(ports)["nat"][ports[0].chain] is first


def test_restore_input_quotes_with_double_quotes() -> None:
    assert quote("default/web has no endpoints") == '"default/web has no endpoints"'
    assert quote('say "hi"') == r'"say \"hi\""'
    assert quote("10.0.0.1/32") == "10.0.0.1/32"
    rule: Rule = '-m comment --comment "a b" -j ACCEPT'
    assert split_rule(rule) == ["-m", "comment", "--comment", "a b", "-j", "ACCEPT"]
    text = restore_text({"nat": {"BOSUN-X": [rule]}}, {"nat": ["BOSUN-Y"]})
    assert text.splitlines() == [
        "*nat",
        ":BOSUN-X - [0:0]",
        ":BOSUN-Y - [0:0]",
        '-A BOSUN-X -m comment --comment "a b" -j ACCEPT',
        "-X BOSUN-Y",
        "COMMIT",
    ]
