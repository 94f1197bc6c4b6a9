"""Issue 17 items 3 and 4 end to end: readings in the real InfluxDB, one engine cycle, the API.

Nghệ An (40) reports a data reuse rate of 74% (INDICATORS.md §7). Here its provincial portal
fills 70 of 90 dossiers an hour from shared data and one commune's one-stop shop 4 of 10: the
province reads (70 + 4) / (90 + 10) = 74.00 %, the ratio of the sums (a mean of the two ratios
would give 58.89 %).

Its four shared systems are checked by ``ioc probe`` at :10, :25, :40 and :55 of every hour: the
data-sharing platform up at every check, the document system down once in the middle, the
public-service portal down at the last two checks, the IOC up at every check. So the hour reads
"3 of 4 systems up" (the portal was down at its last check) and an uptime of 100, 75, 50 and
100 % per system, (4 + 3 + 2 + 4) / 16 = 81.25 % for the province.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from ingest.deadletter import DeadLetter
from ioc.api import create_app
from ioc.catalog import INDICATORS_FILE, load_catalog
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.store import Point, Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9
MINUTE = 60 * 10**9

REGISTRY = """
[[source]]
id = "40-dvc"
kind = "service"
province = "40"
name = "Nghệ An public-service portal"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"

[[source]]
id = "40-dvc-16681"
kind = "service"
province = "40"
ward = "16681"
name = "one-stop shop of Thành Vinh"
expected_interval = "1h"
""" + "".join(
    f"""
[[source]]
id = "40-probe-{name}"
kind = "probe"
province = "40"
name = "{title}"
department = "Sở Khoa học và Công nghệ"
expected_interval = "15m"
url = "http://127.0.0.1:9/{name}"
"""
    for name, title in (
        ("lgsp", "data-sharing platform"),
        ("edoc", "document system"),
        ("dvc", "public-service portal"),
        ("ioc", "IOC"),
    )
)

Readings = dict[str, tuple[str, list[tuple[int, dict[str, Any]]]]]

READINGS: Readings = {
    "40-dvc": (
        "service",
        [(10, {"dossiers_received": 90.0, "dossiers_on_time": 88.0, "dossiers_reused": 70.0})],
    ),
    "40-dvc-16681": (
        "service",
        [(10, {"dossiers_received": 10.0, "dossiers_on_time": 10.0, "dossiers_reused": 4.0})],
    ),
}

CHECKS = (10, 25, 40, 55)
PROBES: Readings = {
    f"40-probe-{name}": ("probe", [(m, {"probe_up": u}) for m, u in zip(CHECKS, ups, strict=True)])
    for name, ups in (
        ("lgsp", (True, True, True, True)),
        ("edoc", (True, False, True, True)),
        ("dvc", (True, True, False, False)),
        ("ioc", (True, True, True, True)),
    )
}


@pytest.fixture
def figures_settings(api_settings: Settings, tmp_path: Path) -> Settings:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return dataclasses.replace(api_settings, registry_file=registry, engine_lookback="2h")


def _seed_and_run(settings: Settings, readings: Readings, hours: int = 2) -> int:
    """``hours`` hours of readings, one engine cycle; the end of the newest complete hour."""
    catalog = load_catalog(INDICATORS_FILE, settings.registry_file)
    hour0 = time.time_ns() // HOUR * HOUR
    points = []
    for k in range(1, hours + 1):
        for source_id, (measurement, timed) in readings.items():
            source = catalog.registry.source(source_id)
            tags = {"source": source_id, "province": source.province}
            if source.ward:
                tags["ward"] = source.ward
            for minute, fields in timed:
                at = hour0 - k * HOUR + minute * MINUTE
                stamped = {**fields, "received_ms": at // 10**6}
                points.append(Point(measurement, stamped, at, tags))
    with Store(settings) as store:
        store.write(points)
        Engine(settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
    return hour0


def _items(app: Flask, key: str, url: str) -> list[dict[str, Any]]:
    response = app.test_client().get(url, headers={"X-API-Key": key})
    assert response.status_code == 200, response.data
    items: list[dict[str, Any]] = orjson.loads(response.data)["items"]
    return items


def test_nghe_an_reads_a_data_reuse_rate_of_74_percent(
    figures_settings: Settings, keys: Keys
) -> None:
    _seed_and_run(figures_settings, READINGS)
    app = create_app({"TESTING": True}, settings=figures_settings)
    url = "/api/v1/indicators/data_reuse_rate/values?level=province&province=40"
    (item,) = _items(app, keys.read, url)
    assert (item["value"], item["unit"]) == (74.0, "%")
    assert f"{item['value']:.2f} %" == "74.00 %"
    assert item["band"]["key"] == "below_target"  # 766 4.3 gives full points from 80 %
    assert item["coverage_detail"]["text"] == (
        "1 of 1 commune or ward; 1 of 1 department (2 of 2 sources)"
    )
    (ward,) = _items(app, keys.read, url.replace("level=province", "level=ward"))
    assert (ward["place"]["code"], ward["value"]) == ("16681", 40.0)
    described = app.test_client().get(
        "/api/v1/indicators/data_reuse_rate", headers={"X-API-Key": keys.read}
    )
    assert described.status_code == 200
    body = orjson.loads(described.data)
    assert body["target"] == 80
    assert "4.3" in body["reference"]


def test_nghe_an_reads_3_of_4_shared_systems_up(figures_settings: Settings, keys: Keys) -> None:
    _seed_and_run(figures_settings, PROBES)
    app = create_app({"TESTING": True}, settings=figures_settings)
    url = "/api/v1/indicators/systems_up/values?level=province&province=40"
    (item,) = _items(app, keys.read, url)
    assert (item["value"], item["unit"]) == (3.0, "systems")
    sources = item["coverage_detail"]["sources"]
    assert f"{item['value']:.0f} of {sources['expected']} systems up" == "3 of 4 systems up"
    assert sources == {"reporting": 3, "expected": 4}
    assert item["coverage_detail"]["text"] == "3 of 4 systems up (1 of 1 department)"
    assert item["coverage_detail"]["text_vi"] == "3/4 hệ thống hoạt động (1/1 sở, ban, ngành)"
    (nation,) = _items(app, keys.read, url.replace("level=province&province=40", "level=nation"))
    assert nation["value"] == 3.0
    assert nation["coverage_detail"]["text"].startswith("3 of 4 systems up (1 of 1 province;")

    url = "/api/v1/indicators/system_uptime/values?level=province&province=40"
    (uptime,) = _items(app, keys.read, url)
    assert (uptime["value"], uptime["unit"]) == (81.25, "%")
    with Store(figures_settings) as store:
        series = store.query(
            'SELECT "value", "numerator", "denominator" FROM "derived"."indicator" '
            "WHERE \"indicator\" = 'system_uptime' AND \"level\" = 'source' "
            'GROUP BY "source" ORDER BY time DESC LIMIT 1',
            {},
        )
        per_system = {s.tags["source"]: s.values[0][1:] for s in series}
        up = store.query(
            'SELECT "value", "numerator", "denominator" FROM "derived"."indicator" '
            "WHERE \"indicator\" = 'systems_up' AND \"level\" = 'province' "
            "ORDER BY time DESC LIMIT 1",
            {},
        )
        assert [s.values[0][1:] for s in up] == [(3.0, 3.0, 4.0)]
    assert per_system == {
        "40-probe-lgsp": (100.0, 4.0, 4.0),
        "40-probe-edoc": (75.0, 3.0, 4.0),
        "40-probe-dvc": (50.0, 2.0, 4.0),
        "40-probe-ioc": (100.0, 4.0, 4.0),
    }


def test_feed_quality_lists_the_worst_feeds_first(figures_settings: Settings, keys: Keys) -> None:
    """Item 5 over the last 4 h, of which the last 3 hours had readings (on time: 3 of 4
    hourly slots, 75.00 %): both portals send 3 of the 4 dossier counts the catalog's
    indicators read (no ``dossiers_online``): complete 9 of 12 = 75.00 %. The commune's shop
    also had 4 readings dead-lettered (3 out of range, 1 of the wrong type): accepted 9 of 13 =
    69.23 %, in range 10 of 13 = 76.92 %. The four probes sent nothing: score 0, first."""
    hour0 = _seed_and_run(figures_settings, READINGS, hours=3)
    letters = [
        DeadLetter(
            time_ns=hour0 - HOUR + (20 + i) * MINUTE,
            topic="ioc/v1/40/40-dvc-16681/service",
            reason=reason,
            message=f"dossiers_received: {reason}",
            excerpt="{}",
            source="40-dvc-16681",
            province="40",
        )
        for i, reason in enumerate(("out_of_range", "out_of_range", "out_of_range", "wrong_type"))
    ]
    with Store(figures_settings) as store:
        store.write([letter.to_point() for letter in letters], rp="ops")
    app = create_app({"TESTING": True}, settings=figures_settings)
    url = "/api/v1/feeds/quality?province=40&since=4h"
    response = app.test_client().get(url, headers={"X-API-Key": keys.operator})
    assert response.status_code == 200, response.data
    body = orjson.loads(response.data)
    order = [i["source"] for i in body["items"]]
    assert order == [
        "40-probe-dvc",
        "40-probe-edoc",
        "40-probe-ioc",
        "40-probe-lgsp",
        "40-dvc-16681",
        "40-dvc",
    ]
    silent = body["items"][0]
    assert (silent["score"], silent["on_time"], silent["accepted"]) == (0.0, 0.0, None)
    shop, portal = body["items"][4], body["items"][5]
    figures = ("score", "accepted", "complete", "in_range", "on_time")
    assert [shop[k] for k in figures] == [69.23, 69.23, 75.0, 76.92, 75.0]
    assert (shop["readings_received"], shop["rejected"], shop["out_of_range"]) == (13, 4, 3)
    assert [portal[k] for k in figures] == [75.0, 100.0, 75.0, 100.0, 75.0]
    assert (portal["slots_filled"], portal["slots_expected"]) == (3, 4)
    assert portal["expected_fields"] == [
        "dossiers_on_time",
        "dossiers_received",
        "dossiers_online",
        "dossiers_reused",
    ]


def test_feed_quality_counts_slots_from_the_registration_on(
    api_settings: Settings, keys: Keys, tmp_path: Path
) -> None:
    """Item 5's regression: a feed registered yesterday that has sent a record every hour since
    owes no record for the day before. Over ``since=3d`` it is on time in 100 % of the hourly
    slots from yesterday 00:00 UTC on (24 + the hours of today), not in a third of 72."""
    now = time.time_ns()
    midnight = now // (24 * HOUR) * (24 * HOUR)
    yesterday = datetime.fromtimestamp(midnight / 1e9 - 86400, tz=UTC).date()
    registry = tmp_path / "registered.toml"
    registry.write_text(
        REGISTRY
        + f"""
[[source]]
id = "40-dvc-new"
kind = "service"
province = "40"
name = "a portal registered yesterday"
department = "Văn phòng UBND tỉnh"
expected_interval = "1h"
registered = {yesterday.isoformat()}
""",
        encoding="utf-8",
    )
    settings = dataclasses.replace(api_settings, registry_file=registry)
    first = midnight - 24 * HOUR
    fields = {"dossiers_received": 5.0, "dossiers_on_time": 5.0, "dossiers_reused": 2.0}
    fields["dossiers_online"] = 1.0
    points = [
        Point("service", {**fields, "received_ms": at // 10**6}, at, tags)
        for at in range(first + MINUTE, now, HOUR)  # every slot from yesterday on, this one too
        for tags in ({"source": "40-dvc-new", "province": "40"},)
    ]
    with Store(settings) as store:
        store.write(points)
    app = create_app({"TESTING": True}, settings=settings)
    url = "/api/v1/feeds/quality?province=40&since=3d"
    response = app.test_client().get(url, headers={"X-API-Key": keys.operator})
    assert response.status_code == 200, response.data
    (item,) = [i for i in orjson.loads(response.data)["items"] if i["source"] == "40-dvc-new"]
    owed = (now // HOUR * HOUR - first) // HOUR
    assert (item["slots_filled"], item["slots_expected"]) == (owed, owed)
    assert (item["on_time"], item["score"]) == (100.0, 100.0)


def test_the_data_reuse_rate_of_a_day_and_a_month_is_a_ratio_of_the_sums(
    figures_settings: Settings, keys: Keys
) -> None:
    """Item 3's day and month view. Yesterday (Vietnam time) the provincial portal received 90
    dossiers at 09:xx (70 filled from shared data), 10 at 14:xx (1) and 4 at 23:xx (4); the last
    hour's value is stamped at today's 00:00 and belongs to yesterday. The hourly rates are
    77.78, 10 and 100 % (mean 62.59 %); the day's rate is 75 / 104 = 72.12 %. A value stamped at
    yesterday's 00:00 (the day before's last hour: 50 received, none reused) is not yesterday's.
    """
    now = time.time_ns()
    vietnam = 7 * HOUR
    today = (now + vietnam) // (24 * HOUR) * (24 * HOUR) - vietnam  # 00:00 Vietnam, in UTC ns
    yesterday = today - 24 * HOUR
    readings = [
        (yesterday - 30 * MINUTE, 50.0, 0.0),
        (yesterday + 9 * HOUR + 10 * MINUTE, 90.0, 70.0),
        (yesterday + 14 * HOUR + 10 * MINUTE, 10.0, 1.0),
        (yesterday + 23 * HOUR + 30 * MINUTE, 4.0, 4.0),
    ]
    points = [
        Point(
            "service",
            {"dossiers_received": received, "dossiers_on_time": received,
             "dossiers_reused": reused, "received_ms": at // 10**6},
            at,
            {"source": "40-dvc", "province": "40"},
        )
        for at, received, reused in readings
    ]  # fmt: skip
    catalog = load_catalog(INDICATORS_FILE, figures_settings.registry_file)
    with Store(figures_settings) as store:
        store.write(points)
        Engine(figures_settings, catalog, store).compute(yesterday - 2 * HOUR, today + HOUR)
    app = create_app({"TESTING": True}, settings=figures_settings)
    client = app.test_client()
    day = datetime.fromtimestamp((yesterday + vietnam) / 1e9, tz=UTC).date()
    url = f"/api/v1/indicators/data_reuse_rate/calendar?place=40&period=day&date={day}"
    response = client.get(url, headers={"X-API-Key": keys.read})
    assert response.status_code == 200, response.data
    body = orjson.loads(response.data)
    assert (body["value"], body["numerator"], body["denominator"]) == (72.12, 75.0, 104.0)
    assert (body["values"], body["values_expected"]) == (3, 24)
    assert body["period"]["date"] == day.isoformat()
    assert body["period"]["complete"] is True
    hourly = client.get(
        "/api/v1/indicators/data_reuse_rate/series?place=40&interval=1h&agg=mean"
        f"&start={_rfc3339(yesterday + 10**9)}&end={_rfc3339(today + 10**9)}",
        headers={"X-API-Key": keys.read},
    )
    rates = [p["value"] for p in orjson.loads(hourly.data)["points"]]
    assert sorted(rates) == [10.0, 77.78, 100.0]  # their mean, 62.59, is not the day's rate

    month = client.get(
        f"/api/v1/indicators/data_reuse_rate/calendar?place=40&period=month&date={day:%Y-%m}",
        headers={"X-API-Key": keys.read},
    )
    assert month.status_code == 200, month.data
    whole = orjson.loads(month.data)
    if day.day == 1:  # the day before yesterday is in another month
        assert (whole["numerator"], whole["denominator"]) == (75.0, 104.0)
    else:
        assert (whole["numerator"], whole["denominator"]) == (75.0, 154.0)
        assert whole["value"] == 48.7  # 75 / 154
    assert whole["period"]["kind"] == "month"

    same = client.get(
        f"/api/v1/indicators/data_reuse_rate/calendar?place=40&period=month&date={day}",
        headers={"X-API-Key": keys.read},
    )  # a month is also named by any of its days
    assert orjson.loads(same.data)["period"] == whole["period"]

    for query, status in (
        ("period=week", 400),
        ("period=day&date=2026-13-01", 400),
        ("period=day&date=2999-01-01", 400),  # beyond what InfluxDB's times hold
        ("period=day&date=2026-02-30", 404),  # no such day
        ("period=day&date=2026-11", 404),  # a month, not a day
        ("period=month&date=2199-12", 404),  # has not begun
    ):
        refused = client.get(
            f"/api/v1/indicators/data_reuse_rate/calendar?place=40&{query}",
            headers={"X-API-Key": keys.read},
        )
        assert refused.status_code == status, query
        assert orjson.loads(refused.data)["parameter"] == query.split("&")[-1].split("=")[0]
    not_a_ratio = client.get(
        "/api/v1/indicators/systems_up/calendar?place=40", headers={"X-API-Key": keys.read}
    )
    assert not_a_ratio.status_code == 404
    assert "data_reuse_rate" in orjson.loads(not_a_ratio.data)["detail"]
    other = client.get(
        "/api/v1/indicators/data_reuse_rate/calendar?place=40", headers={"X-API-Key": keys.hanoi}
    )
    assert other.status_code == 404  # another province, as everywhere


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // 10**9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
