"""The committed generated code under libs/common/src/bosun/api matches proto/.

Runs scripts/check_proto_drift.sh, which regenerates every proto into a temp dir with the same
generators as `make proto` (grpc_tools.protoc + mypy-protobuf) and diffs against the committed
files, so editing a .proto without running `make proto` fails here with the diff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "check_proto_drift.sh"


def test_generated_code_matches_protos() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is needed to run scripts/check_proto_drift.sh")
    # Use this interpreter (the venv running pytest): it has grpcio-tools, and its bin dir holds
    # the protoc-gen-mypy plugins.
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            "generated protobuf code drifted from proto/ (run `make proto` and commit):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
