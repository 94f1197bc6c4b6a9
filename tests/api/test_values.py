"""The API against a real InfluxDB seeded with indicator values: values, bands, ranks, scopes."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.catalog import get_catalog
from ioc.engine import IndicatorValue, Level
from ioc.settings import Settings
from ioc.store import Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

HOUR_NS = 3600 * 10**9
PROBLEM = "application/problem+json"


def _end() -> int:
    """The newest complete hour (the period end of the seeded values)."""
    return time.time_ns() // HOUR_NS * HOUR_NS


def _value(indicator: str, unit: str, level: Level, end: int, value: float, **kw: Any) -> Any:
    return IndicatorValue(indicator, unit, level, end, value, band=None, **kw).to_point()


def seed(settings: Settings) -> int:
    """Known values: VN_AQI for 6 provinces, 4 wards and the nation; task completion for 3."""
    end = _end()
    aqi = "vn_aqi"
    points = [
        _value(
            aqi,
            "AQI",
            Level.PROVINCE,
            end,
            152,
            province="01",
            coverage=2,
            expected=3,
            sources=3,
            origin="01-air-cau-giay",
            origin_ward="00167",
            origin_province="01",
        ),
        _value(aqi, "AQI", Level.PROVINCE, end - HOUR_NS, 120, province="01"),
        _value(aqi, "AQI", Level.PROVINCE, end - 2 * HOUR_NS, 101, province="01"),
        _value(aqi, "AQI", Level.PROVINCE, end, 45, province="46"),
        _value(aqi, "AQI", Level.PROVINCE, end, 45, province="96"),
        _value(aqi, "AQI", Level.PROVINCE, end, 88, province="40"),
        _value(aqi, "AQI", Level.PROVINCE, end, 210, province="48"),
        _value(aqi, "AQI", Level.PROVINCE, end - 2 * HOUR_NS, 60, province="79"),  # stale
        _value(aqi, "AQI", Level.WARD, end, 152, province="01", ward="00167"),
        _value(aqi, "AQI", Level.WARD, end, 90, province="01", ward="00148"),
        _value(aqi, "AQI", Level.WARD, end, 130, province="01", ward="00070"),
        _value(aqi, "AQI", Level.WARD, end, 45, province="46", ward="19768"),
        _value(
            aqi,
            "AQI",
            Level.NATION,
            end,
            210,
            coverage=6,
            expected=34,
            origin="48-air-x",
            origin_province="48",
        ),
        _value("task_completion_rate", "%", Level.PROVINCE, end, 40.0, province="01"),
        _value("task_completion_rate", "%", Level.PROVINCE, end, 53.66, province="96"),
        _value("task_completion_rate", "%", Level.PROVINCE, end, 51.0, province="40"),
    ]
    with Store(settings) as store:
        store.write(points, rp="derived")
    return end


def get(client: FlaskClient, key: str, url: str, **headers: str) -> Any:
    return client.get(url, headers={"X-API-Key": key, **headers})


def body(response: Any) -> Any:
    return orjson.loads(response.data)


def test_latest_province_values_carry_band_coverage_and_origin(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    end = seed(api_settings)
    response = get(client, keys.read, "/api/v1/indicators/vn_aqi/values?level=province")
    assert response.status_code == 200, response.data
    page = body(response)
    codes = [item["place"]["code"] for item in page["items"]]
    assert codes == ["01", "40", "46", "48", "79", "96"]
    hanoi = page["items"][0]
    assert hanoi["value"] == 152
    assert hanoi["band"]["key"] == "bad"  # 151-200 in Decision 1459 Table 1
    assert (hanoi["coverage"], hanoi["expected"], hanoi["sources"]) == (2, 3, 3)
    assert hanoi["origin"] == {"source": "01-air-cau-giay", "ward": "00167", "province": "01"}
    assert hanoi["place"]["name"] == "Thành phố Hà Nội"
    assert hanoi["time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end // 10**9))
    assert page["total"] == 6
    bands = {item["place"]["code"]: item["band"]["key"] for item in page["items"]}
    assert bands == {
        "01": "bad",
        "40": "moderate",
        "46": "good",
        "48": "very_bad",
        "79": "moderate",
        "96": "good",
    }


def test_nation_and_ward_levels(client: FlaskClient, keys: Keys, api_settings: Settings) -> None:
    seed(api_settings)
    nation = body(get(client, keys.read, "/api/v1/indicators/vn_aqi/values?level=nation"))
    assert [(i["place"]["code"], i["value"]) for i in nation["items"]] == [("VN", 210)]
    assert nation["items"][0]["origin"]["province"] == "48"
    wards = body(
        get(
            client, keys.read, "/api/v1/indicators/vn_aqi/values?level=ward&province=01&page_size=2"
        )
    )
    assert wards["total"] == 3
    assert [i["place"]["code"] for i in wards["items"]] == ["00070", "00148"]
    second = body(
        get(
            client,
            keys.read,
            "/api/v1/indicators/vn_aqi/values?level=ward&province=01&page_size=2&page=2",
        )
    )
    assert [i["place"]["code"] for i in second["items"]] == ["00167"]


def test_ranking_orders_best_first_with_ties_and_leaves_stale_places_unranked(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    seed(api_settings)
    ranking = body(get(client, keys.read, "/api/v1/indicators/vn_aqi/ranking"))
    rows = [(i["place"]["code"], i["rank"], i["of"], i["current"]) for i in ranking["items"]]
    # lower AQI is better: 46 and 96 tie at 45, then 40 (88), 01 (152), 48 (210); 79 is old
    assert rows == [
        ("46", 1, 5, True),
        ("96", 1, 5, True),
        ("40", 3, 5, True),
        ("01", 4, 5, True),
        ("48", 5, 5, True),
        ("79", None, 5, False),
    ]
    own = body(get(client, keys.read, "/api/v1/indicators/vn_aqi/ranking?province=01"))
    assert [(i["place"]["code"], i["rank"], i["of"]) for i in own["items"]] == [("01", 4, 5)]
    nation = body(
        get(client, keys.read, "/api/v1/indicators/vn_aqi/values?level=nation&province=01")
    )
    assert nation["items"] == []  # no nation-level place lies in a province
    tasks = body(get(client, keys.read, "/api/v1/indicators/task_completion_rate/ranking"))
    assert [(i["place"]["code"], i["rank"]) for i in tasks["items"]] == [
        ("96", 1),
        ("40", 2),
        ("01", 3),
    ]  # higher is better


def test_series_buckets_one_place(client: FlaskClient, keys: Keys, api_settings: Settings) -> None:
    end = seed(api_settings)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end // 10**9 - 3 * 3600))
    stop = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end // 10**9 + 1))
    response = get(
        client,
        keys.read,
        f"/api/v1/indicators/vn_aqi/series?place=01&start={start}&end={stop}&interval=1h",
    )
    assert response.status_code == 200, response.data
    series = body(response)
    assert [p["value"] for p in series["points"]] == [101, 120, 152]
    daily = body(
        get(
            client,
            keys.read,
            f"/api/v1/indicators/vn_aqi/series?place=01&start={start}&end={stop}"
            "&interval=1d&agg=max",
        )
    )
    assert max(p["value"] for p in daily["points"]) == 152


def test_csv_for_series_and_ranking(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    seed(api_settings)
    by_param = get(client, keys.read, "/api/v1/indicators/vn_aqi/ranking?format=csv")
    by_accept = get(client, keys.read, "/api/v1/indicators/vn_aqi/ranking", Accept="text/csv")
    for response in (by_param, by_accept):
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.data.decode())))
        assert [(r["place.code"], r["rank"]) for r in rows][:2] == [("46", "1"), ("96", "1")]
        assert rows[-1]["rank"] == ""  # the stale place, unranked
    series = get(client, keys.read, "/api/v1/indicators/vn_aqi/series?place=01&format=csv")
    lines = series.data.decode().splitlines()
    assert lines[0] == "time,value"
    assert lines[-1].split(",")[1] in ("152", "152.0")


def test_csv_for_values_and_the_scorecard(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    seed(api_settings)
    values = get(client, keys.read, "/api/v1/indicators/vn_aqi/values?level=province&format=csv")
    assert values.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(values.data.decode())))
    assert [(r["place.code"], r["band.key"]) for r in rows][:2] == [
        ("01", "bad"),
        ("40", "moderate"),
    ]
    for asked in ({"url": "/api/v1/provinces/01/scorecard?format=csv"}, {"Accept": "text/csv"}):
        url = asked.pop("url", "/api/v1/provinces/01/scorecard")
        card = get(client, keys.read, url, **asked)
        assert card.status_code == 200, card.data
        assert card.mimetype == "text/csv"
        assert 'filename="scorecard-01.csv"' in card.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(card.data.decode())))
        by_key = {r["indicator"]: r for r in rows}
        assert len(by_key) == len(get_catalog().indicators)  # every indicator
        aqi = by_key["vn_aqi"]
        assert (float(aqi["value"]), aqi["band.key"], aqi["rank"], aqi["of"]) == (
            152,
            "bad",
            "4",
            "5",
        )
        assert (float(aqi["thresholds.warning"]), float(aqi["thresholds.critical"])) == (101, 201)
        tasks = by_key["task_completion_rate"]
        assert (float(tasks["value"]), float(tasks["target"])) == (40, 100)
        assert tasks["meets_target"] == "false"
        assert by_key["traffic_volume"]["value"] == ""  # nothing seeded: an empty cell


def test_etag_gives_304_until_the_data_changes(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    end = seed(api_settings)
    url = "/api/v1/indicators/vn_aqi/values?level=province"
    first = get(client, keys.read, url)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"].startswith("private, max-age=")
    again = get(client, keys.read, url, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    with Store(api_settings) as store:
        store.write([_value("vn_aqi", "AQI", Level.PROVINCE, end, 99, province="46")], rp="derived")
    changed = get(client, keys.read, url, **{"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_server_cache_answers_identical_queries_within_its_window(
    api_settings: Settings, keys: Keys
) -> None:
    end = seed(api_settings)
    app = create_app(
        {"TESTING": True}, settings=dataclasses.replace(api_settings, api_cache_seconds=60)
    )
    client = app.test_client()
    url = "/api/v1/indicators/vn_aqi/values?level=province"
    first = get(client, keys.read, url)
    assert first.headers["X-Cache"] == "miss"
    with Store(api_settings) as store:
        store.write([_value("vn_aqi", "AQI", Level.PROVINCE, end, 99, province="46")], rp="derived")
    second = get(client, keys.read, url)
    assert second.headers["X-Cache"] == "hit"
    assert second.data == first.data  # answered from memory, InfluxDB not asked again
    scoped = get(client, keys.hanoi, url)  # another scope never shares a cached answer
    assert scoped.headers["X-Cache"] == "miss"
    assert [i["place"]["code"] for i in body(scoped)["items"]] == ["01"]


def test_a_province_key_sees_only_its_provinces(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    seed(api_settings)
    values = body(get(client, keys.hanoi, "/api/v1/indicators/vn_aqi/values?level=province"))
    assert [i["place"]["code"] for i in values["items"]] == ["01"]
    ranking = body(get(client, keys.hanoi, "/api/v1/indicators/vn_aqi/ranking"))
    assert [(i["place"]["code"], i["rank"], i["of"]) for i in ranking["items"]] == [("01", 4, 5)]
    provinces = body(get(client, keys.hue_camau, "/api/v1/places/provinces"))
    assert [p["code"] for p in provinces["items"]] == ["46", "96"]
    # another province's ward answers exactly like a ward that does not exist
    other = get(client, keys.hanoi, "/api/v1/places/wards/19768")
    missing = get(client, keys.hanoi, "/api/v1/places/wards/99999")
    assert other.status_code == missing.status_code == 404
    assert other.mimetype == PROBLEM
    assert body(other)["detail"].replace("19768", "X") == body(missing)["detail"].replace(
        "99999", "X"
    )
    for url in (
        "/api/v1/indicators/vn_aqi/series?place=19768",
        "/api/v1/provinces/46/scorecard",
        "/api/v1/indicators/vn_aqi/values?level=ward&province=46",
        "/api/v1/places/provinces/46/wards",
    ):
        assert get(client, keys.hanoi, url).status_code == 404, url
        assert get(client, keys.hue_camau, url).status_code == 200, url
    search = body(get(client, keys.hanoi, "/api/v1/places/search?q=phu xuan"))
    assert all(item["province"] == "01" for item in search["items"])


def test_scorecard_lists_every_indicator_with_target_and_rank(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    seed(api_settings)
    card = body(get(client, keys.read, "/api/v1/provinces/01/scorecard"))
    assert card["province"]["code"] == "01"
    items = {item["indicator"]: item for item in card["items"]}
    assert len(items) == len(get_catalog().indicators)  # every indicator
    assert (items["vn_aqi"]["value"], items["vn_aqi"]["rank"], items["vn_aqi"]["of"]) == (152, 4, 5)
    tasks = items["task_completion_rate"]
    assert (tasks["value"], tasks["target"], tasks["meets_target"]) == (40.0, 100, False)
    assert (tasks["rank"], tasks["of"], tasks["band"]["key"]) == (3, 3, "low")
    assert items["traffic_volume"]["value"] is None  # nothing seeded: shown as missing


def test_catalog_and_places(client: FlaskClient, keys: Keys) -> None:
    catalog = body(get(client, keys.read, "/api/v1/indicators"))
    assert len(catalog["items"]) == len(get_catalog().indicators)
    aqi = body(get(client, keys.read, "/api/v1/indicators/vn_aqi"))
    assert [b["low"] for b in aqi["bands"]] == [0, 51, 101, 151, 201, 301]
    assert "1459" in aqi["reference"]
    wards = body(get(client, keys.read, "/api/v1/places/provinces/40/wards?page_size=500"))
    assert wards["total"] == 130  # Nghệ An's communes and wards (INDICATORS.md §7)
    found = body(get(client, keys.read, "/api/v1/places/search?q=ha noi"))
    assert found["items"][0]["code"] == "01"
    hue = body(get(client, keys.read, "/api/v1/places/search?q=Huế"))
    assert hue["items"][0]["code"] == "46"
    assert body(get(client, keys.read, "/api/v1/places/search?q=hue"))["items"][0]["code"] == "46"
