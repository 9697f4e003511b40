"""The controller-manager: builds the chosen controllers over shared informers and runs them.

One `ControllerManager.run()` is one term of leadership: it builds fresh informers, queues and
expectations, starts the informers, runs every controller until cancelled, then stops the
informers. Nothing carries over from an earlier term — a replica that lost the lease and won it
back starts from what the apiserver says, as a freshly started process would.

`--controllers` picks controllers as kube-controller-manager does: `*` is every controller,
`name` adds one, `-name` removes one (`*,-podgc`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

from bosun.common.client import Client
from bosun.common.events import EventRecorder
from bosun.controllermanager.context import ControllerContext, Options
from bosun.controllermanager.controller import Controller
from bosun.controllermanager.informers import InformerFactory

log = logging.getLogger(__name__)

ControllerFactory = Callable[[ControllerContext], Controller]


def _registry() -> dict[str, ControllerFactory]:
    # Imported here so that each controller module stays importable on its own.
    from bosun.controllermanager.deployment.controller import DeploymentController
    from bosun.controllermanager.garbagecollector import GarbageCollector
    from bosun.controllermanager.namespace import NamespaceController
    from bosun.controllermanager.nodelifecycle import NodeLifecycleController
    from bosun.controllermanager.podgc import PodGarbageCollector
    from bosun.controllermanager.replicaset import ReplicaSetController
    from bosun.controllermanager.serviceaccount import ServiceAccountController

    return {
        "replicaset": ReplicaSetController,
        "deployment": DeploymentController,
        "garbagecollector": GarbageCollector,
        "namespace": NamespaceController,
        "serviceaccount": ServiceAccountController,
        "podgc": PodGarbageCollector,
        "nodelifecycle": NodeLifecycleController,
    }


def known_controllers() -> list[str]:
    return list(_registry())


def select_controllers(spec: str, known: Sequence[str]) -> list[str]:
    """Controller names chosen by a `--controllers` value; ValueError naming an unknown one."""
    chosen: list[str] = []
    removed: set[str] = set()
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item == "*":
            chosen.extend(name for name in known if name not in chosen)
            continue
        name = item.removeprefix("-")
        if name not in known:
            raise ValueError(f"unknown controller {name!r}; known: {', '.join(known)}")
        if item.startswith("-"):
            removed.add(name)
        elif name not in chosen:
            chosen.append(name)
    return [name for name in chosen if name not in removed]


class ControllerManager:
    """Runs `controllers` (names) against `client` for one term of leadership."""

    def __init__(
        self,
        client: Client,
        *,
        controllers: Sequence[str],
        options: Options | None = None,
        registry: Mapping[str, ControllerFactory] | None = None,
        identity: str = "",
    ) -> None:
        self.client = client
        self.names = list(controllers)
        self.options = options or Options()
        self.registry = dict(registry or _registry())
        self.identity = identity
        self.controllers: dict[str, Controller] = {}

    async def run(self) -> None:
        informers = InformerFactory(self.client)
        recorder = EventRecorder(
            self.client.events, component="controller-manager", host=self.identity
        )
        recorder.start()
        context = ControllerContext(self.client, informers, recorder, self.options)
        self.controllers = {name: self.registry[name](context) for name in self.names}
        informers.start()
        log.info("running controllers", extra={"controllers": ",".join(self.names)})
        try:
            async with asyncio.TaskGroup() as group:
                for name, controller in self.controllers.items():
                    group.create_task(controller.run(), name=f"controller-{name}")
        finally:
            await informers.stop()
            await recorder.stop()
