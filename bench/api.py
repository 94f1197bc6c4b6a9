"""The indicator API under gunicorn, as ratios to the same InfluxQL sent straight to InfluxDB.

Run: ``.venv/bin/python -m bench.api [--seconds 5] [--rounds 3] [--connections 8] [--days 30]``
(``--gunicorn '--worker-class gthread --threads 4'`` runs this tree's API under other gunicorn
options, through deploy/gunicorn.conf.py)

Quick run: ``.venv/bin/python -m bench.api --quick`` (2 s per phase, 2 rounds, 3 days, 300 wards)

Before/after in one run: ``--compare-tree /tmp/api-before`` (a checkout of another commit, e.g.
``git worktree add /tmp/api-before HEAD``) starts a second API from that tree beside this one;
every round measures both APIs and InfluxDB, and the ratios of both are printed.

It starts its own Mosquitto, InfluxDB and Alertmanager (the local stack code) in a temporary
folder on free loopback ports and seeds what the engine and the collectors would have written:
hourly ``vn_aqi`` for the 34 provinces, every ward (3,321, or the first ``--wards``) and the
nation over ``--days`` days ending at the current hour (about 2.4 million points for 30 days),
daily ``task_completion_rate`` for the 34 provinces, and an hourly record of every registered
source in its kind's measurement (what ``GET /feeds`` reads). Seeding is setup and is reported,
not compared.

It then starts ``ioc api`` (gunicorn, ``IOC_API_WORKERS`` sync workers, response cache off, a
rate limit nobody reaches) with a read key, and measures every data resource a wall or a
dashboard polls, each with the answer a wall asks for:

* latest: ``GET /api/v1/indicators/vn_aqi/values?level=province`` (34 values);
* series: ``GET /api/v1/indicators/vn_aqi/series?place=01&start=<now-30d>&end=<now>&interval=1h``;
* ranking: ``GET /api/v1/indicators/vn_aqi/ranking?level=province``;
* scorecard: ``GET /api/v1/provinces/01/scorecard`` (every indicator, with national ranks);
* feeds: ``GET /api/v1/feeds`` (last record of every registered source: one query per kind).

Baseline, in the same run: the InfluxQL each request makes the API send (text, bound parameters
and epoch captured by running the API's own ``IndicatorData`` once with a recording store), sent
straight to InfluxDB's ``/query`` as ``Store.query`` sends it (a POSTed form), by the same load
generator; a request that makes several queries (feeds: one per kind of source) is those
queries in turn on the same connection.

The load generator runs in separate processes (``--processes``, spawned once): ``--connections``
threads in all, each with its own ``http.client`` connection, each sending the request again as
soon as the answer is read, for ``--seconds``. gunicorn's sync workers close the connection after
every answer, so API requests include a loopback TCP connect; InfluxDB keeps its connections.
Every phase is preceded by an unrecorded warm-up of a second. The machine is shared and noisy,
so phases are interleaved: ``--rounds`` rounds, each measuring every resource through each API
and straight from InfluxDB, alternating which goes first; the ratio API / InfluxDB of each round
is taken between phases of the same round and the median and range over the rounds printed.
The last round's table shows requests per second, p50/p99 latency, errors, answer size and the
CPU seconds per request of the API processes (gunicorn master and workers, from ``/proc``) and
of InfluxDB. Because other work on a shared machine moves requests per second by a factor of
two between phases, the server CPU per request is compared too: InfluxDB's own CPU per direct
query over the CPU of the API processes and InfluxDB per API request (what the API costs on
top of the query, whatever else runs). A last API run with ``IOC_API_CACHE_SECONDS=5`` shows
the per-worker cache (``--no-cache-run`` skips it).
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
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
from ioc.stack import LocalStack, free_ports
from ioc.store import Point, Store
from ioc.store.client import Epoch, ParamValue, Series
from ioc.store.influxql import RECEIVED_FIELD

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_BATCH = 5_000
_WARMUP_S = 1.0
_PROVINCE = "01"  # the series and the scorecard are Hà Nội's
_TICK = os.sysconf("SC_CLK_TCK")


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
        records = seed_records(store, settings, hours)
    seconds = time.perf_counter() - began
    print(
        f"seeded {count:,} derived points ({days} days) and {records:,} source records in "
        f"{seconds:.1f} s ({(count + records) / seconds:,.0f} points/s, {processes} processes)"
    )


def seed_records(store: Store, settings: Settings, hours: Sequence[int]) -> int:
    """An hourly record of every registered source (what ``GET /feeds`` looks for), a few
    sources silent for the last day (stale) and one never heard from."""
    catalog = get_catalog(settings.registry_file)
    sources = catalog.registry.sources
    batch: list[Point] = []
    written = 0
    for n, source in enumerate(sources[1:], start=1):
        tags = {"province": source.province, "source": source.id}
        if source.ward is not None:
            tags["ward"] = source.ward
        measurement = catalog.kind(source.kind).measurement
        for hour_ns in hours[24 if n % 10 == 0 else 0 :]:
            at = hour_ns - (n * 7919 % 3600) * _NS  # sources do not all report on the hour
            batch.append(Point(measurement, {RECEIVED_FIELD: at // 1_000_000 + 850}, at, tags))
        if len(batch) >= _BATCH:
            written += store.write(batch)
            batch = []
    return written + store.write(batch)


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

    def taken(self) -> list[tuple[str, dict[str, ParamValue], Epoch | None]]:
        """The queries recorded since the last call."""
        out, self.queries = self.queries, []
        return out


@dataclass(frozen=True, slots=True)
class Target:
    """One request to load: HTTP requests (method, path, body) to a host, sent in turn on one
    connection, with headers."""

    host: str
    port: int
    requests: tuple[tuple[str, str, bytes | None], ...]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Query:
    """A representative API request and the InfluxDB requests it makes the API send."""

    label: str
    path: str
    influx: Target
    answer: str  # what the captured queries returned, to show the data is there


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _queries(settings: Settings, days: int) -> list[Query]:
    """The requests, and the InfluxQL the API runs for each (captured, not rewritten)."""
    now = datetime.now(tz=UTC).replace(microsecond=0)
    start = now - timedelta(days=days)
    store = RecordingStore(settings)
    reader = IndicatorData(settings, get_catalog(settings.registry_file), store, get_places())
    vn_aqi = reader.indicator("vn_aqi")
    now_ns = int(now.timestamp()) * _NS
    everyone = Scope(None)
    captured: list[tuple[str, str, str, list[tuple[str, dict[str, ParamValue], Epoch | None]]]] = []

    latest = reader.latest(vn_aqi, "province", everyone, province=None, now_ns=now_ns)
    captured.append(
        (
            "latest, 34 provinces",
            "/api/v1/indicators/vn_aqi/values?level=province",
            f"{len(latest)} values",
            store.taken(),
        )
    )
    place = reader.place(_PROVINCE, everyone)
    series = reader.series(vn_aqi, place, start=start, end=now, interval_s=3600, function="mean")
    window = {"place": _PROVINCE, "start": _iso(start), "end": _iso(now), "interval": "1h"}
    captured.append(
        (
            f"series {days}d hourly",
            "/api/v1/indicators/vn_aqi/series?" + urlencode(window),
            f"{len(series)} points",
            store.taken(),
        )
    )
    ranking = reader.ranking(vn_aqi, "province", everyone, province=None, now_ns=now_ns)
    ranked = sum(1 for i in ranking["items"] if i["rank"] is not None)
    captured.append(
        (
            "ranking, 34 provinces",
            "/api/v1/indicators/vn_aqi/ranking?level=province",
            f"{ranked} ranked",
            store.taken(),
        )
    )
    card = reader.scorecard(reader.province(_PROVINCE, everyone), now_ns)
    valued = sum(1 for i in card if i["value"] is not None)
    captured.append(
        (
            f"scorecard {_PROVINCE}",
            f"/api/v1/provinces/{_PROVINCE}/scorecard",
            f"{len(card)} indicators, {valued} with a value",
            store.taken(),
        )
    )
    feeds = reader.feeds(everyone, now_ns=now_ns)
    states = Counter(f["state"] for f in feeds)
    captured.append(
        (
            "feeds",
            "/api/v1/feeds",
            f"{len(feeds)} sources ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})",
            store.taken(),
        )
    )
    store.close()
    influx = urlsplit(settings.influx_url)
    out = []
    for label, path, answer, queries in captured:
        if not queries:
            raise SystemExit(f"{label}: the API ran no query")
        requests: list[tuple[str, str, bytes | None]] = []
        for text, params, epoch in queries:  # as Store.query sends them: a POSTed form
            fields = {"db": settings.influx_db, "q": text, "params": orjson.dumps(params).decode()}
            if epoch is not None:
                fields["epoch"] = epoch
            requests.append(("POST", "/query", urlencode(fields).encode()))
        form = (("Content-Type", "application/x-www-form-urlencoded"),)
        target = Target(influx.hostname or "", influx.port or 80, tuple(requests), form)
        out.append(
            Query(
                label,
                path,
                target,
                f"{answer}; {len(queries)} quer{'y' if len(queries) == 1 else 'ies'}",
            )
        )
    return out


def _api_target(query: Query, api: ApiServer) -> Target:
    headers = (("X-API-Key", api.key), ("Accept", "application/json"))
    return Target(api.host, api.port, (("GET", query.path, None),), headers)


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
            size = 0
            try:
                for method, path, body in target.requests:
                    connection.request(method, path, body=body, headers=headers)
                    response = connection.getresponse()
                    size += len(response.read())
                    if response.status != 200:
                        break
            except (OSError, http.client.HTTPException):
                errors[n] += 1
                connection.close()
                continue
            if response.status != 200:
                errors[n] += 1
                continue
            mine.append(time.perf_counter() - began)
            sizes[n] = size

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


# --- the API processes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiServer:
    """A running ``ioc api``: its name in the tables, address, key and master pid."""

    name: str
    host: str
    port: int
    key: str
    pid: int


@contextmanager
def api_server(
    env: dict[str, str],
    log_path: Path,
    root: Path | None = None,
    gunicorn: Sequence[str] = (),
) -> Iterator[int]:
    """``ioc api`` (gunicorn) as a subprocess until the block ends; yields the master's pid.

    ``root``: run the API of another checkout (its ``ioc`` package first on the path).
    ``gunicorn``: run gunicorn by hand (deploy/gunicorn.conf.py) with these options added."""
    command = Path(sys.executable).with_name("ioc")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    if gunicorn:
        config = str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py")
        binary = str(Path(sys.executable).with_name("gunicorn"))
        argv = [binary, "-c", config, *gunicorn, "ioc.api:create_app()"]
        cwd = PROJECT_ROOT
    elif root is None:
        argv = (
            [str(command), "api"] if command.exists() else [sys.executable, "-m", "ioc.cli", "api"]
        )
        cwd = PROJECT_ROOT
    else:
        argv = [sys.executable, "-m", "ioc.cli", "api"]
        cwd = root
        clean["PYTHONPATH"] = str(root)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env={**clean, **env}, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
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

Rounds = dict[tuple[str, str], list[Result]]
"""Results by (query label, who: an API's name or "InfluxDB"), one per round."""


def _per_request_cpu(r: Result, names: Sequence[str]) -> float:
    return 1000 * sum(r.cpu_s.get(n, 0.0) for n in names) / max(r.requests, 1)


def _print_last_round(
    queries: Sequence[Query], rounds: Rounds, apis: Sequence[str], cached: Mapping[str, Result]
) -> None:
    head = (
        f"{'query':<22}{'':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'KiB':>8}{'CPU ms/req':>12}"
    )
    print(head)
    print("-" * len(head))

    def line(label: str, who: str, r: Result, cpu_ms: float) -> None:
        print(
            f"{label:<22}{who:>10}{r.rate:>9,.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
            f"{r.bytes / 1024:>8.1f}{cpu_ms:>12.2f}"
        )

    for query in queries:
        label = query.label
        for name in apis:
            r = rounds[query.label, name][-1]
            line(label, name, r, _per_request_cpu(r, (name, "InfluxDB")))
            label = ""
        r = rounds[query.label, "InfluxDB"][-1]
        line("", "InfluxDB", r, _per_request_cpu(r, ("InfluxDB",)))
        if query.label in cached:
            r = cached[query.label]
            line("", f"{apis[0]} 5s$", r, _per_request_cpu(r, (apis[0], "InfluxDB")))
    print()


def _print_ratios(queries: Sequence[Query], rounds: Rounds, apis: Sequence[str]) -> None:
    head = f"{'req/s API / InfluxDB':<22}{'API':>10}{'median':>9}{'min':>7}{'max':>7}   rounds"
    print(head)
    print("-" * (len(head) + 20))
    for query in queries:
        label = query.label
        influx = rounds[query.label, "InfluxDB"]
        for name in apis:
            ratios = [
                a.rate / b.rate for a, b in zip(rounds[query.label, name], influx, strict=True)
            ]
            shown = " ".join(f"{r:.2f}" for r in ratios)
            print(
                f"{label:<22}{name:>10}{statistics.median(ratios):>9.2f}{min(ratios):>7.2f}"
                f"{max(ratios):>7.2f}   {shown}"
            )
            label = ""
    print()
    head = f"{'server CPU per request':<22}{'API':>10}{'median':>9}{'min':>7}{'max':>7}   rounds"
    print(head + "   (InfluxDB alone / API and its InfluxDB)")
    print("-" * (len(head) + 20))
    for query in queries:
        label = query.label
        influx = rounds[query.label, "InfluxDB"]
        for name in apis:
            pairs = zip(rounds[query.label, name], influx, strict=True)
            ratios = [
                _per_request_cpu(b, ("InfluxDB",)) / _per_request_cpu(a, (name, "InfluxDB"))
                for a, b in pairs
            ]
            shown = " ".join(f"{r:.2f}" for r in ratios)
            print(
                f"{label:<22}{name:>10}{statistics.median(ratios):>9.2f}{min(ratios):>7.2f}"
                f"{max(ratios):>7.2f}   {shown}"
            )
            label = ""
    print()
    print("data: " + "; ".join(f"{q.label}: {q.answer}" for q in queries))
    print()


def measure(args: argparse.Namespace, var: Path) -> None:
    mqtt, influx, rpc, alertmanager, api_port, other_port, cached_port = free_ports(7)
    env = {
        "IOC_VAR_DIR": str(var),
        "IOC_MQTT_PORT": str(mqtt),
        "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
        "IOC_INFLUX_RPC_PORT": str(rpc),
        "IOC_ALERTMANAGER_URL": f"http://127.0.0.1:{alertmanager}",
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
        queries = _queries(settings, args.days)
        generator = LoadGenerator(pool, args.processes, args.connections)
        by_hand = args.gunicorn.split()
        pid = stack.enter_context(api_server(env, var / "api.log", gunicorn=by_hand))
        apis = [ApiServer("API", "127.0.0.1", api_port, key, pid)]
        if args.compare_tree is not None:
            other_env = {**env, "IOC_API_PORT": str(other_port)}
            pid = stack.enter_context(
                api_server(other_env, var / "api-other.log", args.compare_tree)
            )
            apis.append(ApiServer("API other", "127.0.0.1", other_port, key, pid))
        rounds: Rounds = {}
        for n in range(args.rounds):
            for query in queries:
                phases: list[tuple[str, Target, dict[str, int]]] = [
                    (api.name, _api_target(query, api), {api.name: api.pid, "InfluxDB": influx_pid})
                    for api in apis
                ]
                phases.append(("InfluxDB", query.influx, {"InfluxDB": influx_pid}))
                if n % 2:
                    phases.reverse()
                for who, target, servers in phases:
                    result = generator.measure(target, args.seconds, servers)
                    rounds.setdefault((query.label, who), []).append(result)
            print(f"round {n + 1} of {args.rounds} done", flush=True)
        cached: dict[str, Result] = {}
        if not args.no_cache_run:
            cached_env = {**env, "IOC_API_PORT": str(cached_port), "IOC_API_CACHE_SECONDS": "5"}
            pid = stack.enter_context(api_server(cached_env, var / "api-cached.log"))
            with_cache = ApiServer("API", "127.0.0.1", cached_port, key, pid)
            for query in queries:
                servers = {"API": pid, "InfluxDB": influx_pid}
                target = _api_target(query, with_cache)
                cached[query.label] = generator.measure(target, args.seconds, servers)
    print()
    names = [api.name for api in apis]
    _print_last_round(queries, rounds, names, cached)
    _print_ratios(queries, rounds, names)
    print(
        f"API: `ioc api`, {args.workers} gunicorn sync workers (unless --gunicorn), cache off "
        "(IOC_API_CACHE_SECONDS=0) unless marked '5s$' (5 s per-worker cache); CPU ms/req "
        "of the API rows counts the API processes and InfluxDB, "
        "of the InfluxDB rows InfluxDB alone."
    )
    if args.gunicorn:
        print(f"'API': gunicorn -c deploy/gunicorn.conf.py {args.gunicorn} 'ioc.api:create_app()'")
    if args.compare_tree is not None:
        print(f"'API other': the API of {args.compare_tree}, same settings, same data, same run")
    print(
        f"load: {args.connections} connections in {args.processes} processes, {args.seconds:g} s "
        f"per phase after {_WARMUP_S:g} s of warm-up, {args.rounds} interleaved rounds"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; InfluxDB {version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (IOC_API_WORKERS)")
    parser.add_argument("--days", type=int, default=30, help="days of hourly values seeded")
    parser.add_argument("--wards", type=int, default=0, help="first N wards only (0: all)")
    parser.add_argument(
        "--compare-tree", type=Path, default=None, help="also run the API of this checkout"
    )
    parser.add_argument(
        "--gunicorn",
        default="",
        help="run this tree's API with gunicorn by hand and these options added "
        "(e.g. '--worker-class gthread --threads 4')",
    )
    parser.add_argument("--no-cache-run", action="store_true", help="skip the cached API run")
    parser.add_argument(
        "--quick", action="store_true", help="2 s phases, 2 rounds, 3 days, 300 wards"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.days, args.wards = 2.0, 2, 3, 300
    if min(args.seconds, args.days, args.connections, args.processes, args.rounds) <= 0:
        parser.error("--seconds, --rounds, --days, --connections and --processes must be positive")
    if args.compare_tree is not None and not (args.compare_tree / "ioc" / "cli.py").exists():
        parser.error(f"--compare-tree {args.compare_tree}: no ioc/cli.py there")
    args.processes = min(args.processes, args.connections)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-api-") as var:
        measure(args, Path(var))


if __name__ == "__main__":
    main()
