"""Vietnam Air Quality Index (VN_AQI) per Decision 1459/QĐ-TCMT (VEA, 12 Nov 2019).

Implemented from shared/domain/INDICATORS.md section 1:
- §1.1 inputs: µg/m³ for every pollutant (CO included), per station; AQI only if PM10 or PM2.5
  is present.
- §1.2 breakpoint table (Table 2) and the [U] proposal for values above level 8: cap at 500 and
  flag "beyond index" (``beyond_index`` on the results).
- §1.3 hourly AQI: NowCast for PM2.5/PM10, linear sub-index, max of sub-indices rounded.
- §1.4 daily AQI: PM 24 h mean (01:00..00:00), O3 max of 1h- and 8h-based values, max 1 h for
  SO2/NO2/CO; the completeness rule is a [U] design choice (default 18 of 24 hours).
- §1.5 bands and colours (Table 1).

Rounding: the decision says "rounded to an integer"; we round half up (§1.6 discusses the
decision's own inconsistent printed values and settles on round-half-up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from ioc.errors import FormulaInputError
from ioc.formulas.exact import (
    plain_scaled,
    pow10,
    round_half_up_ratio,
    scaled_concentration,
    scaled_hours,
)
from ioc.formulas.nowcast import scaled_nowcast

__all__ = [
    "AQI_MAX",
    "AqiBand",
    "BandSpec",
    "BreakpointColumn",
    "DailyMean",
    "NowCast",
    "Pollutant",
    "SubIndex",
    "VnAqi",
    "band_for",
    "daily_aqi",
    "daily_max_o3_8h",
    "daily_pm_mean",
    "hourly_aqi",
    "nowcast",
    "o3_8h_means",
    "sub_index",
]

AQI_MAX = 500
HOURS_PER_DAY = 24
O3_8H_WINDOW = 8
# §1.2: the O3 8h column stops at 400 µg/m³; §1.4: above it only the 1h-based value counts.
O3_8H_MAX = 400.0
_O3_8H_MAX_WHOLE = int(O3_8H_MAX)  # the same bound, for the exact integer comparison


class Pollutant(Enum):
    """The six pollutants of §1.1."""

    SO2 = "SO2"
    CO = "CO"
    NO2 = "NO2"
    O3 = "O3"
    PM10 = "PM10"
    PM2_5 = "PM2.5"


class BreakpointColumn(Enum):
    """A column of Table 2 (§1.2): a pollutant, and for O3 the averaging period."""

    O3_1H = "O3 1h"
    O3_8H = "O3 8h"
    CO = "CO"
    SO2 = "SO2"
    NO2 = "NO2"
    PM10 = "PM10"
    PM2_5 = "PM2.5"


# §1.2 Table 2 [V]: index levels I_i and the breakpoints BP_i (µg/m³) per column.
_INDEX_LEVELS: tuple[int, ...] = (0, 50, 100, 150, 200, 300, 400, 500)
_BREAKPOINTS: dict[BreakpointColumn, tuple[int, ...]] = {
    BreakpointColumn.O3_1H: (0, 160, 200, 300, 400, 800, 1000, 1200),
    BreakpointColumn.O3_8H: (0, 100, 120, 170, 210, 400),
    BreakpointColumn.CO: (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    BreakpointColumn.SO2: (0, 125, 350, 550, 800, 1600, 2100, 2630),
    BreakpointColumn.NO2: (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    BreakpointColumn.PM10: (0, 50, 150, 250, 350, 420, 500, 600),
    BreakpointColumn.PM2_5: (0, 25, 50, 80, 150, 250, 350, 500),
}

_COLUMN_POLLUTANT: dict[BreakpointColumn, Pollutant] = {
    BreakpointColumn.O3_1H: Pollutant.O3,
    BreakpointColumn.O3_8H: Pollutant.O3,
    BreakpointColumn.CO: Pollutant.CO,
    BreakpointColumn.SO2: Pollutant.SO2,
    BreakpointColumn.NO2: Pollutant.NO2,
    BreakpointColumn.PM10: Pollutant.PM10,
    BreakpointColumn.PM2_5: Pollutant.PM2_5,
}

# §1.3 step 2: hourly sub-indices use the 1h column for O3.
_HOURLY_COLUMN: dict[Pollutant, BreakpointColumn] = {
    Pollutant.SO2: BreakpointColumn.SO2,
    Pollutant.CO: BreakpointColumn.CO,
    Pollutant.NO2: BreakpointColumn.NO2,
    Pollutant.O3: BreakpointColumn.O3_1H,
    Pollutant.PM10: BreakpointColumn.PM10,
    Pollutant.PM2_5: BreakpointColumn.PM2_5,
}


@dataclass(frozen=True, slots=True)
class BandSpec:
    """One row of Table 1 (§1.5): AQI range, names and colour."""

    low: int
    high: int
    name_vi: str
    name_en: str
    colour: str
    rgb: tuple[int, int, int]


class AqiBand(Enum):
    """AQI bands of Table 1 (§1.5) with Vietnamese/English names and colours."""

    _value_: BandSpec

    GOOD = BandSpec(0, 50, "Tốt", "Good", "Green", (0, 228, 0))
    MODERATE = BandSpec(51, 100, "Trung bình", "Moderate", "Yellow", (255, 255, 0))
    POOR = BandSpec(101, 150, "Kém", "Poor", "Orange", (255, 126, 0))
    BAD = BandSpec(151, 200, "Xấu", "Bad", "Red", (255, 0, 0))
    VERY_BAD = BandSpec(201, 300, "Rất xấu", "Very bad", "Purple", (143, 63, 151))
    HAZARDOUS = BandSpec(301, 500, "Nguy hại", "Hazardous", "Maroon", (126, 0, 35))

    @property
    def low(self) -> int:
        """Lowest AQI of the band."""
        return self.value.low

    @property
    def high(self) -> int:
        """Highest AQI of the band."""
        return self.value.high

    @property
    def name_vi(self) -> str:
        """Category name in Vietnamese, as Table 1 prints it."""
        return self.value.name_vi

    @property
    def name_en(self) -> str:
        """Category name in English."""
        return self.value.name_en

    @property
    def colour(self) -> str:
        """Colour name (English)."""
        return self.value.colour

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Colour as the RGB triple of Table 1."""
        return self.value.rgb

    @property
    def hex(self) -> str:
        """The colour as #RRGGBB, for dashboards."""
        r, g, b = self.value.rgb
        return f"#{r:02X}{g:02X}{b:02X}"


# Lookup tables built once from the ones above (enum iteration and lookups are slow in a loop).
# Per column: its pollutant and the segments (bp_lo, bp_hi, i_lo, i_hi) of Table 2.
_SEGMENTS: dict[BreakpointColumn, tuple[Pollutant, tuple[tuple[int, int, int, int], ...]]] = {
    column: (
        _COLUMN_POLLUTANT[column],
        tuple(
            (bps[k], bps[k + 1], _INDEX_LEVELS[k], _INDEX_LEVELS[k + 1])
            for k in range(len(bps) - 1)
        ),
    )
    for column, bps in _BREAKPOINTS.items()
}
_BAND_HIGHS: tuple[tuple[int, AqiBand], ...] = tuple((band.high, band) for band in AqiBand)
_POLLUTANTS: tuple[Pollutant, ...] = tuple(Pollutant)


@dataclass(frozen=True, slots=True)
class NowCast:
    """A NowCast concentration (µg/m³, unrounded) and the weight used (§1.3 step 1)."""

    value: float
    weight: float
    weight_ratio: float
    hours_used: int


@dataclass(frozen=True, slots=True)
class SubIndex:
    """AQI_x of one column; ``beyond_index`` when the input exceeds the top breakpoint."""

    pollutant: Pollutant
    column: BreakpointColumn
    concentration: float
    value: float
    rounded: int
    beyond_index: bool


@dataclass(frozen=True, slots=True)
class VnAqi:
    """An hourly or daily VN_AQI with every sub-index and the dominant one (§1.5 Table 3)."""

    value: int
    band: AqiBand
    dominant: Pollutant
    sub_indices: tuple[SubIndex, ...]
    beyond_index: bool

    def sub_index_of(self, pollutant: Pollutant) -> SubIndex | None:
        """The sub-index of ``pollutant``, or None if it was not part of this AQI."""
        return next((s for s in self.sub_indices if s.pollutant is pollutant), None)


@dataclass(frozen=True, slots=True)
class DailyMean:
    """A 24 h mean; ``value`` is None when fewer than the required hours are present."""

    value: float | None
    hours_present: int
    hours_required: int


def nowcast(hourly: Sequence[float | None]) -> NowCast | None:
    """NowCast for PM2.5/PM10 from up to 12 hourly means, c1 (current hour) first (§1.3).

    ``None`` entries are missing hours (weight 0). Returns None ("no data") unless at least 2 of
    c1, c2, c3 exist. Cmin/Cmax are over the values that exist ([U] reading in §1.3).
    Deliberate choice per §1.3: the normalised form Σw^(i-1)c_i / Σw^(i-1) is used for w = 1/2 as
    well, not the decision's literal Σ(1/2)^i c_i.
    """
    cast = scaled_nowcast(hourly)
    if cast is None:
        return None
    return NowCast(
        value=cast.value_num / cast.value_den,
        weight=cast.weight_num / cast.weight_den,
        weight_ratio=cast.ratio_num / cast.ratio_den,
        hours_used=cast.hours_used,
    )


def sub_index(column: BreakpointColumn, concentration: float) -> SubIndex:
    """AQI_x by linear interpolation in Table 2 (§1.3 step 2); capped at 500 above level 8.

    In integers: c = digits / 10**places, so every breakpoint is scaled by 10**places.
    """
    digits, places = plain_scaled(concentration) or scaled_concentration(
        f"{column.value} concentration", concentration
    )
    scale = pow10(places)
    pollutant, segments = _SEGMENTS[column]
    top = segments[-1][1]
    if digits > top * scale:
        if column is BreakpointColumn.O3_8H:
            # §1.2/§1.4: the 8h column is undefined above 400; the daily rule uses 1h only.
            raise FormulaInputError(
                f"O3 8h concentration {concentration!r} µg/m³ is above the table's last "
                f"breakpoint ({top}); use the 1h-based sub-index"
            )
        # §1.2 proposal [U]: cap at 500 and flag "beyond index".
        return SubIndex(
            pollutant=pollutant,
            column=column,
            concentration=float(concentration),
            value=float(AQI_MAX),
            rounded=AQI_MAX,
            beyond_index=True,
        )
    # First segment whose upper breakpoint reaches c; on a shared endpoint both segments agree.
    for bp_lo, bp_hi, i_lo, i_hi in segments:  # noqa: B007 - the loop finds the segment
        if digits <= bp_hi * scale:
            break
    # AQI_x = (i_hi - i_lo) (c - bp_lo) / (bp_hi - bp_lo) + i_lo, as one integer ratio.
    span = (bp_hi - bp_lo) * scale
    numerator = (i_hi - i_lo) * (digits - bp_lo * scale) + i_lo * span
    return SubIndex(
        pollutant=pollutant,
        column=column,
        concentration=float(concentration),
        value=numerator / span,
        rounded=round_half_up_ratio(numerator, span),
        beyond_index=False,
    )


def band_for(aqi: int) -> AqiBand:
    """The Table 1 band (§1.5) of a rounded AQI value 0..500."""
    if not 0 <= aqi <= AQI_MAX:
        raise FormulaInputError(f"aqi must be an integer in 0..{AQI_MAX}, got {aqi!r}")
    return next(band for high, band in _BAND_HIGHS if aqi <= high)


def _combine(sub_indices: dict[Pollutant, SubIndex]) -> VnAqi:
    """Max over pollutants, rounded (§1.3 step 3, §1.4); needs PM10 or PM2.5 (§1.1)."""
    if Pollutant.PM10 not in sub_indices and Pollutant.PM2_5 not in sub_indices:
        raise FormulaInputError(
            "VN_AQI needs PM10 or PM2.5 (Decision 1459, INDICATORS.md §1.1); got only "
            f"{sorted(p.value for p in sub_indices) or 'nothing'}"
        )
    dominant = max(sub_indices, key=lambda p: sub_indices[p].value)
    top = sub_indices[dominant]
    return VnAqi(
        value=top.rounded,
        band=band_for(top.rounded),
        dominant=dominant,
        sub_indices=tuple(sub_indices[p] for p in _POLLUTANTS if p in sub_indices),
        beyond_index=any(s.beyond_index for s in sub_indices.values()),
    )


def hourly_aqi(concentrations: Mapping[Pollutant, float | None]) -> VnAqi:
    """Hourly VN_AQI (§1.3): 1 h means for gases, NowCast for PM10/PM2.5; None = not measured."""
    subs = {
        pollutant: sub_index(_HOURLY_COLUMN[pollutant], value)
        for pollutant, value in concentrations.items()
        if value is not None
    }
    return _combine(subs)


def daily_aqi(
    *,
    pm2_5_24h: float | None = None,
    pm10_24h: float | None = None,
    o3_max_1h: float | None = None,
    o3_max_8h: float | None = None,
    so2_max_1h: float | None = None,
    no2_max_1h: float | None = None,
    co_max_1h: float | None = None,
) -> VnAqi:
    """Daily VN_AQI (§1.4) from the day's aggregates; None = not measured or insufficient."""
    subs: dict[Pollutant, SubIndex] = {}
    if pm2_5_24h is not None:
        subs[Pollutant.PM2_5] = sub_index(BreakpointColumn.PM2_5, pm2_5_24h)
    if pm10_24h is not None:
        subs[Pollutant.PM10] = sub_index(BreakpointColumn.PM10, pm10_24h)
    o3_candidates: list[SubIndex] = []
    if o3_max_1h is not None:
        o3_candidates.append(sub_index(BreakpointColumn.O3_1H, o3_max_1h))
    # §1.4: a max 8h mean above 400 µg/m³ is ignored; only the 1h-based value counts.
    if o3_max_8h is not None and _at_most("O3 max 8h", o3_max_8h, _O3_8H_MAX_WHOLE):
        o3_candidates.append(sub_index(BreakpointColumn.O3_8H, o3_max_8h))
    if o3_candidates:
        subs[Pollutant.O3] = max(o3_candidates, key=lambda s: s.value)
    for pollutant, column, value in (
        (Pollutant.SO2, BreakpointColumn.SO2, so2_max_1h),
        (Pollutant.NO2, BreakpointColumn.NO2, no2_max_1h),
        (Pollutant.CO, BreakpointColumn.CO, co_max_1h),
    ):
        if value is not None:
            subs[pollutant] = sub_index(column, value)
    return _combine(subs)


def _at_most(name: str, value: float, bound: int) -> bool:
    """Whether a concentration, as the exact decimal it was written as, is <= a whole bound."""
    digits, places = scaled_concentration(name, value)
    return digits <= bound * pow10(places)


def _mean(values: Sequence[tuple[int, int]]) -> float:
    """The mean of scaled concentrations (digits, places), exactly, then as a float."""
    places = max(p for _, p in values)
    total = sum(d if p == places else d * pow10(places - p) for d, p in values)
    return total / (len(values) * pow10(places))


def daily_pm_mean(hourly: Sequence[float | None], *, min_hours: int = 18) -> DailyMean:
    """24 h mean of PM hours labelled 01:00..00:00 (§1.4); ``min_hours`` is the [U] 75% rule."""
    if len(hourly) != HOURS_PER_DAY:
        raise FormulaInputError(
            f"hourly must hold the {HOURS_PER_DAY} values 01:00..00:00, got {len(hourly)}"
        )
    if not 1 <= min_hours <= HOURS_PER_DAY:
        raise FormulaInputError(f"min_hours must be in 1..{HOURS_PER_DAY}, got {min_hours!r}")
    present = [s for s in scaled_hours(hourly) if s is not None]
    if len(present) < min_hours:
        return DailyMean(None, len(present), min_hours)
    return DailyMean(_mean(present), len(present), min_hours)


def o3_8h_means(hourly: Sequence[float | None], *, min_hours: int = 6) -> tuple[float | None, ...]:
    """Rolling 8 h O3 means: entry k is the mean of hourly[k..k+7], i.e. labelled at k+7 (§1.4).

    Pass the day's 24 hours (01:00..00:00) preceded by the previous day's 7 last hours (18:00..
    00:00), oldest first, to get the day's 24 values. 1459 gives no completeness rule for the
    8 h mean; ``min_hours`` (default 6 of 8, i.e. 75%) is a [U] design choice.
    """
    if not 1 <= min_hours <= O3_8H_WINDOW:
        raise FormulaInputError(f"min_hours must be in 1..{O3_8H_WINDOW}, got {min_hours!r}")
    values = scaled_hours(hourly)
    means: list[float | None] = []
    for k in range(len(values) - O3_8H_WINDOW + 1):
        window = [c for c in values[k : k + O3_8H_WINDOW] if c is not None]
        means.append(_mean(window) if len(window) >= min_hours else None)
    return tuple(means)


def daily_max_o3_8h(hourly: Sequence[float | None], *, min_hours: int = 6) -> float | None:
    """The day's maximum 8 h O3 mean from 31 hourly values (18:00 of day-1 .. 00:00), §1.4."""
    expected = HOURS_PER_DAY + O3_8H_WINDOW - 1
    if len(hourly) != expected:
        raise FormulaInputError(
            f"hourly must hold {expected} values (18:00 of the previous day to 00:00), "
            f"got {len(hourly)}"
        )
    means = [m for m in o3_8h_means(hourly, min_hours=min_hours) if m is not None]
    return max(means) if means else None
