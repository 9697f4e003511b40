"""The bosunctl config file: named contexts, like a (flattened) kubeconfig.

    apiVersion: v1
    kind: Config
    current-context: local
    contexts:
    - name: local
      server: 127.0.0.1:6443
      namespace: default                 # optional, "default" when unset
      certificate-authority: ca.pem      # optional, PEM file; relative to this file
      token: s3cret                      # optional bearer token

The file is `--config`, else `$BOSUN_CONFIG`, else `~/.bosun/config`. A missing file is an empty
config, and with no context at all bosunctl talks to 127.0.0.1:6443 in namespace "default".

Unlike kubeconfig, a context carries its server and credentials itself instead of naming a
cluster and a user entry: Bosun has one kind of credential (a token), so the indirection would
only add lines to write. Writes are atomic (temp file + rename) and the file is private (0600),
because it may hold tokens.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_SERVER",
    "Config",
    "ConfigError",
    "Context",
    "config_path",
    "load_config",
    "save_config",
]

DEFAULT_SERVER = "127.0.0.1:6443"
DEFAULT_NAMESPACE = "default"
ENV_VAR = "BOSUN_CONFIG"


class ConfigError(ValueError):
    """A config file that cannot be read or does not say what is asked of it."""


@dataclass
class Context:
    name: str
    server: str = ""
    namespace: str = ""
    certificate_authority: str = ""
    token: str = ""

    def to_dict(self, *, redact: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.server:
            out["server"] = self.server
        if self.namespace:
            out["namespace"] = self.namespace
        if self.certificate_authority:
            out["certificate-authority"] = self.certificate_authority
        if self.token:
            out["token"] = "REDACTED" if redact else self.token
        return out


@dataclass
class Config:
    path: Path
    current_context: str = ""
    contexts: list[Context] = field(default_factory=list)

    def context(self, name: str) -> Context | None:
        return next((context for context in self.contexts if context.name == name), None)

    def to_dict(self, *, redact: bool = False, only: str | None = None) -> dict[str, Any]:
        contexts = [c for c in self.contexts if only is None or c.name == only]
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": self.current_context,
            "contexts": [context.to_dict(redact=redact) for context in contexts],
        }

    def resolve_path(self, value: str) -> Path:
        """A path from the file, relative to the file's directory (as kubeconfig does)."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.path.parent / path


def config_path(explicit: str | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / ".bosun" / "config"


_CONTEXT_KEYS = {
    "name": "name",
    "server": "server",
    "namespace": "namespace",
    "certificate-authority": "certificate_authority",
    "token": "token",
}


def _context(item: Any, path: Path, index: int) -> Context:
    where = f"{path}: contexts[{index}]"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping")
    values: dict[str, str] = {}
    for key, value in item.items():
        attribute = _CONTEXT_KEYS.get(str(key))
        if attribute is None:
            known = ", ".join(_CONTEXT_KEYS)
            raise ConfigError(f"{where}.{key}: unknown field (known: {known})")
        if value is None:
            continue
        if not isinstance(value, str | int):
            raise ConfigError(f"{where}.{key}: expected a string")
        values[attribute] = str(value)
    if not values.get("name"):
        raise ConfigError(f"{where}.name: Required value")
    return Context(**values)


def load_config(path: Path) -> Config:
    """The config at `path`; an empty one when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Config(path)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if document is None:
        return Config(path)
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw_contexts = document.get("contexts") or []
    if not isinstance(raw_contexts, list):
        raise ConfigError(f"{path}: contexts: expected a list")
    contexts = [_context(item, path, index) for index, item in enumerate(raw_contexts)]
    current = document.get("current-context") or ""
    return Config(path, current_context=str(current), contexts=contexts)


def save_config(config: Config) -> None:
    """Write `config` atomically, creating its directory (0700) and the file (0600)."""
    path = config.path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=False)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
