"""Leader election on Lease objects in a real apiserver: one leader, fast takeover on release."""

from __future__ import annotations

import asyncio
import contextlib

from bosun.common import testing
from bosun.common.client import Client
from bosun.common.leaderelection import LeaderElector


def elector(client: Client, identity: str) -> LeaderElector:
    return LeaderElector(
        leases=client.leases,
        name="bosun-test",
        namespace="kube-system",
        identity=identity,
        lease_duration=3.0,
        renew_deadline=2.0,
        retry_period=0.2,
    )


async def test_exactly_one_candidate_leads_and_the_other_takes_over(client: Client) -> None:
    first, second = elector(client, "a"), elector(client, "b")
    tasks = {e: asyncio.create_task(e.run()) for e in (first, second)}
    await testing.eventually(lambda: first.is_leader or second.is_leader)
    await asyncio.sleep(1.0)
    assert first.is_leader != second.is_leader
    leader, follower = (first, second) if first.is_leader else (second, first)
    tasks[leader].cancel()  # releases the lease on the way out
    with contextlib.suppress(asyncio.CancelledError):
        await tasks[leader]
    await testing.eventually(lambda: follower.is_leader, timeout=2.0)
    lease = await client.leases.get("bosun-test", namespace="kube-system")
    assert lease.spec.holder_identity == follower.identity
    assert lease.spec.lease_transitions >= 1
    tasks[follower].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tasks[follower]
