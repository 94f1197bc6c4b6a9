"""Station locations: the engine writes them as fields, and the walls' map queries read them.

Against the real InfluxDB: two air stations in one Hà Nội ward (one located, one not), a located
Cà Mau river gauge and a province-level department feed (no location), one engine cycle.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.store import Point, Store
from ioc.store.influxql import INDICATOR_TAGS, latest_detail_values

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9
MINUTE = 60 * 10**9
BOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"

REGISTRY = """
[[source]]
id = "01-air-located"
kind = "air"
province = "01"
ward = "00070"
name = "Hoàn Kiếm, located"
expected_interval = "1h"
location = { lat = 21.0279, lon = 105.851 }

[[source]]
id = "01-air-plain"
kind = "air"
province = "01"
ward = "00070"
name = "Hoàn Kiếm, no location"
expected_interval = "1h"

[[source]]
id = "96-water-located"
kind = "water"
province = "96"
ward = "32002"
name = "TP Cà Mau"
station = "ganh-hao-tp-ca-mau"
expected_interval = "1h"
location = { lat = 9.1756, lon = 105.1579 }

[[source]]
id = "01-dvc"
kind = "service"
province = "01"
name = "province portal"
department = "Văn phòng UBND thành phố"
expected_interval = "1h"
contact = ["vp-ubnd@hanoi.gov.vn.example"]
"""

LOCATED = {"01-air-located": (21.0279, 105.851), "96-water-located": (9.1756, 105.1579)}

READINGS: dict[str, tuple[str, dict[str, float]]] = {
    "01-air-located": ("air", {"pm25": 25.0}),
    "01-air-plain": ("air", {"pm25": 80.0}),
    "96-water-located": ("water", {"water_level": 1.07}),
    "01-dvc": ("service", {"dossiers_received": 100.0, "dossiers_on_time": 95.0}),
}


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return load_catalog(INDICATORS_FILE, registry)


@pytest.fixture
def computed(own_database: Settings, catalog: Catalog) -> Iterator[tuple[Store, int]]:
    """A store after 14 hours of readings and one engine cycle; the newest period end (ns)."""
    settings = dataclasses.replace(own_database, engine_lookback="3h")
    hour0 = time.time_ns() // HOUR * HOUR
    with Store(settings) as store:
        points = []
        for k in range(1, 15):
            at = hour0 - k * HOUR + 10 * MINUTE
            for source_id, (measurement, fields) in READINGS.items():
                source = catalog.registry.source(source_id)
                tags = {"source": source_id, "province": source.province}
                if source.ward:
                    tags["ward"] = source.ward
                points.append(Point(measurement, {**fields, "received_ms": at // 10**6}, at, tags))
        store.write(points)
        Engine(settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
        yield store, hour0


def _rows(store: Store, where: str) -> list[dict[str, Any]]:
    series = store.query(f'SELECT * FROM "derived"."indicator" WHERE {where}')
    return [row for s in series for row in s.rows()]


def test_located_sources_carry_latitude_and_longitude_on_every_source_point(
    computed: tuple[Store, int],
) -> None:
    store, _ = computed
    rows = _rows(store, "\"level\" = 'source'")
    by_source: dict[str, set[str]] = {}
    for row in rows:
        by_source.setdefault(row["source"], set()).add(row["indicator"])
        expected = LOCATED.get(row["source"], (None, None))
        assert (row["latitude"], row["longitude"]) == expected, row
    # every kind of source-level point: a formula (VN_AQI, flood), a ratio, live-ness
    assert by_source["01-air-located"] >= {"vn_aqi", "feed_live_share"}
    assert by_source["96-water-located"] >= {"flood_level", "feed_live_share"}
    assert by_source["01-air-plain"] >= {"vn_aqi", "feed_live_share"}
    assert by_source["01-dvc"] >= {"dossier_on_time_rate", "feed_live_share"}


def test_places_above_a_source_have_no_location(computed: tuple[Store, int]) -> None:
    store, _ = computed
    rows = _rows(store, "\"level\" <> 'source'")
    assert {row["level"] for row in rows} == {"ward", "province", "nation"}
    assert all(row.get("latitude") is None and row.get("longitude") is None for row in rows)


def test_coordinates_are_float_fields_never_tags(computed: tuple[Store, int]) -> None:
    store, _ = computed
    (tag_series,) = store.query('SHOW TAG KEYS FROM "derived"."indicator"')
    tag_keys = {row[0] for row in tag_series.values}
    assert tag_keys <= set(INDICATOR_TAGS)
    assert not tag_keys & {"latitude", "longitude"}
    (field_series,) = store.query('SHOW FIELD KEYS FROM "derived"."indicator"')
    field_types = dict(field_series.values)
    assert (field_types["latitude"], field_types["longitude"]) == ("float", "float")


def _geomap_queries() -> dict[str, str]:
    """The InfluxQL of every geomap panel of the generated boards, by board file and title."""
    found: dict[str, str] = {}
    for path in sorted(BOARDS.rglob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(board, dict):
            continue
        panels = list(board.get("panels", []))
        for panel in list(panels):
            panels.extend(panel.get("panels", []))  # panels inside collapsed rows
        for panel in panels:
            if panel.get("type") == "geomap":
                for target in panel["targets"]:
                    found[f"{path.name}: {panel['title']}"] = target["query"]
    return found


GEOMAPS = _geomap_queries()


def test_the_boards_have_station_maps() -> None:
    assert len(GEOMAPS) >= 4  # national overview (AQI, flood), air-quality and water boards
    for query in GEOMAPS.values():
        assert '"latitude", "longitude"' in query


@pytest.mark.parametrize("panel", sorted(GEOMAPS))
def test_each_station_map_query_returns_the_registered_coordinates(
    computed: tuple[Store, int], own_database: Settings, panel: str
) -> None:
    store, _ = computed
    query = GEOMAPS[panel]
    # what Grafana sends for the last 6 h, with Hà Nội (01) or Cà Mau (96) chosen on the board
    query = query.replace('"ioc"."derived"', f'"{own_database.influx_db}"."derived"')
    query = query.replace("$timeFilter", "time > now() - 6h")
    indicator = "vn_aqi" if "'vn_aqi'" in query else "flood_level"
    province = "01" if indicator == "vn_aqi" else "96"
    query = query.replace("$province", province)
    assert not re.search(r"\$[A-Za-z_]", query), query  # every variable and macro resolved
    answered = {}
    for series in store.query(query):
        (row,) = series.rows()
        answered[series.tags["source"]] = (row["latitude"], row["longitude"])
    if indicator == "vn_aqi":  # the unlocated station answers too, without coordinates
        assert answered == {
            "01-air-located": LOCATED["01-air-located"],
            "01-air-plain": (None, None),
        }
    else:
        assert answered == {"96-water-located": LOCATED["96-water-located"]}


def test_the_query_module_builds_the_same_map_query(computed: tuple[Store, int]) -> None:
    store, hour0 = computed
    text = latest_detail_values(
        store.settings.influx_db,
        fields=("band", "latitude", "longitude"),
        filters=("indicator", "level"),
        group_by=("province", "source"),
    )
    params = {
        "indicator": "vn_aqi",
        "level": "source",
        "start": _rfc3339(hour0 - 2 * HOUR),
        "end": _rfc3339(hour0),
    }
    rows = {s.tags["source"]: s.rows()[0] for s in store.query(text, params)}
    located = rows["01-air-located"]
    assert (located["value"], located["band"]) == (50.0, "good")
    assert (located["latitude"], located["longitude"]) == LOCATED["01-air-located"]
    assert rows["01-air-plain"]["latitude"] is None


def _rfc3339(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
