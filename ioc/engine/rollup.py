"""Roll source values up to ward, province and nation (DESIGN.md "Roll-ups").

Every place's value is computed from the source values inside it, never from its children's
values, so a ratio is always the ratio of the sums (not a mean of ratios) and a maximum always
names the source it came from. Coverage counts real places, each once however many sources it
has, and says what they are:

* wards (communes and wards): a ward with a registered source is expected, and reporting if one
  of its sources reported;
* departments, the province's own level: the province-level sources (no ward) grouped by their
  registry ``department`` (a province-level source without one is a unit of its own);
* provinces: a province with a registered source is expected, and reporting if one of its sources
  reported;
* sources: every registered source, at any depth.

``coverage``/``expected`` keep counting the units one level down: a ward's sources; a province's
wards plus its departments; the nation's provinces. A registered source that never reported is
expected and not reporting; so is a source whose value the roll-up counts without it having
reported (a silent feed is "not live", :attr:`SourceValue.reported` False).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from ioc.catalog import Indicator, Rollup, Source
from ioc.engine.values import NATION, IndicatorValue, Level, SourceValue

__all__ = ["Combine", "ratio_pct", "ratio_pct_exact", "roll_up"]

Combine = Callable[[float, float, int], float | None]
"""A formula roll-up: (summed numerator, summed denominator, period end ns) -> value or None."""

_CENT = Decimal("0.01")


def ratio_pct(numerator: float, denominator: float) -> float | None:
    """100 × numerator / denominator rounded half-up to 2 decimals; None if the denominator is 0.

    Counts (whole, non-negative numbers: live feeds, dossiers) take an integer path: the cents
    are floor(10,000 n / d + 1/2) exactly, and ``cents / 100`` is the double nearest to them,
    as is ``float`` of the quantized Decimal (:func:`ratio_pct_exact`, proven equal in
    tests/engine/test_equivalence.py). Anything else goes through the Fraction path."""
    if denominator == 0:
        return None
    if (
        0 <= numerator < 1e20  # far inside Decimal's 28 digits
        and denominator > 0
        and float(numerator).is_integer()
        and float(denominator).is_integer()
    ):
        n, d = int(numerator), int(denominator)
        return ((20_000 * n + d) // (2 * d)) / 100
    return ratio_pct_exact(numerator, denominator)


def ratio_pct_exact(numerator: float, denominator: float) -> float | None:
    """:func:`ratio_pct` through Fraction and Decimal for any input (the specification)."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / Fraction(denominator) * 100
    rounded = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        _CENT, rounding=ROUND_HALF_UP
    )
    return float(rounded)


def _department_of(source: Source) -> str | None:
    """The department a province-level source counts as (None for a source in a ward).

    Departments are named by people in the registry: compared without case and extra spaces,
    and per province (every province has its own "Sở Khoa học và Công nghệ")."""
    if source.ward is not None:
        return None
    if source.department is None:
        return f"{source.province}/source:{source.id}"
    return f"{source.province}/{' '.join(source.department.split()).casefold()}"


def _ward_of(source: Source) -> str | None:
    return source.ward


def _province_of(source: Source) -> str | None:
    return source.province


def _count(sources: Iterable[Source], key: Callable[[Source], str | None]) -> int:
    """Distinct non-None keys of ``sources``: each unit once, however many sources it has."""
    return len({k for k in map(key, sources) if k is not None})


class _Place:
    """The registered sources of one place and the values they reported."""

    def __init__(self) -> None:
        self.members: list[Source] = []
        self.values: list[tuple[Source, SourceValue]] = []


def roll_up(
    indicator: Indicator,
    end_ns: int,
    values: Iterable[SourceValue],
    members: Sequence[Source],
    *,
    combine: Combine | None = None,
) -> list[IndicatorValue]:
    """Source, ward, province and national values of ``indicator`` for the period ending at end_ns.

    ``members`` are the registered sources the indicator reads; values of other sources are
    ignored (the engine counts them). ``combine`` is required for ``rollup = formula``.
    """
    if indicator.rollup is Rollup.FORMULA and combine is None:
        raise ValueError(f"indicator {indicator.key!r} rolls up by formula: pass combine")
    by_id = {source.id: source for source in members}
    reported = sorted(
        ((by_id[v.source_id], v) for v in values if v.source_id in by_id),
        key=lambda pair: pair[0].id,
    )
    wards: dict[str, _Place] = defaultdict(_Place)
    provinces: dict[str, _Place] = defaultdict(_Place)
    nation = _Place()
    for source in members:
        if source.ward is not None:
            wards[source.ward].members.append(source)
        provinces[source.province].members.append(source)
        nation.members.append(source)
    for source, value in reported:
        if source.ward is not None:
            wards[source.ward].values.append((source, value))
        provinces[source.province].values.append((source, value))
        nation.values.append((source, value))

    results = [_source_value(indicator, end_ns, source, value) for source, value in reported]
    for code, place in sorted(wards.items()):
        province = place.members[0].province
        results.extend(_place_value(indicator, end_ns, Level.WARD, place, combine, province, code))
    for code, place in sorted(provinces.items()):
        results.extend(_place_value(indicator, end_ns, Level.PROVINCE, place, combine, code, None))
    results.extend(_place_value(indicator, end_ns, Level.NATION, nation, combine, None, None))
    return results


def _band(indicator: Indicator, value: float) -> str | None:
    band = indicator.band_for(value)
    return band.key if band is not None else None


def _source_value(
    indicator: Indicator, end_ns: int, source: Source, value: SourceValue
) -> IndicatorValue:
    return IndicatorValue(
        indicator=indicator.key,
        unit=indicator.unit,
        level=Level.SOURCE,
        time_ns=end_ns,
        value=value.value,
        band=_band(indicator, value.value),
        province=source.province,
        ward=source.ward,
        source=source.id,
        coverage=1 if value.reported else 0,
        sources=1 if value.reported else 0,
        numerator=value.numerator,
        denominator=value.denominator,
        latitude=source.location.lat if source.location else None,
        longitude=source.location.lon if source.location else None,
        details=value.details,
    )


def _coverage(level: Level, place: _Place) -> dict[str, int]:
    """The coverage fields of a place at ``level`` (see the module's docstring)."""
    reporting = [source for source, value in place.values if value.reported]
    members = place.members
    counts = {"sources": len(reporting), "sources_expected": len(members)}
    if level is Level.WARD:
        return counts | {"coverage": len(reporting), "expected": len(members)}
    wards = (_count(reporting, _ward_of), _count(members, _ward_of))
    departments = (_count(reporting, _department_of), _count(members, _department_of))
    counts |= {
        "wards_reporting": wards[0],
        "wards_expected": wards[1],
        "departments_reporting": departments[0],
        "departments_expected": departments[1],
    }
    if level is Level.PROVINCE:
        return counts | {
            "coverage": wards[0] + departments[0],
            "expected": wards[1] + departments[1],
        }
    provinces = (_count(reporting, _province_of), _count(members, _province_of))
    return counts | {
        "provinces_reporting": provinces[0],
        "provinces_expected": provinces[1],
        "coverage": provinces[0],
        "expected": provinces[1],
    }


def _place_value(  # noqa: PLR0917 - one call per level, each naming its place
    indicator: Indicator,
    end_ns: int,
    level: Level,
    place: _Place,
    combine: Combine | None,
    province: str | None,
    ward: str | None,
) -> list[IndicatorValue]:
    if not place.values:
        return []
    common = {
        "indicator": indicator.key,
        "unit": indicator.unit,
        "level": level,
        "time_ns": end_ns,
        "province": province,
        "ward": ward,
        **_coverage(level, place),
    }
    if indicator.rollup is Rollup.SUM:
        total = sum(v.value for _, v in place.values)
        return [IndicatorValue(value=total, band=_band(indicator, total), **common)]  # type: ignore[arg-type]
    if indicator.rollup is Rollup.MAX:
        source, top = max(place.values, key=lambda pair: pair[1].value)  # first of equals wins
        return [
            IndicatorValue(
                value=top.value,
                band=_band(indicator, top.value),
                origin=source.id,
                origin_ward=source.ward,
                origin_province=source.province,
                **common,  # type: ignore[arg-type]
            )
        ]
    numerator = sum(v.numerator or 0.0 for _, v in place.values)
    denominator = sum(v.denominator or 0.0 for _, v in place.values)
    if indicator.rollup is Rollup.RATIO:
        value = ratio_pct(numerator, denominator)
    elif combine is not None:  # roll_up checked that formula roll-ups have one
        value = combine(numerator, denominator, end_ns)
    else:
        value = None
    if value is None:
        return []
    return [
        IndicatorValue(
            value=value,
            band=_band(indicator, value),
            numerator=numerator,
            denominator=denominator,
            **common,  # type: ignore[arg-type]
        )
    ]


_ = NATION  # the national level has no place tag; the API names it NATION
