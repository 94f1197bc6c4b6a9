"""One engine cycle against the real InfluxDB: raw readings in, rolled-up indicators out.

The registry below places sources in two wards of Hà Nội (01), one of Huế (46) and Cà Mau (96),
plus province-level department feeds. Every reading is constant per hour so the expected values
can be worked out by hand: PM2.5 on a breakpoint of Table 2 gives a round AQI (25 -> 50,
50 -> 100, 80 -> 150), and the ratios below differ from a mean of ratios on purpose.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.store import Point, Store

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9
MINUTE = 60 * 10**9

REGISTRY = """
[[source]]
id = "01-air-a1"
kind = "air"
province = "01"
ward = "00070"
name = "A1"
expected_interval = "1h"

[[source]]
id = "01-air-a2"
kind = "air"
province = "01"
ward = "00070"
name = "A2"
expected_interval = "1h"

[[source]]
id = "01-air-a3"
kind = "air"
province = "01"
ward = "00167"
name = "A3 (promises a reading every 5 minutes, sends one an hour)"
expected_interval = "5m"

[[source]]
id = "01-air-silent"
kind = "air"
province = "01"
ward = "00148"
name = "registered, never reports"
expected_interval = "1h"

[[source]]
id = "46-air-a5"
kind = "air"
province = "46"
ward = "19768"
name = "A5"
expected_interval = "1h"

[[source]]
id = "01-dvc"
kind = "service"
province = "01"
name = "province portal"
expected_interval = "1h"

[[source]]
id = "01-dvc-ward"
kind = "service"
province = "01"
ward = "00070"
name = "ward one-stop shop"
expected_interval = "1h"

[[source]]
id = "46-dvc"
kind = "service"
province = "46"
name = "province portal"
expected_interval = "1h"

[[source]]
id = "01-tasks"
kind = "tasks"
province = "01"
name = "task register"
expected_interval = "1h"

[[source]]
id = "46-tasks"
kind = "tasks"
province = "46"
name = "task register"
expected_interval = "1h"

[[source]]
id = "01-water"
kind = "water"
province = "01"
ward = "00148"
name = "Hồng at Hà Nội"
station = "hong-ha-noi"
expected_interval = "1h"

[[source]]
id = "96-water"
kind = "water"
province = "96"
ward = "32002"
name = "TP Cà Mau (tidal, cm)"
station = "ganh-hao-tp-ca-mau"
expected_interval = "1h"

[[source]]
id = "01-traffic-1"
kind = "traffic"
province = "01"
ward = "00167"
name = "counter 1"
expected_interval = "1h"

[[source]]
id = "01-traffic-2"
kind = "traffic"
province = "01"
ward = "00235"
name = "counter 2"
expected_interval = "1h"
"""

# source -> (measurement, fields) written once an hour, at :10
READINGS: dict[str, tuple[str, dict[str, float]]] = {
    "01-air-a1": ("air", {"pm25": 25.0, "o3": 50.0}),
    "01-air-a2": ("air", {"pm25": 80.0}),
    "01-air-a3": ("air", {"pm25": 50.0}),
    "46-air-a5": ("air", {"pm25": 50.0, "pm10": 30.0}),
    "01-dvc": ("service", {"dossiers_received": 100.0, "dossiers_on_time": 95.0}),
    "01-dvc-ward": ("service", {"dossiers_received": 10.0, "dossiers_on_time": 1.0}),
    "46-dvc": ("service", {"dossiers_received": 50.0, "dossiers_on_time": 40.0}),
    "01-tasks": ("tasks", {"tasks_total": 30.0, "tasks_completed": 12.0, "tasks_overdue": 18.0}),
    "46-tasks": ("tasks", {"tasks_total": 100.0, "tasks_completed": 51.0, "tasks_overdue": 0.0}),
    "01-water": ("water", {"water_level": 10.5}),
    "96-water": ("water", {"water_level": 1.07}),
    "01-traffic-1": ("traffic", {"vehicles": 1200.0}),
    "01-traffic-2": ("traffic", {"vehicles": 800.0}),
}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return load_catalog(INDICATORS_FILE, registry)


@pytest.fixture
def hour0() -> int:
    """The start of the current hour: the newest complete period ends here."""
    import time

    return time.time_ns() // HOUR * HOUR


def _seed(store: Store, catalog: Catalog, hour0: int, hours: int = 14) -> None:
    points = []
    for k in range(1, hours + 1):
        at = hour0 - k * HOUR + 10 * MINUTE
        for source_id, (measurement, fields) in READINGS.items():
            source = catalog.registry.source(source_id)
            tags = {"source": source_id, "province": source.province}
            if source.ward:
                tags["ward"] = source.ward
            points.append(Point(measurement, {**fields, "received_ms": at // 10**6}, at, tags))
    store.write(points)


def _values(store: Store, indicator: str, end: int) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(level, province, ward) -> fields of the indicator's non-source values at ``end``."""
    series = store.query(
        'SELECT * FROM "derived"."indicator" WHERE "indicator" = $i AND time = $t '
        "AND \"level\" <> 'source'",
        {"i": indicator, "t": _rfc3339(end)},
    )
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in series:
        for row in s.rows():
            key = (row["level"], row.get("province") or "", row.get("ward") or "")
            found[key] = row
    return found


def _rfc3339(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def engine_settings(own_database: Settings) -> Settings:
    return dataclasses.replace(own_database, engine_lookback="3h")


def test_one_cycle_rolls_up_wards_provinces_and_nation(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0)
        report = Engine(engine_settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
        assert report.points > 0
        assert report.skipped == {}

        aqi = _values(store, "vn_aqi", hour0)
        # max with origin: ward 00070 has A1 (PM2.5 25 -> 50) and A2 (80 -> 150)
        ward = aqi[("ward", "01", "00070")]
        assert (ward["value"], ward["origin"], ward["band"]) == (150.0, "01-air-a2", "poor")
        assert (ward["coverage"], ward["expected"], ward["sources"]) == (2, 2, 2)
        assert aqi[("ward", "01", "00167")]["value"] == 100.0
        assert ("ward", "01", "00148") not in aqi  # registered but silent: no value invented
        province = aqi[("province", "01", "")]
        assert (province["value"], province["origin"], province["origin_ward"]) == (
            150.0,
            "01-air-a2",
            "00070",
        )
        # coverage: 2 of the 3 wards with an air station reported
        assert (province["coverage"], province["expected"], province["sources"]) == (2, 3, 3)
        nation = aqi[("nation", "", "")]
        assert (nation["value"], nation["origin_province"]) == (150.0, "01")
        assert (nation["coverage"], nation["expected"], nation["sources"]) == (2, 2, 4)

        rate = _values(store, "dossier_on_time_rate", hour0)
        assert rate[("ward", "01", "00070")]["value"] == 10.0
        # ratio of sums: (95 + 1) / (100 + 10) = 87.27 %, not the mean of ratios (52.5 %)
        province = rate[("province", "01", "")]
        assert province["value"] == 87.27
        assert (province["numerator"], province["denominator"]) == (96.0, 110.0)
        # the province's units are its ward 00070 and its province-level portal
        assert (province["coverage"], province["expected"]) == (2, 2)
        assert rate[("nation", "", "")]["value"] == 85.0  # 136 / 160

        score = _values(store, "service_timeliness_score", hour0)
        assert score[("province", "01", "")]["value"] == pytest.approx(20 * 96 / 110, abs=0.005)
        assert score[("nation", "", "")]["value"] == 17.0  # 20 × 136 / 160

        tasks = _values(store, "task_completion_rate", hour0)
        assert tasks[("province", "01", "")]["value"] == 40.0
        assert tasks[("province", "46", "")]["value"] == 51.0
        assert tasks[("nation", "", "")]["value"] == 48.46  # 63 / 130
        assert _values(store, "tasks_overdue", hour0)[("nation", "", "")]["value"] == 18.0

        traffic = _values(store, "traffic_volume", hour0)
        assert traffic[("province", "01", "")]["value"] == 2000.0
        assert traffic[("province", "01", "")]["coverage"] == 2

        flood = _values(store, "flood_level", hour0)
        assert flood[("province", "01", "")]["value"] == 2.0  # 10.50 m = BĐII at Hà Nội
        nation = flood[("nation", "", "")]
        # 1.07 m = 107 cm at TP Cà Mau: level III (BĐIII 85 cm), the worst in the country
        assert (nation["value"], nation["origin"], nation["origin_province"]) == (
            3.0,
            "96-water",
            "96",
        )
        assert nation["band"] == "alarm_3"

        live = _values(store, "feed_live_share", hour0)
        # 14 sources: A3 promises 5 minutes and last reported 50 minutes ago; one never did
        assert live[("nation", "", "")]["value"] == 85.71  # 12 / 14
        assert live[("province", "01", "")]["value"] == 80.0  # 8 / 10
        assert live[("province", "46", "")]["value"] == 100.0


def test_source_level_values_keep_formula_details(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0)
        Engine(engine_settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
        rows = store.query(
            'SELECT * FROM "derived"."indicator" WHERE "level" = \'source\' AND time = $t '
            "AND \"indicator\" = 'flood_level' AND \"source\" = '96-water'",
            {"t": _rfc3339(hour0)},
        )[0].rows()
        (row,) = rows
        assert row["stage_unit"] == "cm"
        assert row["stage"] == pytest.approx(107.0)
        assert row["margin"] == pytest.approx(22.0)  # bulletin phrasing: 22 cm above BĐIII
        assert row["margin_from"] == "III"

        aqi = store.query(
            'SELECT * FROM "derived"."indicator" WHERE "level" = \'source\' AND time = $t '
            "AND \"indicator\" = 'vn_aqi' AND \"source\" = '46-air-a5'",
            {"t": _rfc3339(hour0)},
        )[0].rows()[0]
        assert (aqi["value"], aqi["dominant"], aqi["nowcast_pm25"]) == (100.0, "PM2.5", 50.0)


def test_a_rerun_rewrites_the_same_points(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0)
        engine = Engine(engine_settings, catalog, store)
        first = engine.run_cycle(now_ns=hour0 + 5 * MINUTE)
        count_query = 'SELECT count("value") FROM "derived"."indicator"'
        before = store.query(count_query)[0].values[0][1]
        # a restarted engine (nothing remembered) rewrites every point, onto the same ones
        second = Engine(engine_settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
        after = store.query(count_query)[0].values[0][1]
        assert before == after == first.points == second.points
        # the same engine finds every period's inputs unchanged: nothing to rewrite
        third = engine.run_cycle(now_ns=hour0 + 5 * MINUTE)
        assert third.points == 0 and third.periods == first.periods
        assert store.query(count_query)[0].values[0][1] == before


def test_late_readings_are_counted_by_the_next_cycle(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0)
        engine = Engine(engine_settings, catalog, store)
        engine.run_cycle(now_ns=hour0 + 5 * MINUTE)
        # a third counter's reading for the last hour arrives late
        late = hour0 - 30 * MINUTE
        store.write(
            [
                Point(
                    "traffic",
                    {"vehicles": 500.0, "received_ms": late // 10**6},
                    late,
                    {"source": "01-traffic-1", "province": "01", "ward": "00167"},
                )
            ]
        )
        engine.run_cycle(now_ns=hour0 + 6 * MINUTE)
        traffic = _values(store, "traffic_volume", hour0)
        assert traffic[("province", "01", "")]["value"] == 2500.0


def test_backfill_computes_every_period_of_the_range(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0, hours=20)
        engine = Engine(engine_settings, catalog, store)
        report = engine.backfill(hour0 - 6 * HOUR, hour0)
        series = store.query(
            'SELECT "value", "origin" FROM "derived"."indicator" '
            "WHERE \"indicator\" = 'vn_aqi' AND \"level\" = 'nation'"
        )
        times = [row[0] for row in series[0].values]
        assert times == [hour0 - k * HOUR for k in range(5, -1, -1)]
        assert {(row[1], row[2]) for row in series[0].values} == {(150.0, "01-air-a2")}
        assert report.periods > 0
        assert report.lag_s == 0


def test_each_cycle_reports_its_own_figures(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0, hours=3)
        now = hour0 + 5 * MINUTE
        report = Engine(engine_settings, catalog, store).run_cycle(now_ns=now)
        (row,) = store.query('SELECT * FROM "ops"."engine"')[0].rows()
        assert row["time"] == now
        assert row["points_written"] == report.points
        assert row["lag_seconds"] == pytest.approx(5 * 60)
        assert row["cycle_seconds"] > 0


def test_readings_of_unregistered_sources_are_counted_not_used(
    engine_settings: Settings, catalog: Catalog, hour0: int
) -> None:
    with Store(engine_settings) as store:
        _seed(store, catalog, hour0, hours=3)
        at = hour0 - 20 * MINUTE
        store.write(
            [
                Point(
                    "air",
                    {"pm25": 400.0, "received_ms": at // 10**6},
                    at,
                    {"source": "99-rogue", "province": "01", "ward": "00070"},
                )
            ]
        )
        report = Engine(engine_settings, catalog, store).run_cycle(now_ns=hour0 + MINUTE)
        assert report.skipped == {"unregistered_source": 1}
        assert _values(store, "vn_aqi", hour0)[("nation", "", "")]["value"] == 150.0
