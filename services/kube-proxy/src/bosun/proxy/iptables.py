"""The proxy's rules as iptables-save text: what it wants, independent of how it is written.

A rule is the argument string of one `-A CHAIN …` line of iptables-save/restore input, without
the `-A CHAIN` part:

    -d 10.96.0.10/32 -p tcp -m comment --comment "default/web cluster IP" -m tcp --dport 80 -j …

Strings, not objects, because a proxy holds 100,000 of them at 10,000 services: building and
comparing strings is what Python does fastest (a sync diff is list equality), and the
iptables-restore backend writes them as they are. The python-iptables backend parses them back
into its own rule objects (`split_rule`), which costs little next to libiptc itself.

`Tables` maps table → chain → rules, for the chains this proxy owns only; the built-in chains
appear only through the jump rules the proxy adds to them (see bosun.proxy.rules).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

__all__ = ["Rule", "Tables", "comment", "quote", "restore_text", "split_rule"]

Rule = str

# table ("nat", "filter") -> chain -> its rules, in order.
Tables = dict[str, dict[str, list[Rule]]]

_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:!,=")


def quote(token: str) -> str:
    """A token as iptables-restore reads it: double quotes (it knows no single quotes)."""
    if token and all(char in _PLAIN for char in token):
        return token
    escaped = token.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def comment(text: str) -> str:
    """The comment match for `text`, with a trailing space; "" for no comment."""
    return f"-m comment --comment {quote(text)} " if text else ""


def split_rule(rule: Rule) -> list[str]:
    """The rule's tokens, quotes removed (the inverse of `quote`)."""
    return shlex.split(rule)


def restore_text(
    changed: Mapping[str, Mapping[str, Sequence[Rule]]],
    deleted: Mapping[str, Sequence[str]],
    jumps: Mapping[str, Sequence[tuple[str, Rule]]] | None = None,
) -> str:
    """An iptables-restore --noflush input that rewrites `changed` chains whole, removes
    `deleted` ones and appends `jumps` (built-in chain, rule) — each table one COMMIT."""
    lines: list[str] = []
    for table in sorted(set(changed) | set(deleted) | set(jumps or {})):
        chains = changed.get(table, {})
        gone = deleted.get(table, ())
        added = (jumps or {}).get(table, ())
        if not (chains or gone or added):
            continue
        lines.append(f"*{table}")
        # Declaring a chain in --noflush mode creates it, or empties it if it exists.
        lines.extend(f":{chain} - [0:0]" for chain in chains)
        lines.extend(f":{chain} - [0:0]" for chain in gone)
        for chain, rules in chains.items():
            prefix = f"-A {chain} "
            lines.extend(prefix + rule for rule in rules)
        lines.extend(f"-A {builtin} {rule}" for builtin, rule in added)
        lines.extend(f"-X {chain}" for chain in gone)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""
