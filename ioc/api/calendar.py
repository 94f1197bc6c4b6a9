"""A ratio indicator over a calendar day or month, exact from its counts (issue 17).

Reports quote the data reuse rate of a day or a month ("74 %"), and the engine computes it per
hour, where a quiet hour (4 dossiers, 1 reused) swings it. The day's or month's figure is not the
mean of the hourly percentages: it is the ratio of the summed parts, 100 × Σ numerator /
Σ denominator over the period's hourly values of the place, which the engine stores with each
value of a ``ratio`` roll-up (``numerator``, ``denominator``: dossiers reused and received,
checks up and checks made). Rounded half-up to two decimals like every ratio
(:func:`ioc.engine.rollup.ratio_pct`); the sums are exact for counts.

Days and months are calendar periods in Vietnam time (UTC+7). An hourly value is stamped with
its hour's end, so a day holds the values stamped in (00:00, 24:00]. The current day or month
runs to now; ``values`` says how many hourly values were summed of the ``values_expected``.
Flask-free, like :mod:`ioc.api.data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ioc.api.data import IndicatorData, PlaceRef, rfc3339
from ioc.catalog import Indicator, Rollup, parse_period
from ioc.engine.rollup import ratio_pct
from ioc.errors import ApiProblem
from ioc.store import time_ns
from ioc.store.influxql import field_series

__all__ = [
    "DATE_PATTERN",
    "PERIODS",
    "CalendarPeriod",
    "NoSuchPeriod",
    "calendar_period",
    "calendar_value",
]

PERIODS = ("day", "month")
VIETNAM = timedelta(hours=7)
_NS = 1_000_000_000
_BUCKET_S = 86_400
"""Sums are read per UTC day and added up here: InfluxQL buckets align to UTC, the periods to
Vietnam time, and the query's own time bounds cut the period exactly."""


@dataclass(frozen=True, slots=True)
class CalendarPeriod:
    """A calendar day or month in Vietnam time: values stamped in (start, end] belong to it."""

    kind: str  # "day" or "month"
    first: date
    start_ns: int
    end_ns: int

    @property
    def label(self) -> str:
        """``2026-11-30`` for a day, ``2026-11`` for a month."""
        return self.first.isoformat() if self.kind == "day" else self.first.strftime("%Y-%m")

    def to_dict(self, now_ns: int) -> dict[str, Any]:
        """The period as the API shows it (``end`` is now for the current period)."""
        return {
            "kind": self.kind,
            "date": self.label,
            "start": rfc3339(self.start_ns),
            "end": rfc3339(min(self.end_ns, now_ns)),
            "complete": self.end_ns <= now_ns,
        }


def _midnight_ns(day: date) -> int:
    """00:00 Vietnam time of ``day`` in Unix nanoseconds."""
    return time_ns(datetime(day.year, day.month, day.day, tzinfo=UTC) - VIETNAM)


DATE_PATTERN = r"^(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?$"
"""``YYYY-MM`` or ``YYYY-MM-DD``, years 1970 to 2199 (what InfluxDB's nanosecond times hold)."""


def calendar_period(kind: str, text: str | None, now_ns: int) -> CalendarPeriod:
    """The day or month ``text`` names (``YYYY-MM-DD``; a month also as ``YYYY-MM``, or by any
    of its days), the current one if None. :class:`NoSuchPeriod` for a day that does not exist
    (2026-02-30), a month given for a day, or a period that has not begun."""
    today = (datetime.fromtimestamp(now_ns / _NS, tz=UTC) + VIETNAM).date()
    if kind not in PERIODS:
        raise NoSuchPeriod(f"period must be one of {', '.join(PERIODS)}")
    if text is None:
        named = today
    elif len(text) == 7 and kind == "day":
        raise NoSuchPeriod(f"{text} is a month: period=day needs a day, YYYY-MM-DD")
    else:
        try:
            named = date.fromisoformat(text if len(text) == 10 else f"{text}-01")
        except ValueError:
            raise NoSuchPeriod(f"there is no day {text}") from None
    if kind == "day":
        first, following = named, named + timedelta(days=1)
    else:
        first = named.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    period = CalendarPeriod(kind, first, _midnight_ns(first), _midnight_ns(following))
    if period.start_ns >= now_ns:
        raise NoSuchPeriod(f"{period.label} has not begun (Vietnam time)")
    return period


class NoSuchPeriod(ValueError):
    """The day or month asked for does not exist (yet): nothing to answer for it."""


def _ns_text(ns: int) -> str:
    """RFC 3339 with nanoseconds, for a query bound one nanosecond after a stamp."""
    moment = datetime.fromtimestamp(ns // _NS, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % _NS:09d}Z"


def calendar_value(
    reader: IndicatorData,
    indicator: Indicator,
    place: PlaceRef,
    period: CalendarPeriod,
    *,
    now_ns: int,
) -> dict[str, Any]:
    """``indicator`` at ``place`` over ``period``: 100 × Σ numerator / Σ denominator of its
    stored values (404 for an indicator that is not a ratio of sums: it has no such figure)."""
    if indicator.rollup is not Rollup.RATIO:
        ratios = sorted(k for k, i in reader.catalog.indicators.items() if i.rollup is Rollup.RATIO)
        raise ApiProblem(
            404,
            "Not Found",
            f"indicator {indicator.key!r} is not a ratio of counts, so it has no exact day or "
            f"month figure; indicators that have one: {', '.join(ratios)}",
            extra={"parameter": "indicator", "value": indicator.key},
        )
    filters = ["indicator", "level"]
    params = {"indicator": indicator.key, "level": place.level}
    if place.level != "nation":
        filters.append(place.level)
        params[place.level] = place.code
    end = min(period.end_ns, now_ns)
    params["start"] = _ns_text(period.start_ns + 1)  # (start, end]: shifted to [start, end)
    params["end"] = _ns_text(end + 1)
    sums: dict[str, float] = {}
    for function, field in (("sum", "numerator"), ("sum", "denominator"), ("count", "value")):
        text = field_series(
            reader.db, function=function, field=field, interval_s=_BUCKET_S, filters=filters
        )
        total = 0.0
        for series in reader.store.query(text, params):
            for row in series.rows():
                total += float(row.get(field) or 0.0)
        sums[field] = total
    numerator, denominator = sums["numerator"], sums["denominator"]
    period_s = parse_period(indicator.period)
    return {
        "indicator": indicator.key,
        "unit": indicator.unit,
        "place": place.to_dict(),
        "period": period.to_dict(now_ns),
        "value": ratio_pct(numerator, denominator),
        "numerator": numerator,
        "denominator": denominator,
        "values": int(sums["value"]),
        "values_expected": (end - period.start_ns) // (period_s * _NS),
        "method": f"100 × Σ numerator / Σ denominator of the {indicator.period} values "
        "in the period (a ratio of sums, not a mean of the ratios)",
    }
