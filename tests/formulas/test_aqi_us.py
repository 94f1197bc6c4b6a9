"""US EPA NowCast / PM2.5 AQI: EPA tables, hand calculations and the AirNow Hanoi record."""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.aqi_us import (
    PM25_TABLE_2012,
    PM25_TABLE_2024,
    UsAqiCategory,
    aqi_pm25,
    nowcast_aqi_pm25,
    nowcast_pm25,
    pm25_table_for,
)

PRE_2024 = date(2020, 1, 1)
POST_2024 = date(2025, 1, 1)


# ---------------------------------------------------------------------------------------------
# Table selection by date.
@pytest.mark.parametrize(
    ("on", "table"),
    [
        (date(2013, 3, 18), PM25_TABLE_2012),
        (date(2019, 10, 7), PM25_TABLE_2012),
        (date(2024, 5, 5), PM25_TABLE_2012),
        (date(2024, 5, 6), PM25_TABLE_2024),
        (date(2026, 1, 1), PM25_TABLE_2024),
    ],
)
def test_table_chosen_by_date(on: date, table: object) -> None:
    assert pm25_table_for(on) is table


def test_date_before_the_2012_table_is_refused() -> None:
    with pytest.raises(FormulaInputError, match="2013-03-17"):
        pm25_table_for(date(2013, 3, 17))


# ---------------------------------------------------------------------------------------------
# Breakpoints: both ends of every row give the row's AQI bounds (EPA tables).
@pytest.mark.parametrize(
    ("on", "concentration", "aqi", "category"),
    [
        # 40 CFR 58 App. G (2012 revision), in force 2013-03-18 .. 2024-05-05
        (PRE_2024, 0.0, 0, UsAqiCategory.GOOD),
        (PRE_2024, 12.0, 50, UsAqiCategory.GOOD),
        (PRE_2024, 12.1, 51, UsAqiCategory.MODERATE),
        (PRE_2024, 35.4, 100, UsAqiCategory.MODERATE),
        (PRE_2024, 35.5, 101, UsAqiCategory.UNHEALTHY_FOR_SENSITIVE_GROUPS),
        (PRE_2024, 55.4, 150, UsAqiCategory.UNHEALTHY_FOR_SENSITIVE_GROUPS),
        (PRE_2024, 55.5, 151, UsAqiCategory.UNHEALTHY),
        (PRE_2024, 150.4, 200, UsAqiCategory.UNHEALTHY),
        (PRE_2024, 150.5, 201, UsAqiCategory.VERY_UNHEALTHY),
        (PRE_2024, 250.4, 300, UsAqiCategory.VERY_UNHEALTHY),
        (PRE_2024, 250.5, 301, UsAqiCategory.HAZARDOUS),
        (PRE_2024, 350.4, 400, UsAqiCategory.HAZARDOUS),
        (PRE_2024, 350.5, 401, UsAqiCategory.HAZARDOUS),
        (PRE_2024, 500.4, 500, UsAqiCategory.HAZARDOUS),
        # PM NAAQS reconsideration, effective 2024-05-06
        (POST_2024, 9.0, 50, UsAqiCategory.GOOD),
        (POST_2024, 9.1, 51, UsAqiCategory.MODERATE),
        (POST_2024, 35.4, 100, UsAqiCategory.MODERATE),
        (POST_2024, 55.5, 151, UsAqiCategory.UNHEALTHY),
        (POST_2024, 125.4, 200, UsAqiCategory.UNHEALTHY),
        (POST_2024, 125.5, 201, UsAqiCategory.VERY_UNHEALTHY),
        (POST_2024, 225.4, 300, UsAqiCategory.VERY_UNHEALTHY),
        (POST_2024, 225.5, 301, UsAqiCategory.HAZARDOUS),
        (POST_2024, 325.4, 500, UsAqiCategory.HAZARDOUS),
    ],
)
def test_breakpoint_ends(on: date, concentration: float, aqi: int, category: UsAqiCategory) -> None:
    result = aqi_pm25(concentration, on=on)
    assert result.value == aqi
    assert result.category is category
    assert result.beyond_index is False


def test_same_concentration_differs_between_tables() -> None:
    # 2012: 12.1..35.4 -> 51..100: 51 + 49/23.3 * (20.0 - 12.1) = 51 + 16.61 = 67.61 -> 68
    # 2024:  9.1..35.4 -> 51..100: 51 + 49/26.3 * (20.0 - 9.1)  = 51 + 20.31 = 71.31 -> 71
    assert aqi_pm25(20.0, on=date(2024, 5, 5)).value == 68
    assert aqi_pm25(20.0, on=date(2024, 5, 6)).value == 71


@pytest.mark.parametrize(
    ("concentration", "aqi"),
    [
        # Published AirNow pairs from the Hanoi file (NowCast conc. -> AQI, 2019):
        (78.5, 163),  # 2019-10-07 22:00
        (42.6, 118),  # 2019-10-08 00:00
        (405.0, 437),  # 2019-12-24 02:00
        (357.0, 405),  # 2019-12-24 03:00
    ],
)
def test_published_airnow_pairs(concentration: float, aqi: int) -> None:
    assert aqi_pm25(concentration, on=date(2019, 12, 1)).value == aqi


def test_concentration_is_truncated_not_rounded() -> None:
    # 12.09 truncates to 12.0 (AQI 50); rounding would give 12.1 (AQI 51).
    result = aqi_pm25(12.09, on=PRE_2024)
    assert result.concentration == 12.0
    assert result.value == 50
    # 35.49 -> 35.4 -> 100 (not 35.5 -> 101)
    assert aqi_pm25(35.49, on=PRE_2024).value == 100


def test_aqi_half_rounds_up() -> None:
    # 2012 table: 50/12 * 0.6 = 2.5 exactly -> 3 (Python's round() would give 2: half-to-even)
    assert aqi_pm25(0.6, on=PRE_2024).value == 3


@pytest.mark.parametrize(
    ("on", "concentration", "aqi"),
    [
        # "Beyond the AQI": EPA's TAD allows the last two breakpoints to extrapolate.
        # 2012: 401 + 99/149.9 * (600.0 - 350.5) = 401 + 164.78 = 565.78 -> 566
        (PRE_2024, 600.0, 566),
        # 2024: 301 + 199/99.9 * (400.0 - 225.5) = 301 + 347.60 = 648.60 -> 649
        (POST_2024, 400.0, 649),
    ],
)
def test_above_the_table_is_extrapolated_and_flagged(
    on: date, concentration: float, aqi: int
) -> None:
    result = aqi_pm25(concentration, on=on)
    assert result.value == aqi
    assert result.beyond_index is True
    assert result.category is UsAqiCategory.HAZARDOUS


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_concentration_is_refused(bad: float) -> None:
    with pytest.raises(FormulaInputError, match="concentration"):
        aqi_pm25(bad, on=PRE_2024)


# ---------------------------------------------------------------------------------------------
# NowCast.
def test_nowcast_hanoi_row_with_invalid_hour() -> None:
    # 2019-10-08 00:00: c1 = 29, c2 = 37 flagged Invalid (missing), c3 = 80, c4 = 77.
    # w* = 29/80 < 0.5 -> w = 0.5; (29 + 0.25*80 + 0.125*77) / (1 + 0.25 + 0.125)
    # = 58.625 / 1.375 = 42.636 -> 42.6 (published 42.6, AQI 118)
    result = nowcast_pm25([29.0, None, 80.0, 77.0])
    assert result is not None
    assert result.concentration == 42.6
    assert result.weight == 0.5
    assert result.hours_used == 3


def test_nowcast_is_truncated_to_a_tenth() -> None:
    # w = 7/10; (10 + 0.7*7) / 1.7 = 14.9 / 1.7 = 8.7647 -> 8.7 (rounding would give 8.8)
    result = nowcast_pm25([10.0, 7.0])
    assert result is not None
    assert result.concentration == 8.7


def test_nowcast_exact_tenth_survives_truncation() -> None:
    # Twelve hours of 12.1: w = 1 and the NowCast is 12.1 exactly. Summed in floats the mean is
    # 12.099999999999996, which would truncate to 12.0 and turn AQI 51 into 50.
    result = nowcast_pm25([12.1] * 12)
    assert result is not None
    assert result.concentration == 12.1
    assert aqi_pm25(result.concentration, on=PRE_2024).value == 51


@pytest.mark.parametrize(
    "hourly",
    [
        [50.0, None, None, 40.0, 40.0],  # only c1 of the 3 most recent
        [None, None, 40.0, 40.0, 40.0],  # only c3
        [None, 40.0, None],  # only c2
        [40.0],  # a single hour
        [],
    ],
)
def test_nowcast_needs_two_of_three_most_recent(hourly: list[float | None]) -> None:
    assert nowcast_pm25(hourly) is None
    assert nowcast_aqi_pm25(hourly, on=PRE_2024) is None


def test_nowcast_with_c1_missing() -> None:
    # c2 = 20, c3 = 10: w = 0.5; (0.5*20 + 0.25*10) / 0.75 = 12.5 / 0.75 = 16.666 -> 16.6
    result = nowcast_pm25([None, 20.0, 10.0])
    assert result is not None
    assert result.concentration == 16.6


def test_nowcast_all_zero() -> None:
    result = nowcast_pm25([0.0] * 12)
    assert result is not None
    assert result.concentration == 0.0


def test_nowcast_refuses_bad_input() -> None:
    with pytest.raises(FormulaInputError, match="13"):
        nowcast_pm25([1.0] * 13)
    with pytest.raises(FormulaInputError, match=r"hourly\[2\].*-5"):
        nowcast_pm25([1.0, 1.0, -5.0])


def test_nowcast_aqi_combines_both_steps() -> None:
    # [80, 77]: w = 0.9625; (80 + 0.9625*77) / 1.9625 = 154.1125 / 1.9625 = 78.53 -> 78.5 -> 163
    result = nowcast_aqi_pm25([80.0, 77.0], on=date(2019, 10, 7))
    assert result is not None
    assert result.concentration == 78.5
    assert result.value == 163


# ---------------------------------------------------------------------------------------------
# The Hanoi check: recompute AirNow's published NowCast and AQI from the raw hourly series.
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HANOI_FILES = ("Hanoi_PM2.5_2019_YTD.csv", "Hanoi_PM2.5_2020_YTD.csv")
MISSING = -999.0
ONE_HOUR = timedelta(hours=1)


@dataclass(slots=True)
class HanoiRow:
    line: str
    at: datetime
    nowcast: float
    aqi: int
    raw: float
    qc: str


def _load_hanoi() -> tuple[list[HanoiRow], list[str]]:
    """All rows of both files in order, with the one mislabelled hour repaired (see below)."""
    rows: list[HanoiRow] = []
    for name in HANOI_FILES:
        with (SHARED / "data" / "opendata" / name).open(newline="", encoding="utf-8") as f:
            for n, record in enumerate(csv.DictReader(f), start=2):
                rows.append(
                    HanoiRow(
                        line=f"{name}:{n}",
                        at=datetime.strptime(record["Date (LT)"], "%Y-%m-%d %I:%M %p"),  # noqa: DTZ007 - local time of the station, naive on purpose
                        nowcast=float(record["NowCast Conc."]),
                        aqi=int(record["AQI"]),
                        raw=float(record["Raw Conc."]),
                        qc=record["QC Name"].strip(),
                    )
                )
    # The 2020 file labels two consecutive rows "2020-03-08 03:00 AM" and has no 02:00 row.
    # Read as consecutive hours (first = 02:00) every published NowCast from 02:00 to 13:00
    # is reproduced exactly; keyed by label, 9 of them are not. So the first label is a typo.
    fixes: list[str] = []
    labels = {r.at for r in rows}
    for first, second in itertools.pairwise(rows):
        if first.at == second.at and first.at - ONE_HOUR not in labels:
            fixes.append(f"{first.line}: relabelled {first.at} -> {first.at - ONE_HOUR}")
            first.at -= ONE_HOUR
            labels.add(first.at)
    return rows, fixes


def _usable(row: HanoiRow) -> float | None:
    """Raw value for the NowCast: Valid and Suspect count; Invalid, Missing and -999 do not."""
    if row.raw == MISSING or row.qc not in {"Valid", "Suspect"}:
        return None
    return row.raw


def test_hanoi_airnow_nowcast_and_aqi_are_reproduced() -> None:
    rows, fixes = _load_hanoi()
    series: dict[datetime, float | None] = {}
    for row in rows:
        assert row.at not in series, f"duplicate hour {row.at} at {row.line}"
        series[row.at] = _usable(row)
    published_at = {row.at: row.nowcast for row in rows}

    compared = 0
    disagreements: list[str] = []
    for row in rows:
        if row.qc != "Valid" or MISSING in (row.nowcast, row.aqi):
            continue
        compared += 1
        hourly = [series.get(row.at - k * ONE_HOUR) for k in range(12)]
        # 2019-2020: the pre-2024 (2012) breakpoints were in force.
        ours_nc = nowcast_pm25(hourly)
        ours_aqi = None if ours_nc is None else aqi_pm25(ours_nc.concentration, on=row.at.date())
        # Published precision: NowCast to 0.1 µg/m³, AQI integer.
        if (
            ours_nc is not None
            and ours_aqi is not None
            and f"{ours_nc.concentration:.1f}" == f"{row.nowcast:.1f}"
            and ours_aqi.value == row.aqi
        ):
            continue
        if ours_nc is None and published_at.get(row.at - ONE_HOUR) == row.nowcast:
            cause = (
                "fewer than 2 of the 3 most recent hours valid (no NowCast); AirNow "
                "repeats the previous hour's published value"
            )
        else:
            cause = "unexplained"
        disagreements.append(
            f"{row.line} {row.at:%Y-%m-%d %H:%M} published {row.nowcast:.1f}/{row.aqi} "
            f"ours {'-' if ours_nc is None else f'{ours_nc.concentration:.1f}'}/"
            f"{'-' if ours_aqi is None else ours_aqi.value} c1..c12={hourly} cause: {cause}"
        )

    rate = (compared - len(disagreements)) / compared
    print(f"\nHanoi AirNow check: {compared} Valid rows with a published NowCast/AQI")
    for fix in fixes:
        print(f"  data repair: {fix}")
    print(f"  agreement {compared - len(disagreements)}/{compared} = {rate:.4%}")
    for line in disagreements:
        print(f"  DISAGREE {line}")

    assert compared > 6000, f"only {compared} rows compared; is the data complete?"
    assert rate >= 0.99, (
        f"{len(disagreements)} of {compared} rows disagree ({rate:.4%} agree); first: "
        + "; ".join(disagreements[:5])
    )
