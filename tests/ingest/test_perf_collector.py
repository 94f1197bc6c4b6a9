"""``Collector.handle`` after the hot-path work gives exactly what it gave before.

The changes: the router remembers the source each topic of ours resolved to (so a topic is split
and checked once), ``handle`` skips dead-letter work when there is none, and the IOC JSON parser
builds its readings as tuples directly. ``_reference_handle`` is ``handle`` as it was, on a
router that has never seen the topic. For a corpus of valid and invalid messages on every kind of
topic, each sent three times (so that the warm path meets remembered topics), the raw lines, the
dead letters (reason, tags and fields; the stamps are unique per letter by design) and the
counters must be the same.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import orjson
import pytest

from ingest.collector import Collector
from ingest.deadletter import DeadLetter
from ingest.formats.model import DEFAULT_MAX_BYTES
from ingest.router import Router
from ingest.validate import Validator
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog, parse_period
from ioc.errors import LineProtocolError
from ioc.settings import Settings, load_settings
from ioc.store import encode_point

REGISTRY = """
[[source]]
id = "01-air-a"
kind = "air"
province = "01"
ward = "00070"
name = "air station A"
expected_interval = "1m"
device_refs = ["hn-aqi-1"]

[[source]]
id = "01-air-b"
kind = "air"
province = "01"
name = "air station B, no ward"
expected_interval = "1m"

[[source]]
id = "96-air-cs"
kind = "air"
province = "96"
ward = "32002"
name = "ChirpStack station"
expected_interval = "5m"
device_refs = ["70B3D57ED0051C02"]
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Settings, Catalog]:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    settings = load_settings(
        {"IOC_VAR_DIR": str(tmp_path), "IOC_REGISTRY_FILE": str(registry), "IOC_INGEST_ID": "c1"}
    )
    return settings, load_catalog(INDICATORS_FILE, registry)


def _reference_handle(
    settings: Settings,
    catalog: Catalog,
    counters: Counter[str],
    *,
    topic: str,
    payload: bytes,
    now: int,
) -> tuple[list[str], list[str]]:
    """``Collector.handle`` before the hot-path work, with a router that has seen nothing."""
    validator = Validator(
        catalog,
        max_age_s=parse_period(settings.ingest_max_age),
        max_future_s=parse_period(settings.ingest_max_future),
    )
    router = Router(catalog, validator, max_bytes=DEFAULT_MAX_BYTES)
    counters["received"] += 1
    routed = router.route(topic, payload, now)
    counters["readings"] += routed.readings
    for kind in routed.ignored:
        counters[f"ignored.{kind}"] += 1
    raw: list[str] = []
    letters = list(routed.dead_letters)
    for point in routed.points:
        try:
            raw.append(encode_point(point))
        except LineProtocolError as error:
            letters.append(DeadLetter.of(topic, payload, now, "unencodable", str(error)))
    ops = [encode_point(letter.to_point(collector=settings.ingest_id)) for letter in letters]
    for letter in letters:
        counters[f"dead_letters.{letter.reason}"] += 1
    counters["points"] += len(raw)
    return raw, ops


def _unstamped(lines: list[str]) -> list[str]:
    """Dead-letter lines without their timestamp (each letter gets a stamp of its own)."""
    return [line.rsplit(" ", 1)[0] for line in lines]


def _doc(
    source: str, t_ms: int, metrics: Mapping[str, object], **extra: object
) -> dict[str, object]:
    return {"v": 1, "source": source, "time_ms": t_ms, "metrics": metrics, **extra}


def _corpus(now_ms: int) -> list[tuple[str, bytes]]:
    good = {"pm25": 35.2, "pm10": 51, "o3": 80.5, "temperature": 30.1, "humidity": 70}
    a, b = "ioc/v1/01/01-air-a/air", "ioc/v1/01/01-air-b/air"
    docs: list[tuple[str, object]] = [
        (a, _doc("01-air-a", now_ms - 60_000, good)),
        (a, [_doc("01-air-a", now_ms - 60_000, good), _doc("01-air-a", now_ms, good)]),
        (b, _doc("01-air-b", now_ms, good)),
        (a, _doc("01-air-a", now_ms, {"pm25": {"value": 35, "unit": "mg/m3"}})),  # converted
        (a, _doc("01-air-a", now_ms, {"pm25": -5, "pm10": 51})),  # out_of_range
        (a, _doc("01-air-a", now_ms, {"pm25": 1e300, "pm10": 2})),  # far out of range
        (a, _doc("01-air-a", now_ms, {"nonsense": 1, "pm10": 2})),  # unknown_metric
        (a, _doc("01-air-a", now_ms, {"dossiers_received": 3, "pm10": 2})),  # not allowed
        (a, _doc("01-air-a", now_ms, {"pm25": {"value": 3, "unit": "furlongs"}})),
        (a, _doc("01-air-a", now_ms, {"pm25": True})),  # wrong_type
        (a, _doc("01-air-a", now_ms - 30 * 86_400_000, good)),  # too_old
        (a, _doc("01-air-a", now_ms + 86_400_000, good)),  # in_future
        (a, [_doc("01-air-a", now_ms, {"pm25": 1}), _doc("01-air-a", now_ms, {"pm2_5": 2})]),
        (a, _doc("01-air-b", now_ms, good)),  # the document names another source
        (a, _doc("01-air-a", now_ms, good, extra=1)),  # unknown_field
        (a, _doc("01-air-a", now_ms, {})),  # no_readings
        (a, []),  # empty_batch
        ("ioc/v1/02/01-air-a/air", _doc("01-air-a", now_ms, good)),  # wrong province
        ("ioc/v1/01/01-air-a/water", _doc("01-air-a", now_ms, good)),  # wrong kind
        ("ioc/v1/01/nobody/air", _doc("nobody", now_ms, good)),  # unknown_source
        ("ioc/v1/01/01-air-a/air/xml", _doc("01-air-a", now_ms, good)),  # unknown format
        ("somewhere/else", _doc("01-air-a", now_ms, good)),  # unknown_topic
        (
            "ioc/v1/01/01-air-a/air/senml",
            [{"bn": "01-air-a", "bt": now_ms / 1000, "n": "pm25", "u": "ug/m3", "v": 12.5}],
        ),
        ("ioc/v1/01/01-air-a/air/senml", [{"n": "pm25", "v": "text"}]),
    ]
    out = [(topic, orjson.dumps(doc)) for topic, doc in docs]
    out += [
        (a, b'{"v":1,"source":"01-air-a","time_ms":'),  # invalid_json, on a known topic
        (a, b"\xff\xfe"),  # invalid_utf8
        (a, b"x" * (DEFAULT_MAX_BYTES + 1)),  # too_large
        ("ioc/v1/01/01-air-a/air/senml", b"{"),
        (
            "v3/app@tenant/devices/hn-aqi-1/up",
            orjson.dumps({"end_device_ids": {"device_id": "hn-aqi-1"}, "uplink_message": {}}),
        ),
        ("application/app/device/70b3d57ed0051c02/event/join", b"{}"),  # ignored event
        ("application/app/device/70b3d57ed0051c02/event/up", b"not json"),
    ]
    return out


def test_handle_gives_what_it_gave_before(setup: tuple[Settings, Catalog]) -> None:
    settings, catalog = setup
    collector = Collector(settings, catalog)
    expected_counters: Counter[str] = Counter()
    now = time.time_ns()
    corpus = _corpus(now // 1_000_000)
    for round_ in range(3):  # the first round fills the router's memory of topics
        for topic, payload in corpus:
            raw, ops = collector.handle(topic, payload, now)
            want_raw, want_ops = _reference_handle(
                settings, catalog, expected_counters, topic=topic, payload=payload, now=now
            )
            assert raw == want_raw, (round_, topic, payload[:80])
            assert _unstamped(ops) == _unstamped(want_ops), (round_, topic, payload[:80])
    assert collector.counters == expected_counters
    reasons = {k.split(".", 1)[1] for k in expected_counters if k.startswith("dead_letters.")}
    # the corpus reaches the paths that matter: points, and letters of many kinds
    assert expected_counters["points"] >= 3 * 5
    assert {"out_of_range", "unknown_metric", "topic_mismatch", "invalid_json"} <= reasons
    assert {"unknown_source", "unknown_topic", "too_old", "in_future"} <= reasons


def test_router_remembers_only_topics_that_passed_every_check(
    setup: tuple[Settings, Catalog],
) -> None:
    settings, catalog = setup
    collector = Collector(settings, catalog)
    now = time.time_ns()
    for topic, payload in _corpus(now // 1_000_000):
        collector.handle(topic, payload, now)
    remembered = collector.router._resolved  # the cache under test
    assert set(remembered) == {
        "ioc/v1/01/01-air-a/air",
        "ioc/v1/01/01-air-b/air",
        "ioc/v1/01/01-air-a/air/senml",
    }
    assert remembered["ioc/v1/01/01-air-a/air"] == (catalog.registry.get("01-air-a"), False)
    assert remembered["ioc/v1/01/01-air-a/air/senml"][1] is True
