"""The scaled-integer formulas return exactly what the ``Fraction`` path returned (issue 16).

``tests/formulas/reference.py`` is the old path, verbatim. Every changed function is run on both
with generated inputs and the results must be identical: same ``repr`` (so the same float bits,
-0.0 included, the same categories, flags and hour counts), or the same exception type and
message. Inputs cover what the formulas meet: hand-written decimals with 0-3 places, InfluxDB
hourly means (17 significant digits), any finite float (huge, subnormal), zeros, missing hours,
x.5 ties, truncation at 0.1 µg/m³, w* = 1/2 exactly, and bad values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ioc.formulas import aqi_us, aqi_vn, exact, nowcast
from tests.formulas import reference
from tests.formulas.test_aqi_us import ONE_HOUR, _load_hanoi, _usable

# Many examples, still fast enough for every run (the file takes well under a minute).
EQUIVALENCE = settings(
    max_examples=600,
    deadline=None,  # the machine is shared; speed is bench.formulas' business
    suppress_health_check=[HealthCheck.too_slow],
)
# The engine's hot paths (NowCast, sub-index, US AQI) get more.
HOT_PATH = settings(EQUIVALENCE, max_examples=2000)

PRE_2024 = date(2020, 1, 1)
POST_2024 = date(2025, 1, 1)


def _outcome(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[str, str]:
    """What a call gives: its result's repr, or its exception's type and message."""
    try:
        return "ok", repr(fn(*args, **kwargs))
    except Exception as error:  # the exception itself is what is compared
        return type(error).__name__, str(error)


def _same(
    new: Callable[..., object], old: Callable[..., object], *args: object, **kw: object
) -> tuple[str, str]:
    """Assert both paths give the same outcome; return it (for assertions on coverage)."""
    ours = _outcome(new, *args, **kw)
    assert ours == _outcome(old, *args, **kw), f"{new.__qualname__}{args} {kw}"
    return ours


def _decimal(digits: int, places: int) -> float:
    """The float nearest digits * 10**-places, as a device or a person writes it."""
    return float(Decimal(digits).scaleb(-places))


# Hand-written decimals, 0-3 places: 12, 12.1, 35.45, 150.125 ...
written = st.builds(_decimal, st.integers(0, 2_000_000), st.integers(0, 3))
# InfluxDB mean() of such readings: 17 significant digits, e.g. 49.733333333333334.
means = st.lists(written, min_size=1, max_size=12).map(lambda xs: sum(xs) / len(xs))
# Any finite non-negative float: subnormals (5e-324) up to 1.797e308, and -0.0.
anything = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False) | st.just(-0.0)
edges = st.sampled_from(
    [
        *(0.0, -0.0, 0.05, 0.1, 12.0, 12.04, 12.05, 12.1, 35.45, 35.49, 55.45, 500.4, 500.5),
        *(1e-300, 5e-324, 2.2250738585072014e-308, 1e22, 1.7976931348623157e308, 2**53 + 0.0),
    ]
)
concentrations = written | means | anything | edges
bad = st.sampled_from([-0.1, -5e-324, -1e300, float("nan"), float("inf"), float("-inf")])


def _windows(values: st.SearchStrategy[float]) -> st.SearchStrategy[list[float | None]]:
    return st.lists(st.none() | values, max_size=nowcast.NOWCAST_HOURS)


# Windows of a few values so that Cmin/Cmax hits 1/2 exactly, zeros and all-equal hours.
few = st.sampled_from([0.0, 10.0, 20.0, 20.5, 41.0, 12.345])
hours = (
    _windows(concentrations)
    | _windows(written)
    | _windows(means)
    | _windows(few)
    | _windows(st.just(0.0))
)


def test_reference_is_the_fraction_path() -> None:
    """The specification really computes in fractions (guards against editing it away)."""
    cast = reference.weighted_nowcast([10.0, 20.0, None, 5.5])
    assert cast is not None
    assert isinstance(cast.value, Fraction)
    assert cast.value == Fraction(331, 26)


@EQUIVALENCE
@given(concentrations | bad)
def test_exact_concentration(value: float) -> None:
    _same(exact.exact_concentration, reference.exact_concentration, "c", value)
    if _outcome(exact.exact_concentration, "c", value)[0] == "ok":
        digits, places = exact.scaled_concentration("c", value)
        assert Fraction(digits, 10**places) == reference.exact_concentration("c", value)


@EQUIVALENCE
@given(st.fractions(min_value=0, max_value=10**6, max_denominator=10**6))
def test_round_half_up_ratio(value: Fraction) -> None:
    ours = exact.round_half_up_ratio(value.numerator, value.denominator)
    assert ours == reference.round_half_up(value)
    whole = value.numerator // value.denominator
    assert exact.round_half_up_ratio(2 * whole + 1, 2) == whole + 1  # a tie goes up


@HOT_PATH
@given(hours)
@example([None, 20.0, 10.0])  # c1 missing, w* = 1/2 exactly
@example([0.0] * 12)  # all-zero window: w* = w = 1
@example([10.0, 0.0])  # Cmin = 0
@example([40.0, None, None, None, None, None, None, None, None, None, None, 5e-324])
@example([1.7976931348623157e308, 1.7976931348623157e308])
def test_nowcast(hourly: list[float | None]) -> None:
    _same(nowcast.weighted_nowcast, reference.weighted_nowcast, hourly)
    _same(aqi_vn.nowcast, reference.nowcast, hourly)
    _same(aqi_us.nowcast_pm25, reference.nowcast_pm25, hourly)
    for on in (PRE_2024, POST_2024):
        _same(aqi_us.nowcast_aqi_pm25, reference.nowcast_aqi_pm25, hourly, on=on)


@EQUIVALENCE
@given(st.lists(st.none() | concentrations, max_size=14), st.integers(0, 13), bad)
def test_nowcast_bad_input(hourly: list[float | None], at: int, value: float) -> None:
    """Same error, and the same hour named in it, whatever is wrong where (or too many hours)."""
    hourly.insert(min(at, len(hourly)), value)
    for new, old in (
        (nowcast.weighted_nowcast, reference.weighted_nowcast),
        (aqi_vn.nowcast, reference.nowcast),
        (aqi_us.nowcast_pm25, reference.nowcast_pm25),
    ):
        assert _same(new, old, hourly)[0] == "FormulaInputError"


@HOT_PATH
@given(concentrations | bad | st.builds(_decimal, st.integers(0, 6000), st.just(1)))
@example(35.45)  # truncated to 35.4, not rounded to 35.5
@example(12.05)  # 2012 table: 12.0 -> 50
@example(500.5)  # beyond the 2012 table
@example(0.6)  # 2012 table: 50 * 0.6 / 12 = 2.5, a tie -> 3
def test_aqi_pm25(concentration: float) -> None:
    for on in (PRE_2024, POST_2024):
        _same(aqi_us.aqi_pm25, reference.aqi_pm25, concentration, on=on)


def _ties(column: aqi_vn.BreakpointColumn) -> list[float]:
    """Concentrations whose exact sub-index is k + 1/2 and that have at most 3 decimal places."""
    breakpoints = aqi_vn._BREAKPOINTS[column]
    levels = aqi_vn._INDEX_LEVELS
    found: list[float] = []
    for k in range(len(breakpoints) - 1):
        bp_lo, bp_hi, i_lo, i_hi = breakpoints[k], breakpoints[k + 1], levels[k], levels[k + 1]
        for index in range(i_lo, i_hi):
            c = bp_lo + (Fraction(2 * (index - i_lo) + 1, 2)) * (bp_hi - bp_lo) / (i_hi - i_lo)
            if (c * 1000).denominator == 1:
                found.append(_decimal(int(c * 1000), 3))
    return found


TIES = [(column, c) for column in aqi_vn.BreakpointColumn for c in _ties(column)]


def test_tie_cases_exist_in_every_column() -> None:
    assert {column for column, _ in TIES} == set(aqi_vn.BreakpointColumn)


@EQUIVALENCE
@given(st.sampled_from(TIES))
def test_sub_index_ties_round_up_on_both_paths(tie: tuple[aqi_vn.BreakpointColumn, float]) -> None:
    column, concentration = tie
    kind, _ = _same(aqi_vn.sub_index, reference.sub_index, column, concentration)
    assert kind == "ok"
    ours = aqi_vn.sub_index(column, concentration)
    assert ours.value % 1 == 0.5
    assert ours.rounded == ours.value + 0.5


@HOT_PATH
@given(st.sampled_from(aqi_vn.BreakpointColumn), concentrations | bad)
@example(aqi_vn.BreakpointColumn.O3_8H, 400.0)  # top of the 8h column
@example(aqi_vn.BreakpointColumn.O3_8H, 400.00000000000006)  # just above: refused
@example(aqi_vn.BreakpointColumn.PM2_5, 500.00000000000006)  # just above: capped, flagged
def test_sub_index(column: aqi_vn.BreakpointColumn, concentration: float) -> None:
    _same(aqi_vn.sub_index, reference.sub_index, column, concentration)


@EQUIVALENCE
@given(
    st.lists(st.none() | concentrations, min_size=24, max_size=24),
    st.integers(1, 24),
)
def test_daily_pm_mean(hourly: list[float | None], min_hours: int) -> None:
    _same(aqi_vn.daily_pm_mean, reference.daily_pm_mean, hourly, min_hours=min_hours)


@EQUIVALENCE
@given(st.lists(st.none() | concentrations | bad, max_size=31), st.integers(1, 8))
def test_o3_8h_means(hourly: list[float | None], min_hours: int) -> None:
    _same(aqi_vn.o3_8h_means, reference.o3_8h_means, hourly, min_hours=min_hours)


@EQUIVALENCE
@given(concentrations | bad)
@example(400.0)
@example(400.00000000000006)
def test_daily_aqi_o3_8h_cut_at_400(o3_max_8h: float) -> None:
    """daily_aqi ignores an 8h O3 mean above 400 on the exact decimal, as before."""
    ours = _outcome(aqi_vn.daily_aqi, pm2_5_24h=30.0, o3_max_1h=150.0, o3_max_8h=o3_max_8h)
    o3_1h = reference.sub_index(aqi_vn.BreakpointColumn.O3_1H, 150.0)
    kind, _ = _outcome(reference.exact_concentration, "O3 max 8h", o3_max_8h)
    if kind != "ok":
        assert ours == _outcome(reference.exact_concentration, "O3 max 8h", o3_max_8h)
        return
    assert ours[0] == "ok"
    o3 = aqi_vn.daily_aqi(pm2_5_24h=30.0, o3_max_1h=150.0, o3_max_8h=o3_max_8h).sub_index_of(
        aqi_vn.Pollutant.O3
    )
    if reference.exact_concentration("O3 max 8h", o3_max_8h) <= 400:
        o3_8h = reference.sub_index(aqi_vn.BreakpointColumn.O3_8H, o3_max_8h)
        assert o3 == max((o3_1h, o3_8h), key=lambda s: s.value)
    else:
        assert o3 == o3_1h


@pytest.mark.parametrize("on", [PRE_2024, POST_2024])
def test_every_hanoi_airnow_window(on: date) -> None:
    """The AirNow Hanoi record (2019-2020), every hour's 12-hour window, on both paths."""
    rows, _ = _load_hanoi()
    series = {row.at: _usable(row) for row in rows}
    with_nowcast = 0
    for row in rows:
        hourly = [series.get(row.at - k * ONE_HOUR) for k in range(12)]
        kind, value = _same(aqi_us.nowcast_aqi_pm25, reference.nowcast_aqi_pm25, hourly, on=on)
        _same(aqi_vn.nowcast, reference.nowcast, hourly)
        with_nowcast += kind == "ok" and value != "None"
    assert with_nowcast > 6000, f"only {with_nowcast} of {len(rows)} hours have a NowCast"


def test_windows_in_the_engine_order() -> None:
    """Sliding 12-hour windows over a long series with gaps, as the engine reads them."""
    values: list[float | None] = [
        None if n % 17 in (3, 4) else _decimal((n * 7919) % 4000, n % 4) for n in range(500)
    ]
    produced = 0
    for start in range(len(values)):
        kind, value = _same(aqi_vn.nowcast, reference.nowcast, values[start : start + 12])
        produced += kind == "ok" and value != "None"
    assert produced > 400
