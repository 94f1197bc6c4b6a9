"""The engine's reference path against its default path, in one run (issue 16).

Run: ``.venv/bin/python -m bench.engine [--wards 1] [--hours 24] [--minutes-step 10] [--rounds 1]``

Quick run: ``.venv/bin/python -m bench.engine --hours 3 --minutes-step 30 --first-wards 300``

Growth: ``--wards 2`` and ``--wards 4`` register two and four times the national registry
(extra simulated stations in every ward, extra feeds in every province); ``--no-backfill`` to
measure the live cycles only.

It starts its own Mosquitto and InfluxDB (the local stack code) in a temporary folder on free
loopback ports, registers ``--wards`` air-quality stations in every ward (3,321 wards; with
``--traffic`` as many traffic counters) and as many public-service and task feeds in every
province (34), and seeds a day of readings (plus the 11 hours before it that NowCast needs)
ending at the start of the current hour; a device promises a reading every ``--minutes-step``
minutes (its expected interval), a feed one an hour. Seeding is setup and is reported but not
compared. Then, per round, for the reference path (``Engine(reference=True)``: the
straightforward computation kept as the specification, i.e. the engine before issue 16) and the
default path, in alternating order, each with a fresh engine and no derived points in the store:

* ``backfill``: ``Engine.backfill`` of the day (hourly periods and 15-minute live-ness periods);
* ``cycle``: the first live ``run_cycle`` five minutes after the hour, 3 h lookback (a started
  engine: nothing remembered);
* ``steady``: the next cycle a minute later, nothing new in any complete period (what most
  cycles of a running engine are);
* ``late``: the next cycle after late readings for the last hour from 2 % of the stations.

For each run it prints seconds, points written, and where the time went (InfluxQL queries,
line-protocol encoding, sending, and the rest: the engine's own computation), measured by a
``Store`` subclass that times each call; the default path's seconds as a ratio of the reference
path's in the same run; the points written per indicator family. With ``--levers`` it also runs
the default path less one lever at a time (live-ness read per period end as the reference does,
batches of 5,000, no background write thread), so each lever's share is measured in the same
run. With ``--store-baselines`` it also replays each run's queries and writes alone (what
InfluxDB costs for them).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ioc.catalog import INDICATORS_FILE, Catalog, Indicator, load_catalog
from ioc.engine import CycleReport, Engine
from ioc.places import get_places
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack, free_ports
from ioc.store import Point, Store
from ioc.store.client import Epoch, ParamValue, Series
from ioc.store.influxql import INDICATOR_MEASUREMENT, RECEIVED_FIELD, quote_ident

_NS = 1_000_000_000
_MINUTE = 60 * _NS
_HOUR = 3600 * _NS
_NOWCAST_HISTORY_H = 11  # NowCast of the first hour reads the 11 hours before it
_BATCH = 5_000
_TIMEOUT_S = 600.0  # generous, so that a slow query is measured rather than aborted
_DEFAULT_TIMEOUT_S = 10.0  # IOC_INFLUX_TIMEOUT's default, flagged if one query takes longer
_BASELINE_MEASUREMENT = "bench_indicator"


# --- the registry and the readings ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Site:
    """A registered source to seed: id, measurement and location tags, a number for variety."""

    id: str
    kind: str
    province: str
    ward: str | None
    n: int

    @property
    def tags(self) -> dict[str, str]:
        tags = {"source": self.id, "province": self.province}
        if self.ward is not None:
            tags["ward"] = self.ward
        return tags


def _sites(copies: int, first_wards: int, traffic: bool) -> tuple[list[_Site], list[_Site]]:
    """``copies`` devices (air station, optionally traffic counter) per ward and feeds per
    province: ``copies`` times the national registry."""
    places = get_places()
    chosen = places.wards() if first_wards <= 0 else places.wards()[:first_wards]
    kinds = ("air", "traffic") if traffic else ("air",)
    devices = [
        _Site(f"{w.code}-{kind}" + (f"-{k}" if k else ""), kind, w.province_code, w.code, i + k)
        for kind in kinds
        for k in range(copies)
        for i, w in enumerate(chosen)
    ]
    provinces = sorted({w.province_code for w in chosen})
    feeds = [
        _Site(f"{code}-{kind}" + (f"-{k}" if k else ""), kind, code, None, i + k)
        for k in range(copies)
        for i, code in enumerate(provinces)
        for kind in ("service", "tasks")
    ]
    return devices, feeds


def _registry_toml(devices: Sequence[_Site], feeds: Sequence[_Site], step_min: int) -> str:
    blocks = []
    for site, interval in [*((d, f"{step_min}m") for d in devices), *((f, "1h") for f in feeds)]:
        ward = f'ward = "{site.ward}"\n' if site.ward is not None else ""
        blocks.append(
            f'[[source]]\nid = "{site.id}"\nkind = "{site.kind}"\nprovince = "{site.province}"\n'
            f'{ward}name = "bench {site.kind} {site.n}"\nexpected_interval = "{interval}"\n'
        )
    return "\n".join(blocks)


def _device_fields(site: _Site, hour: int, minute: int) -> dict[str, float]:
    """Plausible, deterministic readings varying by site and time of day."""
    daily = math.sin(2 * math.pi * ((hour % 24) - 8) / 24)  # peak in the afternoon (UTC+7)
    wobble = (site.n * 7 + hour * 3 + minute) % 11
    if site.kind == "air":
        pm25 = 8.0 + (site.n * 37 % 70) + 18.0 * daily + wobble
        return {
            "pm25": round(max(pm25, 1.0), 1),
            "pm10": round(max(pm25, 1.0) * 1.6 + 4.0, 1),
            "o3": round(40.0 + (site.n * 13 % 80) + 30.0 * daily, 1),
            "no2": round(15.0 + (site.n * 11 + hour * 5) % 60, 1),
        }
    return {"vehicles": float(40 + (site.n * 17 + hour * 29) % 400), "speed": 20.0 + wobble}


def _feed_fields(site: _Site, hour: int) -> dict[str, float]:
    """Counts whose parts never exceed their whole (on time <= received, done + late <= total)."""
    if site.kind == "service":
        received = 20 + (site.n * 7 + hour) % 80
        return {
            "dossiers_received": float(received),
            "dossiers_on_time": float(received - (site.n + hour) % 6),
            "dossiers_online": float(received // 2 + (site.n + hour) % 5),
        }
    total = 120 + site.n * 3
    return {
        "tasks_total": float(total),
        "tasks_completed": float(40 + (site.n * 3 + hour) % 60),
        "tasks_overdue": float((site.n + hour) % 12),
    }


def _readings(
    devices: Sequence[_Site], feeds: Sequence[_Site], first_ns: int, end_ns: int, step_min: int
) -> Iterator[Point]:
    """Devices every ``step_min`` minutes (at 1 min past each step), feeds at :05 each hour."""
    step = step_min * _MINUTE
    for slot in range(first_ns, end_ns, step):
        hour, minute = divmod((slot // _MINUTE) % (24 * 60), 60)
        at = slot + _MINUTE
        received_ms = (at + 2 * _NS) // 1_000_000
        for site in devices:
            fields: dict[str, float | int] = {**_device_fields(site, hour, minute)}
            fields["received_ms"] = received_ms
            yield Point(site.kind, fields, at, site.tags)
        if slot % _HOUR == 0:
            at = slot + 5 * _MINUTE
            for site in feeds:
                fields = {**_feed_fields(site, hour), "received_ms": (at + 30 * _NS) // 1_000_000}
                yield Point(site.kind, fields, at, site.tags)


def _batches(points: Iterator[Point], size: int) -> Iterator[list[Point]]:
    batch: list[Point] = []
    for point in points:
        batch.append(point)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- a store that times itself --------------------------------------------------------------------


@dataclass(slots=True)
class _Tally:
    """What the engine asked of the store during one run, and how long each part took."""

    query_s: float = 0.0
    slowest_query_s: float = 0.0
    write_s: float = 0.0  # Store.write: encoding + sending
    send_s: float = 0.0  # Store.write_lines: sending (HTTP + InfluxDB)
    queries: list[tuple[str, dict[str, ParamValue], Epoch | None]] = field(default_factory=list)
    liveness_query_s: float = 0.0  # the part of query_s spent on last-record (live-ness) queries
    families: Counter[str] = field(default_factory=Counter)  # derived lines per indicator
    lines: list[str] = field(default_factory=list)  # derived lines, kept for --store-baselines


class TimedStore(Store):
    """A Store that adds up the time spent in query, write and write_lines."""

    def __init__(self, settings: Settings, *, keep_lines: bool = False) -> None:
        super().__init__(settings)
        self.keep_lines = keep_lines
        self.tally = _Tally()

    def query(
        self,
        text: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        epoch: Epoch | None = "ns",
    ) -> tuple[Series, ...]:
        began = time.perf_counter()
        try:
            return super().query(text, params, epoch=epoch)
        finally:
            took = time.perf_counter() - began
            self.tally.query_s += took
            self.tally.slowest_query_s = max(self.tally.slowest_query_s, took)
            if text.startswith(f"SELECT last({quote_ident(RECEIVED_FIELD)})"):
                self.tally.liveness_query_s += took
            self.tally.queries.append((text, dict(params or {}), epoch))

    def write(self, points: Sequence[Point], *, rp: str = "raw") -> int:
        began = time.perf_counter()
        try:
            return super().write(points, rp=rp)
        finally:
            self.tally.write_s += time.perf_counter() - began

    def write_lines(self, lines: Sequence[str], *, rp: str = "raw") -> int:
        began = time.perf_counter()
        try:
            return super().write_lines(lines, rp=rp)
        finally:
            self.tally.send_s += time.perf_counter() - began
            if rp == "derived":
                self.tally.families.update(_family(line) for line in lines)
                if self.keep_lines:
                    self.tally.lines.extend(lines)


def _family(line: str) -> str:
    """The indicator of a derived line (``indicator,indicator=<key>,...``)."""
    return line.split(",", 2)[1].removeprefix("indicator=")


# --- the measurements -----------------------------------------------------------------------------

PATHS = ("reference", "default")
LEVERS = ("default-per-end-liveness", "default-batch-5000", "default-no-write-thread")
"""With --levers: the default path less one lever, to measure what that lever alone pays."""


class _PerEndLiveness(Engine):
    """The default path with the reference's live-ness reads (one last() query per end, kind)."""

    def _last_seen(
        self, indicator: Indicator, ends: Sequence[int]
    ) -> Iterator[tuple[int, dict[str, int]]]:
        return self._last_seen_per_end(indicator, ends)


def _engine(path: str, settings: Settings, catalog: Catalog, store: Store) -> Engine:
    if path == "reference":
        return Engine(settings, catalog, store, reference=True)
    if path == "default-per-end-liveness":
        return _PerEndLiveness(settings, catalog, store)
    engine = Engine(settings, catalog, store)
    if path == "default-batch-5000":
        engine.write_batch = 5000
    if path == "default-no-write-thread":
        engine.background_writes = False
    return engine


RUNS = ("backfill", "cycle", "steady", "late")


@dataclass(frozen=True, slots=True)
class _Result:
    run: str
    path: str
    report: CycleReport
    tally: _Tally
    read_s: float | None = None  # baseline A (--store-baselines)
    write_s: float | None = None  # baseline B (--store-baselines)

    @property
    def compute_s(self) -> float:
        return self.report.seconds - self.tally.query_s - self.tally.write_s


def _replay_queries(store: Store, tally: _Tally) -> float:
    began = time.perf_counter()
    for text, params, epoch in tally.queries:
        store.query(text, params, epoch=epoch)
    return time.perf_counter() - began


def _rewrite_lines(store: Store, lines: Sequence[str]) -> float:
    """The engine's derived lines under another measurement, in batches of 5,000."""
    renamed = [_BASELINE_MEASUREMENT + line.removeprefix("indicator") for line in lines]
    began = time.perf_counter()
    for first in range(0, len(renamed), _BATCH):
        store.write_lines(renamed[first : first + _BATCH], rp="derived")
    return time.perf_counter() - began


def _measure(
    run: str, path: str, store: Store, timed: TimedStore, report: CycleReport, *, baselines: bool
) -> _Result:
    tally, timed.tally = timed.tally, _Tally()
    if not baselines:
        return _Result(run, path, report, tally)
    read_s = _replay_queries(store, tally)
    write_s = _rewrite_lines(store, tally.lines)
    return _Result(run, path, report, tally, read_s, write_s)


def _seed(store: Store, points: Iterator[Point]) -> int:
    began = time.perf_counter()
    count = 0
    for batch in _batches(points, _BATCH):
        count += store.write(batch)
    seconds = time.perf_counter() - began
    print(f"seeded {count:,} raw points in {seconds:.1f} s ({count / seconds:,.0f} points/s)")
    return count


def _late(devices: Sequence[_Site], hour0: int, n: int) -> list[Point]:
    """A late reading for the last hour from every 50th station (values differ per run ``n``)."""
    at = hour0 - 30 * _MINUTE + n * _NS
    points = []
    for site in devices[::50]:
        fields: dict[str, float | int] = {**_device_fields(site, 0, n % 60)}
        fields["received_ms"] = (hour0 + 6 * _MINUTE) // 1_000_000
        points.append(Point(site.kind, fields, at, site.tags))
    return points


def _check(store: Store, settings: Settings, hour0: int) -> None:
    """A glance at the national values at the last hour, so a broken run does not look fast."""
    text = (
        f'SELECT "indicator", "value", "coverage", "expected" FROM "{settings.influx_db}".'
        '"derived"."indicator" WHERE "level" = \'nation\' AND time = $t'
    )
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour0 // _NS))
    for series in store.query(text, {"t": when}):
        shown = ", ".join(
            f"{row['indicator']}={row['value']:g} ({row['coverage']}/{row['expected']})"
            for row in series.rows()
        )
        print(f"national values at {when}: {shown}")


def _median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spread(values: Sequence[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{_median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def _short(path: str) -> str:
    return {"reference": "ref", "default": "def"}.get(path, path.removeprefix("default-"))


def _print(results: Sequence[_Result]) -> None:
    """Medians (and ranges over rounds) per run and path; default / reference ratios."""
    by: dict[tuple[str, str], list[_Result]] = defaultdict(list)
    for r in results:
        by[(r.run, r.path)].append(r)
    paths = [p for p in (*PATHS, *LEVERS) if any(r.path == p for r in results)]
    columns = [(run, path) for run in RUNS for path in paths if (run, path) in by]
    width = 24
    head = f"{'':<22}" + "".join(f"{run + ' ' + _short(path):>{width}}" for run, path in columns)
    print(head)
    print("-" * len(head))

    def row(name: str, value: Callable[[_Result], float], fmt: str = ".2f") -> None:
        cells = []
        for key in columns:
            values = [value(r) for r in by[key]]
            cells.append(_spread(values) if fmt == ".2f" else format(_median(values), fmt))
        print(f"{name:<22}" + "".join(f"{c:>{width}}" for c in cells))

    row("seconds", lambda r: r.report.seconds)
    row("  queries s", lambda r: r.tally.query_s)
    row("    of which live-ness", lambda r: r.tally.liveness_query_s)
    row("  writes s", lambda r: r.tally.write_s)
    row("    encoding lines s", lambda r: r.tally.write_s - r.tally.send_s)
    row("    sending lines s", lambda r: r.tally.send_s)
    row("  rest s (computing)", lambda r: r.compute_s)
    row("queries", lambda r: len(r.tally.queries), ",.0f")
    row("slowest query s", lambda r: r.tally.slowest_query_s)
    row("periods", lambda r: r.report.periods, ",.0f")
    row("points written", lambda r: r.report.points, ",.0f")
    if all(r.read_s is not None for r in results):
        row("store alone: read s", lambda r: r.read_s or 0.0)
        row("store alone: write s", lambda r: r.write_s or 0.0)
    print(
        "the default path writes on a background thread while it computes: its writes overlap "
        "the rest, which is then seconds - queries - writes (low, or below 0)"
    )
    print()
    for run in RUNS:
        ref = [r.report.seconds for r in by.get((run, "reference"), [])]
        for path in paths[1:]:
            new = [r.report.seconds for r in by.get((run, path), [])]
            if ref and new:
                ratios = [n / o for n, o in zip(new, ref, strict=True)]
                print(
                    f"{run:<9} {path} / reference seconds: {_median(ratios):.2f} "
                    f"(rounds {', '.join(f'{x:.2f}' for x in ratios)}); "
                    f"{_median(ref):.2f} s -> {_median(new):.2f} s"
                )
    print()
    families = sorted({f for r in results for f in r.tally.families})
    fam_cols = [(run, path) for run in ("backfill", "cycle", "late") for path in PATHS]
    fam_cols = [c for c in fam_cols if c in by]
    print(f"{'points per family':<28}" + "".join(f"{r + ' ' + _short(p):>16}" for r, p in fam_cols))
    for family in families:
        counts = [by[c][0].tally.families.get(family, 0) for c in fam_cols]
        print(f"{family:<28}" + "".join(f"{n:>16,}" for n in counts))
    for c in fam_cols:
        total = sum(by[c][0].tally.families.values())
        live = by[c][0].tally.families.get("feed_live_share", 0)
        if total:
            print(f"{c[0]} {c[1]}: feed_live_share is {live / total:.0%} of {total:,} points")
    for r in results:
        if r.report.skipped:
            print(f"{r.run} {r.path}: skipped {dict(r.report.skipped)}")
        if r.tally.slowest_query_s > _DEFAULT_TIMEOUT_S:
            print(
                f"{r.run} {r.path}: one query took {r.tally.slowest_query_s:.1f} s, more than "
                f"the default IOC_INFLUX_TIMEOUT of {_DEFAULT_TIMEOUT_S:g} s"
            )


def _one_path(
    path: str,
    n: int,
    *,
    settings: Settings,
    catalog: Catalog,
    store: Store,
    timed: TimedStore,
    devices: Sequence[_Site],
    args: argparse.Namespace,
    hour0: int,
) -> list[_Result]:
    """Backfill (unless --no-backfill), first cycle, steady cycle, late cycle of one path."""
    start = hour0 - args.hours * _HOUR
    results = []
    store.command(f'DROP MEASUREMENT "{INDICATOR_MEASUREMENT}"')  # every run writes afresh
    engine = _engine(path, settings, catalog, timed)
    keep = args.store_baselines
    if not args.no_backfill:
        results.append(
            _measure("backfill", path, store, timed, engine.backfill(start, hour0), baselines=keep)
        )
    for run, minute in (("cycle", 5), ("steady", 6)):
        report = engine.run_cycle(now_ns=hour0 + minute * _MINUTE)
        results.append(_measure(run, path, store, timed, report, baselines=keep))
    store.write(_late(devices, hour0, n))
    report = engine.run_cycle(now_ns=hour0 + 7 * _MINUTE)
    results.append(_measure("late", path, store, timed, report, baselines=keep))
    return results


def measure(settings: Settings, args: argparse.Namespace, var: Path) -> None:
    """Seed, run both paths in alternating order, print the figures."""
    devices, feeds = _sites(args.wards, args.first_wards, args.traffic)
    registry = var / "bench-sources.toml"
    registry.write_text(_registry_toml(devices, feeds, args.minutes_step), encoding="utf-8")
    catalog: Catalog = load_catalog(INDICATORS_FILE, registry)
    hour0 = time.time_ns() // _HOUR * _HOUR
    start = hour0 - args.hours * _HOUR
    first = start - _NOWCAST_HISTORY_H * _HOUR
    wards = len({d.ward for d in devices})
    provinces = len({f.province for f in feeds})
    print(
        f"{len(devices):,} devices in {wards:,} wards ({args.wards}x), {len(feeds)} feeds in "
        f"{provinces} provinces; devices every {args.minutes_step} min, feeds hourly, "
        f"{args.hours} h measured + {_NOWCAST_HISTORY_H} h NowCast history, "
        f"{args.rounds} round(s)"
    )
    timed = TimedStore(settings, keep_lines=args.store_baselines)
    results: list[_Result] = []
    with Store(settings) as store, timed:
        version = store.ping()
        _seed(store, _readings(devices, feeds, first, hour0, args.minutes_step))
        n = 0
        for round_ in range(args.rounds):
            paths = (*PATHS, *LEVERS) if args.levers else PATHS
            order = paths if round_ % 2 == 0 else paths[::-1]
            for path in order:
                n += 1
                results.extend(
                    _one_path(
                        path,
                        n,
                        settings=settings,
                        catalog=catalog,
                        store=store,
                        timed=timed,
                        devices=devices,
                        args=args,
                        hour0=hour0,
                    )
                )
                print(f"round {round_ + 1}: {path} done", flush=True)
        _check(store, settings, hour0)
    print()
    _print(results)
    cycles = [r.report.seconds for r in results if r.run == "cycle" and r.path == "default"]
    sources = len(devices) + len(feeds)
    per_source = _median(cycles) / sources
    print()
    print(
        f"first live cycle, default path: {_median(cycles):.2f} s for {sources:,} sources; "
        f"at this rate a {settings.engine_interval:g} s interval holds ~"
        f"{settings.engine_interval / per_source:,.0f} sources (linear estimate)"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; InfluxDB {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="hours of periods backfilled")
    parser.add_argument(
        "--minutes-step", type=int, default=10, help="minutes between two device readings"
    )
    parser.add_argument(
        "--wards", type=int, default=1, help="sources per ward and feeds per province (1, 2, 4)"
    )
    parser.add_argument("--first-wards", type=int, default=0, help="first N wards only (0: all)")
    parser.add_argument("--traffic", action="store_true", help="a traffic counter per ward too")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of both paths, alternated")
    parser.add_argument("--no-backfill", action="store_true", help="live cycles only")
    parser.add_argument(
        "--levers", action="store_true", help="also the default path less one lever at a time"
    )
    parser.add_argument(
        "--store-baselines",
        action="store_true",
        help="also replay each run's queries and writes alone against InfluxDB",
    )
    args = parser.parse_args()
    if args.hours < 1 or not 1 <= args.minutes_step <= 60 or 60 % args.minutes_step:
        parser.error("--hours must be >= 1 and --minutes-step must divide 60")
    if args.wards < 1 or args.rounds < 1:
        parser.error("--wards and --rounds must be >= 1")
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as var:
        mqtt, influx, rpc = free_ports(3)  # Mosquitto is not started: its port is only set
        settings = load_settings(
            {
                "IOC_VAR_DIR": str(Path(var)),
                "IOC_MQTT_PORT": str(mqtt),
                "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
                "IOC_INFLUX_RPC_PORT": str(rpc),
                "IOC_INFLUX_DB": "ioc_bench",
                "IOC_INFLUX_TIMEOUT": str(_TIMEOUT_S),
                "IOC_LOG_LEVEL": "WARNING",
            }
        )
        settings = replace(settings, engine_lookback="3h")
        with LocalStack(settings).running(services=("influxdb",)):  # the engine needs no more
            measure(settings, args, Path(var))


if __name__ == "__main__":
    main()
