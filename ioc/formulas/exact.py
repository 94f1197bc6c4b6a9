"""Exact arithmetic shared by the formulas: measured decimals as fractions, half-up rounding.

Official examples are computed by hand in decimal; binary floats would turn 12.1 into
12.0999... and move truncations and x.5 ties. Concentrations are therefore converted to the
exact decimal they were written as, and rounding is done on fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

from ioc.errors import FormulaInputError


def exact_concentration(name: str, value: float) -> Fraction:
    """A finite, non-negative concentration as the exact decimal it was written as."""
    if not math.isfinite(value):
        raise FormulaInputError(f"{name} must be finite, got {value!r}")
    if value < 0:
        raise FormulaInputError(f"{name} must be >= 0 µg/m³, got {value!r}")
    return _exact(float(value))


@lru_cache(maxsize=65536)
def _exact(value: float) -> Fraction:
    # repr() is the shortest decimal that round-trips (118.7, not 118.70000000000000284...).
    # Cached: the engine converts each hourly mean for up to 12 NowCast windows.
    return Fraction(repr(value))


def round_half_up(value: Fraction) -> int:
    """Round a non-negative value to the nearest integer, halves going up."""
    return math.floor(value + Fraction(1, 2))
