"""The NowCast weighting shared by VN_AQI (Decision 1459, INDICATORS.md §1.3) and US EPA AQI.

Decision 1459 adopted EPA's NowCast: from up to 12 hourly means c1..c12 (c1 the current hour,
missing hours absent), w* = Cmin/Cmax over the hours present, w = max(w*, 1/2), and the NowCast is
Σ w^(i-1) c_i / Σ w^(i-1) over the hours present; it exists only when at least 2 of c1..c3 do.
Each AQI then applies its own precision (VN keeps it unrounded, EPA truncates to 0.1 µg/m³), so
the value is returned exactly.

Exactly, and in integers (``ioc.formulas.exact``): the hours are brought to one decimal scale
10**-k, so C_i = c_i * 10**k are integers and w = a/b is a ratio of two of them (or 1/2). With
L the oldest hour present, multiplying numerator and denominator by b^L gives

    NowCast = Σ a^i b^(L-i) C_i / (10**k Σ a^i b^(L-i)),

one integer over another, with no gcd along the way (Fraction reduced after every operation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ioc.errors import FormulaInputError
from ioc.formulas.exact import pow10, scaled_hours

NOWCAST_HOURS = 12


@dataclass(frozen=True, slots=True)
class ExactNowCast:
    """A NowCast as an exact fraction, with the weight ratio w*, the weight w and hours used."""

    value: Fraction
    ratio: Fraction
    weight: Fraction
    hours_used: int


@dataclass(frozen=True, slots=True)
class ScaledNowCast:
    """A NowCast as integer ratios (none of them reduced): value, w* and w, and hours used.

    ``value_num / value_den`` is the NowCast in the unit of the inputs; ``ratio_*`` is
    w* = Cmin/Cmax (1/1 for an all-zero window) and ``weight_*`` is w = max(w*, 1/2).
    """

    value_num: int
    value_den: int
    ratio_num: int
    ratio_den: int
    weight_num: int
    weight_den: int
    hours_used: int


def scaled_nowcast(hourly: Sequence[float | None]) -> ScaledNowCast | None:
    """NowCast of up to 12 hourly means, current hour first; None when 2 of c1..c3 are missing."""
    if len(hourly) > NOWCAST_HOURS:
        raise FormulaInputError(
            f"hourly must hold at most {NOWCAST_HOURS} values (current hour first), "
            f"got {len(hourly)}"
        )
    # Every value is checked, even when the window turns out too short (as before).
    scaled = scaled_hours(hourly)
    if sum(s is not None for s in scaled[:3]) < 2:
        return None
    places = max(s[1] for s in scaled if s is not None)
    # C_i = c_i * 10**places, None for a missing hour; trailing missing hours add nothing.
    hours = [
        None if s is None else s[0] if s[1] == places else s[0] * pow10(places - s[1])
        for s in scaled
    ]
    while hours[-1] is None:
        hours.pop()
    present = [c for c in hours if c is not None]
    c_max = max(present)
    c_min = min(present)
    # All-zero window: Cmin/Cmax is 0/0; any weight gives NowCast 0, so report w* = w = 1.
    ratio = (1, 1) if c_max == 0 else (c_min, c_max)
    a, b = ratio if 2 * ratio[0] >= ratio[1] else (1, 2)
    # Horner's scheme: after hour k, numerator = Σ_{i<=k} a^i b^(k-i) C_i, and the same
    # without C_i for the denominator, so only a^i is carried along.
    numerator = 0
    denominator = 0
    a_pow = 1
    for c in hours:
        numerator *= b
        denominator *= b
        if c is not None:
            numerator += a_pow * c
            denominator += a_pow
        a_pow *= a
    return ScaledNowCast(
        numerator, denominator * pow10(places), ratio[0], ratio[1], a, b, len(present)
    )


def weighted_nowcast(hourly: Sequence[float | None]) -> ExactNowCast | None:
    """NowCast of up to 12 hourly means, current hour first; None when 2 of c1..c3 are missing.

    The exact values as fractions, for callers that want them; the AQI modules use
    :func:`scaled_nowcast`, which does not reduce them.
    """
    cast = scaled_nowcast(hourly)
    if cast is None:
        return None
    return ExactNowCast(
        Fraction(cast.value_num, cast.value_den),
        Fraction(cast.ratio_num, cast.ratio_den),
        Fraction(cast.weight_num, cast.weight_den),
        cast.hours_used,
    )
