"""Check parsed readings against the catalog and turn the good ones into raw points.

This stage sits between the payload parsers (``ingest.formats``) and the writer. It gets the
registered ``Source`` a message belongs to (the collector resolved it through the registry: an
unknown source never gets here), the message's ``RawReading`` values and the server receive
time, and returns the points to write and one ``Rejection`` per reading that cannot be stored.
A rejected reading never rejects the others of its message: they are stored, the rejected ones
are dead-lettered with their reason.

Rules, all from the catalog, checked in this order (a reading that breaks several gets the
reason of the first; ``REASONS`` lists the codes in the same order):

1. ``unknown_metric``: the name is neither a metric key nor an alias.
2. ``metric_not_allowed``: the metric is not one of the source kind's metrics.
3. ``unit_not_accepted``: the unit is not one of the metric's units (no unit means the
   canonical unit).
4. ``wrong_type``: a bool metric needs a bool value; a float or count metric needs a number, and
   a bool is not a number here.
5. ``out_of_range``: the value converted to the canonical unit (times the unit's factor) is not
   a finite number (NaN, infinite, or overflowed by the conversion).
6. ``not_integral``: a count metric's converted value is not a whole number (12.0 is fine,
   12.5 is not). A separate code rather than ``wrong_type``: the value *is* a number, and a
   decoder sending fractional counts (a wrong scale) is a different fault to chase.
7. ``out_of_range``: the converted value is outside the metric's [min, max] (inclusive; either
   bound may be absent).
8. ``too_old`` / ``in_future``: the reading time is outside
   [received - max_age, received + max_future] (inclusive), or outside InfluxDB's 1970..2262.
9. ``duplicate_reading``: the same metric (by canonical key, so ``pm25`` and ``pm2_5`` are the
   same) at the same time twice in one message. The first accepted reading is kept and the later
   ones are rejected, even with an equal value: nothing is dropped without a reason
   (DESIGN.md), and InfluxDB would silently keep only one of them.

Accepted readings are grouped by time: one point per distinct time (in the order the times
first appear), measurement = the kind's ``measurement``, tags only from the registry
(``province``, ``source``, and ``ward`` when the source has one), fields = canonical metric key
-> value (float for float and count metrics, bool for bool metrics) plus ``received_ms``, the
receive time in integer milliseconds.

Two implementations of the same rules:

- ``Validator``: the hot path. Rules are compiled from the catalog once (name or alias -> key,
  type, unit factors, bounds per kind); per reading it is a dict look-up and a few comparisons,
  and messages are only built for rejections.
- ``reference_validate``: the rules written in marshmallow (``ReadingSchema``), the language the
  catalog itself is checked in. It collects every rule a reading breaks and reports the first in
  ``REASONS`` order. Tests prove both give the same points and the same rejections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validates_schema
from marshmallow import validate as rules

from ingest.formats.model import MAX_TIME_NS, RawReading, show
from ioc.catalog.model import Catalog, Kind, Metric, MetricType, Source
from ioc.errors import CatalogError
from ioc.store.influxql import RECEIVED_FIELD
from ioc.store.lineprotocol import FieldValue, Point

__all__ = [
    "REASONS",
    "ReadingSchema",
    "Rejection",
    "Validated",
    "Validator",
    "reference_validate",
]

REASONS: Final[tuple[str, ...]] = (
    "unknown_metric",
    "metric_not_allowed",
    "unit_not_accepted",
    "wrong_type",
    "not_integral",
    "out_of_range",
    "too_old",
    "in_future",
    "duplicate_reading",
)
"""Every reason code this module produces, in the order the rules are checked.

(A non-finite value is ``out_of_range`` and is checked before ``not_integral``; the two can never
apply to the same value, so the order of this tuple is still the order of precedence.)"""

_NS_PER_S = 1_000_000_000
_NS_PER_MS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT, _COUNT, _BOOL, _NOT_ALLOWED = 0, 1, 2, 3  # rule codes of the hot path
_TYPE_CODES = {MetricType.FLOAT: _FLOAT, MetricType.COUNT: _COUNT, MetricType.BOOL: _BOOL}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reading that cannot be stored: a stable reason code and a message naming field and value.

    ``reason`` is one of ``REASONS`` (counter label and dead-letter reason). ``reading`` is the
    rejected reading (None is left for rejections that concern no single reading).
    """

    reason: str
    message: str
    reading: RawReading | None


@dataclass(frozen=True, slots=True)
class Validated:
    """The points to write for one message and the rejections of its readings (input order)."""

    points: tuple[Point, ...]
    rejections: tuple[Rejection, ...]


_NOTHING = Validated((), ())


# --- messages (shared by both paths: the tests compare the decisions, not two copies of text) ---


def _metric_list(kind: Kind) -> str:
    return ", ".join(kind.metrics)


def _unknown_metric_message(reading: RawReading, kind: Kind) -> str:
    return (
        f"metric {show(reading.metric)}: not a metric or alias in the catalog "
        f"({kind.key!r} sources send {_metric_list(kind)})"
    )


def _not_allowed_message(reading: RawReading, kind: Kind, metric: Metric) -> str:
    return (
        f"metric {show(reading.metric)}: {metric.key} is not sent by {kind.key!r} sources "
        f"(they send {_metric_list(kind)})"
    )


def _unit_message(reading: RawReading, metric: Metric) -> str:
    return (
        f"metric {show(reading.metric)}: unit {show(reading.unit)} is not accepted for "
        f"{metric.key} (accepted: {', '.join(metric.units)}; no unit means {metric.unit})"
    )


def _type_message(reading: RawReading, metric: Metric) -> str:
    wanted = "true or false" if metric.type is MetricType.BOOL else "a number"
    return f"metric {show(reading.metric)}: {metric.key} takes {wanted}, got {show(reading.value)}"


def _quantity(reading: RawReading, metric: Metric, converted: float) -> str:
    """The value as sent, and in the canonical unit when the unit was converted."""
    unit = metric.unit if reading.unit is None else reading.unit
    stated = f"{show(reading.value)} {unit}"
    if unit == metric.unit or metric.factor(reading.unit) == 1.0:
        return stated
    return f"{stated} (= {converted!r} {metric.unit})"


def _not_finite_message(reading: RawReading, metric: Metric, converted: float) -> str:
    return (
        f"metric {show(reading.metric)}: {_quantity(reading, metric, converted)} "
        "is not a finite number"
    )


def _not_integral_message(reading: RawReading, metric: Metric, converted: float) -> str:
    return (
        f"metric {show(reading.metric)}: {_quantity(reading, metric, converted)} is not a whole "
        f"number of {metric.unit}"
    )


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _range_text(metric: Metric) -> str:
    low, high = metric.minimum, metric.maximum
    if low is not None and high is not None:
        return f"{_bound(low)} to {_bound(high)} {metric.unit}"
    if low is not None:
        return f"at least {_bound(low)} {metric.unit}"
    if high is not None:
        return f"at most {_bound(high)} {metric.unit}"
    return "any value"  # never out of range; here for completeness


def _range_message(reading: RawReading, metric: Metric, converted: float) -> str:
    return (
        f"metric {show(reading.metric)}: {_quantity(reading, metric, converted)} is outside "
        f"the range of {metric.key}, {_range_text(metric)}"
    )


def rfc3339(ns: int) -> str:
    """Epoch nanoseconds as an RFC 3339 UTC date-time (fraction only as long as needed)."""
    try:
        seconds, fraction = divmod(ns, _NS_PER_S)
        moment = _EPOCH + timedelta(seconds=seconds)
    except (OverflowError, ValueError, TypeError):  # beyond year 1..9999, or not a number
        return f"{show(ns)} ns since 1970"
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def _seconds(ns: int) -> str:
    """An exact duration in seconds: 86400 s, 0.25 s, 86400.000000001 s."""
    whole, fraction = divmod(ns, _NS_PER_S)
    return f"{whole}.{fraction:09d}".rstrip("0").rstrip(".") + " s"


def _too_old_message(reading: RawReading, received_ns: int, max_age_ns: int) -> str:
    return (
        f"metric {show(reading.metric)}: time {rfc3339(reading.time)} is "
        f"{_seconds(received_ns - reading.time)} before the receive time "
        f"{rfc3339(received_ns)} (at most {_seconds(max_age_ns)} allowed)"
    )


def _in_future_message(reading: RawReading, received_ns: int, max_future_ns: int) -> str:
    return (
        f"metric {show(reading.metric)}: time {rfc3339(reading.time)} is "
        f"{_seconds(reading.time - received_ns)} after the receive time "
        f"{rfc3339(received_ns)} (at most {_seconds(max_future_ns)} allowed)"
    )


def _duplicate_message(reading: RawReading, key: str, kept: FieldValue) -> str:
    return (
        f"metric {show(reading.metric)}: {key} at {rfc3339(reading.time)} appears again in this "
        f"message with {show(reading.value)}; the first value, {kept!r}, is kept"
    )


# --- shared arithmetic -----------------------------------------------------------------------


def _window_ns(seconds: float, what: str) -> int:
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"{what}: {seconds!r} is not a finite number of seconds >= 0")
    return round(seconds * _NS_PER_S)


def _as_float(value: object) -> float | None:
    """A non-bool number as a float (an int too large for a float becomes inf); else None.

    The parsers only produce float and bool; this keeps anything else from crashing a loop.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _tags(source: Source) -> dict[str, str]:
    if source.ward is None:
        return {"province": source.province, "source": source.id}
    return {"province": source.province, "source": source.id, "ward": source.ward}


def _check_catalog(catalog: Catalog) -> None:
    if RECEIVED_FIELD in catalog.metrics:
        raise CatalogError(f"metric {RECEIVED_FIELD!r} clashes with the receive-time field")


# --- the hot path ----------------------------------------------------------------------------

# (canonical key, code, unit -> factor (None -> 1.0), low, high, metric); code is the metric's type
# (_FLOAT, _COUNT, _BOOL) when the kind may send it, else _NOT_ALLOWED; absent bounds are +-inf.
_Rule = tuple[str, int, Mapping[str | None, float], float, float, Metric]


def _metric_or_unit_rejection(
    reading: RawReading, kind: Kind, metric: Metric, code: int
) -> Rejection:
    if code == _NOT_ALLOWED:
        return Rejection("metric_not_allowed", _not_allowed_message(reading, kind, metric), reading)
    return Rejection("unit_not_accepted", _unit_message(reading, metric), reading)


def _number_rejection(reading: RawReading, metric: Metric, number: float) -> Rejection:
    """Why a converted number failed: not finite, not integral (counts), or out of range."""
    if not math.isfinite(number):
        return Rejection("out_of_range", _not_finite_message(reading, metric, number), reading)
    if metric.type is MetricType.COUNT and not number.is_integer():
        return Rejection("not_integral", _not_integral_message(reading, metric, number), reading)
    return Rejection("out_of_range", _range_message(reading, metric, number), reading)


class Validator:
    """The catalog's rules, compiled once, applied to each message's readings.

    ``max_age_s`` / ``max_future_s``: how far before / after the receive time a reading's time
    may be (inclusive). Thread-safe: nothing is mutated after ``__init__``.
    """

    __slots__ = ("_kinds", "_max_age_ns", "_max_future_ns")

    def __init__(self, catalog: Catalog, *, max_age_s: float, max_future_s: float) -> None:
        _check_catalog(catalog)
        self._max_age_ns = _window_ns(max_age_s, "max_age_s")
        self._max_future_ns = _window_ns(max_future_s, "max_future_s")
        compiled: dict[str, tuple[Metric, Mapping[str | None, float], float, float]] = {}
        for metric in catalog.metrics.values():
            units: dict[str | None, float] = {None: 1.0}  # no unit: the canonical unit
            for unit, factor in metric.units.items():
                units[unit] = factor
            low = -math.inf if metric.minimum is None else metric.minimum
            high = math.inf if metric.maximum is None else metric.maximum
            compiled[metric.key] = (metric, units, low, high)
        self._kinds: dict[str, tuple[Kind, dict[str, _Rule]]] = {}
        for kind in catalog.kinds.values():
            allowed = frozenset(kind.metrics)
            names: dict[str, _Rule] = {}
            for metric, factors, low, high in compiled.values():
                rule: _Rule = (
                    metric.key,
                    _TYPE_CODES[metric.type] if metric.key in allowed else _NOT_ALLOWED,
                    factors,
                    low,
                    high,
                    metric,
                )
                for name in (metric.key, *metric.aliases):
                    names[name] = rule
            self._kinds[kind.key] = (kind, names)

    def validate(  # noqa: PLR0912, PLR0915 - the hot loop is inlined on purpose
        self, source: Source, readings: Sequence[RawReading], received_ns: int
    ) -> Validated:
        """The points to write for one message of ``source`` and a rejection per bad reading.

        Raises KeyError only for a source whose kind is not in the catalog (the registry loader
        makes that impossible); never for anything in the readings.
        """
        if not readings:
            return _NOTHING
        try:
            kind, names = self._kinds[source.kind]
        except KeyError:
            raise KeyError(f"source {source.id!r}: unknown source kind {source.kind!r}") from None
        oldest = max(received_ns - self._max_age_ns, 0)
        newest = min(received_ns + self._max_future_ns, MAX_TIME_NS)
        received_ms = received_ns // _NS_PER_MS
        not_allowed, bool_code, count_code = _NOT_ALLOWED, _BOOL, _COUNT
        groups: dict[int, dict[str, FieldValue]] = {}
        rejections: list[Rejection] = []
        reject = rejections.append
        for reading in readings:
            _, name, raw, unit, at = reading  # one unpack is cheaper than four NamedTuple reads
            rule = names.get(name)
            if rule is None:
                reject(Rejection("unknown_metric", _unknown_metric_message(reading, kind), reading))
                continue
            key, code, units, low, high, metric = rule
            factor = units.get(unit)
            if code == not_allowed or factor is None:
                reject(_metric_or_unit_rejection(reading, kind, metric, code))
                continue
            value: FieldValue
            if code == bool_code:
                if raw is not True and raw is not False:
                    reject(Rejection("wrong_type", _type_message(reading, metric), reading))
                    continue
                value = raw
            else:
                if type(raw) is float:
                    number = raw * factor
                else:  # int (or anything else) from a caller other than the parsers
                    converted = _as_float(raw)
                    if converted is None:
                        reject(Rejection("wrong_type", _type_message(reading, metric), reading))
                        continue
                    number = converted * factor
                # x - x is 0.0 (false) for a finite x, NaN (true) for NaN and infinities
                if (
                    number - number
                    or not low <= number <= high
                    or (code == count_code and not number.is_integer())
                ):
                    reject(_number_rejection(reading, metric, number))
                    continue
                value = number
            if not oldest <= at <= newest:
                reject(self._time_rejection(reading, received_ns, oldest))
                continue
            group = groups.get(at)
            if group is None:
                groups[at] = {key: value, RECEIVED_FIELD: received_ms}
            elif key in group:
                message = _duplicate_message(reading, key, group[key])
                reject(Rejection("duplicate_reading", message, reading))
            else:
                group[key] = value
        if not groups:
            return Validated((), tuple(rejections))
        tags = _tags(source)  # shared by the message's points: nobody mutates a Point's tags
        measurement = kind.measurement
        points = tuple([Point(measurement, group, at, tags) for at, group in groups.items()])
        return Validated(points, tuple(rejections))

    def _time_rejection(self, reading: RawReading, received_ns: int, oldest: int) -> Rejection:
        if reading.time < oldest:
            message = _too_old_message(reading, received_ns, self._max_age_ns)
            return Rejection("too_old", message, reading)
        message = _in_future_message(reading, received_ns, self._max_future_ns)
        return Rejection("in_future", message, reading)


# --- the reference rules, in marshmallow -----------------------------------------------------


def _fault(reason: str, message: str) -> ValidationError:
    """A ValidationError whose messages map the reason code to the message."""
    return ValidationError({reason: message})


class ReadingSchema(Schema):
    """The catalog's rules for one reading of one source, written in marshmallow.

    ``load`` takes a reading as a dict (``RawReading``'s fields) and returns
    ``(canonical key, canonical value, time)``, or raises ValidationError whose messages hold
    ``{reason: message}`` for *every* rule the reading breaks; ``reference_validate`` keeps the
    first in ``REASONS`` order. The time window is fixed at construction.
    """

    class Meta:
        unknown = RAISE

    device_ref = fields.String(required=True)
    metric = fields.String(required=True)
    value = fields.Raw(required=True, allow_none=False)  # bool or number: the metric decides
    unit = fields.String(required=True, allow_none=True)
    time = fields.Integer(required=True, strict=True)

    def __init__(
        self,
        catalog: Catalog,
        source: Source,
        *,
        received_ns: int,
        max_age_s: float,
        max_future_s: float,
    ) -> None:
        super().__init__()
        _check_catalog(catalog)
        self.kind = catalog.kind(source.kind)
        self.by_name = {
            name: metric
            for metric in catalog.metrics.values()
            for name in (metric.key, *metric.aliases)
        }
        self.known = rules.OneOf(tuple(self.by_name))
        self.of_kind = rules.OneOf(self.kind.metrics)
        self.received_ns = received_ns
        self.max_age_ns = _window_ns(max_age_s, "max_age_s")
        self.max_future_ns = _window_ns(max_future_s, "max_future_s")
        self.not_too_old = rules.Range(min=max(received_ns - self.max_age_ns, 0))
        self.not_in_future = rules.Range(max=min(received_ns + self.max_future_ns, MAX_TIME_NS))

    @staticmethod
    def _reading(data: Mapping[str, Any]) -> RawReading | None:
        """The reading again, once every field has loaded (else the field errors say why)."""
        try:
            return RawReading(
                data["device_ref"], data["metric"], data["value"], data["unit"], data["time"]
            )
        except KeyError:
            return None

    @validates_schema(skip_on_field_errors=False)
    def _metric_rules(self, data: dict[str, Any], **_: Any) -> None:
        reading = self._reading(data)
        if reading is None:
            return
        try:
            self.known(reading.metric)
        except ValidationError:
            raise _fault("unknown_metric", _unknown_metric_message(reading, self.kind)) from None
        metric = self.by_name[reading.metric]
        try:
            self.of_kind(metric.key)
        except ValidationError:
            message = _not_allowed_message(reading, self.kind, metric)
            raise _fault("metric_not_allowed", message) from None

    @validates_schema(skip_on_field_errors=False)
    def _time_rules(self, data: dict[str, Any], **_: Any) -> None:
        reading = self._reading(data)
        if reading is None:
            return
        try:
            self.not_too_old(reading.time)
        except ValidationError:
            message = _too_old_message(reading, self.received_ns, self.max_age_ns)
            raise _fault("too_old", message) from None
        try:
            self.not_in_future(reading.time)
        except ValidationError:
            message = _in_future_message(reading, self.received_ns, self.max_future_ns)
            raise _fault("in_future", message) from None

    @validates_schema(skip_on_field_errors=False)
    def _quantity_rules(self, data: dict[str, Any], **_: Any) -> None:
        reading = self._reading(data)
        metric = None if reading is None else self.by_name.get(reading.metric)
        if reading is None or metric is None:
            return  # the field errors or the metric rules say why
        faults: dict[str, str] = {}
        factor = metric.factor(reading.unit)
        if factor is None:
            faults["unit_not_accepted"] = _unit_message(reading, metric)
        if metric.type is MetricType.BOOL:
            if not isinstance(reading.value, bool):
                faults["wrong_type"] = _type_message(reading, metric)
        else:
            number = _as_float(reading.value)
            if number is None:
                faults["wrong_type"] = _type_message(reading, metric)
            elif factor is not None:
                faults.update(self._number_rules(reading, metric, number * factor))
        if faults:
            raise ValidationError(faults)

    @staticmethod
    def _number_rules(reading: RawReading, metric: Metric, converted: float) -> dict[str, str]:
        if math.isnan(converted) or math.isinf(converted):
            return {"out_of_range": _not_finite_message(reading, metric, converted)}
        faults: dict[str, str] = {}
        if metric.type is MetricType.COUNT and converted != math.floor(converted):
            faults["not_integral"] = _not_integral_message(reading, metric, converted)
        try:
            rules.Range(min=metric.minimum, max=metric.maximum)(converted)
        except ValidationError:
            faults["out_of_range"] = _range_message(reading, metric, converted)
        return faults

    @post_load
    def _canonical(self, data: dict[str, Any], **_: Any) -> tuple[str, FieldValue, int]:
        metric = self.by_name[data["metric"]]
        value = data["value"]
        if metric.type is MetricType.BOOL:
            return metric.key, value, data["time"]
        factor = metric.factor(data["unit"])
        number = _as_float(value)
        if factor is None or number is None:  # cannot happen: _quantity_rules refused it
            raise ValidationError("unit or value not checked")
        return metric.key, number * factor, data["time"]

    def first_fault(self, reading: RawReading, error: ValidationError) -> Rejection:
        """The rejection for ``reading``: the first broken rule in ``REASONS`` order."""
        found: dict[str, str] = {}
        _collect(error.messages, found, "")
        reason = min(found, key=_RANK.__getitem__)
        return Rejection(reason, found[reason], reading)


_RANK = {reason: rank for rank, reason in enumerate(REASONS)}


def _collect(messages: object, found: dict[str, str], path: str) -> None:
    """Gather ``{reason: message}`` from marshmallow's nested error messages.

    Anything else marshmallow says (a field of the wrong Python type, which the ``RawReading``
    contract rules out) becomes ``wrong_type`` naming the field.
    """
    if isinstance(messages, dict):
        for key, inner in messages.items():
            if key in _RANK:
                texts = [inner] if isinstance(inner, str) else inner
                found.setdefault(key, str(texts[0]))
            else:
                _collect(inner, found, str(key))
    elif isinstance(messages, list):
        for inner in messages:
            _collect(inner, found, path)
    else:
        found.setdefault("wrong_type", f"{path}: {messages}")


def reference_validate(
    catalog: Catalog,
    source: Source,
    readings: Sequence[RawReading],
    received_ns: int,
    *,
    max_age_s: float,
    max_future_s: float,
) -> Validated:
    """The same result as ``Validator(...).validate(...)``, computed with ``ReadingSchema``.

    Slow (a schema per call, marshmallow per reading): the readable statement of the rules,
    against which the hot path is tested.
    """
    schema = ReadingSchema(
        catalog,
        source,
        received_ns=received_ns,
        max_age_s=max_age_s,
        max_future_s=max_future_s,
    )
    rejections: list[Rejection] = []
    groups: dict[int, dict[str, FieldValue]] = {}
    for reading in readings:
        try:
            key, value, at = schema.load(
                {
                    "device_ref": reading.device_ref,
                    "metric": reading.metric,
                    "value": reading.value,
                    "unit": reading.unit,
                    "time": reading.time,
                }
            )
        except ValidationError as error:
            rejections.append(schema.first_fault(reading, error))
            continue
        group = groups.setdefault(at, {RECEIVED_FIELD: received_ns // _NS_PER_MS})
        if key in group:
            message = _duplicate_message(reading, key, group[key])
            rejections.append(Rejection("duplicate_reading", message, reading))
        else:
            group[key] = value
    kind = schema.kind
    points = tuple(
        Point(kind.measurement, group, at, _tags(source)) for at, group in groups.items()
    )
    return Validated(points, tuple(rejections))
