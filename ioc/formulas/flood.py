"""Flood alarm levels per hydrological station (Decision 05/2020/QĐ-TTg; INDICATORS.md §3).

Decision 05/2020/QĐ-TTg (signed 31 Jan 2020, effective 20 Mar 2020, replacing 632/QĐ-TTg) gives
each listed station three water levels, BĐI < BĐII < BĐIII. The classification rule of §3:
``level = max{k : H >= BĐk}`` (0 if ``H < BĐI``) and the bulletin margin ``H − BĐk`` against the
nearest ``k`` ("trên/dưới BĐk d m").

Decisions taken where INDICATORS.md is silent or marks a value [U]:

* Station levels are configuration (:class:`StationLevels`), never constants in the formula; the
  §3 table is transcribed in :data:`STATIONS` with its evidence per station, and every level the
  text marks [U] is listed in ``StationLevels.unverified`` so callers can show it.
* Levels always rise (I < II < III, §3 "Legal frame"); a station whose known levels do not
  strictly increase is rejected. Tidal stations (Cà Mau) use the same rule, in centimetres.
* A level the text does not give (Cẩm Lệ BĐI, all of Chợ Tràng) is ``None``. When the alarm level
  of a reading depends on such a level it is reported as undetermined (``level is None``, with
  ``at_least`` the lowest level the known values allow), never guessed. Ái Nghĩa BĐI 6.5 m,
  Nam Đàn BĐII/BĐIII and the Tân Châu / Châu Đốc levels are kept, flagged [U], as the text gives
  them. The Cà Mau values are [S] (a 2024 bulletin); only their provenance (05/2020 annex or a
  provincial decision) is [U], which ``source`` says.
* §3 defines no level above BĐIII and no historic-flood mark, so a reading above BĐIII is level
  III with a positive margin; "historic flood" is not classified here.
* "Nearest k" ties (a reading exactly midway between two levels) go to the lower level, i.e. the
  one already reached, so the margin reads "above BĐk" — consistent with the reported level.
* Stages are compared as :class:`~decimal.Decimal` so that bulletin margins come out exact
  (10.50 − 10.5 = 0.00); a float is converted through its shortest ``repr``.
* The gauge datum is unverified (§3 "Datum"): ``StationLevels.datum`` holds it as metadata and is
  ``None`` for every station of the table; stages of different stations are never compared.
* Province names follow the §3 table ("province after 7/2025"); where it gives none (Sơn Tây,
  Thượng Cát, Trung Hà, Ba Thá, Chợ Tràng, Tân Châu, Châu Đốc) ``province`` is ``None`` rather than
  our guess.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, IntEnum

from ioc.errors import FormulaInputError

__all__ = [
    "STATIONS",
    "AlarmLevel",
    "FloodAssessment",
    "LengthUnit",
    "StationLevels",
    "classify_stage",
    "station_by_id",
]


class AlarmLevel(IntEnum):
    """Flood alarm level of §3: I is the lowest danger, III the highest."""

    NONE = 0
    I = 1  # noqa: E741 - the official name of the level is the Roman numeral
    II = 2
    III = 3


class LengthUnit(Enum):
    """Unit of a station's stage and levels (§3: metres; centimetres at Cà Mau tidal stations)."""

    METRE = "m"
    CENTIMETRE = "cm"


_CM_PER_M = Decimal(100)


@dataclass(frozen=True, slots=True)
class StationLevels:
    """Alarm levels of one station, as configuration, with the evidence they come from."""

    station_id: str
    river: str
    station: str
    province: str | None
    bd_i: Decimal | None
    bd_ii: Decimal | None
    bd_iii: Decimal | None
    unit: LengthUnit = LengthUnit.METRE
    tidal: bool = False
    datum: str | None = None
    unverified: frozenset[AlarmLevel] = frozenset()
    source: str = ""

    def __post_init__(self) -> None:
        """Reject non-finite levels and levels not rising strictly from I to III (§3)."""
        known = [(lvl, v) for lvl, v in self._pairs() if v is not None]
        for lvl, v in known:
            if not v.is_finite():
                raise FormulaInputError(
                    f"station {self.station_id!r}: BĐ{lvl.name}={v} must be finite"
                )
        for (low_lvl, low), (high_lvl, high) in itertools.pairwise(known):
            if not low < high:
                raise FormulaInputError(
                    f"station {self.station_id!r}: BĐ{low_lvl.name}={low} must be below "
                    f"BĐ{high_lvl.name}={high}"
                )

    def _pairs(self) -> tuple[tuple[AlarmLevel, Decimal | None], ...]:
        return (
            (AlarmLevel.I, self.bd_i),
            (AlarmLevel.II, self.bd_ii),
            (AlarmLevel.III, self.bd_iii),
        )

    def level_value(self, level: AlarmLevel) -> Decimal | None:
        """The stage at which ``level`` starts, or None if the text does not give it."""
        if level is AlarmLevel.NONE:
            raise FormulaInputError("AlarmLevel.NONE has no stage value")
        return dict(self._pairs())[level]


@dataclass(frozen=True, slots=True)
class FloodAssessment:
    """Alarm level of one reading, with the bulletin margin and the distance to the next level.

    ``level`` is None when a level the text does not give decides it; ``at_least`` is then the
    lowest level the known values allow (equal to ``level`` otherwise). ``reference``/``margin`` are
    the nearest known BĐk and ``stage − BĐk`` (bulletin phrasing). ``next_level``/``to_next`` are
    the lowest known level above the stage and how far the water must still rise to reach it.
    """

    station_id: str
    stage: Decimal
    unit: LengthUnit
    level: AlarmLevel | None
    at_least: AlarmLevel
    reference: AlarmLevel | None
    margin: Decimal | None
    next_level: AlarmLevel | None
    to_next: Decimal | None
    depends_on_unverified: bool


def _as_decimal(value: Decimal | int | float, what: str) -> Decimal:
    if isinstance(value, bool):
        raise FormulaInputError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FormulaInputError(f"{what} must be finite, got {value!r}")
        return Decimal(repr(value))
    result = Decimal(value)
    if not result.is_finite():
        raise FormulaInputError(f"{what} must be finite, got {value!r}")
    return result


def _convert(stage: Decimal, from_unit: LengthUnit, to_unit: LengthUnit) -> Decimal:
    if from_unit is to_unit:
        return stage
    if from_unit is LengthUnit.METRE:
        return stage * _CM_PER_M
    return stage / _CM_PER_M


def _determine_level(
    station: StationLevels, stage: Decimal
) -> tuple[AlarmLevel, AlarmLevel, tuple[AlarmLevel, ...]]:
    """Range of levels allowed by §3 ``max{k : H >= BĐk}``, and the known levels that bound it.

    Known levels bound unknown ones because levels rise: the level is at least the highest known
    BĐk reached and below the lowest known BĐk not reached.
    """
    lowest, highest = AlarmLevel.NONE, AlarmLevel.III
    deciding: list[AlarmLevel] = []
    for lvl, value in station._pairs():
        if value is None:
            continue
        if stage >= value:
            lowest = lvl
        else:
            highest = AlarmLevel(lvl - 1)
            deciding.append(lvl)
            break
    if lowest is not AlarmLevel.NONE:
        deciding.append(lowest)
    return lowest, highest, tuple(deciding)


def classify_stage(
    station: StationLevels, stage: Decimal | int | float, *, unit: LengthUnit | None = None
) -> FloodAssessment:
    """Classify one water-level reading at ``station`` (§3 "Classification")."""
    value = _as_decimal(stage, f"stage at {station.station_id!r}")
    value = _convert(value, unit or station.unit, station.unit)
    lowest, highest, deciding = _determine_level(station, value)

    known = [(lvl, v) for lvl, v in station._pairs() if v is not None]
    reference: AlarmLevel | None = None
    margin: Decimal | None = None
    for lvl, v in known:
        candidate = value - v
        # Strict "<" keeps the lower level on a tie (module docstring).
        if margin is None or abs(candidate) < abs(margin):
            reference, margin = lvl, candidate

    next_level: AlarmLevel | None = None
    to_next: Decimal | None = None
    for lvl, v in known:
        if v > value:
            next_level, to_next = lvl, v - value
            break

    used = set(deciding)
    if reference is not None:
        used.add(reference)
    return FloodAssessment(
        station_id=station.station_id,
        stage=value,
        unit=station.unit,
        level=lowest if lowest is highest else None,
        at_least=lowest,
        reference=reference,
        margin=margin,
        next_level=next_level,
        to_next=to_next,
        depends_on_unverified=bool(used & station.unverified),
    )


def _station(
    station_id: str,
    river: str,
    station: str,
    province: str | None,
    levels: tuple[str | None, str | None, str | None],
    *,
    source: str,
    unverified: frozenset[AlarmLevel] = frozenset(),
    unit: LengthUnit = LengthUnit.METRE,
    tidal: bool = False,
) -> StationLevels:
    """One row of the §3 table, levels written as the bulletins print them."""
    bd_i, bd_ii, bd_iii = (None if v is None else Decimal(v) for v in levels)
    return StationLevels(
        station_id=station_id,
        river=river,
        station=station,
        province=province,
        bd_i=bd_i,
        bd_ii=bd_ii,
        bd_iii=bd_iii,
        unit=unit,
        tidal=tidal,
        unverified=unverified,
        source=source,
    )


_SUMMARY_0520 = "[S] press summary of the 05/2020 annex (INDICATORS.md §3)"
_BULLETINS = "[S] hydro-met bulletins {} (INDICATORS.md §3)"
_MEKONG = "[S] hydro bulletins, some pre-2020; not re-confirmed against 05/2020 [U] (§3)"
_CA_MAU = "[S] Cà Mau disaster portal, 16 Dec 2024; 05/2020 annex or provincial decision [U] (§3)"
_I = frozenset({AlarmLevel.I})
_ALL = frozenset({AlarmLevel.I, AlarmLevel.II, AlarmLevel.III})
_CM = LengthUnit.CENTIMETRE

#: Stations of INDICATORS.md §3 (province after 7/2025 where the table gives it).
STATIONS: tuple[StationLevels, ...] = (
    _station(
        "hong-ha-noi", "Hồng", "Hà Nội (Long Biên)", "Hà Nội", ("9.5", "10.5", "11.5"),
        source=_SUMMARY_0520 + "; alarm order 10 Sep 2024: 10.50 m = BĐII",
    ),
    _station(
        "hong-son-tay", "Hồng", "Sơn Tây", None, ("12.4", "13.4", "14.4"), source=_SUMMARY_0520
    ),
    _station(
        "duong-thuong-cat", "Đuống", "Thượng Cát", None, ("9.0", "10.0", "11.0"),
        source=_SUMMARY_0520,
    ),
    _station("da-trung-ha", "Đà", "Trung Hà", None, ("15.0", "16.0", "17.0"), source=_SUMMARY_0520),
    _station("day-ba-tha", "Đáy", "Ba Thá", None, ("5.5", "6.5", "7.5"), source=_SUMMARY_0520),
    _station(
        "ca-nam-dan", "Cả (Lam)", "Nam Đàn", "Nghệ An", ("5.4", "6.9", "7.9"),
        unverified=frozenset({AlarmLevel.II, AlarmLevel.III}),
        source="[S] BĐI: 2024–2025 bulletins; BĐII/III: pre-2020 bulletins, one article implies "
        "BĐII = 7.0 [U] (INDICATORS.md §3)",
    ),
    _station(
        "lam-cho-trang", "Lam", "Chợ Tràng", None, (None, None, None), unverified=_ALL,
        source="[U] not found (INDICATORS.md §3, Open item 1)",
    ),
    _station(
        "ma-giang", "Mã", "Giàng", "Thanh Hóa", ("4.0", "5.5", "6.5"),
        source=_BULLETINS.format("2024–2025"),
    ),
    _station(
        "ma-ly-nhan", "Mã", "Lý Nhân", "Thanh Hóa", ("9.5", "11.0", "12.0"),
        source="[S] hydro-met bulletins (INDICATORS.md §3)",
    ),
    _station(
        "huong-kim-long", "Hương", "Kim Long", "Huế", ("1.0", "2.0", "3.5"),
        source=_BULLETINS.format("2017–2025"),
    ),
    _station(
        "bo-phu-oc", "Bồ", "Phú Ốc", "Huế", ("1.5", "3.0", "4.5"),
        source=_BULLETINS.format("2011, 2017, 2025"),
    ),
    _station(
        "han-cam-le", "Hàn", "Cẩm Lệ", "Đà Nẵng", (None, "2.0", "2.5"), unverified=_I,
        source=_BULLETINS.format("Oct 2025") + "; BĐI [U]: a third-party 1.0/1.7/2.5 conflicts",
    ),
    _station(
        "vu-gia-ai-nghia", "Vu Gia", "Ái Nghĩa", "Đà Nẵng", ("6.5", "8.0", "9.0"), unverified=_I,
        source=_BULLETINS.format("2022, 2025") + "; BĐI 6.5 [U]",
    ),
    _station(
        "thu-bon-cau-lau", "Thu Bồn", "Câu Lâu", "Đà Nẵng", ("2.0", "3.0", "4.0"),
        source=_BULLETINS.format("2022, 2025"),
    ),
    _station(
        "thu-bon-hoi-an", "Thu Bồn", "Hội An", "Đà Nẵng", ("1.0", "1.5", "2.0"),
        source=_BULLETINS.format("2022, 2025"),
    ),
    _station(
        "tien-tan-chau", "Tiền", "Tân Châu", None, ("3.5", "4.0", "4.5"), unverified=_ALL,
        source=_MEKONG,
    ),
    _station(
        "hau-chau-doc", "Hậu", "Châu Đốc", None, ("3.0", "3.5", "4.0"), unverified=_ALL,
        source=_MEKONG,
    ),
    _station(
        "ganh-hao-tp-ca-mau", "Gành Hào", "TP Cà Mau", "Cà Mau", ("65", "75", "85"),
        unit=_CM, tidal=True, source=_CA_MAU,
    ),
    _station(
        "cua-lon-nam-can", "Cửa Lớn", "Năm Căn", "Cà Mau", ("140", "150", "160"),
        unit=_CM, tidal=True, source=_CA_MAU,
    ),
    _station(
        "ong-doc-song-doc", "Ông Đốc", "Sông Đốc", "Cà Mau", ("75", "85", "95"),
        unit=_CM, tidal=True, source=_CA_MAU,
    ),
    _station(
        "ganh-hao-ganh-hao", "Gành Hào", "Gành Hào", "Cà Mau", ("180", "200", "220"),
        unit=_CM, tidal=True, source=_CA_MAU,
    ),
    _station(
        "rach-goc", "Rạch Gốc", "Rạch Gốc", "Cà Mau", ("185", "195", "205"),
        unit=_CM, tidal=True, source=_CA_MAU,
    ),
)  # fmt: skip


def station_by_id(station_id: str) -> StationLevels:
    """The configured levels of ``station_id`` from :data:`STATIONS`."""
    for station in STATIONS:
        if station.station_id == station_id:
            return station
    raise FormulaInputError(f"unknown flood station {station_id!r}")
