"""One sync: desired rules from the current Services and Endpoints, written as a diff.

The syncer remembers the `Tables` it last wrote. A sync rewrites only the chains whose rules
differ from that, creates new ones and deletes the ones no longer wanted, in one batch. A full
sync (the first one, every `--sync-period`, and after any failed batch) instead reads which
BOSUN- chains the kernel holds, rewrites every wanted chain, deletes every other owned chain and
adds whichever of our jumps from the built-in chains are missing. That is what makes a restart
safe: rules a previous process left are replaced in place (traffic keeps flowing) and never
duplicated, and anything someone changed by hand in our chains is put right within a period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from bosun.api.v1 import core_pb2
from bosun.proxy.appliers import Applier
from bosun.proxy.iptables import Rule, Tables
from bosun.proxy.rules import JUMPS, RuleBuilder, ServicePortCache

__all__ = ["RuleSyncer", "SyncResult", "cleanup"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    full: bool
    written_chains: int
    deleted_chains: int
    rules: int
    seconds: float


def _rule_count(tables: Tables) -> int:
    return sum(len(rules) for chains in tables.values() for rules in chains.values())


class RuleSyncer:
    def __init__(
        self, applier: Applier, *, cluster_cidr: str = "", masquerade_all: bool = False
    ) -> None:
        self.applier = applier
        self.builder = RuleBuilder(cluster_cidr=cluster_cidr, masquerade_all=masquerade_all)
        self.ports = ServicePortCache()
        self.applied: Tables | None = None

    def sync(
        self,
        services: Iterable[core_pb2.Service],
        endpoints: Iterable[core_pb2.Endpoints],
        *,
        full: bool = False,
    ) -> SyncResult:
        began = time.perf_counter()
        desired = self.builder.tables(self.ports.ports(services, endpoints))
        full = full or self.applied is None
        changed: dict[str, dict[str, list[Rule]]] = {}
        deleted: dict[str, list[str]] = {}
        jumps: dict[str, list[tuple[str, Rule]]] = {}
        for table, chains in desired.items():
            if full:
                state = self.applier.table_state(table)
                changed[table] = dict(chains)
                deleted[table] = sorted(state.owned - set(chains))
                jumps[table] = _missing_jumps(table, state.comments)
            else:
                before = (self.applied or {}).get(table, {})
                # Unchanged ports' chains are the same list objects (see RuleBuilder): `is`
                # settles most of them without comparing rules.
                changed[table] = {
                    name: rules
                    for name, rules in chains.items()
                    if before.get(name) is not rules and before.get(name) != rules
                }
                deleted[table] = sorted(set(before) - set(chains))
        self.applied = None  # if the batch fails, the next sync is a full one
        self.applier.apply(changed, deleted, jumps)
        self.applied = desired
        return SyncResult(
            full=full,
            written_chains=sum(len(chains) for chains in changed.values()),
            deleted_chains=sum(len(names) for names in deleted.values()),
            rules=_rule_count(desired),
            seconds=time.perf_counter() - began,
        )


def _missing_jumps(table: str, comments: dict[str, list[str]]) -> list[tuple[str, Rule]]:
    """Our jumps from the table's built-in chains that are not there (found by comment)."""
    return [
        (builtin, rule)
        for jump_table, builtin, note, rule in JUMPS
        if jump_table == table and note not in comments.get(builtin, [])
    ]


def cleanup(applier: Applier) -> int:
    """Remove every jump and chain this proxy owns; the number of chains removed."""
    removed = 0
    for table in sorted({jump[0] for jump in JUMPS}):
        for jump_table, builtin, note, _ in JUMPS:
            if jump_table == table:
                applier.remove_jumps(table, builtin, {note})
        owned = sorted(applier.table_state(table).owned)
        applier.apply({}, {table: owned}, {})
        removed += len(owned)
    return removed
