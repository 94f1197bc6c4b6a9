"""IOC JSON parser: documents, batches, both time forms, and each way a message can be wrong."""

from __future__ import annotations

import pytest

from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.model import RawReading
from ioc.errors import PayloadError
from tests.ingest.formats_support import utc_ns

T0 = utc_ns("2025-07-01T01:00:00", 250_000_000)  # 2025-07-01T08:00:00.250+07:00


def test_one_document_with_several_metric_shapes() -> None:
    payload = b"""{
      "v": 1,
      "source": "79-aqi-0001",
      "time": "2025-07-01T08:00:00.250+07:00",
      "metrics": {
        "pm25": {"value": 35.2, "unit": "ug/m3"},
        "pm10": 51,
        "pump_on": true,
        "no2": {"value": 0}
      }
    }"""
    assert parse_ioc_json(payload) == (
        RawReading("79-aqi-0001", "pm25", 35.2, "ug/m3", T0),
        RawReading("79-aqi-0001", "pm10", 51.0, None, T0),
        RawReading("79-aqi-0001", "pump_on", True, None, T0),
        RawReading("79-aqi-0001", "no2", 0.0, None, T0),
    )


def test_service_metrics_batch_with_time_ms() -> None:
    # A departmental feed backfilling two days of counts; version "v" may be left out.
    payload = b"""[
      {"source": "dvc-portal.01", "time_ms": 1751328000000,
       "metrics": {"dossiers.received": 1234, "dossiers.on_time": 1200}},
      {"source": "dvc-portal.01", "time_ms": 1751414400123,
       "metrics": {"dossiers.received": 1301}}
    ]"""
    day1 = utc_ns("2025-07-01T00:00:00")
    day2 = utc_ns("2025-07-02T00:00:00", 123_000_000)
    assert parse_ioc_json(payload) == (
        RawReading("dvc-portal.01", "dossiers.received", 1234.0, None, day1),
        RawReading("dvc-portal.01", "dossiers.on_time", 1200.0, None, day1),
        RawReading("dvc-portal.01", "dossiers.received", 1301.0, None, day2),
    )


def test_values_are_floats_so_one_field_keeps_one_type() -> None:
    first, second = parse_ioc_json(
        b'[{"source":"s","time_ms":0,"metrics":{"t":20}},'
        b'{"source":"s","time_ms":1,"metrics":{"t":20.5}}]'
    )
    assert type(first.value) is float
    assert type(second.value) is float


def test_duplicate_keys_keep_the_last_value() -> None:
    # orjson cannot report duplicates; this pins the documented behaviour.
    payload = b'{"source":"s","time_ms":0,"metrics":{"pm25":1,"pm25":2}}'
    assert parse_ioc_json(payload) == (RawReading("s", "pm25", 2.0, None, 0),)


def _doc(**fields: str) -> bytes:
    """A document with defaults, each field given as raw JSON text (or "" to leave it out)."""
    base = {"source": '"s1"', "time": '"2025-07-01T00:00:00Z"', "metrics": '{"pm25": 3}'}
    base.update(fields)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in base.items() if v) + "}").encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_doc(source=""), "missing_field"),
        (_doc(metrics=""), "missing_field"),
        (_doc(time=""), "missing_field"),
        (_doc(metrics='{"pm25": {"unit": "ug/m3"}}'), "missing_field"),
        (_doc(source="7"), "wrong_type"),
        (_doc(source="null"), "wrong_type"),
        (_doc(source='"bad source"'), "invalid_name"),
        (_doc(source='""'), "invalid_name"),
        (_doc(source='"-s"'), "invalid_name"),
        (_doc(metrics="[]"), "wrong_type"),
        (_doc(metrics="{}"), "no_readings"),
        (_doc(metrics='{"pm25": "3"}'), "wrong_type"),
        (_doc(metrics='{"pm25": null}'), "wrong_type"),
        (_doc(metrics='{"pm25": [3]}'), "wrong_type"),
        (_doc(metrics='{"pm25": {"value": "3"}}'), "wrong_type"),
        (_doc(metrics='{"pm25": NaN}'), "invalid_json"),
        (_doc(metrics='{"pm25": Infinity}'), "invalid_json"),
        (_doc(metrics='{"pm25": -Infinity}'), "invalid_json"),
        (_doc(metrics='{"pm25": 1e309}'), "not_finite"),
        (_doc(metrics='{"pm25": 18446744073709551615}'), "value_out_of_range"),  # 2**64 - 1
        (_doc(metrics='{"pm25": -9007199254740993}'), "value_out_of_range"),
        (_doc(metrics='{"2pm": 3}'), "invalid_name"),
        (_doc(metrics='{"pm 25": 3}'), "invalid_name"),
        (_doc(metrics='{"": 3}'), "invalid_name"),
        (_doc(metrics='{"pm25": {"value": 3, "unit": ""}}'), "invalid_unit"),
        (_doc(metrics='{"pm25": {"value": 3, "unit": "ug\\nm3"}}'), "invalid_unit"),
        (_doc(metrics='{"pm25": {"value": 3, "unit": 5}}'), "wrong_type"),
        (_doc(metrics='{"pm25": {"value": 3, "units": "x"}}'), "unknown_field"),
        (_doc(extra="1"), "unknown_field"),
        (_doc(v="2"), "unsupported_version"),
        (_doc(v="true"), "unsupported_version"),
        (_doc(v='"1"'), "unsupported_version"),
        (_doc(time_ms="0"), "ambiguous_time"),
        (_doc(time="1751328000"), "wrong_type"),  # a bare number could be s or ms: refused
        (_doc(time='"2025-07-01T00:00:00"'), "invalid_time"),  # no offset
        (_doc(time='"1751328000"'), "invalid_time"),
        (_doc(time='"2025-06-31T00:00:00Z"'), "invalid_time"),
        (_doc(time='"1969-12-31T23:59:59Z"'), "time_out_of_range"),
        (_doc(time='"2300-01-01T00:00:00Z"'), "time_out_of_range"),
        (_doc(time="", time_ms="1.5e12"), "wrong_type"),
        (_doc(time="", time_ms='"1751328000000"'), "wrong_type"),
        (_doc(time="", time_ms="true"), "wrong_type"),
        (_doc(time="", time_ms="-1"), "time_out_of_range"),
        (_doc(time="", time_ms="9223372036855"), "time_out_of_range"),  # past 2262
        (_doc(source='"s1"').replace(b"s1", b"s\xff"), "invalid_utf8"),
        (b'{"source":"s1","time":"2025-07-01T00:00:00Z","metrics":{"pm25":3}', "invalid_json"),
        (b'[{"source":"s1","time_ms":0,"metrics":{"a":1}}, "x"]', "wrong_type"),
        (b"[]", "empty_batch"),
        (
            _doc(metrics='{"a":' * 300 + "1" + "}" * 300),
            "unknown_field",
        ),  # deep, within orjson's limit
    ],
)
def test_bad_messages(payload: bytes, expected: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_ioc_json(payload)
    assert caught.value.reason == expected


def test_defaults_of_the_bad_message_table_are_valid() -> None:
    assert parse_ioc_json(_doc()) == (
        RawReading("s1", "pm25", 3.0, None, utc_ns("2025-07-01T00:00:00")),
    )


def test_one_bad_document_rejects_the_whole_batch_naming_it() -> None:
    payload = b'[{"source":"a","time_ms":0,"metrics":{"x":1}},{"source":"b","time_ms":0}]'
    with pytest.raises(PayloadError) as caught:
        parse_ioc_json(payload)
    assert caught.value.reason == "missing_field"
    assert "$[1].metrics" in str(caught.value)


def test_error_names_field_and_value() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_ioc_json(_doc(metrics='{"pm25": "high"}'))
    assert "$.metrics.pm25" in str(caught.value)
    assert "'high'" in str(caught.value)
