"""QCVN 05:2023/BTNMT ambient air quality limits and exceedance checks.

Source: Circular 01/2023/TT-BTNMT (13 Mar 2023), effective 12 Sep 2023, replacing QCVN 05:2013
and QCVN 06:2009; implemented from shared/domain/INDICATORS.md section 2 (Table 1 basic
parameters, selected Table 2 toxic parameters, implementation rule).

- Unit: µg/Nm³ (25 °C, 760 mmHg); ambient air only.
- Exceedance = the matching average is strictly greater than the limit.
- The PM2.5 24 h limit is 50 before 2026-01-01 and 45 from that date.
- Kept separate from VN_AQI on purpose: QCVN is a legal limit, VN_AQI a communication index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import Enum

from ioc.errors import FormulaInputError

__all__ = [
    "EFFECTIVE_FROM",
    "PM2_5_24H_TIGHTENED_FROM",
    "AveragingPeriod",
    "Exceedance",
    "Parameter",
    "check_exceedance",
    "limit",
    "limits_for",
]

EFFECTIVE_FROM = date(2023, 9, 12)
PM2_5_24H_TIGHTENED_FROM = date(2026, 1, 1)


class Parameter(Enum):
    """Parameters of QCVN 05:2023 implemented here (Table 1 and selected Table 2 rows)."""

    SO2 = "SO2"
    CO = "CO"
    NO2 = "NO2"
    O3 = "O3"
    TSP = "TSP"
    PM10 = "PM10"
    PM2_5 = "PM2.5"
    PB = "Pb"
    BENZENE = "C6H6"
    NH3 = "NH3"
    H2S = "H2S"
    HCHO = "HCHO"
    CL2 = "Cl2"
    HF = "HF"
    HG = "Hg"
    CXHY = "CxHy"


class AveragingPeriod(Enum):
    """Averaging periods defined by the regulation."""

    HOUR_1 = "1h"
    HOUR_8 = "8h"
    HOUR_24 = "24h"
    ANNUAL = "annual"


_P = Parameter
_A = AveragingPeriod

# INDICATORS.md §2, Table 1 [V] and selected Table 2 [V]; µg/Nm³. PM2.5 24 h is date-dependent
# and handled in ``limit``; its entry here is the value in force until 31 Dec 2025.
_LIMITS: dict[tuple[Parameter, AveragingPeriod], float] = {
    (_P.SO2, _A.HOUR_1): 350,
    (_P.SO2, _A.HOUR_24): 125,
    (_P.SO2, _A.ANNUAL): 50,
    (_P.CO, _A.HOUR_1): 30_000,
    (_P.CO, _A.HOUR_8): 10_000,
    (_P.NO2, _A.HOUR_1): 200,
    (_P.NO2, _A.HOUR_24): 100,
    (_P.NO2, _A.ANNUAL): 40,
    (_P.O3, _A.HOUR_1): 200,
    (_P.O3, _A.HOUR_8): 120,
    (_P.TSP, _A.HOUR_1): 300,
    (_P.TSP, _A.HOUR_24): 200,
    (_P.TSP, _A.ANNUAL): 100,
    (_P.PM10, _A.HOUR_24): 100,
    (_P.PM10, _A.ANNUAL): 50,
    (_P.PM2_5, _A.HOUR_24): 50,
    (_P.PM2_5, _A.ANNUAL): 25,
    (_P.PB, _A.HOUR_24): 1.5,
    (_P.BENZENE, _A.HOUR_1): 22,
    (_P.NH3, _A.HOUR_1): 200,
    (_P.H2S, _A.HOUR_1): 42,
    (_P.HCHO, _A.HOUR_1): 20,
    (_P.CL2, _A.HOUR_1): 100,
    (_P.CL2, _A.HOUR_24): 30,
    (_P.HF, _A.HOUR_1): 20,
    (_P.HF, _A.HOUR_24): 5,
    (_P.HG, _A.HOUR_24): 0.3,
    (_P.CXHY, _A.HOUR_1): 5_000,
    (_P.CXHY, _A.HOUR_24): 1_500,
}

_PM2_5_24H_FROM_2026 = 45.0


@dataclass(frozen=True, slots=True)
class Exceedance:
    """Result of comparing an average with its QCVN limit; ``excess`` = value - limit."""

    parameter: Parameter
    period: AveragingPeriod
    value: float
    limit: float
    exceeds: bool
    excess: float
    on: date


def _check_date(on: date) -> None:
    """Refuse dates before QCVN 05:2023 took effect (QCVN 05:2013 applied then)."""
    if on < EFFECTIVE_FROM:
        raise FormulaInputError(
            f"date {on.isoformat()} is before QCVN 05:2023 took effect "
            f"({EFFECTIVE_FROM.isoformat()}); its limits do not apply"
        )


def limit(parameter: Parameter, period: AveragingPeriod, *, on: date) -> float:
    """The limit (µg/Nm³) for a parameter and averaging period in force on ``on``."""
    _check_date(on)
    if parameter is Parameter.PM2_5 and period is AveragingPeriod.HOUR_24:
        # §2 Table 1: 50 until 31 Dec 2025, 45 from 1 Jan 2026.
        if on >= PM2_5_24H_TIGHTENED_FROM:
            return _PM2_5_24H_FROM_2026
        return float(_LIMITS[(parameter, period)])
    try:
        return float(_LIMITS[(parameter, period)])
    except KeyError:
        raise FormulaInputError(
            f"QCVN 05:2023 sets no {period.value} limit for {parameter.value}"
        ) from None


def limits_for(parameter: Parameter, *, on: date) -> dict[AveragingPeriod, float]:
    """All limits of a parameter in force on ``on``, by averaging period."""
    _check_date(on)
    return {
        period: limit(parameter, period, on=on)
        for period in AveragingPeriod
        if (parameter, period) in _LIMITS
    }


def check_exceedance(
    parameter: Parameter, period: AveragingPeriod, value: float, *, on: date
) -> Exceedance:
    """Compare an average (µg/Nm³) with its limit; exceeds only when strictly greater (§2)."""
    if not math.isfinite(value):
        raise FormulaInputError(
            f"{parameter.value} {period.value} value must be finite, got {value!r}"
        )
    if value < 0:
        raise FormulaInputError(
            f"{parameter.value} {period.value} value must be >= 0 µg/Nm³, got {value!r}"
        )
    bound = limit(parameter, period, on=on)
    return Exceedance(
        parameter=parameter,
        period=period,
        value=value,
        limit=bound,
        exceeds=value > bound,
        excess=value - bound,
        on=on,
    )
