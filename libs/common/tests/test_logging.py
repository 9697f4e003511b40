"""configure_logging: JSON lines with Bosun's fields, the human format, and re-configuration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

from bosun.common.logging import configure_logging

log = logging.getLogger("bosun.test")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_ts_level_component_logger_and_msg_in_that_order() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    log.info("bound %s", "web-0")
    [line] = json_lines(stream)
    assert list(line)[:5] == ["ts", "level", "component", "logger", "msg"]
    assert line["level"] == "INFO"
    assert line["component"] == "scheduler"
    assert line["logger"] == "bosun.test"
    assert line["msg"] == "bound web-0"
    assert line["ts"].endswith("+00:00")


def test_a_json_line_carries_the_extra_fields() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    log.info("bound", extra={"pod": "default/web-0", "attempt": 2})
    [line] = json_lines(stream)
    assert line["pod"] == "default/web-0"
    assert line["attempt"] == 2


def test_extra_values_json_cannot_encode_are_written_as_text() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    log.info("odd", extra={"thing": object()})
    [line] = json_lines(stream)
    assert "object" in line["thing"]


def test_a_json_line_carries_the_traceback_of_a_logged_exception() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    try:
        raise ValueError("bad input")
    except ValueError:
        log.exception("failed")
    [line] = json_lines(stream)
    assert "ValueError: bad input" in line["exc_info"]


def test_a_json_line_logged_inside_a_span_carries_its_trace_and_span_ids() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", stream=stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        log.info("inside")
    log.info("outside")
    inside, outside = json_lines(stream)
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in outside


def test_the_human_format_is_one_line_with_level_component_logger_msg_and_extras() -> None:
    stream = io.StringIO()
    configure_logging("kubelet", json=False, stream=stream)
    log.warning("probe failed", extra={"pod": "web-0", "reason": "timed out"})
    [line] = stream.getvalue().splitlines()
    assert "WARNING kubelet bosun.test: probe failed" in line
    assert line.endswith("pod=web-0 reason='timed out'")


def test_records_below_the_level_are_dropped() -> None:
    stream = io.StringIO()
    configure_logging("scheduler", level="warning", stream=stream)
    log.info("quiet")
    log.warning("loud")
    assert [line["msg"] for line in json_lines(stream)] == ["loud"]


def test_configuring_again_replaces_the_previous_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("scheduler", stream=first)
    configure_logging("scheduler", stream=second)
    log.info("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1
