"""Task progress against INDICATORS.md §6.2, §6.3 and the §7 figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.tasks import (
    Bucket,
    ReportedSummary,
    StatusMismatch,
    Task,
    TaskStatus,
    check_summary,
    classify_task,
    progress_by_unit,
    rate_pct,
    task_progress,
)

D = Decimal
AS_OF = date(2025, 10, 24)


def _register(completed: int, in_progress: int, overdue: int, unit: str = "u") -> list[Task]:
    """A register with the given bucket counts at AS_OF."""
    tasks = [
        Task(f"c{i}", unit, deadline=date(2025, 12, 31), completed_on=date(2025, 9, 1))
        for i in range(completed)
    ]
    tasks += [Task(f"p{i}", unit, deadline=date(2025, 12, 31)) for i in range(in_progress)]
    tasks += [Task(f"o{i}", unit, deadline=date(2025, 10, 1)) for i in range(overdue)]
    return tasks


# §6.3 rows with every bucket given: the register's rates must match the expected column.
@pytest.mark.parametrize(
    ("completed", "in_progress", "overdue", "total", "rates"),
    [
        # National NQ57 Q3 2025: total 1,132; completed 42.84 %. The other two by hand:
        # 561/1132 = 0.495583 → 49.56; 86/1132 = 0.075972 → 7.60.
        (485, 561, 86, 1132, ("42.84", "49.56", "7.60")),
        # Government tasks to 24 Oct 2025: 82.90 / 16.48 / 0.62, sum 9,831.
        (8150, 1620, 61, 9831, ("82.90", "16.48", "0.62")),
    ],
)
def test_section_6_3_registers(
    completed: int, in_progress: int, overdue: int, total: int, rates: tuple[str, str, str]
) -> None:
    progress = task_progress(_register(completed, in_progress, overdue), AS_OF)
    assert progress.total == total
    assert (progress.completed, progress.in_progress_on_time, progress.overdue) == (
        completed,
        in_progress,
        overdue,
    )
    assert (progress.completed_rate, progress.in_progress_rate, progress.overdue_rate) == tuple(
        D(r) for r in rates
    )
    assert progress.completed + progress.in_progress_on_time + progress.overdue == progress.total


@pytest.mark.parametrize(
    ("count", "total", "expected"),
    [
        (66, 123, "53.66"),  # Cà Mau (§6.3, §7)
        (38, 65, "58.46"),  # Cà Mau 2025 tasks
        (51, 100, "51.00"),  # Nghệ An
        (348, 690, "50.43"),  # Project 06
        (485, 1132, "42.84"),  # NQ57 national
        # 1/32 = 3.125 % exactly: half-up gives 3.13 (half-even would give 3.12).
        (1, 32, "3.13"),
        (0, 5, "0.00"),
    ],
)
def test_rate_pct(count: int, total: int, expected: str) -> None:
    assert rate_pct(count, total) == D(expected)


def test_rate_of_empty_register_is_none() -> None:
    assert rate_pct(0, 0) is None
    progress = task_progress([], AS_OF)
    assert progress.total == 0
    assert progress.completed_rate is None


@pytest.mark.parametrize(
    ("deadline", "completed_on", "status"),
    [
        (date(2025, 10, 24), None, TaskStatus.IN_PROGRESS_ON_TIME),  # due today: not yet overdue
        (date(2025, 10, 23), None, TaskStatus.OVERDUE),  # due yesterday
        (date(2025, 10, 1), date(2025, 10, 1), TaskStatus.COMPLETED_ON_TIME),  # on the due date
        (date(2025, 10, 1), date(2025, 10, 2), TaskStatus.COMPLETED_LATE),
        (date(2025, 10, 1), date(2025, 10, 25), TaskStatus.OVERDUE),  # completed after as_of
        (date(2025, 12, 1), date(2025, 10, 25), TaskStatus.IN_PROGRESS_ON_TIME),
        (None, None, TaskStatus.RECURRING),  # §7 "done on a recurring basis"
    ],
)
def test_classify_task(
    deadline: date | None, completed_on: date | None, status: TaskStatus
) -> None:
    assert classify_task(Task("t", "u", deadline, completed_on), AS_OF) is status


def test_completed_sub_states_and_buckets() -> None:
    tasks = [
        Task("a", "u", date(2025, 6, 30), date(2025, 6, 1)),  # on time
        Task("b", "u", date(2025, 6, 30), date(2025, 7, 15)),  # late
        Task("c", "u", date(2025, 6, 30)),  # overdue
        Task("d", "u", None),  # recurring
    ]
    progress = task_progress(tasks, AS_OF)
    assert (progress.completed_on_time, progress.completed_late, progress.completed) == (1, 1, 2)
    assert (progress.overdue, progress.recurring, progress.total) == (1, 1, 4)
    assert progress.overdue_task_ids == ("c",)
    assert progress.completed_rate == D("50.00")
    assert progress.recurring_rate == D("25.00")


def test_overdue_per_unit() -> None:
    # §7 Hà Nội: 12 overdue tasks assigned by central bodies, 18 overdue city tasks.
    tasks = _register(5, 3, 12, unit="central") + [
        Task(f"city-{t.task_id}", "city", t.deadline, t.completed_on)
        for t in _register(0, 7, 18, unit="city")
    ]
    by_unit = {p.unit: p for p in progress_by_unit(tasks, AS_OF)}
    assert by_unit["central"].overdue == 12
    assert by_unit["city"].overdue == 18
    assert task_progress(tasks, AS_OF).overdue == 30


def test_reported_status_mismatches() -> None:
    tasks = [
        Task("a", "u", date(2025, 6, 30), reported_status=Bucket.IN_PROGRESS_ON_TIME),
        Task("b", "u", date(2025, 6, 30), date(2025, 7, 1), reported_status=Bucket.COMPLETED),
        Task(
            "c",
            "u",
            date(2025, 6, 30),
            date(2025, 7, 1),
            reported_status=TaskStatus.COMPLETED_ON_TIME,
        ),
    ]
    progress = task_progress(tasks, AS_OF)
    assert progress.mismatches == (
        StatusMismatch("a", Bucket.IN_PROGRESS_ON_TIME, TaskStatus.OVERDUE),
        StatusMismatch("c", TaskStatus.COMPLETED_ON_TIME, TaskStatus.COMPLETED_LATE),
    )


def test_aware_datetime_read_in_vietnam_time() -> None:
    # 2025-10-23 18:00 UTC is 2025-10-24 01:00 in Vietnam: a task due 23 Oct is overdue.
    as_of = datetime(2025, 10, 23, 18, 0, tzinfo=UTC)
    task = Task("t", "u", date(2025, 10, 23))
    assert classify_task(task, as_of) is TaskStatus.OVERDUE
    assert classify_task(task, datetime(2025, 10, 23, 16, 0, tzinfo=UTC)) is (
        TaskStatus.IN_PROGRESS_ON_TIME
    )
    deadline = datetime(2025, 10, 23, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert Task("t", "u", deadline).deadline == date(2025, 10, 24)


def test_naive_datetime_rejected() -> None:
    with pytest.raises(FormulaInputError, match="as_of must be timezone-aware"):
        classify_task(Task("t", "u", date(2025, 1, 1)), datetime(2025, 1, 1, 12))  # noqa: DTZ001
    with pytest.raises(FormulaInputError, match="t deadline must be timezone-aware"):
        Task("t", "u", datetime(2025, 1, 1, 12))  # noqa: DTZ001


def test_duplicate_task_ids_rejected() -> None:
    tasks = [Task("a", "u1", date(2025, 1, 1)), Task("a", "u2", date(2025, 1, 1))]
    with pytest.raises(FormulaInputError, match="'a' appears twice"):
        task_progress(tasks, AS_OF)
    with pytest.raises(FormulaInputError, match="'a' appears twice"):
        progress_by_unit(tasks, AS_OF)


def test_summary_national_nq57() -> None:
    # §6.3: 485 + 561 + 86 = 1,132; completed 42.84 %, published as "43%".
    checked = check_summary(
        ReportedSummary(
            total=None,
            completed=485,
            in_progress_on_time=561,
            overdue=86,
            completed_rate_pct=D("43"),
        )
    )
    assert checked.total == 1132
    assert checked.completed_rate == D("42.84")
    assert checked.unaccounted == 0


def test_summary_government_tasks() -> None:
    checked = check_summary(
        ReportedSummary(total=9831, completed=8150, in_progress_on_time=1620, overdue=61)
    )
    assert (checked.completed_rate, checked.in_progress_rate, checked.overdue_rate) == (
        D("82.90"),
        D("16.48"),
        D("0.62"),
    )


def test_inconsistent_press_report_rejected() -> None:
    # §6.3: to 20 Oct 2025, 7,892 + 1,602 + 319 = 9,813, not the 9,831 assigned.
    with pytest.raises(FormulaInputError) as excinfo:
        check_summary(
            ReportedSummary(total=9831, completed=7892, in_progress_on_time=1602, overdue=319)
        )
    message = str(excinfo.value)
    for number in ("7,892", "1,602", "319", "9,813", "9,831"):
        assert number in message


def test_buckets_exceeding_total_rejected() -> None:
    with pytest.raises(FormulaInputError, match=r"completed 80 \+ overdue 30.* = 110 > 100"):
        check_summary(
            ReportedSummary(total=100, completed=80, in_progress_on_time=None, overdue=30)
        )


def test_summary_with_unpublished_bucket_keeps_the_remainder() -> None:
    # §7 Project 06: 690 tasks, 348 completed (50%), 119 recurring, 184 in progress; overdue not
    # published: 690 − (348 + 119 + 184) = 39 unaccounted; 348/690 = 50.43 % ≈ "50%".
    checked = check_summary(
        ReportedSummary(
            total=690,
            completed=348,
            in_progress_on_time=184,
            overdue=None,
            recurring=119,
            completed_rate_pct=D("50"),
        )
    )
    assert checked.unaccounted == 39
    assert checked.overdue is None
    assert checked.completed_rate == D("50.43")
    assert checked.recurring_rate == D("17.25")  # 119/690 = 0.172464 → 17.25


@pytest.mark.parametrize(
    ("summary", "completed_rate", "unaccounted"),
    [
        # §7 Cà Mau: 66 of 123 (53.66 %), no overdue tasks; in progress not stated: 57 left.
        (ReportedSummary(123, 66, None, 0, completed_rate_pct=D("53.66")), "53.66", 57),
        # Cà Mau 2025 tasks 38 of 65 (58.46 %).
        (ReportedSummary(65, 38, None, None, completed_rate_pct=D("58.46")), "58.46", 27),
        # §7 Nghệ An: 100 tasks, 51 completed (51%), 49 on schedule.
        (ReportedSummary(100, 51, 49, None, completed_rate_pct=D("51")), "51.00", 0),
    ],
)
def test_section_7_summaries(
    summary: ReportedSummary, completed_rate: str, unaccounted: int
) -> None:
    checked = check_summary(summary)
    assert checked.completed_rate == D(completed_rate)
    assert checked.unaccounted == unaccounted


def _nq57(published: Decimal) -> ReportedSummary:
    return ReportedSummary(
        total=1132, completed=485, in_progress_on_time=561, overdue=86, completed_rate_pct=published
    )


# 485/1,132 = 42.8445…% → 43 (0 dp), 42.8 (1 dp), 42.84 (2 dp).
@pytest.mark.parametrize("published", [D("43"), D("42.8"), D("42.84")])
def test_published_rate_at_its_precision_accepted(published: Decimal) -> None:
    assert check_summary(_nq57(published)).completed_rate == D("42.84")


@pytest.mark.parametrize(
    ("published", "computed"),
    [(D("42"), "43"), (D("42.9"), "42.8"), (D("42.85"), "42.84")],
)
def test_wrong_published_rate_rejected(published: Decimal, computed: str) -> None:
    with pytest.raises(FormulaInputError, match=rf"{published}% does not match .* = {computed}%"):
        check_summary(_nq57(published))


def test_summary_without_total_needs_every_bucket() -> None:
    with pytest.raises(FormulaInputError, match="no total and no overdue"):
        check_summary(ReportedSummary(total=None, completed=5, in_progress_on_time=3, overdue=None))


def test_negative_count_rejected() -> None:
    with pytest.raises(FormulaInputError, match="overdue must be a non-negative integer, got -1"):
        check_summary(ReportedSummary(total=10, completed=5, in_progress_on_time=6, overdue=-1))
