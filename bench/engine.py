"""One engine cycle over every ward and province, as ratios to store baselines from the same run.

Run: ``.venv/bin/python -m bench.engine [--hours 24] [--minutes-step 10] [--wards 0] [--traffic]``

Quick run: ``.venv/bin/python -m bench.engine --hours 3 --minutes-step 30 --wards 300``

It starts its own Mosquitto and InfluxDB (the local stack code) in a temporary folder on free
loopback ports, registers an air-quality station in every ward (3,321; with ``--traffic`` a
traffic counter too) and a public-service and a task feed in every province (34), and seeds a
day of readings (plus the 11 hours before it that NowCast needs) ending at the start of the
current hour; a device promises a reading every ``--minutes-step`` minutes (its expected
interval), a feed one an hour. Seeding is setup and is reported but not compared. It then
measures, in one run:

* the engine: ``Engine.backfill`` of the day (hourly periods and 15-minute live-ness periods)
  and one live ``Engine.run_cycle`` five minutes after the hour with the default 3 h lookback;
* baseline A (read): the engine's own InfluxQL queries, same texts and parameters, replayed with
  ``Store.query`` (what the database and the HTTP/JSON client cost alone);
* baseline B (write): the engine's own derived lines, written again under another measurement
  with ``Store.write_lines`` in batches of 5,000 (what the database costs to store them).

For each engine run it prints seconds, periods, points written and points per second, the ratio
engine / (A + B) and where the engine's time went (queries, line-protocol encoding, sending, and
the rest: its own Python computation), measured by a ``Store`` subclass that times each call.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine import CycleReport, Engine
from ioc.places import get_places
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack
from ioc.store import Point, Store
from ioc.store.client import Epoch, ParamValue, Series

_NS = 1_000_000_000
_MINUTE = 60 * _NS
_HOUR = 3600 * _NS
_NOWCAST_HISTORY_H = 11  # NowCast of the first hour reads the 11 hours before it
_BATCH = 5_000
_TIMEOUT_S = 600.0  # generous, so that a slow query is measured rather than aborted
_DEFAULT_TIMEOUT_S = 10.0  # IOC_INFLUX_TIMEOUT's default, flagged if one query takes longer
_BASELINE_MEASUREMENT = "bench_indicator"


def _free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


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


def _sites(wards: int, traffic: bool) -> tuple[list[_Site], list[_Site]]:
    """Devices (one air station, optionally one traffic counter, per ward) and province feeds."""
    places = get_places()
    chosen = places.wards() if wards <= 0 else places.wards()[:wards]
    devices = [
        _Site(f"{w.code}-air", "air", w.province_code, w.code, i) for i, w in enumerate(chosen)
    ]
    if traffic:
        devices += [
            _Site(f"{w.code}-traffic", "traffic", w.province_code, w.code, i)
            for i, w in enumerate(chosen)
        ]
    provinces = sorted({w.province_code for w in chosen})
    feeds = [
        _Site(f"{code}-{kind}", kind, code, None, i)
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
    lines: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


class TimedStore(Store):
    """A Store that adds up the time spent in query, write and write_lines."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
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
            self.tally.lines[rp].extend(lines)


# --- the measurements -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Result:
    label: str
    report: CycleReport
    tally: _Tally
    read_s: float  # baseline A
    write_s: float  # baseline B
    derived: int  # lines the engine wrote to rp "derived"


def _replay_queries(store: Store, tally: _Tally) -> float:
    began = time.perf_counter()
    for text, params, epoch in tally.queries:
        store.query(text, params, epoch=epoch)
    return time.perf_counter() - began


def _rewrite_lines(store: Store, lines: Sequence[str]) -> float:
    """The engine's derived lines under another measurement, in the engine's batch size."""
    renamed = [_BASELINE_MEASUREMENT + line.removeprefix("indicator") for line in lines]
    began = time.perf_counter()
    for first in range(0, len(renamed), _BATCH):
        store.write_lines(renamed[first : first + _BATCH], rp="derived")
    return time.perf_counter() - began


def _measure(label: str, store: Store, timed: TimedStore, run: CycleReport) -> _Result:
    tally, timed.tally = timed.tally, _Tally()
    derived = tally.lines.get("derived", [])
    read_s = _replay_queries(store, tally)
    write_s = _rewrite_lines(store, derived)
    return _Result(label, run, tally, read_s, write_s, len(derived))


def _seed(store: Store, points: Iterator[Point]) -> int:
    began = time.perf_counter()
    count = 0
    for batch in _batches(points, _BATCH):
        count += store.write(batch)
    seconds = time.perf_counter() - began
    print(f"seeded {count:,} raw points in {seconds:.1f} s ({count / seconds:,.0f} points/s)")
    return count


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


def _print(results: Sequence[_Result]) -> None:
    head = f"{'':<22}" + "".join(f"{r.label:>16}" for r in results)
    print(head)
    print("-" * len(head))

    def row(name: str, values: Sequence[str]) -> None:
        print(f"{name:<22}" + "".join(f"{v:>16}" for v in values))

    row("seconds per cycle", [f"{r.report.seconds:.2f}" for r in results])
    row("periods", [f"{r.report.periods:,}" for r in results])
    row("points written", [f"{r.report.points:,}" for r in results])
    row("points written / s", [f"{r.report.points / r.report.seconds:,.0f}" for r in results])
    row("queries", [f"{len(r.tally.queries):,}" for r in results])
    row("  in store.query s", [f"{r.tally.query_s:.2f}" for r in results])
    row("  encoding lines s", [f"{r.tally.write_s - r.tally.send_s:.2f}" for r in results])
    row("  sending lines s", [f"{r.tally.send_s:.2f}" for r in results])
    rest = [r.report.seconds - r.tally.query_s - r.tally.write_s for r in results]
    row("  computing s (rest)", [f"{s:.2f}" for s in rest])
    row("slowest query s", [f"{r.tally.slowest_query_s:.2f}" for r in results])
    row("baseline A: read s", [f"{r.read_s:.2f}" for r in results])
    row("baseline B: write s", [f"{r.write_s:.2f}" for r in results])
    row("  B points / s", [f"{r.derived / r.write_s:,.0f}" for r in results])
    row("engine / (A + B)", [f"{r.report.seconds / (r.read_s + r.write_s):.2f}" for r in results])
    row(
        "computing share",
        [f"{s / r.report.seconds:.0%}" for s, r in zip(rest, results, strict=True)],
    )
    for r in results:
        if r.report.skipped:
            print(f"{r.label}: skipped {dict(r.report.skipped)}")
        if r.tally.slowest_query_s > _DEFAULT_TIMEOUT_S:
            print(
                f"{r.label}: one query took {r.tally.slowest_query_s:.1f} s, more than the "
                f"default IOC_INFLUX_TIMEOUT of {_DEFAULT_TIMEOUT_S:g} s"
            )


def measure(settings: Settings, args: argparse.Namespace, var: Path) -> None:
    """Seed, run the engine, replay its work as baselines, print the figures."""
    devices, feeds = _sites(args.wards, args.traffic)
    registry = var / "bench-sources.toml"
    registry.write_text(_registry_toml(devices, feeds, args.minutes_step), encoding="utf-8")
    catalog: Catalog = load_catalog(INDICATORS_FILE, registry)
    hour0 = time.time_ns() // _HOUR * _HOUR
    start = hour0 - args.hours * _HOUR
    first = start - _NOWCAST_HISTORY_H * _HOUR
    wards = len({d.ward for d in devices})
    provinces = len({f.province for f in feeds})
    print(
        f"{len(devices):,} devices in {wards:,} wards, {len(feeds)} feeds in {provinces} "
        f"provinces; devices every {args.minutes_step} min, feeds hourly, "
        f"{args.hours} h measured + {_NOWCAST_HISTORY_H} h NowCast history"
    )
    timed = TimedStore(settings)  # bound here: Store.__enter__ is typed to return a Store
    with Store(settings) as store, timed:
        version = store.ping()
        _seed(store, _readings(devices, feeds, first, hour0, args.minutes_step))
        engine = Engine(settings, catalog, timed)
        backfill = engine.backfill(start, hour0)
        results = [_measure(f"backfill {args.hours}h", store, timed, backfill)]
        cycle = engine.run_cycle(now_ns=hour0 + 5 * _MINUTE)
        results.append(
            _measure(f"cycle ({settings.engine_lookback})", store, timed, cycle),
        )
        _check(store, settings, hour0)
    print()
    _print(results)
    print()
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; InfluxDB {version}"
    )
    print(
        "engine / (A + B) is the engine's time over the database's time for the same reads and "
        "writes; above 1 is the engine's own Python work (computing, encoding, parsing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24, help="hours of periods measured")
    parser.add_argument(
        "--minutes-step", type=int, default=10, help="minutes between two device readings"
    )
    parser.add_argument("--wards", type=int, default=0, help="first N wards only (0: all)")
    parser.add_argument("--traffic", action="store_true", help="a traffic counter per ward too")
    args = parser.parse_args()
    if args.hours < 1 or not 1 <= args.minutes_step <= 60 or 60 % args.minutes_step:
        parser.error("--hours must be >= 1 and --minutes-step must divide 60")
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as var:
        mqtt, influx, rpc = _free_ports(3)
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
        with LocalStack(settings).running():
            measure(settings, args, Path(var))


if __name__ == "__main__":
    main()
