"""SenML (RFC 8428) parser: every example pack in shared/, then each way a pack can be wrong."""

from __future__ import annotations

import pytest

from ingest.formats.model import RawReading
from ingest.formats.senml import parse_senml
from ioc.errors import PayloadError
from tests.ingest.formats_support import NOW, PAYLOADS, utc_ns

SENML = PAYLOADS / "senml"
URN = "urn:dev:ow:10e2073a01080063"
S = 10**9  # ns per second
BT_2010 = 1_276_020_076 * S  # bt / t of RFC 8428 section 2 and 5.1.2: 2010-06-08T18:01:16Z
BT_2011 = 1_320_067_464 * S  # 2011-10-31T13:24:24Z, sections 5.1.2 (stream), 5.1.3, 5.1.4
BT_LIGHTS = 1_320_078_429 * S  # 2011-10-31T16:27:09Z, sections 5.1.6 and 5.1.7


def _r(device: str, metric: str, value: float | bool, unit: str | None, time: int) -> RawReading:
    return RawReading(device, metric, value, unit, time)


# Humidity, longitude and latitude every minute, then a battery level: sections 5.1.3 and 5.1.4.
_POSITION = tuple(
    _r(URN, "", value, unit, BT_2011 + seconds * S)
    for seconds, unit, value in [
        (0, "%RH", 20.0), (0, "lon", 24.30621), (0, "lat", 60.07965),
        (60, "%RH", 20.3), (60, "lon", 24.30622), (60, "lat", 60.07965),
        (120, "%RH", 20.7), (120, "lon", 24.30623), (120, "lat", 60.07966),
        (150, "%EL", 98.0),
        (180, "%RH", 21.2), (180, "lon", 24.30628), (180, "lat", 60.07967),
    ]
)  # fmt: skip

_TWO_READINGS = (
    _r(URN, "", 23.5, "Cel", BT_2010),
    _r(URN, "", 23.6, "Cel", BT_2010 + 15 * S),
)

EXPECTED: dict[str, tuple[RawReading, ...]] = {
    "rfc8428_5.1.1_single_datapoint.json": (_r(URN, "", 23.1, "Cel", NOW),),
    "rfc8428_5.1.2_multiple_datapoints_voltage_current.json": (
        _r(URN, "voltage", 120.1, "V", NOW),
        _r(URN, "current", 1.2, "A", NOW),
    ),
    # bt = 1.276020076001e+09 s: the .001 must survive as exactly 1 ms; bn lacks a '3' in the RFC.
    "rfc8428_5.1.2_multiple_datapoints_timed_current.json": (
        _r("urn:dev:ow:10e2073a0108006", "voltage", 120.1, "V", BT_2010 + 1_000_000),
        *(
            _r("urn:dev:ow:10e2073a0108006", "current", value, "A", BT_2010 + 1_000_000 - ago * S)
            for ago, value in [(5, 1.2), (4, 1.3), (3, 1.4), (2, 1.5), (1, 1.6), (0, 1.7)]
        ),
    ),
    "rfc8428_5.1.2_sensml_stream.json": tuple(
        _r(URN, "", value, "%RH", BT_2011 + seconds * S)
        for seconds, value in [
            (0, 21.2),
            (10, 21.3),
            (20, 21.4),
            (30, 21.4),
            (40, 21.5),
            (50, 21.5),
            (60, 21.5),
            (70, 21.6),
            (80, 21.7),
            (90, 21.5),
            (91, 21.5),
            (92, 21.5),
        ]
    ),
    "rfc8428_5.1.3_multiple_measurements_humidity_position.json": _POSITION,
    "rfc8428_5.1.4_resolved_data.json": _POSITION,
    # "label" (vs) and "nfv-reader" (vd) are not readings.
    "rfc8428_5.1.5_multiple_data_types.json": (
        _r(URN, "temp", 23.1, "Cel", NOW),
        _r(URN, "open", False, None, NOW),
    ),
    "rfc8428_5.1.6_collection_of_resources.json": (
        _r("2001:db8::2", "temperature", 25.2, "Cel", BT_LIGHTS),
        _r("2001:db8::2", "humidity", 30.0, "%RH", BT_LIGHTS),
        _r("2001:db8::1", "temperature", 12.3, "Cel", BT_LIGHTS),
        _r("2001:db8::1", "humidity", 67.0, "%RH", BT_LIGHTS),
    ),
    "rfc8428_5.1.7_lights_dim_then_off.json": (
        _r("2001:db8::3", "", 0.5, "/", BT_LIGHTS),
        _r("2001:db8::4", "", 0.5, "/", BT_LIGHTS),
        _r("2001:db8::3", "", 0.0, "/", BT_LIGHTS + 100_000_000),
        _r("2001:db8::4", "", 0.0, "/", BT_LIGHTS + 100_000_000),
    ),
    "rfc8428_5.1.7_lights_on_timed.json": (
        _r("2001:db8::3", "", 1.0, "/", BT_LIGHTS),
        _r("2001:db8::4", "", 1.0, "/", BT_LIGHTS),
    ),
    "rfc8428_5.1.7_setting_actuator_thermostat.json": (
        _r(URN, "temp", 23.1, "Cel", NOW),
        _r(URN, "heat", 1.0, "/", NOW),
        _r(URN, "fan", 0.0, "/", NOW),
    ),
    "rfc8428_sec2_two_readings_base_name.json": _TWO_READINGS,
    "rfc8428_sec2_two_readings_full_names.json": _TWO_READINGS,
}


def test_every_senml_file_has_expectations() -> None:
    assert sorted(path.name for path in SENML.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rfc_examples(name: str) -> None:
    assert parse_senml((SENML / name).read_bytes(), now_ns=NOW) == EXPECTED[name]


def test_time_constants_match_the_calendar() -> None:
    assert utc_ns("2010-06-08T18:01:16") == BT_2010
    assert utc_ns("2011-10-31T13:24:24") == BT_2011
    assert utc_ns("2011-10-31T16:27:09") == BT_LIGHTS


def _one(pack: bytes) -> RawReading:
    readings = parse_senml(pack, now_ns=NOW)
    assert len(readings) == 1
    return readings[0]


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        ("0", NOW),
        ("-5", NOW - 5 * S),
        ("-5.5", NOW - 5_500_000_000),
        ("10.25", NOW + 10_250_000_000),
        ("268435455", NOW + 268_435_455 * S),  # 2**28 - 1: still relative
        ("268435456", 268_435_456 * S),  # 2**28: absolute, 1978
        ("1.7e9", 1_700_000_000 * S),
        # Float times resolve to the microsecond: a double there is spaced 238 ns apart.
        ("1700000000.123456789", 1_700_000_000_123_457_000),
        ("1700000000.000001", 1_700_000_000_000_001_000),
        ("-0.000001", NOW - 1000),
    ],
)
def test_relative_and_absolute_times(t: str, expected: int) -> None:
    assert _one(b'[{"n":"a","v":1,"t":' + t.encode() + b"}]").time == expected


def test_base_time_and_time_add_before_the_relative_test() -> None:
    pack = b'[{"bt":-100,"n":"a","v":1},{"bt":268435000,"n":"a","t":456,"v":2}]'
    assert [r.time for r in parse_senml(pack, now_ns=NOW)] == [NOW - 100 * S, 268_435_456 * S]


@pytest.mark.parametrize(
    ("pack", "expected"),
    [
        (b'[{"bn":"d/","bv":10,"n":"x","v":1.5}]', _r("d", "x", 11.5, None, NOW)),
        (b'[{"bn":"d:","bu":"W","n":"p","u":"kW","v":2}]', _r("d", "p", 2.0, "kW", NOW)),
        (b'[{"bn":"d","n":"e","bs":100,"s":5,"u":"J"}]', _r("d", "e#sum", 105.0, "J", NOW)),
        (b'[{"n":"a","v":1,"v":2}]', _r("a", "", 2.0, None, NOW)),  # orjson: last key wins
        (b'[{"n":"a","v":1,"ext":{"x":[1]}}]', _r("a", "", 1.0, None, NOW)),  # unknown: ignored
        (b'[{"n":"a","vb":true,"ut":60}]', _r("a", "", True, None, NOW)),
        (b'[{"bver":10,"n":"a","v":-0.5}]', _r("a", "", -0.5, None, NOW)),
    ],
)
def test_resolution_rules(pack: bytes, expected: RawReading) -> None:
    assert _one(pack) == expected


def test_value_and_sum_in_one_record_give_two_readings() -> None:
    readings = parse_senml(b'[{"bn":"m:","n":"flow","u":"m3/s","v":0.2,"s":40}]', now_ns=NOW)
    assert readings == (
        _r("m", "flow", 0.2, "m3/s", NOW),
        _r("m", "flow#sum", 40.0, "m3/s", NOW),
    )


def test_base_values_carry_to_later_records_until_replaced() -> None:
    pack = b'[{"bn":"a:","bu":"V","bv":1,"n":"x","v":1},{"n":"y","v":1},{"bn":"b:","n":"z","v":1}]'
    assert parse_senml(pack, now_ns=NOW) == (
        _r("a", "x", 2.0, "V", NOW),
        _r("a", "y", 2.0, "V", NOW),
        _r("b", "z", 2.0, "V", NOW),
    )


@pytest.mark.parametrize(
    ("pack", "expected"),
    [
        (b'{"n":"a","v":1}', "wrong_type"),  # a pack is an array, even of one record
        (b'[{"n":"a","v":1}', "invalid_json"),
        (b'[{"n":"a","v":NaN}]', "invalid_json"),
        (b'[{"n":"a","v":Infinity}]', "invalid_json"),
        (b'[{"n":"a","v":1e309}]', "not_finite"),
        (b'[{"n":"a","bv":1.7e308,"v":1.7e308}]', "not_finite"),
        (b'[{"n":"a","s":-1.7e308,"bs":-1.7e308}]', "not_finite"),
        (b'[{"n":"a","v":9007199254740993}]', "value_out_of_range"),
        (b'[{"n":"\xff","v":1}]', "invalid_utf8"),
        (b'[{"n":"a","v":"1"}]', "wrong_type"),
        (b'[{"n":"a","v":true}]', "wrong_type"),
        (b'[{"n":"a","vb":1}]', "wrong_type"),
        (b'[{"n":"a","vs":1}]', "wrong_type"),
        (b'[{"n":"a","vd":null}]', "wrong_type"),
        (b'[{"n":1,"v":1}]', "wrong_type"),
        (b'[{"bn":["a"],"v":1}]', "wrong_type"),
        (b'[{"n":"a","u":5,"v":1}]', "wrong_type"),
        (b'[{"n":"a","t":"now","v":1}]', "wrong_type"),
        (b'[{"bt":false,"n":"a","v":1}]', "wrong_type"),
        (b'[{"n":"a","bver":"10","v":1}]', "wrong_type"),
        (b'[{"n":"a","bver":11,"v":1}]', "unsupported_version"),
        (b'[{"n":"a","v":1,"x_":1}]', "unsupported_field"),
        (b'[{"n":"a","v":1,"vb":true}]', "multiple_values"),
        (b'[{"n":"a","vs":"x","vd":"aGk"}]', "multiple_values"),
        (b'[{"v":1}]', "invalid_name"),  # no name at all
        (b'[{"n":"a b","v":1}]', "invalid_name"),
        (b'[{"bn":"/dev/","n":"a","v":1}]', "invalid_name"),
        (b'[{"n":"a","vs":"only text"}]', "no_readings"),
        (b'[{"bn":"a"}]', "no_readings"),
        (b"[[{}]]", "wrong_type"),
        (b"[{}, 1]", "wrong_type"),
        (b'[{"n":"a","v":1,"t":1e10}]', "time_out_of_range"),  # year 2286
        (b'[{"n":"a","v":1,"t":1e300}]', "time_out_of_range"),
        (b'[{"n":"a","v":1,"bt":-2e9}]', "time_out_of_range"),  # 2e9 s before now: 1962
        (b'[{"n":"a","v":1,"t":-99999999999999999999999}]', "time_out_of_range"),
        (b'[{"n":"a","v":1,"bt":99999999999999999999999,"t":0.5}]', "time_out_of_range"),
        (b'[{"n":"a","v":1,"bt":1e300,"t":-1e300}]', "time_out_of_range"),
        (b'[{"n":"a","v":1,"t":9223372036.854775807}]', "time_out_of_range"),
    ],
)
def test_bad_packs(pack: bytes, expected: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_senml(pack, now_ns=NOW)
    assert caught.value.reason == expected


def test_error_names_record_and_value() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_senml(b'[{"n":"a","v":1},{"n":"b","v":"hot"}]', now_ns=NOW)
    assert "$[1].v" in str(caught.value)
    assert "'hot'" in str(caught.value)
