"""A plain model of iptables rules: what the proxy wants, independent of how it is written.

A `Rule` is one line of `iptables-save` output without the `-A CHAIN` part, kept as structured
fields so that it can be rendered both as iptables-save tokens (for iptables-restore and for
comparing with what the kernel holds) and as a python-iptables `Rule`. A `Tables` value maps
table → chain → rules, for the chains this proxy owns only; the built-in chains appear only
through the jump rules the proxy adds to them (see bosun.proxy.rules).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Match", "Rule", "Tables", "quote", "render_rule", "restore_text", "rule_line"]

# An option without a value (`--rcheck`) has the value "".
Options = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Match:
    name: str
    options: Options = ()


@dataclass(frozen=True, slots=True)
class Rule:
    target: str
    target_options: Options = ()
    protocol: str = ""
    # "10.0.0.1/32", or "!10.244.0.0/16" for "not from".
    source: str = ""
    destination: str = ""
    matches: tuple[Match, ...] = ()
    comment: str = ""


# table ("nat", "filter") -> chain -> its rules, in order.
Tables = dict[str, dict[str, list[Rule]]]


def _options(options: Options) -> list[str]:
    tokens: list[str] = []
    for name, value in options:
        tokens.append(f"--{name}")
        if value:
            tokens.append(value)
    return tokens


def _address(flag: str, value: str) -> list[str]:
    if value.startswith("!"):
        return ["!", flag, value[1:]]
    return [flag, value]


def render_rule(rule: Rule) -> list[str]:
    """The rule as iptables arguments, in the order iptables-save prints them."""
    tokens: list[str] = []
    if rule.source:
        tokens += _address("-s", rule.source)
    if rule.destination:
        tokens += _address("-d", rule.destination)
    if rule.protocol:
        tokens += ["-p", rule.protocol]
    if rule.comment:
        tokens += ["-m", "comment", "--comment", rule.comment]
    for match in rule.matches:
        tokens += ["-m", match.name, *_options(match.options)]
    tokens += ["-j", rule.target, *_options(rule.target_options)]
    return tokens


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:!,=")


def quote(token: str) -> str:
    """A token as iptables-restore reads it: double quotes (it knows no single quotes)."""
    if token and all(char in _PLAIN for char in token):
        return token
    escaped = token.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def rule_line(chain: str, rule: Rule) -> str:
    return " ".join(["-A", chain, *(quote(token) for token in render_rule(rule))])


def restore_text(
    changed: Mapping[str, Mapping[str, Sequence[Rule]]],
    deleted: Mapping[str, Sequence[str]],
    jumps: Mapping[str, Sequence[tuple[str, Rule]]] | None = None,
) -> str:
    """An iptables-restore --noflush input that rewrites `changed` chains whole, removes
    `deleted` ones and appends `jumps` (built-in chain, rule) — all tables in one run."""
    lines: list[str] = []
    tables = sorted(set(changed) | set(deleted) | set(jumps or {}))
    for table in tables:
        lines.append(f"*{table}")
        chains = changed.get(table, {})
        gone = deleted.get(table, ())
        # Declaring a chain in --noflush mode creates it, or empties it if it exists.
        lines.extend(f":{chain} - [0:0]" for chain in chains)
        lines.extend(f":{chain} - [0:0]" for chain in gone)
        for chain, rules in chains.items():
            lines.extend(rule_line(chain, rule) for rule in rules)
        for builtin, rule in (jumps or {}).get(table, ()):
            lines.append(rule_line(builtin, rule))
        lines.extend(f"-X {chain}" for chain in gone)
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"
