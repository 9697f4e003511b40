"""Durations both ways: `30s`/`1m30s` flags to seconds, and ages as kubectl prints them.

`human_duration` is kubectl's `duration.HumanDuration` (k8s.io/apimachinery), the one behind
every AGE and LAST SEEN column: precise when it matters (`90s`, `3m20s`), coarse when it does
not (`5h`, `12d`).
"""

from __future__ import annotations

import datetime as dt
import re

import click
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["Duration", "age", "human_duration", "parse_duration", "to_datetime"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str) -> float:
    """Seconds in `text`: a plain number of seconds, or Go-style `1h30m`, `45s`, `500ms`."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        return seconds
    position, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not value or position != len(value):
        raise ValueError(f"invalid duration {text!r} (examples: 30s, 2m, 1h30m, 500ms)")
    return total


class Duration(click.ParamType[float]):
    """A click parameter for durations; the value is seconds as a float."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    total = int(seconds)
    if total < 60 * 2:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def to_datetime(timestamp: Timestamp) -> dt.datetime | None:
    """A set protobuf Timestamp as an aware datetime; None when unset (all zero)."""
    if timestamp.seconds == 0 and timestamp.nanos == 0:
        return None
    return timestamp.ToDatetime(tzinfo=dt.UTC)


def age(timestamp: Timestamp, now: dt.datetime) -> str:
    """The AGE column for `timestamp`: `<unknown>` when it is unset."""
    moment = to_datetime(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())
