"""The indicator API under gunicorn, as ratios to the same InfluxQL sent straight to InfluxDB.

Run: ``.venv/bin/python -m bench.api [--seconds 10] [--connections 8] [--days 30] [--wards 0]``

Quick run: ``.venv/bin/python -m bench.api --quick`` (2 s per query, 3 days, 300 wards)

It starts its own Mosquitto and InfluxDB (the local stack code) in a temporary folder on free
loopback ports and seeds what the engine would have written: hourly ``vn_aqi`` for the 34
provinces, every ward (3,321, or the first ``--wards``) and the nation over ``--days`` days
ending at the current hour (about 2.4 million points for 30 days), and daily
``task_completion_rate`` for the 34 provinces. Seeding is setup and is reported, not compared.

It then starts ``ioc api`` (gunicorn, ``IOC_API_WORKERS`` sync workers, response cache off, a
rate limit nobody reaches) with a read key, and measures three representative requests:

* latest: ``GET /api/v1/indicators/vn_aqi/values?level=province`` (34 values);
* series: ``GET /api/v1/indicators/vn_aqi/series?place=01&start=<now-30d>&end=<now>&interval=1h``;
* ranking: ``GET /api/v1/indicators/vn_aqi/ranking?level=province``.

Baseline, in the same run: the InfluxQL each request makes the API send (text and bound
parameters captured by running the API's own ``IndicatorData`` once with a recording store),
sent straight to InfluxDB's ``/query`` as ``Store.query`` sends it, by the same load generator.

The load generator runs in separate processes (``--processes``, spawned once): ``--connections``
threads in all, each with its own ``http.client`` connection, each sending the request again as
soon as the answer is read, for ``--seconds``. gunicorn's sync workers close the connection after
every answer, so API requests include a loopback TCP connect; InfluxDB keeps its connections.
Every phase is preceded by an unrecorded warm-up of a second. It prints requests per second,
p50/p99 latency and errors of each, the ratios API / InfluxDB, and the CPU seconds per request of
the API processes (gunicorn master and workers, from ``/proc``) and of InfluxDB. A second API run
with ``IOC_API_CACHE_SECONDS=5`` shows the per-worker cache (``--no-cache-run`` skips it).
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from ioc.api.data import IndicatorData, Scope
from ioc.api.keys import KeyStore
from ioc.catalog import Indicator, get_catalog
from ioc.engine import IndicatorValue, Level
from ioc.places import get_places
from ioc.settings import PROJECT_ROOT, Settings, load_settings
from ioc.stack import LocalStack
from ioc.store import Point, Store
from ioc.store.client import Epoch, ParamValue, Series

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_BATCH = 5_000
_WARMUP_S = 1.0
_PROVINCE = "01"  # the series is Hà Nội's
_TICK = os.sysconf("SC_CLK_TCK")


def _free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


# --- seeding --------------------------------------------------------------------------------------


def _aqi(code: int, hour: int) -> float:
    """A plausible hourly VN_AQI: a daily wave around a level that varies by place."""
    daily = math.sin(2 * math.pi * ((hour % 24) - 8) / 24)
    return round(max(5.0, 35.0 + (code * 37) % 110 + 25.0 * daily + (code + hour) % 9), 1)


def _hour_points(
    bands: Indicator, hour_ns: int, wards: Sequence[tuple[str, str]], provinces: Sequence[str]
) -> list[Point]:
    """One hour of vn_aqi: every ward, every province and the nation, as the engine writes them."""
    hour = hour_ns // _HOUR_NS
    points = []
    for ward, province in wards:
        value = _aqi(int(ward), hour)
        band = bands.band_for(value)
        points.append(
            IndicatorValue(
                "vn_aqi",
                "AQI",
                Level.WARD,
                hour_ns,
                value,
                None if band is None else band.key,
                province,
                ward,
                origin=f"{ward}-air",
                origin_ward=ward,
                origin_province=province,
            ).to_point()
        )
    for province in provinces:
        value = _aqi(int(province) * 101, hour)
        band = bands.band_for(value)
        points.append(
            IndicatorValue(
                "vn_aqi",
                "AQI",
                Level.PROVINCE,
                hour_ns,
                value,
                None if band is None else band.key,
                province,
                coverage=40,
                expected=45,
                sources=45,
                origin=f"{province}-air-x",
                origin_province=province,
            ).to_point()
        )
    points.append(
        IndicatorValue(
            "vn_aqi", "AQI", Level.NATION, hour_ns, _aqi(7, hour), None, coverage=34, expected=34
        ).to_point()
    )
    return points


def seed_hours(env: dict[str, str], hours: Sequence[int], ward_count: int) -> int:
    """Write the vn_aqi values of these hours (a seeding process's share); return the count."""
    places = get_places()
    chosen = places.wards() if ward_count <= 0 else places.wards()[:ward_count]
    wards = [(w.code, w.province_code) for w in chosen]
    provinces = [p.code for p in places.provinces()]
    bands = get_catalog().indicators["vn_aqi"]
    written = 0
    batch: list[Point] = []
    with Store(load_settings(env)) as store:
        for hour_ns in hours:
            batch.extend(_hour_points(bands, hour_ns, wards, provinces))
            while len(batch) >= _BATCH:
                written += store.write(batch[:_BATCH], rp="derived")
                del batch[:_BATCH]
        written += store.write(batch, rp="derived")
    return written


def _seed(env: dict[str, str], pool: Executor, processes: int, days: int, wards: int) -> None:
    end = time.time_ns() // _HOUR_NS * _HOUR_NS
    hours = [end - h * _HOUR_NS for h in range(days * 24)]
    began = time.perf_counter()
    shares = [pool.submit(seed_hours, env, hours[i::processes], wards) for i in range(processes)]
    count = sum(share.result() for share in shares)
    settings = load_settings(env)
    day_ns = 24 * _HOUR_NS
    tasks = [
        IndicatorValue(
            "task_completion_rate",
            "%",
            Level.PROVINCE,
            end // day_ns * day_ns - d * day_ns,
            round(40.0 + (int(p.code) * 7 + d) % 55 + 0.25, 2),
            None,
            p.code,
        ).to_point()
        for p in get_places().provinces()
        for d in range(days)
    ]
    with Store(settings) as store:
        count += store.write(tasks, rp="derived")
    seconds = time.perf_counter() - began
    print(
        f"seeded {count:,} derived points ({days} days) in {seconds:.1f} s "
        f"({count / seconds:,.0f} points/s, {processes} processes)"
    )


# --- the queries ----------------------------------------------------------------------------------


class RecordingStore(Store):
    """A Store that remembers the queries it runs (text, bound parameters, epoch)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.queries: list[tuple[str, dict[str, ParamValue], Epoch | None]] = []

    def query(
        self,
        text: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        epoch: Epoch | None = "ns",
    ) -> tuple[Series, ...]:
        self.queries.append((text, dict(params or {}), epoch))
        return super().query(text, params, epoch=epoch)


@dataclass(frozen=True, slots=True)
class Target:
    """One request to load: a path on a host, with headers."""

    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Query:
    """A representative API request and the InfluxDB request it makes the API send."""

    label: str
    api: Target
    influx: Target
    answer: str  # what the captured query returned, to show the data is there


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _queries(settings: Settings, api_url: str, key: str, days: int) -> list[Query]:
    """The three requests, and the InfluxQL the API runs for each (captured, not rewritten)."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    store = RecordingStore(settings)
    reader = IndicatorData(settings, get_catalog(settings.registry_file), store, get_places())
    vn_aqi = reader.indicator("vn_aqi")
    now_ns = int(now.timestamp()) * _NS
    latest = reader.latest(vn_aqi, "province", Scope(None), province=None, now_ns=now_ns)
    series = reader.series(
        vn_aqi,
        reader.place(_PROVINCE, Scope(None)),
        start=start,
        end=now,
        interval_s=3600,
        function="mean",
    )
    ranking = reader.ranking(vn_aqi, "province", Scope(None), province=None, now_ns=now_ns)
    store.close()
    if len(store.queries) != 3:
        raise SystemExit(f"expected one query per request, the API ran {len(store.queries)}")
    api = urlsplit(api_url)
    influx = urlsplit(settings.influx_url)
    api_headers = (("X-API-Key", key), ("Accept", "application/json"))
    paths = [
        "/api/v1/indicators/vn_aqi/values?level=province",
        "/api/v1/indicators/vn_aqi/series?"
        + urlencode({"place": _PROVINCE, "start": _iso(start), "end": _iso(now), "interval": "1h"}),
        "/api/v1/indicators/vn_aqi/ranking?level=province",
    ]
    labels = ["latest, 34 provinces", f"series {days}d hourly", "ranking, 34 provinces"]
    answers = [
        f"{len(latest)} values",
        f"{len(series)} points",
        f"{sum(1 for i in ranking['items'] if i['rank'] is not None)} ranked",
    ]
    out = []
    for label, path, (text, params, epoch), answer in zip(
        labels, paths, store.queries, answers, strict=True
    ):
        fields = {"db": settings.influx_db, "q": text, "params": orjson.dumps(params).decode()}
        if epoch is not None:
            fields["epoch"] = epoch
        out.append(
            Query(
                label,
                Target(api.hostname or "", api.port or 80, path, api_headers),
                Target(influx.hostname or "", influx.port or 80, f"/query?{urlencode(fields)}", ()),
                answer,
            )
        )
    return out


# --- the load generator (runs in its own processes) -----------------------------------------------


def load(target: Target, threads: int, start_at: float, seconds: float) -> dict[str, Any]:
    """``threads`` connections sending ``target`` back to back from ``start_at`` for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    sizes = [0] * threads
    headers = dict(target.headers)

    def run(n: int) -> None:
        connection = http.client.HTTPConnection(target.host, target.port, timeout=60)
        mine = latencies[n]
        while time.time() < start_at:
            time.sleep(0.001)
        stop = time.perf_counter() + seconds
        while True:
            began = time.perf_counter()
            if began >= stop:
                break
            try:
                connection.request("GET", target.path, headers=headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                connection.close()
                continue
            if response.status != 200:
                errors[n] += 1
                continue
            mine.append(time.perf_counter() - began)
            sizes[n] = len(body)
        connection.close()

    cpu = time.process_time()
    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {
        "latencies": [x for part in latencies for x in part],
        "errors": sum(errors),
        "bytes": max(sizes),
        "cpu": time.process_time() - cpu,
    }


def _ready(_: int) -> int:
    return os.getpid()


# --- CPU accounting -------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its reaped children (recycled workers) and its live children."""
    stat = _stat(pid)
    if not stat:
        return float("nan")
    total = sum(int(stat[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child and int(child[1]) == pid:
                total += int(child[11]) + int(child[12])
    return total / _TICK


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    bytes: int
    cpu_s: dict[str, float]  # server-side processes, and the load generator

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def _percentile(sorted_values: Sequence[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


class LoadGenerator:
    """Spawned load processes, reused by every phase."""

    def __init__(self, pool: Executor, processes: int, connections: int) -> None:
        self.pool = pool
        self.processes = processes
        self.shares = [
            connections // processes + (i < connections % processes) for i in range(processes)
        ]

    def measure(self, target: Target, seconds: float, servers: Mapping[str, int]) -> Result:
        self._run(target, _WARMUP_S)
        before = {name: tree_cpu_seconds(pid) for name, pid in servers.items()}
        parts = self._run(target, seconds)
        after = {name: tree_cpu_seconds(pid) for name, pid in servers.items()}
        latencies = sorted(x for part in parts for x in part["latencies"])
        cpu = {name: after[name] - before[name] for name in servers}
        cpu["load generator"] = sum(part["cpu"] for part in parts)
        return Result(
            len(latencies),
            seconds,
            _percentile(latencies, 0.50) * 1000,
            _percentile(latencies, 0.99) * 1000,
            sum(part["errors"] for part in parts),
            max(part["bytes"] for part in parts),
            cpu,
        )

    def _run(self, target: Target, seconds: float) -> list[dict[str, Any]]:
        start_at = time.time() + 0.2
        futures = [self.pool.submit(load, target, n, start_at, seconds) for n in self.shares if n]
        return [future.result() for future in futures]


# --- the API process ------------------------------------------------------------------------------


@contextmanager
def api_server(env: dict[str, str], log_path: Path) -> Iterator[int]:
    """``ioc api`` (gunicorn) as a subprocess until the block ends; yields the master's pid."""
    command = Path(sys.executable).with_name("ioc")
    argv = [str(command), "api"] if command.exists() else [sys.executable, "-m", "ioc.cli", "api"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env={**clean, **env}, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://{env['IOC_API_HOST']}:{env['IOC_API_PORT']}/api/v1/health/live"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ioc api did not start; see {log_path}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)  # the second worker boots a moment after the first answers
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the run --------------------------------------------------------------------------------------


def _print(rows: Sequence[tuple[Query, Result, Result, Result | None]], workers: int) -> None:
    head = (
        f"{'query':<22}{'':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'KiB':>8}{'CPU ms/req':>12}"
    )
    print(head)
    print("-" * len(head))

    def line(label: str, who: str, r: Result, cpu_ms: float) -> None:
        print(
            f"{label:<22}{who:>8}{r.rate:>9,.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
            f"{r.bytes / 1024:>8.1f}{cpu_ms:>12.2f}"
        )

    def per_request(r: Result, names: Sequence[str]) -> float:
        return 1000 * sum(r.cpu_s[n] for n in names) / max(r.requests, 1)

    for query, api, influx, cached in rows:
        line(query.label, "API", api, per_request(api, ("API", "InfluxDB")))
        line("", "InfluxDB", influx, per_request(influx, ("InfluxDB",)))
        if cached is not None:
            line("", "API 5s$", cached, per_request(cached, ("API", "InfluxDB")))
    print()
    head = f"{'API / InfluxDB':<22}{'req/s':>9}{'p50':>9}{'p99':>9}{'CPU/req':>9}   data"
    print(head)
    print("-" * len(head))
    for query, api, influx, _ in rows:
        cpu_api = per_request(api, ("API", "InfluxDB"))
        cpu_influx = per_request(influx, ("InfluxDB",))
        print(
            f"{query.label:<22}{api.rate / influx.rate:>9.2f}{api.p50_ms / influx.p50_ms:>9.2f}"
            f"{api.p99_ms / influx.p99_ms:>9.2f}{cpu_api / cpu_influx:>9.2f}   {query.answer}"
        )
    print()
    print("CPU seconds during each measured phase (server processes and the load generator):")
    for query, api, influx, cached in rows:
        for who, r in (("API", api), ("InfluxDB", influx), ("API 5s$", cached)):
            if r is not None:
                shown = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r.cpu_s.items())
                print(f"  {query.label:<22}{who:>9}: {shown}")
    print()
    print(
        f"API: `ioc api`, {workers} gunicorn sync workers, cache off (IOC_API_CACHE_SECONDS=0) "
        "unless marked '5s$' (5 s per-worker cache); CPU ms/req of the API rows counts the API "
        "processes and InfluxDB, of the InfluxDB rows InfluxDB alone."
    )


def measure(args: argparse.Namespace, var: Path) -> None:
    mqtt, influx, rpc, api_port = _free_ports(4)
    env = {
        "IOC_VAR_DIR": str(var),
        "IOC_MQTT_PORT": str(mqtt),
        "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
        "IOC_INFLUX_RPC_PORT": str(rpc),
        "IOC_INFLUX_DB": "ioc_bench",
        "IOC_INFLUX_TIMEOUT": "60",
        "IOC_LOG_LEVEL": "WARNING",
        "IOC_API_HOST": "127.0.0.1",
        "IOC_API_PORT": str(api_port),
        "IOC_API_WORKERS": str(args.workers),
        "IOC_API_KEYS_FILE": str(var / "api" / "keys.json"),
        "IOC_API_RATE_LIMIT": "100000000",
        "IOC_API_CACHE_SECONDS": "0",
    }
    settings = load_settings(env)
    spawn = get_context("spawn")
    with ExitStack() as stack:
        statuses = stack.enter_context(LocalStack(settings).running())
        influx_pid = next(s.pid for s in statuses if s.name == "influxdb" and s.pid is not None)
        pool = stack.enter_context(ProcessPoolExecutor(args.processes, mp_context=spawn))
        list(pool.map(_ready, range(args.processes)))  # spawn them before measuring anything
        with Store(settings) as store:
            store.ensure_schema()
            version = store.ping()
        _seed(env, pool, args.processes, args.days, args.wards)
        key = KeyStore(settings.api_keys_path).create("bench", "read")[1]
        queries = _queries(settings, f"http://127.0.0.1:{api_port}", key, args.days)
        generator = LoadGenerator(pool, args.processes, args.connections)
        results: dict[str, list[Result]] = {"api": [], "influx": [], "cached": []}
        with api_server(env, var / "api.log") as master:
            servers = {"API": master, "InfluxDB": influx_pid}
            for query in queries:
                results["api"].append(generator.measure(query.api, args.seconds, servers))
                results["influx"].append(
                    generator.measure(query.influx, args.seconds, {"InfluxDB": influx_pid})
                )
        if not args.no_cache_run:
            cached_env = {**env, "IOC_API_CACHE_SECONDS": "5"}
            with api_server(cached_env, var / "api-cached.log") as master:
                servers = {"API": master, "InfluxDB": influx_pid}
                for query in queries:
                    results["cached"].append(generator.measure(query.api, args.seconds, servers))
    print()
    cached: list[Result | None] = list(results["cached"]) or [None] * len(queries)
    _print(list(zip(queries, results["api"], results["influx"], cached, strict=True)), args.workers)
    print(
        f"load: {args.connections} connections in {args.processes} processes, {args.seconds:g} s "
        f"per phase after {_WARMUP_S:g} s of warm-up"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; InfluxDB {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (IOC_API_WORKERS)")
    parser.add_argument("--days", type=int, default=30, help="days of hourly values seeded")
    parser.add_argument("--wards", type=int, default=0, help="first N wards only (0: all)")
    parser.add_argument("--no-cache-run", action="store_true", help="skip the cached API run")
    parser.add_argument("--quick", action="store_true", help="2 s phases, 3 days, 300 wards")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.days, args.wards = 2.0, 3, 300
    if args.seconds <= 0 or args.days < 1 or args.connections < 1 or args.processes < 1:
        parser.error("--seconds, --days, --connections and --processes must be positive")
    args.processes = min(args.processes, args.connections)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-api-") as var:
        measure(args, Path(var))


if __name__ == "__main__":
    main()
