"""The fleet comes from the registry: formats by device_refs, silent departments, communes."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from ioc.catalog import get_catalog
from ioc.places import get_places
from ioc.simulate.fleet import NEVER_CONNECTED, Format, build_fleet, payload_format
from tests.simulate.support import END_NS, HISTORY_S, NS, simulation


def test_every_simulated_source_is_registered_in_its_province_and_kind() -> None:
    catalog = get_catalog()
    fleet = build_fleet(catalog)
    assert fleet.devices
    for device in fleet.devices:
        assert catalog.registry.source(device.source.id) == device.source
        assert device.source.province in {"01", "40", "96", "46", "48"}
        assert device.interval_s == device.source.expected_interval_s


def test_every_payload_format_is_used_by_a_demo_device() -> None:
    by_format = build_fleet(get_catalog()).by_format()
    assert all(by_format[fmt] for fmt in Format)
    assert {d.source.id for d in by_format[Format.TTS]} == {"01-air-hoan-kiem", "01-air-cau-giay"}
    assert {d.source.id for d in by_format[Format.SENML]} == {"01-air-long-bien"}
    assert {d.source.id for d in by_format[Format.CHIRPSTACK]} == {"96-water-song-doc"}


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ((), (Format.IOC_JSON, "x-1")),
        (("urn:dev:ow:10e2073a01080063:",), (Format.SENML, "urn:dev:ow:10e2073a01080063:")),
        (("24e124136b325190",), (Format.CHIRPSTACK, "24e124136b325190")),
        (("eui-70b3d57ed0051a01",), (Format.TTS, "eui-70b3d57ed0051a01")),
        (("hn-aqi-hoankiem",), (Format.TTS, "hn-aqi-hoankiem")),
    ],
)
def test_the_format_follows_the_device_refs(refs: tuple[str, ...], expected: object) -> None:
    source = get_catalog().registry.source("01-air-hoan-kiem")
    assert payload_format(replace(source, id="x-1", device_refs=refs)) == expected


def test_the_departments_that_never_connect_publish_nothing() -> None:
    sim = simulation()
    assert {s.id for s in sim.fleet.silent} == set(NEVER_CONNECTED)
    for source_id in NEVER_CONNECTED:
        assert get_catalog().registry.get(source_id) is not None  # registered, only silent
    published = set()
    for message in sim.history(END_NS - HISTORY_S * NS, END_NS):
        if message.topic.startswith("ioc/v1/"):
            published.add(message.topic.split("/")[3])
            if not message.topic.endswith("/senml"):
                assert orjson.loads(message.payload)["source"] not in NEVER_CONNECTED
    assert published.isdisjoint(NEVER_CONNECTED)
    assert "01-data-platform" in published  # Hà Nội's own platform does publish


def test_nghe_an_reports_from_all_130_communes() -> None:
    fleet = build_fleet(get_catalog(), ["40"])
    communes = {d.source.ward for d in fleet.devices if d.source.kind == "data" and d.source.ward}
    assert len(communes) == 130
    assert communes == {w.code for w in get_places().wards_of("40")}


def test_a_province_without_sources_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="province '79'"):
        build_fleet(get_catalog(), ["01", "79"])


def test_slots_follow_the_interval_and_phase() -> None:
    device = next(d for d in build_fleet(get_catalog(), ["01"]).devices if d.interval_s == 300)
    slots = device.slots(0, 3600 * NS)
    assert list(slots) == list(range(device.phase_s or 300, 3601, 300))
    assert all(s * NS > 0 for s in slots)
    assert list(device.slots(slots[0] * NS, slots[2] * NS)) == [slots[1], slots[2]]
