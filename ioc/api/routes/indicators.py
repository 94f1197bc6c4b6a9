"""Indicators: the catalog, latest values per place, series, rankings, provincial scorecards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request
from flask.views import MethodView

from ioc.api import schemas
from ioc.api.context import data, now_ns, scope
from ioc.api.http import JSON_OR_CSV, csv_response, wants_csv
from ioc.api.problems import invalid_parameter
from ioc.api.routes import Blueprint
from ioc.catalog import Indicator

blp = Blueprint(
    "indicators",
    __name__,
    url_prefix="/api/v1",
    description="The catalog's indicators and their values per ward, province and nation.",
)

CSV_DOC = {"responses": {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}}
"""The CSV alternative of a 200 answer. The key is the int 200, as ``@blp.response`` stores it, so
that both media types are merged into one response; a "200" text key is a second entry that
replaces the JSON one in the document."""
VALUE_COLUMNS = (
    "indicator",
    "place.code",
    "place.level",
    "place.name",
    "place.province",
    "time",
    "value",
    "unit",
    "band.key",
    "coverage",
    "expected",
    "sources",
    "origin.source",
    "origin.ward",
)
SCORE_COLUMNS = (
    "indicator",
    "title_vi",
    "title_en",
    "unit",
    "direction",
    "time",
    "value",
    "band.key",
    "target",
    "meets_target",
    "thresholds.warning",
    "thresholds.critical",
    "coverage",
    "expected",
    "rank",
    "of",
)


def describe(indicator: Indicator) -> dict[str, Any]:
    """An indicator as the catalog resource shows it."""
    return {
        "key": indicator.key,
        "title_vi": indicator.title_vi,
        "title_en": indicator.title_en,
        "domain": indicator.domain,
        "unit": indicator.unit,
        "minimum": indicator.minimum,
        "maximum": indicator.maximum,
        "period": indicator.period,
        "method": indicator.method.value,
        "formula": indicator.formula,
        "metrics": list(indicator.metrics),
        "rollup": indicator.rollup.value,
        "direction": indicator.direction.value,
        "bands": [
            {
                "key": b.key,
                "low": b.low,
                "title_vi": b.title_vi,
                "title_en": b.title_en,
                "colour": b.colour,
            }
            for b in indicator.bands
        ],
        "thresholds": dict(indicator.thresholds),
        "target": indicator.target,
        "reference": indicator.reference,
    }


def page(items: list[dict[str, Any]], number: int, size: int) -> dict[str, Any]:
    """One page of ``items`` with the paging members."""
    first = (number - 1) * size
    return {
        "page": number,
        "page_size": size,
        "total": len(items),
        "items": items[first : first + size],
    }


@blp.route("/indicators")
class Indicators(MethodView):
    @blp.response(200, schemas.IndicatorListSchema)
    def get(self) -> dict[str, Any]:
        """Every indicator: unit, period, bands, thresholds, target and official reference."""
        return {"items": [describe(i) for i in data().catalog.indicators.values()]}


@blp.route("/indicators/<indicator:key>")
class IndicatorResource(MethodView):
    @blp.response(200, schemas.IndicatorSchema)
    def get(self, key: str) -> dict[str, Any]:
        """One indicator; 404 names the known ones."""
        return describe(data().indicator(key))


@blp.route("/indicators/<indicator:key>/values")
class LatestValues(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.LatestQuery, location="query")
    @blp.response(200, schemas.ValuesPageSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any], key: str) -> dict[str, Any] | Response:
        """The latest value of every place at a level, with band, coverage and origin."""
        reader = data()
        indicator = reader.indicator(key)
        province = args.get("province")
        if province is not None:  # places in this province (none at level=nation)
            reader.province(province, scope())  # 404 for unknown or out-of-scope provinces
        items = reader.latest(indicator, args["level"], scope(), province=province, now_ns=now_ns())
        if wants_csv():
            return csv_response(items, VALUE_COLUMNS, f"{key}-{args['level']}")
        body = page(items, args["page"], args["page_size"])
        body.update(indicator=key, level=args["level"])
        return body


@blp.route("/indicators/<indicator:key>/ranking")
class Ranking(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.RankingQuery, location="query")
    @blp.response(200, schemas.RankingSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any], key: str) -> dict[str, Any] | Response:
        """Places ranked best first for the newest period (e.g. "4th of 34 provinces")."""
        reader = data()
        indicator = reader.indicator(key)
        province = args.get("province")
        if province is not None:
            reader.province(province, scope())
        # level=ward: the wards of that province ranked among themselves; level=province: the
        # province's own row, ranked among all provinces
        among = province if args["level"] == "ward" else None
        ranking = reader.ranking(indicator, args["level"], scope(), province=among, now_ns=now_ns())
        if province is not None and among is None:
            ranking["items"] = [i for i in ranking["items"] if i["place"]["province"] == province]
        if wants_csv():
            columns = ("rank", "of", "current", *VALUE_COLUMNS)
            return csv_response(ranking["items"], columns, f"{key}-ranking-{args['level']}")
        body = page(ranking["items"], args["page"], args["page_size"])
        body.update(
            indicator=key,
            level=args["level"],
            direction=ranking["direction"],
            period_end=ranking["period_end"],
        )
        return body


@blp.route("/indicators/<indicator:key>/series")
class Series(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.SeriesQuery, location="query")
    @blp.response(200, schemas.SeriesSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any], key: str) -> dict[str, Any] | Response:
        """One place's values over a time range, aggregated per bucket (at most 5,000 points)."""
        reader = data()
        indicator = reader.indicator(key)
        place = reader.place(args["place"], scope())
        end = args.get("end") or datetime.fromtimestamp(now_ns() / 1e9, tz=UTC)
        start = args.get("start") or end - timedelta(days=7)
        interval_s = args["interval"]
        _check_range(start, end, interval_s)
        points = reader.series(
            indicator, place, start=start, end=end, interval_s=interval_s, function=args["agg"]
        )
        if wants_csv():
            return csv_response(points, ("time", "value"), f"{key}-{place.code}")
        return {
            "indicator": key,
            "unit": indicator.unit,
            "place": place.to_dict(),
            "start": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "end": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "interval_s": interval_s,
            "agg": args["agg"],
            "points": points,
        }


def _check_range(start: datetime, end: datetime, interval_s: int) -> None:
    sent = request.args.get
    if interval_s < 60:
        raise invalid_parameter("query", "interval", sent("interval"), "must be at least 1m")
    if end <= start:
        raise invalid_parameter(
            "query", "start", sent("start"), f"must be before end ({end.isoformat()})"
        )
    span = end - start
    if span > timedelta(days=schemas.MAX_RANGE_DAYS):
        raise invalid_parameter(
            "query",
            "start",
            sent("start"),
            f"start..end spans {span.days} days: at most {schemas.MAX_RANGE_DAYS}",
        )
    points = span.total_seconds() / interval_s
    if points > schemas.MAX_POINTS:
        shortest = int(span.total_seconds() // schemas.MAX_POINTS) + 1
        raise invalid_parameter(
            "query",
            "interval",
            sent("interval"),
            f"gives {points:.0f} points over this range; at most {schemas.MAX_POINTS} "
            f"(use an interval of at least {shortest} s or a shorter range)",
        )


@blp.route("/provinces/<string:code>/scorecard")
class Scorecard(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.ScorecardQuery, location="query")
    @blp.response(200, schemas.ScorecardSchema)
    @blp.doc(**CSV_DOC)
    def get(self, _args: dict[str, Any], code: str) -> dict[str, Any] | Response:
        """Every indicator for one province: latest value, band, target and national rank."""
        reader = data()
        province = reader.province(code, scope())
        items = reader.scorecard(province, now_ns())
        if wants_csv():
            return csv_response(items, SCORE_COLUMNS, f"scorecard-{province.code}")
        return {
            "province": {
                "code": province.code,
                "level": "province",
                "name": province.name,
                "province": province.code,
            },
            "items": items,
        }
