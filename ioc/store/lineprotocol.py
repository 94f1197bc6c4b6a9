"""Line protocol: the one place where points become text for InfluxDB.

Rules (InfluxDB 1.x/2.x line protocol, as its parser actually scans a line):

* measurement: ``,`` and space are backslash-escaped;
* tag keys, tag values and field keys: ``,``, ``=`` and space are backslash-escaped;
* string field values: double-quoted, with ``"`` and ``\\`` backslash-escaped; a newline inside
  the quotes is part of the value (the parser does not end a line inside a quoted field);
* everything else is written as is (UTF-8).

Line protocol has no escape for a newline, carriage return or other control character outside a
quoted string, and the parser skips the character after *any* backslash when it looks for the
end of a key, so a trailing or stray backslash in a name can swallow the separator that follows
it. Such names are therefore refused with :class:`LineProtocolError` instead of being written in
a form that could be read back as a different point, measurement or tag. Names are also refused
when InfluxDB would silently drop or misread them: empty names, a measurement starting with ``#``
(a comment line), and the reserved keys ``time``, ``_measurement`` and ``_field``.

Every point carries an explicit timestamp in nanoseconds: a rewrite of the same point is then
idempotent, which the store relies on when it re-sends parts of a batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter

from ioc.errors import LineProtocolError

FieldValue = float | int | bool | str

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FORBIDDEN_IN_NAME = re.compile(r"[\x00-\x1f\x7f\\]")
_RESERVED_KEYS = frozenset({"time", "_measurement", "_field"})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


@dataclass(frozen=True, slots=True)
class Point:
    """One point: measurement, tags, fields and a timestamp in Unix nanoseconds."""

    measurement: str
    fields: Mapping[str, FieldValue]
    time_ns: int
    tags: Mapping[str, str] = field(default_factory=dict)


def time_ns(moment: datetime) -> int:
    """Unix nanoseconds of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise LineProtocolError(f"timestamp {moment.isoformat()!r} has no timezone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _check_type(kind: str, name: object) -> None:
    if not isinstance(name, str):
        raise LineProtocolError(f"{kind} {name!r} is not a string")


def _check_name(kind: str, name: str) -> None:
    if not name:
        raise LineProtocolError(f"{kind} is empty")
    bad = _FORBIDDEN_IN_NAME.search(name)
    if bad:
        raise LineProtocolError(
            f"{kind} {name!r} contains {bad.group()!r}: line protocol cannot carry a backslash or "
            "control character there unambiguously"
        )
    if not _is_utf8(name):
        raise LineProtocolError(f"{kind} {name!r} is not valid Unicode text")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Names repeat endlessly in telemetry (measurements, keys, ward and source codes): caching their
# checked, escaped form makes encoding several times faster. A refusal raises and is not cached.
def escape_measurement(name: str) -> str:
    """Measurement name as line protocol text."""
    _check_type("measurement", name)
    return _escape_measurement(name)


@lru_cache(maxsize=65_536)
def _escape_measurement(name: str) -> str:
    _check_name("measurement", name)
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r} starts with '#', which makes a comment line")
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_key(kind: str, name: str) -> str:
    """Tag key, tag value or field key as line protocol text (``kind`` names it in errors)."""
    _check_type(kind, name)
    return _escape_key(kind, name)


@lru_cache(maxsize=65_536)
def _escape_key(kind: str, name: str) -> str:
    _check_name(kind, name)
    if kind != "tag value" and name in _RESERVED_KEYS:
        raise LineProtocolError(f"{kind} {name!r} is reserved by InfluxDB")
    return name.translate(_KEY_ESCAPES)


def format_field_value(key: str, value: FieldValue) -> str:
    """Field value as line protocol text: float, ``<n>i`` integer, boolean or quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise LineProtocolError(f"field {key!r}: integer {value} is outside the int64 range")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field {key!r}: {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        if not _is_utf8(value):
            raise LineProtocolError(f"field {key!r}: value is not valid Unicode text")
        return '"' + value.translate(_STRING_ESCAPES) + '"'
    raise LineProtocolError(f"field {key!r}: unsupported type {type(value).__name__}")


# Field keys repeat in every point: a dict look-up of the escaped key is cheaper than escape_key's
# check and cache. Bounded like escape_key's cache (cleared when full).
_FIELD_KEYS_MAX = 65_536
_field_keys: dict[str, str] = {}


def _remember_field_key(key: str, escaped: str) -> None:
    if len(_field_keys) >= _FIELD_KEYS_MAX:
        _field_keys.clear()
    _field_keys[key] = escaped


def _series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,tag=value,...`` with tags sorted by key, escaped and checked."""
    items = tuple(tags.items())
    try:
        return _cached_series_key(measurement, items)
    except TypeError:  # an unhashable name: let the uncached path say what is wrong with it
        return _build_series_key(measurement, items)


# The tag set repeats for every point of a source: caching its escaped text per (measurement, every
# tag key and value) saves one escape per name per point. A refusal raises and is not cached.
@lru_cache(maxsize=65_536)
def _cached_series_key(measurement: str, items: tuple[tuple[str, str], ...]) -> str:
    return _build_series_key(measurement, items)


def _build_series_key(measurement: str, items: tuple[tuple[str, str], ...]) -> str:
    parts = [escape_measurement(measurement)]
    for key, value in sorted(items, key=itemgetter(0)):
        parts.append(f"{escape_key('tag key', key)}={escape_key('tag value', value)}")
    return ",".join(parts)


def encode_point(point: Point) -> str:
    """One point as one line of line protocol (without the trailing newline)."""
    fields = point.fields
    if not fields:
        raise LineProtocolError(f"point of measurement {point.measurement!r} has no fields")
    ts = point.time_ns
    if isinstance(ts, bool) or not isinstance(ts, int) or not _INT64_MIN <= ts <= _INT64_MAX:
        raise LineProtocolError(f"timestamp {ts!r} is not an int64 of nanoseconds")
    head = _series_key(point.measurement, point.tags)
    body = []
    for key in sorted(fields):
        value = fields[key]
        # Fast path for a known field key and a plain float, int or bool value: the same text as
        # escape_key and format_field_value (tests/store/test_lineprotocol_fastpath.py checks it).
        escaped = _field_keys.get(key)
        if escaped is None:
            escaped = escape_key("field key", key)
            _remember_field_key(key, escaped)
        if type(value) is float and value - value == 0.0:  # finite: x - x is NaN for nan, inf
            body.append(f"{escaped}={value!r}")
        elif type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            body.append(f"{escaped}={value}i")
        elif type(value) is bool:
            body.append(f"{escaped}=true" if value else f"{escaped}=false")
        else:
            body.append(f"{escaped}={format_field_value(key, value)}")
    return f"{head} {','.join(body)} {ts}"


def encode_points(points: Iterable[Point]) -> list[str]:
    """Many points as lines, in order."""
    return [encode_point(p) for p in points]
