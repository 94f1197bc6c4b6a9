"""Rules every payload parser shares: decoding limits, RFC 3339 times, and never crashing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.lorawan import parse_chirpstack, parse_tts
from ingest.formats.model import DEFAULT_MAX_BYTES, RawReading, rfc3339_ns
from ingest.formats.senml import parse_senml
from ioc.errors import PayloadError
from tests.ingest.formats_support import NOW, PAYLOADS, utc_ns


def _ioc(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    return parse_ioc_json(payload, max_bytes=max_bytes)


def _senml(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    return parse_senml(payload, now_ns=NOW, max_bytes=max_bytes)


def _tts(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    return parse_tts(payload, max_bytes=max_bytes)


def _chirpstack(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> object:
    return parse_chirpstack(payload, max_bytes=max_bytes)


PARSERS: dict[str, Callable[..., object]] = {
    "ioc_json": _ioc,
    "senml": _senml,
    "tts": _tts,
    "chirpstack": _chirpstack,
}

# A valid message of each format, to truncate and to grow.
VALID = {
    "ioc_json": b'{"source":"s1","time":"2025-07-01T00:00:00Z","metrics":{"pm25":3}}',
    "senml": b'[{"bn":"dev:","n":"temp","u":"Cel","v":23.1}]',
    "tts": (PAYLOADS / "lorawan" / "ttn_v3_uplink_docs_data_formats.json").read_bytes(),
    "chirpstack": (
        PAYLOADS / "lorawan" / "chirpstack_v4_up_rotterdam_milesight_em300_sld_leak.json"
    ).read_bytes(),
}

GENERIC_BAD = [
    pytest.param(b"", "invalid_json", id="empty"),
    pytest.param(b"NaN", "invalid_json", id="nan-literal"),
    pytest.param(b"[Infinity]", "invalid_json", id="infinity-literal"),
    pytest.param(b"[-Infinity]", "invalid_json", id="minus-infinity-literal"),
    pytest.param(b"[1e309]", "not_finite", id="1e309"),
    pytest.param(b"[-1e309]", "not_finite", id="minus-1e309"),
    pytest.param(b'["\xff\xfe"]', "invalid_utf8", id="non-utf8"),
    pytest.param(b'["\xed\xa0\x80"]', "invalid_utf8", id="utf8-surrogate"),
    pytest.param(b"\xef\xbb\xbf[]", "invalid_json", id="bom"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "too_deep", id="deep-nesting"),
    pytest.param(b"[]", "empty_batch", id="empty-batch"),
    pytest.param(b"[] []", "invalid_json", id="trailing-data"),
    pytest.param(b"42", "wrong_type", id="bare-number"),
    pytest.param(b'"text"', "wrong_type", id="bare-string"),
    pytest.param(b"null", "wrong_type", id="null"),
    pytest.param(b"[42]", "wrong_type", id="batch-of-number"),
]


def reason(parse: Callable[..., object], payload: bytes, **kwargs: int) -> str:
    """Run a parser that must refuse the payload and return its reason code."""
    with pytest.raises(PayloadError) as caught:
        parse(payload, **kwargs)
    return caught.value.reason


@pytest.mark.parametrize("name", PARSERS)
@pytest.mark.parametrize(("payload", "expected"), GENERIC_BAD)
def test_generic_bad_payloads_have_reasons(name: str, payload: bytes, expected: str) -> None:
    assert reason(PARSERS[name], payload) == expected


@pytest.mark.parametrize("name", PARSERS)
@pytest.mark.parametrize("cut", [1, 2, 3])
def test_truncated_json_is_invalid_json(name: str, cut: int) -> None:
    whole = VALID[name]
    PARSERS[name](whole)  # the untruncated message is accepted
    assert reason(PARSERS[name], whole[: len(whole) * cut // 4]) == "invalid_json"


@pytest.mark.parametrize("name", PARSERS)
def test_size_limit_defaults_to_256_kib(name: str) -> None:
    assert DEFAULT_MAX_BYTES == 256 * 1024
    at_limit = b"[" + b" " * (DEFAULT_MAX_BYTES - 2) + b"]"
    assert reason(PARSERS[name], at_limit) == "empty_batch"
    assert reason(PARSERS[name], at_limit + b" ") == "too_large"


@pytest.mark.parametrize("name", PARSERS)
def test_size_limit_is_a_parameter(name: str) -> None:
    whole = VALID[name]
    PARSERS[name](whole, max_bytes=len(whole))
    assert reason(PARSERS[name], whole, max_bytes=len(whole) - 1) == "too_large"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-02-12T15:15:46.014773143Z", utc_ns("2020-02-12T15:15:46", 14_773_143)),
        ("2024-12-05T08:21:51.125+00:00", utc_ns("2024-12-05T08:21:51", 125_000_000)),
        ("2025-07-01T08:00:00+07:00", utc_ns("2025-07-01T01:00:00")),
        ("2025-07-01T00:30:00.5-05:30", utc_ns("2025-07-01T06:00:00", 500_000_000)),
        ("2025-07-01t00:00:00z", utc_ns("2025-07-01T00:00:00")),
        ("2025-07-01T00:00:00-00:00", utc_ns("2025-07-01T00:00:00")),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T07:00:00+07:00", 0),
        ("2024-02-29T23:59:59.999999999Z", utc_ns("2024-02-29T23:59:59", 999_999_999)),
    ],
)
def test_rfc3339_times_keep_every_nanosecond(text: str, expected: int) -> None:
    assert rfc3339_ns(text, "time") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-07-01T00:00:00", "invalid_time"),  # no offset: local time is ambiguous
        ("2025-07-01 00:00:00Z", "invalid_time"),
        ("2025-07-01", "invalid_time"),
        ("2025-02-29T00:00:00Z", "invalid_time"),
        ("2025-13-01T00:00:00Z", "invalid_time"),
        ("2025-07-01T24:00:00Z", "invalid_time"),
        ("2016-12-31T23:59:60Z", "invalid_time"),  # leap seconds have no epoch value
        ("2025-07-01T00:00:00+24:00", "invalid_time"),
        ("2025-07-01T00:00:00.1234567890Z", "invalid_time"),
        ("0000-01-01T00:00:00Z", "time_out_of_range"),
        ("1969-12-31T23:59:59.999999999Z", "time_out_of_range"),
        ("1970-01-01T00:00:00+00:01", "time_out_of_range"),
        ("0001-01-01T00:00:00Z", "time_out_of_range"),
        ("2262-04-11T23:47:16.854775808Z", "time_out_of_range"),  # 2**63 ns
        ("9999-12-31T23:59:59Z", "time_out_of_range"),
    ],
)
def test_bad_rfc3339_times(text: str, expected: str) -> None:
    with pytest.raises(PayloadError) as caught:
        rfc3339_ns(text, "time")
    assert caught.value.reason == expected
    assert "time" in str(caught.value)


def test_last_representable_time() -> None:
    assert rfc3339_ns("2262-04-11T23:47:16.854775807Z", "t") == 2**63 - 1


def test_readings_are_immutable() -> None:
    reading = RawReading("d", "m", 1.0, None, 0)
    with pytest.raises(AttributeError):
        reading.value = 2.0  # type: ignore[misc]


def _call(name: str, payload: bytes) -> None:
    """Run a parser on anything; only PayloadError may come out."""
    try:
        PARSERS[name](payload)
    except PayloadError as exc:
        assert exc.reason
        assert exc.reason == exc.reason.lower()
        assert " " not in exc.reason


@pytest.mark.parametrize("name", PARSERS)
@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_payload_error(name: str, payload: bytes) -> None:
    _call(name, payload)


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
_KEYS = st.sampled_from(
    [
        "v", "source", "time", "time_ms", "metrics", "value", "unit",
        "bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "s", "t", "ut", "vs", "vb", "vd", "x_",
        "end_device_ids", "device_id", "received_at", "uplink_message", "decoded_payload",
        "join_accept", "deviceInfo", "devEui", "fCnt", "object", "code", "pm25",
    ]
)  # fmt: skip
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=4), inner),
    max_leaves=20,
)


@pytest.mark.parametrize("name", PARSERS)
@settings(max_examples=300, deadline=None)
@given(document=_JSON)
def test_arbitrary_json_raises_only_payload_error(name: str, document: object) -> None:
    _call(name, json.dumps(document).encode())  # json, not orjson: it writes ints past 64 bits
