"""Reminders: the digest each late unit gets by e-mail (alerts/reminders.py), as of now.

The same digests ``ioc alerts`` sends at ``IOC_REMINDERS_AT``: per responsible unit (commune or
ward, department, province), its registers with overdue or soon-due tasks and its feeds that are
stale or never reported. A unit with nothing late is not listed. A province-scoped key sees the
units of its provinces only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView

from alerts.reminders import Digest, build_digests, subject, units
from ioc.api import schemas
from ioc.api.context import data, now_ns, scope
from ioc.api.routes import Blueprint
from ioc.errors import ApiProblem

blp = Blueprint(
    "reminders",
    __name__,
    url_prefix="/api/v1",
    description="Reminder digests of the units with overdue tasks or feeds not updated.",
)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(digest: Digest) -> dict[str, Any]:
    """A digest as the API shows it (contact addresses are not shown, only whether there is one)."""
    return {
        "unit": {
            "id": digest.unit,
            "name": digest.unit_name,
            "level": digest.unit_level,
            "province": digest.province,
            "province_name": digest.province_name,
            "ward": digest.ward,
        },
        "subject": subject(digest),
        "overdue_tasks": digest.overdue_tasks,
        "due_soon_tasks": digest.due_soon_tasks,
        "registers": [
            {
                "source": r.source,
                "name": r.name,
                "total": r.total,
                "completed": r.completed,
                "overdue": r.overdue,
                "due_soon": r.due_soon,
                "reported_at": _time(r.reported_at),
            }
            for r in digest.registers
        ],
        "feeds": [
            {
                "source": f.source,
                "name": f.name,
                "kind": f.kind,
                "state": f.state,
                "last_record": _time(f.last_record),
                "age_s": None if f.age_s is None else int(f.age_s),
                "since": _time(f.since),
            }
            for f in digest.feeds
        ],
        "has_contact": bool(digest.contacts),
        "wall_url": digest.wall_url,
    }


@blp.route("/reminders")
class Reminders(MethodView):
    @blp.arguments(schemas.RemindersQuery, location="query")
    @blp.response(200, schemas.ReminderListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The reminder digest of every late unit the key may read (optionally one unit)."""
        reader = data()
        allowed = scope()
        provinces = allowed.provinces
        if args.get("province") is not None:
            reader.province(args["province"], allowed)  # 404 when unknown or out of scope
            provinces = frozenset({args["province"]})
        unit = args.get("unit")
        if unit is not None:
            known = units(reader.catalog, reader.places).get(unit)
            if known is None or not allowed.allows(known.province):
                raise ApiProblem(
                    404,
                    "Not Found",
                    f"no unit {unit!r} in the registry (a 5-digit ward code, a 2-digit province "
                    "code or <province>-<department>, e.g. 01-so-khoa-hoc-va-cong-nghe)",
                    extra={"parameter": "unit", "value": unit},
                )
        now = datetime.fromtimestamp(now_ns() / 1e9, tz=UTC)
        digests = build_digests(
            reader.settings, reader.catalog, reader.store, now, provinces=provinces
        )
        if unit is not None:
            digests = [d for d in digests if d.unit == unit]
        return {
            "at": _time(now),
            "soon_window": reader.settings.reminders_soon,
            "items": [describe(d) for d in digests],
        }
