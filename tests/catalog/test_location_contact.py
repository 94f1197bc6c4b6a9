"""The registry's optional ``location`` (stations on the walls' maps) and ``contact`` fields."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ioc.catalog import (
    INDICATORS_FILE,
    VIETNAM_LAT,
    VIETNAM_LON,
    Location,
    SourceClass,
    get_catalog,
    load_catalog,
)
from ioc.errors import CatalogError

SOURCE = """
[[source]]
id = "01-air-x"
kind = "air"
province = "01"
ward = "00070"
name = "x"
expected_interval = "5m"
"""


def _load(tmp_path: Path, extra: str) -> CatalogError | None:
    """Load a one-source registry with ``extra`` lines; the error, or None if it loaded."""
    path = tmp_path / "sources.toml"
    path.write_text(SOURCE + extra + "\n", encoding="utf-8")
    try:
        load_catalog(INDICATORS_FILE, path)
    except CatalogError as error:
        return error
    return None


def test_a_location_and_contacts_load_into_the_source(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        SOURCE
        + "location = { lat = 21.0279, lon = 105 }\n"
        + 'contact = ["so-tnmt@hanoi.gov.vn.example", "ubnd.hoankiem@hanoi.gov.vn.example"]\n',
        encoding="utf-8",
    )
    source = load_catalog(INDICATORS_FILE, path).registry.source("01-air-x")
    assert source.location == Location(21.0279, 105.0)  # an integer is a number of degrees too
    assert isinstance(source.location.lon, float)
    assert source.contact == ("so-tnmt@hanoi.gov.vn.example", "ubnd.hoankiem@hanoi.gov.vn.example")


def test_both_fields_are_optional(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(SOURCE, encoding="utf-8")
    source = load_catalog(INDICATORS_FILE, path).registry.source("01-air-x")
    assert (source.location, source.contact) == (None, ())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (  # the islands are inside: Trường Sa Lớn, and Thổ Chu in the Gulf of Thailand
            "location = { lat = 8.6444, lon = 111.9203 }",
            None,
        ),
        ("location = { lat = 9.3, lon = 103.48 }", None),
        (
            "location = { lat = 105.8510, lon = 21.0279 }",  # swapped
            "location.lat: 105.851 is outside Vietnam's latitudes 7.5 to 23.5 (with islands)",
        ),
        (
            "location = { lat = 21.0279, lon = 10.5851 }",  # a slipped decimal point
            "location.lon: 10.5851 is outside Vietnam's longitudes 102.0 to 117.9 (with islands)",
        ),
        (
            "location = { lat = 13.7563, lon = 100.5018 }",  # Bangkok
            "location.lon: 100.5018 is outside Vietnam's longitudes",
        ),
        ("location = { lat = 21.0279 }", "location.lon: Missing data for required field."),
        ("location = { lon = 105.8510 }", "location.lat: Missing data for required field."),
        (
            'location = { lat = "21.0279", lon = 105.8510 }',
            "location.lat: '21.0279' is not a number of degrees",
        ),
        (
            "location = { lat = true, lon = 105.8510 }",
            "location.lat: True is not a number of degrees",
        ),
        (
            "location = { lat = nan, lon = 105.8510 }",
            "location.lat: Special numeric values (nan or infinity) are not permitted.",
        ),
        (
            "location = { lat = 21.0279, lon = 105.8510, alt = 12 }",
            "location.alt: Unknown field.",
        ),
        (
            "location = [21.0279, 105.8510]",
            "location: must be a table such as { lat = 21.0285, lon = 105.8542 }",
        ),
        ('contact = ["so-khcn@hanoi.gov.vn.example"]', None),
        ('contact = ["so-khcn"]', "contact.0: 'so-khcn' is not an e-mail address"),
        (
            'contact = ["ok@hue.gov.vn.example", "ubnd phu xuan@hue.gov.vn.example"]',
            "contact.1: 'ubnd phu xuan@hue.gov.vn.example' is not an e-mail address",
        ),
        ('contact = ["a@b"]', "contact.0: 'a@b' is not an e-mail address"),
        ('contact = "so-khcn@hanoi.gov.vn.example"', "contact: Not a valid list."),
        ("contact = []", "contact: give at least one address, or leave contact out"),
    ],
)
def test_location_and_contact_mistakes_name_file_source_and_field(
    tmp_path: Path, extra: str, message: str | None
) -> None:
    error = _load(tmp_path, extra)
    if message is None:
        assert error is None
        return
    assert error is not None
    assert re.search(r"sources\.toml: source '01-air-x': " + re.escape(message), str(error)), str(
        error
    )


def test_every_location_problem_is_reported_at_once(tmp_path: Path) -> None:
    error = _load(tmp_path, 'location = { lat = 40.0, lon = "x" }\ncontact = ["nobody"]')
    assert error is not None
    assert "3 problem(s)" in str(error)


# Rough boxes around each demo province (after the 2025 mergers: Đà Nẵng includes Quảng Nam,
# Cà Mau includes Bạc Liêu), to catch a station placed in the wrong province.
PROVINCE_BOXES = {
    "01": ((20.5, 21.4), (105.3, 106.1)),
    "40": ((18.5, 20.0), (103.8, 105.9)),
    "46": ((15.9, 16.8), (107.0, 108.2)),
    "48": ((15.0, 16.3), (107.2, 108.8)),
    "96": ((8.5, 9.7), (104.7, 105.9)),
}


def test_every_demo_station_with_a_ward_has_a_location_in_its_province() -> None:
    catalog = get_catalog()
    stations = [
        s
        for s in catalog.registry.sources
        if catalog.kind(s.kind).source_class is SourceClass.DEVICE and s.ward is not None
    ]
    assert {s.kind for s in stations} == {"air", "water", "traffic"}
    for source in stations:
        assert source.location is not None, source.id
        (lat_low, lat_high), (lon_low, lon_high) = PROVINCE_BOXES[source.province]
        assert lat_low <= source.location.lat <= lat_high, source.id
        assert lon_low <= source.location.lon <= lon_high, source.id
        assert VIETNAM_LAT[0] <= source.location.lat <= VIETNAM_LAT[1]
        assert VIETNAM_LON[0] <= source.location.lon <= VIETNAM_LON[1]
    # two stations in one ward stand apart (Cà Mau's air station and river gauge in An Xuyên)
    located = [s.location for s in stations]
    assert len(set(located)) == len(located)


def test_demo_contacts_are_on_reserved_example_domains_only() -> None:
    registry = get_catalog().registry
    feeds = [s for s in registry.sources if s.department is not None]
    assert feeds
    for source in feeds:  # every department feed and task register names its unit's mailbox
        assert source.contact, source.id
    for source in registry.sources:
        for address in source.contact:
            assert address.endswith(".example"), address  # RFC 2606's reserved TLD: reaches nobody
