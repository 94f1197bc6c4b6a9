"""The ``Fraction`` formulas as they were before scaled-integer arithmetic: the specification.

Issue 16 replaced ``fractions.Fraction`` in the hot formula paths with exact arithmetic on scaled
integers. The functions below are verbatim copies of the old path (commit 7d8e491), kept so that
``test_scaled_equivalence.py`` can prove, on generated inputs, that the new path returns exactly
what this one does, and so that ``bench.formulas`` can measure the new path against it. The
result types, breakpoint tables and constants are imported from the production modules (they did
not change); only the arithmetic is the old one. Do not "fix" or speed up anything here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache

from ioc.errors import FormulaInputError
from ioc.formulas.aqi_us import NowCastPm25, UsAqi, pm25_table_for
from ioc.formulas.aqi_vn import (
    _BREAKPOINTS,
    _COLUMN_POLLUTANT,
    _INDEX_LEVELS,
    AQI_MAX,
    HOURS_PER_DAY,
    O3_8H_WINDOW,
    BreakpointColumn,
    DailyMean,
    NowCast,
    SubIndex,
)
from ioc.formulas.nowcast import NOWCAST_HOURS

__all__ = [
    "ExactNowCast",
    "aqi_pm25",
    "daily_pm_mean",
    "exact_concentration",
    "nowcast",
    "nowcast_aqi_pm25",
    "nowcast_pm25",
    "o3_8h_means",
    "round_half_up",
    "sub_index",
    "weighted_nowcast",
]

# --- verbatim from ioc/formulas/exact.py (commit 7d8e491) ------------------------------


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


# --- verbatim from ioc/formulas/nowcast.py (commit 7d8e491) ----------------------------


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


# --- verbatim from ioc/formulas/aqi_us.py (commit 7d8e491) -----------------------------


def _truncate_tenth(value: Fraction) -> Fraction:
    """Truncate a non-negative value to 0.1 (EPA: truncate, never round, PM2.5 concentrations)."""
    return Fraction(math.floor(value * 10), 10)


def nowcast_pm25(hourly: Sequence[float | None]) -> NowCastPm25 | None:
    """EPA NowCast from up to 12 hourly means, most recent first; None when data are too few.

    ``hourly[0]`` is the current hour; ``None`` marks a missing or invalid hour. The NowCast needs
    at least 2 of the 3 most recent hours. Computed in exact rational arithmetic, because the
    result is truncated (not rounded) to 0.1 µg/m³ and a float 42.59999... would lose a tenth.
    """
    exact = weighted_nowcast(hourly)
    if exact is None:
        return None
    return NowCastPm25(
        concentration=float(_truncate_tenth(exact.value)),
        weight=float(exact.weight),
        hours_used=exact.hours_used,
    )


def aqi_pm25(concentration: float, *, on: date) -> UsAqi:
    """PM2.5 AQI for a concentration (µg/m³) with the breakpoints in force on ``on``.

    The concentration is truncated to 0.1 µg/m³ first; the AQI is rounded half up. Interpolation
    runs on exact fractions so that a true x.5 rounds up rather than wherever float error puts it.
    """
    table = pm25_table_for(on)
    c = _truncate_tenth(exact_concentration("concentration", concentration))
    row = next((r for r in table.rows if r.c_lo <= c <= r.c_hi), None)
    beyond = row is None
    if row is None:
        # Only possible above the top breakpoint: truncation closes the 0.1 gaps between rows.
        row = table.rows[-1]
    exact = Fraction(row.i_hi - row.i_lo) * (c - row.c_lo) / (row.c_hi - row.c_lo) + row.i_lo
    return UsAqi(
        value=round_half_up(exact),
        category=row.category,
        concentration=float(c),
        table=table.name,
        beyond_index=beyond,
    )


def nowcast_aqi_pm25(hourly: Sequence[float | None], *, on: date) -> UsAqi | None:
    """NowCast AQI for PM2.5 (the AirNow hourly figure); None when the NowCast has no data."""
    nowcast = nowcast_pm25(hourly)
    if nowcast is None:
        return None
    return aqi_pm25(nowcast.concentration, on=on)


# --- verbatim from ioc/formulas/aqi_vn.py (commit 7d8e491) -----------------------------


def nowcast(hourly: Sequence[float | None]) -> NowCast | None:
    """NowCast for PM2.5/PM10 from up to 12 hourly means, c1 (current hour) first (§1.3).

    ``None`` entries are missing hours (weight 0). Returns None ("no data") unless at least 2 of
    c1, c2, c3 exist. Cmin/Cmax are over the values that exist ([U] reading in §1.3).
    Deliberate choice per §1.3: the normalised form Σw^(i-1)c_i / Σw^(i-1) is used for w = 1/2 as
    well, not the decision's literal Σ(1/2)^i c_i.
    """
    exact = weighted_nowcast(hourly)
    if exact is None:
        return None
    return NowCast(
        value=float(exact.value),
        weight=float(exact.weight),
        weight_ratio=float(exact.ratio),
        hours_used=exact.hours_used,
    )


def sub_index(column: BreakpointColumn, concentration: float) -> SubIndex:
    """AQI_x by linear interpolation in Table 2 (§1.3 step 2); capped at 500 above level 8."""
    c = exact_concentration(f"{column.value} concentration", concentration)
    breakpoints = _BREAKPOINTS[column]
    top = breakpoints[-1]
    if c > top:
        if column is BreakpointColumn.O3_8H:
            # §1.2/§1.4: the 8h column is undefined above 400; the daily rule uses 1h only.
            raise FormulaInputError(
                f"O3 8h concentration {concentration!r} µg/m³ is above the table's last "
                f"breakpoint ({top}); use the 1h-based sub-index"
            )
        # §1.2 proposal [U]: cap at 500 and flag "beyond index".
        return SubIndex(
            pollutant=_COLUMN_POLLUTANT[column],
            column=column,
            concentration=float(concentration),
            value=float(AQI_MAX),
            rounded=AQI_MAX,
            beyond_index=True,
        )
    # First segment whose upper breakpoint reaches c; on a shared endpoint both segments agree.
    i = next(k for k in range(len(breakpoints) - 1) if c <= breakpoints[k + 1])
    bp_lo, bp_hi = breakpoints[i], breakpoints[i + 1]
    i_lo, i_hi = _INDEX_LEVELS[i], _INDEX_LEVELS[i + 1]
    exact = Fraction(i_hi - i_lo) * (c - bp_lo) / (bp_hi - bp_lo) + i_lo
    return SubIndex(
        pollutant=_COLUMN_POLLUTANT[column],
        column=column,
        concentration=float(concentration),
        value=float(exact),
        rounded=round_half_up(exact),
        beyond_index=False,
    )


def daily_pm_mean(hourly: Sequence[float | None], *, min_hours: int = 18) -> DailyMean:
    """24 h mean of PM hours labelled 01:00..00:00 (§1.4); ``min_hours`` is the [U] 75% rule."""
    if len(hourly) != HOURS_PER_DAY:
        raise FormulaInputError(
            f"hourly must hold the {HOURS_PER_DAY} values 01:00..00:00, got {len(hourly)}"
        )
    if not 1 <= min_hours <= HOURS_PER_DAY:
        raise FormulaInputError(f"min_hours must be in 1..{HOURS_PER_DAY}, got {min_hours!r}")
    present = [
        exact_concentration(f"hourly[{i}]", c) for i, c in enumerate(hourly) if c is not None
    ]
    if len(present) < min_hours:
        return DailyMean(None, len(present), min_hours)
    return DailyMean(float(sum(present, Fraction(0)) / len(present)), len(present), min_hours)


def o3_8h_means(hourly: Sequence[float | None], *, min_hours: int = 6) -> tuple[float | None, ...]:
    """Rolling 8 h O3 means: entry k is the mean of hourly[k..k+7], i.e. labelled at k+7 (§1.4).

    Pass the day's 24 hours (01:00..00:00) preceded by the previous day's 7 last hours (18:00..
    00:00), oldest first, to get the day's 24 values. 1459 gives no completeness rule for the
    8 h mean; ``min_hours`` (default 6 of 8, i.e. 75%) is a [U] design choice.
    """
    if not 1 <= min_hours <= O3_8H_WINDOW:
        raise FormulaInputError(f"min_hours must be in 1..{O3_8H_WINDOW}, got {min_hours!r}")
    values = [
        None if c is None else exact_concentration(f"hourly[{i}]", c) for i, c in enumerate(hourly)
    ]
    means: list[float | None] = []
    for k in range(len(values) - O3_8H_WINDOW + 1):
        window = [c for c in values[k : k + O3_8H_WINDOW] if c is not None]
        means.append(
            float(sum(window, Fraction(0)) / len(window)) if len(window) >= min_hours else None
        )
    return tuple(means)
