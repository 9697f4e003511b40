"""Printing objects: kubectl-shaped tables (laid out by rich), YAML, JSON and names.

Tables are plain text, as kubectl prints them: no borders, left-aligned, three spaces between
columns, never wrapped or truncated (a pipe into grep or awk must see whole cells), so they are
rendered on a console as wide as the content and trailing blanks are cut. `TableWriter` keeps
the column widths of the first rows it printed so that rows streamed later by `get -w` line up.

YAML and JSON print the object as the manifest loader reads it (`manifest.to_dict`), so that
`bosunctl get … -o yaml` can be applied again. Several objects print as a `kind: List`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, cast

import yaml  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bosun.cli.resources import object_ref
from bosun.common import kinds
from bosun.common.manifest import to_dict

__all__ = [
    "OUTPUT_FORMATS",
    "TableWriter",
    "dump_json",
    "dump_yaml",
    "format_objects",
    "render_table",
]

OUTPUT_FORMATS = ("wide", "yaml", "json", "name")
_GAP = 3


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [len(header) for header in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    return widths


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    show_header: bool = True,
    min_widths: Sequence[int] | None = None,
) -> str:
    """The table as text, one line per row (no trailing newline)."""
    table = Table(
        box=None,
        show_header=show_header,
        show_edge=False,
        pad_edge=False,
        padding=(0, _GAP, 0, 0),
        header_style="",
        expand=False,
    )
    for index, header in enumerate(headers):
        table.add_column(
            Text(header),
            no_wrap=True,
            overflow="ignore",
            min_width=min_widths[index] if min_widths else None,
        )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    widths = _widths(headers, rows)
    if min_widths:
        widths = [max(width, minimum) for width, minimum in zip(widths, min_widths, strict=True)]
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=sum(widths) + _GAP * len(widths) + 1,
        color_system=None,
        force_terminal=False,
        highlight=False,
        emoji=False,
        markup=False,
        legacy_windows=False,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


class TableWriter:
    """Prints a table's first rows with a header, later rows aligned to the same widths."""

    def __init__(self, headers: Sequence[str], *, show_header: bool = True) -> None:
        self.headers = list(headers)
        self.show_header = show_header
        self.widths: list[int] | None = None

    def render(self, rows: Sequence[Sequence[str]]) -> str:
        if self.widths is None:
            self.widths = _widths(self.headers, rows)
            return render_table(self.headers, rows, show_header=self.show_header)
        text = render_table(self.headers, rows, show_header=False, min_widths=self.widths)
        self.widths = [
            max(a, b) for a, b in zip(self.widths, _widths(self.headers, rows), strict=True)
        ]
        return text


def _as_list(objects: Sequence[Message]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [to_dict(obj) for obj in objects],
        "metadata": {"resourceVersion": ""},
    }


def _document(objects: Sequence[Message], single: bool) -> dict[str, Any]:
    return to_dict(objects[0]) if single and len(objects) == 1 else _as_list(objects)


def dump_yaml(document: Any) -> str:
    text: str = yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return text


def dump_json(document: Any) -> str:
    return json.dumps(document, indent=4, ensure_ascii=False)


def format_objects(objects: Sequence[Message], output: str, *, single: bool = False) -> str:
    """`objects` as yaml, json or names; `single` prints a lone object without a List."""
    if output == "name":
        return "\n".join(
            object_ref(kinds.for_message(obj), cast(Any, obj).metadata.name) for obj in objects
        )
    document = _document(objects, single)
    if output == "yaml":
        return dump_yaml(document).rstrip("\n")
    if output == "json":
        return dump_json(document)
    raise ValueError(f"unknown output format {output!r}")
