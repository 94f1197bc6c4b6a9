"""The value models: deterministic, the real PM2.5 record with its gaps, the flood, §7 figures."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ioc.catalog import Source, get_catalog
from ioc.engine.rollup import ratio_pct
from ioc.formulas.flood import LengthUnit, classify_stage, station_by_id
from ioc.simulate.pm25 import Pm25Record
from ioc.simulate.signals import LOCAL, TASKS, FloodEvent, SignalModel, TaskRegister
from tests.simulate.support import END_NS, HISTORY_S, NS, record, simulation

HOAN_KIEM = "01-air-hoan-kiem"


def _source(source_id: str) -> Source:
    return get_catalog().registry.source(source_id)


def test_the_same_seed_gives_the_same_readings_and_another_seed_others() -> None:
    first = [m.payload for m in simulation(seed=7).history(END_NS - 3 * 3600 * NS, END_NS)]
    again = [m.payload for m in simulation(seed=7).history(END_NS - 3 * 3600 * NS, END_NS)]
    other = [m.payload for m in simulation(seed=8).history(END_NS - 3 * 3600 * NS, END_NS)]
    assert first == again
    assert first != other


def test_a_reading_does_not_depend_on_what_was_computed_before() -> None:
    model = simulation().model
    source = _source(HOAN_KIEM)
    late = model.values(source, END_NS)
    model.values(source, END_NS - 3600 * NS)
    assert model.values(source, END_NS) == late


def test_the_record_keeps_missing_and_invalid_hours_as_gaps() -> None:
    rec = record()
    assert rec.at(datetime(2019, 11, 16, 15, tzinfo=LOCAL)) is None  # raw -999, QC "Invalid"
    assert rec.at(datetime(2019, 10, 15, 0, tzinfo=LOCAL)) is None  # a value, but QC "Invalid"
    assert rec.at(datetime(2020, 1, 1, 1, tzinfo=LOCAL)) == 126.0  # the first row of 2020, "Valid"
    hours = [datetime(2019, 10, 8, tzinfo=LOCAL) + timedelta(hours=h) for h in range(24 * 80)]
    gaps = [h for h in hours if rec.at(h) is None]
    assert 0 < len(gaps) < len(hours) // 10


def test_days_outside_the_record_replay_the_same_season_70_days_earlier() -> None:
    rec = record()
    assert rec.at(datetime(2020, 9, 1, 12, tzinfo=LOCAL)) == rec.at(
        datetime(2020, 6, 23, 12, tzinfo=LOCAL)
    )
    assert rec.at(datetime(2031, 3, 5, 8, tzinfo=LOCAL)) == rec.at(
        datetime(2020, 3, 5, 8, tzinfo=LOCAL)
    )


def test_hanoi_pm25_replays_the_record_hour_by_hour_with_its_gaps() -> None:
    model = simulation().model
    source = _source(HOAN_KIEM)
    start = datetime(2025, 11, 1, tzinfo=LOCAL)
    replayed_gaps = 0
    for hour in range(24 * 30):
        moment = start + timedelta(hours=hour, minutes=25)
        original = record().at(datetime(2019, 11, 1, tzinfo=LOCAL) + timedelta(hours=hour))
        values = model.values(source, int(moment.timestamp()) * NS)
        if original is None:
            replayed_gaps += 1
            assert "pm25" not in values, moment  # a gap stays a gap...
            assert "pm10" in values  # ...of the PM2.5 analyser only
        else:
            assert values["pm25"] == pytest.approx(original, rel=0.2), moment
    assert replayed_gaps > 0


def test_other_provinces_get_a_scaled_and_shifted_series() -> None:
    model = simulation().model
    hue = _source("46-air-phu-xuan")  # Huế: 0.55 of Hà Nội's level, 7 days later
    ratios = set()
    for hour in range(72):
        moment = datetime(2025, 11, 10, tzinfo=LOCAL) + timedelta(hours=hour)
        original = record().at(datetime(2019, 11, 3, tzinfo=LOCAL) + timedelta(hours=hour))
        value = model.pm25_at(hue, int(moment.timestamp()) * NS)
        assert (value is None) == (original is None)
        if value is not None and original:
            ratios.add(round(value / original, 9))
    (ratio,) = ratios  # one scale for the station
    assert 0.55 * 0.88 <= ratio <= 0.55 * 1.12


def test_air_readings_have_daily_cycles() -> None:
    model = simulation().model
    source = _source("48-air-hai-chau")
    day = datetime(2025, 11, 18, tzinfo=LOCAL)

    def at(hour: int) -> dict[str, float]:
        return model.values(source, int((day + timedelta(hours=hour)).timestamp()) * NS)

    assert at(14)["o3"] > 3 * at(3)["o3"]  # photochemistry: early afternoon
    assert at(8)["no2"] > 1.5 * at(3)["no2"]  # morning rush hour
    assert at(15)["temperature"] > at(5)["temperature"]
    assert at(5)["humidity"] > at(15)["humidity"]


def _levels(station_id: str, source_id: str, history_s: float) -> list[int]:
    sim = simulation(history_s=history_s)
    station = station_by_id(station_id)
    source = _source(source_id)
    found = []
    device = next(d for d in sim.fleet.devices if d.source.id == source_id)
    for slot in device.slots(END_NS - int(history_s * NS), END_NS):
        metres = sim.model.values(source, slot * NS)["water_level"]
        assessment = classify_stage(station, metres, unit=LengthUnit.METRE)
        found.append(int(assessment.at_least))  # the level, where the text gives every BĐk
    return found


@pytest.mark.parametrize("history_s", [HISTORY_S, 2 * 3600])
def test_the_flood_crosses_alarm_levels_one_two_and_three(history_s: float) -> None:
    levels = _levels("huong-kim-long", "46-water-kim-long", history_s)
    assert levels[0] == 0
    assert max(levels) == 3
    first = {level: levels.index(level) for level in (1, 2, 3)}
    assert first[1] < first[2] < first[3]  # it rises through each level in turn


def test_the_tide_at_ca_mau_crosses_alarm_three_and_hanoi_stays_below_one() -> None:
    assert max(_levels("ganh-hao-tp-ca-mau", "96-water-ca-mau", HISTORY_S)) == 3
    assert max(_levels("hong-ha-noi", "01-water-long-bien", HISTORY_S)) == 0


def test_the_flood_recedes_after_its_peak() -> None:
    event = FloodEvent.over(END_NS, HISTORY_S)
    assert event.shape(event.start_ns) == 0.0
    assert event.shape(event.peak_ns) == 1.0
    assert 0.3 < event.shape(END_NS) < 1.0


def _register(source_id: str) -> dict[str, float]:
    return simulation().model.values(_source(source_id), END_NS)


def test_hanoi_has_30_overdue_tasks_18_of_the_city_and_12_central() -> None:
    city, central = _register("01-tasks"), _register("01-tasks-central")
    assert (city["tasks_overdue"], central["tasks_overdue"]) == (18, 12)
    assert city["tasks_overdue"] + central["tasks_overdue"] == 30


def test_ca_mau_completed_66_of_123_tasks_and_none_is_overdue() -> None:
    tasks = _register("96-tasks")
    assert (tasks["tasks_completed"], tasks["tasks_total"], tasks["tasks_overdue"]) == (66, 123, 0)
    assert ratio_pct(tasks["tasks_completed"], tasks["tasks_total"]) == 53.66


def test_nghe_an_completed_51_of_100_tasks_with_49_on_schedule() -> None:
    tasks = _register("40-tasks")
    assert (tasks["tasks_completed"], tasks["tasks_total"]) == (51, 100)
    assert tasks["tasks_on_schedule"] == 49
    assert ratio_pct(tasks["tasks_completed"], tasks["tasks_total"]) == 51.0


def test_task_buckets_sum_to_the_total() -> None:
    for register in TASKS.values():
        assert register.completed + register.on_schedule + register.overdue == register.total
    with pytest.raises(ValueError, match="do not sum"):
        TaskRegister(10, 5, 5, 1)


def test_dossier_counts_are_whole_and_consistent() -> None:
    model = simulation().model
    source = _source("01-dvc")
    busy = 0
    for quarter in range(96):
        values = model.values(source, END_NS - quarter * 900 * NS)
        received = values["dossiers_received"]
        assert all(float(v).is_integer() for v in values.values())
        assert 0 <= values["dossiers_on_time"] <= received
        assert 0 <= values["dossiers_online"] <= received
        busy += received > 50
    assert 10 < busy < 96  # office hours are busy, nights are not


def test_without_the_record_pm25_follows_a_model() -> None:
    model = SignalModel(1, FloodEvent.over(END_NS, HISTORY_S), None)
    assert model.values(_source(HOAN_KIEM), END_NS)["pm25"] > 0


def test_the_record_refuses_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("Site,Parameter,Date (LT),Year,Month,Day,Hour,Raw Conc.,QC Name\n")
    with pytest.raises(ValueError, match="no rows"):
        Pm25Record.from_csv([empty])
