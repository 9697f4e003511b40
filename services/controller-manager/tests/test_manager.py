"""Choosing controllers (`--controllers`) and the command line."""

from __future__ import annotations

import pytest

from bosun.controllermanager.main import options_from_args, parse_args
from bosun.controllermanager.manager import known_controllers, select_controllers

KNOWN = ["replicaset", "deployment", "podgc"]


def test_star_selects_all_and_minus_removes() -> None:
    assert select_controllers("*", KNOWN) == KNOWN
    assert select_controllers("*,-podgc", KNOWN) == ["replicaset", "deployment"]
    assert select_controllers("deployment,replicaset", KNOWN) == ["deployment", "replicaset"]
    assert select_controllers("-podgc,*", KNOWN) == ["replicaset", "deployment"]


def test_unknown_controller_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="'jobs'"):
        select_controllers("*,-jobs", KNOWN)


def test_every_issue_controller_is_known() -> None:
    assert set(known_controllers()) == {
        "replicaset",
        "deployment",
        "garbagecollector",
        "namespace",
        "serviceaccount",
        "podgc",
        "nodelifecycle",
        "endpoints",
    }


def test_flags_reach_the_controller_options() -> None:
    args = parse_args(
        [
            "--controllers=*,-podgc",
            "--node-monitor-grace-period=5",
            "--default-toleration-seconds=7",
            "--concurrent-syncs=3",
        ]
    )
    options = options_from_args(args)
    assert "podgc" not in args.controller_names
    assert (options.node_monitor_grace_period, options.default_toleration_seconds) == (5.0, 7)
    assert options.workers == 3
    assert args.leader_elect


def test_inconsistent_leader_election_timings_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--leader-elect-renew-deadline=20"])
