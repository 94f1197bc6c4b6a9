"""Roll-up arithmetic, period alignment and the engine's formula adapters, without a database."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from ioc.catalog import Source, get_catalog
from ioc.engine import IndicatorValue, Level, SourceValue, period_ends
from ioc.engine.formulas import FORMULAS, PeriodTable, liveness_value
from ioc.engine.rollup import ratio_pct, roll_up

HOUR = 3600 * 10**9
END = int(datetime(2026, 3, 1, 5, tzinfo=UTC).timestamp()) * 10**9


def _source(source_id: str, province: str, ward: str | None, **extra: object) -> Source:
    base = Source(
        id=source_id,
        kind="air",
        province=province,
        ward=ward,
        name=source_id,
        expected_interval_s=300,
        department=None,
        station=None,
        url=None,
        device_refs=(),
        registered=None,
    )
    return dataclasses.replace(base, **extra)  # type: ignore[arg-type]


def _by_level(values: list[IndicatorValue]) -> dict[tuple[Level, str | None], IndicatorValue]:
    return {(v.level, v.source or v.ward or v.province): v for v in values}


MEMBERS = (
    _source("a", "01", "00070"),
    _source("b", "01", "00070"),
    _source("c", "01", "00167"),
    _source("d", "01", None),  # a province-level feed
    _source("e", "46", "19768"),
    _source("f", "46", "19810"),  # registered, silent
)


def test_ratio_rolls_up_as_the_ratio_of_sums() -> None:
    indicator = get_catalog().indicator("dossier_on_time_rate")
    values = [
        SourceValue("a", 10.0, numerator=1, denominator=10),
        SourceValue("c", 95.0, numerator=95, denominator=100),
        SourceValue("d", 50.0, numerator=5, denominator=10),
        SourceValue("e", 100.0, numerator=2, denominator=2),
    ]
    found = _by_level(roll_up(indicator, END, values, MEMBERS))
    province = found[(Level.PROVINCE, "01")]
    assert province.value == 84.17  # 101 / 120, where the mean of the ratios would be 51.67
    assert (province.numerator, province.denominator) == (101, 120)
    # units of a province: its wards 00070 and 00167 and the province-level source d
    assert (province.coverage, province.expected, province.sources) == (3, 3, 3)
    nation = found[(Level.NATION, None)]
    assert nation.value == ratio_pct(103, 122)
    assert (nation.coverage, nation.expected, nation.sources) == (2, 2, 4)
    assert (Level.WARD, "19810") not in found  # silent ward: no value, not zero
    assert found[(Level.PROVINCE, "46")].coverage == 1
    assert found[(Level.PROVINCE, "46")].expected == 2


def test_max_keeps_its_origin_and_the_first_of_equals() -> None:
    indicator = get_catalog().indicator("vn_aqi")
    values = [SourceValue("b", 120.0), SourceValue("a", 120.0), SourceValue("e", 90.0)]
    found = _by_level(roll_up(indicator, END, values, MEMBERS))
    ward = found[(Level.WARD, "00070")]
    assert (ward.value, ward.origin, ward.band) == (120.0, "a", "poor")  # a < b by id
    nation = found[(Level.NATION, None)]
    assert (nation.origin, nation.origin_ward, nation.origin_province) == ("a", "00070", "01")
    assert found[(Level.SOURCE, "e")].band == "moderate"


def test_sum_adds_and_ignores_unregistered_sources() -> None:
    indicator = get_catalog().indicator("traffic_volume")
    values = [SourceValue("a", 10.0), SourceValue("c", 5.0), SourceValue("zz", 1000.0)]
    found = _by_level(roll_up(indicator, END, values, MEMBERS))
    assert found[(Level.PROVINCE, "01")].value == 15.0
    assert (Level.SOURCE, "zz") not in found


def test_a_zero_denominator_gives_no_value_instead_of_a_fake_one() -> None:
    indicator = get_catalog().indicator("dossier_on_time_rate")
    values = [SourceValue("a", 0.0, numerator=0, denominator=0)]
    found = _by_level(roll_up(indicator, END, values, MEMBERS))
    assert (Level.PROVINCE, "01") not in found


def test_formula_rollups_need_their_formula() -> None:
    indicator = get_catalog().indicator("service_timeliness_score")
    with pytest.raises(ValueError, match="rolls up by formula"):
        roll_up(indicator, END, [], MEMBERS)


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(1, 3, 33.33), (2, 3, 66.67), (1, 8, 12.5), (485, 1132, 42.84), (0, 5, 0.0), (1, 0, None)],
)
def test_ratio_pct_rounds_half_up_to_two_decimals(
    numerator: float, denominator: float, expected: float | None
) -> None:
    assert ratio_pct(numerator, denominator) == expected


def test_period_ends_are_aligned_to_the_clock_and_daily_to_vietnam_midnight() -> None:
    start = END - 3 * HOUR + 1
    assert period_ends(start, END, 3600) == [END - 2 * HOUR, END - HOUR, END]
    assert period_ends(END, END, 3600) == []  # the start is excluded
    quarter = period_ends(END - HOUR, END, 900)
    assert len(quarter) == 4 and quarter[-1] == END
    day = period_ends(END - 48 * HOUR, END, 86400)
    assert [datetime.fromtimestamp(e / 1e9, tz=UTC).hour for e in day] == [17, 17]


def _table(column: str, hourly: Sequence[float | None], source: str = "s") -> PeriodTable:
    """Hourly means of one column: hourly[0] is the hour ending at END (c1)."""
    rows = {END - (k + 1) * HOUR: {column: v} for k, v in enumerate(hourly) if v is not None}
    return PeriodTable(HOUR, {source: rows})


def test_vn_aqi_hourly_uses_the_nowcast_of_decision_1459_worked_example() -> None:
    # T1 of INDICATORS.md §1.6, c1 (the current hour) first: NowCast 20.3 -> sub-index 41
    t1 = [20.6, 19.6, 22.4, 20.3, 16.5, 19.0, 16.5, 19.5, 23.5, 20.5, 24.7, 26.9]
    value = FORMULAS["vn_aqi_hourly"].compute(
        _source("s", "01", None), _table("mean_pm25", t1), END
    )
    assert value is not None
    assert value.value == 41.0
    assert value.details["dominant"] == "PM2.5"
    assert value.details["nowcast_pm25"] == pytest.approx(20.266, abs=0.001)


def test_vn_aqi_hourly_needs_two_of_the_last_three_hours() -> None:
    sparse = [20.0, None, None, 20.0, 20.0]
    source = _source("s", "01", None)
    assert FORMULAS["vn_aqi_hourly"].compute(source, _table("mean_pm25", sparse), END) is None


@pytest.mark.parametrize(
    ("station", "stage_m", "level", "margin"),
    [
        ("huong-kim-long", 4.56, 3, 1.06),  # §3 test vectors
        ("hong-ha-noi", 10.50, 2, 0.0),
        ("hong-ha-noi", 8.26, 0, -1.24),
        ("ganh-hao-tp-ca-mau", 1.07, 3, 22.0),  # 107 cm, margin in the station's unit
    ],
)
def test_flood_level_of_the_hour_highest_stage(
    station: str, stage_m: float, level: int, margin: float
) -> None:
    source = _source("s", "01", None, kind="water", station=station)
    value = FORMULAS["flood_level"].compute(source, _table("max_water_level", [stage_m]), END)
    assert value is not None
    assert value.value == level
    assert value.details["margin"] == pytest.approx(margin)


def test_service_score_is_sub_indicator_2_1() -> None:
    table = PeriodTable(
        HOUR, {"s": {END - HOUR: {"sum_dossiers_on_time": 95.0, "sum_dossiers_received": 100.0}}}
    )
    value = FORMULAS["service_on_time_score"].compute(_source("s", "01", None), table, END)
    assert value is not None
    assert (value.value, value.numerator, value.denominator) == (19.0, 95.0, 100.0)  # §4.4


def test_liveness_judges_the_age_against_the_promise() -> None:
    source = _source("s", "01", None)  # promises 5 minutes
    live = liveness_value(source, END - 600 * 10**9, END, grace=2)  # exactly at the limit
    stale = liveness_value(source, END - 601 * 10**9, END, grace=2)
    never = liveness_value(source, None, END, grace=2)
    assert (live.value, live.details["state"]) == (100.0, "live")
    assert (stale.value, stale.details["state"]) == (0.0, "stale")
    assert (never.value, never.details["state"], never.denominator) == (0.0, "never_reported", 1.0)


DEPARTMENTS = (
    _source("w1", "40", "16681"),
    _source("w2", "40", "16681"),  # a second source in the same commune
    _source("w3", "40", "17935"),
    _source("p1", "40", None, department="Sở Khoa học và Công nghệ"),
    _source("p2", "40", None, department=" sở khoa học  và công nghệ"),  # the same, retyped
    _source("p3", "40", None, department="Văn phòng UBND tỉnh"),
    _source("p4", "40", None),  # no department: a unit of its own
    _source("h1", "01", None, department="Sở Khoa học và Công nghệ"),  # Hà Nội's own
)


def test_coverage_counts_wards_and_departments_each_once() -> None:
    indicator = get_catalog().indicator("traffic_volume")
    values = [SourceValue(s, 1.0) for s in ("w1", "w2", "p1", "p2", "p4", "h1")]
    found = _by_level(roll_up(indicator, END, values, DEPARTMENTS))
    province = found[(Level.PROVINCE, "40")]
    assert (province.wards_reporting, province.wards_expected) == (1, 2)
    assert (province.departments_reporting, province.departments_expected) == (2, 3)
    assert (province.sources, province.sources_expected) == (5, 7)
    assert (province.coverage, province.expected) == (3, 5)
    assert province.provinces_reporting is None  # a province point counts no provinces
    ward = found[(Level.WARD, "16681")]
    assert (ward.coverage, ward.expected, ward.sources, ward.sources_expected) == (2, 2, 2, 2)
    assert ward.wards_reporting is None
    nation = found[(Level.NATION, None)]
    assert (nation.provinces_reporting, nation.provinces_expected) == (2, 2)
    assert (nation.departments_reporting, nation.departments_expected) == (3, 4)
    assert (nation.wards_reporting, nation.wards_expected) == (1, 2)
    assert (nation.sources, nation.sources_expected) == (6, 8)


def test_a_feed_that_is_not_live_is_counted_in_the_share_but_not_as_reporting() -> None:
    indicator = get_catalog().indicator("feed_live_share")
    seen = {"w1": END, "w3": END - 3600 * 10**9, "p1": END, "p3": END}  # w3 is stale
    values = [liveness_value(s, seen.get(s.id), END, grace=2) for s in DEPARTMENTS]
    found = _by_level(roll_up(indicator, END, values, DEPARTMENTS))
    province = found[(Level.PROVINCE, "40")]
    assert province.value == 42.86  # 3 live of 7
    assert (province.wards_reporting, province.wards_expected) == (1, 2)
    assert (province.departments_reporting, province.departments_expected) == (2, 3)
    assert (province.sources, province.sources_expected) == (3, 7)
    silent = found[(Level.WARD, "17935")]  # a value (0 % live), no unit reporting
    assert (silent.value, silent.coverage, silent.expected) == (0.0, 0, 1)
    source = found[(Level.SOURCE, "p4")]
    assert (source.value, source.coverage, source.expected, source.sources) == (0.0, 0, 1, 0)
    hanoi = found[(Level.PROVINCE, "01")]
    assert (hanoi.value, hanoi.coverage, hanoi.expected) == (0.0, 0, 1)
