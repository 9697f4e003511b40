"""Kubernetes quantities parse to exact values."""

from __future__ import annotations

from fractions import Fraction

import pytest

from bosun.common.quantity import QuantityError, milli_value, parse_quantity, value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Fraction(0)),
        ("1", Fraction(1)),
        ("1.5", Fraction(3, 2)),
        (".5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("+2", Fraction(2)),
        ("-2", Fraction(-2)),
        ("500m", Fraction(1, 2)),
        ("100u", Fraction(1, 10_000)),
        ("3n", Fraction(3, 10**9)),
        ("1k", Fraction(1000)),
        ("2M", Fraction(2 * 10**6)),
        ("1G", Fraction(10**9)),
        ("1T", Fraction(10**12)),
        ("1P", Fraction(10**15)),
        ("1E", Fraction(10**18)),
        ("1Ki", Fraction(1024)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1.5Gi", Fraction(3 * 2**29)),
        ("1Ti", Fraction(2**40)),
        ("1Pi", Fraction(2**50)),
        ("1Ei", Fraction(2**60)),
        ("1e3", Fraction(1000)),
        ("1E3", Fraction(1000)),
        ("5e-1", Fraction(1, 2)),
        ("2e+2", Fraction(200)),
        ("128974848", Fraction(128974848)),
    ],
)
def test_quantity_values(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "m", "1x", "1 Mi", "1mi", "1KI", "abc", "1.2.3", "--1", "1e"])
def test_malformed_quantity_is_an_error_quoting_it(text: str) -> None:
    with pytest.raises(QuantityError, match="quantity"):
        parse_quantity(text)


def test_quantity_error_is_a_value_error() -> None:
    assert issubclass(QuantityError, ValueError)


def test_huge_exponent_is_refused_not_computed() -> None:
    with pytest.raises(QuantityError, match="out of range"):
        parse_quantity("1e999999999")


def test_equal_quantities_in_different_units_compare_equal() -> None:
    assert parse_quantity("1") == parse_quantity("1000m")
    assert parse_quantity("1Gi") > parse_quantity("1G")


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("1500m", 2), ("1Ki", 1024)])
def test_value_rounds_up(text: str, expected: int) -> None:
    assert value(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("1", 1000), ("250m", 250), ("1n", 1)])
def test_milli_value_rounds_up(text: str, expected: int) -> None:
    assert milli_value(text) == expected
