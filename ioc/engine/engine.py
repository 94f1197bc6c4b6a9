"""The engine: reads raw readings with InfluxQL, computes every catalog indicator, writes it back.

One cycle recomputes every complete period that ended in the last ``IOC_ENGINE_LOOKBACK``
(late readings are counted when they arrive), for each source, ward, province and the nation.
Values are stamped with their period's end and written to the ``derived`` policy, so re-running a
window rewrites the same points (idempotent). A backfill is the same computation over an older
range, in day-sized chunks. Each cycle writes its own figures (measurement ``engine``, policy
``ops``): seconds per cycle, points written, periods computed, lag behind the clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from ioc.catalog import Catalog, Indicator, Method, Source, parse_period
from ioc.engine.formulas import FORMULAS, LIVENESS, PeriodTable, liveness_value
from ioc.engine.rollup import Combine, ratio_pct, roll_up
from ioc.engine.values import IndicatorValue, SourceValue
from ioc.errors import FormulaInputError
from ioc.settings import Settings
from ioc.store import Point, Store
from ioc.store.influxql import (
    COUNT_TRUE,
    column_name,
    last_received,
    period_aggregates,
    period_true_counts,
)

__all__ = ["CycleReport", "Engine", "period_ends"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_NS = 1_000_000_000
_DAY_S = 86_400
_VIETNAM_MIDNIGHT_UTC_S = 17 * 3600  # 00:00 ICT (UTC+7) is 17:00 UTC
_WRITE_BATCH = 5000
_CHUNK_NS = _DAY_S * _NS


def period_offset_s(period_s: int) -> int:
    """Daily (and longer) periods start at midnight Vietnam time; shorter ones on the clock."""
    return _VIETNAM_MIDNIGHT_UTC_S if period_s >= _DAY_S else 0


def period_ends(start_ns: int, end_ns: int, period_s: int) -> list[int]:
    """Ends (ns) of the aligned periods with start_ns < end <= end_ns, oldest first."""
    period = period_s * _NS
    offset = period_offset_s(period_s) * _NS
    first = ((start_ns - offset) // period + 1) * period + offset
    return list(range(first, end_ns + 1, period))


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle or backfill did."""

    start_ns: int
    end_ns: int
    periods: int
    points: int
    seconds: float
    lag_s: float | None
    skipped: Mapping[str, int]


def _need(value: T | None, indicator: Indicator, name: str) -> T:
    """A field the loader guarantees for this indicator's method (a clear error if not)."""
    if value is None:
        raise ValueError(f"indicator {indicator.key!r} has no {name}")
    return value


def _iso(ns: int) -> str:
    """RFC 3339 with nanoseconds, for bound time parameters."""
    seconds, rest = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


class Engine:
    """Computes the catalog's indicators from the raw readings in the store."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: Store,
        *,
        liveness_grace: float = 2.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.liveness_grace = liveness_grace
        self.clock = clock
        self.lookback_ns = parse_period(settings.engine_lookback) * _NS
        for indicator in catalog.indicators.values():
            if indicator.formula == "vn_aqi_hourly" and parse_period(indicator.period) != 3600:
                raise ValueError(f"indicator {indicator.key!r}: VN_AQI is hourly (period 1h)")

    # --- entry points -------------------------------------------------------------------------

    def run_cycle(self, now_ns: int | None = None) -> CycleReport:
        """Recompute every period that ended in the lookback window before now."""
        now = self.clock() if now_ns is None else now_ns
        report = self.compute(now - self.lookback_ns, now)
        self._write_self_metrics(report, now)
        return report

    def backfill(self, start_ns: int, end_ns: int) -> CycleReport:
        """Compute every period ending in (start_ns, end_ns], a day at a time."""
        started = time.perf_counter()
        periods = points = 0
        skipped: Counter[str] = Counter()
        lag: float | None = None
        for chunk_start in range(start_ns, end_ns, _CHUNK_NS):
            part = self.compute(chunk_start, min(chunk_start + _CHUNK_NS, end_ns))
            periods += part.periods
            points += part.points
            skipped.update(part.skipped)
            lag = part.lag_s if part.lag_s is not None else lag
            log.info(
                "backfill: periods up to %s done (%d points so far)", _iso(part.end_ns), points
            )
        return CycleReport(
            start_ns, end_ns, periods, points, time.perf_counter() - started, lag, dict(skipped)
        )

    def run_forever(self, stop: threading.Event) -> None:
        """Run a cycle every ``IOC_ENGINE_INTERVAL`` seconds until ``stop`` is set; never crash."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = self.run_cycle()
            except Exception:
                log.exception("engine cycle failed; retrying at the next interval")
            else:
                log.info(
                    "cycle: %d periods, %d points in %.2f s, lag %s s, skipped %s",
                    report.periods,
                    report.points,
                    report.seconds,
                    "-" if report.lag_s is None else f"{report.lag_s:.0f}",
                    dict(report.skipped) or "nothing",
                )
            stop.wait(max(0.0, self.settings.engine_interval - (time.monotonic() - started)))

    # --- the computation ----------------------------------------------------------------------

    def compute(self, start_ns: int, end_ns: int) -> CycleReport:
        """Compute and write every indicator for the periods ending in (start_ns, end_ns]."""
        started = time.perf_counter()
        skipped: Counter[str] = Counter()
        values: list[IndicatorValue] = []
        periods = 0
        newest: int | None = None
        groups: dict[tuple[str, int], list[Indicator]] = defaultdict(list)
        for indicator in self.catalog.indicators.values():
            if indicator.formula == LIVENESS:
                ends = period_ends(start_ns, end_ns, parse_period(indicator.period))
                values.extend(self._liveness(indicator, ends))
                periods += len(ends)
                newest = max([newest or 0, *ends]) if ends else newest
            else:
                groups[(indicator.kind, parse_period(indicator.period))].append(indicator)
        for (kind, period_s), indicators in groups.items():
            ends = period_ends(start_ns, end_ns, period_s)
            if not ends:
                continue
            table = self._read(kind, period_s, indicators, ends, skipped)
            for indicator in indicators:
                for end in ends:
                    values.extend(self._indicator_at(indicator, table, end, skipped))
                periods += len(ends)
            newest = max(newest or 0, ends[-1])
        points = self._write([value.to_point() for value in values])
        lag = None if newest is None else (end_ns - newest) / _NS
        return CycleReport(
            start_ns,
            end_ns,
            periods,
            points,
            time.perf_counter() - started,
            lag,
            dict(skipped),
        )

    def _read(
        self,
        kind: str,
        period_s: int,
        indicators: Sequence[Indicator],
        ends: Sequence[int],
        skipped: Counter[str],
    ) -> PeriodTable:
        """One query: the period aggregates every indicator of this kind needs, per source."""
        selections: dict[tuple[str, str], None] = {}
        history = 0
        for indicator in indicators:
            for selection in self._reads(indicator):
                selections[selection] = None
            if indicator.formula is not None:
                history = max(history, FORMULAS[indicator.formula].history)
        period_ns = period_s * _NS
        measurement = self.catalog.kind(kind).measurement
        offset_s = period_offset_s(period_s)
        db = self.settings.influx_db
        plain = [s for s in selections if s[0] != COUNT_TRUE]
        texts = (
            [period_aggregates(db, measurement, plain, period_s=period_s, offset_s=offset_s)]
            if plain
            else []
        )
        texts.extend(  # true readings of bool fields: one query each (issue 17, probe uptime)
            period_true_counts(db, measurement, metric, period_s=period_s, offset_s=offset_s)
            for function, metric in selections
            if function == COUNT_TRUE
        )
        first_start = ends[0] - period_ns * (history + 1)
        params = {"start": _iso(first_start), "end": _iso(ends[-1])}
        rows: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
        registry = self.catalog.registry
        for text in texts:
            for series in self.store.query(text, params):
                source_id = series.tags.get("source", "")
                if registry.get(source_id) is None:
                    skipped["unregistered_source"] += 1
                    continue
                columns = series.columns
                for row in series.values:
                    rows[source_id].setdefault(int(row[0]), {}).update(
                        {columns[i]: row[i] for i in range(1, len(columns)) if row[i] is not None}
                    )
        return PeriodTable(period_ns, rows)

    @staticmethod
    def _reads(indicator: Indicator) -> Iterable[tuple[str, str]]:
        if indicator.formula is not None:
            return FORMULAS[indicator.formula].reads
        function = _need(indicator.aggregate, indicator, "aggregate").value
        return ((function, metric) for metric in indicator.metrics)

    def _members(self, indicator: Indicator, end_ns: int) -> tuple[Source, ...]:
        """Registered sources this indicator reads, registered by the end of the period."""
        registry = self.catalog.registry
        sources = registry.of_kind(indicator.kind) if indicator.kind else registry.sources
        day = datetime.fromtimestamp(end_ns / _NS, tz=UTC).date()
        return tuple(
            s for s in sources if s.registered is None or date.fromisoformat(s.registered) <= day
        )

    def _indicator_at(
        self, indicator: Indicator, table: PeriodTable, end_ns: int, skipped: Counter[str]
    ) -> list[IndicatorValue]:
        members = self._members(indicator, end_ns)
        combine: Combine | None = None
        source_values: list[SourceValue] = []
        start = end_ns - table.period_ns
        for source in members:
            try:
                value = self._source_value(indicator, source, table, start, end_ns)
            except FormulaInputError as why:
                skipped[f"{indicator.key}:formula_input"] += 1
                log.debug("%s at %s: %s: %s", indicator.key, _iso(end_ns), source.id, why)
                continue
            if value is not None:
                source_values.append(value)
        if indicator.formula is not None:
            combine = FORMULAS[indicator.formula].combine
        try:
            return roll_up(indicator, end_ns, source_values, members, combine=combine)
        except FormulaInputError as why:
            skipped[f"{indicator.key}:rollup_input"] += 1
            log.warning("%s at %s: roll-up refused: %s", indicator.key, _iso(end_ns), why)
            return []

    @staticmethod
    def _source_value(
        indicator: Indicator, source: Source, table: PeriodTable, start: int, end_ns: int
    ) -> SourceValue | None:
        if indicator.method is Method.FORMULA:
            formula = FORMULAS[_need(indicator.formula, indicator, "formula")]
            return formula.compute(source, table, end_ns)
        function = _need(indicator.aggregate, indicator, "aggregate").value
        if indicator.method is Method.METRIC:
            metric = _need(indicator.metric, indicator, "metric")
            value = table.value(source.id, start, column_name(function, metric))
            return None if value is None else SourceValue(source.id, value)
        num_metric = _need(indicator.numerator, indicator, "numerator")
        den_metric = _need(indicator.denominator, indicator, "denominator")
        numerator = table.value(source.id, start, column_name(function, num_metric))
        denominator = table.value(source.id, start, column_name(function, den_metric))
        if numerator is None or denominator is None:
            return None
        if numerator > denominator or numerator < 0:
            raise FormulaInputError(
                f"{num_metric}={numerator} is negative or exceeds {den_metric}={denominator}"
            )
        share = ratio_pct(numerator, denominator)
        if share is None:
            return None
        return SourceValue(source.id, share, numerator=numerator, denominator=denominator)

    def _liveness(self, indicator: Indicator, ends: Sequence[int]) -> Iterator[IndicatorValue]:
        """Per period end: each registered source live or not, rolled up as live / registered."""
        registry = self.catalog.registry
        for end in ends:
            members = self._members(indicator, end)
            last_seen: dict[str, int] = {}
            by_kind: dict[str, list[Source]] = defaultdict(list)
            for source in members:
                by_kind[source.kind].append(source)
            for kind, sources in by_kind.items():
                horizon_s = max(s.expected_interval_s for s in sources) * self.liveness_grace
                horizon_ns = int(horizon_s * 2 * _NS)  # twice the limit: enough to judge "live"
                text = last_received(self.settings.influx_db, self.catalog.kind(kind).measurement)
                params = {"start": _iso(end - horizon_ns), "end": _iso(end)}
                for series in self.store.query(text, params):
                    source_id = series.tags.get("source", "")
                    if registry.get(source_id) is not None and series.values:
                        last_seen[source_id] = int(series.values[0][0])
            values = [
                liveness_value(source, last_seen.get(source.id), end, grace=self.liveness_grace)
                for source in members
            ]
            yield from roll_up(indicator, end, values, members)

    # --- writing ------------------------------------------------------------------------------

    def _write(self, points: Sequence[Point]) -> int:
        written = 0
        for first in range(0, len(points), _WRITE_BATCH):
            written += self.store.write(points[first : first + _WRITE_BATCH], rp="derived")
        return written

    def _write_self_metrics(self, report: CycleReport, now_ns: int) -> None:
        fields: dict[str, float | int] = {
            "cycle_seconds": report.seconds,
            "points_written": report.points,
            "periods": report.periods,
            "skipped": sum(report.skipped.values()),
        }
        if report.lag_s is not None:
            fields["lag_seconds"] = report.lag_s
        self.store.write([Point("engine", fields, now_ns)], rp="ops")
