"""Load and validate the catalog files (TOML) once, with marshmallow, into immutable values.

Every problem is reported, not just the first, each naming the file, the entry and the field:
``indicators.toml: indicator 'vn_aqi': rollup: Must be one of: sum, ratio, max, formula.``
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ioc.catalog.model import (
    Band,
    Catalog,
    Direction,
    Indicator,
    Kind,
    Location,
    Method,
    Metric,
    MetricType,
    Registry,
    Rollup,
    Source,
    SourceClass,
    TimeAggregate,
)
from ioc.errors import CatalogError
from ioc.formulas.flood import STATIONS
from ioc.places import Places, get_places

__all__ = [
    "FORMULAS",
    "INDICATORS_FILE",
    "KEY_PATTERN",
    "SOURCES_FILE",
    "SOURCE_ID_PATTERN",
    "VIETNAM_LAT",
    "VIETNAM_LON",
    "load_catalog",
    "parse_period",
]

INDICATORS_FILE = Path(__file__).with_name("indicators.toml")
SOURCES_FILE = Path(__file__).with_name("sources.toml")

FORMULAS: Mapping[str, str] = MappingProxyType(
    {
        "vn_aqi_hourly": "air",
        "flood_level": "water",
        "service_on_time_score": "service",
        "feed_liveness": "",
        "probe_uptime": "probe",
        "systems_up": "probe",
    }
)
"""Formula names an indicator may use, with the source kind each reads ('' = every source).

Implemented in :mod:`ioc.engine.formulas`; a test keeps the two in step."""

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SOURCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
_SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
_COLOUR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
_PERIOD = re.compile(r"^([1-9][0-9]*)(m|h|d)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_DAY = 86400
_THRESHOLD_NAMES = ("warning", "critical")

VIETNAM_LAT = (7.5, 23.5)
"""Latitudes a registry location may have: Vietnam with its islands (docs/decisions.md).

From the DK1 platforms and Trường Sa reefs (about 7.5-8.2° N) to Lũng Cú (23.39° N)."""
VIETNAM_LON = (102.0, 117.9)
"""Longitudes a registry location may have: from A Pa Chải (102.14° E) to the eastern Trường Sa
(Spratly) features; the box is a sanity check against swapped or mistyped coordinates."""


def parse_period(text: str) -> int:
    """Seconds in a period such as ``5m``, ``1h`` or ``1d``; ValueError if not one."""
    match = _PERIOD.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 5m, 1h or 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _period(text: str) -> None:
    seconds = parse_period(text)
    if _DAY % seconds and seconds % _DAY:
        raise ValidationError("must divide a day evenly (e.g. 5m, 15m, 1h, 1d)")


def _duration(text: str) -> None:
    try:
        parse_period(text)
    except ValueError as why:
        raise ValidationError(str(why)) from None


def _matches(pattern: str, what: str) -> validate.Regexp:
    return validate.Regexp(pattern, error=f"{{input!r}} is not {what}")


_KEY = _matches(KEY_PATTERN, "a key (lower-case letters, digits and '_', starting with a letter)")
_SLUG = _matches(_SLUG_PATTERN, "a name of lower-case letters, digits and '-'")


def _enum_field(enum: type[Enum], **kwargs: Any) -> fields.Enum[Any]:
    return fields.Enum(enum, by_value=True, **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _MetricSchema(_Strict):
    key = fields.String(required=True, validate=_KEY)
    title_vi = fields.String(required=True, validate=validate.Length(min=1))
    title_en = fields.String(required=True, validate=validate.Length(min=1))
    type = _enum_field(MetricType, required=True)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=32))
    units = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=32)),
        values=fields.Float(validate=validate.Range(min=0, min_inclusive=False)),
        required=True,
    )
    min = fields.Float(load_default=None)
    max = fields.Float(load_default=None)
    aliases = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)


class _KindSchema(_Strict):
    key = fields.String(required=True, validate=_KEY)
    title_vi = fields.String(required=True, validate=validate.Length(min=1))
    title_en = fields.String(required=True, validate=validate.Length(min=1))
    source_class = _enum_field(SourceClass, required=True, data_key="class")
    measurement = fields.String(required=True, validate=_KEY)
    metrics = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class _BandSchema(_Strict):
    key = fields.String(required=True, validate=_KEY)
    low = fields.Float(required=True)
    title_vi = fields.String(required=True, validate=validate.Length(min=1))
    title_en = fields.String(required=True, validate=validate.Length(min=1))
    colour = fields.String(required=True, validate=_matches(_COLOUR_PATTERN, "a colour #RRGGBB"))


class _IndicatorSchema(_Strict):
    key = fields.String(required=True, validate=_KEY)
    title_vi = fields.String(required=True, validate=validate.Length(min=1))
    title_en = fields.String(required=True, validate=validate.Length(min=1))
    domain = fields.String(required=True, validate=_KEY)
    unit = fields.String(required=True, validate=validate.Length(min=1, max=32))
    min = fields.Float(load_default=None)
    max = fields.Float(load_default=None)
    period = fields.String(required=True, validate=_period)
    method = _enum_field(Method, required=True)
    kind = fields.String(load_default=None)
    metric = fields.String(load_default=None)
    aggregate = _enum_field(TimeAggregate, load_default=None)
    numerator = fields.String(load_default=None)
    denominator = fields.String(load_default=None)
    formula = fields.String(load_default=None, validate=validate.OneOf(sorted(FORMULAS)))
    rollup = _enum_field(Rollup, required=True)
    direction = _enum_field(Direction, required=True)
    bands = fields.List(fields.Nested(_BandSchema), load_default=list)
    thresholds = fields.Dict(
        keys=fields.String(validate=validate.OneOf(_THRESHOLD_NAMES)),
        values=fields.Float(),
        load_default=dict,
    )
    target = fields.Float(load_default=None)
    dashboard = fields.String(load_default=None, validate=_SLUG)
    alert = fields.String(load_default=None, validate=_SLUG)
    reference = fields.String(required=True, validate=validate.Length(min=1))


class _Degrees(fields.Float):
    """A coordinate written as a TOML number: a quoted "21.03" is a mistake, not a number."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "invalid": "{input!r} is not a number of degrees",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def _within(bounds: tuple[float, float], what: str) -> validate.Range:
    return validate.Range(
        *bounds, error=f"{{input}} is outside Vietnam's {what} {{min}} to {{max}} (with islands)"
    )


class _LocationSchema(_Strict):
    error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "type": "must be a table such as { lat = 21.0285, lon = 105.8542 }",
    }

    lat = _Degrees(required=True, validate=_within(VIETNAM_LAT, "latitudes"))
    lon = _Degrees(required=True, validate=_within(VIETNAM_LON, "longitudes"))


class _SourceSchema(_Strict):
    id = fields.String(
        required=True,
        validate=_matches(
            SOURCE_ID_PATTERN,
            "a source id (letters, digits, '_', '.', ':', '-'; at most 128, starting with a "
            "letter or digit)",
        ),
    )
    kind = fields.String(required=True)
    province = fields.String(
        required=True, validate=_matches(r"^[0-9]{2}$", "a 2-digit province code")
    )
    ward = fields.String(load_default=None, validate=_matches(r"^[0-9]{5}$", "a 5-digit ward code"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    expected_interval = fields.String(required=True, validate=_duration)
    department = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    station = fields.String(load_default=None)
    url = fields.String(load_default=None)
    device_refs = fields.List(
        fields.String(validate=validate.Length(min=1, max=256)), load_default=list
    )
    registered = fields.Date(load_default=None)
    location = fields.Nested(_LocationSchema, load_default=None)
    contact = fields.List(
        fields.String(validate=validate.Email(error="{input!r} is not an e-mail address")),
        load_default=list,
        validate=validate.Length(min=1, error="give at least one address, or leave contact out"),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested message dict as ``field: message`` lines."""
    if isinstance(messages, Mapping):
        lines: list[str] = []
        for name, inner in messages.items():
            if name == "_schema":  # about the nested table as a whole: name the table itself
                lines.extend(_flatten(inner, prefix))
                continue
            lines.extend(_flatten(inner, f"{prefix}{name}." if prefix or name else ""))
        return lines
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix.rstrip('.')}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [line for inner in messages for line in _flatten(inner, prefix)]
    return [f"{prefix.rstrip('.')}: {messages}"]


class _Problems:
    """Collects every problem of one file, each naming the entry and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []

    def add(self, entry: str, message: str) -> None:
        self.lines.append(f"{self.path.name}: {entry}: {message}")

    def load(self, schema: Schema, section: str, raw: Sequence[Any]) -> list[dict[str, Any]]:
        """Load each entry of ``section``; report failures with the entry's key and position."""
        loaded: list[dict[str, Any]] = []
        if not isinstance(raw, list):
            self.add(section, "must be an array of tables ([[" + section + "]])")
            return loaded
        for position, entry in enumerate(raw, start=1):
            name = entry.get("key", entry.get("id")) if isinstance(entry, dict) else None
            label = f"{section} {name!r}" if isinstance(name, str) else f"{section} #{position}"
            try:
                loaded.append(schema.load(entry))
            except ValidationError as error:
                for line in _flatten(error.messages):
                    self.add(label, line)
        return loaded

    def raise_if_any(self) -> None:
        if self.lines:
            raise CatalogError(
                f"{len(self.lines)} problem(s) in the catalog:\n  " + "\n  ".join(self.lines)
            )


def _unique(problems: _Problems, section: str, keys: Sequence[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            problems.add(f"{section} {key!r}", "key: appears more than once")
        seen.add(key)


def _metrics(problems: _Problems, entries: list[dict[str, Any]]) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    names: dict[str, str] = {}
    for e in entries:
        label = f"metric {e['key']!r}"
        if e["unit"] not in e["units"] or e["units"][e["unit"]] != 1:
            problems.add(label, f"units: must map the canonical unit {e['unit']!r} to 1")
        if e["min"] is not None and e["max"] is not None and e["min"] >= e["max"]:
            problems.add(label, f"min: {e['min']} must be below max {e['max']}")
        for name in (e["key"], *e["aliases"]):
            if name in names and names[name] != e["key"]:
                problems.add(label, f"aliases: {name!r} is already a name of {names[name]!r}")
            names[name] = e["key"]
        metrics[e["key"]] = Metric(
            key=e["key"],
            title_vi=e["title_vi"],
            title_en=e["title_en"],
            type=e["type"],
            unit=e["unit"],
            units=MappingProxyType(dict(e["units"])),
            minimum=e["min"],
            maximum=e["max"],
            aliases=tuple(e["aliases"]),
        )
    return metrics


def _kinds(
    problems: _Problems, entries: list[dict[str, Any]], metrics: Mapping[str, Metric]
) -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for e in entries:
        for metric in e["metrics"]:
            if metric not in metrics:
                problems.add(f"kind {e['key']!r}", f"metrics: unknown metric {metric!r}")
        kinds[e["key"]] = Kind(
            key=e["key"],
            title_vi=e["title_vi"],
            title_en=e["title_en"],
            source_class=e["source_class"],
            measurement=e["measurement"],
            metrics=tuple(e["metrics"]),
        )
    return kinds


_ROLLUPS_FOR: Mapping[Method, frozenset[Rollup]] = MappingProxyType(
    {
        Method.METRIC: frozenset({Rollup.SUM, Rollup.MAX}),
        Method.RATIO: frozenset({Rollup.RATIO}),
        Method.FORMULA: frozenset({Rollup.MAX, Rollup.RATIO, Rollup.FORMULA}),
    }
)
_REQUIRED_FOR: Mapping[Method, tuple[str, ...]] = MappingProxyType(
    {
        Method.METRIC: ("kind", "metric", "aggregate"),
        Method.RATIO: ("kind", "numerator", "denominator", "aggregate"),
        Method.FORMULA: ("formula",),
    }
)
_UNUSED_FOR: Mapping[Method, tuple[str, ...]] = MappingProxyType(
    {
        Method.METRIC: ("numerator", "denominator", "formula"),
        Method.RATIO: ("metric", "formula"),
        Method.FORMULA: ("metric", "numerator", "denominator", "aggregate"),
    }
)


def _check_indicator(problems: _Problems, e: dict[str, Any], kinds: Mapping[str, Kind]) -> None:
    label = f"indicator {e['key']!r}"
    method: Method = e["method"]
    for name in _REQUIRED_FOR[method]:
        if e[name] is None:
            problems.add(label, f"{name}: required when method is {method.value!r}")
    for name in _UNUSED_FOR[method]:
        if e[name] is not None:
            problems.add(label, f"{name}: not used when method is {method.value!r}")
    if e["rollup"] not in _ROLLUPS_FOR[method]:
        allowed = ", ".join(sorted(r.value for r in _ROLLUPS_FOR[method]))
        problems.add(
            label,
            f"rollup: {e['rollup'].value!r} does not fit method {method.value!r} (use {allowed})",
        )
    if method is Method.FORMULA and e["formula"] is not None:
        formula_kind = FORMULAS[e["formula"]]
        if (e["kind"] or "") != formula_kind:
            problems.add(
                label,
                f"kind: formula {e['formula']!r} reads kind {formula_kind or '(every source)'!r}",
            )
    kind = kinds.get(e["kind"]) if e["kind"] else None
    if e["kind"] and kind is None:
        problems.add(label, f"kind: unknown source kind {e['kind']!r}")
    for name in ("metric", "numerator", "denominator"):
        if kind is not None and e[name] is not None and e[name] not in kind.metrics:
            problems.add(label, f"{name}: {e[name]!r} is not a metric of kind {kind.key!r}")
    _check_bands(problems, label, e)


def _check_bands(problems: _Problems, label: str, e: dict[str, Any]) -> None:
    lows = [band["low"] for band in e["bands"]]
    if lows != sorted(set(lows)):
        problems.add(label, "bands: low values must rise strictly")
    if lows and e["min"] is not None and lows[0] != e["min"]:
        problems.add(label, f"bands: the first band must start at min {e['min']}")
    if e["min"] is not None and e["max"] is not None and e["min"] >= e["max"]:
        problems.add(label, f"min: {e['min']} must be below max {e['max']}")


def _indicator(e: dict[str, Any]) -> Indicator:
    return Indicator(
        key=e["key"],
        title_vi=e["title_vi"],
        title_en=e["title_en"],
        domain=e["domain"],
        unit=e["unit"],
        minimum=e["min"],
        maximum=e["max"],
        period=e["period"],
        method=e["method"],
        kind=e["kind"] or "",
        metric=e["metric"],
        aggregate=e["aggregate"],
        numerator=e["numerator"],
        denominator=e["denominator"],
        formula=e["formula"],
        rollup=e["rollup"],
        direction=e["direction"],
        bands=tuple(Band(**band) for band in e["bands"]),
        thresholds=MappingProxyType(dict(e["thresholds"])),
        target=e["target"],
        dashboard=e["dashboard"],
        alert=e["alert"],
        reference=e["reference"],
    )


def _check_source(
    problems: _Problems, e: dict[str, Any], kinds: Mapping[str, Kind], places: Places
) -> None:
    label = f"source {e['id']!r}"
    kind = kinds.get(e["kind"])
    if kind is None:
        problems.add(
            label, f"kind: unknown source kind {e['kind']!r} (one of {', '.join(sorted(kinds))})"
        )
    try:
        places.province(e["province"])
    except KeyError as why:
        problems.add(label, f"province: {why.args[0]}")
    if e["ward"] is not None:
        try:
            ward = places.ward(e["ward"])
        except KeyError as why:
            problems.add(label, f"ward: {why.args[0]}")
        else:
            if ward.province_code != e["province"]:
                problems.add(
                    label,
                    f"ward: {e['ward']} ({ward.name}) belongs to province "
                    f"{ward.province_code}, not {e['province']}",
                )
    _check_station(problems, label, e)
    if kind is not None and kind.source_class is SourceClass.PROBE:
        parts = urlsplit(e["url"] or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.add(label, "url: a probe needs an http:// or https:// URL")


def _check_station(problems: _Problems, label: str, e: dict[str, Any]) -> None:
    stations = {station.station_id for station in STATIONS}
    if e["kind"] == "water" and e["station"] is None:
        problems.add(label, "station: required for a water gauge (a station of flood.py)")
    if e["station"] is not None and e["station"] not in stations:
        problems.add(label, f"station: unknown flood station {e['station']!r}")


def _source(e: dict[str, Any]) -> Source:
    registered: date | None = e["registered"]
    location: dict[str, float] | None = e["location"]
    return Source(
        id=e["id"],
        kind=e["kind"],
        province=e["province"],
        ward=e["ward"],
        name=e["name"],
        expected_interval_s=parse_period(e["expected_interval"]),
        department=e["department"],
        station=e["station"],
        url=e["url"],
        device_refs=tuple(e["device_refs"]),
        registered=registered.isoformat() if registered else None,
        location=Location(location["lat"], location["lon"]) if location else None,
        contact=tuple(e["contact"]),
    )


def _entries(
    problems: _Problems, document: dict[str, Any], allowed: Sequence[str]
) -> Callable[[str], list[Any]]:
    for name in document:
        if name not in allowed:
            problems.add("(top level)", f"{name}: unknown key (expected {', '.join(allowed)})")
    return lambda name: document.get(name, [])


def load_catalog(
    indicators_file: Path = INDICATORS_FILE,
    sources_file: Path = SOURCES_FILE,
    *,
    places: Places | None = None,
) -> Catalog:
    """Read, validate and freeze the catalog; CatalogError lists every problem found."""
    places = places or get_places()
    problems = _Problems(indicators_file)
    document = _read_toml(indicators_file)
    section = _entries(problems, document, ("version", "metric", "kind", "indicator"))
    if document.get("version") != 1:
        problems.add("(top level)", f"version: must be 1, found {document.get('version')!r}")
    metric_entries = problems.load(_MetricSchema(), "metric", section("metric"))
    kind_entries = problems.load(_KindSchema(), "kind", section("kind"))
    indicator_entries = problems.load(_IndicatorSchema(), "indicator", section("indicator"))
    _unique(problems, "metric", [e["key"] for e in metric_entries])
    _unique(problems, "kind", [e["key"] for e in kind_entries])
    _unique(problems, "indicator", [e["key"] for e in indicator_entries])
    metrics = _metrics(problems, metric_entries)
    kinds = _kinds(problems, kind_entries, metrics)
    for e in indicator_entries:
        _check_indicator(problems, e, kinds)
    problems.raise_if_any()
    indicators = {e["key"]: _indicator(e) for e in indicator_entries}

    source_problems = _Problems(sources_file)
    document = _read_toml(sources_file)
    section = _entries(source_problems, document, ("source",))
    source_entries = source_problems.load(_SourceSchema(), "source", section("source"))
    _unique(source_problems, "source", [e["id"] for e in source_entries])
    refs: dict[str, str] = {}
    for e in source_entries:
        _check_source(source_problems, e, kinds, places)
        for ref in e["device_refs"]:
            if refs.setdefault(ref, e["id"]) != e["id"]:
                source_problems.add(
                    f"source {e['id']!r}", f"device_refs: {ref!r} already names {refs[ref]!r}"
                )
    source_problems.raise_if_any()
    registry = Registry(tuple(_source(e) for e in source_entries), str(sources_file))
    return Catalog(
        version=1,
        metrics=MappingProxyType(metrics),
        kinds=MappingProxyType(kinds),
        indicators=MappingProxyType(indicators),
        registry=registry,
    )
