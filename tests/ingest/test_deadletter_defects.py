"""Issue 15's dead-letter defects, through the real Mosquitto into the real InfluxDB.

1. Every dead letter is stored: a burst of rejected readings leaves as many points as the
   collector counted, and ``GET /api/v1/dead-letters`` lists them all.
2. A payload that does not parse on a registered source's topic keeps that source (and its
   province), so an operator filtering the API by province finds it.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.settings import Settings
from ioc.store import Store
from tests.ingest.test_collector import SOURCE, TOPIC, Publisher, running, wait_for

pytestmark = pytest.mark.services


@dataclasses.dataclass(frozen=True)
class OperatorApi:
    """The API on the test's database, and an operator key for it."""

    client: FlaskClient
    key: str

    def dead_letters(self, query: str) -> list[dict[str, object]]:
        answer = self.client.get(f"/api/v1/dead-letters?{query}", headers={"X-API-Key": self.key})
        assert answer.status_code == 200, answer.data
        items: list[dict[str, object]] = orjson.loads(answer.data)["items"]
        return items


@pytest.fixture
def settings(own_database: Settings, tmp_path: Path) -> Settings:
    """A collector of its own (no shared group) and an API, both on the test's database."""
    return dataclasses.replace(
        own_database,
        var_dir=tmp_path / "var",
        ingest_id=f"t{uuid.uuid4().hex[:8]}",
        ingest_group=None,
        api_keys_file=tmp_path / "api" / "keys.json",
        api_cache_seconds=0.0,
        api_rate_limit=100_000,
    )


@pytest.fixture
def api(settings: Settings) -> OperatorApi:
    key = KeyStore(settings.api_keys_path).create("ops", "operator")[1]
    return OperatorApi(create_app({"TESTING": True}, settings=settings).test_client(), key)


@pytest.fixture
def publisher(services: Settings) -> Iterator[Publisher]:
    p = Publisher(services)
    yield p
    p.close()


def stored_dead_letters(store: Store, reason: str) -> int:
    """How many dead letters of ``reason`` InfluxDB holds, over every series."""
    answer = store.query(
        'SELECT count("message") FROM "ops"."dead_letter" WHERE "reason" = $reason',
        {"reason": reason},
    )
    return sum(int(row[1]) for series in answer for row in series.values)


# --- 1. dead letters overwrite each other ----------------------------------------------------


def test_a_burst_of_5000_dead_letters_is_stored_whole(
    settings: Settings, publisher: Publisher
) -> None:
    now_ms = time.time_ns() // 10**6
    metrics = {f"bogus_{i}": i for i in range(5000)}  # one message, 5,000 unknown metrics
    document = orjson.dumps({"v": 1, "source": SOURCE, "time_ms": now_ms, "metrics": metrics})
    with running(settings) as collector, Store(settings) as store:
        publisher.publish(TOPIC, document)
        # acknowledged only once its dead letters are durable in InfluxDB
        wait_for(lambda: collector.counters["acked"] == 1, what="the acknowledgement")
        assert collector.counters["dead_letters.unknown_metric"] == 5000
        assert stored_dead_letters(store, "unknown_metric") == 5000


def test_the_api_lists_every_dead_letter_the_collector_counted(
    settings: Settings, publisher: Publisher, api: OperatorApi
) -> None:
    # 1,500 rejections in one message, alternating between two reasons (750 each, under the
    # API's limit of 1,000): letters 1,000 apart in the message share a reason.
    now_ms = time.time_ns() // 10**6
    batch = [
        {"source": SOURCE, "time_ms": now_ms - i, "metrics": {f"bogus_{i}": 1, "pm25": -1}}
        for i in range(750)
    ]
    with running(settings) as collector:
        publisher.publish(TOPIC, orjson.dumps(batch))
        wait_for(lambda: collector.counters["acked"] == 1, what="the acknowledgement")
        counted = {
            reason: collector.counters[f"dead_letters.{reason}"]
            for reason in ("unknown_metric", "out_of_range")
        }
    assert counted == {"unknown_metric": 750, "out_of_range": 750}
    listed = {
        reason: api.dead_letters(f"reason={reason}&province=01&limit=1000") for reason in counted
    }
    assert {reason: len(items) for reason, items in listed.items()} == counted
    # each a letter of its own: every unknown metric is named once
    assert len({item["message"] for item in listed["unknown_metric"]}) == 750


# --- 2. parser-level dead letters keep the source their topic names -------------------------

OVERSIZE = b'{"v": 1, "metrics": {"pm25": ' + b" " * 300_000 + b"1}}"
TTS_TOPIC = "v3/hanoi@ioc/devices/hn-aqi-hoankiem/up"  # device of 01-air-hoan-kiem
CHIRPSTACK_TOPIC = "application/camau/device/70b3d57ed0051c02/event/up"  # 96-water-song-doc


@dataclasses.dataclass(frozen=True)
class Malformed:
    """A payload on a registered source's topic, and the dead letter it must become."""

    topic: str
    payload: bytes
    reason: str
    province: str = "01"
    source: str = SOURCE


MALFORMED = {
    "truncated": Malformed(
        TOPIC, b'{"v": 1, "source": "01-air-hoan-kiem", "time_ms": ', "invalid_json"
    ),
    "not utf-8": Malformed(TOPIC, b'{"source": "\xff\xfe"}', "invalid_utf8"),
    "oversize": Malformed(TOPIC, OVERSIZE, "too_large"),
    "bare number time": Malformed(
        TOPIC, b'{"source": "01-air-hoan-kiem", "time": 5}', "wrong_type"
    ),
    "senml": Malformed(f"{TOPIC}/senml", b'[{"n": "pm25", "v": 1, "vb": true}]', "multiple_values"),
    "tts truncated": Malformed(TTS_TOPIC, b"[", "invalid_json"),
    "tts another device": Malformed(
        TTS_TOPIC,
        orjson.dumps(
            {
                "end_device_ids": {"device_id": "hn-aqi-elsewhere"},
                "received_at": "2025-07-01T00:00:00Z",
                "uplink_message": {"decoded_payload": {"pm25": 1}},
            }
        ),
        "topic_mismatch",
    ),
    "chirpstack no time": Malformed(
        CHIRPSTACK_TOPIC,
        b'{"deviceInfo": {"devEui": "70b3d57ed0051c02"}}',
        "missing_field",
        province="96",
        source="96-water-song-doc",
    ),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_payload_that_does_not_parse_keeps_the_source_of_its_topic(
    settings: Settings, publisher: Publisher, api: OperatorApi, case: Malformed
) -> None:
    with running(settings) as collector:
        publisher.publish(case.topic, case.payload)
        wait_for(lambda: collector.counters["acked"] == 1, what="the acknowledgement")
        assert collector.counters[f"dead_letters.{case.reason}"] == 1
    items = api.dead_letters(f"province={case.province}")
    found = [(i["reason"], i["topic"], i["source"], i["province"]) for i in items]
    assert found == [(case.reason, case.topic, case.source, case.province)]
    other = "96" if case.province == "01" else "01"
    assert api.dead_letters(f"province={other}") == []
