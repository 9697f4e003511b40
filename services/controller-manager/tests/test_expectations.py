"""Expectations: a controller waits for its own writes to show up in its cache."""

from __future__ import annotations

from bosun.controllermanager.expectations import Expectations


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_creations_are_satisfied_once_each_is_observed() -> None:
    expectations = Expectations(clock=Clock())
    expectations.expect_creations("rs", 2)
    assert not expectations.satisfied("rs")
    expectations.creation_observed("rs")
    assert not expectations.satisfied("rs")
    expectations.creation_observed("rs")
    assert expectations.satisfied("rs")


def test_deletions_are_tracked_by_object_not_by_count() -> None:
    expectations = Expectations(clock=Clock())
    expectations.expect_deletions("rs", ["ns/a", "ns/b"])
    expectations.deletion_observed("rs", "ns/other")  # someone else's delete
    expectations.deletion_observed("rs", "ns/a")
    expectations.deletion_observed("rs", "ns/a")  # the same delete seen twice
    assert expectations.pending("rs") == (0, 1)
    expectations.deletion_observed("rs", "ns/b")
    assert expectations.satisfied("rs")


def test_expectations_expire_so_a_lost_event_cannot_block_forever() -> None:
    clock = Clock()
    expectations = Expectations(ttl=60, clock=clock)
    expectations.expect_creations("rs", 1)
    clock.now = 59
    assert not expectations.satisfied("rs")
    clock.now = 61
    assert expectations.satisfied("rs")


def test_unknown_and_forgotten_keys_are_satisfied() -> None:
    expectations = Expectations(clock=Clock())
    assert expectations.satisfied("never")
    expectations.expect_creations("rs", 3)
    expectations.forget("rs")
    assert expectations.satisfied("rs")
