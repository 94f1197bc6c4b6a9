"""Indicator values at each level and how they are stored (measurement ``indicator``, rp derived).

A point per indicator, place and period end::

    indicator,indicator=vn_aqi,level=province,province=01,unit=AQI value=152,band="bad",
        coverage=3i,expected=3i,sources=3i,sources_expected=3i,wards_reporting=3i,
        wards_expected=3i,departments_reporting=0i,departments_expected=0i,
        origin="01-air-cau-giay",origin_ward="00167" <end>

Tags are the allowlisted keys only (indicator, level, unit, province, ward, source); everything
else is a field, including a located source's ``latitude`` and ``longitude`` on its source-level
points (the walls' maps). Derived values are stamped with the end of their period (DESIGN.md
"Time").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from ioc.store import Point
from ioc.store.influxql import INDICATOR_MEASUREMENT

__all__ = ["INDICATOR_MEASUREMENT", "NATION", "IndicatorValue", "Level", "SourceValue"]

NATION = "VN"
"""The place code of the national level (the API names places by official code)."""

FieldValue = float | int | str | bool


class Level(Enum):
    """Where a value applies: one source, one ward, one province or the whole nation."""

    SOURCE = "source"
    WARD = "ward"
    PROVINCE = "province"
    NATION = "nation"


@dataclass(frozen=True, slots=True)
class SourceValue:
    """One source's value for one period, with the parts roll-ups need.

    ``numerator``/``denominator`` are set for ratio and formula roll-ups (they are what is
    summed); ``details`` are formula outputs worth keeping (dominant pollutant, flood margin...).
    ``reported`` is False for a value the roll-up counts although the source did not report (a
    feed's live-ness is 0 when it is silent): it enters the value but not the coverage.
    """

    source_id: str
    value: float
    numerator: float | None = None
    denominator: float | None = None
    details: Mapping[str, FieldValue] = field(default_factory=lambda: MappingProxyType({}))
    reported: bool = True


@dataclass(frozen=True, slots=True)
class IndicatorValue:
    """An indicator's value for one place and period, with coverage and (for max) its origin.

    ``coverage``/``expected`` count the units one level down that reported / are registered (a
    ward's sources, a province's wards plus departments, the nation's provinces); ``sources`` and
    ``sources_expected`` count sources at any depth. The split by kind of unit (``wards_*``,
    ``departments_*``, ``provinces_*``) is set on the levels it applies to and None elsewhere.
    """

    indicator: str
    unit: str
    level: Level
    time_ns: int
    value: float
    band: str | None
    province: str | None = None
    ward: str | None = None
    source: str | None = None
    coverage: int = 1
    expected: int = 1
    sources: int = 1
    numerator: float | None = None
    denominator: float | None = None
    origin: str | None = None
    origin_ward: str | None = None
    origin_province: str | None = None
    sources_expected: int | None = None  # ward, province, nation: registered sources
    wards_reporting: int | None = None  # province, nation: wards with a reporting source
    wards_expected: int | None = None  # province, nation: wards with a registered source
    departments_reporting: int | None = None  # province, nation: departments (province level)
    departments_expected: int | None = None
    provinces_reporting: int | None = None  # nation: provinces with a reporting source
    provinces_expected: int | None = None
    latitude: float | None = None  # source level: the registry location of the source
    longitude: float | None = None
    details: Mapping[str, FieldValue] = field(default_factory=lambda: MappingProxyType({}))

    def to_point(self) -> Point:
        """The line-protocol point of this value."""
        tags = {"indicator": self.indicator, "level": self.level.value, "unit": self.unit}
        for key in ("province", "ward", "source"):
            value = getattr(self, key)
            if value is not None:
                tags[key] = value
        fields: dict[str, FieldValue] = {
            "value": float(self.value),
            "coverage": self.coverage,
            "expected": self.expected,
            "sources": self.sources,
        }
        optional: dict[str, FieldValue | None] = {
            "band": self.band,
            "numerator": None if self.numerator is None else float(self.numerator),
            "denominator": None if self.denominator is None else float(self.denominator),
            "origin": self.origin,
            "origin_ward": self.origin_ward,
            "origin_province": self.origin_province,
            "latitude": None if self.latitude is None else float(self.latitude),
            "longitude": None if self.longitude is None else float(self.longitude),
            "sources_expected": self.sources_expected,
            "wards_reporting": self.wards_reporting,
            "wards_expected": self.wards_expected,
            "departments_reporting": self.departments_reporting,
            "departments_expected": self.departments_expected,
            "provinces_reporting": self.provinces_reporting,
            "provinces_expected": self.provinces_expected,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        fields.update(self.details)
        return Point(INDICATOR_MEASUREMENT, fields, self.time_ns, tags)
