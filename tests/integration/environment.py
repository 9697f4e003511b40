"""What the machine must provide for a test (Docker, root, iptables), and what a test does
when it does not: skip on a developer's machine, fail under CI (CI=true), where it must run."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["unavailable"]


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI: CI is where these tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}; .ci/run must provide it", pytrace=False)
    pytest.skip(reason)
