"""``GET /api/v1/tasks/registers`` and ``GET /api/v1/tasks``: the provincial reports' task figures.

Seeded as raw readings of the registers on the test's own InfluxDB database: Cà Mau's Resolution
57 register as its Sept 2025 report gives it (INDICATORS.md §7: "66 of 123 completed (53.66%),
of which 2025 tasks 38 of 65 (58.46%); no overdue tasks"), Nghệ An's ("100 tasks: 51 completed
(51%), 49 on schedule") and Hà Nội's two registers with 18 + 12 overdue tasks.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ioc.api.routes.tasks import GroupFiguresListSchema, HeldTasksListSchema, TaskFiguresListSchema
from ioc.errors import FormulaInputError
from ioc.formulas.tasks import GroupDeployment, Task, group_deployment
from ioc.settings import Settings
from ioc.store import Point, Store, time_ns
from ioc.store.influxql import quote_ident
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

NS = 1_000_000_000
VIETNAM = timezone(timedelta(hours=7))
PROBLEM = "application/problem+json"


def _tasks(source: str, province: str, at_ns: int, **counts: int) -> Point:
    fields: dict[str, float | int] = {name: float(value) for name, value in counts.items()}
    fields["received_ms"] = at_ns // 1_000_000
    return Point("tasks", fields, at_ns, {"source": source, "province": province})


def _groups(
    source: str, province: str, at_ns: int, *, total: int, completed: int, communes: int
) -> Point:
    fields: dict[str, float | int] = {
        "task_groups_total": float(total),
        "task_groups_completed": float(completed),
        "task_groups_communes_completed": float(communes),
        "received_ms": at_ns // 1_000_000,
    }
    return Point("task_groups", fields, at_ns, {"source": source, "province": province})


def _ns(year: int, month: int, day: int, hour: int) -> int:
    return time_ns(datetime(year, month, day, hour, tzinfo=VIETNAM))


@pytest.fixture
def seeded(api_settings: Settings) -> int:
    """The registers' readings; 2025's kept beyond the default 400 days of raw retention."""
    now = time.time_ns()
    this_year = datetime.fromtimestamp(now / NS, tz=VIETNAM).year
    raw = [
        # Cà Mau: during 2025 the register sent 2025's counts; the last of the year wins.
        _tasks("96-tasks", "96", _ns(2025, 3, 31, 9), tasks_year_total=40,
               tasks_year_completed=10, tasks_year_on_schedule=30, tasks_year_overdue=0),
        _tasks("96-tasks", "96", _ns(2025, 9, 30, 17), tasks_year_total=65,
               tasks_year_completed=38, tasks_year_on_schedule=27, tasks_year_overdue=0),
        # midnight of the new year (Vietnam time) belongs to the new year, not to 2025
        _tasks("96-tasks", "96", _ns(2026, 1, 1, 0), tasks_year_total=1,
               tasks_year_completed=0, tasks_year_on_schedule=1, tasks_year_overdue=0),
        # the whole programme, as of now
        _tasks("96-tasks", "96", now - 600 * NS, tasks_total=123, tasks_completed=66,
               tasks_on_schedule=57, tasks_overdue=0, tasks_due_soon=4),
        _tasks("40-tasks", "40", now - 600 * NS, tasks_total=100, tasks_completed=51,
               tasks_on_schedule=49, tasks_overdue=0, tasks_due_soon=6),
        _tasks("01-tasks", "01", now - 600 * NS, tasks_total=120, tasks_completed=72,
               tasks_on_schedule=30, tasks_overdue=18, tasks_due_soon=5, tasks_year_total=50,
               tasks_year_completed=20, tasks_year_on_schedule=20, tasks_year_overdue=10),
        _tasks("01-tasks-central", "01", now - 600 * NS, tasks_total=40, tasks_completed=20,
               tasks_on_schedule=8, tasks_overdue=12, tasks_due_soon=0),
        # Nghệ An's plan 02-KH/BCĐTW register: 14 of 16 groups done everywhere a month ago,
        # then every group in every commune (§7: "all 130 of 130 communes ... all 16 groups")
        _groups("40-plan02", "40", now - 30 * 86400 * NS, total=16, completed=14, communes=97),
        _groups("40-plan02", "40", now - 900 * NS, total=16, completed=16, communes=130),
    ]  # fmt: skip
    with Store(api_settings) as store:
        db = quote_ident(api_settings.influx_db)
        store.command(f"ALTER RETENTION POLICY raw ON {db} DURATION INF DEFAULT")
        store.write(raw)
    return this_year


def get(client: FlaskClient, key: str, path: str) -> Any:
    return client.get(f"/api/v1{path}", headers={"X-API-Key": key})


def body(response: Any) -> Any:
    assert response.status_code == 200, response.data
    return orjson.loads(response.data)


def test_ca_mau_report_figures_per_register_and_year(
    client: FlaskClient, keys: Keys, seeded: int
) -> None:
    whole = body(get(client, keys.read, "/tasks/registers?province=96"))
    assert TaskFiguresListSchema().validate(whole) == {}
    (item,) = whole["items"]
    assert item["register"] == {
        "id": "96-tasks",
        "name": "Theo dõi nhiệm vụ Nghị quyết 57 Cà Mau",
        "province": "96",
    }
    assert (item["period"]["scope"], item["period"]["year"]) == ("programme", None)
    assert (item["total"], item["completed"], item["on_schedule"], item["overdue"]) == (
        123,
        66,
        57,
        0,
    )
    assert (item["completed_rate"], item["overdue_rate"]) == (53.66, 0.0)
    assert item["buckets_sum_to_total"] is True
    assert item["unit"]["id"] == "96-so-khoa-hoc-va-cong-nghe"

    year = body(get(client, keys.read, "/tasks/registers?province=96&year=2025"))
    assert TaskFiguresListSchema().validate(year) == {}
    assert year["period"] == {
        "scope": "year",
        "year": 2025,
        "start": "2024-12-31T17:00:00Z",  # 2025-01-01 00:00 Vietnam time
        "end": "2025-12-31T17:00:00Z",  # up to 2026-01-01 00:00, exclusive
    }
    (item,) = year["items"]
    assert item["register"]["id"] == "96-tasks"
    assert (item["total"], item["completed"], item["on_schedule"], item["overdue"]) == (
        65,
        38,
        27,
        0,
    )
    assert (item["completed_rate"], item["overdue_rate"]) == (58.46, 0.0)
    assert item["reported_at"] == "2025-09-30T10:00:00Z"
    assert item["due_soon"] is None  # due soon is a programme figure

    # nothing overdue in Cà Mau, in the programme or in 2025
    for query in ("?province=96", "?province=96&year=2025", "?register=96-tasks"):
        none = body(get(client, keys.read, f"/tasks{query}"))
        assert (none["tasks"], none["units"], none["items"]) == (0, 0, [])


def test_nghe_an_completed_and_on_schedule(client: FlaskClient, keys: Keys, seeded: int) -> None:
    (item,) = body(get(client, keys.read, "/tasks/registers?register=40-tasks"))["items"]
    assert (item["completed"], item["completed_rate"]) == (51, 51.0)
    assert (item["on_schedule"], item["on_schedule_rate"]) == (49, 49.0)


def test_which_unit_holds_the_overdue_tasks(client: FlaskClient, keys: Keys, seeded: int) -> None:
    late = body(get(client, keys.read, "/tasks?province=01&state=overdue"))
    assert HeldTasksListSchema().validate(late) == {}
    assert (late["state"], late["tasks"], late["units"]) == ("overdue", 30, 2)
    assert [(i["unit"]["id"], i["unit"]["name"], i["register"]["id"], i["tasks"]) for i in
            late["items"]] == [
        ("01-so-khoa-hoc-va-cong-nghe", "Sở Khoa học và Công nghệ", "01-tasks", 18),
        ("01-van-phong-thanh-uy", "Văn phòng Thành ủy", "01-tasks-central", 12),
    ]  # fmt: skip
    assert late["items"][0]["unit"]["level"] == "department"
    one = body(get(client, keys.hanoi, "/tasks?register=01-tasks-central"))  # overdue by default
    assert [(i["register"]["id"], i["tasks"]) for i in one["items"]] == [("01-tasks-central", 12)]
    this_year = body(get(client, keys.read, f"/tasks?province=01&year={seeded}"))
    assert [(i["register"]["id"], i["tasks"]) for i in this_year["items"]] == [("01-tasks", 10)]
    everywhere = body(get(client, keys.read, "/tasks?state=overdue"))
    assert everywhere["tasks"] == 30  # Cà Mau and Nghệ An have none
    done = body(get(client, keys.read, "/tasks?province=40&state=completed"))
    assert [(i["register"]["id"], i["tasks"], i["total"]) for i in done["items"]] == [
        ("40-tasks", 51, 100)
    ]


def test_nghe_an_16_of_16_task_groups_in_130_of_130_communes(
    client: FlaskClient, keys: Keys, seeded: int
) -> None:
    """§7, Nghệ An to 15 Nov 2025: plan 02-KH/BCĐTW phase 1, all 130 of 130 communes and wards
    completed all 16 task groups. The 130 are the province's communes and wards in the places
    package, not a count the register sends."""
    answer = body(get(client, keys.read, "/tasks/groups?province=40"))
    assert GroupFiguresListSchema().validate(answer) == {}
    (item,) = answer["items"]
    assert item["text"] == "16 of 16 task groups, 130 of 130 communes"
    assert item["text_vi"] == "16/16 nhóm nhiệm vụ, 130/130 xã, phường"
    assert item["task_groups"] == {"completed": 16, "total": 16}
    assert item["communes"] == {"completed": 130, "expected": 130}
    assert item["counts_consistent"] is True
    assert item["register"]["id"] == "40-plan02"
    assert item["unit"]["id"] == "40-so-khoa-hoc-va-cong-nghe"
    assert item["period"]["scope"] == "programme"
    # the plan register is not a Resolution 57 register: its groups are not tasks
    registers = body(get(client, keys.read, "/tasks/registers?province=40"))["items"]
    assert [i["register"]["id"] for i in registers] == ["40-tasks"]
    # scope: Hà Nội's key sees no plan register of Nghệ An
    assert body(get(client, keys.hanoi, "/tasks/groups"))["items"] == []
    hidden = get(client, keys.hanoi, "/tasks/groups?register=40-plan02")
    assert (hidden.status_code, hidden.mimetype) == (404, PROBLEM)
    not_a_plan = get(client, keys.read, "/tasks/groups?register=40-tasks")
    assert not_a_plan.status_code == 404


def test_a_plan_register_s_counts_are_checked_against_each_other(
    client: FlaskClient, keys: Keys, api_settings: Settings, seeded: int
) -> None:
    """Every group completed in every commune is the same fact as every commune having completed
    every group: a report saying one and not the other is flagged, not passed on as true."""
    with Store(api_settings) as store:
        store.write([_groups("40-plan02", "40", time.time_ns() - 60 * NS, total=16,
                             completed=16, communes=129)])  # fmt: skip
    (item,) = body(get(client, keys.read, "/tasks/groups?register=40-plan02"))["items"]
    assert item["text"] == "16 of 16 task groups, 129 of 130 communes"
    assert item["counts_consistent"] is False


def test_group_deployment_counts_groups_and_communes_exactly() -> None:
    """The plan's arithmetic (ioc/formulas/tasks.py): a group counts when every commune completed
    it, a commune when it completed every group; a group never deployed in a commune is not done."""
    as_of = date(2025, 11, 15)
    groups, communes = ["g1", "g2", "g3"], ["c1", "c2"]
    done = [Task(g, c, deadline=None, completed_on=date(2025, 10, 1)) for g in groups
            for c in communes]  # fmt: skip
    full = group_deployment(done, as_of, groups=groups, communes=communes)
    assert full == GroupDeployment(groups=3, groups_completed=3, communes=2, communes_completed=2)
    # c2 never deployed g3 and finished g2 after the as-of date
    partial = [t for t in done if (t.task_id, t.unit) not in {("g3", "c2"), ("g2", "c2")}]
    partial.append(Task("g2", "c2", deadline=date(2025, 12, 31), completed_on=date(2025, 11, 20)))
    some = group_deployment(partial, as_of, groups=groups, communes=communes)
    assert some == GroupDeployment(groups=3, groups_completed=1, communes=2, communes_completed=1)
    with pytest.raises(FormulaInputError, match="twice"):
        group_deployment([*done, done[0]], as_of, groups=groups, communes=communes)
    with pytest.raises(FormulaInputError, match="not one the plan covers"):
        group_deployment([Task("g1", "c9", deadline=None)], as_of, groups=groups, communes=communes)


def test_registers_without_readings_say_so(client: FlaskClient, keys: Keys, seeded: int) -> None:
    items = body(get(client, keys.read, "/tasks/registers"))["items"]
    by_id = {i["register"]["id"]: i for i in items}
    assert {"01-tasks", "01-tasks-central", "40-tasks", "96-tasks", "46-tasks"} <= set(by_id)
    hue = by_id["46-tasks"]  # registered, never reported
    assert (hue["reported_at"], hue["total"], hue["completed_rate"]) == (None, None, None)
    central_2025 = body(
        get(client, keys.read, "/tasks/registers?register=01-tasks-central&year=2025")
    )
    (central,) = central_2025["items"]
    assert (central["total"], central["completed_rate"]) == (None, None)  # no year counts sent


def test_scope_and_errors(client: FlaskClient, keys: Keys, seeded: int) -> None:
    hanoi = body(get(client, keys.hanoi, "/tasks/registers"))["items"]
    assert {i["register"]["province"] for i in hanoi} == {"01"}
    for path in (
        "/tasks/registers?province=96",
        "/tasks/registers?register=96-tasks",
        "/tasks?register=96-tasks",
    ):
        response = get(client, keys.hanoi, path)
        assert (response.status_code, response.mimetype) == (404, PROBLEM), path
    unknown = get(client, keys.read, "/tasks?register=01-air-hoan-kiem")  # not a task register
    assert unknown.status_code == 404
    assert orjson.loads(unknown.data)["parameter"] == "register"
    wrong = get(client, keys.read, "/tasks?province=01&register=96-tasks")
    assert wrong.status_code == 404
    for query, parameter in (
        ("?state=late", "state"),
        ("?year=1999", "year"),
        ("?year=twenty", "year"),
        ("?state=due_soon", "state"),  # not a bucket: GET /reminders has them
        ("?registr=01-tasks", "registr"),
    ):
        response = get(client, keys.read, f"/tasks{query}")
        assert (response.status_code, response.mimetype) == (400, PROBLEM), query
        assert orjson.loads(response.data)["parameter"] == parameter, query
