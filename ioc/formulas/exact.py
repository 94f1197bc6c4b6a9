"""Exact arithmetic shared by the formulas: measured decimals as scaled integers, half-up rounding.

Official examples are computed by hand in decimal; binary floats would turn 12.1 into
12.0999... and move truncations and x.5 ties. Concentrations are therefore taken as the exact
decimal they were written as (the shortest ``repr`` that round-trips), held as an integer and a
number of decimal places: 12.1 is (121, 1), i.e. 121 / 10**1. Formulas bring their inputs to one
scale and compute with integers only; a result is an integer numerator and denominator, rounded
by integer division and turned into a float by one correctly rounded ``int / int`` division.

This gives exactly what ``fractions.Fraction`` arithmetic gave (the old path, kept as the
specification in ``tests/formulas/reference.py`` and proven equal by hypothesis) without a gcd
per operation, which made exact NowCasts the largest CPU cost of an engine cycle (issue 16).
``exact_concentration`` and ``round_half_up`` keep the ``Fraction`` interface for other callers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache

from ioc.errors import FormulaInputError

__all__ = [
    "exact_concentration",
    "plain_scaled",
    "pow10",
    "round_half_up",
    "round_half_up_ratio",
    "scaled_concentration",
    "scaled_hours",
]

_INF = math.inf
# 10**k for every scale a float's shortest repr can need (5e-324 has 324 places); 10**k beyond.
_POW10: tuple[int, ...] = tuple(10**k for k in range(400))


def pow10(places: int) -> int:
    """10**places for places >= 0, from a table (the formulas rescale every input with it)."""
    return _POW10[places] if places < 400 else 10**places


def scaled_concentration(name: str, value: float) -> tuple[int, int]:
    """A finite, non-negative concentration as (digits, places): value == digits / 10**places.

    ``places`` is the number of decimals of the value's shortest repr (0 for whole and huge
    values), so 118.7 is (1187, 1) and 1e-05 is (1, 5). Bad input raises FormulaInputError.
    """
    if not math.isfinite(value):
        raise FormulaInputError(f"{name} must be finite, got {value!r}")
    if value < 0:
        raise FormulaInputError(f"{name} must be >= 0 µg/m³, got {value!r}")
    return _scaled(float(value))


def plain_scaled(value: object) -> tuple[int, int] | None:
    """(digits, places) of a finite non-negative float; None for anything else.

    The fast path of the formulas (store values are floats): callers fall back to
    :func:`scaled_concentration`, which names the input in its error, only on None.
    """
    if value.__class__ is float and 0.0 <= value < _INF:
        return _scaled(value)
    return None


def scaled_hours(hourly: Sequence[float | None]) -> list[tuple[int, int] | None]:
    """:func:`scaled_concentration` of every hour (None stays None), named hourly[i] in errors.

    Finite non-negative floats (what the store returns) skip the checks and the error name.
    """
    scaled: list[tuple[int, int] | None] = []
    for i, c in enumerate(hourly):
        if c is None:
            scaled.append(None)
        else:
            scaled.append(plain_scaled(c) or scaled_concentration(f"hourly[{i}]", c))
    return scaled


@lru_cache(maxsize=65536)
def _scaled(value: float) -> tuple[int, int]:
    # repr() is the shortest decimal that round-trips (118.7, not 118.70000000000000284...).
    # Cached: the engine converts each hourly mean for up to 12 NowCast windows.
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    whole, _, decimals = mantissa.partition(".")
    decimals = decimals.rstrip("0")
    digits = int(whole + decimals)
    places = len(decimals) - (int(exponent) if exponent else 0)
    if places < 0:
        return digits * pow10(-places), 0
    return digits, places


def exact_concentration(name: str, value: float) -> Fraction:
    """A finite, non-negative concentration as the exact decimal it was written as."""
    digits, places = scaled_concentration(name, value)
    return Fraction(digits, pow10(places))


def round_half_up(value: Fraction) -> int:
    """Round a non-negative value to the nearest integer, halves going up."""
    return math.floor(value + Fraction(1, 2))


def round_half_up_ratio(numerator: int, denominator: int) -> int:
    """Round numerator / denominator (both >= 0, denominator > 0) to an integer, halves up.

    floor(n/d + 1/2) == floor((2n + d) / 2d), all in integers.
    """
    return (2 * numerator + denominator) // (2 * denominator)
