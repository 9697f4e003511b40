"""Taint tolerations, eviction times and the eviction rate limit."""

from __future__ import annotations

from bosun.api.v1 import core_pb2
from bosun.controllermanager.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    RateLimit,
    eviction_time,
    tolerates,
)


def taint(key: str, added: int = 1000) -> core_pb2.Taint:
    out = core_pb2.Taint(key=key, effect="NoExecute")
    out.time_added.seconds = added
    return out


def pod(*tolerations: core_pb2.Toleration) -> core_pb2.Pod:
    out = core_pb2.Pod()
    out.spec.tolerations.extend(tolerations)
    return out


def test_toleration_matching() -> None:
    assert tolerates(core_pb2.Toleration(operator="Exists"), taint(UNREACHABLE))
    assert tolerates(
        core_pb2.Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute"),
        taint(UNREACHABLE),
    )
    assert not tolerates(core_pb2.Toleration(key=NOT_READY, operator="Exists"), taint(UNREACHABLE))
    assert not tolerates(
        core_pb2.Toleration(key=UNREACHABLE, operator="Exists", effect="NoSchedule"),
        taint(UNREACHABLE),
    )


def test_untolerated_unreachable_taint_gets_the_default_toleration() -> None:
    assert eviction_time(pod(), [taint(UNREACHABLE)], 300) == 1300


def test_toleration_seconds_bound_the_stay_and_forever_means_never() -> None:
    bounded = core_pb2.Toleration(key=UNREACHABLE, operator="Exists", toleration_seconds=5)
    forever = core_pb2.Toleration(key=UNREACHABLE, operator="Exists")
    assert eviction_time(pod(bounded), [taint(UNREACHABLE)], 300) == 1005
    assert eviction_time(pod(forever), [taint(UNREACHABLE)], 300) is None


def test_any_other_untolerated_no_execute_taint_evicts_at_once() -> None:
    assert eviction_time(pod(), [taint("dedicated", added=50)], 300) == 50


def test_rate_limit_refuses_beyond_the_burst_until_tokens_refill() -> None:
    now = [0.0]
    limit = RateLimit(qps=1.0, burst=1, clock=lambda: now[0])
    assert limit.try_take()
    assert not limit.try_take()
    assert not limit.try_take()  # asking again does not borrow against the future
    now[0] = 1.0
    assert limit.try_take()
