"""Errors as problem+json, keys and rate limits, feeds, dead letters, pushes and health."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ingest.deadletter import DeadLetter
from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.settings import Settings
from ioc.store import Point, Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

PROBLEM = "application/problem+json"


def body(response: Any) -> Any:
    return orjson.loads(response.data)


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM
    document = body(response)
    assert document["status"] == status
    assert document["title"] and document["detail"]
    assert response.headers["Cache-Control"] == "no-store"
    return dict(document)


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/indicators/pm99", 404, ["'pm99'", "vn_aqi"]),
        ("/api/v1/indicators/vn_aqi/values?level=district", 400, ["'level'", "'district'"]),
        ("/api/v1/indicators/vn_aqi/values?levl=ward", 400, ["'levl'", "Unknown field"]),
        ("/api/v1/indicators/vn_aqi/values?page_size=501", 400, ["'page_size'", "'501'"]),
        ("/api/v1/indicators/vn_aqi/series", 400, ["'place'", "required"]),
        ("/api/v1/indicators/vn_aqi/series?place=01&interval=1s", 400, ["'interval'", "1m"]),
        ("/api/v1/indicators/vn_aqi/series?place=01&interval=fast", 400, ["'interval'", "'fast'"]),
        (
            "/api/v1/indicators/vn_aqi/series?place=01&interval=1m&start=2025-01-01T00:00:00Z",
            400,
            ["'start'", "400"],
        ),
        (
            "/api/v1/indicators/vn_aqi/series?place=01&interval=1m&start=2026-01-01T00:00:00Z"
            "&end=2026-01-30T00:00:00Z",
            400,
            ["'interval'", "5000"],
        ),
        (
            "/api/v1/indicators/vn_aqi/series?place=01&start=2026-01-02T00:00:00Z"
            "&end=2026-01-01T00:00:00Z",
            400,
            ["'start'", "before end"],
        ),
        ("/api/v1/indicators/vn_aqi/series?place=01&start=yesterday", 400, ["'start'"]),
        ("/api/v1/indicators/vn_aqi/series?place=77", 404, ["'77'"]),
        ("/api/v1/indicators/vn_aqi/series?place=0007x", 404, ["'0007x'"]),
        ("/api/v1/places/search?q=", 400, ["'q'"]),
        ("/api/v1/places/wards/01", 404, ["'01'"]),
        ("/api/v1/provinces/00070/scorecard", 404, ["'00070'"]),
        ("/api/v1/no/such/route", 404, ["not found"]),
        ("/api/v1/dead-letters?since=90d", 400, ["'since'", "30d"]),
    ],
)
def test_every_error_is_a_problem_naming_the_parameter_and_value(
    client: FlaskClient, keys: Keys, url: str, status: int, words: list[str]
) -> None:
    document = problem(client.get(url, headers={"X-API-Key": keys.operator}), status)
    for word in words:
        assert word.lower() in document["detail"].lower(), document


def test_keys_are_required_and_checked(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    url = "/api/v1/indicators"
    missing = problem(client.get(url), 401)
    assert "X-API-Key" in missing["detail"]
    wrong = keys.read[:-4] + "AAAA"
    problem(client.get(url, headers={"X-API-Key": wrong}), 401)
    problem(client.get(url, headers={"X-API-Key": "not a key"}), 401)
    assert client.get(url, headers={"Authorization": f"Bearer {keys.read}"}).status_code == 200
    store = KeyStore(api_settings.api_keys_path)
    [reader] = [k for k in store.list() if k.name == "reader"]
    store.revoke(reader.key_id)
    time.sleep(1.1)  # workers re-read the key file at most once a second
    problem(client.get(url, headers={"X-API-Key": keys.read}), 401)
    # operator resources need the operator scope
    problem(client.get("/api/v1/dead-letters", headers={"X-API-Key": keys.hanoi}), 403)
    assert (
        client.get("/api/v1/dead-letters", headers={"X-API-Key": keys.operator}).status_code == 200
    )


def test_method_and_body_limits(client: FlaskClient, keys: Keys) -> None:
    problem(client.delete("/api/v1/indicators", headers={"X-API-Key": keys.read}), 405)
    big = b"[" + b"1," * 600_000 + b"1]"
    response = client.post(
        "/api/v1/feeds/01-dvc/readings",
        data=big,
        headers={"X-API-Key": keys.operator, "Content-Type": "application/json"},
    )
    problem(response, 413)


def test_rate_limit_answers_429_with_retry_after(api_settings: Settings, keys: Keys) -> None:
    app = create_app(
        {"TESTING": True}, settings=dataclasses.replace(api_settings, api_rate_limit=3)
    )
    client = app.test_client()
    answers = [client.get("/api/v1/indicators", headers={"X-API-Key": keys.read}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[2].headers["RateLimit-Remaining"] == "0"
    refused = problem(answers[3], 429)
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert refused["retry_after"] == int(answers[3].headers["Retry-After"])
    # the limit is per key: another key is not affected
    assert client.get("/api/v1/indicators", headers={"X-API-Key": keys.operator}).status_code == 200


def test_health_needs_no_key(client: FlaskClient, api_settings: Settings) -> None:
    assert body(client.get("/api/v1/health/live")) == {"status": "ok"}
    ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 200
    document = body(ready)
    assert document["status"] == "degraded"  # no collector or engine has reported yet
    assert document["influxdb"]["version"]
    with Store(api_settings) as store:
        now = time.time_ns()
        store.write(
            [
                Point(
                    "ingest",
                    {"healthy": True, "lag_ms": 12, "received": 5},
                    now,
                    {"collector": "ingest-1"},
                ),
                Point("engine", {"cycle_seconds": 1.5, "points_written": 10}, now),
            ],
            rp="ops",
        )
    document = body(client.get("/api/v1/health/ready"))
    assert document["status"] == "ok"
    assert document["collectors"][0]["name"] == "ingest-1"
    assert document["collectors"][0]["figures"]["lag_ms"] == 12
    assert document["engine"]["figures"]["points_written"] == 10
    openapi = client.get("/api/v1/openapi.json")
    assert openapi.status_code == 200
    assert "/api/v1/indicators/{key}/ranking" in body(openapi)["paths"]


def test_health_ready_is_503_when_influxdb_does_not_answer(
    api_settings: Settings, keys: Keys
) -> None:
    down = dataclasses.replace(api_settings, influx_url="http://127.0.0.1:9", influx_timeout=1.0)
    client = create_app({"TESTING": True}, settings=down).test_client()
    response = client.get("/api/v1/health/ready")
    problem(response, 503)
    assert response.headers["Retry-After"] == "5"
    values = client.get("/api/v1/indicators/vn_aqi/values", headers={"X-API-Key": keys.read})
    problem(values, 503)  # a data request too: no stack trace, a problem with Retry-After


def test_feeds_show_live_stale_and_never_connected_sources(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    now = time.time_ns()
    minute = 60 * 10**9
    with Store(api_settings) as store:
        store.write(
            [
                Point(
                    "service",
                    {"dossiers_received": 5, "received_ms": now // 10**6},
                    now - minute,
                    {"source": "01-dvc", "province": "01"},
                ),
                Point(
                    "air",
                    {"pm25": 30.0, "received_ms": (now - 60 * minute) // 10**6},
                    now - 60 * minute,
                    {"source": "01-air-hoan-kiem", "province": "01", "ward": "00070"},
                ),
            ]
        )
    feeds = body(
        client.get("/api/v1/feeds?province=01&page_size=500", headers={"X-API-Key": keys.read})
    )
    by_id = {item["source"]: item for item in feeds["items"]}
    assert by_id["01-dvc"]["state"] == "live"
    assert by_id["01-dvc"]["age_s"] == pytest.approx(60, abs=5)
    stale = by_id["01-air-hoan-kiem"]
    assert stale["state"] == "stale"  # every 5 min promised, last record an hour ago
    assert stale["since"] is not None
    never = [i for i in feeds["items"] if i["state"] == "never_reported"]
    assert {i["department"] for i in never} >= {"Sở Y tế", "Sở Công Thương", "Sở Tư pháp"}
    assert feeds["counts"]["live"] == 1
    assert sum(feeds["counts"].values()) == feeds["total"]
    only_stale = body(
        client.get("/api/v1/feeds?province=01&state=stale", headers={"X-API-Key": keys.read})
    )
    assert "01-dvc" not in {i["source"] for i in only_stale["items"]}
    scoped = body(client.get("/api/v1/feeds", headers={"X-API-Key": keys.hanoi}))
    assert {i["province"] for i in scoped["items"]} == {"01"}


def test_dead_letters_for_operators(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    now = time.time_ns()
    letters = [
        DeadLetter.of("ioc/v1/01/x/air", b'{"pm25": "high"}', now, "wrong_type", "pm25 'high'"),
        DeadLetter.of("ioc/v1/01/y/air", b"\xff\xfe", now, "not_utf8", "payload is not UTF-8"),
    ]
    with Store(api_settings) as store:
        store.write([letter.to_point() for letter in letters], rp="ops")
    everything = body(client.get("/api/v1/dead-letters", headers={"X-API-Key": keys.operator}))
    assert {item["reason"] for item in everything["items"]} == {"wrong_type", "not_utf8"}
    one = body(
        client.get("/api/v1/dead-letters?reason=not_utf8", headers={"X-API-Key": keys.operator})
    )
    assert [item["topic"] for item in one["items"]] == ["ioc/v1/01/y/air"]
    assert one["items"][0]["excerpt"] == "\\xff\\xfe"


def test_pushed_readings_enter_the_collectors_pipeline(
    client: FlaskClient, keys: Keys, api_settings: Settings
) -> None:
    feed_key = KeyStore(api_settings.api_keys_path).create(
        "dvc system", "feed", sources=["01-dvc"]
    )[1]
    now_ms = time.time_ns() // 10**6
    document = {
        "source": "01-dvc",
        "time_ms": now_ms,
        "metrics": {"dossiers_received": 120, "dossiers_on_time": 110, "dossiers_online": -3},
    }
    response = client.post(
        "/api/v1/feeds/01-dvc/readings", json=document, headers={"X-API-Key": feed_key}
    )
    assert response.status_code == 200, response.data
    result = body(response)
    assert result["readings"] == 3
    assert result["points_written"] == 1
    assert [r["reason"] for r in result["rejected"]] == ["out_of_range"]
    with Store(api_settings) as store:
        [series] = store.query('SELECT * FROM "raw"."service" WHERE "source" = \'01-dvc\'')
        row = series.rows()[0]
        assert (row["dossiers_received"], row["dossiers_on_time"]) == (120, 110)
        assert row["province"] == "01"  # from the registry, not the payload
        [letters] = store.query('SELECT * FROM "ops"."dead_letter"')
        assert letters.rows()[0]["reason"] == "out_of_range"
        assert letters.rows()[0]["topic"] == "ioc/v1/01/01-dvc/service"
    # the feed key may push for its own source only, and reads nothing
    other = client.post(
        "/api/v1/feeds/46-dvc/readings",
        json={**document, "source": "46-dvc"},
        headers={"X-API-Key": feed_key},
    )
    problem(other, 404)
    problem(client.get("/api/v1/indicators", headers={"X-API-Key": feed_key}), 403)
    # a read key may not push at all
    problem(
        client.post(
            "/api/v1/feeds/01-dvc/readings", json=document, headers={"X-API-Key": keys.read}
        ),
        404,
    )
    broken = client.post(
        "/api/v1/feeds/01-dvc/readings",
        data=b'{"source": "01-dvc", "time',
        headers={"X-API-Key": feed_key, "Content-Type": "application/json"},
    )
    assert problem(broken, 400)["rejected"][0]["reason"] in (
        "truncated_json",
        "invalid_json",
    )
    wrong_source = client.post(
        "/api/v1/feeds/01-dvc/readings",
        json={**document, "source": "46-dvc"},
        headers={"X-API-Key": feed_key},
    )
    assert problem(wrong_source, 400)["rejected"][0]["reason"] == "topic_mismatch"
    all_bad = client.post(
        "/api/v1/feeds/01-dvc/readings",
        json={**document, "metrics": {"dossiers_online": -3}},
        headers={"X-API-Key": feed_key},
    )
    assert [r["reason"] for r in problem(all_bad, 422)["rejected"]] == ["out_of_range"]
    text = client.post(
        "/api/v1/feeds/01-dvc/readings",
        data=b"x=1",
        headers={"X-API-Key": feed_key, "Content-Type": "text/plain"},
    )
    problem(text, 415)
