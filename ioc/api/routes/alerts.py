"""Alerts: what Alertmanager holds now, the evaluator's history of state changes, and silences.

Active alerts and silences are read from (and silences written to) the Alertmanager of
``IOC_ALERTMANAGER_URL`` through :mod:`alerts.alertmanager`, one client per request; the history
comes from the evaluator's ``derived.alert`` in InfluxDB. A province-scoped key sees only alerts
labelled with one of its provinces; an alert without a province label (a national value, or an
alert another tool posted) is shown to unrestricted keys only. Silences are operator resources.
An Alertmanager that cannot be reached (or fails) is a 503 naming its URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import g
from flask.views import MethodView

from alerts.alertmanager import Alert, Alertmanager, Matcher, Silence
from ioc.api import schemas
from ioc.api.context import data, now_ns, require_operator, scope
from ioc.api.data import Scope
from ioc.api.problems import ProblemSchema
from ioc.api.routes import Blueprint
from ioc.errors import AlertmanagerError, ApiProblem

log = logging.getLogger(__name__)

blp = Blueprint(
    "alerts",
    __name__,
    url_prefix="/api/v1/alerts",
    description="Alerts firing now (from Alertmanager) and the history of their state changes.",
)
silences_blp = Blueprint(
    "silences",
    __name__,
    url_prefix="/api/v1/alerts/silences",
    description="Alertmanager silences: list, create, expire (operator keys).",
)

ALERTMANAGER_TIMEOUT_S = 5.0
"""How long a request waits for Alertmanager before answering 503."""
RETRY_AFTER_S = 5
PLACE_LABELS = ("province", "ward", "source", "indicator", "level", "rule")
_SEVERITY_ORDER = {"critical": 0, "warning": 1}
_STATE_ORDER = {"active": 0, "pending": 1, "expired": 2}
UNAVAILABLE_DOC = {
    "schema": ProblemSchema,
    "content_type": "application/problem+json",
    "description": "Alertmanager cannot be reached or fails (a problem document, Retry-After)",
}


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _unavailable(url: str, error: AlertmanagerError) -> ApiProblem:
    """503 for an unreachable or failing Alertmanager; 502 when it refuses what we sent."""
    log.warning("Alertmanager trouble: %s", error)
    if error.retryable:
        what = "not reachable" if error.status is None else f"answered {error.status}"
        return ApiProblem(
            503,
            "Service Unavailable",
            f"Alertmanager at {url} {what}; try again shortly",
            extra={"retry_after": RETRY_AFTER_S},
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return ApiProblem(
        502, "Bad Gateway", f"Alertmanager at {url} refused the request: {error.body}"
    )


@contextmanager
def alertmanager() -> Iterator[Alertmanager]:
    """A client of the configured Alertmanager for one request; its errors become problems."""
    url = data().settings.alertmanager_url
    with Alertmanager(url, timeout=ALERTMANAGER_TIMEOUT_S) as client:
        try:
            yield client
        except AlertmanagerError as error:
            raise _unavailable(url, error) from error


def visible(alert: Alert, allowed: Scope) -> bool:
    """Whether the caller may see the alert: its province label is in scope (none: all keys)."""
    province = alert.labels.get("province")
    if allowed.provinces is None:
        return True
    return province is not None and province in allowed.provinces


def describe_alert(alert: Alert) -> dict[str, Any]:
    """An alert as the API shows it: the labels that matter first, then every label."""
    labels = alert.labels
    described: dict[str, Any] = {
        "fingerprint": alert.fingerprint,
        "alertname": labels.get("alertname", ""),
        "severity": labels.get("severity"),
        "state": alert.state,
        "silenced_by": list(alert.silenced_by),
        "inhibited_by": list(alert.inhibited_by),
    }
    described |= {name: labels.get(name) for name in PLACE_LABELS}
    described |= {
        "labels": dict(labels),
        "annotations": dict(alert.annotations),
        "starts_at": _time(alert.starts_at),
        "ends_at": _time(alert.ends_at),
        "updated_at": _time(alert.updated_at),
        "generator_url": alert.generator_url or None,
    }
    return described


def describe_silence(silence: Silence) -> dict[str, Any]:
    """A silence as the API shows it."""
    return {
        "id": silence.id,
        "state": silence.state,
        "matchers": [
            {"name": m.name, "value": m.value, "operator": m.operator} for m in silence.matchers
        ],
        "starts_at": _time(silence.starts_at),
        "ends_at": _time(silence.ends_at),
        "updated_at": _time(silence.updated_at),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


@blp.route("")
class Alerts(MethodView):
    @blp.arguments(schemas.AlertsQuery, location="query")
    @blp.response(200, schemas.AlertListSchema)
    @blp.alt_response(503, **UNAVAILABLE_DOC)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Alerts Alertmanager holds now (firing, silenced or inhibited), critical first."""
        allowed = scope()
        filters: list[Matcher] = []
        if args.get("province") is not None:
            data().province(args["province"], allowed)  # 404 when unknown or out of scope
            filters.append(Matcher("province", args["province"]))
        elif allowed.provinces is not None:
            codes = "|".join(sorted(allowed.provinces)) or "none"
            filters.append(Matcher("province", codes, is_regex=True))
        for label in ("alertname", "severity"):
            if args.get(label) is not None:
                filters.append(Matcher(label, args[label]))
        with alertmanager() as client:
            found = client.alerts(filters, silenced=args["silenced"])
        shown = [a for a in found if visible(a, allowed)]  # the filter, checked again here
        shown.sort(
            key=lambda a: (
                _SEVERITY_ORDER.get(a.labels.get("severity", ""), 2),
                -a.starts_at.timestamp(),
                a.fingerprint,
            )
        )
        return {"items": [describe_alert(a) for a in shown]}


@blp.route("/history")
class AlertHistory(MethodView):
    @blp.arguments(schemas.AlertHistoryQuery, location="query")
    @blp.response(200, schemas.AlertHistorySchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """State changes of alerts (pending, firing, resolved...) written by the evaluator."""
        reader = data()
        allowed = scope()
        provinces: frozenset[str] | None = allowed.provinces
        if args.get("province") is not None:
            reader.province(args["province"], allowed)  # 404 when unknown or out of scope
            provinces = frozenset({args["province"]})
        end = datetime.fromtimestamp(now_ns() / 1e9, tz=UTC)
        items = reader.alert_history(
            start=end - timedelta(seconds=args["since"]),
            end=end,
            provinces=provinces,
            limit=args["limit"],
        )
        return {"items": items}


@silences_blp.before_request
def _operators_only() -> None:
    require_operator()  # before the arguments are read: other keys get 403, never a 400


def _check_matchers(matchers: Mapping[str, str]) -> None:
    """404 for a province, ward, source or indicator that is unknown or outside the province."""
    reader = data()
    province = matchers.get("province")
    if province is not None:
        reader.province(province, scope())
    where: list[tuple[str, str | None]] = []
    if matchers.get("ward") is not None:
        where.append(("ward", reader.place(matchers["ward"], scope()).province))
    if matchers.get("source") is not None:
        source = reader.catalog.registry.get(matchers["source"])
        if source is None:
            raise ApiProblem(
                404,
                "Not Found",
                f"no registered source {matchers['source']!r} (matchers.source)",
                extra={"parameter": "matchers.source", "value": matchers["source"]},
            )
        where.append(("source", source.province))
    for label, its_province in where:
        if province is not None and its_province != province:
            raise ApiProblem(
                404,
                "Not Found",
                f"no {label} {matchers[label]!r} in province {province!r} "
                f"(matchers.{label} is in {its_province})",
                extra={"parameter": f"matchers.{label}", "value": matchers[label]},
            )
    if matchers.get("indicator") is not None:
        reader.indicator(matchers["indicator"])


@silences_blp.route("")
class Silences(MethodView):
    @silences_blp.arguments(schemas.SilencesQuery, location="query")
    @silences_blp.response(200, schemas.SilenceListSchema)
    @silences_blp.alt_response(503, **UNAVAILABLE_DOC)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every silence Alertmanager keeps (active, pending, expired), optionally of one state."""
        with alertmanager() as client:
            found = client.silences()
        if args.get("state") is not None:
            found = tuple(s for s in found if s.state == args["state"])
        ordered = sorted(
            found, key=lambda s: (_STATE_ORDER.get(s.state, 3), -s.ends_at.timestamp(), s.id)
        )
        return {"items": [describe_silence(s) for s in ordered]}

    @silences_blp.arguments(schemas.SilenceCreateSchema)
    @silences_blp.response(201, schemas.SilenceSchema)
    @silences_blp.alt_response(503, **UNAVAILABLE_DOC)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Silence the alerts carrying every given label (exactly) from now for a duration."""
        matchers: dict[str, str] = body["matchers"]
        _check_matchers(matchers)
        created_by = body.get("created_by") or g.principal.name
        with alertmanager() as client:
            silence_id = client.create_silence(
                matchers,
                duration=timedelta(seconds=body["duration"]),
                created_by=created_by,
                comment=body["comment"],
            )
            silence = client.silence(silence_id)
        log.info(
            "silence %s created by key %s (%s): %s for %d s",
            silence_id,
            g.principal.key_id,
            created_by,
            matchers,
            body["duration"],
        )
        return describe_silence(silence)


@silences_blp.route("/<uuid:silence_id>")
class SilenceById(MethodView):
    @silences_blp.response(204)
    @silences_blp.alt_response(503, **UNAVAILABLE_DOC)
    def delete(self, silence_id: Any) -> None:
        """Expire a silence now (it stays listed as expired); expiring an expired one is a no-op."""
        wanted = str(silence_id)  # a UUID (the path converter refuses anything else: 404)
        with alertmanager() as client:
            try:
                client.silence(wanted)
                client.expire_silence(wanted)
            except AlertmanagerError as error:
                # Alertmanager 0.25 answers an unknown id 404 on GET but 500 on DELETE.
                if error.status == 404 or "not found" in error.body:
                    raise ApiProblem(
                        404,
                        "Not Found",
                        f"no silence {wanted!r} in Alertmanager",
                        extra={"parameter": "silence_id", "value": wanted},
                    ) from error
                raise
        log.info("silence %s expired by key %s", wanted, g.principal.key_id)
