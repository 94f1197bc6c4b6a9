"""The indicator engine (``ioc engine``): raw readings in, official indicators per place out."""

from ioc.engine.engine import CycleReport, Engine, period_ends
from ioc.engine.values import INDICATOR_MEASUREMENT, NATION, IndicatorValue, Level, SourceValue

__all__ = [
    "INDICATOR_MEASUREMENT",
    "NATION",
    "CycleReport",
    "Engine",
    "IndicatorValue",
    "Level",
    "SourceValue",
    "period_ends",
]
