"""The NowCast weighting shared by VN_AQI (Decision 1459, INDICATORS.md §1.3) and US EPA AQI.

Decision 1459 adopted EPA's NowCast: from up to 12 hourly means c1..c12 (c1 the current hour,
missing hours absent), w* = Cmin/Cmax over the hours present, w = max(w*, 1/2), and the NowCast is
Σ w^(i-1) c_i / Σ w^(i-1) over the hours present; it exists only when at least 2 of c1..c3 do.
Each AQI then applies its own precision (VN keeps it unrounded, EPA truncates to 0.1 µg/m³), so
the value is returned exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ioc.errors import FormulaInputError
from ioc.formulas.exact import exact_concentration

NOWCAST_HOURS = 12


@dataclass(frozen=True, slots=True)
class ExactNowCast:
    """A NowCast as an exact fraction, with the weight ratio w*, the weight w and hours used."""

    value: Fraction
    ratio: Fraction
    weight: Fraction
    hours_used: int


def weighted_nowcast(hourly: Sequence[float | None]) -> ExactNowCast | None:
    """NowCast of up to 12 hourly means, current hour first; None when 2 of c1..c3 are missing."""
    if len(hourly) > NOWCAST_HOURS:
        raise FormulaInputError(
            f"hourly must hold at most {NOWCAST_HOURS} values (current hour first), "
            f"got {len(hourly)}"
        )
    values = [
        None if c is None else exact_concentration(f"hourly[{i}]", c) for i, c in enumerate(hourly)
    ]
    if sum(c is not None for c in values[:3]) < 2:
        return None
    present = [(i, c) for i, c in enumerate(values) if c is not None]
    c_max = max(c for _, c in present)
    c_min = min(c for _, c in present)
    # All-zero window: Cmin/Cmax is 0/0; any weight gives NowCast 0, so report w* = w = 1.
    ratio = Fraction(1) if c_max == 0 else c_min / c_max
    weight = max(ratio, Fraction(1, 2))
    powers = [Fraction(1)]  # w^0..w^11, each from the previous one (cheaper than w**i)
    for _ in range(1, len(values)):
        powers.append(powers[-1] * weight)
    numerator = sum((powers[i] * c for i, c in present), Fraction(0))
    denominator = sum((powers[i] for i, _ in present), Fraction(0))
    return ExactNowCast(numerator / denominator, ratio, weight, len(present))
