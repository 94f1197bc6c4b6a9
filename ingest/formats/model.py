"""The neutral reading every payload parser produces, and the decoding rules they share.

A parser turns one message (bytes) into a tuple of ``RawReading``: no registry lookup, no
catalog check, no time-window check happen here. What the parsers agree on lives in this module:

- JSON is decoded with orjson, after a size check (``max_bytes``, default 256 KiB).
- Numbers become ``float``: JSON does not tell ``20`` from ``20.0`` and devices switch between
  them, while an InfluxDB field keeps one type, so the parser never lets that choice leak. An
  integer literal beyond ±2**53 (not exactly representable as a float) is rejected.
- Times are Unix epoch nanoseconds in ``[0, 2**63 - 1]`` (InfluxDB's range); anything negative or
  beyond that is a parse error. Whether a time is *plausible* is the time-window stage's job.
- orjson keeps the last of duplicate object keys and cannot report them, so neither can we:
  ``{"a": 1, "a": 2}`` reads as ``{"a": 2}``.

Reason codes raised from here: ``too_large``, ``invalid_utf8``, ``invalid_json``,
``not_finite``, ``too_deep``, ``wrong_type``, ``missing_field``, ``value_out_of_range``,
``invalid_time``, ``time_out_of_range``. docs/payloads.md lists every parser's codes.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import NamedTuple

import orjson

from ioc.errors import PayloadError

DEFAULT_MAX_BYTES = 256 * 1024
MAX_TIME_NS = 2**63 - 1
MAX_EXACT_INT = 2**53
NS_PER_S = 1_000_000_000

Value = float | bool


class RawReading(NamedTuple):
    """One value of one quantity of one device at one time, as the payload stated it.

    ``device_ref`` is the identifier the payload carries (our source id, a TTS device_id, a
    ChirpStack devEui, a SenML base name); ``metric`` and ``unit`` together name the quantity
    (SenML records named by their unit alone have ``metric == ""``); ``value`` is a float, or a
    bool for on/off states; ``time`` is the device or network timestamp in Unix epoch ns.

    A NamedTuple rather than a frozen dataclass: just as immutable and typed, and built about
    three times faster, which counts at 16 readings per message on the collector's hot path.
    """

    device_ref: str
    metric: str
    value: Value
    unit: str | None
    time: int


def show(value: object) -> str:
    """Render an offending value for an error message, cut short so messages stay small."""
    try:
        rendered = repr(value)
    except RecursionError:  # nested deeper than repr can walk (orjson decodes 1024 levels)
        rendered = f"{type(value).__name__} nested too deep to show"
    return rendered if len(rendered) <= 60 else rendered[:57] + "..."


def decode_json(payload: bytes, max_bytes: int) -> object:
    """Decode a JSON message, or raise PayloadError with the reason it cannot be read."""
    if len(payload) > max_bytes:
        raise PayloadError("too_large", f"payload: {len(payload)} bytes exceeds {max_bytes}")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _classify(payload, exc) from None


def _classify(payload: bytes, exc: orjson.JSONDecodeError) -> PayloadError:
    """Name why orjson refused a payload (the UTF-8 check is ours; the others read its message)."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad:
        return PayloadError("invalid_utf8", f"payload: not UTF-8 at byte {bad.start}")
    detail = str(exc)
    if "infinity" in detail:
        return PayloadError("not_finite", f"payload: number too large for a double ({detail})")
    if "depth" in detail or "recursion" in detail:
        return PayloadError("too_deep", f"payload: nesting too deep ({detail})")
    return PayloadError("invalid_json", f"payload: {detail}")


def number(raw: object, field: str) -> float:
    """Return a JSON number as a float; bools, strings and inexact integers are refused."""
    if isinstance(raw, float):
        return raw  # orjson never yields nan or inf: it refuses those literals and 1e309
    if isinstance(raw, int) and not isinstance(raw, bool):
        if -MAX_EXACT_INT <= raw <= MAX_EXACT_INT:
            return float(raw)
        raise PayloadError("value_out_of_range", f"{field}: {show(raw)} is not exact as a float")
    raise PayloadError("wrong_type", f"{field}: expected a number, got {show(raw)}")


def finite(value: float, field: str) -> float:
    """Refuse a value that arithmetic (base value plus value) pushed to infinity."""
    if math.isfinite(value):
        return value
    raise PayloadError("not_finite", f"{field}: {value!r} is not a finite number")


def text(raw: object, field: str) -> str:
    """Return a JSON string, or raise wrong_type naming the field."""
    if isinstance(raw, str):
        return raw
    raise PayloadError("wrong_type", f"{field}: expected a string, got {show(raw)}")


def obj(raw: object, field: str) -> dict[str, object]:
    """Return a JSON object, or raise wrong_type naming the field."""
    if isinstance(raw, dict):
        return raw
    raise PayloadError("wrong_type", f"{field}: expected an object, got {show(raw)}")


def required(container: dict[str, object], key: str, field: str) -> object:
    """Return container[key], or raise missing_field naming the full path."""
    try:
        return container[key]
    except KeyError:
        raise PayloadError("missing_field", f"{field}: required field is missing") from None


def checked_time(ns: int, field: str) -> int:
    """Return ns if it is a representable InfluxDB timestamp, else raise time_out_of_range."""
    if 0 <= ns <= MAX_TIME_NS:
        return ns
    raise PayloadError("time_out_of_range", f"{field}: {ns} ns is outside 1970..2262")


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def rfc3339_ns(raw: object, field: str) -> int:
    """Parse an RFC 3339 date-time with offset (section 5.6), to ns, keeping all 9 digits."""
    value = text(raw, field)
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise PayloadError("invalid_time", f"{field}: {show(value)} is not RFC 3339 with an offset")
    date, hour, minute, second, frac, offset = match.groups()
    day_s, offset_s = _date_seconds(date), _offset_seconds(offset)
    h, mi, sec = int(hour), int(minute), int(second)
    if day_s is None or offset_s is None or h > 23 or mi > 59 or sec > 59:
        # also refuses a leap second (:60), which has no epoch value
        raise PayloadError("invalid_time", f"{field}: {show(value)} is not a real date and time")
    seconds = day_s + h * 3600 + mi * 60 + sec - offset_s
    fraction_ns = int(frac.ljust(9, "0")) if frac else 0
    return checked_time(seconds * NS_PER_S + fraction_ns, field)


@lru_cache(maxsize=1024)
def _date_seconds(date: str) -> int | None:
    """Epoch seconds at 00:00 UTC of a YYYY-MM-DD date, or None if no such day (cached: a stream
    of messages shares a handful of dates)."""
    year, month, day = int(date[:4]), int(date[5:7]), int(date[8:])
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= _MONTH_DAYS[month] + leap:
        return None
    # Days from 1970-01-01 in the proleptic Gregorian calendar, counting years from March.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return (era * 146097 + day_of_era - 719468) * 86400


@lru_cache(maxsize=64)
def _offset_seconds(offset: str) -> int | None:
    """Seconds east of UTC of ``Z`` or ``±hh:mm``, or None for an impossible offset."""
    if offset in "Zz":
        return 0
    hours, minutes = int(offset[1:3]), int(offset[4:])
    if hours > 23 or minutes > 59:
        return None
    return (hours * 3600 + minutes * 60) * (-1 if offset[0] == "-" else 1)
