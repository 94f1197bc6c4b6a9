"""The IOC JSON parser's fast path (known metric names, bare numbers) reads exactly what the full
path reads: the same readings with the same value types, the same PayloadError reason and message.

``_reference_parse`` is the parser as it was before the fast path (full checks for every metric,
no name cache); every test compares the two on the same bytes, twice in a row so that the second
parse meets the names the first one cached.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.formats import ioc_json
from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.model import (
    DEFAULT_MAX_BYTES,
    NS_PER_S,
    RawReading,
    Value,
    checked_time,
    decode_json,
    number,
    obj,
    required,
    rfc3339_ns,
    show,
    text,
)
from ioc.errors import PayloadError

# --- the reference: the parser without fast path or caches ------------------------------------

_SOURCE = ioc_json._SOURCE
_METRIC = ioc_json._METRIC
_DOCUMENT_KEYS = frozenset({"v", "source", "time", "time_ms", "metrics"})
_METRIC_KEYS = frozenset({"value", "unit"})


def _reference_parse(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[RawReading, ...]:
    message = decode_json(payload, max_bytes)
    if isinstance(message, dict):
        return tuple(_reference_document(message, "$"))
    if isinstance(message, list):
        if not message:
            raise PayloadError("empty_batch", "$: the batch is an empty array")
        readings: list[RawReading] = []
        for index, item in enumerate(message):
            field = f"$[{index}]"
            readings.extend(_reference_document(obj(item, field), field))
        return tuple(readings)
    raise PayloadError("wrong_type", f"$: expected an object or an array, got {show(message)}")


def _reference_document(doc: dict[str, object], where: str) -> list[RawReading]:
    for key in doc:
        if key not in _DOCUMENT_KEYS:
            raise PayloadError("unknown_field", f"{where}.{key}: unknown field")
    version = doc.get("v", 1)
    if version != 1 or isinstance(version, bool):
        raise PayloadError("unsupported_version", f"{where}.v: {show(version)} is not 1")
    source = text(required(doc, "source", f"{where}.source"), f"{where}.source")
    if _SOURCE.fullmatch(source) is None:
        raise PayloadError("invalid_name", f"{where}.source: {show(source)} is not a source id")
    time_ns = _reference_time(doc, where)
    metrics = obj(required(doc, "metrics", f"{where}.metrics"), f"{where}.metrics")
    if not metrics:
        raise PayloadError("no_readings", f"{where}.metrics: no metric in the document")
    readings = []
    for name, raw in metrics.items():
        field = f"{where}.metrics.{name}"
        if _METRIC.fullmatch(name) is None:
            raise PayloadError("invalid_name", f"{field}: {show(name)} is not a metric name")
        value, unit = _reference_metric(raw, field)
        readings.append(RawReading(source, name, value, unit, time_ns))
    return readings


def _reference_time(doc: dict[str, object], where: str) -> int:
    has_text, has_ms = "time" in doc, "time_ms" in doc
    if has_text and has_ms:
        raise PayloadError("ambiguous_time", f"{where}: both time and time_ms are given")
    if has_text:
        return rfc3339_ns(doc["time"], f"{where}.time")
    if has_ms:
        raw = doc["time_ms"]
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise PayloadError(
                "wrong_type", f"{where}.time_ms: expected integer milliseconds, got {show(raw)}"
            )
        return checked_time(raw * (NS_PER_S // 1000), f"{where}.time_ms")
    raise PayloadError("missing_field", f"{where}.time: one of time and time_ms is required")


def _reference_metric(raw: object, field: str) -> tuple[Value, str | None]:
    unit: str | None = None
    if isinstance(raw, dict):
        for key in raw:
            if key not in _METRIC_KEYS:
                raise PayloadError("unknown_field", f"{field}.{key}: unknown field")
        if "unit" in raw:
            unit = text(raw["unit"], f"{field}.unit")
            if not unit or len(unit) > 64 or not unit.isprintable():
                raise PayloadError("invalid_unit", f"{field}.unit: {show(unit)} is not a unit")
        field = f"{field}.value"
        raw = required(raw, "value", field)
    if isinstance(raw, bool):
        return raw, unit
    return number(raw, field), unit


# --- comparing outcomes -------------------------------------------------------------------------


def _exact(value: Value) -> tuple[type, str]:
    """A value with its type and sign: ``True == 1.0`` and ``0.0 == -0.0``, but not here."""
    return type(value), repr(value)


def _outcome(parse: Any, payload: bytes) -> object:
    """Readings compared field by field with exact value types, or the error's reason and text."""
    try:
        readings = parse(payload)
    except PayloadError as error:
        return ("error", error.reason, str(error))
    assert type(readings) is tuple
    assert all(type(r) is RawReading for r in readings)
    return [
        (r.device_ref, r.metric, _exact(r.value), r.unit, type(r.unit), r.time, type(r.time))
        for r in readings
    ]


def _same(payload: bytes) -> None:
    expected = _outcome(_reference_parse, payload)
    assert _outcome(parse_ioc_json, payload) == expected  # names possibly new to the caches
    assert _outcome(parse_ioc_json, payload) == expected  # names now cached


# --- generated messages -------------------------------------------------------------------------

# Raw JSON number and value literals, written as text so that overflow and non-JSON literals reach
# the decoder as a device would send them.
EDGE_LITERALS = [
    "true",
    "false",
    "null",
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1",
    "1.0",
    "20",
    "20.5",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e309",
    "-1e309",
    "5e-324",
    "1e-400",
    "NaN",
    "Infinity",
    "-Infinity",
    "9007199254740992",
    "-9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "123456789012345678901234567890",
    '"1.5"',
    '"20"',
    '"true"',
    '""',
    "[]",
    "[1]",
    "{}",
    '{"value": 1}',
    '{"value": true}',
    '{"value": 1.5, "unit": "ug/m3"}',
    '{"value": -0.0, "unit": "C"}',
    '{"value": "1.5"}',
    '{"value": 1e309}',
    '{"unit": "C"}',
    '{"value": 1, "unit": ""}',
    '{"value": 1, "unit": "\\n"}',
    '{"value": 1, "unit": 5}',
    '{"value": 1, "extra": 2}',
]

NAMES = st.one_of(
    st.sampled_from(
        [
            "pm25",
            "pm10",
            "temperature",
            "dossiers.received",
            "a",
            "A:b-c_d.e",
            "x" * 128,
            "x" * 129,
            "",
            "1abc",
            "_x",
            "pm 25",
            "pm,25",
            "pm=25",
            'pm"25',
            "pm\\25",
            "pm\n25",
            "pm\t25",
            "nhiệt_độ",
            "温度",
            "pm25\u0000",
        ]
    ),
    st.text(max_size=12),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.:-]{0,20}", fullmatch=True),
)

VALUES = st.one_of(
    st.sampled_from(EDGE_LITERALS),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: orjson.dumps(x).decode()),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.booleans().map(lambda b: "true" if b else "false"),
)

SOURCES = st.one_of(
    st.sampled_from(["01-air-hoan-kiem", "dvc-portal.01", "s", "", "-bad", "a b", "đ"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,10}", fullmatch=True),
)

TIMES = st.sampled_from(
    [
        '"time_ms": 1751328000000',
        '"time_ms": 0',
        '"time_ms": -1',
        '"time_ms": 9223372036855',
        '"time_ms": 1.5',
        '"time_ms": true',
        '"time": "2025-07-01T08:00:00.250+07:00"',
        '"time": "2025-07-01T08:00:00"',
        '"time": 1751328000',
        '"time": "2025-07-01T08:00:00Z", "time_ms": 1',
        "",
    ]
)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """One document's JSON text; mostly well formed, sometimes with a wrong key or version."""
    metrics = draw(st.lists(st.tuples(NAMES, VALUES), max_size=6))
    body = ", ".join(f"{orjson.dumps(name).decode()}: {value}" for name, value in metrics)
    parts = [f'"source": {orjson.dumps(draw(SOURCES)).decode()}', f'"metrics": {{{body}}}']
    time_part = draw(TIMES)
    if time_part:
        parts.insert(1, time_part)
    extra = draw(st.sampled_from(["", '"v": 1', '"v": 2', '"v": true', '"v": 1.0', '"typo": 1']))
    if extra:
        parts.insert(draw(st.integers(0, len(parts))), extra)
    return "{" + ", ".join(parts) + "}"


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    """A document, a batch of documents, or something that is neither."""
    shape = draw(st.sampled_from(["document", "batch", "batch", "odd"]))
    if shape == "document":
        return draw(documents()).encode()
    if shape == "batch":
        return ("[" + ", ".join(draw(st.lists(documents(), max_size=4))) + "]").encode()
    return draw(st.sampled_from([b"1", b'"x"', b"null", b"[1]", b"[{}]", b"{", b"[]", b"\xff"]))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
@example(b'{"source": "s", "time_ms": 0, "metrics": {"on": true, "n": 1, "f": -0.0}}')
@example(b'{"source": "s", "time_ms": 0, "metrics": {"big": 1e308, "over": 1e309}}')
@example(b'{"source": "s", "time_ms": 0, "metrics": {"i": 18446744073709551616}}')
@example(b'{"source": "s", "time_ms": 0, "metrics": {"i": 9007199254740993}}')
@example(b'{"source": "s", "time_ms": 0, "metrics": {"n": NaN}}')
@example(b'{"source": "s", "time_ms": 0, "metrics": {"n": "1.5"}}')
@example('{"source": "s", "time_ms": 0, "metrics": {"nhiệt_độ": 1}}'.encode())
@example(b'{"source": "s", "time_ms": 0, "metrics": {"pm 25": 1}}')
def test_fast_path_reads_what_the_reference_reads(payload: bytes) -> None:
    _same(payload)


@pytest.mark.parametrize("literal", EDGE_LITERALS)
def test_each_edge_value_after_its_name_is_known(literal: str) -> None:
    known = b'{"source": "s", "time_ms": 0, "metrics": {"pm25": 1.5}}'
    parse_ioc_json(known)  # pm25 is now a known name: the fast path sees it first
    _same(b'{"source": "s", "time_ms": 0, "metrics": {"pm25": %b}}' % literal.encode())


def test_booleans_stay_booleans_and_negative_zero_keeps_its_sign() -> None:
    payload = b'{"source": "s", "time_ms": 0, "metrics": {"on": true, "off": false, "z": -0.0}}'
    for _ in range(2):
        on, off, zero = parse_ioc_json(payload)
        assert on.value is True
        assert off.value is False
        assert type(zero.value) is float
        assert math.copysign(1.0, zero.value) == -1.0


@pytest.mark.parametrize(
    ("literal", "reason"),
    [("1e309", "not_finite"), ("NaN", "invalid_json"), ("9007199254740993", "value_out_of_range")],
)
def test_refusals_keep_their_reason_once_the_name_is_known(literal: str, reason: str) -> None:
    parse_ioc_json(b'{"source": "s", "time_ms": 0, "metrics": {"pm25": 1}}')
    payload = b'{"source": "s", "time_ms": 0, "metrics": {"pm25": %b}}' % literal.encode()
    with pytest.raises(PayloadError) as caught:
        parse_ioc_json(payload)
    assert caught.value.reason == reason
    _same(payload)


def test_only_valid_names_are_cached() -> None:
    with pytest.raises(PayloadError):
        parse_ioc_json(b'{"source": "s", "time_ms": 0, "metrics": {"not valid": 1}}')
    with pytest.raises(PayloadError):
        parse_ioc_json(b'{"source": "not valid", "time_ms": 0, "metrics": {"m": 1}}')
    assert "not valid" not in ioc_json._known_metrics
    assert "not valid" not in ioc_json._known_sources


def test_name_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # A sender of endless distinct names must not grow the collector's memory.
    monkeypatch.setattr(ioc_json, "_KNOWN_NAMES_MAX", 50)
    for n in range(400):
        payload = b'{"source": "src-%d", "time_ms": 0, "metrics": {"m%d": 1}}' % (n, n)
        assert parse_ioc_json(payload) == (RawReading(f"src-{n}", f"m{n}", 1.0, None, 0),)
        assert len(ioc_json._known_metrics) <= 50
        assert len(ioc_json._known_sources) <= 50
    _same(b'{"source": "src-0", "time_ms": 0, "metrics": {"m0": 2, "m399": true}}')


def test_default_bound_is_finite() -> None:
    assert 0 < ioc_json._KNOWN_NAMES_MAX <= 100_000
