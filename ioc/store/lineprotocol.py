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


def encode_point(point: Point) -> str:
    """One point as one line of line protocol (without the trailing newline)."""
    if not point.fields:
        raise LineProtocolError(f"point of measurement {point.measurement!r} has no fields")
    ts = point.time_ns
    if isinstance(ts, bool) or not isinstance(ts, int) or not _INT64_MIN <= ts <= _INT64_MAX:
        raise LineProtocolError(f"timestamp {ts!r} is not an int64 of nanoseconds")
    parts = [escape_measurement(point.measurement)]
    for key in sorted(point.tags):
        parts.append(f"{escape_key('tag key', key)}={escape_key('tag value', point.tags[key])}")
    head = ",".join(parts)
    body = ",".join(
        f"{escape_key('field key', key)}={format_field_value(key, point.fields[key])}"
        for key in sorted(point.fields)
    )
    return f"{head} {body} {ts}"


def encode_points(points: Iterable[Point]) -> list[str]:
    """Many points as lines, in order."""
    return [encode_point(p) for p in points]
