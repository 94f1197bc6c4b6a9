"""Flood alarm levels against the test vectors of INDICATORS.md §3."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.flood import (
    STATIONS,
    AlarmLevel,
    LengthUnit,
    StationLevels,
    classify_stage,
    station_by_id,
)

D = Decimal


# INDICATORS.md §3 "Test vectors (observed bulletin readings → expected)".
@pytest.mark.parametrize(
    ("station_id", "reading", "level", "reference", "margin"),
    [
        ("huong-kim-long", "4.56", AlarmLevel.III, AlarmLevel.III, "1.06"),
        ("hong-ha-noi", "10.50", AlarmLevel.II, AlarmLevel.II, "0.00"),
        ("hong-ha-noi", "8.26", AlarmLevel.NONE, AlarmLevel.I, "-1.24"),
        ("ca-nam-dan", "5.65", AlarmLevel.I, AlarmLevel.I, "0.25"),
        ("ma-giang", "6.30", AlarmLevel.II, AlarmLevel.III, "-0.20"),
        ("han-cam-le", "2.73", AlarmLevel.III, AlarmLevel.III, "0.23"),
        ("ganh-hao-tp-ca-mau", "107", AlarmLevel.III, AlarmLevel.III, "22"),
    ],
)
def test_bulletin_vectors(
    station_id: str, reading: str, level: AlarmLevel, reference: AlarmLevel, margin: str
) -> None:
    result = classify_stage(station_by_id(station_id), D(reading))
    assert result.level is level
    assert result.reference is reference
    assert result.margin == D(margin)


# The readings quoted in §3's evidence column, "X = BĐk ± d", must reproduce d at the nearest k.
@pytest.mark.parametrize(
    ("station_id", "reading", "reference", "margin"),
    [
        ("ca-nam-dan", "5.18", AlarmLevel.I, "-0.22"),
        ("ma-giang", "3.46", AlarmLevel.I, "-0.54"),
        ("ma-giang", "5.94", AlarmLevel.II, "0.44"),
        ("ma-giang", "6.62", AlarmLevel.III, "0.12"),
        ("ma-ly-nhan", "11.08", AlarmLevel.II, "0.08"),
        ("ma-ly-nhan", "11.87", AlarmLevel.III, "-0.13"),
        ("han-cam-le", "1.93", AlarmLevel.II, "-0.07"),
        ("han-cam-le", "3.20", AlarmLevel.III, "0.70"),
        ("vu-gia-ai-nghia", "10.01", AlarmLevel.III, "1.01"),
    ],
)
def test_evidence_readings(
    station_id: str, reading: str, reference: AlarmLevel, margin: str
) -> None:
    result = classify_stage(station_by_id(station_id), D(reading))
    assert result.reference is reference
    assert result.margin == D(margin)


def test_ly_nhan_far_below_alarm_i() -> None:
    # §3 evidence "4.41 = BĐI − 5.09": level 0, margin against BĐI (nearest).
    result = classify_stage(station_by_id("ma-ly-nhan"), D("4.41"))
    assert result.level is AlarmLevel.NONE
    assert result.margin == D("-5.09")
    assert result.next_level is AlarmLevel.I
    assert result.to_next == D("5.09")


@pytest.mark.parametrize(
    ("reading", "level"),
    # Hà Nội 9.5 / 10.5 / 11.5: "H >= BĐk" includes the boundary itself.
    [("9.49", AlarmLevel.NONE), ("9.5", AlarmLevel.I), ("10.49", AlarmLevel.I),
     ("11.5", AlarmLevel.III), ("13.0", AlarmLevel.III)],
)  # fmt: skip
def test_boundaries_are_inclusive(reading: str, level: AlarmLevel) -> None:
    assert classify_stage(station_by_id("hong-ha-noi"), D(reading)).level is level


def test_margin_to_next_level() -> None:
    # Giàng 6.30 is level II; BĐIII = 6.5, so the water must rise 0.20 m more.
    result = classify_stage(station_by_id("ma-giang"), D("6.30"))
    assert result.next_level is AlarmLevel.III
    assert result.to_next == D("0.20")


def test_above_level_three_has_no_next_level() -> None:
    result = classify_stage(station_by_id("huong-kim-long"), D("4.56"))
    assert result.next_level is None
    assert result.to_next is None


def test_tie_goes_to_the_level_reached() -> None:
    # Hà Nội 10.0 is 0.5 above BĐI and 0.5 below BĐII: reported as "above BĐI" (module rule).
    result = classify_stage(station_by_id("hong-ha-noi"), D("10.0"))
    assert result.level is AlarmLevel.I
    assert result.reference is AlarmLevel.I
    assert result.margin == D("0.5")


def test_float_reading_gives_exact_margin() -> None:
    # 4.56 − 3.5 in binary floating point is 1.0599999999999996; the bulletin says 1.06.
    result = classify_stage(station_by_id("huong-kim-long"), 4.56)
    assert result.margin == D("1.06")


def test_reading_in_metres_at_a_centimetre_station() -> None:
    # 1.07 m = 107 cm at TP Cà Mau: same as the §3 vector, margin in the station's unit (cm).
    result = classify_stage(station_by_id("ganh-hao-tp-ca-mau"), D("1.07"), unit=LengthUnit.METRE)
    assert result.unit is LengthUnit.CENTIMETRE
    assert result.stage == D("107")
    assert result.margin == D("22")


def test_unknown_level_one_makes_low_readings_undetermined() -> None:
    # Cẩm Lệ BĐI is [U]: 1.5 m is below BĐII = 2.0 but could be level 0 or I.
    result = classify_stage(station_by_id("han-cam-le"), D("1.5"))
    assert result.level is None
    assert result.at_least is AlarmLevel.NONE
    assert result.reference is AlarmLevel.II
    assert result.margin == D("-0.5")
    assert result.next_level is AlarmLevel.II
    assert result.to_next == D("0.5")


def test_unknown_level_one_does_not_block_higher_levels() -> None:
    # Cẩm Lệ 2.2: at least BĐII = 2.0 and below BĐIII = 2.5, so level II whatever BĐI is.
    result = classify_stage(station_by_id("han-cam-le"), D("2.2"))
    assert result.level is AlarmLevel.II
    assert result.depends_on_unverified is False


def test_station_without_levels() -> None:
    result = classify_stage(station_by_id("lam-cho-trang"), D("3.0"))
    assert result.level is None
    assert result.at_least is AlarmLevel.NONE
    assert result.reference is None
    assert result.margin is None
    assert result.depends_on_unverified is False


@pytest.mark.parametrize(
    ("station_id", "reading", "flag"),
    [
        ("ca-nam-dan", "5.65", True),  # level I holds only while H < BĐII, which is [U]
        ("ca-nam-dan", "5.0", False),  # H < BĐI [S] is level 0 whatever BĐII/III are
        ("ma-giang", "6.30", False),
        ("vu-gia-ai-nghia", "8.5", False),  # level II: BĐII and BĐIII decide, both [S]
        ("vu-gia-ai-nghia", "7.0", True),  # level I relies on BĐI 6.5 [U]
    ],
)
def test_depends_on_unverified(station_id: str, reading: str, flag: bool) -> None:
    result = classify_stage(station_by_id(station_id), D(reading))
    assert result.depends_on_unverified is flag


def test_levels_must_rise() -> None:
    with pytest.raises(FormulaInputError, match=r"BĐII=6\.0 must be below BĐIII=5\.0"):
        StationLevels("x", "r", "s", None, D("4.0"), D("6.0"), D("5.0"))


def test_non_finite_level_rejected() -> None:
    with pytest.raises(FormulaInputError, match="BĐI=NaN must be finite"):
        StationLevels("x", "r", "s", None, D("NaN"), D("6.0"), D("7.0"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), D("NaN")])
def test_non_finite_reading_rejected(bad: float | Decimal) -> None:
    with pytest.raises(FormulaInputError, match="finite"):
        classify_stage(station_by_id("hong-ha-noi"), bad)


def test_unknown_station() -> None:
    with pytest.raises(FormulaInputError, match="no-such-station"):
        station_by_id("no-such-station")


def test_table_ids_unique_and_ca_mau_tidal_in_cm() -> None:
    ids = [s.station_id for s in STATIONS]
    assert len(ids) == len(set(ids))
    ca_mau = [s for s in STATIONS if s.province == "Cà Mau"]
    assert len(ca_mau) == 5  # §3 lists five Cà Mau tidal stations
    assert all(s.tidal and s.unit is LengthUnit.CENTIMETRE for s in ca_mau)
    assert all(s.source for s in STATIONS)
