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
from dataclasses import dataclass

from bosun.common.client import Client
from bosun.common.events import EventRecorder
from bosun.common.leaderelection import LeaderElector
from bosun.controllermanager.context import ControllerContext, Options
from bosun.controllermanager.controller import Controller
from bosun.controllermanager.informers import InformerFactory

log = logging.getLogger(__name__)

ControllerFactory = Callable[[ControllerContext], Controller]


def _registry() -> dict[str, ControllerFactory]:
    # Imported here so that each controller module stays importable on its own.
    from bosun.controllermanager.deployment.controller import DeploymentController
    from bosun.controllermanager.endpoints import EndpointsController
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
        "endpoints": EndpointsController,
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


@dataclass(frozen=True)
class LeaderElection:
    """Where the lease lives and its timings (see bosun.common.leaderelection)."""

    name: str = "bosun-controller-manager"
    namespace: str = "kube-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


async def run(
    client: Client,
    *,
    controllers: Sequence[str],
    options: Options,
    identity: str,
    leader_election: LeaderElection | None,
    on_started_leading: Callable[[], None] | None = None,
    on_stopped_leading: Callable[[], None] | None = None,
) -> None:
    """Run the controllers until cancelled: always, or only while this replica holds the lease.

    Each term of leadership gets a fresh `ControllerManager`; losing the lease cancels it (and
    waits for it to stop) before this replica campaigns again.
    """

    async def lead() -> None:
        if on_started_leading is not None:
            on_started_leading()
        try:
            manager = ControllerManager(
                client, controllers=controllers, options=options, identity=identity
            )
            await manager.run()
        finally:
            if on_stopped_leading is not None:
                on_stopped_leading()

    if leader_election is None:
        await lead()
        return
    elector = LeaderElector(
        leases=client.leases,
        name=leader_election.name,
        namespace=leader_election.namespace,
        identity=identity,
        lease_duration=leader_election.lease_duration,
        renew_deadline=leader_election.renew_deadline,
        retry_period=leader_election.retry_period,
        on_started_leading=lead,
        on_new_leader=lambda leader: log.info("leader is %s", leader),
    )
    await elector.run()
