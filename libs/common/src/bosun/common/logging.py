"""Structured logging for every Bosun component: one JSON object per line, or a human format.

    configure_logging("scheduler", level="INFO")
    log.info("bound pod", extra={"pod": "default/web-0", "node": "n1"})
    → {"ts": "2025-01-01T00:00:00.123+00:00", "level": "INFO", "component": "scheduler",
       "logger": "bosun.scheduler", "msg": "bound pod", "pod": "default/web-0", "node": "n1"}

Fields: `ts` (UTC, ISO 8601), `level`, `component`, `logger`, `msg`, every `extra` field, `exc_info`
when an exception is logged, and `trace_id`/`span_id` when the record is made inside an
OpenTelemetry span, so a log line can be found from its trace and back. JSON encoding is
python-json-logger's. The human format (json=False) prints the same fields on one line:
`ts LEVEL component logger: msg key=value …`.

`configure_logging` owns the root logger's handlers: calling it again replaces the handler it
installed before (idempotent), and it leaves other handlers alone (pytest's caplog, for one).
Records are written synchronously by the stdlib handler; a line is small and stderr is a pipe,
so this does not block the event loop in practice.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

__all__ = ["HumanFormatter", "StructuredJsonFormatter", "configure_logging"]

_RESERVED = frozenset(RESERVED_ATTRS) | {"message", "asctime", "component", "trace_id", "span_id"}


class _ContextFilter(logging.Filter):
    """Stamps each record with the component and, inside a span, the trace and span ids."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True


class StructuredJsonFormatter(JsonFormatter):
    """python-json-logger with Bosun's field names and order (ts first)."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "component", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger", "message": "msg"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["ts"] = _timestamp(record)  # first, so lines sort and scan by time
        super().add_fields(log_data, record, message_dict)


class HumanFormatter(logging.Formatter):
    """`ts LEVEL component logger: msg key=value …`, then the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        component = getattr(record, "component", "-")
        line = f"{_timestamp(record)} {record.levelname:<7} {component} {record.name}: {message}"
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RESERVED and not key.startswith("_")
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id is not None:
            extras["trace_id"] = trace_id
        if extras:
            line += " " + " ".join(f"{key}={_human_value(value)}" for key, value in extras.items())
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def _human_value(value: object) -> str:
    text = str(value)
    return repr(text) if (" " in text or not text) else text


_HANDLER_MARK = "_bosun_handler"


def configure_logging(
    component: str,
    *,
    level: str = "INFO",
    json: bool = True,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send all logging to `stream` (stderr) as structured lines; returns the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(StructuredJsonFormatter() if json else HumanFormatter())
    handler.addFilter(_ContextFilter(component))
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    return handler
