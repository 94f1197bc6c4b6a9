"""The API says what coverage counts (issue 17, item 6): the engine's figures for the demo
registry, computed from readings in the real InfluxDB, in the values, ranking and scorecard.

Seeded as in tests/engine/test_coverage.py: every Hà Nội and Nghệ An source of the demo registry
reports, except the three Hà Nội departments that never connected their data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.settings import Settings
from tests.api.conftest import Keys
from tests.engine.test_coverage import run_demo_cycle

pytestmark = pytest.mark.services


@pytest.fixture
def demo_client(api_settings: Settings, keys: Keys) -> FlaskClient:
    settings = dataclasses.replace(api_settings, engine_lookback="15m")
    run_demo_cycle(settings)
    app: Flask = create_app({"TESTING": True}, settings=settings)
    return app.test_client()


def _get(client: FlaskClient, key: str, url: str) -> Any:
    response = client.get(url, headers={"X-API-Key": key})
    assert response.status_code == 200, response.data
    return orjson.loads(response.data)


def _only(client: FlaskClient, key: str, url: str) -> Any:
    (item,) = _get(client, key, url)["items"]
    return item


def test_nghe_an_reads_130_of_130_communes_and_its_departments(
    demo_client: FlaskClient, keys: Keys
) -> None:
    url = "/api/v1/indicators/feed_live_share/values?level=province&province=40"
    item = _only(demo_client, keys.read, url)
    assert item["coverage_detail"] == {
        "provinces": None,
        "wards": {"reporting": 130, "expected": 130},
        "departments": {"reporting": 2, "expected": 2},
        "sources": {"reporting": 140, "expected": 140},
        "text": "130 of 130 communes and wards; 2 of 2 departments (140 of 140 sources)",
        "text_vi": "130/130 xã, phường; 2/2 sở, ban, ngành (140/140 nguồn)",
    }
    assert (item["coverage"], item["expected"], item["sources"]) == (132, 132, 140)

    data = _only(demo_client, keys.read, url.replace("feed_live_share", "data_transactions"))
    assert data["coverage_detail"]["text"] == (
        "130 of 130 communes and wards; 1 of 1 department (131 of 131 sources)"
    )

    wards = _get(
        demo_client,
        keys.read,
        "/api/v1/indicators/feed_live_share/values?level=ward&province=40&page_size=200",
    )
    assert wards["total"] == 130
    thanh_vinh = next(i for i in wards["items"] if i["place"]["code"] == "16681")
    assert thanh_vinh["coverage_detail"] == {  # its air station and its commune's data feed
        "provinces": None,
        "wards": None,
        "departments": None,
        "sources": {"reporting": 2, "expected": 2},
        "text": "2 of 2 sources",
        "text_vi": "2/2 nguồn",
    }


def test_ha_noi_names_the_departments_that_never_reported(
    demo_client: FlaskClient, keys: Keys
) -> None:
    url = "/api/v1/indicators/feed_live_share/values?level=province&province=01"
    detail = _only(demo_client, keys.hanoi, url)["coverage_detail"]
    assert detail["departments"] == {"reporting": 3, "expected": 6}
    assert detail["text"] == "4 of 4 communes and wards; 3 of 6 departments (14 of 17 sources)"

    data = _only(demo_client, keys.hanoi, url.replace("feed_live_share", "data_transactions"))
    assert data["coverage_detail"]["text"] == "1 of 4 departments (1 of 4 sources)"
    assert data["coverage_detail"]["wards"] == {"reporting": 0, "expected": 0}

    nation = _only(
        demo_client, keys.read, "/api/v1/indicators/feed_live_share/values?level=nation"
    )["coverage_detail"]
    assert nation["provinces"] == {"reporting": 2, "expected": 5}
    assert nation["text"].startswith("2 of 5 provinces; 134 of ")


def test_the_ranking_and_the_scorecard_carry_the_same_coverage(
    demo_client: FlaskClient, keys: Keys
) -> None:
    values = _get(
        demo_client, keys.read, "/api/v1/indicators/feed_live_share/values?level=province"
    )
    by_code = {item["place"]["code"]: item["coverage_detail"] for item in values["items"]}
    ranking = _get(
        demo_client, keys.read, "/api/v1/indicators/feed_live_share/ranking?level=province"
    )
    assert {i["place"]["code"]: i["coverage_detail"] for i in ranking["items"]} == by_code
    card = _get(demo_client, keys.read, "/api/v1/provinces/40/scorecard")
    (live,) = [i for i in card["items"] if i["indicator"] == "feed_live_share"]
    assert live["coverage_detail"] == by_code["40"]
    assert live["coverage_detail"]["text"].startswith("130 of 130 communes and wards; ")
