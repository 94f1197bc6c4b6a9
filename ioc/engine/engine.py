"""The engine: reads raw readings with InfluxQL, computes every catalog indicator, writes it back.

One cycle recomputes every complete period that ended in the last ``IOC_ENGINE_LOOKBACK``
(late readings are counted when they arrive), for each source, ward, province and the nation.
Values are stamped with their period's end and written to the ``derived`` policy, so re-running a
window rewrites the same points (idempotent). A backfill is the same computation over an older
range, in day-sized chunks. Each cycle writes its own figures (measurement ``engine``, policy
``ops``): seconds per cycle, points written, periods computed, lag behind the clock.

Two paths compute the same points (issue 16, docs/decisions.md):

* the **reference** path (``Engine(..., reference=True)``) is the straightforward computation
  kept as the specification: every period of the window, every source judged through
  :func:`ioc.formulas.liveness.feed_status`, every point written every cycle. The equivalence
  test (tests/engine/test_equivalence.py) and ``bench.engine`` run it beside the default path;
* the **default** path reads the same aggregates with the same queries and writes the same
  points, with less work: live-ness reads every record time of the window once per measurement
  (:func:`ioc.store.influxql.received_times`) instead of one ``last()`` query per period end and
  kind, and judges them with one limit per interval
  (:func:`ioc.engine.formulas.liveness_values`); registered members are worked out once per
  day, counts' ratios in integers, writes go in larger batches sent on a background thread
  while the next ones are computed (``_Writer``); and, in live cycles, a period
  whose inputs (every aggregate row it reads, or every last-record time for live-ness) equal
  those of the last successful write of that period is not computed or written again: its
  points in the store are already the ones it would write. Late readings change the inputs, so
  their periods are recomputed; a restarted engine remembers nothing and recomputes its whole
  window. Backfills never skip.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from ioc.catalog import Catalog, Indicator, Method, Source, parse_period
from ioc.engine.formulas import (
    FORMULAS,
    LIVENESS,
    PeriodTable,
    liveness_value,
    liveness_values,
)
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
    received_times,
)

__all__ = ["CycleReport", "Engine", "period_ends"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_NS = 1_000_000_000
_DAY_S = 86_400
_VIETNAM_MIDNIGHT_UTC_S = 17 * 3600  # 00:00 ICT (UTC+7) is 17:00 UTC
_WRITE_BATCH = 5000  # the reference path's batch size
_FAST_WRITE_BATCH = 20_000
_CHUNK_NS = _DAY_S * _NS
_TIMES_WINDOW_NS = 6 * 3600 * _NS  # one received_times query covers at most this much time


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


def _rows_by_start(
    table: PeriodTable,
) -> dict[int, tuple[tuple[str, tuple[tuple[str, float], ...]], ...]]:
    """Every aggregate row of the table by period start, in a comparable form (the inputs)."""
    by_start: dict[int, list[tuple[str, tuple[tuple[str, float], ...]]]] = defaultdict(list)
    for source_id, rows in table.rows.items():
        for start, row in rows.items():
            by_start[start].append((source_id, tuple(sorted(row.items()))))
    return {start: tuple(sorted(rows)) for start, rows in by_start.items()}


def _iso(ns: int) -> str:
    """RFC 3339 with nanoseconds, for bound time parameters."""
    seconds, rest = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest:09d}Z"


class _Writer:
    """Sends full batches of derived points on one background thread while the engine computes
    the next ones (the send mostly waits on InfluxDB); :meth:`finish` waits for every batch and
    raises the first failure. Points are the same, only sent earlier."""

    def __init__(self, store: Store, batch: int, *, background: bool = True) -> None:
        self.store = store
        self.batch = batch
        self.background = background
        self.pending: list[Point] = []
        self.sent: list[Future[int]] = []
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-write")

    def _send(self, batch: list[Point]) -> None:
        if self.background:
            self.sent.append(self.pool.submit(self.store.write, batch, rp="derived"))
            return
        done: Future[int] = Future()
        done.set_result(self.store.write(batch, rp="derived"))
        self.sent.append(done)

    def add(self, values: Iterable[IndicatorValue]) -> None:
        self.pending.extend(value.to_point() for value in values)
        while len(self.pending) >= self.batch:
            batch, self.pending = self.pending[: self.batch], self.pending[self.batch :]
            self._send(batch)

    def finish(self) -> int:
        """Send the rest, wait for every batch; the points written."""
        if self.pending:
            self._send(self.pending)
            self.pending = []
        try:
            return sum(future.result() for future in self.sent)
        finally:
            self.pool.shutdown(wait=True)

    def abandon(self) -> None:
        """Drop what is not sent yet and wait for the batches already sending."""
        self.pending = []
        for future in self.sent:
            future.cancel()
        self.pool.shutdown(wait=True)


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
        reference: bool = False,
    ) -> None:
        self.reference = reference
        self.write_batch = _WRITE_BATCH if reference else _FAST_WRITE_BATCH
        self.background_writes = not reference  # the default path sends while it computes
        self._written: dict[tuple[str, int], object] = {}  # (group, period end) -> inputs
        self._members_cache: dict[tuple[str, str, date], tuple[Source, ...]] = {}
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
        report = self.compute(now - self.lookback_ns, now, live=True)
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

    def compute(self, start_ns: int, end_ns: int, *, live: bool = False) -> CycleReport:
        """Compute and write every indicator for the periods ending in (start_ns, end_ns].

        ``live`` (run_cycle): on the default path, periods whose inputs are those of their last
        successful write are left as they are in the store (see the module's docstring)."""
        if self.reference:
            return self._compute_reference(start_ns, end_ns)
        return self._compute(start_ns, end_ns, live=live)

    def _compute_reference(self, start_ns: int, end_ns: int) -> CycleReport:
        """The specification: every period computed and written, one source at a time."""
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

    def _compute(self, start_ns: int, end_ns: int, *, live: bool) -> CycleReport:
        """The default path: the reference's points, computed with less work."""
        started = time.perf_counter()
        skipped: Counter[str] = Counter()
        inputs: dict[tuple[str, int], object] = {}
        writer = _Writer(self.store, self.write_batch, background=self.background_writes)
        try:
            periods, newest = self._compute_into(writer, inputs, skipped, start_ns, end_ns, live)
            points = writer.finish()
        except Exception:  # what the store now holds for these periods is not known
            writer.abandon()
            for key in inputs:
                self._written.pop(key, None)
            raise
        if live:  # only what was written is remembered; older periods are forgotten
            self._written = {k: v for k, v in self._written.items() if k[1] > start_ns}
            self._written.update(inputs)
        lag = None if newest is None else (end_ns - newest) / _NS
        return CycleReport(
            start_ns, end_ns, periods, points, time.perf_counter() - started, lag, dict(skipped)
        )

    def _compute_into(  # noqa: PLR0917 - the parts of one _compute
        self,
        writer: _Writer,
        inputs: dict[tuple[str, int], object],
        skipped: Counter[str],
        start_ns: int,
        end_ns: int,
        live: bool,
    ) -> tuple[int, int | None]:
        """Compute the window's values into ``writer``; (periods, newest period end)."""
        periods = 0
        newest: int | None = None
        groups: dict[tuple[str, int], list[Indicator]] = defaultdict(list)
        for indicator in self.catalog.indicators.values():
            if indicator.formula == LIVENESS:
                ends = period_ends(start_ns, end_ns, parse_period(indicator.period))
                writer.add(self._liveness_changed(indicator, ends, inputs, live=live))
                periods += len(ends)
                newest = max([newest or 0, *ends]) if ends else newest
            else:
                groups[(indicator.kind, parse_period(indicator.period))].append(indicator)
        for (kind, period_s), indicators in groups.items():
            ends = period_ends(start_ns, end_ns, period_s)
            if not ends:
                continue
            table = self._read(kind, period_s, indicators, ends, skipped)
            history = max(
                (FORMULAS[i.formula].history for i in indicators if i.formula is not None),
                default=0,
            )
            rows_at = _rows_by_start(table)
            for end in ends:
                key = (f"{kind}/{period_s}", end)
                read = tuple(
                    rows_at.get(end - k * table.period_ns, ()) for k in range(1, history + 2)
                )
                periods += len(indicators)
                if live and self._written.get(key) == read:
                    continue
                inputs[key] = read
                for indicator in indicators:
                    writer.add(self._indicator_at(indicator, table, end, skipped))
            newest = max(newest or 0, ends[-1])
        return periods, newest

    def _liveness_changed(
        self,
        indicator: Indicator,
        ends: Sequence[int],
        inputs: dict[tuple[str, int], object],
        *,
        live: bool,
    ) -> Iterator[IndicatorValue]:
        """Live-ness at each end whose last-record times differ from its last write (all if
        not ``live``); the times of the computed ends go into ``inputs``."""
        for end, seen in self._last_seen(indicator, ends):
            key = (indicator.key, end)
            if live and self._written.get(key) == seen:
                continue
            inputs[key] = seen
            members = self._members(indicator, end)
            sources = liveness_values(members, seen, end, grace=self.liveness_grace)
            yield from roll_up(indicator, end, sources, members)

    def _last_seen(
        self, indicator: Indicator, ends: Sequence[int]
    ) -> Iterator[tuple[int, dict[str, int]]]:
        """Per period end, each registered source's last record time in the reference's
        look-back (twice the limit of the slowest source of its kind), from the record times
        of the whole window read once per measurement rather than one query per end and kind.
        Kinds are applied in the reference's order, so a source found in two measurements
        keeps the same time."""
        plans: list[tuple[int, list[tuple[str, int]]]] = []
        windows: dict[str, tuple[int, int]] = {}  # measurement -> (after, up to)
        for end in ends:
            intervals: dict[str, int] = {}
            for source in self._members(indicator, end):
                intervals[source.kind] = max(
                    intervals.get(source.kind, 0), source.expected_interval_s
                )
            kinds = []
            for kind, interval_s in intervals.items():
                horizon_ns = int(interval_s * self.liveness_grace * 2 * _NS)
                measurement = self.catalog.kind(kind).measurement
                after, up_to = windows.get(measurement, (end - horizon_ns, end))
                windows[measurement] = (min(after, end - horizon_ns), max(up_to, end))
                kinds.append((measurement, horizon_ns))
            plans.append((end, kinds))
        times = {m: self._record_times(m, after, up_to) for m, (after, up_to) in windows.items()}
        for end, kinds in plans:
            last_seen: dict[str, int] = {}
            for measurement, horizon_ns in kinds:
                for source_id, stamps in times[measurement].items():
                    at = bisect_right(stamps, end)
                    if at and stamps[at - 1] > end - horizon_ns:
                        last_seen[source_id] = stamps[at - 1]
            yield end, last_seen

    def _record_times(self, measurement: str, after: int, up_to: int) -> dict[str, list[int]]:
        """Registered source -> sorted times of its records in (after, up_to]."""
        registry = self.catalog.registry
        text = received_times(self.settings.influx_db, measurement)
        found: dict[str, list[int]] = defaultdict(list)
        for first in range(after, up_to, _TIMES_WINDOW_NS):
            params = {"start": _iso(first), "end": _iso(min(first + _TIMES_WINDOW_NS, up_to))}
            for series in self.store.query(text, params):
                source_id = series.tags.get("source", "")
                if registry.get(source_id) is not None:
                    found[source_id].extend(int(row[0]) for row in series.values)
        for stamps in found.values():
            stamps.sort()
        return found

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
        if self.reference:
            return self._members_of(indicator, end_ns)
        day = datetime.fromtimestamp(end_ns / _NS, tz=UTC).date()
        key = (indicator.key, indicator.kind or "", day)
        members = self._members_cache.get(key)
        if members is None:
            if len(self._members_cache) > 1024:  # a long backfill: days are not revisited
                self._members_cache.clear()
            members = self._members_of(indicator, end_ns)
            self._members_cache[key] = members
        return members

    def _members_of(self, indicator: Indicator, end_ns: int) -> tuple[Source, ...]:
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
        for end, last_seen in self._last_seen_per_end(indicator, ends):
            members = self._members(indicator, end)
            values = [
                liveness_value(source, last_seen.get(source.id), end, grace=self.liveness_grace)
                for source in members
            ]
            yield from roll_up(indicator, end, values, members)

    def _last_seen_per_end(
        self, indicator: Indicator, ends: Sequence[int]
    ) -> Iterator[tuple[int, dict[str, int]]]:
        """Per period end, one ``last()`` query per kind: each registered source's last record
        within twice the limit of the slowest source of its kind (the reference's reads)."""
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
            yield end, last_seen

    # --- writing ------------------------------------------------------------------------------

    def _write(self, points: Sequence[Point]) -> int:
        written = 0
        size = self.write_batch
        for first in range(0, len(points), size):
            written += self.store.write(points[first : first + size], rp="derived")
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
