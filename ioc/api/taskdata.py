"""Task registers' counts and rates, per register and per year, and the units holding the tasks.

Flask-free, like :mod:`ioc.api.data`. A task register (a source of kind ``tasks``) reports its
buckets as stocks (INDICATORS.md §6.2): ``tasks_total``, ``tasks_completed``,
``tasks_on_schedule``, ``tasks_overdue`` for the whole programme, and the same buckets of the
tasks of the reading's calendar year (Vietnam time) as ``tasks_year_*`` (docs/payloads.md). The
figures are the register's last reading in the period: the lookback window before now for the
programme, the calendar year for ``year``. Rates are 100 × count / total rounded half-up to two
decimals (:func:`ioc.engine.rollup.ratio_pct`, as the engine's ratios); counts are integers.

The unit holding a register's tasks is the register's responsible unit in the registry
(:func:`alerts.reminders.unit_of`: its ward, else its department, else its province).

A plan's task groups in the communes (plan 02-KH/BCĐTW: "16 of 16 task groups in 130 of 130
communes", INDICATORS.md §7) come from registers of kind ``task_groups``
(:func:`group_figures`): the groups of the plan, those completed in every commune and the
communes that completed every group (:func:`ioc.formulas.tasks.group_deployment`), out of the
province's communes and wards in the places package, never a count the register sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.reminders import unit_of
from ioc.api.data import LATEST_WINDOW, IndicatorData, Scope, rfc3339
from ioc.catalog import Source
from ioc.engine.rollup import ratio_pct
from ioc.store import time_ns
from ioc.store.influxql import latest_readings

TASK_KIND = "tasks"
GROUP_KIND = "task_groups"
GROUP_FIELDS = {
    "groups": "task_groups_total",
    "groups_completed": "task_groups_completed",
    "communes_completed": "task_groups_communes_completed",
}
VIETNAM = timedelta(hours=7)
BUCKETS = ("completed", "on_schedule", "overdue")
"""The three top-level buckets of §6.2; they sum to the total."""
PROGRAMME_FIELDS = {
    "total": "tasks_total",
    "completed": "tasks_completed",
    "on_schedule": "tasks_on_schedule",
    "overdue": "tasks_overdue",
    "due_soon": "tasks_due_soon",
}
YEAR_FIELDS = {
    "total": "tasks_year_total",
    "completed": "tasks_year_completed",
    "on_schedule": "tasks_year_on_schedule",
    "overdue": "tasks_year_overdue",
}
FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True, slots=True)
class Period:
    """What a figure covers: the whole programme as of ``end``, or the tasks of one year."""

    scope: str  # "programme" or "year"
    year: int | None
    start_ns: int  # readings in (start, end]
    end_ns: int

    def to_dict(self) -> dict[str, Any]:
        """The period as the API shows it."""
        return {
            "scope": self.scope,
            "year": self.year,
            "start": rfc3339(self.start_ns + 1),  # readings in [start, end)
            "end": rfc3339(self.end_ns + 1),
        }

    @property
    def fields(self) -> Mapping[str, str]:
        """Bucket name -> the metric read for it in this period."""
        return YEAR_FIELDS if self.scope == "year" else PROGRAMME_FIELDS


def period(year: int | None, now_ns: int) -> Period:
    """The programme as of ``now_ns``, or calendar year ``year`` in Vietnam time (to now at most).

    Readings stamped at ``year``-01-01 00:00 (UTC+7) up to, not including, the next new year
    count: the window (start, end] is shifted by one nanosecond.
    """
    if year is None:
        return Period("programme", None, now_ns - time_ns_of(LATEST_WINDOW), now_ns)
    start = time_ns(datetime(year, 1, 1, tzinfo=UTC) - VIETNAM) - 1
    end = time_ns(datetime(year + 1, 1, 1, tzinfo=UTC) - VIETNAM) - 1
    return Period("year", year, start, min(end, now_ns))


def time_ns_of(span: timedelta) -> int:
    """A timedelta in nanoseconds."""
    return int(span.total_seconds()) * 1_000_000_000


def registers(
    reader: IndicatorData, scope: Scope, province: str | None, kind: str = TASK_KIND
) -> list[Source]:
    """The registered task registers (of ``kind``) the caller may read, optionally of one
    province."""
    return [
        s
        for s in reader.catalog.registry.sources
        if s.kind == kind
        and scope.allows(s.province)
        and (province is None or s.province == province)
    ]


def _counts(
    reader: IndicatorData,
    when: Period,
    sources: list[Source],
    kind: str = TASK_KIND,
    fields: Mapping[str, str] | None = None,
) -> dict[str, dict[str, int | None]]:
    """Per register id: its last count of each bucket in the period (None: never sent).
    ``fields`` maps a bucket to the metric read for it (the period's task buckets if None)."""
    if not sources or kind not in reader.catalog.kinds or when.end_ns <= when.start_ns:
        return {}
    fields = when.fields if fields is None else fields
    text = latest_readings(
        reader.db,
        reader.catalog.kind(kind).measurement,
        fields=tuple(fields.values()),
        filters=(),
        group_by=("source",),
    )
    wanted = {s.id for s in sources}
    found: dict[str, dict[str, int | None]] = {}
    for series in reader.store.query(text, {"start": when.start_ns, "end": when.end_ns}):
        source = series.tags.get("source", "")
        if source not in wanted:
            continue
        for row in series.rows():
            found[source] = {
                bucket: None if row.get(name) is None else round(float(row[name]))
                for bucket, name in fields.items()
            }
    return found


def _last_time(
    reader: IndicatorData, when: Period, sources: list[Source], kind: str = TASK_KIND
) -> dict[str, int]:
    """Per register id, the time of its last reading of its total in the period."""
    if not sources or kind not in reader.catalog.kinds or when.end_ns <= when.start_ns:
        return {}
    total = GROUP_FIELDS["groups"] if kind == GROUP_KIND else when.fields["total"]
    text = latest_readings(
        reader.db,
        reader.catalog.kind(kind).measurement,
        fields=(total,),
        filters=(),
        group_by=("source",),
    )
    last: dict[str, int] = {}
    for series in reader.store.query(text, {"start": when.start_ns, "end": when.end_ns}):
        for row in series.rows():
            last[series.tags.get("source", "")] = int(row["time"])
    return last


def unit(reader: IndicatorData, source: Source) -> dict[str, Any]:
    """The unit responsible for a register, as the API shows it."""
    held = unit_of(source, reader.places)
    return {
        "id": held.id,
        "name": held.name,
        "level": held.level,
        "province": held.province,
        "province_name": held.province_name,
        "ward": held.ward,
    }


def figures(
    reader: IndicatorData,
    scope: Scope,
    *,
    province: str | None,
    register: str | None,
    year: int | None,
    now_ns: int,
) -> dict[str, Any]:
    """Every register's counts and rates in the period (a register that did not report: nulls)."""
    when = period(year, now_ns)
    sources = [
        s for s in registers(reader, scope, province) if register is None or s.id == register
    ]
    counts = _counts(reader, when, sources)
    reported = _last_time(reader, when, sources)
    items = []
    for source in sorted(sources, key=lambda s: (s.province, s.id)):
        values = counts.get(source.id, {})
        total = values.get("total")
        item: dict[str, Any] = {
            "register": {"id": source.id, "name": source.name, "province": source.province},
            "unit": unit(reader, source),
            "period": when.to_dict(),
            "reported_at": rfc3339(reported[source.id]) if source.id in reported else None,
            "total": total,
        }
        for bucket in (*BUCKETS, "due_soon"):
            item[bucket] = values.get(bucket)
        for bucket in BUCKETS:
            count = values.get(bucket)
            item[f"{bucket}_rate"] = None if count is None or not total else ratio_pct(count, total)
        parts = [values.get(b) for b in BUCKETS]
        item["buckets_sum_to_total"] = (
            None
            if total is None or any(p is None for p in parts)
            else sum(p for p in parts if p is not None) == total
        )
        items.append(item)
    return {"period": when.to_dict(), "items": items}


def holders(
    reader: IndicatorData,
    scope: Scope,
    *,
    province: str | None,
    register: str | None,
    state: str,
    year: int | None,
    now_ns: int,
) -> dict[str, Any]:
    """The units holding tasks in ``state``: per register with any, the most first."""
    answer = figures(reader, scope, province=province, register=register, year=year, now_ns=now_ns)
    items = [
        {
            "unit": item["unit"],
            "register": item["register"],
            "state": state,
            "tasks": item[state],
            "total": item["total"],
            "reported_at": item["reported_at"],
        }
        for item in answer["items"]
        if item.get(state)
    ]
    items.sort(key=lambda i: (-i["tasks"], i["unit"]["id"], i["register"]["id"]))
    return {
        "period": answer["period"],
        "state": state,
        "tasks": sum(i["tasks"] for i in items),
        "units": len({i["unit"]["id"] for i in items}),
        "items": items,
    }


def group_figures(
    reader: IndicatorData,
    scope: Scope,
    *,
    province: str | None,
    register: str | None,
    now_ns: int,
) -> dict[str, Any]:
    """Each plan register's task groups completed in every commune and the communes that
    completed every group, of the province's communes and wards, as of its last reading."""
    when = period(None, now_ns)
    sources = [
        s
        for s in registers(reader, scope, province, GROUP_KIND)
        if register is None or s.id == register
    ]
    counts = _counts(reader, when, sources, GROUP_KIND, GROUP_FIELDS)
    reported = _last_time(reader, when, sources, GROUP_KIND)
    items = []
    for source in sorted(sources, key=lambda s: (s.province, s.id)):
        values = counts.get(source.id, {})
        communes = len(reader.places.wards_of(source.province))
        deployment = _deployment(values, communes)
        items.append(
            {
                "register": {"id": source.id, "name": source.name, "province": source.province},
                "unit": unit(reader, source),
                "period": when.to_dict(),
                "reported_at": rfc3339(reported[source.id]) if source.id in reported else None,
                **deployment,
            }
        )
    return {"period": when.to_dict(), "items": items}


def _deployment(values: Mapping[str, int | None], communes: int) -> dict[str, Any]:
    """The groups and communes of one plan register, in numbers and in words.

    ``counts_consistent`` checks what the counts imply of each other: every group completed in
    every commune is the same as every commune having completed every group (so one figure at
    its total and the other not is an inconsistent report), and no count exceeds its total.
    """
    groups, done, places = (
        values.get("groups"),
        values.get("groups_completed"),
        values.get("communes_completed"),
    )
    answer: dict[str, Any] = {
        "task_groups": {"completed": done, "total": groups},
        "communes": {"completed": places, "expected": communes},
        "text": None,
        "text_vi": None,
        "counts_consistent": None,
    }
    if groups is None or done is None or places is None:
        return answer
    answer["text"] = f"{done} of {groups} task groups, {places} of {communes} communes"
    answer["text_vi"] = f"{done}/{groups} nhóm nhiệm vụ, {places}/{communes} xã, phường"
    within = done <= groups and places <= communes
    both_full = groups == 0 or communes == 0 or (done == groups) == (places == communes)
    answer["counts_consistent"] = within and both_full
    return answer
