"""``GET /api/v1/reminders``: late units of the packaged registry, filters, key scopes, errors.

Task counts are written as raw readings of the registers and feed live-ness as the engine writes
it (``feed_live_share`` per source with ``state`` and ``age_s``), on the test's own database.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from ioc.api import schemas
from ioc.engine.values import IndicatorValue, Level
from ioc.settings import Settings
from ioc.store import Point, Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

PROBLEM = "application/problem+json"
NS = 1_000_000_000
QUARTER_NS = 900 * NS
HANOI_SKHCN = "01-so-khoa-hoc-va-cong-nghe"
NGHE_AN_SKHCN = "40-so-khoa-hoc-va-cong-nghe"


def _tasks(source: str, province: str, at_ns: int, **counts: int) -> Point:
    fields: dict[str, float | int] = {name: float(value) for name, value in counts.items()}
    fields["received_ms"] = at_ns // 1_000_000
    return Point("tasks", fields, at_ns, {"source": source, "province": province})


def _liveness(
    source: str,
    province: str,
    end_ns: int,
    state: str,
    age_s: float | None,
    *,
    ward: str | None = None,
) -> Point:
    details: dict[str, str | float] = {"state": state}
    if age_s is not None:
        details["age_s"] = age_s
    live = state == "live"
    return IndicatorValue(
        "feed_live_share",
        "%",
        Level.SOURCE,
        end_ns,
        100.0 if live else 0.0,
        None,
        province=province,
        ward=ward,
        source=source,
        numerator=1.0 if live else 0.0,
        denominator=1.0,
        details=details,
    ).to_point()


@pytest.fixture
def seeded(api_settings: Settings) -> int:
    """Hà Nội late (two registers, a stale and a never-connected feed, a stale ward station);
    Nghệ An on time (tasks due soon but none overdue, its feed live). Returns the period end."""
    now = time.time_ns()
    end = now // QUARTER_NS * QUARTER_NS
    raw = [
        _tasks("01-tasks", "01", now - 600 * NS, tasks_total=120, tasks_completed=72,
               tasks_on_schedule=30, tasks_overdue=18, tasks_due_soon=5),
        _tasks("01-tasks-central", "01", now - 600 * NS, tasks_total=40, tasks_completed=20,
               tasks_on_schedule=8, tasks_overdue=12, tasks_due_soon=0),
        _tasks("40-tasks", "40", now - 600 * NS, tasks_total=100, tasks_completed=51,
               tasks_on_schedule=49, tasks_overdue=0, tasks_due_soon=6),
    ]  # fmt: skip
    derived = [
        _liveness("01-data-platform", "01", end, "stale", 2700.0),
        _liveness("01-data-health", "01", end, "never_reported", None),
        _liveness("01-air-hoan-kiem", "01", end, "stale", 1800.0, ward="00070"),
        _liveness("01-tasks", "01", end, "live", 600.0),
        _liveness("40-data-platform", "40", end, "live", 60.0),
        _liveness("40-tasks", "40", end, "live", 600.0),
    ]
    with Store(api_settings) as store:
        store.write(raw)
        store.write(derived, rp="derived")
    return end


def get(client: FlaskClient, key: str, query: str = "") -> Any:
    response = client.get(f"/api/v1/reminders{query}", headers={"X-API-Key": key})
    return response


def items(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.data
    return {item["unit"]["id"]: item for item in orjson.loads(response.data)["items"]}


def test_every_late_unit_has_its_digest_and_the_unit_on_time_none(
    client: FlaskClient, keys: Keys, seeded: int
) -> None:
    response = get(client, keys.read)
    assert schemas.ReminderListSchema().validate(orjson.loads(response.data)) == {}
    found = items(response)
    assert sorted(found) == sorted(
        ["00070", HANOI_SKHCN, "01-so-y-te", "01-van-phong-thanh-uy"]
    )  # not Nghệ An's department: 6 tasks due soon, nothing overdue, its feed live
    skhcn = found[HANOI_SKHCN]
    assert skhcn["unit"] == {
        "id": HANOI_SKHCN,
        "name": "Sở Khoa học và Công nghệ",
        "level": "department",
        "province": "01",
        "province_name": "Thành phố Hà Nội",
        "ward": None,
    }
    assert (skhcn["overdue_tasks"], skhcn["due_soon_tasks"]) == (18, 5)
    (register,) = skhcn["registers"]
    assert (register["source"], register["total"], register["completed"]) == ("01-tasks", 120, 72)
    (feed,) = skhcn["feeds"]
    assert (feed["source"], feed["state"]) == ("01-data-platform", "stale")
    assert 2700 <= feed["age_s"] <= 2700 + 900 + 60  # the engine's age plus time since its period
    assert skhcn["subject"] == (
        "[IOC] Nhắc việc / Reminder: Sở Khoa học và Công nghệ — 18 nhiệm vụ quá hạn, "
        "1 nguồn dữ liệu không cập nhật"
    )
    assert skhcn["wall_url"].endswith("/d/ioc-province-wall?var-province=01")
    assert skhcn["has_contact"] is True  # the registry gives the department an address
    (never,) = found["01-so-y-te"]["feeds"]
    assert (never["state"], never["last_record"], never["age_s"]) == ("never_reported", None, None)
    assert never["since"] == "2025-10-31T17:00:00Z"  # registered 2025-11-01, Vietnam time
    ward = found["00070"]
    assert (ward["unit"]["name"], ward["unit"]["level"]) == ("Phường Hoàn Kiếm", "ward")
    assert [f["source"] for f in ward["feeds"]] == ["01-air-hoan-kiem"]
    assert ward["has_contact"] is False  # the station's ward has no address in the registry
    assert found["01-van-phong-thanh-uy"]["overdue_tasks"] == 12


def test_filters_by_unit_and_province(client: FlaskClient, keys: Keys, seeded: int) -> None:
    assert list(items(get(client, keys.read, f"?unit={HANOI_SKHCN}"))) == [HANOI_SKHCN]
    assert items(get(client, keys.read, f"?unit={NGHE_AN_SKHCN}")) == {}  # known, nothing late
    assert items(get(client, keys.read, "?province=40")) == {}
    assert len(items(get(client, keys.read, "?province=01"))) == 4
    assert items(get(client, keys.read, f"?province=40&unit={HANOI_SKHCN}")) == {}


def test_a_province_key_sees_only_its_provinces(
    client: FlaskClient, keys: Keys, seeded: int
) -> None:
    assert len(items(get(client, keys.hanoi))) == 4
    assert items(get(client, keys.hue_camau)) == {}
    for query in ("?province=01", "?unit=00070", f"?unit={HANOI_SKHCN}"):
        response = get(client, keys.hue_camau, query)
        assert response.status_code == 404, query
        assert response.mimetype == PROBLEM


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("?unit=01-so-khong-co", 404, ["'01-so-khong-co'", "ward code"]),
        ("?unit=S%E1%BB%9F%20Y%20t%E1%BA%BF", 400, ["'unit'", "unit id"]),
        ("?province=1", 400, ["'province'", "2-digit"]),
        ("?province=99", 404, ["'99'"]),
        ("?units=01", 400, ["'units'", "Unknown field"]),
    ],
)
def test_bad_requests_are_problems_naming_the_value(
    client: FlaskClient, keys: Keys, query: str, status: int, words: list[str]
) -> None:
    response = get(client, keys.read, query)
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM
    detail = orjson.loads(response.data)["detail"]
    for word in words:
        assert word in detail, detail


def test_a_key_is_required(client: FlaskClient) -> None:
    assert client.get("/api/v1/reminders").status_code == 401


def test_the_operation_is_documented(client: FlaskClient) -> None:
    document = orjson.loads(client.get("/api/v1/openapi.json").data)
    operation = document["paths"]["/api/v1/reminders"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"unit", "province"}
    assert "200" in operation["responses"]
