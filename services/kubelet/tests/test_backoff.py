from __future__ import annotations

import pytest

from bosun.kubelet.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_restart_is_immediate_then_windows_double_up_to_the_cap() -> None:
    clock = Clock()
    backoff = Backoff(initial=10, maximum=300, clock=clock)
    assert backoff.remaining("pod/app", since=clock.now) == 0
    windows = [backoff.next("pod/app") for _ in range(8)]
    assert windows == [10, 20, 40, 80, 160, 300, 300, 300]


def test_remaining_counts_the_window_from_when_the_container_exited() -> None:
    clock = Clock()
    backoff = Backoff(initial=10, maximum=300, clock=clock)
    backoff.next("k")  # restarted once: the next restart waits 10 s after the next exit
    exited = clock.now
    clock.now += 4
    assert backoff.remaining("k", since=exited) == pytest.approx(6)
    clock.now += 6
    assert backoff.remaining("k", since=exited) == 0


def test_a_long_run_resets_the_backoff() -> None:
    clock = Clock()
    backoff = Backoff(initial=10, maximum=300, reset_after=600, clock=clock)
    for _ in range(5):
        backoff.next("k")
    backoff.reset_if_ran("k", ran_for=599)
    assert backoff.window("k") == 160
    backoff.reset_if_ran("k", ran_for=600)
    assert backoff.remaining("k", since=clock.now) == 0
    assert backoff.next("k") == 10


def test_keys_are_independent_and_forget_prefix_drops_a_pods_keys() -> None:
    backoff = Backoff(initial=1, maximum=8)
    backoff.next("uid-1/a")
    backoff.next("uid-1/b")
    backoff.next("uid-2/a")
    backoff.forget_prefix("uid-1/")
    assert (backoff.window("uid-1/a"), backoff.window("uid-1/b"), backoff.window("uid-2/a")) == (
        0,
        0,
        1,
    )


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=10, maximum=5)
