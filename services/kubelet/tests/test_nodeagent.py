from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bosun.api.v1 import coordination_pb2, core_pb2
from bosun.common.errors import AlreadyExistsError, NotFoundError
from bosun.kubelet.nodeagent import NodeAgent, NodeConfig, NodeHealth, node_status, parse_taint


def test_parse_taint() -> None:
    assert parse_taint("gpu=true:NoSchedule") == core_pb2.Taint(
        key="gpu", value="true", effect="NoSchedule"
    )
    assert parse_taint("spot:PreferNoSchedule") == core_pb2.Taint(
        key="spot", effect="PreferNoSchedule"
    )
    for bad in ("gpu", "gpu=1:Sometimes", ":NoSchedule"):
        with pytest.raises(ValueError, match="taint"):
            parse_taint(bad)


def health(**fields: Any) -> NodeHealth:
    return NodeHealth(capacity={"cpu": "2"}, allocatable={"cpu": "2"}, **fields)


def test_conditions_keep_transition_times_until_they_flip() -> None:
    config = NodeConfig(name="n", addresses=[("InternalIP", "10.0.0.1")])
    first = node_status(config, health(), core_pb2.NodeStatus(), now=100)
    conditions = {c.type: c for c in first.conditions}
    assert {k: c.status for k, c in conditions.items()} == {
        "Ready": "True",
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
    }
    assert conditions["Ready"].reason == "KubeletReady"
    second = node_status(
        config, health(disk_pressure=True, runtime_ok=False, runtime_message="gone"), first, now=200
    )
    conditions = {c.type: c for c in second.conditions}
    assert (
        conditions["DiskPressure"].status,
        conditions["DiskPressure"].last_transition_time.seconds,
    ) == ("True", 200)
    assert conditions["Ready"].status == "False"
    assert "gone" in conditions["Ready"].message
    assert conditions["MemoryPressure"].last_transition_time.seconds == 100
    assert conditions["MemoryPressure"].last_heartbeat_time.seconds == 200


@dataclass
class FakeNodes:
    existing: core_pb2.Node | None = None
    status_writes: list[core_pb2.NodeStatus] = field(default_factory=list)

    async def create(self, node: core_pb2.Node) -> core_pb2.Node:
        if self.existing is not None:
            raise AlreadyExistsError("exists")
        node.metadata.uid = "node-uid"
        self.existing = node
        return node

    async def get(self, name: str) -> core_pb2.Node:
        assert self.existing is not None
        return self.existing

    async def update(self, node: core_pb2.Node) -> core_pb2.Node:
        self.existing = node
        return node

    async def update_status(self, node: core_pb2.Node) -> core_pb2.Node:
        self.status_writes.append(node.status)
        return node


@dataclass
class FakeLeases:
    lease: coordination_pb2.Lease | None = None
    updates: int = 0

    async def get(self, name: str, *, namespace: str = "") -> coordination_pb2.Lease:
        if self.lease is None:
            raise NotFoundError("no lease")
        return self.lease

    async def create(self, lease: coordination_pb2.Lease) -> coordination_pb2.Lease:
        self.lease = lease
        return lease

    async def update(self, lease: coordination_pb2.Lease) -> coordination_pb2.Lease:
        self.updates += 1
        self.lease = lease
        return lease


async def test_registration_adopts_an_existing_node_and_merges_labels() -> None:
    existing = core_pb2.Node()
    existing.metadata.name = "n"
    existing.metadata.labels["team"] = "a"
    existing.spec.unschedulable = True
    nodes = FakeNodes(existing)

    async def report() -> NodeHealth:
        return health()

    agent = NodeAgent(
        NodeConfig(
            name="n", labels={"kubernetes.io/hostname": "n"}, taints=[parse_taint("x:NoSchedule")]
        ),
        nodes=nodes,
        leases=FakeLeases(),
        health=report,
    )
    node = await agent.register()
    assert dict(node.metadata.labels) == {"team": "a", "kubernetes.io/hostname": "n"}
    assert node.spec.unschedulable
    assert not node.spec.taints


async def test_lease_is_created_then_renewed_and_status_written_only_on_change() -> None:
    clock = [1000.0]
    nodes, leases = FakeNodes(), FakeLeases()
    current = health()

    async def report() -> NodeHealth:
        return current

    agent = NodeAgent(
        NodeConfig(name="n", status_report_interval=60),
        nodes=nodes,
        leases=leases,
        health=report,
        clock=lambda: clock[0],
    )
    await agent.register()
    await agent.renew_lease()
    assert leases.lease is not None
    assert leases.lease.metadata.namespace == "kube-node-lease"
    assert leases.lease.metadata.owner_references[0].uid == "node-uid"
    clock[0] += 10
    await agent.renew_lease()
    assert leases.updates == 1
    assert leases.lease.spec.renew_time.seconds == 1010
    await agent.update_status()
    clock[0] += 10
    await agent.update_status()
    assert len(nodes.status_writes) == 1  # only heartbeat times changed
    current = health(memory_pressure=True)
    await agent.update_status()
    assert len(nodes.status_writes) == 2
    clock[0] += 61
    await agent.update_status()
    assert len(nodes.status_writes) == 3  # reported again after status_report_interval
