"""A ratio indicator over a calendar day or month: ``GET /indicators/{key}/calendar``.

Reports quote a day's or a month's data reuse rate, not an hour's; the figure is the ratio of
the period's summed counts (:mod:`ioc.api.calendar`), never a mean of hourly percentages.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from ioc.api import calendar
from ioc.api.context import data, now_ns, scope
from ioc.api.routes import Blueprint
from ioc.api.schemas import PlaceSchema
from ioc.errors import ApiProblem

blp = Blueprint(
    "calendar",
    __name__,
    url_prefix="/api/v1",
    description="Ratio indicators over a calendar day or month, exact from their counts.",
)


class CalendarQuery(ma.Schema):
    """``GET /indicators/{key}/calendar``."""

    class Meta:
        unknown = ma.RAISE

    place = ma.fields.String(
        required=True,
        validate=validate.Length(min=2, max=5),
        metadata={"description": "VN, a 2-digit province code or a 5-digit ward code"},
    )
    period = ma.fields.String(load_default="day", validate=validate.OneOf(calendar.PERIODS))
    date = ma.fields.String(
        validate=validate.Regexp(
            calendar.DATE_PATTERN, error="must be a day YYYY-MM-DD or a month YYYY-MM"
        ),
        metadata={
            "description": "period=day: the day, YYYY-MM-DD; period=month: the month, YYYY-MM "
            "(or any of its days); Vietnam time. Default: the current day or month, to now. A "
            "day that does not exist or has not begun is 404"
        },
    )


class CalendarPeriodSchema(ma.Schema):
    kind = ma.fields.String(required=True)
    date = ma.fields.String(required=True)
    start = ma.fields.String(required=True)
    end = ma.fields.String(required=True, metadata={"description": "the period's end, or now"})
    complete = ma.fields.Boolean(required=True)


class CalendarValueSchema(ma.Schema):
    indicator = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    place = ma.fields.Nested(PlaceSchema, required=True)
    period = ma.fields.Nested(CalendarPeriodSchema, required=True)
    value = ma.fields.Float(
        allow_none=True,
        metadata={"description": "100 × numerator / denominator, half-up to 2 decimals"},
    )
    numerator = ma.fields.Float(required=True, metadata={"description": "summed over the period"})
    denominator = ma.fields.Float(required=True, metadata={"description": "summed over the period"})
    values = ma.fields.Integer(required=True, metadata={"description": "values summed"})
    values_expected = ma.fields.Integer(
        required=True, metadata={"description": "periods of the indicator in the day or month"}
    )
    method = ma.fields.String(required=True)


@blp.route("/indicators/<indicator:key>/calendar")
class CalendarValue(MethodView):
    @blp.arguments(CalendarQuery, location="query")
    @blp.response(200, CalendarValueSchema)
    def get(self, args: dict[str, Any], key: str) -> dict[str, Any]:
        """A ratio indicator over a calendar day or month: the ratio of the summed counts."""
        reader = data()
        indicator = reader.indicator(key)
        place = reader.place(args["place"], scope())
        now = now_ns()
        try:
            period = calendar.calendar_period(args["period"], args.get("date"), now)
        except calendar.NoSuchPeriod as why:
            raise ApiProblem(
                404, "Not Found", str(why), extra={"parameter": "date", "value": args.get("date")}
            ) from None
        return calendar.calendar_value(reader, indicator, place, period, now_ns=now)
