"""The engine's default path writes exactly the points of its reference path (issue 16).

``Engine(..., reference=True)`` is the straightforward computation kept as the specification
(ioc/engine/engine.py, docs/decisions.md): every period of the window computed and written, every
feed judged through :func:`ioc.formulas.liveness.feed_status`, ratios through Fraction and
Decimal. The default path must give the same points value for value. Here both run on the same
seeded day in the real InfluxDB, each into a database of its own:

* the demo registry (every kind of source) reporting at its registry intervals with the
  simulator's values, PM2.5 replayed from the AirNow Hanoi record when it is on this machine;
* AirNow NowCast hold-out cases: one station sends no PM at all for four hours (neither NowCast
  exists, so it has no VN_AQI for those hours), another no PM2.5 for four hours (PM10 carries);
* a feed that never reports and one that stops six hours before the end (never reported, stale);
* a backfill of the day, then live cycles, then late readings and the next live cycle, which
  must be picked up (the default path skips only periods whose inputs did not change).

The smaller pieces of the fast path are proven equal to their reference by hypothesis.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.catalog import INDICATORS_FILE, Catalog, Source, load_catalog
from ioc.engine import Engine
from ioc.engine.formulas import liveness_value, liveness_values
from ioc.engine.rollup import ratio_pct, ratio_pct_exact
from ioc.settings import Settings
from ioc.simulate.pm25 import DEFAULT_FILES, Pm25Record
from ioc.simulate.signals import FloodEvent, SignalModel
from ioc.store import Point, Store
from ioc.store.influxql import quote_ident

NS = 10**9
MINUTE = 60 * NS
HOUR = 3600 * NS
DAY = 24 * HOUR
HISTORY_H = 11  # NowCast of the first hour of the day reads the 11 hours before it

NO_PM = "01-air-hoan-kiem"  # neither PM2.5 nor PM10 for four hours: no NowCast, no VN_AQI
NO_PM25 = "01-air-cau-giay"  # no PM2.5 for four hours: PM10's NowCast carries the AQI


# --- the pieces, against their reference -----------------------------------------------------


@given(
    numerator=st.integers(min_value=0, max_value=10**7),
    denominator=st.integers(min_value=0, max_value=10**7),
)
def test_ratio_of_counts_equals_the_fraction_path(numerator: int, denominator: int) -> None:
    assert ratio_pct(float(numerator), float(denominator)) == ratio_pct_exact(
        numerator, denominator
    )


@given(
    numerator=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    denominator=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_ratio_of_any_numbers_equals_the_fraction_path(
    numerator: float, denominator: float
) -> None:
    def outcome(ratio: Callable[[float, float], float | None]) -> object:
        try:
            return ratio(numerator, denominator)
        except ArithmeticError as error:  # e.g. beyond Decimal's precision: the same refusal
            return type(error)

    assert outcome(ratio_pct) == outcome(ratio_pct_exact)


def _source(n: int, interval_s: int) -> Source:
    return Source(
        id=f"01-air-{n}",
        kind="air",
        province="01",
        ward="00070",
        name=f"station {n}",
        expected_interval_s=interval_s,
        department=None,
        station=None,
        url=None,
        device_refs=(),
        registered=None,
    )


@settings(max_examples=300)
@given(
    end_ns=st.integers(min_value=1_500_000_000 * NS, max_value=2_000_000_000 * NS),
    ages=st.lists(
        st.one_of(st.none(), st.integers(min_value=-2 * HOUR, max_value=6 * HOUR)),
        min_size=1,
        max_size=8,
    ),
    intervals=st.lists(st.sampled_from([1, 59, 60, 300, 600, 900, 3600]), min_size=8, max_size=8),
    grace=st.one_of(st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0]), st.floats(1.0, 10.0)),
)
def test_liveness_of_many_feeds_equals_one_feed_at_a_time(
    end_ns: int, ages: list[int | None], intervals: list[int], grace: float
) -> None:
    sources = [_source(n, intervals[n]) for n in range(len(ages))]
    seen = {s.id: end_ns - age for s, age in zip(sources, ages, strict=False) if age is not None}
    fast = liveness_values(sources, seen, end_ns, grace=grace)
    slow = [liveness_value(s, seen.get(s.id), end_ns, grace=grace) for s in sources]
    assert [(v.source_id, v.value, v.numerator, v.denominator, v.reported) for v in fast] == [
        (v.source_id, v.value, v.numerator, v.denominator, v.reported) for v in slow
    ]
    assert [dict(v.details) for v in fast] == [dict(v.details) for v in slow]


def test_the_live_limit_is_the_largest_live_age() -> None:
    source = _source(1, 300)
    end = 1_800_000_000 * NS
    limit_ns = int(300 * 1.5 * NS)
    at_limit = liveness_values([source], {source.id: end - limit_ns}, end, grace=1.5)[0]
    beyond = liveness_values([source], {source.id: end - limit_ns - 1000}, end, grace=1.5)[0]
    assert (at_limit.reported, beyond.reported) == (True, False)
    assert dict(beyond.details)["state"] == "stale"


# --- a seeded day, both paths ------------------------------------------------------------------


@pytest.fixture
def second_database(own_database: Settings) -> Iterator[Settings]:
    settings = dataclasses.replace(own_database, influx_db=f"t_{uuid.uuid4().hex[:12]}")
    with Store(settings) as s:
        s.ensure_schema()
        yield settings
        s.command(f"DROP DATABASE {quote_ident(settings.influx_db)}")


def _model(end_ns: int) -> SignalModel:
    record = Pm25Record.from_csv() if all(p.is_file() for p in DEFAULT_FILES) else None
    return SignalModel(seed=16, flood=FloodEvent.over(end_ns, 36 * 3600.0), pm25=record)


def _held_out(source: Source, at: int, hour0: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The hold-out cases: PM readings missing for four hours of the day."""
    gap = hour0 - 9 * HOUR <= at < hour0 - 5 * HOUR
    if gap and source.id == NO_PM:
        return {k: v for k, v in fields.items() if k not in {"pm25", "pm10"}}
    if gap and source.id == NO_PM25:
        return {k: v for k, v in fields.items() if k != "pm25"}
    return fields


def _readings(catalog: Catalog, hour0: int) -> list[Point]:
    """Every registered source at its interval over the day and NowCast's history."""
    model = _model(hour0)
    sources = list(catalog.registry.sources)
    silent = sources[0].id  # never reports
    # an hourly feed silent for the last six hours: stale, then (beyond the engine's look-back
    # of twice the limit) never reported
    stale = next(s.id for s in sources[1:] if s.expected_interval_s == 3600)
    points = []
    for source in sources:
        if source.id == silent:
            continue
        stop = hour0 - 6 * HOUR if source.id == stale else hour0
        measurement = catalog.kind(source.kind).measurement
        tags = {"source": source.id, "province": source.province}
        if source.ward:
            tags["ward"] = source.ward
        step = source.expected_interval_s * NS
        first = (hour0 - DAY - HISTORY_H * HOUR) // step * step
        for at in range(first, stop, step):
            fields = _held_out(source, at, hour0, dict(model.values(source, at)))
            if fields:
                fields["received_ms"] = at // 10**6 + 1500
                points.append(Point(measurement, fields, at, tags))
    return points


def _derived(store: Store) -> dict[tuple[tuple[tuple[str, str], ...], int], dict[str, Any]]:
    """Every derived point: (tags, time) -> its fields."""
    found = {}
    for series in store.query('SELECT * FROM "derived"."indicator" GROUP BY *'):
        tags = tuple(sorted((k, v) for k, v in series.tags.items() if v))
        for row in series.rows():
            time_ns = row.pop("time")
            found[(tags, time_ns)] = {k: v for k, v in row.items() if v is not None}
    return found


def _field(points: dict[Any, dict[str, Any]], source: str, indicator: str) -> set[int]:
    """Times at which ``source`` has a source-level value of ``indicator``."""
    return {
        at
        for (tags, at), _ in points.items()
        if ("source", source) in tags and ("indicator", indicator) in tags
    }


@pytest.mark.services
def test_a_seeded_day_gives_the_same_points_on_both_paths(
    own_database: Settings, second_database: Settings
) -> None:
    catalog = load_catalog(INDICATORS_FILE)
    hour0 = time.time_ns() // HOUR * HOUR
    readings = _readings(catalog, hour0)
    old_settings = dataclasses.replace(own_database, engine_lookback="3h")
    new_settings = dataclasses.replace(second_database, engine_lookback="3h")
    with Store(old_settings) as old_store, Store(new_settings) as new_store:
        old_store.write(readings)
        new_store.write(readings)
        old = Engine(old_settings, catalog, old_store, reference=True)
        new = Engine(new_settings, catalog, new_store)
        assert old.backfill(hour0 - DAY, hour0).points == new.backfill(hour0 - DAY, hour0).points
        now = hour0 + 5 * MINUTE
        old_cycle, new_cycle = old.run_cycle(now_ns=now), new.run_cycle(now_ns=now)
        assert old_cycle.points == new_cycle.points > 0  # a started engine remembers nothing
        assert new.run_cycle(now_ns=now + MINUTE).points == 0  # nothing changed
        old.run_cycle(now_ns=now + MINUTE)

        # late readings: the hold-out station's PM for an hour of its gap, a stale feed's record
        points = _derived(new_store)
        assert points == _derived(old_store)
        gap_end = hour0 - 5 * HOUR
        assert gap_end not in _field(points, NO_PM, "vn_aqi")  # the hold-out case is exercised
        assert gap_end in _field(points, NO_PM25, "vn_aqi")
        source = catalog.registry.source(NO_PM)
        tags = {"source": NO_PM, "province": source.province, "ward": source.ward or ""}
        late = [
            Point("air", {"pm25": 80.0, "pm10": 120.0, "received_ms": (now // 10**6)}, at, tags)
            for at in (hour0 - 2 * HOUR + 10 * MINUTE, hour0 - 40 * MINUTE)
        ]
        old_store.write(late)
        new_store.write(late)
        old_late = old.run_cycle(now_ns=now + 2 * MINUTE)
        new_late = new.run_cycle(now_ns=now + 2 * MINUTE)
        assert 0 < new_late.points < old_late.points  # recomputed: only what changed
        after = _derived(new_store)
        assert after == _derived(old_store)
        assert after != points  # the late readings changed values

    states = {fields.get("state") for fields in after.values()}
    assert {"live", "stale", "never_reported"} <= states
    assert len(after) > 10_000  # not an empty comparison
