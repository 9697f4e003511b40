"""What a sync writes: everything on a full sync, only the difference otherwise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from bosun.api.v1 import core_pb2
from bosun.proxy.appliers import ApplyError, TableState
from bosun.proxy.iptables import Rule, split_rule
from bosun.proxy.rules import JUMPS
from bosun.proxy.syncer import RuleSyncer, cleanup


class FakeApplier:
    """Holds chains per table as the kernel would; records every batch."""

    def __init__(self) -> None:
        self.chains: dict[str, dict[str, list[Rule]]] = {"nat": {}, "filter": {}}
        self.jumps: dict[tuple[str, str], list[str]] = {}
        self.batches: list[tuple[dict[str, list[str]], dict[str, list[str]], int]] = []
        self.fail_next = False

    def table_state(self, table: str) -> TableState:
        comments = {chain: list(c) for (t, chain), c in self.jumps.items() if t == table}
        return TableState(set(self.chains[table]), comments)

    def apply(
        self,
        changed: Mapping[str, Mapping[str, Sequence[Rule]]],
        deleted: Mapping[str, Sequence[str]],
        jumps: Mapping[str, Sequence[tuple[str, Rule]]],
    ) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ApplyError("refused")
        for table, chains in changed.items():
            self.chains[table].update({name: list(rules) for name, rules in chains.items()})
        for table, names in deleted.items():
            for name in names:
                self.chains[table].pop(name, None)
        for table, added in jumps.items():
            for builtin, rule in added:
                note = split_rule(rule)[split_rule(rule).index("--comment") + 1]
                self.jumps.setdefault((table, builtin), []).append(note)
        self.batches.append(
            (
                {t: sorted(c) for t, c in changed.items()},
                {t: list(n) for t, n in deleted.items()},
                sum(len(a) for a in jumps.values()),
            )
        )

    def remove_jumps(self, table: str, chain: str, comments: set[str]) -> None:
        kept = [c for c in self.jumps.get((table, chain), []) if c not in comments]
        self.jumps[(table, chain)] = kept


def service(name: str, ip: str) -> core_pb2.Service:
    svc = core_pb2.Service()
    svc.metadata.name, svc.metadata.namespace = name, "default"
    svc.spec.cluster_ip, svc.spec.type = ip, "ClusterIP"
    svc.spec.ports.add(port=80, protocol="TCP")
    return svc


def endpoints(name: str, *ips: str) -> core_pb2.Endpoints:
    obj = core_pb2.Endpoints()
    obj.metadata.name, obj.metadata.namespace = name, "default"
    subset = obj.subsets.add()
    for ip in ips:
        subset.addresses.add(ip=ip)
    subset.ports.add(port=8080, protocol="TCP")
    return obj


SERVICES = [service("a", "10.96.0.1"), service("b", "10.96.0.2")]


def test_the_first_sync_writes_every_chain_and_every_jump() -> None:
    applier = FakeApplier()
    result = RuleSyncer(applier).sync(SERVICES, [endpoints("a", "10.0.0.1")])
    assert result.full
    assert applier.batches[0][2] == len(JUMPS)
    assert result.written_chains == len(applier.chains["nat"]) + len(applier.chains["filter"])


def test_a_later_sync_writes_only_the_chains_that_changed() -> None:
    applier = FakeApplier()
    syncer = RuleSyncer(applier)
    syncer.sync(SERVICES, [endpoints("a", "10.0.0.1")])

    result = syncer.sync(SERVICES, [endpoints("a", "10.0.0.1", "10.0.0.2")])

    changed, deleted, jumps = applier.batches[-1]
    assert not result.full
    assert jumps == 0
    assert len(changed["nat"]) == 2  # a's service chain and its new endpoint chain
    assert changed["filter"] == []
    assert deleted == {"nat": [], "filter": []}


def test_chains_no_longer_wanted_are_deleted() -> None:
    applier = FakeApplier()
    syncer = RuleSyncer(applier)
    syncer.sync(SERVICES, [endpoints("a", "10.0.0.1", "10.0.0.2")])
    syncer.sync(SERVICES, [endpoints("a", "10.0.0.1")])
    assert len(applier.batches[-1][1]["nat"]) == 1


def test_a_restarted_syncer_removes_stale_chains_and_adds_no_second_jump() -> None:
    applier = FakeApplier()
    RuleSyncer(applier).sync(SERVICES, [endpoints("a", "10.0.0.1", "10.0.0.2")])

    RuleSyncer(applier).sync(SERVICES, [endpoints("a", "10.0.0.1")])

    assert applier.batches[-1][2] == 0
    assert all(len(comments) == 1 for comments in applier.jumps.values())
    assert len(applier.batches[-1][1]["nat"]) == 1


def test_after_a_refused_batch_the_next_sync_is_full() -> None:
    applier = FakeApplier()
    syncer = RuleSyncer(applier)
    syncer.sync(SERVICES, [])
    applier.fail_next = True
    with pytest.raises(ApplyError):
        syncer.sync(SERVICES, [endpoints("a", "10.0.0.1")])

    assert syncer.sync(SERVICES, [endpoints("a", "10.0.0.1")]).full


def test_cleanup_removes_every_owned_chain_and_jump() -> None:
    applier = FakeApplier()
    RuleSyncer(applier).sync(SERVICES, [endpoints("a", "10.0.0.1")])
    cleanup(applier)
    assert applier.chains == {"nat": {}, "filter": {}}
    assert all(comments == [] for comments in applier.jumps.values())
