"""The `--config` file: a KubeSchedulerConfiguration subset, checked field by field.

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 0          # 0: adaptive (see runtime.nodes_to_score)
    podInitialBackoffSeconds: 1
    podMaxBackoffSeconds: 10
    profiles:                            # exactly one profile
      - schedulerName: default-scheduler
        plugins:
          multiPoint: {enabled: [...], disabled: [...]}   # every point a plugin implements
          score:
            disabled: [{name: NodeResourcesBalancedAllocation}]
            enabled: [{name: ImageLocality, weight: 5}]
          # also preFilter, filter, postFilter, reserve, bind; {name: "*"} disables all defaults
        pluginConfig:
          - name: NodeResourcesFit
            args: {scoringStrategy: {type: MostAllocated}}

Anything else is an error that names the file and the field (`profiles[0].plugins.score.
enabled[1].weight: must be an integer from 1 to 100`), as Kubernetes' strict decoding does: a
typo must not silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "EXTENSION_POINTS",
    "ConfigError",
    "PluginRef",
    "PluginSet",
    "SchedulerConfig",
    "load_config",
    "parse_config",
]

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
EXTENSION_POINTS = ("preFilter", "filter", "postFilter", "score", "reserve", "bind")
DEFAULT_SCHEDULER_NAME = "default-scheduler"


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the file and the field path."""


@dataclass(frozen=True)
class PluginRef:
    name: str
    weight: int = 0  # 0: the plugin's default weight


@dataclass
class PluginSet:
    enabled: list[PluginRef] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


@dataclass
class SchedulerConfig:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    plugins: dict[str, PluginSet] = field(default_factory=dict)  # "multiPoint" and points
    plugin_config: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(
            f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        )

    def mapping(self, value: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(where or "(document)", f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail(
                    f"{where}.{key}" if where else str(key), f"unknown field (known: {known})"
                )
        return value

    def sequence(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"must be a list, got {type(value).__name__}")
        return value

    def number(self, value: Any, where: str, low: float, high: float, *, integer: bool) -> Any:
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            kind = "an integer" if integer else "a number"
            raise self.fail(where, f"must be {kind} from {low:g} to {high:g}, got {value!r}")
        return value

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        return value

    def plugin_set(self, value: Any, where: str) -> PluginSet:
        data = self.mapping(value, where, {"enabled", "disabled"})
        result = PluginSet()
        for index, item in enumerate(self.sequence(data.get("enabled"), f"{where}.enabled")):
            at = f"{where}.enabled[{index}]"
            entry = self.mapping(item, at, {"name", "weight"})
            weight = entry.get("weight", 0)
            if weight != 0:
                self.number(weight, f"{at}.weight", 1, 100, integer=True)
            result.enabled.append(PluginRef(self.string(entry.get("name"), f"{at}.name"), weight))
        for index, item in enumerate(self.sequence(data.get("disabled"), f"{where}.disabled")):
            at = f"{where}.disabled[{index}]"
            entry = self.mapping(item, at, {"name"})
            result.disabled.append(self.string(entry.get("name"), f"{at}.name"))
        return result


def parse_config(document: Any, source: str = "<config>") -> SchedulerConfig:
    """A SchedulerConfig from a decoded YAML document; ConfigError naming `source` and field."""
    read = _Reader(source)
    top = read.mapping(
        document,
        "",
        {
            "apiVersion",
            "kind",
            "percentageOfNodesToScore",
            "podInitialBackoffSeconds",
            "podMaxBackoffSeconds",
            "profiles",
        },
    )
    if top.get("apiVersion", API_VERSION) != API_VERSION:
        raise read.fail("apiVersion", f"must be {API_VERSION!r}, got {top['apiVersion']!r}")
    if top.get("kind", KIND) != KIND:
        raise read.fail("kind", f"must be {KIND!r}, got {top['kind']!r}")
    config = SchedulerConfig()
    if "percentageOfNodesToScore" in top:
        config.percentage_of_nodes_to_score = read.number(
            top["percentageOfNodesToScore"], "percentageOfNodesToScore", 0, 100, integer=True
        )
    if "podInitialBackoffSeconds" in top:
        config.pod_initial_backoff_seconds = float(
            read.number(
                top["podInitialBackoffSeconds"],
                "podInitialBackoffSeconds",
                0.001,
                3600,
                integer=False,
            )
        )
    if "podMaxBackoffSeconds" in top:
        config.pod_max_backoff_seconds = float(
            read.number(
                top["podMaxBackoffSeconds"], "podMaxBackoffSeconds", 0.001, 3600, integer=False
            )
        )
    if config.pod_max_backoff_seconds < config.pod_initial_backoff_seconds:
        raise read.fail("podMaxBackoffSeconds", "must not be smaller than podInitialBackoffSeconds")
    profiles = read.sequence(top.get("profiles"), "profiles")
    if len(profiles) > 1:
        raise read.fail("profiles", f"only one profile is supported, got {len(profiles)}")
    if profiles:
        profile = read.mapping(
            profiles[0], "profiles[0]", {"schedulerName", "plugins", "pluginConfig"}
        )
        if "schedulerName" in profile:
            config.scheduler_name = read.string(
                profile["schedulerName"], "profiles[0].schedulerName"
            )
        where = "profiles[0].plugins"
        plugins = read.mapping(profile.get("plugins"), where, {"multiPoint", *EXTENSION_POINTS})
        for point, value in plugins.items():
            config.plugins[point] = read.plugin_set(value, f"{where}.{point}")
        for index, item in enumerate(
            read.sequence(profile.get("pluginConfig"), "profiles[0].pluginConfig")
        ):
            at = f"profiles[0].pluginConfig[{index}]"
            entry = read.mapping(item, at, {"name", "args"})
            name = read.string(entry.get("name"), f"{at}.name")
            config.plugin_config[name] = dict(
                read.mapping(entry.get("args"), f"{at}.args", set(entry.get("args") or {}))
            )
    return config


def load_config(path: Path) -> SchedulerConfig:
    """Read and check `path`; ConfigError (naming the file and field) on any problem."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file: {error.strerror or error}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(document, str(path))
