"""Writing rules into the kernel: two interchangeable ways, each one transaction per sync.

`RestoreApplier` feeds one `iptables-restore --noflush` run (every table, one commit each, as
modern kube-proxy does); `IptcApplier` builds the same changes with python-iptables on its
libiptc handles, with autocommit off and one `commit()` per table. Either way no half-programmed
state is ever visible: the kernel swaps each table's rules at once.

Both speak the legacy xtables interface (python-iptables only has that one), so the restore
applier prefers `iptables-legacy-restore` where both backends are installed: mixing backends
would put the proxy's rules into a table nobody else reads.

An applier only ever touches chains named BOSUN-… and the jump rules it added to built-in chains
(recognised by their comments); everything else in the tables is left as it is.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bosun.proxy.iptables import Rule, restore_text, split_rule
from bosun.proxy.rules import CHAIN_PREFIX

__all__ = [
    "Applier",
    "ApplyError",
    "IptcApplier",
    "RestoreApplier",
    "TableState",
    "iptables_command",
]

Changes = Mapping[str, Mapping[str, Sequence[Rule]]]
Deletions = Mapping[str, Sequence[str]]
Jumps = Mapping[str, Sequence[tuple[str, Rule]]]


class ApplyError(RuntimeError):
    """The kernel refused a batch; nothing of it was applied."""


@dataclass(frozen=True)
class TableState:
    """What a full sync needs to know of a table, read in one go."""

    # The BOSUN- chains the table holds.
    owned: set[str]
    # The comments of the rules of the chains it does not own (the built-in ones among them),
    # in order: how a full sync finds the jumps it added before.
    comments: dict[str, list[str]]


class Applier(Protocol):
    def table_state(self, table: str) -> TableState: ...

    def apply(self, changed: Changes, deleted: Deletions, jumps: Jumps) -> None: ...

    def remove_jumps(self, table: str, chain: str, comments: set[str]) -> None: ...


def iptables_command(tool: str) -> str:
    """`iptables-legacy-<tool>` if installed (see the module docstring), else `iptables-<tool>`."""
    for name in (f"iptables-legacy-{tool}", f"iptables-{tool}"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path:
            return path
    raise ApplyError(f"neither iptables-legacy-{tool} nor iptables-{tool} is installed")


def _comment(tokens: Sequence[str]) -> str:
    for index, token in enumerate(tokens[:-1]):
        if token == "--comment":
            return tokens[index + 1]
    return ""


class RestoreApplier:
    def __init__(self) -> None:
        self.restore = iptables_command("restore")
        self.save = iptables_command("save")

    def _saved(self, table: str) -> list[str]:
        done = subprocess.run(
            [self.save, "-t", table], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise ApplyError(f"{self.save} -t {table}: {done.stderr.strip()}")
        return done.stdout.splitlines()

    def table_state(self, table: str) -> TableState:
        owned: set[str] = set()
        comments: dict[str, list[str]] = {}
        for line in self._saved(table):
            if line.startswith(":"):
                chain = line[1:].split()[0]
                if chain.startswith(CHAIN_PREFIX):
                    owned.add(chain)
            elif line.startswith("-A ") and not line.startswith(f"-A {CHAIN_PREFIX}"):
                chain = line.split(maxsplit=2)[1]
                comments.setdefault(chain, []).append(_comment(shlex.split(line)))
        return TableState(owned, comments)

    def _run(self, text: str) -> None:
        done = subprocess.run(
            [self.restore, "--noflush", "--wait"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise ApplyError(f"{self.restore} refused the batch: {done.stderr.strip()}")

    def apply(self, changed: Changes, deleted: Deletions, jumps: Jumps) -> None:
        if any(changed.values()) or any(deleted.values()) or any(jumps.values()):
            self._run(restore_text(changed, deleted, jumps))

    def remove_jumps(self, table: str, chain: str, comments: set[str]) -> None:
        prefix = f"-A {chain} "
        lines = [
            "-D" + line[2:]
            for line in self._saved(table)
            if line.startswith(prefix) and _comment(shlex.split(line)) in comments
        ]
        if lines:
            self._run("\n".join([f"*{table}", *lines, "COMMIT"]) + "\n")


class IptcApplier:
    """python-iptables. Imported lazily: loading it needs libiptc and the xtables plugins."""

    def __init__(self) -> None:
        import iptc

        self._iptc: Any = iptc

    def _table(self, name: str) -> Any:
        table = self._iptc.Table(name)
        table.refresh()
        return table

    def table_state(self, table: str) -> TableState:
        chains = self._table(table).chains
        return TableState(
            owned={c.name for c in chains if c.name.startswith(CHAIN_PREFIX)},
            comments={
                c.name: [self._rule_comment(rule) for rule in c.rules]
                for c in chains
                if c.is_builtin()
            },
        )

    @staticmethod
    def _rule_comment(rule: Any) -> str:
        for match in rule.matches:
            if match.name == "comment":
                return str(match.comment)
        return ""

    def _rule(self, rule: Rule) -> Any:
        """A python-iptables rule from iptables-save arguments (the subset bosun.proxy.rules
        writes: ! -s/-d, -p, -m NAME --opt [value]…, -j TARGET --opt [value]…)."""
        built = self._iptc.Rule()
        tokens = split_rule(rule)
        current: Any = None
        negate = False
        index = 0
        while index < len(tokens):
            token = tokens[index]
            value = tokens[index + 1] if index + 1 < len(tokens) else None
            if token == "!":
                negate, index = True, index + 1
                continue
            if token in ("-s", "-d") and value is not None:
                address = f"!{value}" if negate else value
                if token == "-s":
                    built.src = address
                else:
                    built.dst = address
                negate, index = False, index + 2
            elif token == "-p" and value is not None:
                built.protocol, index = value, index + 2
            elif token == "-m" and value is not None:
                current, index = built.create_match(value), index + 2
            elif token == "-j" and value is not None:
                current, index = built.create_target(value), index + 2
            elif token.startswith("--") and current is not None:
                takes_value = value is not None and not value.startswith("-")
                current.set_parameter(token[2:], value if takes_value else None)
                index += 2 if takes_value else 1
            else:
                raise ApplyError(f"cannot translate {token!r} in rule {rule!r}")
        return built

    def _batch(self, table_name: str, work: Any) -> None:
        table = self._table(table_name)
        table.autocommit = False
        try:
            work(table)
            table.commit()
        except self._iptc.IPTCError as error:
            raise ApplyError(f"python-iptables, table {table_name}: {error}") from error
        finally:
            table.autocommit = True
            table.refresh()

    def apply(self, changed: Changes, deleted: Deletions, jumps: Jumps) -> None:
        for table_name in sorted(set(changed) | set(deleted) | set(jumps)):
            chains = changed.get(table_name, {})
            gone = deleted.get(table_name, ())
            added = jumps.get(table_name, ())
            if chains or gone or added:
                self._batch(
                    table_name,
                    lambda table, c=chains, g=gone, a=added: self._rewrite(table, c, g, a),
                )

    def _rewrite(
        self,
        table: Any,
        chains: Mapping[str, Sequence[Rule]],
        gone: Sequence[str],
        added: Sequence[tuple[str, Rule]],
    ) -> None:
        existing = {chain.name: chain for chain in table.chains}
        # Every chain first: a rule can only jump to a chain the handle already holds.
        handles = {name: existing.get(name) or table.create_chain(name) for name in chains}
        for name in chains:
            if name in existing:
                handles[name].flush()
        for name, rules in chains.items():
            for rule in rules:
                handles[name].append_rule(self._rule(rule))
        for builtin, rule in added:
            self._iptc.Chain(table, builtin).append_rule(self._rule(rule))
        for name in gone:
            if name in existing:
                existing[name].flush()
        for name in gone:
            if name in existing:
                table.delete_chain(name)

    def remove_jumps(self, table: str, chain: str, comments: set[str]) -> None:
        def work(handle: Any) -> None:
            builtin = self._iptc.Chain(handle, chain)
            for rule in list(builtin.rules):
                if self._rule_comment(rule) in comments:
                    builtin.delete_rule(rule)

        self._batch(table, work)
