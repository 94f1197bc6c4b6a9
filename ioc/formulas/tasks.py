"""Task progress for Resolution 57-NQ/TW and Project 06 registers (INDICATORS.md §6.2, §6.3, §7).

Status taxonomy of §6.2: ``completed`` (``completed_on_time`` / ``completed_late``),
``in_progress_on_time`` (trong hạn) and ``overdue`` (quá hạn), classified at an as-of date; a task
is overdue if ``due_date < as_of`` and it is not completed. ``rate = count / total × 100`` to two
decimals; the buckets sum to the total.

Decisions where the text is silent or [U]:

* Rounding: ``ROUND_HALF_UP`` on the exact ratio (a :class:`~fractions.Fraction`), because §6.2
  gives no mode and half-up is how the published figures read (485/1,132 → 42.84; 8,150/9,831 →
  82.90). Each rate is rounded on its own; rounded rates may not add to exactly 100.00, the counts
  always add to the total, and no rate is adjusted to force the sum.
* A task due on the as-of date is still on time (the rule is strict ``<``). A completion date
  after the as-of date means "not yet completed" at that date, so a register can be replayed.
  Completion on the due date is on time.
* §7 (Project 06) reports tasks "done on a recurring basis": a register task without a deadline is
  in a fourth bucket ``recurring`` (never overdue); for Resolution 57 registers it is 0, so the
  three §6.2 buckets alone sum to the total.
* Dates are calendar dates. An aware datetime is converted to its date in Vietnam time (UTC+7, no
  daylight saving); a naive datetime is rejected.
* An empty register (total 0) has no rates (``None``), not 0 %.
* A reported summary (counts as published) must add up: with every bucket published, the buckets
  must sum to the total (§6.3: 7,892 + 1,602 + 319 ≠ 9,831 is rejected); a bucket the report does
  not give is ``None`` and the remainder is kept as ``unaccounted`` — never assigned to a bucket
  by guess (Project 06: 348 + 119 + 184 of 690 leaves 39 unaccounted). A published completion
  rate must equal the computed one rounded half-up to the precision published ("43%" for
  42.84 %). The Cà Mau, Nghệ An and Project 06 figures are [U] (Open item 4); they are used only
  as arithmetic checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from fractions import Fraction

from ioc.errors import FormulaInputError

__all__ = [
    "VIETNAM_TIME",
    "Bucket",
    "CheckedSummary",
    "GroupDeployment",
    "ReportedSummary",
    "StatusMismatch",
    "Task",
    "TaskProgress",
    "TaskStatus",
    "check_summary",
    "classify_task",
    "group_deployment",
    "progress_by_unit",
    "rate_pct",
    "task_progress",
]

#: Vietnam's civil time, used to turn aware datetimes into calendar dates.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")


class Bucket(Enum):
    """Top-level progress bucket (§6.2, plus §7's recurring tasks); buckets sum to the total."""

    COMPLETED = "completed"
    IN_PROGRESS_ON_TIME = "in_progress_on_time"
    OVERDUE = "overdue"
    RECURRING = "recurring"


class TaskStatus(Enum):
    """Status of one task at an as-of date (§6.2 with the completed sub-states)."""

    COMPLETED_ON_TIME = "completed_on_time"
    COMPLETED_LATE = "completed_late"
    IN_PROGRESS_ON_TIME = "in_progress_on_time"
    OVERDUE = "overdue"
    RECURRING = "recurring"

    @property
    def bucket(self) -> Bucket:
        """The top-level bucket this status counts in."""
        if self in (TaskStatus.COMPLETED_ON_TIME, TaskStatus.COMPLETED_LATE):
            return Bucket.COMPLETED
        return Bucket(self.value)


def _as_date(value: date | datetime, what: str) -> date:
    """A calendar date; aware datetimes are read in Vietnam time, naive ones rejected."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise FormulaInputError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
        return value.astimezone(VIETNAM_TIME).date()
    if not isinstance(value, date):
        raise FormulaInputError(f"{what} must be a date, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Task:
    """One task of a register, as the tracking system reports it."""

    task_id: str
    unit: str
    deadline: date | None
    completed_on: date | None = None
    reported_status: TaskStatus | Bucket | None = None

    def __post_init__(self) -> None:
        """Normalise dates (aware datetimes → Vietnam date) and reject naive datetimes."""
        if self.deadline is not None:
            object.__setattr__(
                self, "deadline", _as_date(self.deadline, f"{self.task_id} deadline")
            )
        if self.completed_on is not None:
            object.__setattr__(
                self, "completed_on", _as_date(self.completed_on, f"{self.task_id} completed_on")
            )


@dataclass(frozen=True, slots=True)
class StatusMismatch:
    """A task whose reported status differs from the one its dates give."""

    task_id: str
    reported: TaskStatus | Bucket
    computed: TaskStatus


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """Bucket counts and rates (%, 2 decimals) of a register at an as-of date."""

    unit: str | None
    as_of: date
    total: int
    completed: int
    completed_on_time: int
    completed_late: int
    in_progress_on_time: int
    overdue: int
    recurring: int
    completed_rate: Decimal | None
    in_progress_rate: Decimal | None
    overdue_rate: Decimal | None
    recurring_rate: Decimal | None
    overdue_task_ids: tuple[str, ...]
    mismatches: tuple[StatusMismatch, ...]


def rate_pct(count: int, total: int) -> Decimal | None:
    """``count / total × 100`` rounded half-up to 2 decimals; None when total is 0 (§6.2)."""
    if total == 0:
        return None
    return _round_half_up(Fraction(count * 100, total), 2)


def _round_half_up(value: Fraction, places: int) -> Decimal:
    """Round a non-negative exact value half-up to ``places`` decimals."""
    scale = 10**places
    units = math.floor(value * scale + Fraction(1, 2))
    return Decimal(units).scaleb(-places)


def classify_task(task: Task, as_of: date | datetime) -> TaskStatus:
    """Status of ``task`` at ``as_of`` (§6.2: overdue if due < as_of and not completed)."""
    day = _as_date(as_of, "as_of")
    if task.completed_on is not None and task.completed_on <= day:
        if task.deadline is None or task.completed_on <= task.deadline:
            return TaskStatus.COMPLETED_ON_TIME
        return TaskStatus.COMPLETED_LATE
    if task.deadline is None:
        return TaskStatus.RECURRING
    if task.deadline < day:
        return TaskStatus.OVERDUE
    return TaskStatus.IN_PROGRESS_ON_TIME


def _differs(reported: TaskStatus | Bucket, computed: TaskStatus) -> bool:
    if isinstance(reported, Bucket):
        return reported is not computed.bucket
    return reported is not computed


def task_progress(
    tasks: Iterable[Task], as_of: date | datetime, *, unit: str | None = None
) -> TaskProgress:
    """Counts and rates of ``tasks`` at ``as_of``; ``unit`` only labels the result."""
    day = _as_date(as_of, "as_of")
    seen: set[str] = set()
    counts = dict.fromkeys(TaskStatus, 0)
    overdue_ids: list[str] = []
    mismatches: list[StatusMismatch] = []
    for task in tasks:
        if task.task_id in seen:
            raise FormulaInputError(f"task id {task.task_id!r} appears twice in the register")
        seen.add(task.task_id)
        status = classify_task(task, day)
        counts[status] += 1
        if status is TaskStatus.OVERDUE:
            overdue_ids.append(task.task_id)
        if task.reported_status is not None and _differs(task.reported_status, status):
            mismatches.append(StatusMismatch(task.task_id, task.reported_status, status))
    total = len(seen)
    completed = counts[TaskStatus.COMPLETED_ON_TIME] + counts[TaskStatus.COMPLETED_LATE]
    return TaskProgress(
        unit=unit,
        as_of=day,
        total=total,
        completed=completed,
        completed_on_time=counts[TaskStatus.COMPLETED_ON_TIME],
        completed_late=counts[TaskStatus.COMPLETED_LATE],
        in_progress_on_time=counts[TaskStatus.IN_PROGRESS_ON_TIME],
        overdue=counts[TaskStatus.OVERDUE],
        recurring=counts[TaskStatus.RECURRING],
        completed_rate=rate_pct(completed, total),
        in_progress_rate=rate_pct(counts[TaskStatus.IN_PROGRESS_ON_TIME], total),
        overdue_rate=rate_pct(counts[TaskStatus.OVERDUE], total),
        recurring_rate=rate_pct(counts[TaskStatus.RECURRING], total),
        overdue_task_ids=tuple(overdue_ids),
        mismatches=tuple(mismatches),
    )


def progress_by_unit(tasks: Iterable[Task], as_of: date | datetime) -> tuple[TaskProgress, ...]:
    """:func:`task_progress` per unit, sorted by unit (§7: overdue tasks per unit)."""
    register = list(tasks)
    ids = [t.task_id for t in register]
    if len(ids) != len(set(ids)):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise FormulaInputError(f"task id {duplicate!r} appears twice in the register")
    units = sorted({t.unit for t in register})
    return tuple(task_progress((t for t in register if t.unit == u), as_of, unit=u) for u in units)


@dataclass(frozen=True, slots=True)
class ReportedSummary:
    """Counts as a report published them; None where the report does not give a bucket."""

    total: int | None
    completed: int | None
    in_progress_on_time: int | None
    overdue: int | None
    recurring: int | None = 0
    completed_rate_pct: Decimal | None = None


@dataclass(frozen=True, slots=True)
class CheckedSummary:
    """A reported summary that adds up, with its rates and what it leaves unaccounted."""

    total: int
    completed: int | None
    in_progress_on_time: int | None
    overdue: int | None
    recurring: int | None
    unaccounted: int
    completed_rate: Decimal | None
    in_progress_rate: Decimal | None
    overdue_rate: Decimal | None
    recurring_rate: Decimal | None


def _checked_count(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormulaInputError(f"{what} must be a non-negative integer, got {value!r}")
    return value


def check_summary(summary: ReportedSummary) -> CheckedSummary:
    """Check that a published summary adds up (§6.3) and compute its rates; reject it if not."""
    buckets = {
        "completed": _checked_count(summary.completed, "completed"),
        "in_progress_on_time": _checked_count(summary.in_progress_on_time, "in_progress_on_time"),
        "overdue": _checked_count(summary.overdue, "overdue"),
        "recurring": _checked_count(summary.recurring, "recurring"),
    }
    known = {name: n for name, n in buckets.items() if n is not None}
    known_sum = sum(known.values())
    terms = " + ".join(f"{name} {n:,}" for name, n in known.items())
    total = _checked_count(summary.total, "total")
    if total is None:
        if len(known) != len(buckets):
            missing = ", ".join(name for name, n in buckets.items() if n is None)
            raise FormulaInputError(
                f"summary gives no total and no {missing}: the total cannot be derived"
            )
        total = known_sum
    if len(known) == len(buckets) and known_sum != total:
        raise FormulaInputError(f"buckets do not add up: {terms} = {known_sum:,} ≠ total {total:,}")
    if known_sum > total:
        raise FormulaInputError(f"buckets exceed the total: {terms} = {known_sum:,} > {total:,}")

    def rate(count: int | None) -> Decimal | None:
        return None if count is None else rate_pct(count, total)

    checked = CheckedSummary(
        total=total,
        completed=buckets["completed"],
        in_progress_on_time=buckets["in_progress_on_time"],
        overdue=buckets["overdue"],
        recurring=buckets["recurring"],
        unaccounted=total - known_sum,
        completed_rate=rate(buckets["completed"]),
        in_progress_rate=rate(buckets["in_progress_on_time"]),
        overdue_rate=rate(buckets["overdue"]),
        recurring_rate=rate(buckets["recurring"]),
    )
    _check_published_rate(summary, checked)
    return checked


def _check_published_rate(summary: ReportedSummary, checked: CheckedSummary) -> None:
    """A published completion rate must match the counts at the precision it was published."""
    published = summary.completed_rate_pct
    if published is None:
        return
    if not published.is_finite():
        raise FormulaInputError(f"completed_rate_pct must be finite, got {published}")
    if checked.completed is None or checked.total == 0:
        raise FormulaInputError(
            f"completed_rate_pct {published} is published but completed "
            f"{checked.completed} / total {checked.total} cannot give a rate"
        )
    exponent = published.as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    computed = _round_half_up(Fraction(checked.completed * 100, checked.total), places)
    if computed != published:
        raise FormulaInputError(
            f"published completion rate {published}% does not match completed "
            f"{checked.completed:,} / total {checked.total:,} = {computed}%"
        )


@dataclass(frozen=True, slots=True)
class GroupDeployment:
    """A plan's task groups in the communes (§7, Nghệ An: "all 130 of 130 communes and wards
    completed all 16 task groups" of plan 02-KH/BCĐTW), at an as-of date."""

    groups: int
    groups_completed: int  # groups completed in every commune
    communes: int
    communes_completed: int  # communes that completed every group


def group_deployment(
    tasks: Iterable[Task], as_of: date | datetime, *, groups: Iterable[str], communes: Iterable[str]
) -> GroupDeployment:
    """How far a plan's task groups are deployed in the communes at ``as_of``.

    A task group deployed in a commune is one task of the plan's register: its ``task_id`` is the
    group, its ``unit`` the commune. ``groups`` are the plan's groups and ``communes`` every
    commune the plan covers (the province's communes and wards, not only those with a task): a
    group not yet deployed in a commune, with no task for it, is not completed there. A group
    counts as completed when it is completed (on time or late) in every commune, and a commune
    when it completed every group. A task of an unknown group or commune, or a group given twice
    for one commune, is an error.
    """
    day = _as_date(as_of, "as_of")
    plan, places = list(dict.fromkeys(groups)), list(dict.fromkeys(communes))
    known_groups, known_places = set(plan), set(places)
    done: set[tuple[str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for task in tasks:
        pair = (task.task_id, task.unit)
        if task.task_id not in known_groups:
            raise FormulaInputError(f"task group {task.task_id!r} is not one of the plan's groups")
        if task.unit not in known_places:
            raise FormulaInputError(f"commune {task.unit!r} is not one the plan covers")
        if pair in seen:
            raise FormulaInputError(f"task group {task.task_id!r} appears twice in {task.unit!r}")
        seen.add(pair)
        if classify_task(task, day).bucket is Bucket.COMPLETED:
            done.add(pair)
    return GroupDeployment(
        groups=len(plan),
        groups_completed=sum(1 for g in plan if all((g, c) in done for c in places)),
        communes=len(places),
        communes_completed=sum(1 for c in places if all((g, c) in done for g in plan)),
    )
