"""The catalog's named formulas, applied by the engine to one source's readings for one period.

Each formula says which period aggregates it reads (and how many earlier periods: NowCast needs
the 11 hours before the current one), computes a :class:`SourceValue` from them, and, for
``rollup = formula``, how to re-apply itself to summed inputs. The official arithmetic lives in
:mod:`ioc.formulas`; this module only feeds it. ``feed_liveness`` reads last-record times, not
period aggregates, so the engine handles its input and this module only judges it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Protocol

from ioc.catalog import Source
from ioc.engine.rollup import ratio_pct
from ioc.engine.values import FieldValue, SourceValue
from ioc.errors import FormulaInputError
from ioc.formulas import aqi_vn, flood, liveness, service_index
from ioc.formulas.nowcast import NOWCAST_HOURS

__all__ = [
    "FORMULAS",
    "PeriodFormula",
    "PeriodTable",
    "liveness_value",
    "liveness_values",
]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class PeriodTable:
    """Period aggregates of one measurement: source -> period start (ns) -> column -> value."""

    period_ns: int
    rows: Mapping[str, Mapping[int, Mapping[str, float]]]

    def value(self, source_id: str, start_ns: int, column: str) -> float | None:
        """The aggregate ``column`` of ``source_id`` for the period starting at start_ns."""
        row = self.rows.get(source_id, {}).get(start_ns)
        if row is None:
            return None
        value = row.get(column)
        return None if value is None else float(value)


class PeriodFormula(Protocol):
    """A formula computed from period aggregates of one source kind."""

    reads: tuple[tuple[str, str], ...]  # (InfluxQL function, metric)
    history: int  # earlier periods needed besides the current one

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """The source's value for the period ending at end_ns, or None if it cannot be had."""

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """The formula re-applied to summed inputs (``rollup = formula``)."""


_PM = {aqi_vn.Pollutant.PM2_5: "pm25", aqi_vn.Pollutant.PM10: "pm10"}
_GASES = {
    aqi_vn.Pollutant.O3: "o3",
    aqi_vn.Pollutant.NO2: "no2",
    aqi_vn.Pollutant.SO2: "so2",
    aqi_vn.Pollutant.CO: "co",
}


class VnAqiHourly:
    """Hourly VN_AQI of a station: NowCast of PM hourly means, 1 h means of gases (§1.3)."""

    reads: tuple[tuple[str, str], ...] = tuple(
        ("mean", metric) for metric in (*_PM.values(), *_GASES.values())
    )
    history: int = NOWCAST_HOURS - 1

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """None when neither PM2.5 nor PM10 has a NowCast (§1.1, §1.3 minimum data)."""
        hour = table.period_ns
        concentrations: dict[aqi_vn.Pollutant, float | None] = {}
        details: dict[str, FieldValue] = {}
        for pollutant, metric in _PM.items():
            hourly = [
                table.value(source.id, end_ns - k * hour, f"mean_{metric}")
                for k in range(1, NOWCAST_HOURS + 1)
            ]
            cast = aqi_vn.nowcast(hourly)
            concentrations[pollutant] = None if cast is None else cast.value
            if cast is not None:
                details[f"nowcast_{metric}"] = round(cast.value, 3)
        if all(value is None for value in concentrations.values()):
            return None
        for pollutant, metric in _GASES.items():
            concentrations[pollutant] = table.value(source.id, end_ns - hour, f"mean_{metric}")
        aqi = aqi_vn.hourly_aqi(concentrations)
        details["dominant"] = aqi.dominant.value
        details["beyond_index"] = aqi.beyond_index
        return SourceValue(source.id, float(aqi.value), details=MappingProxyType(details))

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """Not used: VN_AQI rolls up as the worst station (max)."""
        raise NotImplementedError("vn_aqi_hourly rolls up by max")


class FloodLevel:
    """Alarm level of the period's highest stage at the source's station (§3)."""

    reads: tuple[tuple[str, str], ...] = (("max", "water_level"),)
    history: int = 0

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """None without a reading in the period or without a station."""
        stage = table.value(source.id, end_ns - table.period_ns, "max_water_level")
        if stage is None or source.station is None:
            return None
        station = flood.station_by_id(source.station)
        assessment = flood.classify_stage(station, stage, unit=flood.LengthUnit.METRE)
        details: dict[str, FieldValue] = {
            "station": station.station_id,
            "stage": float(assessment.stage),
            "stage_unit": assessment.unit.value,
            "level_uncertain": assessment.level is None,
            "unverified_levels": assessment.depends_on_unverified,
        }
        if assessment.margin is not None and assessment.reference is not None:
            details["margin"] = float(assessment.margin)
            details["margin_from"] = assessment.reference.name
        return SourceValue(
            source.id, float(int(assessment.at_least)), details=MappingProxyType(details)
        )

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """Not used: flood levels roll up as the worst station (max)."""
        raise NotImplementedError("flood_level rolls up by max")


def _on_time_sub(end_ns: int) -> service_index.SubIndicator:
    moment = datetime.fromtimestamp(end_ns / _NS, tz=UTC)
    return service_index.formula_set_for(moment).sub_indicator("ON_TIME_RATE")


class ServiceOnTimeScore:
    """Decision 766 sub-indicator 2.1: 20 × on time / received, by the formula set of the date."""

    reads: tuple[tuple[str, str], ...] = (("sum", "dossiers_on_time"), ("sum", "dossiers_received"))
    history: int = 0

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """None without both counts in the period or when the score is undefined."""
        start = end_ns - table.period_ns
        on_time = table.value(source.id, start, "sum_dossiers_on_time")
        received = table.value(source.id, start, "sum_dossiers_received")
        if on_time is None or received is None:
            return None
        score = self.combine(on_time, received, end_ns)
        if score is None:
            return None
        return SourceValue(source.id, score, numerator=on_time, denominator=received)

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """The score of the counts; FormulaInputError (e.g. more on time than received) raises."""
        sub = _on_time_sub(end_ns)
        try:
            scored = service_index.score_counts(sub, round(numerator), round(denominator))
        except FormulaInputError:
            if denominator == 0:
                return None  # the sub-indicator is undefined without dossiers
            raise
        return float(scored.score)


class ProbeUptime:
    """Uptime of a shared system (issue 17, item 4): 100 × checks that found it up / checks in
    the period, from the ``probe`` results of ``ioc probe``. Rolls up as a ratio of sums (a
    province's checks that found its systems up / all its checks). [D]: no official target."""

    reads: tuple[tuple[str, str], ...] = (("count", "probe_up"), ("count_true", "probe_up"))
    history: int = 0

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """None for a system not checked in the period."""
        start = end_ns - table.period_ns
        checks = table.value(source.id, start, "count_probe_up")
        if not checks:
            return None
        up = table.value(source.id, start, "count_true_probe_up") or 0.0
        value = self.combine(up, checks, end_ns)
        if value is None:
            return None
        return SourceValue(source.id, value, numerator=up, denominator=checks)

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """100 × up / checks, two decimals half-up."""
        return ratio_pct(numerator, denominator)


class SystemsUp:
    """How many of a province's shared systems are up (issue 17, item 4): a system is up when
    the last check of the period found it up. Every registered system counts in the "of m"; one
    down or not checked in the period counts as not up and not reporting (like a stale feed in
    ``feed_liveness``). Value = n; the points' numerator/denominator are n and m."""

    reads: tuple[tuple[str, str], ...] = (("last", "probe_up"),)
    history: int = 0

    def compute(self, source: Source, table: PeriodTable, end_ns: int) -> SourceValue | None:
        """1 if the period's last check found the system up, else 0 (never None)."""
        last = table.value(source.id, end_ns - table.period_ns, "last_probe_up")
        up = last is not None and last >= 1.0
        state = "unchecked" if last is None else ("up" if up else "down")
        details: dict[str, FieldValue] = {"state": state}
        one = 1.0 if up else 0.0
        return SourceValue(
            source.id,
            one,
            numerator=one,
            denominator=1.0,
            details=MappingProxyType(details),
            reported=up,
        )

    def combine(self, numerator: float, denominator: float, end_ns: int) -> float | None:
        """The systems up: the summed numerator (the denominator is the systems registered)."""
        return numerator


FORMULAS: Mapping[str, PeriodFormula] = MappingProxyType(
    {
        "vn_aqi_hourly": VnAqiHourly(),
        "flood_level": FloodLevel(),
        "service_on_time_score": ServiceOnTimeScore(),
        "probe_uptime": ProbeUptime(),
        "systems_up": SystemsUp(),
    }
)
"""Period formulas by catalog name; ``feed_liveness`` is :func:`liveness_value`."""

LIVENESS = "feed_liveness"


def liveness_value(
    source: Source, last_record_ns: int | None, end_ns: int, *, grace: float
) -> SourceValue:
    """100 if the source's last record is recent enough at end_ns, else 0 (live / registered).

    A feed that is not live (stale, never reported, clock ahead) is counted in the share but
    not as reporting: coverage says how many units are live, not how many were looked at."""
    end = datetime.fromtimestamp(end_ns / _NS, tz=UTC)
    last = None if last_record_ns is None else datetime.fromtimestamp(last_record_ns / _NS, tz=UTC)
    feed = liveness.Feed(
        feed_id=source.id,
        province=source.province,
        unit=source.ward or source.province,
        expected_interval=timedelta(seconds=source.expected_interval_s),
        last_record_at=last,
    )
    status = liveness.feed_status(feed, end, grace=grace)
    live = status.state is liveness.FeedState.LIVE
    details: dict[str, FieldValue] = {"state": status.state.value}
    if status.age is not None:
        details["age_s"] = status.age.total_seconds()
    return SourceValue(
        source.id,
        100.0 if live else 0.0,
        numerator=1.0 if live else 0.0,
        denominator=1.0,
        details=MappingProxyType(details),
        reported=live,
    )


_NEVER_REPORTED = MappingProxyType({"state": liveness.FeedState.NEVER_REPORTED.value})


def liveness_values(
    sources: Sequence[Source], last_seen: Mapping[str, int], end_ns: int, *, grace: float
) -> list[SourceValue]:
    """:func:`liveness_value` of every source at one period end, with the same results.

    The per-feed path builds a ``Feed``, checks it and compares Fractions for every source and
    period; here the period end is converted once and the live limit (floor of interval × grace,
    whole microseconds: :class:`liveness.LiveLimits`) once per expected interval. Times
    are converted exactly as :func:`liveness_value` converts them (``ns / 1e9`` to a datetime),
    so ages and states are equal value for value (tests/engine/test_equivalence.py)."""
    end = datetime.fromtimestamp(end_ns / _NS, tz=UTC)
    limits = liveness.LiveLimits(grace)
    values = []
    for source in sources:
        last_ns = last_seen.get(source.id)
        if last_ns is None:
            values.append(
                SourceValue(source.id, 0.0, 0.0, 1.0, details=_NEVER_REPORTED, reported=False)
            )
            continue
        age = end - datetime.fromtimestamp(last_ns / _NS, tz=UTC)
        state = limits.state(age, source.expected_interval_s)
        live = state is liveness.FeedState.LIVE
        details = {"state": state.value, "age_s": age.total_seconds()}
        values.append(
            SourceValue(
                source.id,
                100.0 if live else 0.0,
                numerator=1.0 if live else 0.0,
                denominator=1.0,
                details=MappingProxyType(details),
                reported=live,
            )
        )
    return values
