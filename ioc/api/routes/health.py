"""Health: liveness (the process answers), readiness (InfluxDB answers; collectors, engine), and
feed health (what the broker refused from each device).

Liveness and readiness are open (no key) so that load balancers and container health checks can
call them; they show process figures, never data. Readiness is 503 only when InfluxDB does not
answer: stale collectors or engine are reported (``status: degraded``) but the API can still
serve what is stored. Feed health names devices and their client ids, so it needs an operator
key (the app's key check and rate limit apply to it as to every other resource).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, request
from flask.views import MethodView

from ioc.api import schemas
from ioc.api.context import data, now_ns, require_operator, scope
from ioc.api.problems import problem_response
from ioc.api.routes import Blueprint
from ioc.errors import StoreError

log = logging.getLogger(__name__)

blp = Blueprint(
    "health", __name__, url_prefix="/api/v1/health", description="Liveness and readiness."
)

STALE_AFTER_S = 60
"""A collector or engine whose newest self-metrics are older than this is reported stale."""


@blp.route("/live")
class Live(MethodView):
    @blp.response(200, schemas.LiveSchema)
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """200 while the worker answers."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, schemas.ReadySchema)
    @blp.doc(security=[])
    @blp.alt_response(503, description="InfluxDB does not answer (a problem document)")
    def get(self) -> dict[str, Any] | Response:
        """200 when InfluxDB answers; the collectors' and engine's newest self-metrics."""
        reader = data()
        try:
            version = reader.store.ping()
            processes = reader.processes(now_ns())
        except StoreError:
            return problem_response(
                503,
                "Service Unavailable",
                "the time-series database does not answer",
                headers={"Retry-After": "5"},
                extra={"retry_after": 5},
            )
        collectors = processes["collectors"]
        engine = processes["engine"]
        degraded = (
            not collectors
            or engine is None
            or any(
                c["age_s"] > STALE_AFTER_S or not c["figures"].get("healthy", True)
                for c in collectors
            )
        )
        return {
            "status": "degraded" if degraded else "ok",
            "influxdb": {"version": version},
            "collectors": collectors,
            "engine": engine,
        }


@blp.route("/feeds")
class FeedHealth(MethodView):
    @blp.arguments(schemas.FeedHealthQuery, location="query")
    @blp.response(200, schemas.FeedHealthSchema)
    @blp.doc(security=[{"ApiKey": []}])
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What the broker refused from each source: oversize packets, malformed topics...

        Per registered source, the packets Mosquitto refused in the window (counts per cause,
        the client ids, first and last, and a sentence); refusals from clients that name no
        registered source are listed per client id. Operator keys only.
        """
        require_operator()
        reader = data()
        if args.get("province") is not None:
            reader.province(args["province"], scope())
        end = datetime.fromtimestamp(now_ns() / 1e9, tz=UTC)
        return reader.broker_refusals(
            scope(),
            start=end - timedelta(seconds=args["since"]),
            end=end,
            province=args.get("province"),
            window=request.args.get("since", "24h"),
        )
