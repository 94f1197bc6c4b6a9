"""Task registers: counts and rates per register and per year; the units holding late tasks.

``GET /tasks/registers`` answers "how many of our Resolution 57 tasks are done, how many this
year, how many on schedule" for every task register (a source of kind ``tasks``), for the whole
programme or for one year (``?year=2025``), each figure naming its register and period.
``GET /tasks?state=overdue`` answers "which unit is late": per register with tasks in that state,
the department or commune responsible for it in the registry (the unit of the reminder digests).
``GET /tasks/groups`` answers "how far is plan 02 in our communes": per plan register (kind
``task_groups``), the groups completed in every commune and the communes that completed them all.
Arithmetic and reading: :mod:`ioc.api.taskdata`.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from marshmallow import validate

from ioc.api import schemas, taskdata
from ioc.api.context import data, now_ns, scope
from ioc.api.routes import Blueprint
from ioc.catalog.loader import SOURCE_ID_PATTERN
from ioc.errors import ApiProblem

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/v1",
    description="Task registers: counts and rates per register and year, units holding tasks.",
)

_RATE = {"description": "100 × count / total, half-up to 2 decimals; null without a total"}


class _Query(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class RegistersQuery(_Query):
    """``GET /tasks/registers``."""

    province = ma.fields.String(validate=schemas.PROVINCE_CODE)
    register = ma.fields.String(
        validate=validate.Regexp(SOURCE_ID_PATTERN, error="must be a source id, e.g. 01-tasks"),
        metadata={"description": "only this register (its source id)"},
    )
    year = ma.fields.Integer(
        validate=validate.Range(min=taskdata.FIRST_YEAR, max=taskdata.LAST_YEAR),
        metadata={"description": "the tasks of this calendar year (Vietnam time) only"},
    )


class TasksQuery(RegistersQuery):
    """``GET /tasks``."""

    state = ma.fields.String(
        load_default="overdue",
        validate=validate.OneOf(taskdata.BUCKETS),
        metadata={"description": "which tasks (a bucket of §6.2; tasks due soon: GET /reminders)"},
    )


class PeriodSchema(ma.Schema):
    scope = ma.fields.String(required=True, validate=validate.OneOf(("programme", "year")))
    year = ma.fields.Integer(allow_none=True)
    start = ma.fields.String(
        required=True, metadata={"description": "RFC 3339: readings from this time (inclusive)"}
    )
    end = ma.fields.String(
        required=True,
        metadata={"description": "RFC 3339: up to this time (exclusive): the year's end or now"},
    )


class RegisterRefSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    province = ma.fields.String(required=True)


class TaskFiguresSchema(ma.Schema):
    register = ma.fields.Nested(RegisterRefSchema, required=True)
    unit = ma.fields.Nested(schemas.ReminderUnitSchema, required=True)
    period = ma.fields.Nested(PeriodSchema, required=True)
    reported_at = ma.fields.String(
        allow_none=True, metadata={"description": "its last reading in the period; null: none"}
    )
    total = ma.fields.Integer(allow_none=True)
    completed = ma.fields.Integer(allow_none=True)
    on_schedule = ma.fields.Integer(allow_none=True)
    overdue = ma.fields.Integer(allow_none=True)
    due_soon = ma.fields.Integer(allow_none=True)
    completed_rate = ma.fields.Float(allow_none=True, metadata=_RATE)
    on_schedule_rate = ma.fields.Float(allow_none=True, metadata=_RATE)
    overdue_rate = ma.fields.Float(allow_none=True, metadata=_RATE)
    buckets_sum_to_total = ma.fields.Boolean(allow_none=True)


class TaskFiguresListSchema(ma.Schema):
    period = ma.fields.Nested(PeriodSchema, required=True)
    items = ma.fields.List(ma.fields.Nested(TaskFiguresSchema), required=True)


class GroupsQuery(_Query):
    """``GET /tasks/groups``."""

    province = ma.fields.String(validate=schemas.PROVINCE_CODE)
    register = ma.fields.String(
        validate=validate.Regexp(SOURCE_ID_PATTERN, error="must be a source id, e.g. 40-plan02"),
        metadata={"description": "only this plan register (its source id)"},
    )


class GroupCountSchema(ma.Schema):
    completed = ma.fields.Integer(
        allow_none=True, metadata={"description": "groups completed in every commune"}
    )
    total = ma.fields.Integer(allow_none=True, metadata={"description": "the plan's groups"})


class CommuneCountSchema(ma.Schema):
    completed = ma.fields.Integer(
        allow_none=True, metadata={"description": "communes and wards that completed every group"}
    )
    expected = ma.fields.Integer(
        required=True,
        metadata={"description": "the province's communes and wards (the places package)"},
    )


class GroupFiguresSchema(ma.Schema):
    register = ma.fields.Nested(RegisterRefSchema, required=True)
    unit = ma.fields.Nested(schemas.ReminderUnitSchema, required=True)
    period = ma.fields.Nested(PeriodSchema, required=True)
    reported_at = ma.fields.String(
        allow_none=True, metadata={"description": "its last reading in the period; null: none"}
    )
    task_groups = ma.fields.Nested(GroupCountSchema, required=True)
    communes = ma.fields.Nested(CommuneCountSchema, required=True)
    text = ma.fields.String(
        allow_none=True, metadata={"example": "16 of 16 task groups, 130 of 130 communes"}
    )
    text_vi = ma.fields.String(
        allow_none=True, metadata={"example": "16/16 nhóm nhiệm vụ, 130/130 xã, phường"}
    )
    counts_consistent = ma.fields.Boolean(
        allow_none=True,
        metadata={
            "description": "no count above its total, and all groups completed everywhere "
            "exactly when all communes completed every group"
        },
    )


class GroupFiguresListSchema(ma.Schema):
    period = ma.fields.Nested(PeriodSchema, required=True)
    items = ma.fields.List(ma.fields.Nested(GroupFiguresSchema), required=True)


class HeldTasksSchema(ma.Schema):
    unit = ma.fields.Nested(schemas.ReminderUnitSchema, required=True)
    register = ma.fields.Nested(RegisterRefSchema, required=True)
    state = ma.fields.String(required=True)
    tasks = ma.fields.Integer(required=True)
    total = ma.fields.Integer(allow_none=True)
    reported_at = ma.fields.String(allow_none=True)


class HeldTasksListSchema(ma.Schema):
    period = ma.fields.Nested(PeriodSchema, required=True)
    state = ma.fields.String(required=True)
    tasks = ma.fields.Integer(required=True, metadata={"description": "over every item"})
    units = ma.fields.Integer(required=True, metadata={"description": "distinct units"})
    items = ma.fields.List(ma.fields.Nested(HeldTasksSchema), required=True)


def _check(args: dict[str, Any], kind: str = taskdata.TASK_KIND) -> None:
    """404 for an unknown or out-of-scope province or register (of ``kind``)."""
    reader, allowed = data(), scope()
    if args.get("province") is not None:
        reader.province(args["province"], allowed)
    register = args.get("register")
    if register is not None:
        known = {s.id for s in taskdata.registers(reader, allowed, args.get("province"), kind)}
        if register not in known:
            raise ApiProblem(
                404,
                "Not Found",
                f"no task register {register!r}"
                + (f" in province {args['province']}" if args.get("province") else "")
                + "; GET /api/v1/tasks/"
                + ("groups" if kind == taskdata.GROUP_KIND else "registers")
                + " lists them",
                extra={"parameter": "register", "value": register},
            )


@blp.route("/tasks/registers")
class Registers(MethodView):
    @blp.arguments(RegistersQuery, location="query")
    @blp.response(200, TaskFiguresListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Each register's total, completed, on schedule, overdue and rates (optionally a year)."""
        _check(args)
        return taskdata.figures(
            data(),
            scope(),
            province=args.get("province"),
            register=args.get("register"),
            year=args.get("year"),
            now_ns=now_ns(),
        )


@blp.route("/tasks")
class Tasks(MethodView):
    @blp.arguments(TasksQuery, location="query")
    @blp.response(200, HeldTasksListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Which unit (department or commune) holds the tasks in a state, most first."""
        _check(args)
        return taskdata.holders(
            data(),
            scope(),
            province=args.get("province"),
            register=args.get("register"),
            state=args["state"],
            year=args.get("year"),
            now_ns=now_ns(),
        )


@blp.route("/tasks/groups")
class Groups(MethodView):
    @blp.arguments(GroupsQuery, location="query")
    @blp.response(200, GroupFiguresListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """A plan's task groups in the communes: "16 of 16 task groups, 130 of 130 communes"."""
        _check(args, taskdata.GROUP_KIND)
        return taskdata.group_figures(
            data(),
            scope(),
            province=args.get("province"),
            register=args.get("register"),
            now_ns=now_ns(),
        )
