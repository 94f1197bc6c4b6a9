"""SenML JSON (RFC 8428) packs and SenSML streams, read into neutral readings.

A pack is a non-empty JSON array of records (RFC 8428 section 4; ``[]`` is ``empty_batch``). A
SenSML stream (section 4.8) is the same array delivered as one message; a stream split across
messages is not reassembled here. Records are resolved as section 4.6 says:

- Base fields (``bn``, ``bt``, ``bu``, ``bv``, ``bs``, ``bver``) apply to their own record and
  every later one until replaced (4.5.1). Name = ``bn + n``, which must match
  ``[A-Za-z0-9][-_:./A-Za-z0-9]*`` (4.5.1) or the pack is ``invalid_name``.
- Time = ``bt + t`` in seconds (4.5.3). Below 2**28 it is relative to "now" (``now_ns``, given by
  the caller so that parsing is deterministic): 0 or absent means now, -5 means 5 s ago. Integer
  times are exact; float times are rounded to the microsecond (a double cannot hold more at
  today's epoch values), so ``1.276020076001e+09`` is exactly ``1276020076001000000`` ns. A
  resolved time before 1970 or after 2262 is ``time_out_of_range``.
- Unit = ``u``, else ``bu``, else None. Value = ``bv + v``; a sum ``s`` (plus ``bs``) becomes a
  reading of its own whose metric ends in ``#sum`` ('#' cannot occur in a SenML name, so it
  never collides). ``ut`` is checked and ignored.

Which values are readings: ``v`` (a float) and ``vb`` (a bool). ``vs`` (text) and ``vd``
(binary data) are checked for type and not returned: they are labels and blobs, not telemetry. A
record with no value and no sum (e.g. one carrying only base fields) yields nothing; a pack that
yields nothing at all is ``no_readings``. More than one of ``v``/``vs``/``vb``/``vd`` in a record
is ``multiple_values``.

Device and metric: when the resolved base name is not empty it names the device (one trailing
``:`` or ``/`` dropped, so ``urn:dev:ow:10e2073a01080063:`` and ``urn:dev:ow:10e2073a01080063``
are the same device) and ``n`` is the metric; without a base name, ``n`` names the device and the
metric is ``""``. A metric of ``""`` means the record names its quantity by unit alone, as
RFC 8428 section 5.1.3 does (humidity, lat and lon of one sensor); the later stages key on
(device, metric, unit). With this rule the packs of sections 5.1.3 and 5.1.4 (resolved) read the
same.

Versions: ``bver`` above 10 is ``unsupported_version``. Labels ending in ``_`` are
must-understand (4.4) and we understand none: ``unsupported_field``. Other unknown labels are
ignored, as the RFC's extension rules require.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.formats.model import (
    DEFAULT_MAX_BYTES,
    NS_PER_S,
    RawReading,
    checked_time,
    decode_json,
    finite,
    number,
    obj,
    show,
    text,
)
from ioc.errors import PayloadError

SENML_VERSION = 10
RELATIVE_TIME_LIMIT = 2**28
SUM_SUFFIX = "#sum"
_NAME = re.compile(r"[A-Za-z0-9][-_:./A-Za-z0-9]*")
_STRING_LABELS = frozenset({"bn", "bu", "n", "u", "vs", "vd"})
_NUMBER_LABELS = frozenset({"bv", "bs", "v", "s", "ut"})
_TIME_LABELS = frozenset({"bt", "t"})
_VALUE_LABELS = ("v", "vs", "vb", "vd")
_MAX_SECONDS = 2**34  # beyond this, relative or absolute, a time cannot land in 1970..2262

Seconds = int | float


@dataclass(slots=True)
class _Base:
    """The base fields in force at a record: set by one record, kept by the ones after it."""

    name: str = ""
    time: Seconds = 0
    unit: str | None = None
    value: float = 0.0
    total: float = 0.0

    def update(self, record: dict[str, object], where: str) -> None:
        """Take the base fields a record sets (types were checked by _check_labels)."""
        if "bn" in record:
            self.name = str(record["bn"])
        if "bt" in record:
            self.time = _seconds(record["bt"], f"{where}.bt")
        if "bu" in record:
            self.unit = str(record["bu"])
        if "bv" in record:
            self.value = number(record["bv"], f"{where}.bv")
        if "bs" in record:
            self.total = number(record["bs"], f"{where}.bs")


def parse_senml(
    payload: bytes, *, now_ns: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[RawReading, ...]:
    """Parse a SenML JSON pack into readings in record order; relative times count from now_ns."""
    pack = decode_json(payload, max_bytes)
    if not isinstance(pack, list):
        raise PayloadError("wrong_type", f"$: a SenML pack is an array, got {show(pack)}")
    if not pack:
        raise PayloadError("empty_batch", "$: the SenML pack is an empty array")
    base = _Base()
    readings: list[RawReading] = []
    for index, item in enumerate(pack):
        where = f"$[{index}]"
        record = obj(item, where)
        _check_labels(record, where)
        base.update(record, where)
        readings.extend(_record_readings(record, base, now_ns, where))
    if not readings:
        raise PayloadError("no_readings", "$: no record carries a numeric or boolean value")
    return tuple(readings)


def _record_readings(
    record: dict[str, object], base: _Base, now_ns: int, where: str
) -> list[RawReading]:
    """Resolve one record (RFC 8428 section 4.6) into zero, one or two readings."""
    values = [label for label in _VALUE_LABELS if label in record]
    if len(values) > 1:
        raise PayloadError("multiple_values", f"{where}: more than one value field {values}")
    value: float | bool | None = None
    if "v" in record:
        value = finite(base.value + number(record["v"], f"{where}.v"), f"{where}.v")
    elif "vb" in record:
        value = bool(record["vb"])
    total: float | None = None
    if "s" in record:
        total = finite(base.total + number(record["s"], f"{where}.s"), f"{where}.s")
    if value is None and total is None:
        return []
    name = base.name + str(record.get("n", ""))
    if _NAME.fullmatch(name) is None:
        raise PayloadError("invalid_name", f"{where}.n: resolved name {show(name)} is invalid")
    if base.name:
        device_ref = base.name[:-1] if base.name[-1] in ":/" else base.name
        metric = name[len(base.name) :]
    else:
        device_ref, metric = name, ""
    unit = str(record["u"]) if "u" in record else base.unit
    offset = _seconds(record.get("t", 0), f"{where}.t")
    time_ns = _resolve_time(base.time, offset, now_ns, f"{where}.t")
    readings = []
    if value is not None:
        readings.append(RawReading(device_ref, metric, value, unit, time_ns))
    if total is not None:
        readings.append(RawReading(device_ref, metric + SUM_SUFFIX, total, unit, time_ns))
    return readings


def _check_labels(record: dict[str, object], where: str) -> None:
    """Check the type of every label we know and refuse must-understand labels."""
    for label, raw in record.items():
        field = f"{where}.{label}"
        if label in _STRING_LABELS:
            text(raw, field)
        elif label in _NUMBER_LABELS:
            number(raw, field)
        elif label in _TIME_LABELS:
            _seconds(raw, field)
        elif label == "vb":
            if not isinstance(raw, bool):
                raise PayloadError("wrong_type", f"{field}: expected a boolean, got {show(raw)}")
        elif label == "bver":
            if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
                raise PayloadError("wrong_type", f"{field}: expected a version, got {show(raw)}")
            if raw > SENML_VERSION:
                raise PayloadError(
                    "unsupported_version", f"{field}: version {raw} is newer than 10"
                )
        elif label.endswith("_"):
            raise PayloadError("unsupported_field", f"{field}: must-understand label unknown")


def _seconds(raw: object, field: str) -> Seconds:
    """Return a SenML time in seconds as orjson gave it (int or float), refusing other types."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return raw
    raise PayloadError("wrong_type", f"{field}: expected seconds, got {show(raw)}")


def _resolve_time(base: Seconds, offset: Seconds, now_ns: int, field: str) -> int:
    """Resolve bt + t to epoch ns (RFC 8428 section 4.5.3); float times to the microsecond."""
    total: Seconds
    if isinstance(base, int) and isinstance(offset, int):
        total = base + offset
        ns = total * NS_PER_S
    elif abs(base) <= _MAX_SECONDS and abs(offset) <= _MAX_SECONDS:
        total = base + offset
        # A double near 1.7e9 s is spaced 238 ns apart: below a microsecond it holds noise, and
        # rounding to one gives back the decimal the sender wrote (1.276020076001e9 -> .001 s).
        ns = round(total * 1_000_000) * 1000
    else:
        raise PayloadError("time_out_of_range", f"{field}: {show(base)} + {show(offset)} s")
    if total < RELATIVE_TIME_LIMIT:
        ns += now_ns
    return checked_time(ns, field)
