"""Kubernetes resource quantities ("500m", "128Mi", "1.5", "2e3") as exact fractions.

A quantity is a signed decimal number followed by at most one suffix: a decimal SI suffix
(n u m k M G T P E), a binary SI suffix (Ki Mi Gi Ti Pi Ei) or a decimal exponent (e3, E-2).
Values are kept as `fractions.Fraction`, so "0.1" + "0.2" is exactly "0.3" and comparisons
between "1" and "1000m" are exact; `value` and `milli_value` round up to integers as
Kubernetes' `Quantity.Value()` / `MilliValue()` do.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["QUANTITY_PATTERN", "QuantityError", "milli_value", "parse_quantity", "value"]


class QuantityError(ValueError):
    """Text that is not a Kubernetes quantity."""


QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
"""The pattern Kubernetes quotes in its error message for a malformed quantity."""

_QUANTITY = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)", re.DOTALL)
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")
_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}
# Kubernetes caps quantities far below this; the cap keeps "1e999999999" from hanging us.
_MAX_EXPONENT = 308


def parse_quantity(text: str) -> Fraction:
    """The exact value of quantity `text`; QuantityError when it is not one."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(
            f"quantity {text!r} must match the regular expression {QUANTITY_PATTERN!r}"
        )
    sign, number, suffix = match.groups()
    if suffix in _SUFFIXES:
        multiplier = _SUFFIXES[suffix]
    else:
        exponent = _EXPONENT.fullmatch(suffix)
        if exponent is None:
            raise QuantityError(
                f"quantity {text!r} has an unknown suffix {suffix!r} (expected one of "
                "n u m k M G T P E Ki Mi Gi Ti Pi Ei, or an exponent such as e3)"
            )
        power = int(exponent.group(1))
        if abs(power) > _MAX_EXPONENT:
            raise QuantityError(f"quantity {text!r} is out of range")
        multiplier = Fraction(10) ** power
    magnitude = Fraction(number) * multiplier
    return -magnitude if sign == "-" else magnitude


def value(text: str) -> int:
    """The quantity rounded up to an integer (bytes for memory, cores for cpu)."""
    return math.ceil(parse_quantity(text))


def milli_value(text: str) -> int:
    """The quantity in thousandths, rounded up (millicores for cpu)."""
    return math.ceil(parse_quantity(text) * 1000)
