"""VN_AQI (Decision 1459/QĐ-TCMT) against INDICATORS.md §1.6 vectors and hand calculations."""

from __future__ import annotations

import math

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.aqi_vn import (
    AqiBand,
    BreakpointColumn,
    Pollutant,
    band_for,
    daily_aqi,
    daily_max_o3_8h,
    daily_pm_mean,
    hourly_aqi,
    nowcast,
    o3_8h_means,
    sub_index,
)

# ---------------------------------------------------------------------------------------------
# T1: the decision's NowCast example (§1.6), PM2.5 09:00 -> 20:00; c1 = 20:00 is first here.
T1_CHRONOLOGICAL = [26.9, 24.7, 20.5, 23.5, 19.5, 16.5, 19.0, 16.5, 20.3, 22.4, 19.6, 20.6]
T1_C1_FIRST = list(reversed(T1_CHRONOLOGICAL))


def test_t1_nowcast_worked_example() -> None:
    result = nowcast(T1_C1_FIRST)
    assert result is not None
    # w* = 16.5 / 26.9 = 0.6134 (the decision rounds it to 0.61); w* > 1/2 so w = w*.
    assert result.weight_ratio == pytest.approx(16.5 / 26.9)
    assert result.weight == pytest.approx(16.5 / 26.9)
    # INDICATORS.md: exact w gives 20.266, published as 20.3.
    assert result.value == pytest.approx(20.266, abs=5e-4)
    assert round(result.value, 1) == pytest.approx(20.3)
    assert result.hours_used == 12


def test_t2_hourly_aqi_with_documented_source_discrepancy() -> None:
    result = hourly_aqi({Pollutant.O3: 136.1, Pollutant.NO2: 118.7, Pollutant.PM2_5: 20.3})
    o3 = result.sub_index_of(Pollutant.O3)
    no2 = result.sub_index_of(Pollutant.NO2)
    pm25 = result.sub_index_of(Pollutant.PM2_5)
    assert o3 is not None and no2 is not None and pm25 is not None
    # O3 (1h column): 50/160 * 136.1 = 42.53 -> 43
    assert o3.column is BreakpointColumn.O3_1H
    assert o3.value == pytest.approx(42.53125)
    assert o3.rounded == 43
    # PM2.5: 50/25 * 20.3 = 40.6 -> 41
    assert pm25.value == pytest.approx(40.6)
    assert pm25.rounded == 41
    # NO2: 50 + 50/100 * (118.7 - 100) = 59.35 -> 59 (half-up). The decision prints 60: a known
    # inconsistency of the source (INDICATORS.md §1.6); we follow the documented rounding rule.
    assert no2.value == pytest.approx(59.35)
    assert no2.rounded == 59
    assert result.value == 59
    assert result.dominant is Pollutant.NO2
    assert result.band is AqiBand.MODERATE
    assert result.beyond_index is False


def test_t3_daily_aqi_worked_example() -> None:
    result = daily_aqi(o3_max_8h=89.3, o3_max_1h=114.6, no2_max_1h=130.8, pm2_5_24h=55.7)
    o3 = result.sub_index_of(Pollutant.O3)
    no2 = result.sub_index_of(Pollutant.NO2)
    pm25 = result.sub_index_of(Pollutant.PM2_5)
    assert o3 is not None and no2 is not None and pm25 is not None
    # O3: 8h 50/100*89.3 = 44.65 -> 45; 1h 50/160*114.6 = 35.81 -> 36; the larger (8h) counts.
    assert o3.column is BreakpointColumn.O3_8H
    assert o3.value == pytest.approx(44.65)
    assert o3.rounded == 45
    # NO2: 50 + 0.5 * 30.8 = 65.4 -> 65 (the decision prints 65; ceiling would give 66).
    assert no2.rounded == 65
    # PM2.5 24h: 100 + 50/30 * 5.7 = 109.5 exactly -> 110 with half-up.
    assert pm25.value == pytest.approx(109.5)
    assert pm25.rounded == 110
    assert result.value == 110
    assert result.dominant is Pollutant.PM2_5
    assert result.band is AqiBand.POOR


T4_O3 = [
    # 18:00 .. 00:00 of the previous day (7 values), then 01:00 .. 00:00 of the day (24 values)
    15.7, 14.2, 17.7, 18.9, 19.3, 15.7, 19.7,
    22.6, 27.1, 29.0, 31.9, 25.3, 34.7, 35.2, 41.6, 45.7, 49.2, 55.8, 69.6,
    78.3, 91.5, 97.7, 81.2, 71.8, 43.5, 34.3, 21.5, 20.5, 19.4, 20.4, 21.3,
]  # fmt: skip


def test_t4_o3_8h_means_and_daily_max() -> None:
    assert len(T4_O3) == 31
    means = o3_8h_means(T4_O3)
    assert len(means) == 24
    # 01:00: (15.7+14.2+17.7+18.9+19.3+15.7+19.7+22.6) / 8 = 143.8 / 8 = 17.975
    assert means[0] == pytest.approx(17.975)
    # 12:00: (25.3+34.7+35.2+41.6+45.7+49.2+55.8+69.6) / 8 = 357.1 / 8 = 44.6375 (decision: 44.7)
    assert means[11] == pytest.approx(44.6375)
    # 17:00: (49.2+55.8+69.6+78.3+91.5+97.7+81.2+71.8) / 8 = 595.1 / 8 = 74.3875, the day's max
    assert means[16] == pytest.approx(74.3875)
    assert daily_max_o3_8h(T4_O3) == pytest.approx(74.3875)


@pytest.mark.parametrize(
    ("aqi", "band"),
    [
        (0, AqiBand.GOOD),
        (50, AqiBand.GOOD),  # T5
        (51, AqiBand.MODERATE),  # T5
        (100, AqiBand.MODERATE),
        (101, AqiBand.POOR),
        (110, AqiBand.POOR),  # T5
        (150, AqiBand.POOR),
        (151, AqiBand.BAD),
        (200, AqiBand.BAD),
        (201, AqiBand.VERY_BAD),
        (300, AqiBand.VERY_BAD),
        (301, AqiBand.HAZARDOUS),
        (500, AqiBand.HAZARDOUS),
    ],
)
def test_t5_band_lookup(aqi: int, band: AqiBand) -> None:
    assert band_for(aqi) is band


@pytest.mark.parametrize("aqi", [-1, 501])
def test_band_lookup_outside_scale_is_refused(aqi: int) -> None:
    with pytest.raises(FormulaInputError, match=str(aqi)):
        band_for(aqi)


@pytest.mark.parametrize(
    ("band", "name_vi", "name_en", "rgb", "hex_"),
    [
        # Table 1 (§1.5); hex written by hand from the RGB triples.
        (AqiBand.GOOD, "Tốt", "Good", (0, 228, 0), "#00E400"),
        (AqiBand.MODERATE, "Trung bình", "Moderate", (255, 255, 0), "#FFFF00"),
        (AqiBand.POOR, "Kém", "Poor", (255, 126, 0), "#FF7E00"),
        (AqiBand.BAD, "Xấu", "Bad", (255, 0, 0), "#FF0000"),
        (AqiBand.VERY_BAD, "Rất xấu", "Very bad", (143, 63, 151), "#8F3F97"),
        (AqiBand.HAZARDOUS, "Nguy hại", "Hazardous", (126, 0, 35), "#7E0023"),
    ],
)
def test_band_names_and_colours(
    band: AqiBand, name_vi: str, name_en: str, rgb: tuple[int, int, int], hex_: str
) -> None:
    assert band.name_vi == name_vi
    assert band.name_en == name_en
    assert band.rgb == rgb
    assert band.hex == hex_


# ---------------------------------------------------------------------------------------------
# Derived sub-index vectors (§1.6 [D]).
@pytest.mark.parametrize(
    ("column", "concentration", "exact", "rounded"),
    [
        (BreakpointColumn.PM2_5, 25, 50.0, 50),
        (BreakpointColumn.PM2_5, 35.5, 71.0, 71),
        (BreakpointColumn.PM2_5, 100, 164.2857142857, 164),
        (BreakpointColumn.PM10, 75, 62.5, 63),
        (BreakpointColumn.PM10, 200, 125.0, 125),
        (BreakpointColumn.CO, 20_000, 75.0, 75),
        (BreakpointColumn.SO2, 400, 112.5, 113),
        (BreakpointColumn.PM2_5, 500, 500.0, 500),
    ],
)
def test_derived_sub_index_vectors(
    column: BreakpointColumn, concentration: float, exact: float, rounded: int
) -> None:
    result = sub_index(column, concentration)
    assert result.value == pytest.approx(exact)
    assert result.rounded == rounded
    assert result.beyond_index is False


# Every breakpoint of Table 2 (§1.2) maps exactly to its index level.
_TABLE_2 = {
    BreakpointColumn.O3_1H: (0, 160, 200, 300, 400, 800, 1000, 1200),
    BreakpointColumn.O3_8H: (0, 100, 120, 170, 210, 400),
    BreakpointColumn.CO: (0, 10_000, 30_000, 45_000, 60_000, 90_000, 120_000, 150_000),
    BreakpointColumn.SO2: (0, 125, 350, 550, 800, 1600, 2100, 2630),
    BreakpointColumn.NO2: (0, 100, 200, 700, 1200, 2350, 3100, 3850),
    BreakpointColumn.PM10: (0, 50, 150, 250, 350, 420, 500, 600),
    BreakpointColumn.PM2_5: (0, 25, 50, 80, 150, 250, 350, 500),
}
_LEVELS = (0, 50, 100, 150, 200, 300, 400, 500)


@pytest.mark.parametrize(
    ("column", "breakpoint", "level"),
    [
        (column, bp, level)
        for column, bps in _TABLE_2.items()
        for bp, level in zip(bps, _LEVELS, strict=False)
    ],
)
def test_exactly_on_a_breakpoint_gives_its_index_level(
    column: BreakpointColumn, breakpoint: int, level: int
) -> None:
    result = sub_index(column, breakpoint)
    assert result.value == level
    assert result.rounded == level


@pytest.mark.parametrize(
    ("column", "concentration", "rounded"),
    [
        # just above a breakpoint: PM2.5 50.3 -> 100 + 50/30*0.3 = 100.5 -> 101 (half-up)
        (BreakpointColumn.PM2_5, 50.3, 101),
        # NO2 1200.5 -> 200 + 100/1150*0.5 = 200.043 -> 200
        (BreakpointColumn.NO2, 1200.5, 200),
        # PM10 420.4 -> 300 + 100/80*0.4 = 300.5 -> 301
        (BreakpointColumn.PM10, 420.4, 301),
    ],
)
def test_half_values_round_up(column: BreakpointColumn, concentration: float, rounded: int) -> None:
    assert sub_index(column, concentration).rounded == rounded


@pytest.mark.parametrize(
    ("column", "concentration"),
    [
        (BreakpointColumn.PM2_5, 500.1),
        (BreakpointColumn.PM2_5, 800),
        (BreakpointColumn.PM10, 601),
        (BreakpointColumn.CO, 150_001),
        (BreakpointColumn.O3_1H, 1500),
    ],
)
def test_above_the_top_breakpoint_caps_at_500_and_flags(
    column: BreakpointColumn, concentration: float
) -> None:
    result = sub_index(column, concentration)
    assert result.rounded == 500
    assert result.value == 500
    assert result.beyond_index is True


def test_o3_8h_above_400_is_not_defined() -> None:
    assert sub_index(BreakpointColumn.O3_8H, 400).rounded == 300
    with pytest.raises(FormulaInputError, match=r"400\.5"):
        sub_index(BreakpointColumn.O3_8H, 400.5)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_invalid_concentration_is_refused(bad: float) -> None:
    with pytest.raises(FormulaInputError, match=r"PM2\.5"):
        sub_index(BreakpointColumn.PM2_5, bad)


# ---------------------------------------------------------------------------------------------
# NowCast edge cases (§1.3, §1.6 [D]).
def test_nowcast_floor_weight_uses_normalised_form() -> None:
    result = nowcast([100, 40, 30] + [20] * 9)
    assert result is not None
    # w* = 20/100 = 0.2 -> w = 0.5. Numerator 100 + 20 + 7.5 + 20*0.24951 = 132.4902;
    # denominator 2*(1 - 2**-12) = 1.99951; 132.4902 / 1.99951 = 66.26 (literal form: 66.25).
    assert result.weight_ratio == pytest.approx(0.2)
    assert result.weight == 0.5
    assert result.value == pytest.approx(66.26, abs=5e-3)
    assert result.value != pytest.approx(66.25, abs=5e-3)


def test_nowcast_c1_without_c2_and_c3_is_no_data() -> None:
    assert nowcast([50.0, None, None, 40.0, 40.0, 40.0]) is None


def test_nowcast_with_c1_missing_but_c2_c3_present() -> None:
    # w* = 10/30 -> w = 0.5; weights 0 (missing), 0.5, 0.25: (15 + 2.5) / 0.75 = 23.333
    result = nowcast([None, 30.0, 10.0])
    assert result is not None
    assert result.value == pytest.approx(23.3333, abs=1e-4)
    assert result.hours_used == 2


def test_nowcast_missing_hour_has_zero_weight() -> None:
    # c = [30, -, 10]: w* = 1/3 -> w = 0.5; (30*1 + 10*0.25) / (1 + 0.25) = 32.5 / 1.25 = 26.0
    result = nowcast([30.0, None, 10.0])
    assert result is not None
    assert result.value == pytest.approx(26.0)


def test_nowcast_of_a_constant_series_is_that_value() -> None:
    result = nowcast([35.0] * 12)
    assert result is not None
    assert result.weight == 1.0
    assert result.value == pytest.approx(35.0)


def test_nowcast_all_zero_is_zero() -> None:
    result = nowcast([0.0] * 12)
    assert result is not None
    assert result.value == 0.0


def test_nowcast_refuses_more_than_12_hours() -> None:
    with pytest.raises(FormulaInputError, match="13"):
        nowcast([10.0] * 13)


def test_nowcast_refuses_negative_hour() -> None:
    with pytest.raises(FormulaInputError, match=r"hourly\[1\].*-3"):
        nowcast([10.0, -3.0, 10.0])


# ---------------------------------------------------------------------------------------------
# Combination rules.
def test_hourly_aqi_needs_pm() -> None:
    with pytest.raises(FormulaInputError, match=r"PM10 or PM2\.5"):
        hourly_aqi({Pollutant.O3: 100.0, Pollutant.NO2: 50.0, Pollutant.PM2_5: None})


def test_hourly_aqi_with_pm10_only() -> None:
    # PM10 75 -> 62.5 -> 63 (§1.6 derived vector)
    result = hourly_aqi({Pollutant.PM10: 75.0})
    assert result.value == 63
    assert result.dominant is Pollutant.PM10


def test_hourly_aqi_beyond_index_is_visible() -> None:
    result = hourly_aqi({Pollutant.PM2_5: 650.0, Pollutant.NO2: 50.0})
    assert result.value == 500
    assert result.beyond_index is True
    assert result.band is AqiBand.HAZARDOUS
    no2 = result.sub_index_of(Pollutant.NO2)
    assert no2 is not None and no2.beyond_index is False


def test_hourly_aqi_uses_o3_1h_column_and_converted_co() -> None:
    # CO 20 mg/m³ = 20 000 µg/m³ -> 75; O3 1h 180 -> 50 + 50/40*20 = 75 ... PM2.5 10 -> 20.
    # Tie between CO and O3 at exactly 75: AQI 75 either way.
    result = hourly_aqi({Pollutant.CO: 20_000.0, Pollutant.O3: 180.0, Pollutant.PM2_5: 10.0})
    assert result.value == 75
    o3 = result.sub_index_of(Pollutant.O3)
    assert o3 is not None and o3.column is BreakpointColumn.O3_1H


def test_daily_aqi_ignores_o3_8h_above_400() -> None:
    # O3 8h 450 is outside the 8h column; 1h 500 -> 200 + 100/400*100 = 225.
    result = daily_aqi(o3_max_1h=500.0, o3_max_8h=450.0, pm10_24h=40.0)
    o3 = result.sub_index_of(Pollutant.O3)
    assert o3 is not None
    assert o3.column is BreakpointColumn.O3_1H
    assert o3.rounded == 225
    assert result.value == 225
    assert result.band is AqiBand.VERY_BAD


def test_daily_aqi_needs_pm() -> None:
    with pytest.raises(FormulaInputError, match=r"PM10 or PM2\.5"):
        daily_aqi(o3_max_1h=100.0)


def test_daily_pm_mean_completeness() -> None:
    # 18 hours of 30 and 6 missing: mean 30, sufficient (18 of 24).
    enough = daily_pm_mean([30.0] * 18 + [None] * 6)
    assert enough.value == pytest.approx(30.0)
    assert enough.hours_present == 18
    # 17 present: insufficient under the default 75% rule.
    short = daily_pm_mean([30.0] * 17 + [None] * 7)
    assert short.value is None
    assert short.hours_present == 17
    # 12 hours of 10 and 12 of 50: (120 + 600) / 24 = 30
    assert daily_pm_mean([10.0] * 12 + [50.0] * 12).value == pytest.approx(30.0)


def test_daily_pm_mean_requires_24_slots() -> None:
    with pytest.raises(FormulaInputError, match="23"):
        daily_pm_mean([10.0] * 23)


def test_o3_8h_window_completeness() -> None:
    # Window with 5 of 8 present is below the 6-of-8 default; with 6 present it is the mean.
    five = [10.0] * 5 + [None] * 3
    six = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, None, None]
    assert o3_8h_means(five) == (None,)
    # (10+20+30+40+50+60) / 6 = 35
    means = o3_8h_means(six)
    assert means[0] == pytest.approx(35.0)
