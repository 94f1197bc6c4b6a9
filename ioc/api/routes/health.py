"""Health: liveness (the process answers) and readiness (InfluxDB answers; collectors, engine).

Both are open (no key) so that load balancers and container health checks can call them; they
show process figures, never data. Readiness is 503 only when InfluxDB does not answer: stale
collectors or engine are reported (``status: degraded``) but the API can still serve what is
stored.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from ioc.api import schemas
from ioc.api.context import data, now_ns
from ioc.api.problems import problem_response
from ioc.api.routes import Blueprint
from ioc.errors import StoreError

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
