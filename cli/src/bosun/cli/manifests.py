"""Reading `-f FILE|DIR|-` into API objects, each remembering the file it came from.

A directory contributes its `*.yaml`, `*.yml` and `*.json` files in name order (with
`--recursive`, its subdirectories' too). Every file is parsed before anything is sent, so a
manifest error anywhere changes nothing on the server; the error names the file, the document
(in a multi-document file) and the field path, as bosun.common.manifest reports them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from google.protobuf.message import Message

from bosun.cli.errors import CliError
from bosun.common import kinds
from bosun.common.kinds import KindInfo
from bosun.common.manifest import load_documents

__all__ = ["MANIFEST_SUFFIXES", "ManifestObject", "read_manifests"]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "STDIN"


@dataclass(frozen=True)
class ManifestObject:
    source: str
    info: KindInfo
    message: Any  # the kind's proto message

    @property
    def name(self) -> str:
        return str(self.message.metadata.name)

    @property
    def namespace(self) -> str:
        return str(self.message.metadata.namespace)


def _files(path: Path, *, recursive: bool) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_dir():
                if recursive:
                    yield from _files(child, recursive=True)
            elif child.suffix.lower() in MANIFEST_SUFFIXES:
                yield child
    elif path.exists():
        yield path
    else:
        raise CliError(f'error: the path "{path}" does not exist')


def _texts(sources: Sequence[str], *, recursive: bool) -> Iterator[tuple[str, str]]:
    for source in sources:
        if source == "-":
            yield STDIN, sys.stdin.read()
            continue
        for file in _files(Path(source), recursive=recursive):
            try:
                yield str(file), file.read_text()
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                raise CliError(f'error: cannot read "{file}": {reason}') from None


def read_manifests(sources: Sequence[str], *, recursive: bool = False) -> list[ManifestObject]:
    """Every object in `sources`; CliError when there is none."""
    if not sources:
        raise click.UsageError("must specify -f (a file, a directory, or - for stdin)")
    objects: list[ManifestObject] = []
    for source, text in _texts(sources, recursive=recursive):
        messages: list[Message] = load_documents(text, source=source)
        objects.extend(
            ManifestObject(source, kinds.for_message(message), message) for message in messages
        )
    if not objects:
        raise CliError(f"error: no objects passed in {', '.join(sources)}")
    return objects


def target_namespace(item: ManifestObject, namespace: str, *, explicit: bool) -> str:
    """The namespace `item` goes to: its own, else the session's; "" for cluster kinds.

    As kubectl, a manifest's namespace that contradicts an explicit -n is an error rather than
    a guess.
    """
    if not item.info.namespaced:
        return ""
    if not item.namespace:
        return namespace
    if explicit and item.namespace != namespace:
        raise CliError(
            f'error: the namespace from the provided object "{item.namespace}" does not match '
            f"the namespace \"{namespace}\". You must pass '--namespace={item.namespace}' to "
            "perform this operation."
        )
    return item.namespace
