"""The demo task registers publish this year's buckets (``tasks_year_*``) beside the programme's."""

from __future__ import annotations

from ioc.catalog import get_catalog
from ioc.engine.rollup import ratio_pct
from tests.simulate.support import END_NS, simulation

YEAR = ("tasks_year_total", "tasks_year_completed", "tasks_year_on_schedule", "tasks_year_overdue")


def _register(source_id: str) -> dict[str, float]:
    source = get_catalog().registry.get(source_id)
    assert source is not None
    return simulation().model.values(source, END_NS)


def test_ca_mau_2025_tasks_38_of_65_none_overdue() -> None:
    tasks = _register("96-tasks")
    assert [tasks[k] for k in YEAR] == [65, 38, 27, 0]
    assert ratio_pct(tasks["tasks_year_completed"], tasks["tasks_year_total"]) == 58.46


def test_every_register_has_a_year_part_whose_buckets_sum_within_its_programme() -> None:
    catalog = get_catalog()
    registers = [s.id for s in catalog.registry.sources if s.kind == "tasks"]
    assert "01-tasks" in registers
    for source_id in registers:
        tasks = _register(source_id)
        total, completed, on_schedule, overdue = (tasks[k] for k in YEAR)
        assert completed + on_schedule + overdue == total, source_id
        assert total <= tasks["tasks_total"], source_id
        assert overdue <= tasks["tasks_overdue"], source_id
        assert set(YEAR) <= set(catalog.kind("tasks").metrics)
