"""``GET /api/v1/tasks/registers`` and ``GET /api/v1/tasks``: the provincial reports' task figures.

Seeded as raw readings of the registers on the test's own InfluxDB database: Cà Mau's Resolution
57 register as its Sept 2025 report gives it (INDICATORS.md §7: "66 of 123 completed (53.66%),
of which 2025 tasks 38 of 65 (58.46%); no overdue tasks"), Nghệ An's ("100 tasks: 51 completed
(51%), 49 on schedule") and Hà Nội's two registers with 18 + 12 overdue tasks.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ioc.api.routes.tasks import HeldTasksListSchema, TaskFiguresListSchema
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
