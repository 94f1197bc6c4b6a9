"""The API's marshmallow schemas: query parameters (validated at the edge) and responses.

Every query schema refuses unknown parameters, so a typo (``?levl=ward``) is a 400 naming it
rather than a silently ignored filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import validate

from ioc.catalog.loader import KEY_PATTERN, SOURCE_ID_PATTERN

MAX_PAGE_SIZE = 500
MAX_POINTS = 5000
"""Most points one series response may hold ((end - start) / interval)."""
MAX_RANGE_DAYS = 400
_DURATION = re.compile(r"^([1-9][0-9]{0,5})(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WITHIN_30_DAYS = (
    r"^(?:[1-9][0-9]{0,5}s"  # every number of seconds the duration syntax allows (< 12 days)
    r"|(?:[1-9][0-9]{0,3}|[1-3][0-9]{4}|4[0-2][0-9]{3}|43[01][0-9]{2}|43200)m"  # <= 43200
    r"|(?:[1-9][0-9]?|[1-6][0-9]{2}|7[01][0-9]|720)h"  # <= 720
    r"|(?:[1-9]|[12][0-9]|30)d)$"  # <= 30
)
"""The durations of at most 30 days, as the document states them (``since`` of dead letters)."""

PROVINCE_CODE = validate.Regexp(r"^[0-9]{2}$", error="must be a 2-digit province code, e.g. 01")
WARD_CODE = validate.Regexp(r"^[0-9]{5}$", error="must be a 5-digit ward code, e.g. 19810")
FORMATS = ("json", "csv")
THIRTY_DAYS_S = 30 * 86400
ALERTNAME = validate.Regexp(
    SOURCE_ID_PATTERN, error="must be an alert name such as flood-alarm or feed-silent"
)
SEVERITIES = ("warning", "critical")
SILENCE_LABELS = ("alertname", "province", "ward", "source", "indicator", "severity")
"""The labels a silence made through the API may match (exactly)."""
NOT_BLANK = validate.Regexp(r"^\s*\S", error="must not be blank")


def duration_seconds(text: str) -> int:
    """Seconds of a duration such as ``90s``, ``15m``, ``1h`` or ``7d``; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 15m, 1h or 1d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


class Duration(ma.fields.Field[int]):
    """A duration text (``15m``, ``1h``, ``1d``), loaded as seconds; documented as a string."""

    def __init__(self, *, pattern: str = _DURATION.pattern, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata = {"type": "string", "pattern": pattern, **self.metadata}
        self.dump_default = ma.missing  # the default is in seconds; the parameter is text

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str):
            raise ma.ValidationError("must be a duration such as 15m, 1h or 1d")
        try:
            return duration_seconds(value)
        except ValueError as why:
            raise ma.ValidationError(str(why)) from None


class _Query(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class _Paged(_Query):
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(
        load_default=100, validate=validate.Range(min=1, max=MAX_PAGE_SIZE)
    )


class _Formatted(_Query):
    format = ma.fields.String(
        validate=validate.OneOf(FORMATS),
        metadata={"description": "csv for text/csv (or send Accept: text/csv); default json"},
    )


class LatestQuery(_Paged, _Formatted):
    """``GET /indicators/{key}/values``."""

    level = ma.fields.String(
        load_default="province",
        validate=validate.OneOf(("nation", "province", "ward", "source")),
        metadata={
            "description": "source: each registered source's own values (a task register, "
            "a station, a probed system)"
        },
    )
    province = ma.fields.String(
        validate=PROVINCE_CODE,
        metadata={"description": "only places in this province (none at level=nation)"},
    )


class RankingQuery(_Paged, _Formatted):
    """``GET /indicators/{key}/ranking``."""

    level = ma.fields.String(load_default="province", validate=validate.OneOf(("province", "ward")))
    province = ma.fields.String(
        validate=PROVINCE_CODE,
        metadata={
            "description": "level=ward: rank the wards of this province; level=province: "
            "only this province's row, with its national rank"
        },
    )


class SeriesQuery(_Formatted):
    """``GET /indicators/{key}/series``."""

    place = ma.fields.String(
        required=True,
        validate=validate.Length(min=2, max=5),
        metadata={"description": "VN, a 2-digit province code or a 5-digit ward code"},
    )
    start = ma.fields.AwareDateTime(metadata={"description": "RFC 3339; default end - 7 days"})
    end = ma.fields.AwareDateTime(metadata={"description": "RFC 3339; default now"})
    interval = Duration(
        load_default=3600,
        metadata={"description": "bucket size, e.g. 15m, 1h, 1d (>= 1m)", "default": "1h"},
    )
    agg = ma.fields.String(
        load_default="mean", validate=validate.OneOf(("mean", "max", "min", "last", "sum", "count"))
    )


class ScorecardQuery(_Formatted):
    """``GET /provinces/{code}/scorecard``."""


class FeedsQuery(_Paged, _Formatted):
    """``GET /feeds``."""

    province = ma.fields.String(validate=PROVINCE_CODE)
    kind = ma.fields.String(validate=validate.Length(min=1, max=32))
    state = ma.fields.String(
        validate=validate.OneOf(("live", "stale", "never_reported", "future_timestamp"))
    )


class DeadLetterQuery(_Formatted):
    """``GET /dead-letters``."""

    since = Duration(
        load_default=86400,
        metadata={"description": "how far back, at most 30d", "default": "24h"},
        pattern=WITHIN_30_DAYS,  # the view refuses more (dead letters are kept 30 days)
    )
    reason = ma.fields.String(validate=validate.Regexp(r"^[a-z0-9_]{1,40}$"))
    province = ma.fields.String(validate=PROVINCE_CODE)
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class FeedHealthQuery(_Query):
    """``GET /health/feeds``."""

    since = Duration(
        load_default=86400,
        metadata={"description": "how far back, at most 30d", "default": "24h"},
        pattern=WITHIN_30_DAYS,
    )
    province = ma.fields.String(validate=PROVINCE_CODE)

    @ma.validates("since")
    def _at_most_30_days(self, value: int, **_: Any) -> None:
        if value > THIRTY_DAYS_S:
            raise ma.ValidationError("at most 30d (dead letters are kept 30 days)")


class RemindersQuery(_Query):
    """``GET /reminders``."""

    unit = ma.fields.String(
        validate=validate.Regexp(
            r"^(?:[0-9]{5}|[0-9]{2}(?:-[a-z0-9]+){0,20})$",
            error="must be a unit id: a 5-digit ward code, a 2-digit province code or "
            "<province>-<department>, e.g. 01-so-khoa-hoc-va-cong-nghe",
        ),
        metadata={"description": "only this unit (a ward code, <province>-<department>)"},
    )
    province = ma.fields.String(validate=PROVINCE_CODE)


class AlertsQuery(_Query):
    """``GET /alerts``."""

    province = ma.fields.String(
        validate=PROVINCE_CODE,
        metadata={"description": "only alerts labelled with this province"},
    )
    severity = ma.fields.String(validate=validate.OneOf(SEVERITIES))
    alertname = ma.fields.String(
        validate=ALERTNAME, metadata={"description": "e.g. flood-alarm, aqi-high, feed-silent"}
    )
    silenced = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "include silenced alerts (state suppressed); default true"},
    )


class AlertHistoryQuery(_Query):
    """``GET /alerts/history``."""

    since = Duration(
        load_default=86400,
        metadata={"description": "how far back, at most 30d", "default": "24h"},
        pattern=WITHIN_30_DAYS,
    )
    province = ma.fields.String(
        validate=PROVINCE_CODE,
        metadata={"description": "only this province's alerts (default: every readable one)"},
    )
    limit = ma.fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))

    @ma.validates("since")
    def _at_most_30_days(self, value: int, **_: Any) -> None:
        if value > THIRTY_DAYS_S:
            raise ma.ValidationError("at most 30d")


class SilencesQuery(_Query):
    """``GET /alerts/silences``."""

    state = ma.fields.String(validate=validate.OneOf(("active", "pending", "expired")))


class SilenceMatchersSchema(ma.Schema):
    """The labels a new silence matches, each exactly; at least one."""

    class Meta:
        unknown = ma.RAISE

    error_messages = {  # noqa: RUF012 - marshmallow's own class attribute
        "unknown": "not a label a silence can match: use " + ", ".join(SILENCE_LABELS)
    }

    alertname = ma.fields.String(validate=ALERTNAME)
    province = ma.fields.String(validate=PROVINCE_CODE)
    ward = ma.fields.String(validate=WARD_CODE)
    source = ma.fields.String(
        validate=validate.Regexp(SOURCE_ID_PATTERN, error="must be a registered source id")
    )
    indicator = ma.fields.String(
        validate=validate.Regexp(KEY_PATTERN, error="must be an indicator key, e.g. flood_level")
    )
    severity = ma.fields.String(validate=validate.OneOf(SEVERITIES))


def _some_label(matchers: dict[str, str]) -> None:
    if not matchers:
        raise ma.ValidationError("give at least one of " + ", ".join(SILENCE_LABELS))


class SilenceCreateSchema(ma.Schema):
    """``POST /alerts/silences``: what to mute, for how long, and why."""

    class Meta:
        unknown = ma.RAISE

    matchers = ma.fields.Nested(
        SilenceMatchersSchema,
        required=True,
        validate=_some_label,
        metadata={
            "minProperties": 1,
            "description": "label -> exact value; the silence mutes alerts carrying every one",
        },
    )
    duration = Duration(
        required=True,
        pattern=WITHIN_30_DAYS,
        metadata={"description": "how long from now, e.g. 2h, at most 30d"},
    )
    comment = ma.fields.String(
        required=True,
        validate=[validate.Length(min=1, max=1000), NOT_BLANK],
        metadata={"description": "why (maintenance, known cause...)"},
    )
    created_by = ma.fields.String(
        validate=[validate.Length(min=1, max=100), NOT_BLANK],
        metadata={"description": "who; default the API key's name"},
    )

    @ma.validates("duration")
    def _at_most_30_days(self, value: int, **_: Any) -> None:
        if value > THIRTY_DAYS_S:
            raise ma.ValidationError("at most 30d")


class SearchQuery(_Query):
    """``GET /places/search``."""

    q = ma.fields.String(required=True, validate=validate.Length(min=1, max=100))
    limit = ma.fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class WardsQuery(_Paged):
    """``GET /places/provinces/{code}/wards``."""

    q = ma.fields.String(validate=validate.Length(min=1, max=100))


# --- responses --------------------------------------------------------------------------------
#
# Large answers (a 30-day hourly series is 720 points, a ward level a few thousand values) are
# not dumped by marshmallow field objects point by point: that was most of the API's own time.
# Each response schema with lists is a :class:`FastDumpSchema`: its ``dump`` runs a plain
# function compiled once from the schema's own declared fields (same keys, same order, same
# conversions: String -> str, Integer -> int, Float -> float, Nested, List, Dict...), so
# the schema stays the one source of the documented shape. tests/api/test_serialization.py
# checks on real answers that this gives exactly what marshmallow's own dump gives.

_MISSING = ma.missing
Dumper = Callable[[Any], Any]


def _text(value: Any) -> Any:
    if value is None or value.__class__ is str:
        return value
    return ma.utils.ensure_text_type(value)


def _integer(value: Any) -> Any:
    if value is None or value.__class__ is int:
        return value
    return int(value)


def _real(value: Any) -> Any:
    if value is None or value.__class__ is float:
        return value
    return float(value)


def _same(value: Any) -> Any:
    return value


_EXACT: dict[type[Any], type[Any]] = {
    ma.fields.String: str,
    ma.fields.Integer: int,
    ma.fields.Float: float,
}
"""The type of value a scalar field dumps unchanged (``as_string`` numbers have no fast twin)."""

_SCALARS: dict[type[Any], Dumper] = {
    ma.fields.String: _text,
    ma.fields.Integer: _integer,
    ma.fields.Float: _real,
    ma.fields.Boolean: _same,  # marshmallow 4 dumps a Boolean's value as it is
    ma.fields.Raw: _same,
}


def _nested_dumper(field: Any) -> Dumper | None:
    nested = field.schema
    inner = schema_dumper(nested)
    if inner is None:
        return None
    if nested.many or field.many:
        return lambda value: None if value is None else [inner(v) for v in value]
    return lambda value: None if value is None else inner(value)


def _list_dumper(field: Any) -> Dumper | None:
    each = _field_dumper(field.inner)
    if each is None:
        return None
    return lambda value: None if value is None else [each(v) for v in value]


def _dict_dumper(field: Any) -> Dumper | None:
    keys = _same if field.key_field is None else _field_dumper(field.key_field)
    values = _same if field.value_field is None else _field_dumper(field.value_field)
    if keys is None or values is None:
        return None
    return lambda value: None if value is None else {keys(k): values(v) for k, v in value.items()}


_CONTAINERS: dict[type[Any], Callable[[Any], Dumper | None]] = {
    ma.fields.Nested: _nested_dumper,
    ma.fields.List: _list_dumper,
    ma.fields.Dict: _dict_dumper,
}


def _field_dumper(field: ma.fields.Field[Any]) -> Dumper | None:
    """A plain function doing what ``field._serialize`` does, or None if it has no fast twin."""
    if getattr(field, "as_string", False):
        return None
    kind = type(field)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar
    container = _CONTAINERS.get(kind)
    return None if container is None else container(field)


def schema_dumper(schema: ma.Schema) -> Dumper | None:
    """A function dumping one dict as ``schema.dump`` does, or None if the schema needs more
    than declared fields read from dict keys (hooks, ``only``/``exclude``, ``attribute``,
    ``data_key``, method fields...): then marshmallow itself is used."""
    hooks = schema._hooks  # marshmallow's resolved pre/post hooks
    if schema.many or hooks.get("pre_dump") or hooks.get("post_dump"):
        return None
    if type(schema).get_attribute is not ma.Schema.get_attribute:
        return None
    # One straight-line function per schema (as dataclasses writes __init__): a loop over the
    # fields calling a converter each was 4x slower per point. A value already of the field's
    # type is kept as it is; others go through the converter (what marshmallow's _serialize
    # does); an absent member stays absent.
    namespace: dict[str, Any] = {"MISSING": _MISSING, "slow": schema.dump}
    lines = [
        "def dump(obj):",
        "    if obj.__class__ is not dict:",
        "        return slow(obj)",
        "    out = {}",
    ]
    for n, (name, field) in enumerate(schema.dump_fields.items()):
        if field.attribute is not None or field.data_key is not None:
            return None
        if field.dump_default is not _MISSING:
            return None
        dumper = _field_dumper(field)
        if dumper is None:
            return None
        namespace[f"convert{n}"], namespace[f"kind{n}"] = dumper, _EXACT.get(type(field))
        lines.append(f"    value = obj.get({name!r}, MISSING)")
        lines.append("    if value is not MISSING:")
        if dumper is _same:
            lines.append(f"        out[{name!r}] = value")
        elif namespace[f"kind{n}"] is not None:
            lines.append(
                f"        out[{name!r}] = value if value is None or value.__class__ is kind{n} "
                f"else convert{n}(value)"
            )
        else:
            lines.append(f"        out[{name!r}] = convert{n}(value)")
    lines.append("    return out")
    exec("\n".join(lines), namespace)  # noqa: S102 - text built above from the schema's names
    dump: Dumper = namespace["dump"]
    return dump


class FastDumpSchema(ma.Schema):
    """A response schema whose ``dump`` of a dict runs its compiled plain function."""

    compiled: ClassVar[bool] = True
    """False: every dump goes through marshmallow's fields (what the equivalence test compares
    with; also a switch should a difference ever be found in production)."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        if (
            FastDumpSchema.compiled
            and not (self.many if many is None else many)
            and isinstance(obj, dict)
        ):
            try:
                fast = self.__dict__["_fast"]
            except KeyError:  # compiled on first use, once per schema instance
                fast = self.__dict__["_fast"] = schema_dumper(self)
            if fast is not None:
                return fast(obj)
        return super().dump(obj, many=many)


class BandSchema(ma.Schema):
    key = ma.fields.String(required=True)
    title_vi = ma.fields.String(required=True)
    title_en = ma.fields.String(required=True)
    colour = ma.fields.String(required=True)


class BandRangeSchema(BandSchema):
    low = ma.fields.Float(required=True, metadata={"description": "lowest value of the band"})


class IndicatorSchema(ma.Schema):
    key = ma.fields.String(required=True)
    title_vi = ma.fields.String(required=True)
    title_en = ma.fields.String(required=True)
    domain = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    minimum = ma.fields.Float(allow_none=True)
    maximum = ma.fields.Float(allow_none=True)
    period = ma.fields.String(required=True)
    method = ma.fields.String(required=True)
    formula = ma.fields.String(allow_none=True)
    metrics = ma.fields.List(ma.fields.String(), required=True)
    rollup = ma.fields.String(required=True)
    direction = ma.fields.String(required=True)
    bands = ma.fields.List(ma.fields.Nested(BandRangeSchema), required=True)
    thresholds = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    target = ma.fields.Float(allow_none=True)
    reference = ma.fields.String(required=True)


class IndicatorListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(IndicatorSchema), required=True)


class PlaceSchema(ma.Schema):
    code = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    province = ma.fields.String(allow_none=True)


class OriginSchema(ma.Schema):
    source = ma.fields.String(required=True)
    ward = ma.fields.String(allow_none=True)
    province = ma.fields.String(allow_none=True)


class CoverageCountSchema(ma.Schema):
    reporting = ma.fields.Integer(required=True, metadata={"description": "units that reported"})
    expected = ma.fields.Integer(required=True, metadata={"description": "units registered"})


class CoverageSchema(ma.Schema):
    """Coverage by kind of unit, each place counted once (docs/catalog.md, "What the engine
    writes"); a kind that does not apply at the value's level is null."""

    provinces = ma.fields.Nested(
        CoverageCountSchema,
        required=True,
        allow_none=True,
        metadata={"description": "nation: provinces with a registered / reporting source"},
    )
    wards = ma.fields.Nested(
        CoverageCountSchema,
        required=True,
        allow_none=True,
        metadata={"description": "province, nation: communes and wards"},
    )
    departments = ma.fields.Nested(
        CoverageCountSchema,
        required=True,
        allow_none=True,
        metadata={"description": "province, nation: the provinces' departments (province level)"},
    )
    sources = ma.fields.Nested(CoverageCountSchema, required=True)
    text = ma.fields.String(
        required=True,
        metadata={
            "example": "130 of 130 communes and wards; 2 of 2 departments (135 of 135 sources)"
        },
    )
    text_vi = ma.fields.String(
        required=True,
        metadata={"example": "130/130 xã, phường; 2/2 sở, ban, ngành (135/135 nguồn)"},
    )


COVERAGE_DOC = {
    "description": "coverage by kind of unit, each place counted once however many sources it "
    "has, in numbers and in words; null for a value the engine wrote before it counted them"
}


class ValueSchema(ma.Schema):
    indicator = ma.fields.String(required=True)
    place = ma.fields.Nested(PlaceSchema, required=True)
    time = ma.fields.String(required=True, metadata={"description": "period end, RFC 3339"})
    age_s = ma.fields.Integer(required=True)
    value = ma.fields.Float(required=True)
    unit = ma.fields.String(required=True)
    band = ma.fields.Nested(BandSchema, allow_none=True)
    coverage = ma.fields.Integer(allow_none=True)
    expected = ma.fields.Integer(allow_none=True)
    sources = ma.fields.Integer(allow_none=True)
    origin = ma.fields.Nested(OriginSchema, allow_none=True)
    coverage_detail = ma.fields.Nested(CoverageSchema, allow_none=True, metadata=COVERAGE_DOC)


class _Page(ma.Schema):
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)


class ValuesPageSchema(FastDumpSchema, _Page):
    indicator = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(ValueSchema), required=True)


class RankedSchema(ValueSchema):
    rank = ma.fields.Integer(allow_none=True)
    of = ma.fields.Integer(required=True)
    current = ma.fields.Boolean(required=True)


class RankingSchema(FastDumpSchema, _Page):
    indicator = ma.fields.String(required=True)
    level = ma.fields.String(required=True)
    direction = ma.fields.String(required=True)
    period_end = ma.fields.String(allow_none=True)
    items = ma.fields.List(ma.fields.Nested(RankedSchema), required=True)


class PointSchema(ma.Schema):
    time = ma.fields.String(required=True)
    value = ma.fields.Float(required=True)


class SeriesSchema(FastDumpSchema):
    indicator = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    place = ma.fields.Nested(PlaceSchema, required=True)
    start = ma.fields.String(required=True)
    end = ma.fields.String(required=True)
    interval_s = ma.fields.Integer(required=True)
    agg = ma.fields.String(required=True)
    points = ma.fields.List(ma.fields.Nested(PointSchema), required=True)


class ScoreSchema(ma.Schema):
    indicator = ma.fields.String(required=True)
    title_vi = ma.fields.String(required=True)
    title_en = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    direction = ma.fields.String(required=True)
    target = ma.fields.Float(allow_none=True)
    thresholds = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float())
    value = ma.fields.Float(allow_none=True)
    time = ma.fields.String(allow_none=True)
    band = ma.fields.Nested(BandSchema, allow_none=True)
    coverage = ma.fields.Integer(allow_none=True)
    expected = ma.fields.Integer(allow_none=True)
    coverage_detail = ma.fields.Nested(CoverageSchema, allow_none=True, metadata=COVERAGE_DOC)
    meets_target = ma.fields.Boolean(allow_none=True)
    rank = ma.fields.Integer(allow_none=True)
    of = ma.fields.Integer(allow_none=True)


class ScorecardSchema(FastDumpSchema):
    province = ma.fields.Nested(PlaceSchema, required=True)
    items = ma.fields.List(ma.fields.Nested(ScoreSchema), required=True)


class ProvinceSchema(ma.Schema):
    code = ma.fields.String(required=True)
    codename = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    division_type = ma.fields.String(required=True)


class WardSchema(ProvinceSchema):
    province_code = ma.fields.String(required=True)


class ProvinceListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ProvinceSchema), required=True)


class WardPageSchema(_Page):
    items = ma.fields.List(ma.fields.Nested(WardSchema), required=True)


class SearchResultSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PlaceSchema), required=True)


class FeedSchema(ma.Schema):
    source = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    province = ma.fields.String(required=True)
    ward = ma.fields.String(allow_none=True)
    department = ma.fields.String(allow_none=True)
    expected_interval_s = ma.fields.Integer(required=True)
    last_record = ma.fields.String(allow_none=True)
    last_received = ma.fields.String(allow_none=True)
    age_s = ma.fields.Integer(allow_none=True)
    state = ma.fields.String(required=True)
    since = ma.fields.String(allow_none=True)


class FeedPageSchema(FastDumpSchema, _Page):
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    items = ma.fields.List(ma.fields.Nested(FeedSchema), required=True)


class DeadLetterSchema(ma.Schema):
    time = ma.fields.String(required=True)
    reason = ma.fields.String(allow_none=True)
    province = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True)
    topic = ma.fields.String(allow_none=True)
    message = ma.fields.String(allow_none=True)
    excerpt = ma.fields.String(allow_none=True)


class DeadLetterListSchema(FastDumpSchema):
    items = ma.fields.List(ma.fields.Nested(DeadLetterSchema), required=True)


class RejectionSchema(ma.Schema):
    reason = ma.fields.String(required=True)
    message = ma.fields.String(required=True)


class PushResultSchema(ma.Schema):
    source = ma.fields.String(required=True)
    readings = ma.fields.Integer(required=True)
    points_written = ma.fields.Integer(required=True)
    rejected = ma.fields.List(ma.fields.Nested(RejectionSchema), required=True)


class ReminderUnitSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(
        required=True, validate=validate.OneOf(("ward", "department", "province"))
    )
    province = ma.fields.String(required=True)
    province_name = ma.fields.String(required=True)
    ward = ma.fields.String(allow_none=True)


class ReminderRegisterSchema(ma.Schema):
    source = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    total = ma.fields.Integer(required=True)
    completed = ma.fields.Integer(required=True)
    overdue = ma.fields.Integer(required=True)
    due_soon = ma.fields.Integer(required=True)
    reported_at = ma.fields.String(required=True, metadata={"description": "RFC 3339"})


class ReminderFeedSchema(ma.Schema):
    source = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    state = ma.fields.String(required=True, validate=validate.OneOf(("stale", "never_reported")))
    last_record = ma.fields.String(allow_none=True)
    age_s = ma.fields.Integer(allow_none=True)
    since = ma.fields.String(
        allow_none=True,
        metadata={"description": "stale: when it stopped being live; never: its registration"},
    )


class ReminderSchema(ma.Schema):
    unit = ma.fields.Nested(ReminderUnitSchema, required=True)
    subject = ma.fields.String(required=True)
    overdue_tasks = ma.fields.Integer(required=True)
    due_soon_tasks = ma.fields.Integer(required=True)
    registers = ma.fields.List(ma.fields.Nested(ReminderRegisterSchema), required=True)
    feeds = ma.fields.List(ma.fields.Nested(ReminderFeedSchema), required=True)
    has_contact = ma.fields.Boolean(
        required=True, metadata={"description": "whether the digest can be e-mailed"}
    )
    wall_url = ma.fields.String(required=True)


class ReminderListSchema(ma.Schema):
    at = ma.fields.String(required=True)
    soon_window = ma.fields.String(required=True, metadata={"description": "e.g. 7d"})
    items = ma.fields.List(ma.fields.Nested(ReminderSchema), required=True)


class AlertSchema(ma.Schema):
    fingerprint = ma.fields.String(required=True, metadata={"description": "Alertmanager's id"})
    alertname = ma.fields.String(required=True)
    severity = ma.fields.String(allow_none=True)
    state = ma.fields.String(
        required=True, validate=validate.OneOf(("active", "suppressed", "unprocessed"))
    )
    silenced_by = ma.fields.List(ma.fields.String(), required=True)
    inhibited_by = ma.fields.List(ma.fields.String(), required=True)
    province = ma.fields.String(allow_none=True)
    ward = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True)
    indicator = ma.fields.String(allow_none=True)
    level = ma.fields.String(allow_none=True)
    rule = ma.fields.String(allow_none=True)
    labels = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    annotations = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={"description": "summary_vi, summary_en, condition, value, band, wall..."},
    )
    starts_at = ma.fields.String(required=True, metadata={"description": "RFC 3339"})
    ends_at = ma.fields.String(required=True, metadata={"description": "RFC 3339"})
    updated_at = ma.fields.String(required=True, metadata={"description": "RFC 3339"})
    generator_url = ma.fields.String(allow_none=True)


class AlertListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AlertSchema), required=True)


class AlertChangeSchema(ma.Schema):
    time = ma.fields.String(required=True)
    alertname = ma.fields.String(allow_none=True)
    rule = ma.fields.String(allow_none=True)
    severity = ma.fields.String(allow_none=True)
    state = ma.fields.String(allow_none=True, metadata={"description": "the new state"})
    previous = ma.fields.String(allow_none=True, metadata={"description": "the state before"})
    value = ma.fields.Float(allow_none=True)
    threshold = ma.fields.Float(allow_none=True)
    province = ma.fields.String(allow_none=True)
    ward = ma.fields.String(allow_none=True)
    source = ma.fields.String(allow_none=True)
    summary_vi = ma.fields.String(allow_none=True)
    summary_en = ma.fields.String(allow_none=True)
    fingerprint = ma.fields.String(allow_none=True)


class AlertHistorySchema(FastDumpSchema):
    items = ma.fields.List(ma.fields.Nested(AlertChangeSchema), required=True)


class MatcherSchema(ma.Schema):
    name = ma.fields.String(required=True)
    value = ma.fields.String(required=True)
    operator = ma.fields.String(required=True, validate=validate.OneOf(("=", "!=", "=~", "!~")))


class SilenceSchema(ma.Schema):
    id = ma.fields.String(required=True)
    state = ma.fields.String(
        required=True, validate=validate.OneOf(("active", "pending", "expired"))
    )
    matchers = ma.fields.List(ma.fields.Nested(MatcherSchema), required=True)
    starts_at = ma.fields.String(required=True)
    ends_at = ma.fields.String(required=True)
    updated_at = ma.fields.String(required=True)
    created_by = ma.fields.String(required=True)
    comment = ma.fields.String(required=True)


class SilenceListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SilenceSchema), required=True)


class LiveSchema(ma.Schema):
    status = ma.fields.String(required=True)


class ReadySchema(ma.Schema):
    status = ma.fields.String(required=True)
    influxdb = ma.fields.Dict(required=True)
    collectors = ma.fields.List(ma.fields.Dict(), required=True)
    engine = ma.fields.Dict(allow_none=True)


class _RefusalFigures(ma.Schema):
    refused = ma.fields.Integer(required=True, metadata={"description": "packets refused"})
    causes = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": "refusals per cause: packet_too_large, malformed_packet..."},
    )
    first = ma.fields.String(required=True)
    last = ma.fields.String(required=True)
    last_cause = ma.fields.String(allow_none=True)


class SourceRefusalsSchema(_RefusalFigures):
    source = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    province = ma.fields.String(required=True)
    ward = ma.fields.String(allow_none=True)
    clients = ma.fields.List(ma.fields.String(), required=True)
    summary = ma.fields.String(required=True)


class ClientRefusalsSchema(_RefusalFigures):
    client_id = ma.fields.String(required=True)
    username = ma.fields.String(allow_none=True)


class FeedHealthSchema(ma.Schema):
    window = ma.fields.String(required=True)
    start = ma.fields.String(required=True)
    end = ma.fields.String(required=True)
    refused = ma.fields.Integer(required=True)
    truncated = ma.fields.Boolean(required=True)
    sources = ma.fields.List(ma.fields.Nested(SourceRefusalsSchema), required=True)
    unattributed = ma.fields.List(ma.fields.Nested(ClientRefusalsSchema), required=True)


# --- per-feed data quality (issue 17, item 5; ioc/api/quality.py) ------------------------------


class FeedQualityQuery(_Paged, _Formatted):
    """``GET /feeds/quality``."""

    province = ma.fields.String(validate=PROVINCE_CODE)
    kind = ma.fields.String(validate=validate.Length(min=1, max=32))
    since = Duration(
        load_default=86400,
        metadata={"description": "the window before now, at most 30d", "default": "24h"},
        pattern=WITHIN_30_DAYS,  # dead letters are kept 30 days
    )


_SHARE = {"description": "percent, two decimals; null when nothing was received"}


class FeedQualitySchema(ma.Schema):
    source = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    province = ma.fields.String(required=True)
    ward = ma.fields.String(allow_none=True)
    department = ma.fields.String(allow_none=True)
    expected_interval_s = ma.fields.Integer(required=True)
    score = ma.fields.Float(
        required=True, metadata={"description": "the lowest of the four shares (0: nothing sent)"}
    )
    accepted = ma.fields.Float(allow_none=True, metadata=_SHARE)
    complete = ma.fields.Float(allow_none=True, metadata=_SHARE)
    in_range = ma.fields.Float(allow_none=True, metadata=_SHARE)
    on_time = ma.fields.Float(allow_none=True, metadata=_SHARE)
    records = ma.fields.Integer(required=True)
    readings_received = ma.fields.Integer(required=True)
    readings_stored = ma.fields.Integer(required=True)
    rejected = ma.fields.Integer(required=True)
    out_of_range = ma.fields.Integer(required=True)
    expected_fields = ma.fields.List(ma.fields.String(), required=True)
    slots_filled = ma.fields.Integer(required=True)
    slots_expected = ma.fields.Integer(required=True)


class FeedQualityPageSchema(_Page):
    since_s = ma.fields.Integer(required=True)
    start = ma.fields.String(required=True)
    end = ma.fields.String(required=True)
    items = ma.fields.List(ma.fields.Nested(FeedQualitySchema), required=True)
