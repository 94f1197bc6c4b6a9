"""The router's LoRaWAN rules: the topic names the device; DevEUIs match whatever their case."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ingest.router import Router
from ingest.validate import Validator
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog

REGISTRY = """
[[source]]
id = "01-air-tts"
kind = "air"
province = "01"
ward = "00070"
name = "TTS station"
expected_interval = "5m"
device_refs = ["hn-aqi-1"]

[[source]]
id = "01-air-tts-2"
kind = "air"
province = "01"
ward = "00167"
name = "another TTS station"
expected_interval = "5m"
device_refs = ["hn-aqi-2"]

[[source]]
id = "96-air-cs"
kind = "air"
province = "96"
ward = "32002"
name = "ChirpStack station, DevEUI registered in upper case"
expected_interval = "5m"
device_refs = ["70B3D57ED0051C02"]
"""


@pytest.fixture
def router(tmp_path: Path) -> Router:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    catalog: Catalog = load_catalog(INDICATORS_FILE, registry)
    return Router(catalog, Validator(catalog, max_age_s=86400, max_future_s=300), max_bytes=65536)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _tts(device: str) -> bytes:
    return orjson.dumps(
        {
            "end_device_ids": {"device_id": device},
            "received_at": _now(),
            "uplink_message": {"decoded_payload": {"pm25": 12.5}},
        }
    )


def test_a_tts_payload_must_name_the_device_of_its_topic(router: Router) -> None:
    own = router.route("v3/app@tenant/devices/hn-aqi-1/up", _tts("hn-aqi-1"), time.time_ns())
    assert len(own.points) == 1
    assert own.points[0].tags["source"] == "01-air-tts"
    # a network server allowed to publish for hn-aqi-1 must not write for hn-aqi-2
    forged = router.route("v3/app@tenant/devices/hn-aqi-1/up", _tts("hn-aqi-2"), time.time_ns())
    assert forged.points == ()
    assert [d.reason for d in forged.dead_letters] == ["topic_mismatch"]
    assert "'hn-aqi-2'" in forged.dead_letters[0].message


def test_chirpstack_deveuis_match_whatever_their_case(router: Router) -> None:
    payload = orjson.dumps(
        {
            "time": _now(),
            "deviceInfo": {"devEui": "70b3d57ed0051c02"},
            "object": {"pm25": 40.0},
        }
    )
    routed = router.route(
        "application/a1/device/70b3d57ed0051c02/event/up", payload, time.time_ns()
    )
    assert routed.dead_letters == ()
    assert routed.points[0].tags["source"] == "96-air-cs"
    other = router.route("application/a1/device/70b3d57ed0051c03/event/up", payload, time.time_ns())
    assert [d.reason for d in other.dead_letters] == ["topic_mismatch"]
