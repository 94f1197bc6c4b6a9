"""The validation stage: catalog rules, time window, grouping into points, and two equal paths.

Every case runs through both the hot path (``Validator``) and the marshmallow reference
(``reference_validate``) and requires the same result; the property tests do the same for random
readings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.formats.model import RawReading
from ingest.validate import REASONS, Rejection, Validated, Validator, reference_validate
from ioc.catalog import MetricType, Source, get_catalog
from ioc.store import Point, encode_point
from tests.ingest.formats_support import utc_ns

T = TypeVar("T")

CATALOG = get_catalog()
AIR = CATALOG.registry.source("01-air-hoan-kiem")  # ward 00070
WATER = CATALOG.registry.source("01-water-long-bien")  # ward 00148
TRAFFIC = CATALOG.registry.source("01-traffic-cau-giay")  # ward 00167
DVC = CATALOG.registry.source("01-dvc")  # province-level: no ward
TASKS = CATALOG.registry.source("01-tasks")
PROBE = dataclasses.replace(DVC, id="01-probe-portal", kind="probe", url="http://127.0.0.1:1/")

NOW = utc_ns("2025-07-01T08:00:00")
NOW_MS = NOW // 1_000_000
MAX_AGE_S = 86_400.0
MAX_FUTURE_S = 300.0
AGE_NS = 86_400 * 10**9
FUTURE_NS = 300 * 10**9
VALIDATOR = Validator(CATALOG, max_age_s=MAX_AGE_S, max_future_s=MAX_FUTURE_S)


def both(source: Source, readings: Sequence[RawReading], received_ns: int = NOW) -> Validated:
    """Validate with both paths, require the same result, return it."""
    fast = VALIDATOR.validate(source, readings, received_ns)
    reference = reference_validate(
        CATALOG,
        source,
        readings,
        received_ns,
        max_age_s=MAX_AGE_S,
        max_future_s=MAX_FUTURE_S,
    )
    assert fast == reference
    for point in fast.points:
        encode_point(point)  # raises LineProtocolError if line protocol cannot carry it
    return fast


def reading(metric: str, value: float | bool, unit: str | None = None, at: int = NOW) -> RawReading:
    return RawReading("dev-1", metric, value, unit, at)


# --- accepted readings -----------------------------------------------------------------------

ACCEPT = [
    pytest.param(AIR, "pm25", 35.2, None, NOW, "pm25", 35.2, id="key-no-unit"),
    pytest.param(AIR, "pm25", 35.2, "ug/m3", NOW, "pm25", 35.2, id="canonical-unit"),
    pytest.param(AIR, "pm2_5", 35.2, None, NOW, "pm25", 35.2, id="alias-pm2_5"),
    pytest.param(AIR, "PM2.5", 35.2, "µg/m³", NOW, "pm25", 35.2, id="alias-PM2.5-unicode-unit"),
    pytest.param(AIR, "pm10", 0.05, "mg/m3", NOW, "pm10", 50.0, id="mg-to-ug"),
    pytest.param(AIR, "co", 2.5, "mg/m3", NOW, "co", 2500.0, id="co-mg-to-ug"),
    pytest.param(AIR, "pm25", 2000.0, None, NOW, "pm25", 2000.0, id="exactly-max"),
    pytest.param(AIR, "pm25", 0.0, None, NOW, "pm25", 0.0, id="exactly-min"),
    pytest.param(AIR, "pm25", 2.0, "mg/m3", NOW, "pm25", 2000.0, id="exactly-max-converted"),
    pytest.param(AIR, "temperature", -20.0, "°C", NOW, "temperature", -20.0, id="negative-min"),
    pytest.param(AIR, "hum", 100.0, "%", NOW, "humidity", 100.0, id="alias-hum-max"),
    pytest.param(WATER, "water_level", 1050.0, "cm", NOW, "water_level", 10.5, id="cm-to-m"),
    pytest.param(WATER, "level", 2500.0, "mm", NOW, "water_level", 2.5, id="mm-to-m-alias"),
    pytest.param(WATER, "waterLevel", -10.0, "m", NOW, "water_level", -10.0, id="water-min"),
    pytest.param(WATER, "water_level", 10000.0, "cm", NOW, "water_level", 100.0, id="water-max"),
    pytest.param(TRAFFIC, "speed", 10.0, "m/s", NOW, "speed", 36.0, id="m/s-to-km/h"),
    pytest.param(TRAFFIC, "vehicles", 12.0, None, NOW, "vehicles", 12.0, id="count-integral"),
    pytest.param(TRAFFIC, "vehicle_count", 0.0, "count", NOW, "vehicles", 0.0, id="count-alias"),
    pytest.param(DVC, "dossiers.received", 1234.0, None, NOW, "dossiers_received", 1234.0,
                 id="feed-alias"),
    pytest.param(TASKS, "tasks.in_progress_on_time", 7.0, "tasks", NOW, "tasks_on_schedule", 7.0,
                 id="second-alias"),
    pytest.param(PROBE, "probe_up", True, None, NOW, "probe_up", True, id="bool-true"),
    pytest.param(PROBE, "probe_up", False, "bool", NOW, "probe_up", False, id="bool-false-unit"),
    pytest.param(PROBE, "probe_status", 599.0, "status", NOW, "probe_status", 599.0,
                 id="status-max"),
    pytest.param(PROBE, "probe_latency_ms", 0.25, "s", NOW, "probe_latency_ms", 250.0,
                 id="s-to-ms"),
    pytest.param(PROBE, "probe_cert_days", -3.5, "d", NOW, "probe_cert_days", -3.5,
                 id="negative-days"),
    pytest.param(AIR, "pm25", 1.0, None, NOW - AGE_NS, "pm25", 1.0, id="exactly-max-age"),
    pytest.param(AIR, "pm25", 1.0, None, NOW + FUTURE_NS, "pm25", 1.0, id="exactly-max-future"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "metric", "value", "unit", "at", "key", "stored"), ACCEPT)
def test_accepted(
    *,
    source: Source,
    metric: str,
    value: float | bool,
    unit: str | None,
    at: int,
    key: str,
    stored: float | bool,
) -> None:
    result = both(source, [reading(metric, value, unit, at)])
    assert result.rejections == ()
    (point,) = result.points
    assert point.fields == {key: stored, "received_ms": NOW_MS}
    assert type(point.fields[key]) is type(stored)  # bool stays bool, counts are floats
    assert point.time_ns == at
    assert point.measurement == CATALOG.kind(source.kind).measurement


# --- rejected readings -----------------------------------------------------------------------

REJECT = [
    # (source, metric, value, unit, time, reason, fragments the message must contain)
    pytest.param(AIR, "pm2-5", 35.2, None, NOW, "unknown_metric", ["'pm2-5'", "'air'", "pm25"],
                 id="unknown"),
    pytest.param(AIR, "Pm25", 35.2, None, NOW, "unknown_metric", ["'Pm25'"], id="case-matters"),
    pytest.param(AIR, "", 35.2, "ug/m3", NOW, "unknown_metric", ["''", "'air'"],
                 id="senml-unit-only"),
    pytest.param(AIR, "received_ms", 1.0, None, NOW, "unknown_metric", ["'received_ms'"],
                 id="received-field-is-not-a-metric"),
    pytest.param(WATER, "pm25", 35.2, None, NOW, "metric_not_allowed",
                 ["'pm25'", "'water'", "water_level"], id="pm25-from-water"),
    pytest.param(AIR, "level", 1.0, "m", NOW, "metric_not_allowed", ["'level'", "water_level"],
                 id="alias-not-allowed"),
    pytest.param(AIR, "probe_up", True, None, NOW, "metric_not_allowed", ["'probe_up'"],
                 id="bool-metric-not-allowed"),
    pytest.param(AIR, "pm25", 35.2, "ppm", NOW, "unit_not_accepted",
                 ["'pm25'", "'ppm'", "ug/m3", "mg/m3"], id="unit-ppm"),
    pytest.param(AIR, "pm25", 35.2, "", NOW, "unit_not_accepted", ["''"], id="unit-empty"),
    pytest.param(WATER, "water_level", 10.0, "CM", NOW, "unit_not_accepted", ["'CM'", "cm, mm"],
                 id="unit-case-matters"),
    pytest.param(PROBE, "probe_up", True, "%", NOW, "unit_not_accepted", ["'%'", "bool"],
                 id="unit-on-bool"),
    pytest.param(AIR, "pm25", 35.2, "°C", NOW, "unit_not_accepted", ["'°C'"],
                 id="unit-of-other-metric"),
    pytest.param(AIR, "pm25", True, None, NOW, "wrong_type", ["'pm25'", "True", "a number"],
                 id="bool-for-float"),
    pytest.param(TRAFFIC, "vehicles", False, None, NOW, "wrong_type", ["False"],
                 id="bool-for-count"),
    pytest.param(PROBE, "probe_up", 1.0, None, NOW, "wrong_type", ["'probe_up'", "1.0", "true"],
                 id="one-for-bool"),
    pytest.param(PROBE, "probe_up", 0.0, "bool", NOW, "wrong_type", ["0.0"], id="zero-for-bool"),
    pytest.param(TRAFFIC, "vehicles", 12.5, None, NOW, "not_integral",
                 ["'vehicles'", "12.5", "vehicles"], id="half-vehicle"),
    pytest.param(DVC, "dossiers.on_time", 0.5, "count", NOW, "not_integral", ["0.5 count"],
                 id="half-dossier"),
    pytest.param(PROBE, "probe_status", 200.5, None, NOW, "not_integral", ["200.5"],
                 id="fractional-status"),
    pytest.param(TRAFFIC, "vehicles", -0.5, None, NOW, "not_integral", ["-0.5"],
                 id="not-integral-before-range"),
    pytest.param(AIR, "pm25", math.nextafter(2000.0, math.inf), None, NOW, "out_of_range",
                 ["2000.0000000000002 ug/m3", "0 to 2000 ug/m3"], id="just-above-max"),
    pytest.param(AIR, "pm25", -0.1, None, NOW, "out_of_range", ["-0.1", "0 to 2000"],
                 id="below-min"),
    pytest.param(AIR, "pm25", 2.5, "mg/m3", NOW, "out_of_range",
                 ["2.5 mg/m3 (= 2500.0 ug/m3)", "0 to 2000 ug/m3"], id="above-max-converted"),
    pytest.param(WATER, "water_level", 10001.0, "cm", NOW, "out_of_range",
                 ["10001.0 cm", "100.01 m", "-10 to 100 m"], id="water-above-max-cm"),
    pytest.param(AIR, "temperature", -20.5, "Cel", NOW, "out_of_range", ["-20.5 Cel"],
                 id="cold"),
    pytest.param(PROBE, "probe_status", 99.0, None, NOW, "out_of_range", ["99.0", "100 to 599"],
                 id="status-below"),
    pytest.param(TRAFFIC, "vehicles", 1e20, None, NOW, "out_of_range", ["1e+20"],
                 id="huge-count"),
    pytest.param(AIR, "pm25", math.nan, None, NOW, "out_of_range", ["nan", "finite"], id="nan"),
    pytest.param(AIR, "pm25", math.inf, None, NOW, "out_of_range", ["inf", "finite"], id="inf"),
    pytest.param(TRAFFIC, "vehicles", -math.inf, None, NOW, "out_of_range", ["-inf", "finite"],
                 id="minus-inf-count"),
    pytest.param(AIR, "co", 1e308, "mg/m3", NOW, "out_of_range",
                 ["1e+308 mg/m3 (= inf ug/m3)", "finite"], id="overflow-by-conversion"),
    pytest.param(AIR, "pm25", 1.0, None, NOW - AGE_NS - 1, "too_old",
                 ["'pm25'", "2025-06-30T07:59:59.999999999Z", "86400.000000001 s before",
                  "2025-07-01T08:00:00Z", "86400 s"], id="one-ns-too-old"),
    pytest.param(AIR, "pm25", 1.0, None, 0, "too_old", ["1970-01-01T00:00:00Z"],
                 id="epoch"),
    pytest.param(AIR, "pm25", 1.0, None, NOW + FUTURE_NS + 1, "in_future",
                 ["2025-07-01T08:05:00.000000001Z", "300.000000001 s after", "300 s"],
                 id="one-ns-in-future"),
    pytest.param(AIR, "pm25", 1.0, None, 2**63 - 1, "in_future", ["2262-04-11T23:47:16"],
                 id="year-2262"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "metric", "value", "unit", "at", "reason", "fragments"), REJECT)
def test_rejected(
    *,
    source: Source,
    metric: str,
    value: float | bool,
    unit: str | None,
    at: int,
    reason: str,
    fragments: list[str],
) -> None:
    bad = reading(metric, value, unit, at)
    result = both(source, [bad])
    assert result.points == ()
    assert result.rejections == (Rejection(reason, result.rejections[0].message, bad),)
    for fragment in fragments:
        assert fragment in result.rejections[0].message


def test_every_reason_is_covered_and_listed() -> None:
    tabled = {case.values[5] for case in REJECT} | {"duplicate_reading"}
    assert tabled == set(REASONS)
    assert len(REASONS) == len(set(REASONS))


def test_first_broken_rule_wins() -> None:
    # unknown metric, also too old: the metric rule comes first
    assert both(AIR, [reading("nope", math.nan, "x", 0)]).rejections[0].reason == "unknown_metric"
    # not allowed, also wrong unit and type
    assert both(AIR, [reading("probe_up", 1.0, "x")]).rejections[0].reason == "metric_not_allowed"
    # bad unit, also wrong type and too old
    assert both(PROBE, [reading("probe_up", 2.0, "x", 0)]).rejections[0].reason == (
        "unit_not_accepted"
    )
    # wrong type, also too old
    assert both(AIR, [reading("pm25", True, None, 0)]).rejections[0].reason == "wrong_type"
    # out of range, also in the future
    late = reading("pm25", 5000.0, None, NOW + FUTURE_NS + 1)
    assert both(AIR, [late]).rejections[0].reason == "out_of_range"


# --- grouping into points --------------------------------------------------------------------


def test_one_point_per_time_with_registry_tags() -> None:
    result = both(
        AIR,
        [
            reading("pm25", 35.2, "ug/m3"),
            reading("PM10", 0.051, "mg/m3"),
            reading("temp", 30.5, "Cel"),
            reading("humidity", 70.0, "%"),
        ],
    )
    assert result.rejections == ()
    assert result.points == (
        Point(
            measurement="air",
            fields={
                "pm25": 35.2,
                "pm10": 0.051 * 1000,
                "temperature": 30.5,
                "humidity": 70.0,
                "received_ms": NOW_MS,
            },
            time_ns=NOW,
            tags={"province": "01", "source": "01-air-hoan-kiem", "ward": "00070"},
        ),
    )


def test_two_times_two_points_in_order_of_appearance() -> None:
    later, earlier = NOW - 10**9, NOW - 2 * 10**9
    result = both(
        WATER,
        [
            reading("water_level", 10.5, "m", later),
            reading("water_level", 1040.0, "cm", earlier),
        ],
    )
    assert [(p.time_ns, dict(p.fields)) for p in result.points] == [
        (later, {"water_level": 10.5, "received_ms": NOW_MS}),
        (earlier, {"water_level": 10.4, "received_ms": NOW_MS}),
    ]
    for point in result.points:
        assert point.measurement == "water"
        assert point.tags == {"province": "01", "source": "01-water-long-bien", "ward": "00148"}


def test_province_level_source_has_no_ward_tag() -> None:
    result = both(DVC, [reading("dossiers.received", 10.0), reading("dossiers_online", 4.0)])
    (point,) = result.points
    assert point.measurement == "service"
    assert point.tags == {"province": "01", "source": "01-dvc"}
    assert point.fields == {
        "dossiers_received": 10.0,
        "dossiers_online": 4.0,
        "received_ms": NOW_MS,
    }


def test_tags_come_from_the_registry_not_the_payload() -> None:
    spoofed = RawReading("46-air-phu-xuan", "pm25", 1.0, None, NOW)
    (point,) = both(AIR, [spoofed]).points
    assert point.tags == {"province": "01", "source": "01-air-hoan-kiem", "ward": "00070"}


def test_received_ms_is_floor_of_receive_time() -> None:
    received = NOW + 1_999_999
    (point,) = both(AIR, [reading("pm25", 1.0)], received).points
    assert point.fields["received_ms"] == NOW_MS + 1
    assert type(point.fields["received_ms"]) is int


def test_rejected_reading_does_not_reject_the_others() -> None:
    bad = reading("pm25", -1.0)
    result = both(AIR, [reading("pm10", 20.0), bad, reading("o3", 30.0)])
    assert [r.reason for r in result.rejections] == ["out_of_range"]
    assert result.rejections[0].reading is bad
    (point,) = result.points
    assert point.fields == {"pm10": 20.0, "o3": 30.0, "received_ms": NOW_MS}


def test_all_rejected_no_points() -> None:
    result = both(AIR, [reading("nope", 1.0), reading("pm25", 1.0, None, 0)])
    assert result.points == ()
    assert [r.reason for r in result.rejections] == ["unknown_metric", "too_old"]


def test_no_readings() -> None:
    assert both(AIR, []) == Validated((), ())


def test_duplicate_metric_keeps_the_first() -> None:
    first, again, alias = reading("pm25", 10.0), reading("pm25", 10.0), reading("pm2_5", 11.0)
    result = both(AIR, [first, again, alias])
    (point,) = result.points
    assert point.fields == {"pm25": 10.0, "received_ms": NOW_MS}
    assert [(r.reason, r.reading) for r in result.rejections] == [
        ("duplicate_reading", again),
        ("duplicate_reading", alias),
    ]
    message = result.rejections[1].message
    assert "'pm2_5'" in message
    assert "11.0" in message
    assert "10.0" in message
    assert "2025-07-01T08:00:00Z" in message


def test_same_metric_at_two_times_is_not_a_duplicate() -> None:
    result = both(AIR, [reading("pm25", 10.0), reading("pm25", 11.0, None, NOW - 1)])
    assert result.rejections == ()
    assert [p.fields["pm25"] for p in result.points] == [10.0, 11.0]


def test_rejected_first_reading_does_not_block_a_good_second() -> None:
    result = both(AIR, [reading("pm25", 9999.0), reading("pm25", 10.0)])
    assert [r.reason for r in result.rejections] == ["out_of_range"]
    assert result.points[0].fields["pm25"] == 10.0


def test_one_validator_serves_every_source() -> None:
    readings = [reading("pm25", 1.0), reading("water_level", 1.0)]
    air, water = both(AIR, readings), both(WATER, readings)
    assert [r.reason for r in air.rejections] == ["metric_not_allowed"]
    assert [r.reason for r in water.rejections] == ["metric_not_allowed"]
    assert air.points[0].measurement == "air"
    assert water.points[0].measurement == "water"


def test_window_settings_are_checked() -> None:
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="max_age_s"):
            Validator(CATALOG, max_age_s=bad, max_future_s=1.0)
        with pytest.raises(ValueError, match="max_future_s"):
            Validator(CATALOG, max_age_s=1.0, max_future_s=bad)


def test_fractional_window() -> None:
    validator = Validator(CATALOG, max_age_s=0.5, max_future_s=0.0)
    ok = [reading("pm25", 1.0, None, NOW - 500_000_000), reading("pm10", 1.0, None, NOW)]
    late = reading("pm25", 1.0, None, NOW + 1)
    old = reading("o3", 1.0, None, NOW - 500_000_001)
    result = validator.validate(AIR, [*ok, late, old], NOW)
    assert [r.reason for r in result.rejections] == ["in_future", "too_old"]
    assert len(result.points) == 2
    assert result == reference_validate(
        CATALOG, AIR, [*ok, late, old], NOW, max_age_s=0.5, max_future_s=0.0
    )


def test_source_of_unknown_kind_is_a_programming_error() -> None:
    stray = dataclasses.replace(AIR, kind="nope")
    with pytest.raises(KeyError, match="nope"):
        VALIDATOR.validate(stray, [reading("pm25", 1.0)], NOW)


# --- properties: both paths agree, nothing crashes -------------------------------------------

NAMES = sorted({n for m in CATALOG.metrics.values() for n in (m.key, *m.aliases)})
UNITS = sorted({u for m in CATALOG.metrics.values() for u in m.units})
SOURCES = [AIR, WATER, TRAFFIC, DVC, TASKS, PROBE, CATALOG.registry.source("01-data-platform")]
EDGES = [-AGE_NS - 1, -AGE_NS, -AGE_NS + 1, -1, 0, 1, FUTURE_NS - 1, FUTURE_NS, FUTURE_NS + 1]
ODD_VALUES = [0.5, 12.5, -0.0, 1e-300, 1e308, -1e308, 2.0**53 + 2, math.nan, math.inf, -math.inf]


def _edges(bound: float | None) -> list[float]:
    if bound is None:
        return []
    return [bound, math.nextafter(bound, math.inf), math.nextafter(bound, -math.inf)]


def _mostly(usual: st.SearchStrategy[T], unusual: st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    """``usual`` four times out of five."""
    return st.integers(0, 4).flatmap(lambda pick: unusual if pick == 0 else usual)


@st.composite
def messages(draw: st.DrawFn) -> tuple[Source, list[RawReading]]:
    """A source and readings that are mostly plausible for its kind, with every kind of fault.

    Times come from a small pool per message (around the window edges) so that readings share
    timestamps (grouping, duplicates); values cluster around each metric's range and bounds.
    """
    source = draw(st.sampled_from(SOURCES))
    own = [CATALOG.metric(key) for key in CATALOG.kind(source.kind).metrics]
    pool = draw(
        st.lists(
            _mostly(
                st.sampled_from(EDGES).map(lambda offset: NOW + offset),
                st.integers(-2 * AGE_NS, 2 * FUTURE_NS).map(lambda offset: NOW + offset)
                | st.integers(0, 2**63 - 1),
            ),
            min_size=1,
            max_size=3,
        )
    )
    readings = []
    for _ in range(draw(st.integers(0, 12))):
        metric = draw(
            _mostly(st.sampled_from(own), st.sampled_from(list(CATALOG.metrics.values())))
        )
        name = draw(
            _mostly(
                st.sampled_from((metric.key, *metric.aliases)),
                st.sampled_from(NAMES)
                | st.sampled_from(NAMES).map(str.upper)
                | st.text(max_size=9),
            )
        )
        unit = draw(
            _mostly(
                st.none() | st.sampled_from(sorted(metric.units)),
                st.sampled_from(UNITS) | st.text(max_size=6),
            )
        )
        low = -1e6 if metric.minimum is None else metric.minimum
        high = 1e6 if metric.maximum is None else metric.maximum
        plausible = (
            st.booleans()
            if metric.type is MetricType.BOOL
            else st.floats(low, high) | st.integers(int(low), int(high)).map(float)
        )
        odd = (
            st.booleans()
            | st.floats(low - 10, high * 1.1 + 10)
            | st.sampled_from([*_edges(metric.minimum), *_edges(metric.maximum), *ODD_VALUES])
            | st.floats()
            | st.integers(-(2**70), 2**70)  # not a type the parsers produce: must not crash
        )
        value = draw(_mostly(plausible, odd))
        readings.append(RawReading("dev", name, value, unit, draw(st.sampled_from(pool))))
    return source, readings


def _counts_add_up(result: Validated, readings: Sequence[RawReading]) -> None:
    stored = sum(len(point.fields) - 1 for point in result.points)
    assert stored + len(result.rejections) == len(readings)
    assert {r.reason for r in result.rejections} <= set(REASONS)
    for point in result.points:
        encode_point(point)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.sampled_from(EDGES))
def test_fast_and_reference_agree(
    message: tuple[Source, list[RawReading]], receive_offset: int
) -> None:
    source, readings = message
    received = NOW + receive_offset
    fast = VALIDATOR.validate(source, readings, received)
    reference = reference_validate(
        CATALOG, source, readings, received, max_age_s=MAX_AGE_S, max_future_s=MAX_FUTURE_S
    )
    assert fast.points == reference.points
    assert [(r.reason, r.message, r.reading) for r in fast.rejections] == [
        (r.reason, r.message, r.reading) for r in reference.rejections
    ]
    _counts_add_up(fast, readings)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SOURCES),
    st.lists(st.from_type(RawReading), max_size=8),
    st.integers(0, 2**63 - 1),
)
def test_nothing_raises_for_any_reading(
    source: Source, readings: list[RawReading], received: int
) -> None:
    fast = VALIDATOR.validate(source, readings, received)
    reference = reference_validate(
        CATALOG, source, readings, received, max_age_s=MAX_AGE_S, max_future_s=MAX_FUTURE_S
    )
    assert fast == reference
    _counts_add_up(fast, readings)
