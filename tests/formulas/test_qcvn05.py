"""QCVN 05:2023/BTNMT limits and exceedance (INDICATORS.md §2)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.qcvn05 import (
    AveragingPeriod,
    Parameter,
    check_exceedance,
    limit,
    limits_for,
)

A = AveragingPeriod
P = Parameter
IN_FORCE = date(2024, 6, 1)


@pytest.mark.parametrize(
    ("parameter", "period", "expected"),
    [
        # Table 1 (basic parameters), µg/Nm³
        (P.SO2, A.HOUR_1, 350),
        (P.SO2, A.HOUR_24, 125),
        (P.SO2, A.ANNUAL, 50),
        (P.CO, A.HOUR_1, 30_000),
        (P.CO, A.HOUR_8, 10_000),
        (P.NO2, A.HOUR_1, 200),
        (P.NO2, A.HOUR_24, 100),
        (P.NO2, A.ANNUAL, 40),
        (P.O3, A.HOUR_1, 200),
        (P.O3, A.HOUR_8, 120),
        (P.TSP, A.HOUR_1, 300),
        (P.TSP, A.HOUR_24, 200),
        (P.TSP, A.ANNUAL, 100),
        (P.PM10, A.HOUR_24, 100),
        (P.PM10, A.ANNUAL, 50),
        (P.PM2_5, A.HOUR_24, 50),
        (P.PM2_5, A.ANNUAL, 25),
        # Table 2 (selected toxic parameters)
        (P.PB, A.HOUR_24, 1.5),
        (P.BENZENE, A.HOUR_1, 22),
        (P.NH3, A.HOUR_1, 200),
        (P.H2S, A.HOUR_1, 42),
        (P.HCHO, A.HOUR_1, 20),
        (P.CL2, A.HOUR_1, 100),
        (P.CL2, A.HOUR_24, 30),
        (P.HF, A.HOUR_1, 20),
        (P.HF, A.HOUR_24, 5),
        (P.HG, A.HOUR_24, 0.3),
        (P.CXHY, A.HOUR_1, 5_000),
        (P.CXHY, A.HOUR_24, 1_500),
    ],
)
def test_limits_table(parameter: Parameter, period: AveragingPeriod, expected: float) -> None:
    assert limit(parameter, period, on=IN_FORCE) == expected


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2023, 9, 12), 50),
        (date(2025, 12, 31), 50),
        (date(2026, 1, 1), 45),
        (date(2030, 6, 1), 45),
    ],
)
def test_pm25_24h_limit_changes_on_2026_01_01(on: date, expected: float) -> None:
    assert limit(P.PM2_5, A.HOUR_24, on=on) == expected


def test_pm25_annual_limit_does_not_change_in_2026() -> None:
    assert limit(P.PM2_5, A.ANNUAL, on=date(2026, 1, 1)) == 25


def test_worked_check_pm25_47() -> None:
    # INDICATORS.md §2 [D]: 47 on 2026-01-02 exceeds (> 45); on 2025-12-31 it does not (<= 50).
    after = check_exceedance(P.PM2_5, A.HOUR_24, 47.0, on=date(2026, 1, 2))
    assert after.exceeds is True
    assert after.limit == 45
    assert after.excess == pytest.approx(2.0)
    before = check_exceedance(P.PM2_5, A.HOUR_24, 47.0, on=date(2025, 12, 31))
    assert before.exceeds is False
    assert before.limit == 50
    assert before.excess == pytest.approx(-3.0)


@pytest.mark.parametrize(
    ("value", "exceeds"),
    [
        (199.9, False),
        (200.0, False),  # equal to the limit is compliant: exceedance is strictly greater
        (200.1, True),
    ],
)
def test_exceedance_is_strictly_greater(value: float, exceeds: bool) -> None:
    assert check_exceedance(P.NO2, A.HOUR_1, value, on=IN_FORCE).exceeds is exceeds


@pytest.mark.parametrize(
    ("parameter", "period"),
    [
        (P.PM10, A.HOUR_1),
        (P.PM2_5, A.HOUR_1),
        (P.CO, A.HOUR_24),
        (P.O3, A.ANNUAL),
        (P.PB, A.HOUR_1),
    ],
)
def test_no_limit_for_that_period_is_refused(parameter: Parameter, period: AveragingPeriod) -> None:
    with pytest.raises(FormulaInputError, match=f"{period.value}.*{parameter.value}"):
        limit(parameter, period, on=IN_FORCE)


def test_dates_before_the_regulation_are_refused() -> None:
    with pytest.raises(FormulaInputError, match="2023-09-11"):
        limit(P.SO2, A.HOUR_1, on=date(2023, 9, 11))
    with pytest.raises(FormulaInputError, match="2023-09-11"):
        check_exceedance(P.SO2, A.HOUR_1, 10.0, on=date(2023, 9, 11))


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_value_is_refused(bad: float) -> None:
    with pytest.raises(FormulaInputError, match="O3 8h"):
        check_exceedance(P.O3, A.HOUR_8, bad, on=IN_FORCE)


def test_limits_for_a_parameter() -> None:
    assert limits_for(P.SO2, on=IN_FORCE) == {A.HOUR_1: 350, A.HOUR_24: 125, A.ANNUAL: 50}
    assert limits_for(P.PM2_5, on=date(2026, 1, 1)) == {A.HOUR_24: 45, A.ANNUAL: 25}
