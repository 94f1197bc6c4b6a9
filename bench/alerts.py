"""Alert notification delay, and one evaluation over every ward against a query-replay baseline.

Run: ``.venv/bin/python -m bench.alerts [--rounds 20] [--group-wait 1s] [--wards 0] [--only X]``

Quick run: ``.venv/bin/python -m bench.alerts --rounds 5 --wards 300``

It starts its own Mosquitto, InfluxDB and Alertmanager (the local stack code; Alertmanager's
``group_wait`` set to ``--group-wait``, its webhook receiver a recorder in this process) in a
temporary folder on free loopback ports, and measures, in one run:

* **notification delay** (database ``bench_delay``), ``--rounds`` rounds: a river-gauge reading
  of 3.8 m (above Kim Long's alarm level III, 3.5 m; each bench gauge uses Kim Long's levels) is
  published at QoS 1 to Mosquitto, stored by the real collector (``ingest.collector.Collector``,
  in a thread of this process), turned into ``flood_level`` 3 by ``Engine.run_cycle``, fired by
  ``Evaluator.evaluate`` (every catalog rule; the two ``flood-alarm`` rules with ``for`` 0
  instead of 2 min), posted to Alertmanager and notified to the webhook after ``group_wait``.
  Each round is a gauge in another province, so a new (alertname, province) group. The steps run
  back to back in this process, not each on its own schedule, so the delay is the sum of the
  processing times plus ``group_wait``. The reading is stamped inside the last complete hour, so
  that the engine's cycle computes its period at once. Printed: p50/p99 of publish -> stored
  (polled every ``--poll-ms``), stored -> engine cycle done, engine -> the evaluator's post
  returned, post -> webhook, and the total; then what production adds, from the settings.
* **one evaluation over every ward** (database ``bench_national``): an air station in each of
  the 3,321 wards (``--wards N``: the first N), a service and a task feed in each province, 24 h
  of raw readings every ``--minutes-step`` minutes (``--episode`` of the stations in a pollution
  episode, ``--silent`` of them silent for 2 h), and ``Engine.compute`` of the last hour (and of
  the hour a day earlier, for the increase rule) writing ``derived.indicator`` as in production.
  That is setup, reported but not compared. Then three ``Evaluator.evaluate`` cycles of all
  catalog rules: "first" at now (breaches become pending), "fire" at now + the catalog's ``for``
  (they fire and are posted), "steady" one IOC_ALERTS_INTERVAL later (nothing changes, every
  firing alert is posted again: the usual cycle). ``now`` is advanced, not waited for. Baseline:
  the same InfluxQL texts with the same parameters, recorded by a ``Store`` subclass, replayed
  with ``Store.query`` right after each cycle. Printed: seconds, evaluator / baseline,
  instances, firing, where the evaluator's time went (queries, Alertmanager post, MQTT publish,
  history write, SQLite state, the rest: its own Python) and a per-rule table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import orjson
import paho.mqtt.client as mqtt

from alerts.alertmanager import AlertLike, Alertmanager
from alerts.evaluate import Cycle, Evaluator, Observation
from alerts.publish import MqttPublisher
from alerts.rules import Rule, catalog_rules
from alerts.state import AlertState, Instance, StateStore
from ingest.collector import Collector
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog, parse_period
from ioc.engine import CycleReport, Engine
from ioc.mqtt import make_client
from ioc.places import get_places
from ioc.settings import PROJECT_ROOT, Settings, load_settings
from ioc.stack import AlertTimings, LocalStack, find_binary, free_ports
from ioc.store import Point, Store, duration_seconds
from ioc.store.client import Epoch, ParamValue, Series
from ioc.store.influxql import RECEIVED_FIELD

_NS = 1_000_000_000
_MS = 1_000_000  # ns per ms
_MINUTE = 60 * _NS
_HOUR = 3600 * _NS
_BATCH = 5_000
_TIMEOUT_S = 600.0  # generous, so that a slow query is measured rather than aborted
_DELAY_DB = "bench_delay"
_NATIONAL_DB = "bench_national"
_GAUGE_STATION = "huong-kim-long"  # ioc/formulas/flood.py: BĐI 1.0, BĐII 2.0, BĐIII 3.5 m
_FLOOD_STAGE_M = 3.8  # above BĐIII: level III, the critical flood alarm
_CALM_STAGE_M = 0.4  # below BĐI
_FLOOD_ALERT = "flood-alarm"
_EPISODE_PM25 = 180.0  # µg/m³: VN_AQI ~230 (critical), above the QCVN 24 h limits of PM
_SILENT_FOR = 2 * _HOUR
_PRODUCTION_CONFIG = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank); NaN when there are none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- the webhook receiver -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notified:
    """One webhook POST of Alertmanager: when it arrived (``perf_counter``) and its body."""

    arrived: float
    body: Mapping[str, Any]

    def firing(self, alertname: str, labels: Mapping[str, str]) -> Mapping[str, Any] | None:
        """The firing alert of this notification with this alertname and these labels."""
        for alert in self.body.get("alerts") or ():
            got = alert.get("labels") or {}
            if (
                alert.get("status") == "firing"
                and got.get("alertname") == alertname
                and all(got.get(k) == v for k, v in labels.items())
            ):
                return dict(alert)
        return None


class _Webhook:
    """Alertmanager's webhook receiver: an HTTP server in a thread that records every POST."""

    def __init__(self) -> None:
        self._received: list[_Notified] = []
        self._changed = threading.Condition()
        record = self._record

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.perf_counter()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {}
                record(_Notified(arrived, body if isinstance(body, dict) else {}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the bench's output readable

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{int(self._server.server_address[1])}/alerts"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def _record(self, notified: _Notified) -> None:
        with self._changed:
            self._received.append(notified)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[_Notified], bool], timeout: float) -> _Notified | None:
        """The first notification matching ``predicate``; None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for notified in self._received:
                    if predicate(notified):
                        return notified
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)


# --- an evaluator whose collaborators time themselves ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Query:
    """One query the evaluator sent: text, bound parameters, epoch, and how long it took."""

    text: str
    params: Mapping[str, ParamValue]
    epoch: Epoch | None
    seconds: float


@dataclass(slots=True)
class _RuleFigures:
    """One rule's observation during a cycle."""

    observe_s: float = 0.0
    queries: int = 0
    query_s: float = 0.0
    observed: int = 0


@dataclass(slots=True)
class _Meter:
    """What the evaluator's collaborators did during one cycle, and how long each took."""

    queries: list[_Query] = field(default_factory=list)
    history_s: float = 0.0
    history_points: int = 0
    post_s: float = 0.0
    posted: int = 0
    posted_at: float | None = None  # perf_counter when the last post to Alertmanager returned
    publish_s: float = 0.0
    published: int = 0
    save_s: float = 0.0
    rules: dict[str, _RuleFigures] = field(default_factory=dict)

    @property
    def query_s(self) -> float:
        return sum(q.seconds for q in self.queries)

    def take(self) -> _Meter:
        """The figures so far; the meter starts again from zero."""
        taken = replace(self)
        fresh = _Meter()
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(fresh, name))
        return taken


class _TimedStore(Store):
    """A Store that records every query (text, parameters, seconds) and times its writes."""

    def __init__(self, settings: Settings, meter: _Meter) -> None:
        super().__init__(settings)
        self.meter = meter

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
            self.meter.queries.append(_Query(text, dict(params or {}), epoch, took))

    def write(self, points: Sequence[Point], *, rp: str = "raw") -> int:
        began = time.perf_counter()
        try:
            return super().write(points, rp=rp)
        finally:
            self.meter.history_s += time.perf_counter() - began
            self.meter.history_points += len(points)


class _TimedAlertmanager(Alertmanager):
    """The evaluator's sink (the real client), timing each post."""

    def __init__(self, url: str, meter: _Meter) -> None:
        super().__init__(url)
        self.meter = meter

    def post_notifications(self, notifications: Sequence[AlertLike]) -> None:
        began = time.perf_counter()
        try:
            super().post_notifications(notifications)
        finally:
            done = time.perf_counter()
            self.meter.post_s += done - began
        self.meter.posted += len(notifications)
        self.meter.posted_at = done


class _TimedPublisher:
    """The evaluator's retained MQTT publisher (the real one), timing each publish."""

    def __init__(self, inner: MqttPublisher, meter: _Meter) -> None:
        self.inner = inner
        self.meter = meter

    def publish(self, topic: str, payload: bytes) -> None:
        began = time.perf_counter()
        try:
            self.inner.publish(topic, payload)
        finally:
            self.meter.publish_s += time.perf_counter() - began
            self.meter.published += 1


class _TimedState(StateStore):
    """The evaluator's SQLite state, timing each save."""

    def __init__(self, path: Path, meter: _Meter) -> None:
        super().__init__(path)
        self.meter = meter

    def save(self, instances: Iterable[Instance], forget: Iterable[tuple[str, str]] = ()) -> None:
        began = time.perf_counter()
        try:
            super().save(instances, forget)
        finally:
            self.meter.save_s += time.perf_counter() - began


class _MeteredEvaluator(Evaluator):
    """The evaluator, noting per rule how long observing took and how many instances it saw."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        rules: Sequence[Rule],
        store: Store,
        state: StateStore,
        *,
        meter: _Meter,
        sink: Alertmanager,
        publisher: _TimedPublisher,
    ) -> None:
        super().__init__(settings, catalog, rules, store, state, sink=sink, publisher=publisher)
        self.meter = meter

    def observe(self, rule: Rule, now: datetime) -> dict[str, Observation]:
        first = len(self.meter.queries)
        began = time.perf_counter()
        seen = super().observe(rule, now)
        figures = self.meter.rules.setdefault(rule.key, _RuleFigures())
        figures.observe_s += time.perf_counter() - began
        mine = self.meter.queries[first:]
        figures.queries += len(mine)
        figures.query_s += sum(q.seconds for q in mine)
        figures.observed += len(seen)
        return seen


@contextmanager
def _metered_evaluator(
    settings: Settings, catalog: Catalog, rules: Sequence[Rule], name: str
) -> Iterator[_MeteredEvaluator]:
    """The real evaluator with the real Alertmanager client, MQTT publisher and SQLite state."""
    meter = _Meter()
    own = replace(settings, alerts_id=name)
    with ExitStack() as stack:
        store = _TimedStore(own, meter)
        stack.callback(store.close)
        state = _TimedState(own.alerts_state_dir / f"{name}.sqlite", meter)
        stack.callback(state.close)
        sink = _TimedAlertmanager(own.alertmanager_url, meter)
        stack.callback(sink.close)
        publisher = MqttPublisher(own)
        stack.callback(publisher.close)
        yield _MeteredEvaluator(
            own,
            catalog,
            rules,
            store,
            state,
            meter=meter,
            sink=sink,
            publisher=_TimedPublisher(publisher, meter),
        )


@contextmanager
def _database(settings: Settings, db: str) -> Iterator[tuple[Settings, Store]]:
    """Settings for database ``db`` (created, with its retention policies) and a store on it."""
    own = replace(settings, influx_db=db)
    store = Store(own)
    try:
        store.ensure_schema()
        yield own, store
    finally:
        store.close()


def _write(store: Store, points: Iterator[Point]) -> tuple[int, float]:
    """Write in batches of 5,000; the points written and the seconds it took."""
    began = time.perf_counter()
    count = 0
    batch: list[Point] = []
    for point in points:
        batch.append(point)
        if len(batch) == _BATCH:
            count += store.write(batch)
            batch = []
    if batch:
        count += store.write(batch)
    return count, time.perf_counter() - began


# --- 1. notification delay ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Gauge:
    """A bench river gauge in one province, with Kim Long's alarm levels."""

    id: str
    province: str
    ward: str

    @property
    def topic(self) -> str:
        return f"ioc/v1/{self.province}/{self.id}/water"

    def reading(self, time_ms: int, stage_m: float) -> bytes:
        """An IOC JSON document of one water level."""
        metrics = {"water_level": stage_m}
        return orjson.dumps({"v": 1, "source": self.id, "time_ms": time_ms, "metrics": metrics})


def _gauges(count: int) -> list[_Gauge]:
    """One gauge in the first ward of each of the first ``count`` provinces."""
    places = get_places()
    firsts = [places.wards_of(p.code)[0] for p in places.provinces()[:count]]
    return [_Gauge(f"{w.code}-gauge", w.province_code, w.code) for w in firsts]


def _gauge_registry(gauges: Sequence[_Gauge]) -> str:
    return "\n".join(
        f'[[source]]\nid = "{g.id}"\nkind = "water"\nprovince = "{g.province}"\n'
        f'ward = "{g.ward}"\nname = "bench gauge {g.province}"\nexpected_interval = "1h"\n'
        f'station = "{_GAUGE_STATION}"\n'
        for g in gauges
    )


@dataclass(frozen=True, slots=True)
class _Round:
    """One reading's way from the device to the webhook (seconds, consecutive stages)."""

    gauge: _Gauge
    stored_s: float  # publish -> queryable in InfluxDB (the first poll that saw it)
    engine_s: float  # -> Engine.run_cycle returned
    evaluated_s: float  # -> the evaluator's post to Alertmanager returned
    notified_s: float  # -> the webhook received the notification
    after_post_s: float  # the evaluator's work after its post (announce, state): in parallel
    engine_points: int
    queries: int
    value: str  # the notified alert's value annotation

    @property
    def total_s(self) -> float:
        return self.stored_s + self.engine_s + self.evaluated_s + self.notified_s


@contextmanager
def _collector(settings: Settings, catalog: Catalog) -> Iterator[Collector]:
    """The real collector, running in a thread of this process until the block ends."""
    collector = Collector(settings, catalog)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), name="collector", daemon=True)
    thread.start()
    try:
        if not collector.connected.wait(30):
            raise SystemExit("the collector did not connect to Mosquitto within 30 s")
        yield collector
    finally:
        stop.set()
        thread.join(60)


@contextmanager
def _device(settings: Settings) -> Iterator[mqtt.Client]:
    """A paho client publishing for the gauges."""
    client = make_client(settings, "bench-gauges")
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _publish(client: mqtt.Client, topic: str, payload: bytes) -> None:
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(10)


def _stored_at(store: Store, gauge: _Gauge, time_ms: int, poll_s: float) -> float | None:
    """When a poll first found the reading in InfluxDB (``perf_counter``); None after 30 s."""
    text = 'SELECT "water_level" FROM "raw"."water" WHERE "source" = $source AND time = $t'
    params: dict[str, ParamValue] = {"source": gauge.id, "t": time_ms * _MS}
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        if store.query(text, params):
            return time.perf_counter()
        time.sleep(poll_s)
    return None


def _warm_up(client: mqtt.Client, store: Store, gauges: Sequence[_Gauge], poll_s: float) -> None:
    """A calm current reading from every gauge, stored: the collector listens, no feed is silent."""
    time_ms = time.time_ns() // _MS - 5_000
    for gauge in gauges:
        _publish(client, gauge.topic, gauge.reading(time_ms, _CALM_STAGE_M))
    for gauge in gauges:
        if _stored_at(store, gauge, time_ms, poll_s) is None:
            raise SystemExit(f"warm-up: {gauge.id}'s reading was not stored within 30 s")


def _round(
    number: int,
    gauge: _Gauge,
    *,
    client: mqtt.Client,
    store: Store,
    engine: Engine,
    evaluator: _MeteredEvaluator,
    webhook: _Webhook,
    poll_s: float,
    wait_s: float,
) -> _Round | str:
    """Publish one flood reading and follow it to the webhook; a failure says what is missing."""
    hour0 = time.time_ns() // _HOUR * _HOUR
    time_ms = (hour0 - 30 * _MINUTE) // _MS + number  # inside the last complete hour
    evaluator.meter.take()
    began = time.perf_counter()
    _publish(client, gauge.topic, gauge.reading(time_ms, _FLOOD_STAGE_M))
    stored = _stored_at(store, gauge, time_ms, poll_s)
    if stored is None:
        return f"{gauge.id}: the reading was not stored within 30 s"
    report = engine.run_cycle()
    computed = time.perf_counter()
    cycle = evaluator.evaluate()
    evaluated = time.perf_counter()
    meter = evaluator.meter.take()
    fired = [
        t
        for t in cycle.transitions
        if t.instance.state is AlertState.FIRING and t.instance.labels.get("source") == gauge.id
    ]
    if not fired or meter.posted_at is None:
        return f"{gauge.id}: the evaluator fired {len(fired)} alerts, posted {meter.posted}"
    labels = {"source": gauge.id, "severity": "critical"}
    notified = webhook.wait_for(lambda n: n.firing(_FLOOD_ALERT, labels) is not None, wait_s)
    if notified is None:
        return f"{gauge.id}: no notification within {wait_s:g} s of the post"
    alert = notified.firing(_FLOOD_ALERT, labels) or {}
    return _Round(
        gauge=gauge,
        stored_s=stored - began,
        engine_s=computed - stored,
        evaluated_s=meter.posted_at - computed,
        notified_s=notified.arrived - meter.posted_at,
        after_post_s=evaluated - meter.posted_at,
        engine_points=report.points,
        queries=len(meter.queries),
        value=str((alert.get("annotations") or {}).get("value", "?")),
    )


def notification_delay(
    settings: Settings, args: argparse.Namespace, var: Path, webhook: _Webhook, wait_s: float
) -> tuple[list[_Round], list[str]]:
    """The rounds of the delay measurement, and what went wrong in the others."""
    gauges = _gauges(args.rounds)
    registry = var / "bench-gauges.toml"
    registry.write_text(_gauge_registry(gauges), encoding="utf-8")
    catalog = load_catalog(INDICATORS_FILE, registry)
    rules = tuple(
        replace(r, for_s=0.0) if r.alertname == _FLOOD_ALERT else r for r in catalog_rules(catalog)
    )
    poll_s = args.poll_ms / 1000
    rounds: list[_Round] = []
    failures: list[str] = []
    with (
        _database(replace(settings, ingest_id="bench-ingest"), _DELAY_DB) as (own, store),
        _collector(own, catalog),
        _device(own) as client,
        _metered_evaluator(own, catalog, rules, "bench-alerts-delay") as evaluator,
    ):
        _warm_up(client, store, gauges, poll_s)
        engine = Engine(own, catalog, store)
        for number, gauge in enumerate(gauges):
            outcome = _round(
                number,
                gauge,
                client=client,
                store=store,
                engine=engine,
                evaluator=evaluator,
                webhook=webhook,
                poll_s=poll_s,
                wait_s=wait_s,
            )
            if isinstance(outcome, _Round):
                rounds.append(outcome)
            else:
                failures.append(outcome)
    return rounds, failures


def _print_delay(
    rounds: Sequence[_Round], failures: Sequence[str], group_wait_s: float, poll_ms: float
) -> None:
    print(
        f"\n1. notification delay, publish -> webhook: {len(rounds)} rounds, each a new "
        f"({_FLOOD_ALERT}, province) group; Alertmanager group_wait {group_wait_s:g} s; "
        f"rule `for` 0 s (catalog: 2 min); InfluxDB polled every {poll_ms:g} ms"
    )
    print(
        "   the collector, the engine cycle and the evaluator cycle ran back to back in this "
        "process (not on their schedules): the delay is their processing time + group_wait; "
        "p99 by nearest rank (below 100 rounds, the maximum); stored: the first poll that "
        "found the reading (an upper bound, by up to the poll interval)"
    )
    head = f"   {'stage':<44}{'p50 ms':>9}{'p99 ms':>9}{'min ms':>9}{'max ms':>9}"
    print(head)
    print("   " + "-" * (len(head) - 3))
    stages: list[tuple[str, Callable[[_Round], float]]] = [
        ("publish -> stored (collector, InfluxDB)", lambda r: r.stored_s),
        ("stored -> Engine.run_cycle done", lambda r: r.engine_s),
        ("engine -> evaluator's post to AM returned", lambda r: r.evaluated_s),
        (f"post -> webhook (group_wait {group_wait_s:g} s)", lambda r: r.notified_s),
        ("  of which beyond group_wait", lambda r: r.notified_s - group_wait_s),
        ("total, publish -> webhook", lambda r: r.total_s),
        ("  total without group_wait", lambda r: r.total_s - group_wait_s),
        ("(evaluator after its post, in parallel)", lambda r: r.after_post_s),
    ]
    for name, stage in stages:
        ordered = sorted(stage(r) * 1000 for r in rounds)
        print(
            f"   {name:<44}{_quantile(ordered, 0.5):>9.1f}{_quantile(ordered, 0.99):>9.1f}"
            f"{_quantile(ordered, 0.0):>9.1f}{_quantile(ordered, 1.0):>9.1f}"
        )
    if rounds:
        print(
            f"   engine cycle wrote {rounds[-1].engine_points:,} points; evaluator cycle sent "
            f"{rounds[-1].queries} queries; notified values: "
            f"{sorted({r.value for r in rounds})} (3 = alarm level III)"
        )
    print(
        "   (evaluator after its post: MQTT publish, history write, state save, while "
        "Alertmanager waits group_wait; not part of the total)"
    )
    for failure in failures:
        print(f"   ! {failure}")


# --- 2. one evaluation over every ward ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Site:
    """A registered source of the national phase."""

    id: str
    kind: str
    province: str
    ward: str | None
    n: int
    episode: bool = False  # air: a pollution episode; feeds: late dossiers, overdue tasks
    silent: bool = False  # air: no reading for the last 2 hours

    @property
    def tags(self) -> dict[str, str]:
        tags = {"source": self.id, "province": self.province}
        if self.ward is not None:
            tags["ward"] = self.ward
        return tags


def _every(n: int, share: float, phase: float = 0.0) -> bool:
    """True for about ``share`` of the numbers ``n`` (spread evenly)."""
    if share <= 0:
        return False
    stride = max(1, round(1 / share))
    return n % stride == int(phase * stride)


def _national_sites(wards: int, episode: float, silent: float) -> tuple[list[_Site], list[_Site]]:
    """An air station in each ward; a service and a task feed in each province."""
    chosen = get_places().wards() if wards <= 0 else get_places().wards()[:wards]
    stations = [
        _Site(
            f"{w.code}-air",
            "air",
            w.province_code,
            w.code,
            i,
            episode=_every(i, episode),
            silent=_every(i, silent, 0.5),
        )
        for i, w in enumerate(chosen)
    ]
    provinces = sorted({w.province_code for w in chosen})
    feeds = [
        _Site(f"{code}-{kind}", kind, code, None, i, episode=i % 7 == 0)
        for i, code in enumerate(provinces)
        for kind in ("service", "tasks")
    ]
    return stations, feeds


def _national_registry(stations: Sequence[_Site], feeds: Sequence[_Site], step_min: int) -> str:
    blocks = []
    for site, interval in [*((s, f"{step_min}m") for s in stations), *((f, "1h") for f in feeds)]:
        ward = f'ward = "{site.ward}"\n' if site.ward is not None else ""
        blocks.append(
            f'[[source]]\nid = "{site.id}"\nkind = "{site.kind}"\nprovince = "{site.province}"\n'
            f'{ward}name = "bench {site.kind} {site.n}"\nexpected_interval = "{interval}"\n'
        )
    return "\n".join(blocks)


def _air_fields(site: _Site, slot: int) -> dict[str, float | int]:
    """PM2.5 of 8-36 µg/m³ (VN_AQI < 101, under QCVN), or ~180 in an episode; calm gases."""
    wobble = (site.n * 7 + slot) % 5
    pm25 = _EPISODE_PM25 + wobble if site.episode else 8.0 + site.n * 37 % 25 + wobble
    return {
        "pm25": round(pm25, 1),
        "pm10": round(pm25 * 1.6 + 4.0, 1),
        "o3": 40.0 + site.n * 13 % 80,
        "no2": 15.0 + site.n * 11 % 60,
        "so2": 10.0 + site.n * 7 % 40,
        "co": 500.0 + site.n * 53 % 3000,
    }


def _feed_fields(site: _Site, recent: bool) -> dict[str, float | int]:
    """An episode province: 80 % of dossiers on time, overdue tasks that grew from 1 to 3."""
    if site.kind == "service":
        received = 40 + site.n % 20
        late = received // 5 if site.episode else 0
        return {
            "dossiers_received": float(received),
            "dossiers_on_time": float(received - late),
            "dossiers_online": float(received // 2),
        }
    overdue = (3 if recent else 1) if site.episode else 0
    return {"tasks_total": 100.0, "tasks_completed": 60.0, "tasks_overdue": float(overdue)}


def _national_readings(
    stations: Sequence[_Site], feeds: Sequence[_Site], now_ns: int, step_min: int
) -> Iterator[Point]:
    """24 h of air readings up to a minute ago (silent stations stop 2 h before the hour);
    feeds at :05 of each of the last 26 hours."""
    step = step_min * _MINUTE
    hour0 = now_ns // _HOUR * _HOUR
    quiet_since = hour0 - _SILENT_FOR
    for at in range((now_ns - 24 * _HOUR) // step * step, now_ns - _MINUTE, step):
        received = {RECEIVED_FIELD: at // _MS + 2_000}
        for site in stations:
            if not (site.silent and at >= quiet_since):
                yield Point("air", {**_air_fields(site, at // step), **received}, at, site.tags)
    for at in range(hour0 - 26 * _HOUR + 5 * _MINUTE, now_ns, _HOUR):
        received = {RECEIVED_FIELD: at // _MS + 30_000}
        for site in feeds:
            values = _feed_fields(site, recent=at > hour0 - 12 * _HOUR)
            yield Point(site.kind, {**values, **received}, at, site.tags)


@dataclass(frozen=True, slots=True)
class _Evaluation:
    """One measured evaluator cycle and its baseline."""

    label: str
    seconds: float
    cycle: Cycle
    meter: _Meter
    baseline_s: float

    @property
    def observed(self) -> int:
        return sum(r.observed for r in self.meter.rules.values())

    @property
    def own_s(self) -> float:
        """The evaluator's own Python: everything but the collaborators' time."""
        m = self.meter
        return self.seconds - m.query_s - m.post_s - m.publish_s - m.history_s - m.save_s


def _replay(store: Store, queries: Sequence[_Query]) -> float:
    began = time.perf_counter()
    for q in queries:
        store.query(q.text, q.params, epoch=q.epoch)
    return time.perf_counter() - began


def _seed_national(
    settings: Settings,
    store: Store,
    catalog: Catalog,
    sites: tuple[list[_Site], list[_Site]],
    step_min: int,
) -> None:
    """Raw readings, then the engine's derived values of the last hour and of a day earlier."""
    stations, feeds = sites
    now_ns = time.time_ns()
    hour0 = now_ns // _HOUR * _HOUR
    count, seconds = _write(store, _national_readings(stations, feeds, now_ns, step_min))
    print(f"   seeded {count:,} raw points in {seconds:.1f} s ({count / seconds:,.0f} points/s)")
    engine = Engine(settings, catalog, store)
    reports: list[tuple[str, CycleReport]] = [
        ("a day earlier", engine.compute(hour0 - 25 * _HOUR, hour0 - 24 * _HOUR)),
        ("the last hour", engine.compute(hour0 - _HOUR, hour0)),
    ]
    for label, report in reports:
        skipped = f", skipped {dict(report.skipped)}" if report.skipped else ""
        print(
            f"   Engine.compute of {label}: {report.points:,} derived points in "
            f"{report.seconds:.1f} s{skipped}"
        )


def national_evaluation(
    settings: Settings, args: argparse.Namespace, var: Path
) -> list[_Evaluation]:
    """Seed, then three measured evaluator cycles, each followed by its baseline replay."""
    stations, feeds = _national_sites(args.wards, args.episode, args.silent)
    registry = var / "bench-national.toml"
    registry.write_text(_national_registry(stations, feeds, args.minutes_step), encoding="utf-8")
    catalog = load_catalog(INDICATORS_FILE, registry)
    rules = catalog_rules(catalog)
    wards = len({s.ward for s in stations})
    print(
        f"\n2. one evaluation over every ward: {len(stations):,} air stations in {wards:,} wards "
        f"(readings every {args.minutes_step} min; {sum(s.episode for s in stations)} in a "
        f"pollution episode, {sum(s.silent for s in stations)} silent for 2 h), {len(feeds)} "
        f"feeds in {len(feeds) // 2} provinces; {len(rules)} catalog rules (setup, not compared):"
    )
    results: list[_Evaluation] = []
    with (
        _database(settings, _NATIONAL_DB) as (own, store),
        _metered_evaluator(own, catalog, rules, "bench-alerts-national") as evaluator,
    ):
        _seed_national(own, store, catalog, (stations, feeds), args.minutes_step)
        for_s = max(r.for_s for r in rules)
        now = datetime.now(UTC)
        plan = [
            ("first", now),
            ("fire", now + timedelta(seconds=for_s)),
            ("steady", now + timedelta(seconds=for_s + own.alerts_interval)),
        ]
        for label, at in plan:
            evaluator.meter.take()
            began = time.perf_counter()
            cycle = evaluator.evaluate(at)
            seconds = time.perf_counter() - began
            meter = evaluator.meter.take()
            results.append(_Evaluation(label, seconds, cycle, meter, _replay(store, meter.queries)))
    return results


def _print_national(results: Sequence[_Evaluation]) -> None:
    head = f"   {'':<34}" + "".join(f"{r.label:>12}" for r in results)
    print(head)
    print("   " + "-" * (len(head) - 3))

    def row(name: str, values: Iterable[str]) -> None:
        print(f"   {name:<34}" + "".join(f"{v:>12}" for v in values))

    row("evaluator cycle s", [f"{r.seconds:.3f}" for r in results])
    row("  queries (InfluxDB, HTTP, JSON) s", [f"{r.meter.query_s:.3f}" for r in results])
    row("  own Python (rest) s", [f"{r.own_s:.3f}" for r in results])
    row("  Alertmanager post s", [f"{r.meter.post_s:.3f}" for r in results])
    row("  MQTT publish (retained, QoS 1) s", [f"{r.meter.publish_s:.3f}" for r in results])
    row("  history write (derived.alert) s", [f"{r.meter.history_s:.3f}" for r in results])
    row("  SQLite state save s", [f"{r.meter.save_s:.3f}" for r in results])
    row("baseline: same queries replayed s", [f"{r.baseline_s:.3f}" for r in results])
    row("evaluator / baseline", [f"{r.seconds / r.baseline_s:.2f}" for r in results])
    row("queries / baseline", [f"{r.meter.query_s / r.baseline_s:.2f}" for r in results])
    row("queries", [f"{len(r.meter.queries)}" for r in results])
    row("instances observed", [f"{r.observed:,}" for r in results])
    row("instances remembered (active)", [f"{r.cycle.instances:,}" for r in results])
    row("firing", [f"{r.cycle.firing:,}" for r in results])
    row("state changes", [f"{len(r.cycle.transitions):,}" for r in results])
    row("alerts posted", [f"{r.meter.posted:,}" for r in results])
    row("messages published", [f"{r.meter.published:,}" for r in results])
    row("history points", [f"{r.meter.history_points:,}" for r in results])
    row("rules that could not observe", [f"{len(r.cycle.failed_rules)}" for r in results])
    steady = results[-1]
    print(f"\n   per rule, {steady.label} cycle:")
    print(f"   {'rule':<36}{'queries':>8}{'query s':>10}{'observe s':>11}{'instances':>11}")
    for key, figures in sorted(steady.meter.rules.items(), key=lambda kv: -kv[1].observe_s):
        print(
            f"   {key:<36}{figures.queries:>8}{figures.query_s:>10.3f}"
            f"{figures.observe_s:>11.3f}{figures.observed:>11,}"
        )
    print(
        "   (observe s: the rule's queries plus parsing the rows into observations; the "
        "transitions, annotations and notifications are in the cycle's own Python)"
    )


# --- what production adds -------------------------------------------------------------------------


def _production_group_wait() -> str:
    """group_wait of deploy/alertmanager/alertmanager.yml (the local stack's default if absent)."""
    try:
        found = re.search(r"^\s*group_wait:\s*(\S+)", _PRODUCTION_CONFIG.read_text(), re.M)
    except OSError:
        found = None
    return found.group(1) if found else AlertTimings().group_wait


def _print_production(
    settings: Settings,
    rounds: Sequence[_Round],
    group_wait_s: float,
    national: Sequence[_Evaluation],
) -> None:
    catalog = load_catalog(INDICATORS_FILE, settings.registry_file)
    (rule,) = [r for r in catalog_rules(catalog) if r.key == f"{_FLOOD_ALERT}:critical"]
    period_s = parse_period(catalog.indicator(rule.indicator or "").period)
    interval = settings.alerts_interval
    fire_after = math.ceil(rule.for_s / interval) * interval
    wait_text = _production_group_wait()
    production_wait = duration_seconds(wait_text)
    ordered = sorted(r.total_s - group_wait_s for r in rounds)
    processing = _quantile(ordered, 0.5) if rounds else 0.0
    least = processing + fire_after + production_wait
    most = least + period_s + settings.engine_interval + interval
    steady = f"{national[-1].seconds:.2f} s steady in phase 2" if national else "phase 2"
    print("\nwhat production adds to a flood alarm (from the settings; the bench has none of it):")
    lines = [
        f"the period's end: 0-{period_s:g} s (flood_level is hourly; the engine computes "
        "complete periods only; the bench stamps the reading inside the last complete hour)",
        f"the engine's schedule: 0-{settings.engine_interval:g} s (IOC_ENGINE_INTERVAL)",
        f"the evaluator's schedule: 0-{interval:g} s (IOC_ALERTS_INTERVAL)",
        f"the rule's `for` {rule.for_s:g} s: it fires at the first evaluation at least that "
        f"long after the first breach, {fire_after:g} s later",
        f"group_wait {wait_text} (deploy/alertmanager/alertmanager.yml) instead of "
        f"{group_wait_s:g} s",
        "the engine's and the evaluator's cycles at national scale instead of this bench's "
        f"small ones (engine: bench.engine; evaluator: {steady})",
    ]
    for line in lines:
        print(f"   + {line}")
    measured = (
        f"the processing measured here: p50 {processing * 1000:.0f} ms without group_wait"
        if rounds
        else "phase 1 not run: no processing time measured"
    )
    print(
        f"   = {least:,.0f} to {most:,.0f} s from the reading to the webhook, plus the national "
        f"cycles ({measured})"
    )


# --- the run --------------------------------------------------------------------------------------


def _versions(settings: Settings) -> str:
    try:
        text = subprocess.run(
            [find_binary("mosquitto"), "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        mosquitto = text.splitlines()[0].replace("mosquitto version ", "") if text else "?"
    except (OSError, subprocess.SubprocessError):
        mosquitto = "?"
    with Store(settings) as store, Alertmanager(settings.alertmanager_url) as manager:
        return (
            f"Mosquitto {mosquitto}, InfluxDB {store.ping()}, "
            f"Alertmanager {manager.status().version}"
        )


def measure(
    settings: Settings, args: argparse.Namespace, var: Path, webhook: _Webhook, group_wait_s: float
) -> None:
    """Both measurements, then what production adds."""
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}; {_versions(settings)}"
    )
    rounds: list[_Round] = []
    national: list[_Evaluation] = []
    if args.only in (None, "delay"):
        wait_s = group_wait_s + 30.0
        rounds, failures = notification_delay(settings, args, var, webhook, wait_s)
        _print_delay(rounds, failures, group_wait_s, args.poll_ms)
    if args.only in (None, "national"):
        national = national_evaluation(settings, args, var)
        print()
        _print_national(national)
        print(
            "   evaluator / baseline: the cycle's time over InfluxDB's for the same queries "
            "(replayed after the cycle, so on a warm database); above 1 is the evaluator's own "
            "work, its Alertmanager post, MQTT publishes, history and state writes"
        )
    _print_production(settings, rounds, group_wait_s, national)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    provinces = len(get_places().provinces())
    parser.add_argument(
        "--rounds", type=int, default=20, help=f"delay rounds, one province each (1-{provinces})"
    )
    parser.add_argument("--group-wait", default="1s", help="Alertmanager's group_wait (1s, 30s)")
    parser.add_argument("--poll-ms", type=float, default=5.0, help="InfluxDB polled every N ms")
    parser.add_argument("--wards", type=int, default=0, help="first N wards only (0: all)")
    parser.add_argument("--minutes-step", type=int, default=30, help="minutes between readings")
    parser.add_argument("--episode", type=float, default=0.05, help="share of stations polluted")
    parser.add_argument("--silent", type=float, default=0.02, help="share of stations silent")
    parser.add_argument("--only", choices=("delay", "national"), help="one measurement only")
    args = parser.parse_args()
    if not 1 <= args.rounds <= provinces:
        parser.error(f"--rounds must be between 1 and {provinces} (a new group each)")
    if not re.fullmatch(r"\d+[smh]", args.group_wait):
        parser.error("--group-wait must be a whole number of s, m or h, such as 1s")
    if not 1 <= args.minutes_step <= 60 or 60 % args.minutes_step:
        parser.error("--minutes-step must divide 60")
    if not (0 <= args.episode <= 1 and 0 <= args.silent <= 1) or args.poll_ms <= 0:
        parser.error("--episode and --silent are shares (0-1); --poll-ms must be > 0")
    timings = AlertTimings(group_wait=args.group_wait)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as var, _Webhook() as webhook:
        mqtt_port, influx, rpc, alertmanager = free_ports(4)
        settings = load_settings(
            {
                "IOC_VAR_DIR": str(Path(var)),
                "IOC_MQTT_PORT": str(mqtt_port),
                "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
                "IOC_INFLUX_RPC_PORT": str(rpc),
                "IOC_INFLUX_DB": "ioc_bench",
                "IOC_INFLUX_TIMEOUT": str(_TIMEOUT_S),
                "IOC_ALERTMANAGER_URL": f"http://127.0.0.1:{alertmanager}",
                "IOC_ALERTS_WEBHOOK_URL": webhook.url,
                "IOC_LOG_LEVEL": "WARNING",
            }
        )
        with LocalStack(settings, alert_timings=timings).running():
            measure(settings, args, Path(var), webhook, duration_seconds(args.group_wait))


if __name__ == "__main__":
    main()
