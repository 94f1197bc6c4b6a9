"""Our own JSON telemetry format ("IOC JSON", version 1), used by devices and departmental feeds.

Published on ``ioc/v1/{province}/{source_id}/{kind}`` (or POSTed over HTTP). A message is one
*document* or a non-empty JSON array of documents (a batch)::

    {
      "v": 1,                                   optional; only 1 exists
      "source": "79-aqi-0001",                  required; our source id
      "time": "2025-07-01T08:00:00.250+07:00",  exactly one of "time" and "time_ms"
      "metrics": {                              required; one entry per quantity
        "pm25": {"value": 35.2, "unit": "ug/m3"},
        "pm10": 51,
        "pump_on": true
      }
    }

- ``time`` is an RFC 3339 date-time (section 5.6) with a mandatory offset (``Z`` or ``±hh:mm``)
  and up to 9 fraction digits; ``time_ms`` is an integer count of milliseconds since the Unix
  epoch. The unit is in the key, so a number is never guessed to be seconds or milliseconds;
  giving both keys is ``ambiguous_time``, a number in ``time`` or a string in ``time_ms`` is
  ``wrong_type``.
- A metric is a number, a boolean, or ``{"value": number|boolean, "unit": string}``; strings and
  null are ``wrong_type``; a unit is 1..64 printable characters, else ``invalid_unit`` (whether
  it is the *right* unit is the catalog's check). Numbers are read as floats (see ``model``):
  counts of dossiers, tasks or data transactions from departmental feeds arrive as ``1234`` and
  are stored as 1234.0.
- Names: ``source`` matches ``[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}``, a metric name matches
  ``[A-Za-z][A-Za-z0-9_.:-]{0,127}``; anything else is ``invalid_name``.
- Unknown keys are ``unknown_field`` (our format is strict so that typos surface); a document with
  ``"metrics": {}`` is ``no_readings``; ``[]`` is ``empty_batch``.

A batch is accepted or rejected whole: one bad document makes the message a dead letter.
"""

from __future__ import annotations

import re

from ingest.formats.model import (
    DEFAULT_MAX_BYTES,
    MAX_EXACT_INT,
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

FORMAT_VERSION = 1
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_METRIC = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,127}")
_DOCUMENT_KEYS = frozenset({"v", "source", "time", "time_ms", "metrics"})
_METRIC_KEYS = frozenset({"value", "unit"})

# Names that already matched their pattern: a stream repeats a few sources and metric names, and a
# set look-up is much cheaper than the regex. Bounded: cleared when full, so a sender of endless
# distinct names costs a regex per name, never unbounded memory.
_KNOWN_NAMES_MAX = 4096
_known_sources: set[str] = set()
_known_metrics: set[str] = set()


# RawReading(...) runs the NamedTuple's generated __new__ (a Python function); building the tuple
# directly makes the same object (same class, same fields) in a third of the time, which counts
# at 16 readings per message.
_new_tuple = tuple.__new__


def _remember(known: set[str], name: str) -> None:
    """Add a name that matched its pattern to a cache of known-good names, within its bound."""
    if len(known) >= _KNOWN_NAMES_MAX:
        known.clear()
    known.add(name)


def parse_ioc_json(payload: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[RawReading, ...]:
    """Parse one IOC JSON message (a document or a batch) into readings, in message order."""
    message = decode_json(payload, max_bytes)
    readings: list[RawReading] = []
    if isinstance(message, dict):
        _document(message, "$", readings)
        return tuple(readings)
    if isinstance(message, list):
        if not message:
            raise PayloadError("empty_batch", "$: the batch is an empty array")
        for index, item in enumerate(message):
            field = f"$[{index}]"
            _document(obj(item, field), field, readings)
        return tuple(readings)
    raise PayloadError("wrong_type", f"$: expected an object or an array, got {show(message)}")


def _document(doc: dict[str, object], where: str, readings: list[RawReading]) -> None:
    """Append one document's readings to ``readings``, checking every key."""
    if not _DOCUMENT_KEYS.issuperset(doc):
        for key in doc:
            if key not in _DOCUMENT_KEYS:
                raise PayloadError("unknown_field", f"{where}.{key}: unknown field")
    version = doc.get("v", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise PayloadError("unsupported_version", f"{where}.v: {show(version)} is not 1")
    source = text(required(doc, "source", f"{where}.source"), f"{where}.source")
    if source not in _known_sources:
        if _SOURCE.fullmatch(source) is None:
            raise PayloadError("invalid_name", f"{where}.source: {show(source)} is not a source id")
        _remember(_known_sources, source)
    time_ns = _time(doc, where)
    metrics = obj(required(doc, "metrics", f"{where}.metrics"), f"{where}.metrics")
    if not metrics:
        raise PayloadError("no_readings", f"{where}.metrics: no metric in the document")
    append = readings.append
    for name, raw in metrics.items():
        # Fast path for the common case, a bare number under a name seen before: the same result
        # as the full path below (tests/ingest/test_fastpath.py checks it against the reference).
        if name in _known_metrics:
            if type(raw) is float:  # orjson never yields nan or inf (see model.number)
                append(_new_tuple(RawReading, (source, name, raw, None, time_ns)))
                continue
            if type(raw) is int and -MAX_EXACT_INT <= raw <= MAX_EXACT_INT:
                append(_new_tuple(RawReading, (source, name, float(raw), None, time_ns)))
                continue
        field = f"{where}.metrics.{name}"
        if _METRIC.fullmatch(name) is None:
            raise PayloadError("invalid_name", f"{field}: {show(name)} is not a metric name")
        _remember(_known_metrics, name)
        value, unit = _metric(raw, field)
        append(RawReading(source, name, value, unit, time_ns))


def _time(doc: dict[str, object], where: str) -> int:
    """Read the document time from exactly one of ``time`` (RFC 3339) and ``time_ms``."""
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


def _metric(raw: object, field: str) -> tuple[Value, str | None]:
    """Read a metric given bare or as ``{"value": ..., "unit": ...}``."""
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
