"""US EPA NowCast and Air Quality Index for PM2.5.

Sources:
- NowCast: EPA/AirNow "The NowCast for PM2.5 and PM10" (weight factor w = Cmin/Cmax, floored at
  1/2; at least 2 of the 3 most recent hours valid; NowCast truncated to 0.1 µg/m³ for PM2.5,
  then converted with the AQI equation and the AQI rounded to the nearest integer).
- Breakpoints: 40 CFR Part 58 Appendix G as revised in 2012 (the "pre-2024" table, used by
  AirNow for the US Embassy Hanoi data of 2019-2020) and EPA's PM NAAQS reconsideration, final
  rule effective 2024-05-06 (EPA-454/B-24-002, Table 6).
- Above the top breakpoint EPA's Technical Assistance Document allows extrapolating with the last
  segment ("beyond the AQI"); we do that and flag it in the result.

Used to cross-check our NowCast against published AirNow data (shared/data/opendata) and for
comparison panels; the Vietnamese index itself is in ``ioc.formulas.aqi_vn``
(INDICATORS.md section 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from fractions import Fraction

from ioc.errors import FormulaInputError
from ioc.formulas.exact import pow10, round_half_up_ratio, scaled_concentration
from ioc.formulas.nowcast import scaled_nowcast

__all__ = [
    "PM25_TABLE_2012",
    "PM25_TABLE_2024",
    "NowCastPm25",
    "PmBreakpoint",
    "PmBreakpointTable",
    "UsAqi",
    "UsAqiCategory",
    "aqi_pm25",
    "nowcast_aqi_pm25",
    "nowcast_pm25",
    "pm25_table_for",
]


class UsAqiCategory(Enum):
    """The six EPA AQI categories, with their official names."""

    GOOD = "Good"
    MODERATE = "Moderate"
    UNHEALTHY_FOR_SENSITIVE_GROUPS = "Unhealthy for Sensitive Groups"
    UNHEALTHY = "Unhealthy"
    VERY_UNHEALTHY = "Very Unhealthy"
    HAZARDOUS = "Hazardous"

    @property
    def label(self) -> str:
        """The category name as EPA and AirNow print it."""
        return self.value


@dataclass(frozen=True, slots=True)
class PmBreakpoint:
    """One row of a breakpoint table: concentration range [c_lo, c_hi] maps to [i_lo, i_hi]."""

    c_lo: Fraction
    c_hi: Fraction
    i_lo: int
    i_hi: int
    category: UsAqiCategory


@dataclass(frozen=True, slots=True)
class PmBreakpointTable:
    """A versioned PM2.5 breakpoint table and the first day it applies."""

    name: str
    effective_from: date
    rows: tuple[PmBreakpoint, ...]


def _bp(c_lo: str, c_hi: str, i_lo: int, i_hi: int, category: UsAqiCategory) -> PmBreakpoint:
    """Build a breakpoint row from decimal strings, so the bounds are exact."""
    return PmBreakpoint(Fraction(c_lo), Fraction(c_hi), i_lo, i_hi, category)


_C = UsAqiCategory

# 40 CFR 58 App. G, 2012 revision (final rule of 14 Dec 2012, effective 18 Mar 2013); in force
# until 2024-05-06. This is the table AirNow applied to the 2019-2020 Hanoi data.
PM25_TABLE_2012 = PmBreakpointTable(
    name="EPA 2012 (pre-2024)",
    effective_from=date(2013, 3, 18),
    rows=(
        _bp("0.0", "12.0", 0, 50, _C.GOOD),
        _bp("12.1", "35.4", 51, 100, _C.MODERATE),
        _bp("35.5", "55.4", 101, 150, _C.UNHEALTHY_FOR_SENSITIVE_GROUPS),
        _bp("55.5", "150.4", 151, 200, _C.UNHEALTHY),
        _bp("150.5", "250.4", 201, 300, _C.VERY_UNHEALTHY),
        _bp("250.5", "350.4", 301, 400, _C.HAZARDOUS),
        _bp("350.5", "500.4", 401, 500, _C.HAZARDOUS),
    ),
)

# PM NAAQS reconsideration, final rule effective 6 May 2024 (EPA-454/B-24-002 Table 6).
PM25_TABLE_2024 = PmBreakpointTable(
    name="EPA 2024",
    effective_from=date(2024, 5, 6),
    rows=(
        _bp("0.0", "9.0", 0, 50, _C.GOOD),
        _bp("9.1", "35.4", 51, 100, _C.MODERATE),
        _bp("35.5", "55.4", 101, 150, _C.UNHEALTHY_FOR_SENSITIVE_GROUPS),
        _bp("55.5", "125.4", 151, 200, _C.UNHEALTHY),
        _bp("125.5", "225.4", 201, 300, _C.VERY_UNHEALTHY),
        _bp("225.5", "325.4", 301, 500, _C.HAZARDOUS),
    ),
)

_TABLES = (PM25_TABLE_2024, PM25_TABLE_2012)  # newest first


def _in_tenths(bound: Fraction) -> int:
    """A breakpoint in tenths of µg/m³ (every EPA PM2.5 breakpoint has one decimal)."""
    tenths = bound * 10
    if tenths.denominator != 1:
        raise ValueError(f"breakpoint {bound} is not a whole number of tenths")
    return tenths.numerator


# The rows in integer tenths of µg/m³ (c_lo, c_hi, i_lo, i_hi), for the integer interpolation.
_ROWS_IN_TENTHS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    table.name: tuple((_in_tenths(r.c_lo), _in_tenths(r.c_hi), r.i_lo, r.i_hi) for r in table.rows)
    for table in _TABLES
}


@dataclass(frozen=True, slots=True)
class NowCastPm25:
    """A PM2.5 NowCast: the concentration truncated to 0.1 µg/m³ and how it was weighted."""

    concentration: float
    weight: float
    hours_used: int


@dataclass(frozen=True, slots=True)
class UsAqi:
    """A PM2.5 AQI value; ``beyond_index`` is True above the table (value extrapolated > 500)."""

    value: int
    category: UsAqiCategory
    concentration: float
    table: str
    beyond_index: bool


def pm25_table_for(on: date) -> PmBreakpointTable:
    """Return the breakpoint table in force on ``on`` (tables change with the PM NAAQS)."""
    for table in _TABLES:
        if on >= table.effective_from:
            return table
    raise FormulaInputError(
        f"date {on.isoformat()} is before the earliest implemented PM2.5 AQI table "
        f"({PM25_TABLE_2012.name}, effective {PM25_TABLE_2012.effective_from.isoformat()})"
    )


def _tenths(numerator: int, denominator: int) -> int:
    """numerator / denominator truncated to 0.1, in tenths (EPA: truncate, never round, PM2.5)."""
    return numerator * 10 // denominator


def nowcast_pm25(hourly: Sequence[float | None]) -> NowCastPm25 | None:
    """EPA NowCast from up to 12 hourly means, most recent first; None when data are too few.

    ``hourly[0]`` is the current hour; ``None`` marks a missing or invalid hour. The NowCast needs
    at least 2 of the 3 most recent hours. Computed in exact integer arithmetic, because the
    result is truncated (not rounded) to 0.1 µg/m³ and a float 42.59999... would lose a tenth.
    """
    cast = scaled_nowcast(hourly)
    if cast is None:
        return None
    return NowCastPm25(
        concentration=_tenths(cast.value_num, cast.value_den) / 10,
        weight=cast.weight_num / cast.weight_den,
        hours_used=cast.hours_used,
    )


def aqi_pm25(concentration: float, *, on: date) -> UsAqi:
    """PM2.5 AQI for a concentration (µg/m³) with the breakpoints in force on ``on``.

    The concentration is truncated to 0.1 µg/m³ first; the AQI is rounded half up. Interpolation
    runs on integer tenths so that a true x.5 rounds up rather than wherever float error puts it.
    """
    table = pm25_table_for(on)
    digits, places = scaled_concentration("concentration", concentration)
    c = _tenths(digits, pow10(places))
    rows = _ROWS_IN_TENTHS[table.name]
    k = next((k for k, r in enumerate(rows) if r[0] <= c <= r[1]), None)
    beyond = k is None
    if k is None:
        # Only possible above the top breakpoint: truncation closes the 0.1 gaps between rows.
        k = len(rows) - 1
    c_lo, c_hi, i_lo, i_hi = rows[k]
    # AQI = (i_hi - i_lo) (c - c_lo) / (c_hi - c_lo) + i_lo, as one integer ratio.
    span = c_hi - c_lo
    return UsAqi(
        value=round_half_up_ratio((i_hi - i_lo) * (c - c_lo) + i_lo * span, span),
        category=table.rows[k].category,
        concentration=c / 10,
        table=table.name,
        beyond_index=beyond,
    )


def nowcast_aqi_pm25(hourly: Sequence[float | None], *, on: date) -> UsAqi | None:
    """NowCast AQI for PM2.5 (the AirNow hourly figure); None when the NowCast has no data."""
    nowcast = nowcast_pm25(hourly)
    if nowcast is None:
        return None
    return aqi_pm25(nowcast.concentration, on=on)
