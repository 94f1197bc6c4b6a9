"""The catalog's immutable values: metrics, source kinds, indicators and registered sources.

Built once by :mod:`ioc.catalog.loader` from the data files and trusted everywhere after that
(ingest validates against it, the engine computes from it, the API serves it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

__all__ = [
    "Band",
    "Catalog",
    "Direction",
    "Indicator",
    "Kind",
    "Location",
    "Method",
    "Metric",
    "MetricType",
    "Registry",
    "Rollup",
    "Source",
    "SourceClass",
    "TimeAggregate",
]


class MetricType(Enum):
    """What a metric's values are: a measured quantity, a count, or an on/off state."""

    FLOAT = "float"
    COUNT = "count"
    BOOL = "bool"


class TimeAggregate(Enum):
    """How a metric's readings inside one period become one value (InfluxQL function name)."""

    MEAN = "mean"
    MAX = "max"
    SUM = "sum"
    LAST = "last"


class SourceClass(Enum):
    """Devices measure the world; feeds report a department's figures; probes check systems."""

    DEVICE = "device"
    FEED = "feed"
    PROBE = "probe"


class Method(Enum):
    """How an indicator's per-source value is computed from raw readings."""

    METRIC = "metric"  # one metric, aggregated over the period
    RATIO = "ratio"  # 100 × numerator / denominator, each aggregated over the period
    FORMULA = "formula"  # a named official formula (ioc.engine.formulas)


class Rollup(Enum):
    """How source values combine into ward, province and national values (DESIGN.md Roll-ups)."""

    SUM = "sum"  # counts add
    RATIO = "ratio"  # ratio of the summed numerators and denominators, never a mean of ratios
    MAX = "max"  # worst of, keeping the source it came from
    FORMULA = "formula"  # the official formula applied to the summed inputs


class Direction(Enum):
    """Whether a larger value is better or worse (colours, rankings, alert sides)."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


@dataclass(frozen=True, slots=True)
class Metric:
    """A raw quantity sources report, its canonical unit, accepted units and valid range."""

    key: str
    title_vi: str
    title_en: str
    type: MetricType
    unit: str
    units: Mapping[str, float]  # accepted unit -> factor to the canonical unit
    minimum: float | None
    maximum: float | None
    aliases: tuple[str, ...]

    def factor(self, unit: str | None) -> float | None:
        """The factor converting ``unit`` to the canonical unit; None if not accepted."""
        if unit is None:
            return 1.0
        return self.units.get(unit)


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of source (air station, river gauge, feed...), stored in one measurement."""

    key: str
    title_vi: str
    title_en: str
    source_class: SourceClass
    measurement: str
    metrics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Band:
    """A colour band of an indicator: from ``low`` up to the next band's ``low`` (exclusive)."""

    key: str
    low: float
    title_vi: str
    title_en: str
    colour: str


@dataclass(frozen=True, slots=True)
class Indicator:
    """A derived indicator the engine computes, the API serves and the walls show."""

    key: str
    title_vi: str
    title_en: str
    domain: str
    unit: str
    minimum: float | None
    maximum: float | None
    period: str
    method: Method
    kind: str
    metric: str | None
    aggregate: TimeAggregate | None
    numerator: str | None
    denominator: str | None
    formula: str | None
    rollup: Rollup
    direction: Direction
    bands: tuple[Band, ...]
    thresholds: Mapping[str, float]
    target: float | None
    dashboard: str | None
    alert: str | None
    reference: str

    def band_for(self, value: float) -> Band | None:
        """The band ``value`` falls in (the last whose ``low`` it reaches), or None below all."""
        found: Band | None = None
        for band in self.bands:  # ascending by ``low`` (checked by the loader)
            if value < band.low:
                break
            found = band
        return found

    @property
    def metrics(self) -> tuple[str, ...]:
        """The raw metrics this indicator reads (formulas name theirs in the engine)."""
        return tuple(m for m in (self.metric, self.numerator, self.denominator) if m is not None)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a station stands, in WGS 84 degrees (the walls' maps; written as fields)."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Source:
    """A registered device, departmental feed or probe: where it is and how often it reports.

    ``contact`` are the e-mail addresses of the unit responsible for the source (a department or
    a commune office), for reminders to late units.
    """

    id: str
    kind: str
    province: str
    ward: str | None
    name: str
    expected_interval_s: int
    department: str | None
    station: str | None
    url: str | None
    device_refs: tuple[str, ...]
    registered: str | None
    location: Location | None = None
    contact: tuple[str, ...] = ()


_DEV_EUI = re.compile(r"[0-9A-Fa-f]{16}")


def _ref_key(ref: str) -> str:
    """DevEUIs (16 hex digits) match whatever their case; other device names exactly."""
    return ref.lower() if _DEV_EUI.fullmatch(ref) else ref


@dataclass(frozen=True, slots=True)
class Registry:
    """Every registered source, looked up by id or by the name a payload uses for the device."""

    sources: tuple[Source, ...]
    path: str
    _by_id: Mapping[str, Source] = field(init=False, repr=False, compare=False)
    _by_ref: Mapping[str, Source] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Build the lookup tables once (the loader has checked uniqueness)."""
        by_id = {source.id: source for source in self.sources}
        by_ref = {_ref_key(ref): source for source in self.sources for ref in source.device_refs}
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "_by_ref", MappingProxyType(by_ref))

    def source(self, source_id: str) -> Source:
        """The source with this id; KeyError naming it otherwise."""
        try:
            return self._by_id[source_id]
        except KeyError:
            raise KeyError(f"unknown source {source_id!r}") from None

    def get(self, source_id: str) -> Source | None:
        """The source with this id, or None."""
        return self._by_id.get(source_id)

    def by_device_ref(self, ref: str) -> Source | None:
        """The source a payload's device name (TTS device id, DevEUI, SenML name) belongs to."""
        found = self._by_ref.get(_ref_key(ref))
        return found if found is not None else self._by_id.get(ref)

    def of_kind(self, *kinds: str) -> tuple[Source, ...]:
        """The sources of any of these kinds, in registry order."""
        return tuple(source for source in self.sources if source.kind in kinds)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Metrics, kinds and indicators (package data) with the source registry."""

    version: int
    metrics: Mapping[str, Metric]
    kinds: Mapping[str, Kind]
    indicators: Mapping[str, Indicator]
    registry: Registry

    def metric(self, key: str) -> Metric:
        """The metric ``key``; KeyError naming it otherwise."""
        try:
            return self.metrics[key]
        except KeyError:
            raise KeyError(f"unknown metric {key!r}") from None

    def kind(self, key: str) -> Kind:
        """The source kind ``key``; KeyError naming it otherwise."""
        try:
            return self.kinds[key]
        except KeyError:
            raise KeyError(f"unknown source kind {key!r}") from None

    def indicator(self, key: str) -> Indicator:
        """The indicator ``key``; KeyError naming it otherwise."""
        try:
            return self.indicators[key]
        except KeyError:
            raise KeyError(f"unknown indicator {key!r}") from None
