"""Coverage counts real places and says what they are (issue 17, item 6), on the demo registry.

The demo registry (``ioc/catalog/sources.toml``) gives Nghệ An (40) a data feed in each of its
130 communes and wards plus four province-level feeds of two departments (the People's
Committee office: public services; Science and Technology: tasks, plan 02's task groups and the
data-sharing platform), and a station in two of the communes, and four shared-system probes of
the same two departments: 140 sources. Hà Nội (01) has 17: six stations in four wards, seven
province-level feeds and four probes of six departments, of which the Health, Industry & Trade
and Justice departments' feeds are registered and never report (INDICATORS.md §7).

Every source except those three reports once, 30 seconds before the hour, and one engine cycle
runs against the real InfluxDB. Before the fix the province points said 133/133 and 11/11: each
province-level feed counted as a unit of its own, and a feed that never reported counted as
reporting in the live-ness roll-up (it has a value there: "not live").
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from ioc.catalog import Catalog, get_catalog
from ioc.engine import Engine
from ioc.places import get_places
from ioc.settings import Settings
from ioc.store import Point, Store

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9
SECOND = 10**9
NEVER_REPORT = ("01-data-health", "01-data-industry-trade", "01-data-justice")
"""Hà Nội's departments that had not connected their data by November 2025."""

FIELDS: dict[str, dict[str, float]] = {
    "air": {"pm25": 30.0},
    "water": {"water_level": 1.0},
    "traffic": {"vehicles": 100.0},
    "service": {"dossiers_received": 10.0, "dossiers_on_time": 9.0, "dossiers_online": 5.0},
    "tasks": {"tasks_total": 100.0, "tasks_completed": 51.0, "tasks_overdue": 0.0},
    "task_groups": {"task_groups_total": 16.0, "task_groups_completed": 16.0},
    "data": {"data_transactions": 5.0},
    "probe": {"probe_up": True},
}
"""A plausible reading of each source kind (the counts below do not depend on the values)."""

COVERAGE_FIELDS = (
    "coverage",
    "expected",
    "sources",
    "sources_expected",
    "wards_reporting",
    "wards_expected",
    "departments_reporting",
    "departments_expected",
    "provinces_reporting",
    "provinces_expected",
)


def seed_demo_readings(store: Store, catalog: Catalog, hour0: int) -> int:
    """One reading, 30 s before ``hour0``, from every source of Hà Nội and Nghệ An in the demo
    registry except :data:`NEVER_REPORT`; returns how many sources reported."""
    at = hour0 - 30 * SECOND
    points = []
    for source in catalog.registry.sources:
        if source.province not in {"01", "40"} or source.id in NEVER_REPORT:
            continue
        tags = {"source": source.id, "province": source.province}
        if source.ward:
            tags["ward"] = source.ward
        measurement = catalog.kind(source.kind).measurement
        fields = {**FIELDS[source.kind], "received_ms": at // 10**6}
        points.append(Point(measurement, fields, at, tags))
    store.write(points)
    return len(points)


def run_demo_cycle(settings: Settings) -> int:
    """Seed the demo readings and run one engine cycle at 1 minute past the hour; the hour."""
    catalog = get_catalog()
    hour0 = time.time_ns() // HOUR * HOUR
    with Store(settings) as store:
        assert seed_demo_readings(store, catalog, hour0) == 130 + 6 + 10 + 8
        report = Engine(settings, catalog, store).run_cycle(now_ns=hour0 + 60 * SECOND)
        assert report.points > 0
    return hour0


def province_point(settings: Settings, indicator: str, level: str, code: str, end: int) -> Any:
    """The coverage fields of one place's point at ``end``."""
    where = "" if level == "nation" else 'AND "province" = $code '
    with Store(settings) as store:
        series = store.query(
            f'SELECT {", ".join(COVERAGE_FIELDS)} FROM "derived"."indicator" '
            f'WHERE "indicator" = $i AND "level" = $level {where}AND time = $t',
            {"i": indicator, "level": level, "code": code, "t": _rfc3339(end)},
        )
    (row,) = series[0].rows()
    return {key: row.get(key) for key in COVERAGE_FIELDS}


def _rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


@pytest.fixture
def demo_settings(own_database: Settings) -> Settings:
    return dataclasses.replace(own_database, engine_lookback="15m")


def test_nghe_an_counts_its_130_communes_and_its_departments_apart(
    demo_settings: Settings,
) -> None:
    end = run_demo_cycle(demo_settings)
    communes = len(get_places().wards_of("40"))
    assert communes == 130  # the official list the report's "130/130 communes" counts

    live = province_point(demo_settings, "feed_live_share", "province", "40", end)
    assert (live["wards_reporting"], live["wards_expected"]) == (130, 130)
    # 4 province-level feeds of 2 departments: People's Committee office, Science and Technology
    assert (live["departments_reporting"], live["departments_expected"]) == (2, 2)
    assert (live["sources"], live["sources_expected"]) == (140, 140)
    assert (live["coverage"], live["expected"]) == (132, 132)  # wards + departments

    data = province_point(demo_settings, "data_transactions", "province", "40", end)
    assert (data["wards_reporting"], data["wards_expected"]) == (130, 130)
    assert (data["departments_reporting"], data["departments_expected"]) == (1, 1)
    assert (data["sources"], data["sources_expected"]) == (131, 131)

    service = province_point(demo_settings, "dossier_on_time_rate", "province", "40", end)
    assert (service["wards_reporting"], service["wards_expected"]) == (0, 0)
    assert (service["departments_reporting"], service["departments_expected"]) == (1, 1)


def test_ha_noi_counts_the_departments_that_never_reported_as_not_reporting(
    demo_settings: Settings,
) -> None:
    end = run_demo_cycle(demo_settings)

    live = province_point(demo_settings, "feed_live_share", "province", "01", end)
    assert (live["coverage"], live["expected"]) == (7, 10)  # was 11 of 11
    assert (live["wards_reporting"], live["wards_expected"]) == (4, 4)
    # six departments; Health, Industry & Trade and Justice never reported
    assert (live["departments_reporting"], live["departments_expected"]) == (3, 6)
    assert (live["sources"], live["sources_expected"]) == (14, 17)

    data = province_point(demo_settings, "data_transactions", "province", "01", end)
    assert (data["departments_reporting"], data["departments_expected"]) == (1, 4)
    assert (data["wards_reporting"], data["wards_expected"]) == (0, 0)
    assert (data["sources"], data["sources_expected"]) == (1, 4)

    nation = province_point(demo_settings, "feed_live_share", "nation", "", end)
    # Huế, Đà Nẵng and Cà Mau are registered in the demo and report nothing here
    assert (nation["provinces_reporting"], nation["provinces_expected"]) == (2, 5)
    assert (nation["coverage"], nation["expected"]) == (2, 5)
    assert nation["wards_reporting"] == 130 + 4
    assert nation["departments_reporting"] == 2 + 3
    assert nation["sources"] == 154
    assert nation["sources_expected"] == len(get_catalog().registry.sources)
