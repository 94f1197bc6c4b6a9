"""What the API reads: places, values, series, rankings, feeds, dead letters, alert history, health.

Flask-free: every method takes plain values and returns plain dictionaries ready to serialise
(times as RFC 3339 text). Query text comes from :mod:`ioc.store.influxql`, the one module that
builds it, so the API, the walls and the alerts read the same numbers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.brokerlog import CAUSES, REFUSED
from ioc.api.coverage import coverage_detail
from ioc.catalog import Catalog, Direction, Indicator, Source
from ioc.engine.values import NATION
from ioc.errors import ApiProblem
from ioc.formulas import liveness
from ioc.places import Places, Province, Ward
from ioc.settings import Settings
from ioc.store import Store
from ioc.store.influxql import (
    COVERAGE_FIELDS,
    VALUE_FIELDS,
    alert_history,
    broker_refusals,
    last_received_in,
    latest_detail_values,
    latest_self_metrics,
    recent_dead_letters,
    value_series,
)

log = logging.getLogger(__name__)

_NS = 1_000_000_000
LATEST_WINDOW = timedelta(days=35)
"""How far back "latest" looks; a place with no value in this window has none."""
FEED_WINDOW = timedelta(days=30)
"""How far back a feed's last record is looked for; older than this counts as never seen."""
LIVENESS_GRACE = 2.0
"""A feed is live while its last record is younger than its expected interval × this factor
(the engine's ``feed_live_share`` uses the same grace)."""
LEVELS = ("nation", "province", "ward", "source")
REFUSAL_ROWS = 100_000
"""Most broker refusals one feed-health answer reads (newest first); beyond, it says truncated."""


@dataclass(frozen=True, slots=True)
class PlaceRef:
    """A place the API can answer for: the nation, a province or a ward."""

    level: str
    code: str
    name: str
    province: str | None

    def to_dict(self) -> dict[str, Any]:
        """The place as the API shows it."""
        return {
            "code": self.code,
            "level": self.level,
            "name": self.name,
            "province": self.province,
        }


class Scope:
    """Which provinces a caller may read (None: all of them)."""

    def __init__(self, provinces: frozenset[str] | None) -> None:
        self.provinces = provinces

    def allows(self, province: str | None) -> bool:
        """True if the caller may read this province (the nation is readable by every key)."""
        return self.provinces is None or province is None or province in self.provinces


def rfc3339(ns: int) -> str:
    """Unix nanoseconds as RFC 3339 UTC text with second precision.

    ``time.gmtime`` rather than a datetime: the same text (tests/api/test_feed_entry.py) at 0.9
    instead of 2.4 µs, which counts where a feed listing writes two per source."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // _NS))


def influx_time_text(text: str) -> str:
    """InfluxDB's RFC 3339 time (``epoch`` not set) as :func:`rfc3339` writes it: UTC, whole
    seconds, ``Z`` (a fraction of a second is cut, as :func:`rfc3339` cuts it)."""
    if len(text) == 20 and text[19] == "Z":  # 2026-01-01T00:00:00Z, every GROUP BY bucket
        return text
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_fields(source: Source) -> dict[str, Any]:
    """A registered source as every feed listing shows it (no contact addresses)."""
    return {
        "source": source.id,
        "name": source.name,
        "kind": source.kind,
        "province": source.province,
        "ward": source.ward,
        "department": source.department,
        "expected_interval_s": source.expected_interval_s,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def not_found(what: str, code: str) -> ApiProblem:
    return ApiProblem(
        404,
        "Not Found",
        f"no {what} with code {code!r} (provinces have 2 digits, e.g. '01'; wards 5, e.g. "
        f"'00070'; the nation is 'VN'); GET /api/v1/places/search?q=<name> finds codes",
        extra={"parameter": "place", "value": code},
    )


def feed_entry(
    source: Source,
    seen: tuple[int, int | None] | None,
    now: datetime,
    limits: liveness.LiveLimits,
) -> dict[str, Any]:
    """One registered source as the feed listing shows it: last record, age, state, since.

    The state is :func:`ioc.formulas.liveness.feed_status`'s, judged by ``limits`` (made with
    ``LIVENESS_GRACE``) as the engine judges it: the live limit is computed once per expected
    interval rather than with Fractions for every source, which was a third of a feed
    listing's CPU. The same answer,
    field for field (tests/api/test_feed_entry.py compares the two)."""
    registered = _registered(source.registered)
    if registered is not None and registered > now:
        registered = None  # not registered yet at ``now``: no "since"
    age: timedelta | None = None
    since: datetime | None = None
    if seen is None:
        state, since = liveness.FeedState.NEVER_REPORTED, registered
    else:
        last = datetime.fromtimestamp(seen[0] / _NS, tz=UTC)
        age = now - last
        state = limits.state(age, source.expected_interval_s)
        if state is liveness.FeedState.STALE:
            since = last + timedelta(microseconds=limits.limit_us(source.expected_interval_s))
    return {
        **source_fields(source),
        "last_record": None if seen is None else rfc3339(seen[0]),
        "last_received": None if seen is None or seen[1] is None else rfc3339(seen[1] * 1_000_000),
        "age_s": None if age is None else int(age.total_seconds()),
        "state": state.value,
        "since": None if since is None else _iso_seconds(since),
    }


class IndicatorData:
    """Reads indicator values and operational figures for the API."""

    def __init__(self, settings: Settings, catalog: Catalog, store: Store, places: Places) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.places = places
        self.db = settings.influx_db

    # --- places ------------------------------------------------------------------------------

    def indicator(self, key: str) -> Indicator:
        """The catalog's indicator ``key``, or a 404 problem listing the known keys."""
        found = self.catalog.indicators.get(key)
        if found is None:
            known = ", ".join(sorted(self.catalog.indicators))
            raise ApiProblem(
                404,
                "Not Found",
                f"no indicator {key!r}; known indicators: {known}",
                extra={"parameter": "indicator", "value": key},
            )
        return found

    def place(self, code: str, scope: Scope) -> PlaceRef:
        """The place with this code, or 404 (also when the caller's scope excludes it)."""
        if code == NATION:
            return PlaceRef("nation", NATION, "Việt Nam", None)
        try:
            if len(code) == 2:
                province = self.places.province(code)
                ref = PlaceRef("province", province.code, province.name, province.code)
            elif len(code) == 5:
                ward = self.places.ward(code)
                ref = PlaceRef("ward", ward.code, ward.name, ward.province_code)
            else:
                raise KeyError(code)
        except KeyError:
            raise not_found("place", code) from None
        if not scope.allows(ref.province):
            raise not_found("place", code)  # the same answer as an unknown code: no leak
        return ref

    def province(self, code: str, scope: Scope) -> Province:
        """A province the caller may read, or 404."""
        ref = self.place(code, scope)
        if ref.level != "province":
            raise not_found("province", code)
        return self.places.province(code)

    def _ref_of(self, level: str, tags: Mapping[str, str]) -> PlaceRef | None:
        if level == "nation":
            return PlaceRef("nation", NATION, "Việt Nam", None)
        if level == "source":  # scoped by its registered province; unregistered: not served
            source = self.catalog.registry.get(tags.get("source", ""))
            if source is None:
                return None
            return PlaceRef("source", source.id, source.name, source.province)
        try:
            if level == "province":
                p = self.places.province(tags.get("province", ""))
                return PlaceRef("province", p.code, p.name, p.code)
            w: Ward = self.places.ward(tags.get("ward", ""))
            return PlaceRef("ward", w.code, w.name, w.province_code)
        except KeyError:
            return None  # a value for a place the package does not know: not served

    # --- values ------------------------------------------------------------------------------

    def _value(
        self, indicator: Indicator, ref: PlaceRef, row: Mapping[str, Any], now_ns: int
    ) -> dict[str, Any]:
        value = row.get("value")
        band = indicator.band_for(value) if isinstance(value, (int, float)) else None
        origin = None
        if row.get("origin"):
            origin = {
                "source": row["origin"],
                "ward": row.get("origin_ward"),
                "province": row.get("origin_province"),
            }
        time_ns = int(row["time"])
        return {
            "indicator": indicator.key,
            "place": ref.to_dict(),
            "time": rfc3339(time_ns),
            "age_s": max(0, (now_ns - time_ns) // _NS),
            "value": value,
            "unit": indicator.unit,
            "band": _band(band),
            "coverage": row.get("coverage"),
            "expected": row.get("expected"),
            "sources": row.get("sources"),
            "origin": origin,
            "coverage_detail": coverage_detail(ref.level, row, indicator.key),
        }

    def latest(
        self,
        indicator: Indicator,
        level: str,
        scope: Scope,
        *,
        province: str | None,
        now_ns: int,
    ) -> list[dict[str, Any]]:
        """The latest value of every place at ``level`` (in one province if given), by code."""
        filters = ["indicator", "level"]
        params: dict[str, str] = {"indicator": indicator.key, "level": level}
        if province is not None:
            filters.append("province")
            params["province"] = province
        group = {
            "nation": [],
            "province": ["province"],
            "ward": ["province", "ward"],
            "source": ["province", "source"],  # a register, station, probe: its own values
        }[level]
        rows = self._latest_rows(filters, group, params, now_ns)
        out = []
        for tags, row in rows:
            ref = self._ref_of(level, tags)
            if ref is None or not scope.allows(ref.province):
                continue
            out.append(self._value(indicator, ref, row, now_ns))
        out.sort(key=lambda item: item["place"]["code"])
        return out

    def _latest_rows(
        self,
        filters: Sequence[str],
        group_by: Sequence[str],
        params: Mapping[str, str],
        now_ns: int,
    ) -> list[tuple[Mapping[str, str], dict[str, Any]]]:
        fields = (*VALUE_FIELDS, *COVERAGE_FIELDS)  # the values' query, with coverage by kind
        text = latest_detail_values(self.db, fields=fields, filters=filters, group_by=group_by)
        window = int(LATEST_WINDOW.total_seconds()) * _NS
        bound = dict(params)
        bound["start"] = _iso(datetime.fromtimestamp((now_ns - window) / _NS, tz=UTC))
        bound["end"] = _iso(datetime.fromtimestamp(now_ns / _NS, tz=UTC))
        out = []
        for series in self.store.query(text, bound):
            for row in series.rows():
                if row.get("value") is not None:
                    out.append((series.tags, row))
        return out

    def series(
        self,
        indicator: Indicator,
        place: PlaceRef,
        *,
        start: datetime,
        end: datetime,
        interval_s: int,
        function: str,
    ) -> list[dict[str, Any]]:
        """``function(value)`` per bucket of ``interval_s`` over [start, end) for one place."""
        filters = ["indicator", "level"]
        params: dict[str, str] = {"indicator": indicator.key, "level": place.level}
        if place.level != "nation":
            filters.append(place.level)
            params[place.level] = place.code
        params["start"] = _iso(start)
        params["end"] = _iso(end)
        text = value_series(self.db, function=function, interval_s=interval_s, filters=filters)
        points: list[dict[str, Any]] = []
        # Times as InfluxDB's own RFC 3339 text (no epoch): buckets start on whole seconds, so
        # that is already the answer's text, with no conversion per point.
        for series in self.store.query(text, params, epoch=None):
            at, of = series.columns.index("time"), series.columns.index("value")
            points += [
                {"time": row[at], "value": row[of]} for row in series.values if row[of] is not None
            ]
        for point in points:
            if len(point["time"]) != 20:  # never for whole-second buckets: cut to the second
                point["time"] = influx_time_text(point["time"])
        return points

    def ranking(
        self,
        indicator: Indicator,
        level: str,
        scope: Scope,
        *,
        province: str | None,
        now_ns: int,
    ) -> dict[str, Any]:
        """Places at ``level`` ranked by their value for the newest period (best first).

        Only places with a value for the newest period present are ranked (competition ranking:
        equal values share a rank); places whose latest value is older follow, unranked. A
        province-scoped key sees its own rows with their national rank and the total.
        """
        everyone = self.latest(indicator, level, Scope(None), province=province, now_ns=now_ns)
        return rank(indicator, everyone, scope)

    def scorecard(self, province: Province, now_ns: int) -> list[dict[str, Any]]:
        """Every indicator's latest provincial value, with target, band and national rank."""
        rows = self._latest_rows(
            ["level"], ["indicator", "province"], {"level": "province"}, now_ns
        )
        by_indicator: dict[str, list[dict[str, Any]]] = {}
        for tags, row in rows:
            indicator = self.catalog.indicators.get(tags.get("indicator", ""))
            ref = self._ref_of("province", tags)
            if indicator is None or ref is None:
                continue
            by_indicator.setdefault(indicator.key, []).append(
                self._value(indicator, ref, row, now_ns)
            )
        own = Scope(frozenset({province.code}))
        items = []
        for indicator in self.catalog.indicators.values():
            ranked = rank(indicator, by_indicator.get(indicator.key, []), own)["items"]
            mine = ranked[0] if ranked else None
            items.append(
                {
                    "indicator": indicator.key,
                    "title_vi": indicator.title_vi,
                    "title_en": indicator.title_en,
                    "unit": indicator.unit,
                    "direction": indicator.direction.value,
                    "target": indicator.target,
                    "thresholds": dict(indicator.thresholds),
                    "value": mine["value"] if mine else None,
                    "time": mine["time"] if mine else None,
                    "band": mine["band"] if mine else None,
                    "coverage": mine["coverage"] if mine else None,
                    "expected": mine["expected"] if mine else None,
                    "coverage_detail": mine["coverage_detail"] if mine else None,
                    "meets_target": _meets(indicator, mine["value"] if mine else None),
                    "rank": mine["rank"] if mine else None,
                    "of": mine["of"] if mine else None,
                }
            )
        return items

    # --- feeds -------------------------------------------------------------------------------

    def feeds(self, scope: Scope, *, now_ns: int) -> list[dict[str, Any]]:
        """Every registered source the caller may read: last record, expected interval, state."""
        sources = [s for s in self.catalog.registry.sources if scope.allows(s.province)]
        last_seen: dict[str, tuple[int, int | None]] = {}
        window = int(FEED_WINDOW.total_seconds()) * _NS
        params = {
            "start": _iso(datetime.fromtimestamp((now_ns - window) / _NS, tz=UTC)),
            "end": _iso(datetime.fromtimestamp(now_ns / _NS, tz=UTC)),
        }
        # One query for every kind (a statement may read several measurements), not one per
        # kind: the feed listing was 8 round trips. Applied in the order of the kinds, as when
        # each kind was its own query (a source seen in two measurements keeps the later kind's).
        order = [self.catalog.kind(kind).measurement for kind in sorted({s.kind for s in sources})]
        answer = self.store.query(last_received_in(self.db, order), params) if order else ()
        rank = {measurement: n for n, measurement in enumerate(order)}
        for series in sorted(answer, key=lambda series: rank.get(series.name, len(rank))):
            source_id = series.tags.get("source", "")
            if series.values:
                time_ns, received_ms = series.values[0][0], series.values[0][1]
                last_seen[source_id] = (
                    int(time_ns),
                    None if received_ms is None else int(received_ms),
                )
        now = datetime.fromtimestamp(now_ns / _NS, tz=UTC)
        limits = liveness.LiveLimits(LIVENESS_GRACE)
        return [feed_entry(source, last_seen.get(source.id), now, limits) for source in sources]

    # --- operations --------------------------------------------------------------------------

    def dead_letters(
        self,
        *,
        start: datetime,
        end: datetime,
        reason: str | None,
        province: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The newest dead letters (reason, topic, excerpt, message), newest first."""
        text = recent_dead_letters(
            self.db, reason=reason is not None, province=province is not None, limit=limit
        )
        params = {"start": _iso(start), "end": _iso(end)}
        if reason is not None:
            params["reason"] = reason
        if province is not None:
            params["province"] = province
        out = []
        for series in self.store.query(text, params):
            for row in series.rows():
                out.append(
                    {
                        "time": _iso_ns(int(row["time"])),
                        "reason": row.get("reason"),
                        "province": row.get("province"),
                        "source": row.get("source"),
                        "topic": row.get("topic"),
                        "message": row.get("message"),
                        "excerpt": row.get("excerpt"),
                    }
                )
        return out

    def broker_refusals(
        self,
        scope: Scope,
        *,
        start: datetime,
        end: datetime,
        province: str | None,
        window: str,
    ) -> dict[str, Any]:
        """What the broker refused in (start, end]: per registered source (counts per cause, the
        client ids, first and last, a sentence), and per client for refusals of no source (only
        for keys that read every province). ``window`` names the period in the sentences."""
        text = broker_refusals(self.db, province=province is not None, limit=REFUSAL_ROWS)
        params = {"reason": REFUSED, "start": _iso(start), "end": _iso(end)}
        if province is not None:
            params["province"] = province
        rows = [row for series in self.store.query(text, params) for row in series.rows()]
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        by_client: dict[tuple[str, str | None], list[Mapping[str, Any]]] = {}
        registry = self.catalog.registry
        for row in rows:  # newest first
            source = registry.get(str(row.get("source") or ""))
            if source is not None:
                if scope.allows(source.province):
                    by_source.setdefault(source.id, []).append(row)
            elif scope.provinces is None:
                key = (str(row.get("client_id") or ""), row.get("username"))
                by_client.setdefault(key, []).append(row)
        sources = []
        for source_id, refusals in by_source.items():
            source = registry.source(source_id)
            item = {
                "source": source.id,
                "name": source.name,
                "kind": source.kind,
                "province": source.province,
                "ward": source.ward,
                **_refusal_figures(refusals),
                "clients": sorted({str(r.get("client_id") or "") for r in refusals}),
            }
            item["summary"] = _refusal_summary(f"{source.id} ({source.name})", item, window)
            sources.append(item)
        unattributed = [
            {"client_id": client_id, "username": username, **_refusal_figures(refusals)}
            for (client_id, username), refusals in by_client.items()
        ]
        sources.sort(key=lambda item: (-item["refused"], item["source"]))
        unattributed.sort(key=lambda item: (-item["refused"], item["client_id"]))
        return {
            "window": window,
            "start": rfc3339(int(start.timestamp()) * _NS),
            "end": rfc3339(int(end.timestamp()) * _NS),
            "refused": sum(item["refused"] for item in (*sources, *unattributed)),
            "truncated": len(rows) >= REFUSAL_ROWS,
            "sources": sources,
            "unattributed": unattributed,
        }

    def alert_history(
        self,
        *,
        start: datetime,
        end: datetime,
        provinces: Iterable[str] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The newest alert state changes in (start, end], newest first, at most ``limit``.

        ``provinces`` None reads every change (national ones too); otherwise only the changes of
        those provinces, one query each (the query text filters one province), merged.
        """
        params = {"start": _iso(start), "end": _iso(end)}
        queries: list[tuple[str, dict[str, str]]] = []
        if provinces is None:
            queries.append((alert_history(self.db, province=False, limit=limit), params))
        else:
            text = alert_history(self.db, province=True, limit=limit)
            queries.extend((text, params | {"province": code}) for code in sorted(provinces))
        rows = [
            row
            for text, bound in queries
            for series in self.store.query(text, bound)
            for row in series.rows()
        ]
        rows.sort(key=lambda row: int(row["time"]), reverse=True)
        return [
            {
                "time": _iso_ns(int(row["time"])),
                "alertname": row.get("alertname"),
                "rule": row.get("rule"),
                "severity": row.get("severity") or None,
                "state": row.get("state"),
                "previous": row.get("previous"),
                "value": row.get("value"),
                "threshold": row.get("threshold"),
                "province": row.get("province") or None,
                "ward": row.get("ward") or None,
                "source": row.get("source") or None,
                "summary_vi": row.get("summary_vi") or None,
                "summary_en": row.get("summary_en") or None,
                "fingerprint": row.get("fingerprint"),
            }
            for row in rows[:limit]
        ]

    def processes(self, now_ns: int) -> dict[str, Any]:
        """The newest self-metrics of each collector and of the engine (last 5 minutes)."""
        params = {
            "start": _iso(datetime.fromtimestamp(now_ns / _NS - 300, tz=UTC)),
            "end": _iso(datetime.fromtimestamp(now_ns / _NS, tz=UTC)),
        }
        out: dict[str, Any] = {"collectors": [], "engine": None}
        for series in self.store.query(
            latest_self_metrics(self.db, "ingest", group_by="collector"), params
        ):
            for row in series.rows():
                out["collectors"].append(_self_metrics(series.tags.get("collector"), row, now_ns))
        for series in self.store.query(
            latest_self_metrics(self.db, "engine", group_by=None), params
        ):
            for row in series.rows():
                out["engine"] = _self_metrics(None, row, now_ns)
        return out


def rank(indicator: Indicator, values: Iterable[dict[str, Any]], scope: Scope) -> dict[str, Any]:
    """Competition ranking of the places with a value for the newest period, best first."""
    values = list(values)
    newest = max((v["time"] for v in values), default=None)
    current = [v for v in values if v["time"] == newest]
    older = sorted((v for v in values if v["time"] != newest), key=lambda v: v["place"]["code"])
    better_high = indicator.direction is Direction.HIGHER_IS_BETTER
    current.sort(key=lambda v: (-v["value"] if better_high else v["value"], v["place"]["code"]))
    items: list[dict[str, Any]] = []
    previous: float | None = None
    position = 0
    for index, value in enumerate(current, start=1):
        if value["value"] != previous:
            position, previous = index, value["value"]
        items.append({**value, "rank": position, "of": len(current), "current": True})
    items.extend({**value, "rank": None, "of": len(current), "current": False} for value in older)
    visible = [item for item in items if scope.allows(item["place"]["province"])]
    return {
        "indicator": indicator.key,
        "direction": indicator.direction.value,
        "period_end": newest,
        "items": visible,
    }


def _meets(indicator: Indicator, value: float | None) -> bool | None:
    if value is None or indicator.target is None:
        return None
    if indicator.direction is Direction.HIGHER_IS_BETTER:
        return value >= indicator.target
    return value <= indicator.target


def _band(band: Any) -> dict[str, str] | None:
    if band is None:
        return None
    return {
        "key": band.key,
        "title_vi": band.title_vi,
        "title_en": band.title_en,
        "colour": band.colour,
    }


def _refusal_figures(refusals: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per cause, first and last of one group of refusals (given newest first)."""
    causes: dict[str, int] = {}
    for row in refusals:
        cause = str(row.get("cause") or "unknown")
        causes[cause] = causes.get(cause, 0) + 1
    return {
        "refused": len(refusals),
        "causes": dict(sorted(causes.items())),
        "first": rfc3339(int(refusals[-1]["time"])),
        "last": rfc3339(int(refusals[0]["time"])),
        "last_cause": refusals[0].get("cause"),
    }


def _refusal_summary(who: str, item: Mapping[str, Any], window: str) -> str:
    """The sentence an operator reads: the broker refused N packets from X in the last 24h..."""
    count = item["refused"]
    causes = "; ".join(
        f"{n} {cause} ({CAUSES.get(cause, 'see the broker log')})"
        for cause, n in sorted(item["causes"].items(), key=lambda kv: (-kv[1], kv[0]))
    )
    clients = ", ".join(repr(c) for c in item["clients"])
    return (
        f"the broker refused {count} packet{'s' if count != 1 else ''} from {who} in the last "
        f"{window}: {causes}; last at {item['last']} ({item['last_cause']}), "
        f"client id{'s' if len(item['clients']) != 1 else ''} {clients}"
    )


def _registered(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ns(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // _NS, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % _NS:09d}Z"


def _self_metrics(name: str | None, row: Mapping[str, Any], now_ns: int) -> dict[str, Any]:
    figures = {key: value for key, value in row.items() if key != "time" and value is not None}
    time_ns = int(row["time"])
    return {
        "name": name,
        "reported": rfc3339(time_ns),
        "age_s": max(0, (now_ns - time_ns) // _NS),
        "figures": figures,
    }
