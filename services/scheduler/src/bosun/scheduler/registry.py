"""The plugin registry (name → factory) and the default profile; builds a Framework from a
SchedulerConfig.

A plugin is instantiated once per profile and placed at every extension point it takes part
in: which points a plugin *implements* is read from its methods (the framework's Protocols),
which points it is *enabled* at comes from the default profile as changed by the config's
`plugins` (see config.py): `multiPoint` first, then the per-point lists; `{name: "*"}` in a
`disabled` list removes every default plugin there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bosun.scheduler.config import EXTENSION_POINTS, ConfigError, PluginSet, SchedulerConfig
from bosun.scheduler.framework import (
    BindPlugin,
    FilterPlugin,
    Plugin,
    PostFilterPlugin,
    PreFilterPlugin,
    ReservePlugin,
    ScorePlugin,
)
from bosun.scheduler.plugins.defaultbinder import DefaultBinder, PodBinder
from bosun.scheduler.plugins.defaultpreemption import DefaultPreemption
from bosun.scheduler.plugins.imagelocality import ImageLocality
from bosun.scheduler.plugins.interpodaffinity import InterPodAffinity
from bosun.scheduler.plugins.nodeaffinity import NodeAffinity
from bosun.scheduler.plugins.nodename import NodeName
from bosun.scheduler.plugins.nodeports import NodePorts
from bosun.scheduler.plugins.noderesources import (
    ArgsError,
    NodeResourcesBalancedAllocation,
    NodeResourcesFit,
)
from bosun.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from bosun.scheduler.plugins.podtopologyspread import PodTopologySpread
from bosun.scheduler.plugins.tainttoleration import TaintToleration
from bosun.scheduler.runtime import Framework

__all__ = ["DEFAULT_PLUGINS", "REGISTRY", "Handle", "build_framework"]


@dataclass(frozen=True)
class Handle:
    """What plugins may use from the scheduler: the apiserver's pods (for binding)."""

    pods: PodBinder | None = None


Factory = Callable[[Mapping[str, Any], Handle], Plugin]


def _binder(args: Mapping[str, Any], handle: Handle) -> Plugin:
    if handle.pods is None:
        raise ConfigError("DefaultBinder needs an apiserver client")
    return DefaultBinder(handle.pods)


REGISTRY: dict[str, Factory] = {
    "NodeUnschedulable": lambda args, handle: NodeUnschedulable(),
    "NodeName": lambda args, handle: NodeName(),
    "TaintToleration": lambda args, handle: TaintToleration(),
    "NodeAffinity": lambda args, handle: NodeAffinity(),
    "NodePorts": lambda args, handle: NodePorts(),
    "NodeResourcesFit": lambda args, handle: NodeResourcesFit(args),
    "PodTopologySpread": lambda args, handle: PodTopologySpread(),
    "InterPodAffinity": lambda args, handle: InterPodAffinity(),
    "DefaultPreemption": lambda args, handle: DefaultPreemption(),
    "NodeResourcesBalancedAllocation": lambda args, handle: NodeResourcesBalancedAllocation(),
    "ImageLocality": lambda args, handle: ImageLocality(),
    "DefaultBinder": _binder,
}

# Kubernetes' default profile, in its order, with its default score weights.
DEFAULT_PLUGINS: tuple[tuple[str, int], ...] = (
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
)

_PROTOCOLS: dict[str, type] = {
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "score": ScorePlugin,
    "reserve": ReservePlugin,
    "bind": BindPlugin,
}


def _implements(plugin: Plugin, point: str) -> bool:
    return isinstance(plugin, _PROTOCOLS[point])


class _Builder:
    def __init__(self, config: SchedulerConfig, handle: Handle, source: str) -> None:
        self.config = config
        self.handle = handle
        self.source = source
        self.instances: dict[str, Plugin] = {}
        self.weights: dict[str, int] = {}
        self.points: dict[str, list[str]] = {point: [] for point in EXTENSION_POINTS}

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def instance(self, name: str, where: str) -> Plugin:
        plugin = self.instances.get(name)
        if plugin is None:
            factory = REGISTRY.get(name)
            if factory is None:
                known = ", ".join(sorted(REGISTRY))
                raise self.fail(where, f"unknown plugin {name!r} (known: {known})")
            try:
                plugin = factory(self.config.plugin_config.get(name, {}), self.handle)
            except ArgsError as error:
                raise self.fail(f"pluginConfig[{name}].args", str(error)) from None
            self.instances[name] = plugin
        return plugin

    def enable(self, name: str, weight: int, points: tuple[str, ...], where: str) -> None:
        plugin = self.instance(name, where)
        implemented = [p for p in points if _implements(plugin, p)]
        if not implemented:
            raise self.fail(where, f"plugin {name!r} does not implement {'/'.join(points)}")
        for point in implemented:
            if name not in self.points[point]:
                self.points[point].append(name)
        if weight:
            self.weights[name] = weight

    def disable(self, names: list[str], points: tuple[str, ...]) -> None:
        for point in points:
            if "*" in names:
                self.points[point] = []
            else:
                self.points[point] = [n for n in self.points[point] if n not in names]

    def apply(self, plugin_set: PluginSet, points: tuple[str, ...], where: str) -> None:
        self.disable(plugin_set.disabled, points)
        for index, ref in enumerate(plugin_set.enabled):
            self.enable(ref.name, ref.weight, points, f"{where}.enabled[{index}]")

    def build(self) -> Framework:
        for name, weight in DEFAULT_PLUGINS:
            self.enable(name, weight, EXTENSION_POINTS, "default profile")
        where = "profiles[0].plugins"
        plugins = self.config.plugins
        if "multiPoint" in plugins:
            self.apply(plugins["multiPoint"], EXTENSION_POINTS, f"{where}.multiPoint")
        for point in EXTENSION_POINTS:
            if point in plugins:
                self.apply(plugins[point], (point,), f"{where}.{point}")
        for name in self.config.plugin_config:
            if name not in REGISTRY:
                raise self.fail("profiles[0].pluginConfig", f"unknown plugin {name!r}")
        if not self.points["bind"]:
            raise self.fail(where, "no bind plugin is enabled")

        def at(point: str) -> list[Any]:
            return [self.instances[name] for name in self.points[point]]

        return Framework(
            pre_filter=at("preFilter"),
            filter=at("filter"),
            post_filter=at("postFilter"),
            score=at("score"),
            reserve=at("reserve"),
            bind=at("bind"),
            weights={name: self.weights.get(name, 1) for name in self.points["score"]},
            percentage_of_nodes_to_score=self.config.percentage_of_nodes_to_score,
        )


def build_framework(
    config: SchedulerConfig, handle: Handle, *, source: str = "<config>"
) -> Framework:
    """The Framework for `config`'s profile; ConfigError naming the field when it is invalid."""
    return _Builder(config, handle, source).build()
