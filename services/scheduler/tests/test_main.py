"""The command line: a bad --config stops the scheduler at once with a message naming the
file and the field."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bosun.scheduler.main import main, parse_args


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    """main() installs a handler on this test's captured stderr; later tests must not log to
    it once it is closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("profiles: [{plugins: {score: {enabled: [{name: Bogus}]}}}]", "enabled[0]"),
        ("podMaxBackoffSeconds: fast", "podMaxBackoffSeconds"),
    ],
)
def test_bad_config_exits_with_the_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "--metrics-port", "0", "--log-format", "text"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert str(path) in error
    assert field in error


def test_defaults_match_the_documented_ports() -> None:
    args = parse_args([])
    assert args.apiserver == "127.0.0.1:6443"
    assert args.metrics_port == 10251
    assert args.health_address == "0.0.0.0:10259"
    assert not args.leader_elect
