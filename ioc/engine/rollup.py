"""Roll source values up to ward, province and nation (DESIGN.md "Roll-ups").

Every place's value is computed from the source values inside it, never from its children's
values, so a ratio is always the ratio of the sums (not a mean of ratios) and a maximum always
names the source it came from. Coverage counts the units one level down that reported:

* ward: its sources;
* province: its wards with a reporting source, plus its province-level sources (department
  feeds belong to the province, not to a ward);
* nation: its provinces with a reporting source.

``expected`` counts the same units among the registered sources, so ``coverage/expected`` is the
share of the place that is actually reporting.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from ioc.catalog import Indicator, Rollup, Source
from ioc.engine.values import NATION, IndicatorValue, Level, SourceValue

__all__ = ["Combine", "ratio_pct", "roll_up"]

Combine = Callable[[float, float, int], float | None]
"""A formula roll-up: (summed numerator, summed denominator, period end ns) -> value or None."""

_CENT = Decimal("0.01")


def ratio_pct(numerator: float, denominator: float) -> float | None:
    """100 × numerator / denominator rounded half-up to 2 decimals; None if the denominator is 0."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / Fraction(denominator) * 100
    rounded = (Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(
        _CENT, rounding=ROUND_HALF_UP
    )
    return float(rounded)


def _unit_of(source: Source) -> str:
    """The unit a source counts as inside its province: its ward, or itself if it has none."""
    return source.ward if source.ward is not None else f"source:{source.id}"


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
        units = lambda s: s.id  # noqa: E731 - a ward's units are its sources
        results.extend(
            _place_value(indicator, end_ns, Level.WARD, place, units, combine, province, code)
        )
    for code, place in sorted(provinces.items()):
        results.extend(
            _place_value(indicator, end_ns, Level.PROVINCE, place, _unit_of, combine, code, None)
        )
    results.extend(
        _place_value(
            indicator, end_ns, Level.NATION, nation, lambda s: s.province, combine, None, None
        )
    )
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
        numerator=value.numerator,
        denominator=value.denominator,
        latitude=source.location.lat if source.location else None,
        longitude=source.location.lon if source.location else None,
        details=value.details,
    )


def _place_value(  # noqa: PLR0917 - one call per level, each naming its place
    indicator: Indicator,
    end_ns: int,
    level: Level,
    place: _Place,
    unit_of: Callable[[Source], str],
    combine: Combine | None,
    province: str | None,
    ward: str | None,
) -> list[IndicatorValue]:
    if not place.values:
        return []
    coverage = len({unit_of(source) for source, _ in place.values})
    expected = len({unit_of(source) for source in place.members})
    common = {
        "indicator": indicator.key,
        "unit": indicator.unit,
        "level": level,
        "time_ns": end_ns,
        "province": province,
        "ward": ward,
        "coverage": coverage,
        "expected": expected,
        "sources": len(place.values),
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
