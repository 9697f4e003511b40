"""Helpers for controller tests, and a stand-in for the node agent's pod status reports.

The controllers' observable behaviour depends on pods becoming Running and Ready, which is the
kubelet's job. `PodStatusSimulator` is a *test double of the kubelet* for tests that exercise
controllers without one: it watches pods and reports each as Running with a Ready condition,
and finishes graceful deletions (as a kubelet does once containers stop). It is not part of any
controller and the controller-manager never uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import ApiError, ConflictError, NotFoundError
from bosun.controllermanager.context import Options
from bosun.controllermanager.manager import ControllerManager

log = logging.getLogger(__name__)


class PodStatusSimulator:
    """Marks pods Running/Ready (with a pod IP) and completes their graceful deletion.

    `node_name`: only pods bound to this node (None: every pod, bound or not).
    `paused`: while set, pods are left as they are (a node that stopped reporting).
    """

    def __init__(self, client: Client, *, node_name: str | None = None) -> None:
        self.client = client
        self.node_name = node_name
        self.paused = False
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Queue[core_pb2.Pod] = asyncio.Queue()
        self._next_ip = 0

    def _mine(self, pod: core_pb2.Pod) -> bool:
        return self.node_name is None or pod.spec.node_name == self.node_name

    async def _watch(self) -> None:
        while True:
            try:
                async for event in self.client.pods.watch():
                    if event.type in ("ADDED", "MODIFIED") and self._mine(event.object):
                        self._pending.put_nowait(event.object)
            except ApiError as error:
                log.debug("pod status simulator: watch ended (%s); restarting", error)
                await asyncio.sleep(0.1)

    async def _work(self) -> None:
        while True:
            pod = await self._pending.get()
            if self.paused:
                continue
            try:
                await self._handle(pod)
            except (NotFoundError, ConflictError):
                continue  # gone, or changed: a later event brings the new state
            except ApiError as error:
                log.debug("pod status simulator: %s", error)

    async def _handle(self, pod: core_pb2.Pod) -> None:
        meta = pod.metadata
        if meta.HasField("deletion_timestamp"):
            if meta.deletion_grace_period_seconds > 0:
                await self.client.pods.delete(
                    meta.name, namespace=meta.namespace, uid=meta.uid, grace_period_seconds=0
                )
            return
        if pod.status.phase == "Running":
            return
        updated = core_pb2.Pod()
        updated.CopyFrom(pod)
        now = datetime.now(UTC)
        updated.status.phase = "Running"
        updated.status.start_time.FromDatetime(now)
        self._next_ip += 1
        updated.status.pod_ip = f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 2}"
        del updated.status.pod_ips[:]
        updated.status.pod_ips.add(ip=updated.status.pod_ip)
        del updated.status.conditions[:]
        for kind in ("Initialized", "ContainersReady", "Ready"):
            condition = updated.status.conditions.add(type=kind, status="True")
            condition.last_transition_time.FromDatetime(now)
        del updated.status.container_statuses[:]
        for container in pod.spec.containers:
            status = updated.status.container_statuses.add(
                name=container.name, image=container.image, ready=True, restart_count=0
            )
            status.state.running.started_at.FromDatetime(now)
        await self.client.pods.update_status(updated)

    async def __aenter__(self) -> PodStatusSimulator:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch())
            group.create_task(self._work())

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


WORKLOAD_CONTROLLERS = ("replicaset", "deployment", "garbagecollector")


@contextlib.asynccontextmanager
async def running_controllers(
    client: Client, controllers: Sequence[str] = WORKLOAD_CONTROLLERS, **tunables: Any
) -> AsyncIterator[ControllerManager]:
    """Run `controllers` in this event loop (no leader election) for the duration of the block.

    `tunables` are `Options` fields (periods, thresholds), so tests can make them short.
    """
    options = Options(**tunables)
    manager = ControllerManager(client, controllers=controllers, options=options)
    task = asyncio.create_task(manager.run())
    try:
        yield manager
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(
    check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, interval: float = 0.05
) -> None:
    """Poll the async `check` (usually reads from the apiserver) until it holds; TimeoutError."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - polling another component's state
            await asyncio.sleep(interval)


async def set_image(client: Client, name: str, image: str, *, namespace: str = "default") -> None:
    """Set a Deployment's first container image (read-modify-write, again on a conflict)."""
    for _attempt in range(10):
        deployment = await client.deployments.get(name, namespace=namespace)
        deployment.spec.template.spec.containers[0].image = image
        try:
            await client.deployments.update(deployment)
        except ConflictError:
            continue  # a controller wrote meanwhile
        return
    raise ConflictError(f"deployment {name} kept changing")
