"""``GET /api/v1/health/feeds``: what the broker refused from each device, for operators.

The refusals are the collector's own points (ingest/brokerlog.py reading Mosquitto 2.0.11's log
lines), written into the test's InfluxDB; the end-to-end path through the real broker is in
tests/ingest/test_broker_refusals.py.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ingest.brokerlog import BrokerLog
from ioc.api.keys import KeyStore
from ioc.catalog import get_catalog
from ioc.settings import Settings
from ioc.store import Point, Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

HOAN_KIEM = "01-air-hoan-kiem"  # demo registry, province 01
SONG_DOC = "96-water-song-doc"  # province 96


def refusals(lines: list[tuple[int, str]]) -> list[Point]:
    """The points a collector writes for these (seconds ago, log text) lines."""
    reader = BrokerLog(get_catalog().registry)
    now = time.time()
    points = []
    for ago, text in lines:
        refusal = reader.read(f"{int(now - ago)}: {text}".encode(), time.time_ns())
        if refusal is not None:
            points.append(refusal.to_point())
    return points


@pytest.fixture
def seeded(api_settings: Settings) -> None:
    points = refusals(
        [
            (3000, f"New client connected from 10.0.0.5:1 as hk-1 (p5, c1, k60, u'{HOAN_KIEM}')."),
            (3000, "Client hk-1 disconnected due to oversize packet."),
            (2000, "Client hk-1 disconnected due to oversize packet."),
            (1000, "Client hk-1 disconnected due to malformed packet."),
            (900, f"Client {SONG_DOC} disconnected due to protocol error."),  # by client id
            (800, "New client connected from 10.0.0.9:1 as who (p2, c1, k60, u'nobody')."),
            (800, "Client who disconnected due to oversize packet."),
            (2 * 86400, "Client hk-1 disconnected due to oversize packet."),  # 2 days ago
        ]
    )
    with Store(api_settings) as store:
        store.write(points, rp="ops")


def get(client: FlaskClient, key: str | None, query: str = "") -> tuple[int, Any]:
    headers = {} if key is None else {"X-API-Key": key}
    answer = client.get(f"/api/v1/health/feeds{query}", headers=headers)
    return answer.status_code, orjson.loads(answer.data)


def test_operators_see_what_the_broker_refused_from_each_device(
    client: FlaskClient, keys: Keys, seeded: None
) -> None:
    status, body = get(client, keys.operator)
    assert status == 200, body
    assert (body["window"], body["refused"], body["truncated"]) == ("24h", 5, False)
    hoan_kiem, song_doc = body["sources"]  # most refusals first
    assert hoan_kiem["source"] == HOAN_KIEM
    assert (hoan_kiem["province"], hoan_kiem["ward"], hoan_kiem["kind"]) == ("01", "00070", "air")
    assert hoan_kiem["refused"] == 3
    assert hoan_kiem["causes"] == {"malformed_packet": 1, "packet_too_large": 2}
    assert hoan_kiem["clients"] == ["hk-1"]
    assert hoan_kiem["last_cause"] == "malformed_packet"
    assert hoan_kiem["first"] < hoan_kiem["last"]
    assert hoan_kiem["summary"].startswith(
        f"the broker refused 3 packets from {HOAN_KIEM} ({hoan_kiem['name']}) in the last 24h: "
        "2 packet_too_large (a packet above the broker's max_packet_size); 1 malformed_packet"
    )
    assert (song_doc["source"], song_doc["province"], song_doc["causes"]) == (
        SONG_DOC,
        "96",
        {"protocol_error": 1},
    )
    (stranger,) = body["unattributed"]
    assert (stranger["client_id"], stranger["username"]) == ("who", "nobody")
    assert stranger["causes"] == {"packet_too_large": 1}


def test_the_window_and_the_province_narrow_the_answer(
    client: FlaskClient, keys: Keys, seeded: None
) -> None:
    _, three_days = get(client, keys.operator, "?since=3d")
    assert [s["refused"] for s in three_days["sources"]] == [4, 1]
    _, hanoi = get(client, keys.operator, "?province=01")
    assert [s["source"] for s in hanoi["sources"]] == [HOAN_KIEM]
    assert hanoi["unattributed"] == []  # a refusal of no source has no province
    _, nothing = get(client, keys.operator, "?since=5m")
    assert (nothing["refused"], nothing["sources"], nothing["unattributed"]) == (0, [], [])


def test_feed_health_needs_an_operator_key(
    client: FlaskClient, keys: Keys, api_settings: Settings, seeded: None
) -> None:
    feed_key = KeyStore(api_settings.api_keys_path).create("dept", "feed", sources=[SONG_DOC])[1]
    status, problem = get(client, None)
    assert status == 401 and problem["title"] == "Unauthorized"
    assert get(client, "ioc_not_a_key")[0] == 401
    for key in (keys.read, keys.hanoi, feed_key):
        status, problem = get(client, key)
        assert status == 403, problem
    # liveness and readiness stay open
    assert client.get("/api/v1/health/live").status_code == 200


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("?since=31d", "since"),
        ("?since=soon", "since"),
        ("?province=1", "province"),
        ("?sinse=1h", "sinse"),
    ],
)
def test_invalid_parameters_are_named(
    client: FlaskClient, keys: Keys, query: str, parameter: str
) -> None:
    status, problem = get(client, keys.operator, query)
    assert status == 400
    assert f"'{parameter}'" in problem["detail"]


def test_the_document_says_feed_health_needs_a_key(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert paths["/api/v1/health/feeds"]["get"]["security"] == [{"ApiKey": []}]
    assert paths["/api/v1/health/live"]["get"]["security"] == []
