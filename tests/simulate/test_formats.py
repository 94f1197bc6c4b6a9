"""Every payload the simulator publishes is read back by the collector's own parsers and rules."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import orjson
import pytest

from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.lorawan import parse_chirpstack, parse_tts
from ingest.formats.senml import parse_senml
from ioc.catalog import get_catalog
from ioc.simulate.fleet import Format
from ioc.simulate.formats import encode, rfc3339
from ioc.simulate.signals import LOCAL
from tests.simulate.support import END_NS, HISTORY_S, NS, router, simulation


@pytest.mark.parametrize(
    "end",
    [
        datetime(2025, 11, 20, 9, 0, 5, tzinfo=LOCAL),  # the record's 2019 autumn
        datetime(2026, 8, 20, 16, 30, tzinfo=LOCAL),  # outside the record: shifted 70 days
        datetime(2024, 2, 29, 23, 59, tzinfo=LOCAL),  # a leap day, across midnight
    ],
)
def test_the_whole_history_window_is_accepted_by_the_collector(end: datetime) -> None:
    end_ns = int(end.timestamp()) * NS
    sim = simulation(end_ns)
    route = router()
    points: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    messages = 0
    for message in sim.history(end_ns - HISTORY_S * NS, end_ns):
        routed = route.route(message.topic, message.payload, end_ns + NS)
        assert routed.dead_letters == (), (message.topic, routed.dead_letters[0].message)
        assert routed.points, message.topic
        points.update(point.measurement for point in routed.points)
        formats[
            message.topic.split("/")[0] + ("/senml" if message.topic.endswith("senml") else "")
        ] += 1
        messages += 1
    assert set(points) == {
        "air",
        "water",
        "traffic",
        "service",
        "tasks",
        "task_groups",
        "data",
        "probe",
    }
    assert set(formats) == {"ioc", "ioc/senml", "v3", "application"}
    assert messages == sim.history_size(end_ns - HISTORY_S * NS, end_ns)


def _one(fmt: Format) -> tuple[bytes, str, int]:
    sim = simulation()
    device = next(d for d in sim.fleet.devices if d.format is fmt)
    message = sim.message(device, END_NS // NS)
    assert message is not None
    return message.payload, message.topic, END_NS


def test_ioc_json_states_the_device_units_and_the_parser_reads_them() -> None:
    sim = simulation()
    gauge = next(d for d in sim.fleet.devices if d.source.id == "96-water-ca-mau")
    values = {"water_level": 0.723}
    message = encode(get_catalog(), gauge, END_NS, values, 1)
    (reading,) = parse_ioc_json(message.payload)
    assert (reading.metric, reading.value, reading.unit) == ("water_level", 72.3, "cm")
    assert message.topic == "ioc/v1/96/96-water-ca-mau/water"
    (point,) = router().route(message.topic, message.payload, END_NS).points
    assert point.fields["water_level"] == pytest.approx(0.723)


def test_senml_uses_the_registered_base_name_and_absolute_time() -> None:
    payload, topic, at = _one(Format.SENML)
    assert topic == "ioc/v1/01/01-air-long-bien/air/senml"
    readings = parse_senml(payload, now_ns=0)
    assert {r.device_ref for r in readings} == {"urn:dev:ow:10e2073a01080063"}
    assert {r.time for r in readings} == {at}
    assert orjson.loads(payload)[0]["bn"] == "urn:dev:ow:10e2073a01080063:"


def test_the_things_stack_uplink_names_the_registered_device_id() -> None:
    payload, topic, at = _one(Format.TTS)
    result = parse_tts(payload)
    device = result.readings[0].device_ref
    assert topic.startswith("v3/") and topic.endswith(f"/devices/{device}/up")
    assert get_catalog().registry.by_device_ref(device) is not None
    assert {r.time for r in result.readings} == {at}
    assert all(r.unit is None for r in result.readings)
    assert orjson.loads(payload)["received_at"] == rfc3339(at)


def test_chirpstack_event_carries_the_registered_dev_eui() -> None:
    payload, topic, at = _one(Format.CHIRPSTACK)
    result = parse_chirpstack(payload, event=topic.rsplit("/", 1)[1])
    assert result.ignored == ()
    (reading,) = result.readings
    assert reading.device_ref == "70b3d57ed0051c02"
    assert get_catalog().registry.by_device_ref(reading.device_ref) == get_catalog().registry.get(
        "96-water-song-doc"
    )
    assert (reading.metric, reading.time) == ("waterLevel", at)
    application = orjson.loads(payload)["deviceInfo"]["applicationId"]
    assert topic == f"application/{application}/device/70b3d57ed0051c02/event/up"


def test_rfc3339_keeps_nanoseconds() -> None:
    assert rfc3339(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
