"""The catalog files: the packaged ones load, and every kind of mistake is named precisely."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ioc.catalog import (
    FORMULAS,
    INDICATORS_FILE,
    SOURCES_FILE,
    Method,
    Rollup,
    SourceClass,
    get_catalog,
    load_catalog,
    parse_period,
)
from ioc.engine.formulas import FORMULAS as ENGINE_FORMULAS
from ioc.engine.formulas import LIVENESS
from ioc.errors import CatalogError
from ioc.formulas.aqi_vn import AqiBand
from ioc.formulas.flood import AlarmLevel

GOOD_SOURCE = """
[[source]]
id = "01-air-x"
kind = "air"
province = "01"
ward = "00070"
name = "x"
expected_interval = "5m"
"""


def _registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _indicators(tmp_path: Path, old: str, new: str) -> Path:
    """The packaged indicators file with one edit (the edit must apply exactly once)."""
    text = INDICATORS_FILE.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "indicators.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_packaged_catalog_loads_with_every_indicator_readable() -> None:
    catalog = get_catalog()
    assert set(catalog.indicators) >= {
        "vn_aqi",
        "flood_level",
        "dossier_on_time_rate",
        "task_completion_rate",
        "feed_live_share",
    }
    for indicator in catalog.indicators.values():
        if indicator.kind:
            kind = catalog.kind(indicator.kind)
            assert set(indicator.metrics) <= set(kind.metrics), indicator.key
        if indicator.method is Method.RATIO:
            assert indicator.rollup is Rollup.RATIO
    assert get_catalog() is catalog  # loaded once per process


def test_engine_implements_exactly_the_formulas_the_catalog_may_name() -> None:
    assert set(FORMULAS) == {*ENGINE_FORMULAS, LIVENESS}
    used = {i.formula for i in get_catalog().indicators.values() if i.formula}
    assert used <= set(FORMULAS)


def test_vn_aqi_bands_are_table_1_of_decision_1459() -> None:
    bands = get_catalog().indicator("vn_aqi").bands
    assert [(b.low, b.title_vi, b.title_en, b.colour) for b in bands] == [
        (band.low, band.name_vi, band.name_en, band.hex) for band in AqiBand
    ]


@pytest.mark.parametrize(
    ("aqi", "band"),
    [(0, "good"), (50, "good"), (51, "moderate"), (110, "poor"), (500, "hazardous")],
)
def test_band_lookup_follows_the_lower_bounds(aqi: int, band: str) -> None:
    found = get_catalog().indicator("vn_aqi").band_for(aqi)
    assert found is not None and found.key == band


def test_flood_bands_are_the_alarm_levels() -> None:
    bands = get_catalog().indicator("flood_level").bands
    assert [b.low for b in bands] == [float(level) for level in AlarmLevel]


def test_demo_registry_places_every_source_in_a_real_ward_of_its_province() -> None:
    catalog = get_catalog()
    registry = catalog.registry
    assert {s.province for s in registry.sources} == {"01", "40", "46", "48", "96"}
    hanoi_silent = [s for s in registry.sources if s.registered and s.province == "01"]
    assert {s.department for s in hanoi_silent} == {"Sở Y tế", "Sở Công Thương", "Sở Tư pháp"}
    for source in registry.of_kind("water"):
        assert source.station is not None
    assert registry.by_device_ref("eui-70b3d57ed0051a01") == registry.source("01-air-cau-giay")
    assert registry.by_device_ref("01-dvc") == registry.source("01-dvc")  # its own id works too
    assert registry.by_device_ref("nobody") is None
    feeds = [s for s in registry.sources if catalog.kind(s.kind).source_class is SourceClass.FEED]
    assert all(s.ward is None for s in feeds if s.kind in ("service", "tasks"))


def test_metric_units_convert_to_the_canonical_unit() -> None:
    catalog = get_catalog()
    assert catalog.metric("water_level").factor("cm") == 0.01
    assert catalog.metric("pm25").factor("µg/m³") == 1
    assert catalog.metric("pm25").factor(None) == 1  # LoRaWAN decoders state no unit
    assert catalog.metric("pm25").factor("ppm") is None


def test_lookups_name_what_is_unknown() -> None:
    catalog = get_catalog()
    with pytest.raises(KeyError, match="unknown indicator 'nope'"):
        catalog.indicator("nope")
    with pytest.raises(KeyError, match="unknown source 'nope'"):
        catalog.registry.source("nope")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'rollup = "max"\ndirection = "lower_is_better"\nthresholds = { warning = 101',
            'rollup = "maximum"\ndirection = "lower_is_better"\nthresholds = { warning = 101',
            "indicators.toml: indicator 'vn_aqi': rollup: Must be one of",
        ),
        (
            'key = "traffic_volume"',
            'key = "traffic_volume"\ncolour = "red"',
            "indicator 'traffic_volume': colour: Unknown field.",
        ),
        (
            'numerator = "dossiers_on_time"',
            'numerator = "vehicles"',
            "indicator 'dossier_on_time_rate': numerator: 'vehicles' is not a metric of kind "
            "'service'",
        ),
        (
            'period = "15m"',
            'period = "7m"',
            "indicator 'feed_live_share': period: must divide a day evenly",
        ),
        (
            '{ key = "moderate", low = 51,',
            '{ key = "moderate", low = 5000,',
            "indicator 'vn_aqi': bands: low values must rise strictly",
        ),
        (
            'metric = "vehicles"\naggregate = "sum"',
            'metric = "vehicles"',
            "indicator 'traffic_volume': aggregate: required when method is 'metric'",
        ),
        (
            'method = "ratio"\nnumerator = "dossiers_on_time"',
            'method = "ratio"\nnumerator = "dossiers_on_time"\nformula = "flood_level"',
            "indicator 'dossier_on_time_rate': formula: not used when method is 'ratio'",
        ),
        (
            'aliases = ["vehicle_count"]',
            'aliases = ["vehicle_count", "pm2_5"]',
            "metric 'vehicles': aliases: 'pm2_5' is already a name of 'pm25'",
        ),
        ("version = 1", "version = 2", "(top level): version: must be 1"),
    ],
)
def test_indicator_file_mistakes_name_file_entry_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = _indicators(tmp_path, old, new)
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(path, SOURCES_FILE)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = INDICATORS_FILE.read_text(encoding="utf-8")
    text = text.replace('unit = "AQI"', 'unit = ""').replace('domain = "water"', 'domain = "W"')
    path = tmp_path / "indicators.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path, SOURCES_FILE)
    assert "2 problem(s)" in str(caught.value)
    assert "indicator 'vn_aqi': unit:" in str(caught.value)
    assert "indicator 'flood_level': domain:" in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('ward = "00070"', 'ward = "19768"'),
            "ward: 19768 (Phường Phú Xuân) belongs to province 46, not 01",
        ),
        (('ward = "00070"', 'ward = "99999"'), "ward: unknown ward code '99999'"),
        (('province = "01"', 'province = "64"'), "province: unknown province code '64'"),
        (('kind = "air"', 'kind = "weather"'), "kind: unknown source kind 'weather'"),
        (('expected_interval = "5m"', 'expected_interval = "often"'), "expected_interval:"),
        (
            ('id = "01-air-x"', 'id = "01 air x"'),
            "source '01 air x': id: '01 air x' is not a source id",
        ),
        (('kind = "air"', 'kind = "water"'), "station: required for a water gauge"),
        (
            ('name = "x"', 'name = "x"\nstation = "nowhere"'),
            "station: unknown flood station 'nowhere'",
        ),
        (('name = "x"', 'name = "x"\nregistered = "yesterday"'), "registered: Not a valid date."),
    ],
)
def test_registry_mistakes_name_the_source_and_field(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = _registry(tmp_path, GOOD_SOURCE.replace(*edit))
    with pytest.raises(CatalogError, match=re.escape("sources.toml: ")) as caught:
        load_catalog(INDICATORS_FILE, path)
    assert message in str(caught.value)


def test_duplicate_ids_and_device_names_are_refused(tmp_path: Path) -> None:
    twice = GOOD_SOURCE + GOOD_SOURCE.replace("01-air-x", "01-air-y")
    twice = twice.replace('name = "x"', 'name = "x"\ndevice_refs = ["eui-1"]')
    path = _registry(tmp_path, twice + GOOD_SOURCE)
    with pytest.raises(CatalogError) as caught:
        load_catalog(INDICATORS_FILE, path)
    text = str(caught.value)
    assert "source '01-air-x': key: appears more than once" in text
    assert "source '01-air-y': device_refs: 'eui-1' already names '01-air-x'" in text


def test_a_probe_needs_an_http_url(tmp_path: Path) -> None:
    probe = GOOD_SOURCE.replace('kind = "air"', 'kind = "probe"').replace(
        'ward = "00070"\n', 'url = "ftp://portal.example"\n'
    )
    with pytest.raises(CatalogError, match="url: a probe needs an http"):
        load_catalog(INDICATORS_FILE, _registry(tmp_path, probe))


def test_unreadable_and_malformed_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.toml: cannot read"):
        load_catalog(INDICATORS_FILE, tmp_path / "missing.toml")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(INDICATORS_FILE, _registry(tmp_path, "[[source]\n"))


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1h", 3600), ("1d", 86400)])
def test_periods(text: str, seconds: int) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "1w", "5", "m5", "1.5h"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_period(text)
