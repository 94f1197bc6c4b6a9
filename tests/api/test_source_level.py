"""``GET /indicators/{key}/values?level=source`` (issue 17, item 1): each source's own values.

Hà Nội's two Resolution 57 registers (INDICATORS.md §7, Nov 2025: 18 overdue city tasks, 12
overdue tasks assigned by central bodies) are seeded as raw readings with Cà Mau's register, one
engine cycle runs, and the API must give the per-register split behind the province's 30: "12 of
18" was unreachable while ``level=source`` answered 400. Like every level, a source is scoped by
its registered province: a key of other provinces does not see Hà Nội's registers.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask

from ioc.api import create_app
from ioc.catalog import INDICATORS_FILE, load_catalog
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.store import Point, Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9
MINUTE = 60 * 10**9

REGISTRY = """
[[source]]
id = "01-tasks"
kind = "tasks"
province = "01"
name = "Theo dõi nhiệm vụ Nghị quyết 57 Hà Nội"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"

[[source]]
id = "01-tasks-central"
kind = "tasks"
province = "01"
name = "Nhiệm vụ Trung ương giao Hà Nội"
department = "Văn phòng Thành ủy"
expected_interval = "1h"

[[source]]
id = "96-tasks"
kind = "tasks"
province = "96"
name = "Theo dõi nhiệm vụ Nghị quyết 57 Cà Mau"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"
"""

REGISTERS = {  # source -> (province, total, completed, on schedule, overdue)
    "01-tasks": ("01", 120, 72, 30, 18),
    "01-tasks-central": ("01", 40, 20, 8, 12),
    "96-tasks": ("96", 123, 66, 57, 0),
}


@pytest.fixture
def app(api_settings: Settings, tmp_path: Path) -> Flask:
    """The registers' readings over the last two hours, one engine cycle, the app."""
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    settings = dataclasses.replace(api_settings, registry_file=registry, engine_lookback="2h")
    hour0 = time.time_ns() // HOUR * HOUR
    points = [
        Point(
            "tasks",
            {
                "tasks_total": float(total),
                "tasks_completed": float(completed),
                "tasks_on_schedule": float(on_schedule),
                "tasks_overdue": float(overdue),
                "received_ms": (hour0 - k * HOUR + 10 * MINUTE) // 10**6,
            },
            hour0 - k * HOUR + 10 * MINUTE,
            {"source": source, "province": province},
        )
        for k in (1, 2)
        for source, (province, total, completed, on_schedule, overdue) in REGISTERS.items()
    ]
    catalog = load_catalog(INDICATORS_FILE, registry)
    with Store(settings) as store:
        store.write(points)
        Engine(settings, catalog, store).run_cycle(now_ns=hour0 + 5 * MINUTE)
    return create_app({"TESTING": True}, settings=settings)


def _get(app: Flask, key: str, url: str) -> Any:
    return app.test_client().get(url, headers={"X-API-Key": key})


def _items(app: Flask, key: str, url: str) -> list[dict[str, Any]]:
    response = _get(app, key, url)
    assert response.status_code == 200, response.data
    body = orjson.loads(response.data)
    assert body["level"] == "source"
    items: list[dict[str, Any]] = body["items"]
    return items


def test_the_overdue_tasks_of_each_register(app: Flask, keys: Keys) -> None:
    url = "/api/v1/indicators/tasks_overdue/values?level=source&province=01"
    items = _items(app, keys.read, url)
    assert [(i["place"], i["value"], i["unit"]) for i in items] == [
        (
            {
                "code": "01-tasks",
                "level": "source",
                "name": "Theo dõi nhiệm vụ Nghị quyết 57 Hà Nội",
                "province": "01",
            },
            18.0,
            "tasks",
        ),
        (
            {
                "code": "01-tasks-central",
                "level": "source",
                "name": "Nhiệm vụ Trung ương giao Hà Nội",
                "province": "01",
            },
            12.0,
            "tasks",
        ),
    ]
    hanoi = _get(app, keys.read, "/api/v1/indicators/tasks_overdue/values?level=province")
    assert [(i["place"]["code"], i["value"]) for i in orjson.loads(hanoi.data)["items"]] == [
        ("01", 30.0),
        ("96", 0.0),
    ]


def test_each_register_has_its_own_completion_rate(app: Flask, keys: Keys) -> None:
    url = "/api/v1/indicators/task_completion_rate/values?level=source"
    items = _items(app, keys.read, url)
    assert {i["place"]["code"]: i["value"] for i in items} == {
        "01-tasks": 60.0,
        "01-tasks-central": 50.0,
        "96-tasks": 53.66,
    }
    csv = _get(app, keys.read, url + "&format=csv")
    assert csv.status_code == 200
    assert "96-tasks,source,Theo dõi nhiệm vụ Nghị quyết 57 Cà Mau,96" in csv.data.decode()


def test_a_province_key_reads_only_its_own_sources(app: Flask, keys: Keys) -> None:
    url = "/api/v1/indicators/tasks_overdue/values?level=source"
    assert {i["place"]["code"] for i in _items(app, keys.hanoi, url)} == {
        "01-tasks",
        "01-tasks-central",
    }
    assert [i["place"]["code"] for i in _items(app, keys.hue_camau, url)] == ["96-tasks"]
    other = _get(app, keys.hue_camau, url + "&province=01")
    assert other.status_code == 404  # another province's sources: as unknown as a bad code
