"""The exact formulas on scaled integers against the ``Fraction`` path they replaced (issue 16).

Run: ``.venv/bin/python -m bench.formulas [--stations 200] [--hours 24] [--rounds 9]``

The baseline is ``tests/formulas/reference.py``, the old ``Fraction`` functions kept verbatim as
the specification. Inputs are built once from a fixed seed, like one engine cycle:

* ``--stations`` air-quality stations, each with ``--hours`` hours of PM2.5, PM10 and gas hourly
  means plus the 11 hours before (NowCast), as InfluxDB's ``mean()`` returns them: means of
  readings with one decimal, so 17 significant digits (49.733333333333334), 3 % of hours missing;
* every hour of every station is one 12-hour NowCast window (the engine's sliding windows, in
  its order: hour by hour, every station within an hour), so a mean is met in up to 12 windows
  and converted once while the conversion cache (65,536 values) holds it;
* "cold" windows of 12 means never seen before: the national engine's case, where one hour's
  windows (3,321 stations x 2 PM metrics x 12 hours, ~80,000 values) overflow that cache;
* the same stations' days for the daily PM mean (24 h) and the O3 8 h means (31 h).

Each round times every function on both paths over the same inputs, baseline and new one after
the other (their order alternating between rounds), with both conversion caches cleared first so
each round is one cold cycle. It prints per function the calls per round, the median µs per call
of each path and the speed-up baseline time / new time: the median over rounds and its range.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

from ioc.formulas import aqi_us, aqi_vn, exact, nowcast
from tests.formulas import reference

_NOWCAST_HISTORY_H = nowcast.NOWCAST_HOURS - 1
_ON = date(2025, 1, 1)
_P = aqi_vn.Pollutant
_C = aqi_vn.BreakpointColumn
_GAS_COLUMNS = MappingProxyType({_P.O3: _C.O3_1H, _P.NO2: _C.NO2, _P.SO2: _C.SO2, _P.CO: _C.CO})
# Typical hourly levels (µg/m³) to draw readings around.
_LEVELS = MappingProxyType(
    {"pm25": 45.0, "pm10": 70.0, "o3": 60.0, "no2": 40.0, "so2": 20.0, "co": 1500.0}
)


@dataclass(frozen=True, slots=True)
class _Inputs:
    """One cycle's inputs: per station and hour the PM windows and gas means; days of hours."""

    pm25: tuple[tuple[float | None, ...], ...]  # 12-hour windows, current hour first
    pm10: tuple[tuple[float | None, ...], ...]
    gases: tuple[dict[aqi_vn.Pollutant, float | None], ...]
    days: tuple[tuple[float | None, ...], ...]  # 24 hourly PM2.5 means
    o3_days: tuple[tuple[float | None, ...], ...]  # 31 hourly O3 means
    cold: tuple[tuple[float | None, ...], ...]  # 12-hour PM2.5 windows sharing no value


def _series(rng: random.Random, level: float, hours: int) -> list[float | None]:
    """Hourly means of six 10-minute readings with one decimal, 3 % of hours missing."""
    series: list[float | None] = []
    drift = level
    for _ in range(hours):
        drift = max(1.0, drift * rng.uniform(0.85, 1.15))
        readings = [round(drift * rng.uniform(0.8, 1.2), 1) for _ in range(6)]
        series.append(None if rng.random() < 0.03 else sum(readings) / len(readings))
    return series


def _inputs(stations: int, hours: int, seed: int = 16) -> _Inputs:
    rng = random.Random(seed)
    span = hours + _NOWCAST_HISTORY_H
    series = [
        {metric: _series(rng, level, span) for metric, level in _LEVELS.items()}
        for _ in range(stations)
    ]
    pm25: list[tuple[float | None, ...]] = []
    pm10: list[tuple[float | None, ...]] = []
    gases: list[dict[aqi_vn.Pollutant, float | None]] = []
    for h in range(hours):  # the engine's order: period by period, every station in a period
        now = _NOWCAST_HISTORY_H + h  # newest hour of this window
        for station in series:
            pm25.append(tuple(station["pm25"][now - k] for k in range(nowcast.NOWCAST_HOURS)))
            pm10.append(tuple(station["pm10"][now - k] for k in range(nowcast.NOWCAST_HOURS)))
            gases.append({p: station[p.name.lower()][now] for p in _GAS_COLUMNS})
    return _Inputs(
        pm25=tuple(pm25),
        pm10=tuple(pm10),
        gases=tuple(gases),
        days=tuple(tuple(_series(rng, _LEVELS["pm25"], 24)) for _ in range(stations)),
        o3_days=tuple(tuple(_series(rng, _LEVELS["o3"], 31)) for _ in range(stations)),
        cold=tuple(tuple(_series(rng, _LEVELS["pm25"], nowcast.NOWCAST_HOURS)) for _ in pm25),
    )


def _hourly_vn_aqi(
    cast: Callable[[Sequence[float | None]], aqi_vn.NowCast | None],
    sub: Callable[[aqi_vn.BreakpointColumn, float], aqi_vn.SubIndex],
) -> Callable[[_Inputs], None]:
    """What the engine's VnAqiHourly does per station and hour: 2 NowCasts, sub-indices, max."""

    def run(inputs: _Inputs) -> None:
        for pm25, pm10, gases in zip(inputs.pm25, inputs.pm10, inputs.gases, strict=True):
            subs: dict[aqi_vn.Pollutant, aqi_vn.SubIndex] = {}
            for pollutant, column, window in (
                (_P.PM2_5, _C.PM2_5, pm25),
                (_P.PM10, _C.PM10, pm10),
            ):
                value = cast(window)
                if value is not None:
                    subs[pollutant] = sub(column, value.value)
            if not subs:
                continue
            for pollutant, column in _GAS_COLUMNS.items():
                gas = gases[pollutant]
                if gas is not None:
                    subs[pollutant] = sub(column, gas)
            aqi_vn._combine(subs)

    return run


def _each(
    fn: Callable[[tuple[float | None, ...]], object], field: str
) -> Callable[[_Inputs], None]:
    def run(inputs: _Inputs) -> None:
        for item in getattr(inputs, field):
            fn(item)

    return run


def _aqi_pm25(fn: Callable[..., object]) -> Callable[[_Inputs], None]:
    """The PM2.5 AQI of each window's newest hourly mean (a full-precision concentration)."""

    def run(inputs: _Inputs) -> None:
        for window in inputs.pm25:
            if window[0] is not None:
                fn(window[0], on=_ON)

    return run


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    calls: Callable[[_Inputs], int]
    baseline: Callable[[_Inputs], None]
    candidate: Callable[[_Inputs], None]


def _cases() -> list[_Case]:
    def windows(inputs: _Inputs) -> int:
        return len(inputs.pm25)

    return [
        _Case(
            "nowcast.weighted_nowcast",
            windows,
            _each(reference.weighted_nowcast, "pm25"),
            _each(nowcast.weighted_nowcast, "pm25"),
        ),
        _Case(
            "aqi_vn.nowcast",
            windows,
            _each(reference.nowcast, "pm25"),
            _each(aqi_vn.nowcast, "pm25"),
        ),
        _Case(
            "aqi_vn.nowcast, cold (every value new)",
            windows,
            _each(reference.nowcast, "cold"),
            _each(aqi_vn.nowcast, "cold"),
        ),
        _Case(
            "aqi_us.nowcast_pm25",
            windows,
            _each(reference.nowcast_pm25, "pm25"),
            _each(aqi_us.nowcast_pm25, "pm25"),
        ),
        _Case(
            "aqi_us.aqi_pm25",
            lambda i: sum(w[0] is not None for w in i.pm25),
            _aqi_pm25(reference.aqi_pm25),
            _aqi_pm25(aqi_us.aqi_pm25),
        ),
        _Case(
            "VnAqiHourly (2 NowCasts, sub_index x6)",
            windows,
            _hourly_vn_aqi(reference.nowcast, reference.sub_index),
            _hourly_vn_aqi(aqi_vn.nowcast, aqi_vn.sub_index),
        ),
        _Case(
            "aqi_vn.daily_pm_mean",
            lambda i: len(i.days),
            _each(reference.daily_pm_mean, "days"),
            _each(aqi_vn.daily_pm_mean, "days"),
        ),
        _Case(
            "aqi_vn.o3_8h_means",
            lambda i: len(i.o3_days),
            _each(reference.o3_8h_means, "o3_days"),
            _each(aqi_vn.o3_8h_means, "o3_days"),
        ),
    ]


def _timed(run: Callable[[_Inputs], None], inputs: _Inputs) -> float:
    reference._exact.cache_clear()
    exact._scaled.cache_clear()
    began = time.perf_counter()
    run(inputs)
    return time.perf_counter() - began


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    if args.stations < 1 or args.hours < 1 or args.rounds < 1:
        parser.error("--stations, --hours and --rounds must be >= 1")

    inputs = _inputs(args.stations, args.hours)
    cases = _cases()
    base: dict[str, list[float]] = {c.name: [] for c in cases}
    cand: dict[str, list[float]] = {c.name: [] for c in cases}
    for r in range(args.rounds):
        for case in cases:
            if r % 2 == 0:
                base[case.name].append(_timed(case.baseline, inputs))
                cand[case.name].append(_timed(case.candidate, inputs))
            else:
                cand[case.name].append(_timed(case.candidate, inputs))
                base[case.name].append(_timed(case.baseline, inputs))

    print(
        f"exact formulas: scaled integers vs the Fraction reference, {args.stations} stations x "
        f"{args.hours} h, {args.rounds} interleaved rounds (medians; speed-up range over rounds)"
    )
    head = f"{'function':<40}{'calls':>8}{'Fraction µs':>13}{'scaled µs':>11}  speed-up"
    print(head)
    print("-" * (len(head) + 16))
    for case in cases:
        calls = max(1, case.calls(inputs))
        ratios = sorted(b / c for b, c in zip(base[case.name], cand[case.name], strict=True))
        print(
            f"{case.name:<40}{calls:>8}"
            f"{statistics.median(base[case.name]) / calls * 1e6:>13.2f}"
            f"{statistics.median(cand[case.name]) / calls * 1e6:>11.2f}"
            f"  {statistics.median(ratios):5.1f}x ({ratios[0]:.1f}-{ratios[-1]:.1f})"
        )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
