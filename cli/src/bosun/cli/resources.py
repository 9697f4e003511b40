"""Naming objects on the command line and in output, as kubectl does.

Input: `pods`, `po web db`, `pods,svc`, `pod/web svc/web`. Output: `pod/web` (`-o name`, apply),
`pod "web" deleted`; kinds outside the core group carry their group (`deployment.apps/web`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import click

from bosun.cli.errors import CliError
from bosun.common import kinds
from bosun.common.kinds import KindInfo

__all__ = [
    "Target",
    "group_of",
    "kind_label",
    "object_ref",
    "parse_targets",
    "resolve_kind",
]


@dataclass(frozen=True)
class Target:
    """One kind and the names asked for (none: every object of the kind)."""

    info: KindInfo
    names: tuple[str, ...] = ()


def resolve_kind(name: str) -> KindInfo:
    try:
        return kinds.lookup(name)
    except kinds.UnknownKindError:
        raise CliError(
            f'error: the server doesn\'t have a resource type "{name}" '
            "(`bosunctl api-resources` lists them)"
        ) from None


def group_of(info: KindInfo) -> str:
    return info.api_version.rpartition("/")[0]


def kind_label(info: KindInfo) -> str:
    """`pod`, `deployment.apps`: how kubectl names a kind in its messages."""
    group = group_of(info)
    return f"{info.singular}.{group}" if group else info.singular


def object_ref(info: KindInfo, name: str) -> str:
    return f"{kind_label(info)}/{name}"


def parse_targets(args: Sequence[str], *, verb: str = "get") -> list[Target]:
    """`KIND[,KIND] [NAME…]` or `KIND/NAME…`, in the order given."""
    if not args:
        raise click.UsageError(
            f"you must specify the type of resource to {verb} (`bosunctl api-resources` lists them)"
        )
    if "/" in args[0]:
        order: list[KindInfo] = []
        names: dict[str, list[str]] = {}
        for arg in args:
            kind, slash, name = arg.partition("/")
            if not slash or not kind or not name:
                raise click.UsageError(
                    f"there is no need to specify a resource type as a separate argument when "
                    f'passing arguments in resource/name form (got "{arg}")'
                )
            info = resolve_kind(kind)
            if info.kind not in names:
                order.append(info)
                names[info.kind] = []
            names[info.kind].append(name)
        return [Target(info, tuple(names[info.kind])) for info in order]
    kind_names = [part for part in args[0].split(",") if part]
    infos: list[KindInfo] = []
    for kind in kind_names:
        info = resolve_kind(kind)
        if info not in infos:
            infos.append(info)
    for name in args[1:]:
        if "/" in name:
            raise click.UsageError(
                f"there is no need to specify a resource type as a separate argument when "
                f'passing arguments in resource/name form (got "{name}")'
            )
    return [Target(info, tuple(args[1:])) for info in infos]
