"""Feeds: which sources are live or stale, dead letters, and readings pushed over HTTP.

Departmental systems that cannot speak MQTT push the same IOC JSON (or SenML) documents to
``POST /api/v1/feeds/{source}/readings``. The body goes through the collector's own router and
validator (``ingest/router.py``) as if it had arrived on the source's topic, so the rules,
reasons and dead letters are the same. The answer is 200 only once InfluxDB has stored the
points (there is no spool in the API: if InfluxDB is down the answer is 503 with Retry-After and
the sender keeps the data); rejected readings are listed with their reasons and stored as dead
letters like the collector's.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, g, request
from flask.views import MethodView

from ingest.deadletter import DeadLetter
from ingest.formats.model import DEFAULT_MAX_BYTES
from ingest.router import Router
from ingest.validate import Validator
from ioc.api import schemas
from ioc.api.context import data, now_ns, require_operator, scope
from ioc.api.http import JSON_OR_CSV, csv_response, wants_csv
from ioc.api.problems import invalid_parameter
from ioc.api.routes import Blueprint
from ioc.api.routes.indicators import CSV_DOC, page
from ioc.catalog import Catalog, parse_period
from ioc.errors import ApiProblem, LineProtocolError, PartialWriteError
from ioc.settings import Settings
from ioc.store import Store, encode_point

blp = Blueprint(
    "feeds",
    __name__,
    url_prefix="/api/v1",
    description="Source freshness, dead letters, and readings pushed by departmental systems.",
)

INTAKE_KEY = "ioc.intake"
SENML_TYPES = ("application/senml+json",)
FEED_COLUMNS = (
    "source",
    "name",
    "kind",
    "province",
    "ward",
    "department",
    "expected_interval_s",
    "last_record",
    "age_s",
    "state",
    "since",
)


class Intake:
    """The collector's routing and validation, answering HTTP pushes synchronously."""

    def __init__(self, settings: Settings, catalog: Catalog, store: Store) -> None:
        validator = Validator(
            catalog,
            max_age_s=parse_period(settings.ingest_max_age),
            max_future_s=parse_period(settings.ingest_max_future),
        )
        self.router = Router(catalog, validator, max_bytes=DEFAULT_MAX_BYTES)
        self.catalog = catalog
        self.store = store
        self.counters: Counter[str] = Counter()

    def push(self, source_id: str, body: bytes, *, senml: bool) -> dict[str, Any]:
        """Route, validate and store one pushed document; the answer lists the rejections."""
        source = self.catalog.registry.get(source_id)
        if source is None:  # the caller's key named it, so this is a registry change
            raise ApiProblem(404, "Not Found", f"source {source_id!r} is not registered")
        topic = f"ioc/v1/{source.province}/{source.id}/{source.kind}" + ("/senml" if senml else "")
        received_ns = time.time_ns()
        routed = self.router.route(topic, body, received_ns)
        letters = list(routed.dead_letters)
        lines = []
        for point in routed.points:
            try:
                lines.append(encode_point(point))
            except LineProtocolError as error:
                letters.append(DeadLetter.of(topic, body, received_ns, "unencodable", str(error)))
        written = 0
        if lines:
            try:
                written = self.store.write_lines(lines, rp="raw")
            except PartialWriteError as error:
                written = error.accepted
                letters.extend(
                    DeadLetter.of(topic, body, received_ns, "influx_rejected", r.reason)
                    for r in error.rejected
                )
        if letters:
            self.store.write([letter.to_point() for letter in letters], rp="ops")
        self.counters["pushes"] += 1
        self.counters["points_written"] += written
        for letter in letters:
            self.counters[f"dead_letters.{letter.reason}"] += 1
        return {
            "source": source.id,
            "readings": routed.readings,
            "points_written": written,
            "rejected": [{"reason": d.reason, "message": d.message} for d in letters],
        }


@blp.route("/feeds")
class Feeds(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.FeedsQuery, location="query")
    @blp.response(200, schemas.FeedPageSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Every registered source: last record, expected interval, live or stale, since when."""
        reader = data()
        if args.get("province") is not None:
            reader.province(args["province"], scope())
        items = reader.feeds(scope(), now_ns=now_ns())
        if args.get("province") is not None:
            items = [i for i in items if i["province"] == args["province"]]
        if args.get("kind") is not None:
            items = [i for i in items if i["kind"] == args["kind"]]
        counts = Counter(i["state"] for i in items)
        if args.get("state") is not None:
            items = [i for i in items if i["state"] == args["state"]]
        if wants_csv():
            return csv_response(items, FEED_COLUMNS, "feeds")
        body = page(items, args["page"], args["page_size"])
        body["counts"] = {
            state: counts.get(state, 0)
            for state in ("live", "stale", "never_reported", "future_timestamp")
        }
        return body


@blp.route("/feeds/<string:source>/readings")
class FeedReadings(MethodView):
    @blp.response(200, schemas.PushResultSchema)
    @blp.doc(
        requestBody={
            "required": True,
            "description": "An IOC JSON document or batch (docs/payloads.md), or SenML with "
            "Content-Type application/senml+json",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/senml+json": {"schema": {"type": "array"}},
            },
        }
    )
    def post(self, source: str) -> dict[str, Any]:
        """Push readings for one source (keys with the feed scope for that source, or operator)."""
        principal = g.principal
        registered = data().catalog.registry.get(source)
        if registered is None or not principal.can_push(source):
            raise ApiProblem(
                404,
                "Not Found",
                f"no source {source!r} this key may push readings for",
                extra={"parameter": "source", "value": source},
            )
        mimetype = request.mimetype
        if mimetype not in ("application/json", *SENML_TYPES):
            raise ApiProblem(
                415,
                "Unsupported Media Type",
                f"Content-Type {request.content_type!r}: send application/json (IOC JSON) "
                "or application/senml+json",
            )
        intake: Intake = request_app_intake()
        result = intake.push(source, request.get_data(cache=False), senml=mimetype in SENML_TYPES)
        if result["readings"] and not result["points_written"] and result["rejected"]:
            raise ApiProblem(
                422,
                "Unprocessable Content",
                f"no reading was accepted: {result['rejected'][0]['message']}",
                extra={"rejected": result["rejected"]},
            )
        if not result["readings"] and result["rejected"]:
            raise ApiProblem(
                400,
                "Bad Request",
                f"the body is not a valid document: {result['rejected'][0]['message']}",
                extra={"rejected": result["rejected"]},
            )
        return result


def request_app_intake() -> Intake:
    """The app's intake (one per worker)."""
    from flask import current_app  # noqa: PLC0415

    intake: Intake = current_app.extensions[INTAKE_KEY]
    return intake


@blp.route("/dead-letters")
class DeadLetters(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.DeadLetterQuery, location="query")
    @blp.response(200, schemas.DeadLetterListSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Recent rejected messages and readings with their reasons (operator keys only)."""
        require_operator()
        since = args["since"]
        if since > 30 * 86400:
            raise invalid_parameter(
                "query",
                "since",
                request.args.get("since"),
                "at most 30d (dead letters are kept 30 days)",
            )
        end = datetime.fromtimestamp(now_ns() / 1e9, tz=UTC)
        items = data().dead_letters(
            start=end - timedelta(seconds=since),
            end=end,
            reason=args.get("reason"),
            province=args.get("province"),
            limit=args["limit"],
        )
        if wants_csv():
            columns = ("time", "reason", "province", "source", "topic", "message", "excerpt")
            return csv_response(items, columns, "dead-letters")
        return {"items": items}


QUALITY_COLUMNS = (
    "source",
    "name",
    "kind",
    "province",
    "ward",
    "department",
    "expected_interval_s",
    "score",
    "accepted",
    "complete",
    "in_range",
    "on_time",
    "records",
    "readings_received",
    "readings_stored",
    "rejected",
    "out_of_range",
    "slots_filled",
    "slots_expected",
)


@blp.route("/feeds/quality")
class FeedQuality(MethodView):
    formats = JSON_OR_CSV

    @blp.arguments(schemas.FeedQualityQuery, location="query")
    @blp.response(200, schemas.FeedQualityPageSchema)
    @blp.doc(**CSV_DOC)
    def get(self, args: dict[str, Any]) -> dict[str, Any] | Response:
        """Per-feed data quality over a window, worst first (issue 17): the shares of readings
        accepted, complete, in range and on time, and their lowest as the score."""
        from ioc.api.quality import feed_quality  # noqa: PLC0415 - only this route needs it

        reader = data()
        province = args.get("province")
        if province is not None:
            reader.province(province, scope())
        sources = [
            s
            for s in reader.catalog.registry.sources
            if scope().allows(s.province)
            and (province is None or s.province == province)
            and (args.get("kind") is None or s.kind == args["kind"])
        ]
        now = now_ns()
        items = feed_quality(
            reader.catalog,
            reader.store,
            reader.db,
            sources,
            since_s=args["since"],
            now_ns=now,
            province=province,
        )
        if wants_csv():
            return csv_response(items, QUALITY_COLUMNS, "feed-quality")
        body = page(items, args["page"], args["page_size"])
        body["since_s"] = args["since"]
        body["start"] = datetime.fromtimestamp(now / 1e9 - args["since"], tz=UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        body["end"] = datetime.fromtimestamp(now / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return body
