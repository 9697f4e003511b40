"""Hollow nodes: many simulated kubelets in one process, for load-testing the control plane.

Like kubemark's hollow nodes or kwok, each simulated node is real to the control plane — its
own Node object, its own Lease heartbeat every `lease_interval`, node status, and the status
writes of its pods — but runs no containers. A pod bound to one of these nodes goes
Pending → Running after `start_delay` (fake pod IP from the node's /24, every container
`running`, Ready), and to Succeeded (or Failed) when its containers are annotated to exit:

    metadata.annotations["bosun.io/simulated-exit-after"] = "5"    # seconds after Running
    metadata.annotations["bosun.io/simulated-exit-code"] = "0"     # default 0 → Succeeded

A pod with a deletionTimestamp is removed at once (delete with grace 0), as a kubelet whose
containers stopped instantly would.

What is shared, to stay cheap (the target is < 5 MB per simulated node): one API connection,
and one pod informer for the whole process (field selector `spec.nodeName!=`) whose events are
routed to the node the pod is bound to — one watch instead of one per node, as kwok does. Each
node's state is a NodeAgent (two timers) and a dict of its pods. Status writes go through one
bounded pool of `write_concurrency` so a burst of 30,000 new pods queues in this process
instead of overloading the apiserver; heartbeats do not wait in that queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bosun.api.v1 import core_pb2
from bosun.common.client import Client
from bosun.common.errors import ApiError, NotFoundError, PreconditionError
from bosun.common.informer import Informer
from bosun.kubelet.nodeagent import NodeAgent, NodeConfig, NodeHealth
from bosun.kubelet.status import timestamp

log = logging.getLogger(__name__)

EXIT_AFTER = "bosun.io/simulated-exit-after"
EXIT_CODE = "bosun.io/simulated-exit-code"
TERMINAL = frozenset({"Succeeded", "Failed"})


@dataclass
class SimulatedConfig:
    apiserver: str = "127.0.0.1:6443"
    token: str | None = None
    ca_cert: bytes | None = None
    count: int = 1
    prefix: str = "hollow"
    start_delay: float = 0.5
    lease_interval: float = 10.0
    status_interval: float = 10.0
    status_report_interval: float = 300.0
    max_pods: int = 110
    cpu: str = "32"
    memory: str = "256Gi"
    write_concurrency: int = 32
    # Pod CIDRs: node i gets the i-th /24 of this network.
    pod_network: str = "10.128.0.0/9"


def simulated_pod_status(
    pod: core_pb2.Pod, *, pod_ip: str, host_ip: str, now: float
) -> core_pb2.PodStatus:
    """Running, every container started and ready."""
    status = core_pb2.PodStatus(phase="Running", host_ip=host_ip, pod_ip=pod_ip)
    status.pod_ips.add(ip=pod_ip)
    status.start_time.CopyFrom(timestamp(now))
    for name in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
        condition = status.conditions.add(type=name, status="True")
        condition.last_transition_time.CopyFrom(timestamp(now))
    for init in pod.spec.init_containers:
        cs = status.init_container_statuses.add(name=init.name, image=init.image, ready=True)
        cs.state.terminated.exit_code = 0
        cs.state.terminated.reason = "Completed"
    for container in pod.spec.containers:
        cs = status.container_statuses.add(
            name=container.name, image=container.image, ready=True, started=True
        )
        cs.container_id = f"simulated://{pod.metadata.uid[:12]}-{container.name}"
        cs.state.running.started_at.CopyFrom(timestamp(now))
    return status


def exited_status(running: core_pb2.PodStatus, exit_code: int, now: float) -> core_pb2.PodStatus:
    status = core_pb2.PodStatus()
    status.CopyFrom(running)
    status.phase = "Succeeded" if exit_code == 0 else "Failed"
    reason = "PodCompleted"
    for condition in status.conditions:
        if condition.type in ("ContainersReady", "Ready"):
            condition.status = "False"
            condition.reason = reason
            condition.last_transition_time.CopyFrom(timestamp(now))
    for cs in status.container_statuses:
        started = cs.state.running.started_at
        cs.ClearField("state")
        cs.ready = False
        cs.started = False
        cs.state.terminated.exit_code = exit_code
        cs.state.terminated.reason = "Completed" if exit_code == 0 else "Error"
        cs.state.terminated.started_at.CopyFrom(started)
        cs.state.terminated.finished_at.CopyFrom(timestamp(now))
    return status


class HollowNode:
    """One simulated node: its agent, its pods' timers and its pod IPs."""

    def __init__(
        self, owner: HollowNodes, name: str, index: int, network: ipaddress.IPv4Network
    ) -> None:
        self.owner = owner
        self.name = name
        self.cidr = ipaddress.IPv4Network((int(network.network_address) + index * 256, 24))
        self.host_ip = str(self.cidr.network_address + 1)
        self._next_ip = 2
        # pod uid → the task that moves it along (start, then exit).
        self.pods: dict[str, asyncio.Task[None]] = {}
        config = owner.config
        capacity = {"cpu": config.cpu, "memory": config.memory, "pods": str(config.max_pods)}
        health = NodeHealth(
            capacity=capacity,
            allocatable=capacity,
            node_info={
                "kubelet_version": "bosun-0.1.0-simulated",
                "container_runtime_version": "simulated://0",
                "operating_system": "linux",
                "architecture": "amd64",
            },
        )

        async def report() -> NodeHealth:
            return health

        self.agent = NodeAgent(
            NodeConfig(
                name=name,
                addresses=[("InternalIP", self.host_ip), ("Hostname", name)],
                labels={
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "type": "hollow",
                },
                lease_interval=config.lease_interval,
                status_interval=config.status_interval,
                status_report_interval=config.status_report_interval,
            ),
            nodes=owner.client.nodes,
            leases=owner.client.leases,
            health=report,
        )

    def allocate_ip(self) -> str:
        ip = str(self.cidr.network_address + self._next_ip)
        self._next_ip = 2 if self._next_ip >= 254 else self._next_ip + 1
        return ip

    def observe(self, pod: core_pb2.Pod | None, uid: str) -> None:
        task = self.pods.get(uid)
        if pod is None:
            if task is not None:
                task.cancel()
                del self.pods[uid]
            return
        if pod.metadata.HasField("deletion_timestamp"):
            if task is not None:
                task.cancel()
            self.pods[uid] = asyncio.create_task(self._remove(pod))
            return
        if task is None and pod.status.phase not in TERMINAL and pod.status.phase != "Running":
            self.pods[uid] = asyncio.create_task(self._run(pod))

    async def _run(self, pod: core_pb2.Pod) -> None:
        owner = self.owner
        await asyncio.sleep(owner.config.start_delay)
        status = simulated_pod_status(
            pod, pod_ip=self.allocate_ip(), host_ip=self.host_ip, now=time.time()
        )
        if not await owner.write_status(pod, status):
            return
        exit_after = pod.metadata.annotations.get(EXIT_AFTER)
        if exit_after is None:
            return
        await asyncio.sleep(float(exit_after))
        code = int(pod.metadata.annotations.get(EXIT_CODE, "0"))
        await owner.write_status(pod, exited_status(status, code, time.time()))

    async def _remove(self, pod: core_pb2.Pod) -> None:
        meta = pod.metadata
        with contextlib.suppress(NotFoundError, PreconditionError):
            await self.owner.limited(
                lambda: self.owner.client.pods.delete(
                    meta.name, namespace=meta.namespace, grace_period_seconds=0, uid=meta.uid
                )
            )
        self.pods.pop(meta.uid, None)


class HollowNodes:
    def __init__(self, config: SimulatedConfig, *, client: Client | None = None) -> None:
        self.config = config
        self.client = client or Client(config.apiserver, token=config.token, ca_cert=config.ca_cert)
        self._owns_client = client is None
        network = ipaddress.IPv4Network(config.pod_network)
        self.nodes: dict[str, HollowNode] = {
            f"{config.prefix}-{i}": HollowNode(self, f"{config.prefix}-{i}", i, network)
            for i in range(config.count)
        }
        self.pods: Informer[core_pb2.Pod] = Informer(
            self.client.pods, field_selector="spec.nodeName!="
        )
        self._writes = asyncio.Semaphore(config.write_concurrency)
        self.status_writes = 0
        self.write_errors = 0

    async def limited(self, call: Callable[[], Awaitable[object]]) -> object:
        async with self._writes:
            return await call()

    async def write_status(self, pod: core_pb2.Pod, status: core_pb2.PodStatus) -> bool:
        update = core_pb2.Pod()
        update.CopyFrom(pod)
        update.metadata.resource_version = ""
        update.status.CopyFrom(status)
        try:
            await self.limited(lambda: self.client.pods.update_status(update))
        except NotFoundError:
            return False
        except ApiError as error:
            self.write_errors += 1
            log.warning("pod %s: status write failed: %s", pod.metadata.name, error)
            return False
        self.status_writes += 1
        return True

    def _route(self, pod: core_pb2.Pod, *, gone: bool = False) -> None:
        node = self.nodes.get(pod.spec.node_name)
        if node is not None:
            node.observe(None if gone else pod, pod.metadata.uid)

    async def start(self) -> None:
        # Register in bounded batches, then spread first heartbeats over one interval so that
        # 1,000 nodes renew at ~100/s instead of all in the same second.
        agents = [node.agent for node in self.nodes.values()]
        for batch in range(0, len(agents), 50):
            await asyncio.gather(*(agent.register() for agent in agents[batch : batch + 50]))
        for agent in agents:
            asyncio.get_running_loop().call_later(
                random.uniform(0, self.config.lease_interval), self._start_agent, agent
            )
        self.pods.add_handler(
            on_add=self._route,
            on_update=lambda old, new: self._route(new),
            on_delete=lambda pod: self._route(pod, gone=True),
        )
        self.pods.start()
        await self.pods.wait_for_sync()
        log.info("%d hollow nodes ready", len(self.nodes))

    def _start_agent(self, agent: NodeAgent) -> None:
        asyncio.get_running_loop().create_task(agent.start())

    async def stop(self) -> None:
        await self.pods.stop()
        await asyncio.gather(*(node.agent.stop() for node in self.nodes.values()))
        for node in self.nodes.values():
            for task in node.pods.values():
                task.cancel()
        if self._owns_client:
            await self.client.close()
