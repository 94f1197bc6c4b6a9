"""End-to-end ingest throughput and latency, as ratios to a bare paho client from the same run.

Run: ``.venv/bin/python -m bench.ingest [--devices 3000] [--messages 200000] [--rounds 3]
[--rate 2000] [--baseline-tree DIR]``

Quick run: ``.venv/bin/python -m bench.ingest --quick``

Soak: ``.venv/bin/python -m bench.ingest --soak [SECONDS]`` (600 s by default): one collector at
``--soak-rate`` (2,000 msg/s) and its ``VmRSS`` (``/proc/<pid>/status``) at the start, every
minute and at the end.

It starts its own Mosquitto and InfluxDB (the local stack code) in a temporary folder on free
loopback ports and registers one air-quality station in each of the first ``--devices`` wards
(``{ward}-air``, expected every minute). Every message is an IOC JSON batch of ``--docs``
documents (default 2, 30 s apart) of the 8 air metrics (pm25, pm10, o3, no2, so2, co,
temperature, humidity): 16 readings, stored as 2 InfluxDB points, each with its own device
timestamp so that every reading is a distinct point. A separate publisher process (its own GIL)
publishes them at QoS 1 on ``ioc/v1/{province}/{source}/air``, the stations in turn: a minimal
MQTT 3.1.1 client writing pre-encoded PUBLISH packets to a socket (up to 20,000 unacknowledged),
because paho's own publish path tops out near 7k msg/s here, below the rates measured.
In one run it measures:

* raw ceiling: a bare paho client (callback API v2, MQTT 5, QoS 1, plain subscription to
  ``ioc/v1/#``) in this process only counts the messages the publisher blasts; rate = messages /
  (last received - first received). The machine is shared and its speed drifts, so the raw
  ceiling and the collector(s) run in ``--rounds`` interleaved rounds (raw first in odd rounds,
  last in even ones); each collector rate is divided by the raw ceiling of its own round and
  the ratios are printed as median (min-max). ``--baseline-tree DIR`` also runs, in every
  round, the collector of another source tree (the code before a change): before and after
  measured side by side;
* one collector: ``ioc ingest`` as a separate process (shared subscription with one member)
  while the publisher blasts the same messages; rate = messages / (moment every point is
  queryable in InfluxDB - publish start): polled with ``SELECT count(pm25)``, on the last
  message's station until its points are there, then on everything;
* latency at a fixed offered rate (``--rate``, default 2,000 msg/s) for ``--latency-seconds``
  in every round, one collector (and the baseline's): the last document's ``time_ms`` of each
  message is its publish time (wall clock, ms); one message in ten comes from a few timed stations
  (``--sample``) whose points are polled every ``--poll-ms``. A message was queryable by the
  first answer that contains it (upper bound) and not before the previous poll was sent (lower
  bound): p50/p99/max publish-to-queryable latency;
* InfluxDB alone: the same points as the collectors write, encoded beforehand and POSTed in
  5,000-line batches by this process: what the database costs, without MQTT or the collector;
* two collectors: two ``ioc ingest`` processes in one shared-subscription group, as for one.

Each collector phase has its own database (dropped afterwards) and its own collector ids and
group; their broker sessions are removed after each phase. Before a measurement, a few
warm-up messages (timestamps a day back, not counted) must be queryable. Dead letters are
counted, and a phase whose points are not all queryable within the timeout says so.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ioc.memory import rss_kib
from ioc.mqtt import make_client
from ioc.places import get_places
from ioc.settings import PROJECT_ROOT, Settings, load_settings
from ioc.stack import LocalStack, find_binary, free_ports
from ioc.store import Point, Store, encode_point
from ioc.store.influxql import quote_literal

_MS = 1_000_000  # ns per ms
_DOC_STEP_MS = 30_000  # documents of one message are 30 s apart (throughput phases)
_ROUND_MS = 60_000  # a station's consecutive messages are a minute apart (throughput phases)
_WARMUP_MESSAGES = 20
_SAMPLE_EVERY = 10  # latency phase: one message in ten comes from a timed station
_INFLUX_BATCH = 5000  # the collector's largest batch (ingest.writer.Writer.batch_lines)


# --- stations, registry, payloads -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Station:
    """A registered air-quality station: source id, province, ward, a number for variety."""

    id: str
    province: str
    ward: str
    n: int

    @property
    def topic(self) -> str:
        return f"ioc/v1/{self.province}/{self.id}/air"


def stations(count: int) -> list[Station]:
    """One station in each of the first ``count`` wards (by code)."""
    wards = get_places().wards()
    if not 1 <= count <= len(wards):
        raise SystemExit(f"--devices must be between 1 and {len(wards)} (one per ward)")
    return [
        Station(f"{w.code}-air", w.province_code, w.code, i) for i, w in enumerate(wards[:count])
    ]


def registry_toml(chosen: Sequence[Station]) -> str:
    return "\n".join(
        f'[[source]]\nid = "{s.id}"\nkind = "air"\nprovince = "{s.province}"\nward = "{s.ward}"\n'
        f'name = "bench air {s.n}"\nexpected_interval = "1m"\n'
        for s in chosen
    )


def _metric_variants(n: int, variants: int = 8) -> list[bytes]:
    """A few plausible sets of the 8 air metrics for station ``n`` (inside the catalog ranges)."""
    out = []
    for k in range(variants):
        pm25 = 5.0 + (n * 37 + k * 11) % 150 + k / 10
        fields = {
            "pm25": round(pm25, 1),
            "pm10": round(pm25 * 1.6 + 4.0 + k, 1),
            "o3": round(30.0 + (n * 13 + k * 7) % 120 + 0.5, 1),
            "no2": round(10.0 + (n * 11 + k * 5) % 80 + 0.3, 1),
            "so2": round(5.0 + (n * 7 + k * 3) % 50 + 0.2, 1),
            "co": round(400.0 + (n * 53 + k * 97) % 4000 + 0.5, 1),
            "temperature": round(18.0 + (n * 3 + k) % 20 + k / 10, 1),
            "humidity": round(45.0 + (n * 5 + k * 3) % 50 + 0.5, 1),
        }
        out.append(orjson.dumps(fields))
    return out


class Payloads:
    """Builds IOC JSON batches from per-station templates (one bytes format per message)."""

    def __init__(self, chosen: Sequence[Station], docs: int) -> None:
        self.docs = docs
        self.topics = [s.topic for s in chosen]
        self.ids = [s.id.encode() for s in chosen]
        self.variants = [_metric_variants(s.n) for s in chosen]

    def message(self, index: int, times_ms: Sequence[int], variant: int) -> bytes:
        source = self.ids[index]
        metrics = self.variants[index]
        body = b",".join(
            b'{"v":1,"source":"%b","time_ms":%d,"metrics":%b}'
            % (source, t, metrics[(variant + j) % len(metrics)])
            for j, t in enumerate(times_ms)
        )
        return b"[" + body + b"]"


@dataclass(frozen=True, slots=True)
class BurstPlan:
    """``messages`` messages, station ``m % stations`` in turn, in rounds a minute apart."""

    messages: int
    stations: int
    docs: int
    base_ms: int

    def times(self, m: int) -> list[int]:
        start = self.base_ms + (m // self.stations) * _ROUND_MS
        return [start + j * _DOC_STEP_MS for j in range(self.docs)]

    @property
    def rounds(self) -> int:
        return -(-self.messages // self.stations)

    def last(self) -> tuple[int, int]:
        """The station index and first document time of the last message."""
        m = self.messages - 1
        return m % self.stations, self.times(m)[0]


def burst_plan(messages: int, stations_count: int, docs: int) -> BurstPlan:
    """Timestamps ending a minute before now (inside the collector's 7 d / 5 min window)."""
    rounds = -(-messages // stations_count)
    now_ms = time.time_ns() // _MS
    return BurstPlan(messages, stations_count, docs, now_ms - (rounds + 1) * _ROUND_MS)


# --- the publisher process ------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """An MQTT 3.1.1 PUBLISH packet, QoS 1, packet id ``mid``."""
    name = topic.encode()
    body = len(name).to_bytes(2, "big") + name + mid.to_bytes(2, "big") + payload
    return b"\x32" + _varint(len(body)) + body


class RawPublisher:
    """A minimal MQTT 3.1.1 QoS 1 publisher on a socket: pre-encoded packets, PUBACKs counted.

    paho's publish path costs about 140 us per message here (its MQTT 5 PUBACK decoding alone
    a third of it), which caps one paho publisher near 7k msg/s: below what is measured.
    """

    WINDOW = 20_000  # unacknowledged messages at most (packet ids must stay distinct)

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02" + (600).to_bytes(2, "big")  # clean session, keepalive
        body += len(cid).to_bytes(2, "big") + cid
        self.sock.sendall(b"\x10" + _varint(len(body)) + body)
        connack = b""
        while len(connack) < 4:
            chunk = self.sock.recv(4 - len(connack))
            if not chunk:
                raise SystemExit("publisher: the broker closed the connection")
            connack += chunk
        if connack[0] != 0x20 or connack[3] != 0:
            raise SystemExit(f"publisher: CONNACK {connack!r}")
        self.sent = 0
        self._received = 0  # bytes of PUBACKs (4 each in MQTT 3.1.1)
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def acked(self) -> int:
        return self._received // 4

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._received = -(1 << 62)  # closed: wake up and fail the waiters
                else:
                    self._received += len(data)
                self._cond.notify_all()
            if not data:
                return

    def send(self, packets: bytes, count: int) -> None:
        """Send ``count`` pre-encoded PUBLISH packets, keeping at most WINDOW unacknowledged."""
        with self._cond:
            while self.sent + count - self.acked > self.WINDOW:
                self._cond.wait(1.0)
                if self._received < 0:
                    raise SystemExit("publisher: the broker closed the connection")
        self.sock.sendall(packets)
        self.sent += count

    def wait_acked(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acked < self.sent and self._received >= 0 and time.monotonic() < deadline:
                self._cond.wait(0.1)

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self.sock.close()


def publisher_main(
    conn: Connection, host: str, port: int, chosen: list[Station], job: dict[str, Any]
) -> None:
    """Child process: build the messages, wait for "go", publish, report timings."""
    payloads = Payloads(chosen, job["docs"])
    publisher = RawPublisher(host, port, f"bench-pub-{os.getpid()}")
    try:
        if job["mode"] == "burst":
            result = _burst(conn, publisher, payloads, job["plan"])
        else:
            result = _paced(conn, publisher, payloads, job)
        conn.send(result)
    finally:
        publisher.close()


def _burst(
    conn: Connection, publisher: RawPublisher, payloads: Payloads, plan: BurstPlan
) -> dict[str, Any]:
    n, chunk = plan.stations, 64
    chunks: list[tuple[bytes, int]] = []
    size = 0
    for first in range(0, plan.messages, chunk):
        packets = [
            publish_packet(
                payloads.topics[m % n],
                payloads.message(m % n, plan.times(m), m // n),
                m % 65535 + 1,
            )
            for m in range(first, min(plan.messages, first + chunk))
        ]
        size += sum(len(p) for p in packets)
        chunks.append((b"".join(packets), len(packets)))
    conn.send("ready")
    conn.recv()
    cpu = time.process_time()
    began = time.monotonic()
    for data, count in chunks:
        publisher.send(data, count)
    published = time.monotonic()
    publisher.wait_acked()
    return {
        "began": began,
        "published": published,
        "acked": time.monotonic(),
        "count": publisher.acked,
        "bytes": size,
        "cpu": time.process_time() - cpu,
    }


def _paced(
    conn: Connection, publisher: RawPublisher, payloads: Payloads, job: dict[str, Any]
) -> dict[str, Any]:
    """Publish ``rate`` messages/s for ``seconds``; the last document's time is the publish time.

    Every ``_SAMPLE_EVERY``-th message comes from one of the sampled stations in turn (they are
    timed), the others from all stations in turn.
    """
    rate, seconds, docs = job["rate"], job["seconds"], job["docs"]
    sampled: list[int] = job["sampled"]
    n = len(payloads.topics)
    total = int(rate * seconds)
    last_ms = [0] * n
    samples: list[tuple[str, int]] = []
    conn.send("ready")
    conn.recv()
    cpu = time.process_time()
    began = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - began) * rate) + 1)
        while sent < due:
            timed = sent % _SAMPLE_EVERY == 0
            station = sampled[sent // _SAMPLE_EVERY % len(sampled)] if timed else sent % n
            t = max(time.time_ns() // _MS, last_ms[station] + docs)  # distinct per station
            last_ms[station] = t
            times = [t - (docs - 1 - j) for j in range(docs)]
            message = payloads.message(station, times, sent)
            publisher.send(publish_packet(payloads.topics[station], message, sent % 65535 + 1), 1)
            if timed:
                samples.append((payloads.ids[station].decode(), t))
            sent += 1
        time.sleep(0.0005)
    published = time.monotonic()
    publisher.wait_acked()
    return {
        "began": began,
        "published": published,
        "acked": time.monotonic(),
        "count": publisher.acked,
        "samples": samples,
        "cpu": time.process_time() - cpu,
    }


class Publisher:
    """The publisher process: built and ready on return, ``go`` publishes, ``result`` waits."""

    def __init__(self, settings: Settings, chosen: list[Station], job: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=publisher_main,
            args=(child, settings.mqtt_host, settings.mqtt_port, chosen, job),
            daemon=True,
        )
        self._process.start()
        child.close()
        if not self._conn.poll(300) or self._conn.recv() != "ready":
            raise SystemExit("the publisher process did not get ready")

    def go(self) -> None:
        self._conn.send("go")

    def finished(self) -> bool:
        """Whether the result is there (or the process died)."""
        return self._conn.poll(0) or not self._process.is_alive()

    def result(self, timeout: float = 600.0) -> dict[str, Any]:
        if not self._conn.poll(timeout):
            self._process.kill()
            raise SystemExit("the publisher process did not finish")
        result: dict[str, Any] = self._conn.recv()
        self._process.join(10)
        return result


# --- phase results --------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (NaN if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(stat[11]) + int(stat[12])) / _TICK


def machine_seconds() -> dict[str, float]:
    """Idle and steal seconds of the whole machine so far (``/proc/stat``)."""
    try:
        ticks = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return {"idle": float("nan"), "steal": float("nan")}
    return {"idle": int(ticks[3]) / _TICK, "steal": int(ticks[7]) / _TICK}


class CpuMeter:
    """CPU seconds each named process uses between construction and ``stop``.

    Also the machine's ``idle`` seconds and ``steal``: time the hypervisor gave to others, which
    makes a virtual machine's rates vary from run to run.
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.machine = machine_seconds()

    def stop(self) -> dict[str, float]:
        used = {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}
        machine = machine_seconds()
        return used | {f"machine.{k}": machine[k] - v for k, v in self.machine.items()}


@dataclass
class Row:
    """One throughput phase: counts, seconds, rates."""

    label: str
    messages: int
    readings: int
    points: int
    seconds: float
    publish_rate: float
    cpu: dict[str, float] = field(default_factory=dict)
    complete: bool = True
    note: str = ""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


# --- raw ceiling ----------------------------------------------------------------------------------


def raw_ceiling(
    settings: Settings,
    services: dict[str, int],
    chosen: list[Station],
    plan: BurstPlan,
    label: str = "raw ceiling: bare paho counter",
) -> Row:
    """A bare paho client (MQTT 5, QoS 1, auto-ack) only counts what the publisher blasts."""
    state = {"count": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        if not state["count"]:
            state["first"] = now
        state["count"] += 1
        state["last"] = now
        if state["count"] >= plan.messages:
            done.set()

    def on_subscribe(*_args: object) -> None:
        subscribed.set()

    client = make_client(settings, "bench-raw-counter")
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        client.subscribe("ioc/v1/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        publisher = Publisher(settings, chosen, {"mode": "burst", "docs": plan.docs, "plan": plan})
        meter = CpuMeter({**services, "bench": os.getpid()})
        publisher.go()
        done.wait(max(60.0, plan.messages / 1000))
        cpu = meter.stop()
        pub = publisher.result()
    finally:
        client.disconnect()
        client.loop_stop()
    count = int(state["count"])
    seconds = state["last"] - state["first"]
    return Row(
        label,
        count,
        0,
        0,
        seconds,
        pub["count"] / (pub["published"] - pub["began"]),
        cpu={**cpu, "publisher": pub["cpu"]},
        complete=count == plan.messages,
        note="" if count == plan.messages else f"only {count} of {plan.messages} received",
    )


# --- InfluxDB alone ------------------------------------------------------------------------------


def influx_alone(
    settings: Settings, services: dict[str, int], chosen: list[Station], plan: BurstPlan
) -> Row:
    """The points the collectors write, as line protocol POSTed straight to InfluxDB."""
    variants = [[orjson.loads(v) for v in _metric_variants(s.n)] for s in chosen]
    received_ms = time.time_ns() // _MS
    n = plan.stations
    lines = []
    for m in range(plan.messages):
        station = chosen[m % n]
        tags = {"province": station.province, "source": station.id, "ward": station.ward}
        for j, t in enumerate(plan.times(m)):
            fields = {**variants[m % n][(m // n + j) % 8], "received_ms": received_ms}
            lines.append(encode_point(Point("air", fields, t * _MS, tags)))
    db = "bench_influx"
    with _database(settings, db) as store:
        try:
            meter = CpuMeter({**services, "bench": os.getpid()})
            began = time.monotonic()
            for i in range(0, len(lines), _INFLUX_BATCH):
                store.write_lines(lines[i : i + _INFLUX_BATCH])
            seconds = time.monotonic() - began
            cpu = meter.stop()
            seen = _count(store, plan.base_ms)
        finally:
            store.command(f'DROP DATABASE "{db}"')
    return Row(
        f"InfluxDB alone: {_INFLUX_BATCH:,}-line POSTs",
        plan.messages,
        len(lines) * 8,
        len(lines),
        seconds,
        0.0,
        cpu=cpu,
        complete=seen == len(lines),
        note="" if seen == len(lines) else f"only {seen} of {len(lines)} points queryable",
    )


# --- collectors as processes ----------------------------------------------------------------------


def _environment(
    settings: Settings, db: str, ingest_id: str, group: str, root: Path = PROJECT_ROOT
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env["PYTHONPATH"] = str(root)  # the collector's code: this checkout or the baseline tree
    env.update(
        {
            "IOC_VAR_DIR": str(settings.var_dir),
            "IOC_MQTT_HOST": settings.mqtt_host,
            "IOC_MQTT_PORT": str(settings.mqtt_port),
            "IOC_INFLUX_URL": settings.influx_url,
            "IOC_INFLUX_RPC_PORT": str(settings.influx_rpc_port),
            "IOC_INFLUX_DB": db,
            "IOC_REGISTRY_FILE": str(settings.registry_file),
            "IOC_INGEST_ID": ingest_id,
            "IOC_INGEST_GROUP": group,
            "IOC_LOG_LEVEL": "INFO",  # the "subscribed to" line says when it is ready
        }
    )
    return env


def _forget_session(settings: Settings, client_id: str) -> None:
    """Connect once with a clean start and no expiry: the broker drops the persistent session."""
    client = make_client(settings, client_id)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


@contextmanager
def collectors(
    settings: Settings, db: str, names: Sequence[str], group: str, root: Path = PROJECT_ROOT
) -> Iterator[list[int]]:
    """``ioc ingest`` processes on database ``db``, connected and subscribed; yields their pids.

    ``root``: the source tree the collectors run from (``--baseline-tree`` for the old code).
    """
    logs = settings.var_dir / "log"
    logs.mkdir(parents=True, exist_ok=True)
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []
    with ExitStack() as stack:
        for name in names:
            log_path = logs / f"{name}.log"
            out = stack.enter_context(log_path.open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "ioc.cli", "ingest"],
                env=_environment(settings, db, name, group, root),
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            processes.append((process, log_path))
        try:
            deadline = time.monotonic() + 120
            for process, log_path in processes:
                while b"subscribed to" not in log_path.read_bytes():
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"collector did not start:\n{log_path.read_text()}")
                    time.sleep(0.05)
            time.sleep(0.5)  # SUBACK
            yield [p.pid for p, _ in processes]
        finally:
            for process, _ in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process, log_path in processes:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                tail = log_path.read_text(errors="replace").splitlines()
                bad = [line for line in tail if " ERROR " in line or "Traceback" in line]
                if bad:
                    print(f"  ! {log_path.name}: " + "\n    ".join(bad[:5]))
            for name in names:
                _forget_session(settings, f"ioc-{name}")


def _count(store: Store, since_ms: int, until_ms: int | None = None, where: str = "") -> int:
    until = f" AND time < {until_ms * _MS}" if until_ms is not None else ""
    also = f" AND {where}" if where else ""
    series = store.query(
        f'SELECT count("pm25") FROM "raw"."air" WHERE time >= {since_ms * _MS}{until}{also}',
        epoch=None,
    )
    return int(series[0].values[0][1]) if series and series[0].values else 0


def _dead_letters(store: Store) -> int:
    series = store.query('SELECT count("excerpt") FROM "ops"."dead_letter"', epoch=None)
    return int(series[0].values[0][1]) if series and series[0].values else 0


def _warm_up(settings: Settings, store: Store, chosen: Sequence[Station], docs: int) -> None:
    """Messages a day back (not counted later) must be queryable: the collectors really listen."""
    payloads = Payloads(chosen[:_WARMUP_MESSAGES], docs)
    day_ago = time.time_ns() // _MS - 86_400_000
    client = make_client(settings, "bench-warm-up")
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        infos = []
        for i in range(min(_WARMUP_MESSAGES, len(chosen))):
            times = [day_ago + i * 1000 + j for j in range(docs)]
            infos.append(client.publish(payloads.topics[i], payloads.message(i, times, i), qos=1))
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    expected = min(_WARMUP_MESSAGES, len(chosen)) * docs
    deadline = time.monotonic() + 30
    while _count(store, day_ago - 1000, day_ago + 86_400_000 // 2) < expected:
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up messages did not become queryable")
        time.sleep(0.1)


def _database(settings: Settings, db: str) -> Store:
    store = Store(replace(settings, influx_db=db))
    store.ensure_schema()
    return store


def collector_throughput(
    settings: Settings,
    services: dict[str, int],
    chosen: list[Station],
    plan: BurstPlan,
    *,
    label: str,
    names: Sequence[str],
    root: Path = PROJECT_ROOT,
) -> Row:
    """Blast the plan's messages at the collectors; time until every point is queryable."""
    db = f"bench_{names[0].replace('-', '_')}"
    expected = plan.messages * plan.docs
    last_station, last_ms = plan.last()
    last_id = quote_literal(chosen[last_station].id)
    with _database(settings, db) as store:
        try:
            with collectors(settings, db, names, group=f"bench-{names[0]}", root=root) as pids:
                _warm_up(settings, store, chosen, plan.docs)
                publisher = Publisher(
                    settings, chosen, {"mode": "burst", "docs": plan.docs, "plan": plan}
                )
                meter = CpuMeter(
                    {**services, **dict(zip(names, pids, strict=True)), "bench": os.getpid()}
                )
                publisher.go()
                deadline = time.monotonic() + max(120.0, plan.messages / 500)
                seen = 0
                while time.monotonic() < deadline:
                    # A count over every series costs InfluxDB ~10 ms of CPU, which 20 polls a
                    # second would take from the collectors: first wait for the last message
                    # (one series, cheap), then count everything.
                    if _count(store, last_ms, where=f'"source" = {last_id}') >= plan.docs:
                        seen = _count(store, plan.base_ms)
                        if seen >= expected:
                            break
                        time.sleep(0.1)
                    else:
                        time.sleep(0.05)
                visible = time.monotonic()
                cpu = meter.stop()
                pub = publisher.result()
                dead = _dead_letters(store)
        finally:
            store.command(f'DROP DATABASE "{db}"')
    complete = seen >= expected
    note = []
    if not complete:
        note.append(f"only {seen} of {expected} documents queryable")
    if dead:
        note.append(f"{dead} dead letters")
    return Row(
        label,
        plan.messages,
        expected * 8,
        expected,
        visible - pub["began"],
        pub["count"] / (pub["published"] - pub["began"]),
        cpu={**cpu, "publisher": pub["cpu"]},
        complete=complete,
        note="; ".join(note),
    )


# --- latency at a fixed offered rate --------------------------------------------------------------


@dataclass
class Latency:
    """Publish-to-queryable latency of the sampled messages."""

    rate: float
    offered: float
    messages: int
    samples: int
    seen: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    p50_low_ms: float
    p99_low_ms: float
    poll_ms: float
    complete: bool
    dead: int


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank); NaN when there are none."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class _Sightings:
    """Polls the sampled stations' points; remembers when each was first seen."""

    def __init__(self, store: Store, ids: Sequence[str], start_ms: int, window_s: float) -> None:
        self.store = store
        self.which = " OR ".join(f'"source" = {quote_literal(s)}' for s in ids)
        self.start_ms = start_ms
        self.window_ms = int(window_s * 1000)
        # (source, time_ms) -> (the previous poll's request time, the answer time): the point
        # became queryable in between
        self.first: dict[tuple[str, int], tuple[float, float]] = {}
        self.rounds: list[float] = []
        self._asked_before = time.time()

    def poll(self, *, everything: bool = False) -> None:
        """One query over the last ``window_s`` (or, with ``everything``, since the start)."""
        since = self.start_ms
        if not everything:
            since = max(since, time.time_ns() // _MS - self.window_ms)
        asked = time.time()
        series = self.store.query(
            f'SELECT "pm25" FROM "raw"."air" WHERE ({self.which}) AND '
            f'time >= {since * _MS} GROUP BY "source"',
            epoch="ms",
        )
        answered = time.time()
        self.rounds.append(answered - asked)
        for s in series:
            source = s.tags["source"]
            for row in s.values:
                self.first.setdefault((source, row[0]), (self._asked_before, answered))
        self._asked_before = asked


def latency(
    settings: Settings,
    chosen: list[Station],
    *,
    rate: float,
    seconds: float,
    docs: int,
    sample: int,
    poll_s: float,
    window_s: float = 2.0,
    name: str = "lat-1",
    root: Path = PROJECT_ROOT,
) -> Latency:
    """Publish at ``rate`` for ``seconds``; time the sampled messages until queryable."""
    db = f"bench_{name.replace('-', '_')}"
    stride = max(1, len(chosen) // max(1, sample))
    sampled = list(range(0, len(chosen), stride))[:sample]
    job = {"mode": "paced", "docs": docs, "rate": rate, "seconds": seconds, "sampled": sampled}
    with _database(settings, db) as store:
        try:
            with collectors(settings, db, [name], group=f"bench-{name}", root=root):
                _warm_up(settings, store, chosen, docs)
                publisher = Publisher(settings, chosen, job)
                start_ms = time.time_ns() // _MS - 1000
                sightings = _Sightings(store, [chosen[i].id for i in sampled], start_ms, window_s)
                publisher.go()
                while not publisher.finished():
                    sightings.poll()
                    time.sleep(poll_s)
                result = publisher.result()
                wanted = {(s, t) for s, t in result["samples"]}
                deadline = time.monotonic() + 30
                while not wanted <= sightings.first.keys() and time.monotonic() < deadline:
                    sightings.poll(everything=True)
                    time.sleep(poll_s)
                expected = result["count"] * docs
                while (total := _count(store, start_ms)) < expected:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                dead = _dead_letters(store)
        finally:
            store.command(f'DROP DATABASE "{db}"')
    first = sightings.first
    seen = [first[(s, t)] + (t / 1000,) for s, t in result["samples"] if (s, t) in first]
    lat = sorted((answered - sent) * 1000 for _, answered, sent in seen)
    low = sorted(max(0.0, asked - sent) * 1000 for asked, _, sent in seen)
    return Latency(
        rate=rate,
        offered=result["count"] / (result["published"] - result["began"]),
        messages=result["count"],
        samples=len(result["samples"]),
        seen=len(lat),
        p50_ms=_quantile(lat, 0.5),
        p99_ms=_quantile(lat, 0.99),
        max_ms=_quantile(lat, 1.0),
        p50_low_ms=_quantile(low, 0.5),
        p99_low_ms=_quantile(low, 0.99),
        poll_ms=_quantile(sorted(sightings.rounds), 0.5) * 1000,
        complete=total >= expected,
        dead=dead,
    )


# --- report ---------------------------------------------------------------------------------------


def _versions(settings: Settings) -> str:
    try:
        text = subprocess.run(
            [find_binary("mosquitto"), "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        mosquitto = text.splitlines()[0].replace("mosquitto version ", "") if text else "?"
    except (OSError, subprocess.SubprocessError):
        mosquitto = "?"
    with Store(settings) as store:
        influx = store.ping()
    return f"Mosquitto {mosquitto}, InfluxDB {influx}, paho-mqtt {version('paho-mqtt')}"


def _print_rows(rows: Sequence[Row], raw: float) -> None:
    head = (
        f"{'phase':<38} {'messages':>9} {'readings':>10} {'seconds':>8} {'msg/s':>8} "
        f"{'readings/s':>11} {'points/s':>9} {'÷ raw':>6} {'pub msg/s':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        readings = f"{r.readings:>10,}" if r.readings else f"{'-':>10}"
        per_s = f"{r.readings / r.seconds:>11,.0f}" if r.readings else f"{'-':>11}"
        points = f"{r.points / r.seconds:>9,.0f}" if r.points else f"{'-':>9}"
        print(
            f"{r.label:<38} {r.messages:>9,} {readings} {r.seconds:>8.2f} {r.rate:>8,.0f} "
            f"{per_s} {points} {r.rate / raw:>6.2f} "
            + (f"{r.publish_rate:>10,.0f}" if r.publish_rate else f"{'-':>10}")
        )
        if r.note:
            print(f"{'':<4}! {r.note}")


def _print_cpu(rows: Sequence[Row], cpus: int) -> None:
    print(
        f"\nCPU seconds used during each measurement (there was: {cpus} CPUs x seconds; "
        "client(s): the counting client, the collector processes, or this process writing to "
        "InfluxDB; us/msg: their CPU per message; us/point: InfluxDB's CPU per point; idle and "
        "steal: the whole machine, steal = taken by the hypervisor)"
    )
    head = (
        f"{'phase':<38} {'there was':>9} {'mosquitto':>9} {'influxd':>8} {'publisher':>9} "
        f"{'client(s)':>12} {'us/msg':>7} {'us/point':>8} {'idle':>6} {'steal':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        cpu = dict(r.cpu)
        others = {"mosquitto", "influxdb", "publisher", "bench", "machine.idle", "machine.steal"}
        clients = [v for k, v in cpu.items() if k not in others] or [cpu.get("bench", 0.0)]
        shown = " + ".join(f"{v:.1f}" for v in clients)
        influxd = cpu.get("influxdb", 0.0)
        per_point = f"{influxd / r.points * 1e6:>8.1f}" if r.points else f"{'-':>8}"
        print(
            f"{r.label:<38} {cpus * r.seconds:>9.1f} {cpu.get('mosquitto', 0.0):>9.1f} "
            f"{influxd:>8.1f} {cpu.get('publisher', 0.0):>9.1f} {shown:>12} "
            f"{sum(clients) / r.messages * 1e6:>7.0f} {per_point} "
            f"{cpu.get('machine.idle', 0.0):>6.1f} {cpu.get('machine.steal', 0.0):>6.1f}"
        )


def _spread(values: Sequence[float], digits: int = 2) -> str:
    """``median (min-max)`` of per-round figures: the noise is part of the result."""
    if not values:
        return "-"
    ordered = sorted(values)
    mid = statistics.median(ordered)
    return f"{mid:.{digits}f} ({ordered[0]:.{digits}f}-{ordered[-1]:.{digits}f})"


@dataclass
class Round:
    """One round: the raw ceiling, then the collector(s), each run once, in alternating order."""

    raw: Row
    one: Row
    base: Row | None = None
    latency: Latency | None = None
    base_latency: Latency | None = None


def _collector_rounds(
    settings: Settings,
    services: dict[str, int],
    args: argparse.Namespace,
    chosen: list[Station],
) -> list[Round]:
    """Interleaved rounds: raw ceiling and collector(s) next to each other, order alternating.

    The machine is shared (other processes take CPU at random moments): each collector rate is
    divided by the raw ceiling of its own round, and the rounds' ratios are reported as median and
    range, never one lucky run.
    """
    docs = args.docs
    baseline = Path(args.baseline_tree) if args.baseline_tree else None
    rounds: list[Round] = []
    for r in range(1, args.rounds + 1):

        def raw_phase(r: int = r) -> Row:
            plan = burst_plan(args.messages, len(chosen), docs)
            return raw_ceiling(settings, services, chosen, plan, f"raw ceiling, round {r}")

        def one_phase(r: int = r) -> Row:
            plan = burst_plan(args.messages, len(chosen), docs)
            label = f"one collector, round {r}"
            return collector_throughput(
                settings, services, chosen, plan, label=label, names=[f"one-{r}"]
            )

        def base_phase(r: int = r) -> Row | None:
            if baseline is None:
                return None
            plan = burst_plan(args.messages, len(chosen), docs)
            label = f"baseline collector, round {r}"
            return collector_throughput(
                settings, services, chosen, plan, label=label, names=[f"base-{r}"], root=baseline
            )

        if r % 2:
            raw, one, base = raw_phase(), one_phase(), base_phase()
        else:
            base, one, raw = base_phase(), one_phase(), raw_phase()
        this = Round(raw, one, base)
        if args.latency_seconds > 0:
            kwargs: dict[str, Any] = {
                "rate": args.rate,
                "seconds": args.latency_seconds,
                "docs": docs,
                "sample": args.sample,
                "poll_s": args.poll_ms / 1000,
            }
            this.latency = latency(settings, chosen, name=f"lat-{r}", **kwargs)
            if baseline is not None:
                this.base_latency = latency(
                    settings, chosen, name=f"lat-base-{r}", root=baseline, **kwargs
                )
        rounds.append(this)
        ratio = f"{one.rate / raw.rate:.2f}"
        if base is not None:
            ratio += f", baseline {base.rate / raw.rate:.2f}"
        print(
            f"  round {r}: raw {raw.rate:,.0f} msg/s, one collector {one.rate:,.0f} msg/s "
            f"(ratio {ratio})",
            flush=True,
        )
    return rounds


def _print_latency(rounds: Sequence[Round], args: argparse.Namespace) -> None:
    print(
        f"\nlatency, publish -> queryable, one collector at {args.rate:,.0f} msg/s offered for "
        f"{args.latency_seconds:.0f} s per round (1 message in {_SAMPLE_EVERY} timed; polled "
        f"every {args.poll_ms:.0f} ms; upper bounds: the first answer with the point; lower "
        "bounds: the poll before it; poll ms: the median time a poll's query took, which with "
        "the poll interval is the resolution of these figures):"
    )
    head = (
        f"{'collector':<10} {'round':>5} {'offered':>8} {'seen':>11} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'p50 low':>8} {'p99 low':>8} {'poll ms':>8}  note"
    )
    print(head)
    print("-" * len(head))
    for which in ("after", "baseline"):
        for i, r in enumerate(rounds, 1):
            lat = r.latency if which == "after" else r.base_latency
            if lat is None:
                continue
            note = (
                "" if lat.complete and not lat.dead else f"complete {lat.complete}, dead {lat.dead}"
            )
            print(
                f"{which:<10} {i:>5} {lat.offered:>8,.0f} {f'{lat.seen}/{lat.samples}':>11} "
                f"{lat.p50_ms:>7,.0f} {lat.p99_ms:>7,.0f} {lat.max_ms:>7,.0f} "
                f"{lat.p50_low_ms:>8,.0f} {lat.p99_low_ms:>8,.0f} {lat.poll_ms:>8,.0f}  {note}"
            )
    for which in ("after", "baseline"):
        lats = [x for x in (r.latency if which == "after" else r.base_latency for r in rounds) if x]
        if lats:
            print(
                f"  {which}: p50 {_spread([x.p50_ms for x in lats], 0)} ms, "
                f"p99 {_spread([x.p99_ms for x in lats], 0)} ms (median (min-max) of rounds)"
            )


def measure(
    settings: Settings, services: dict[str, int], args: argparse.Namespace, chosen: list[Station]
) -> None:
    docs = args.docs
    print(
        f"IOC ingest benchmark: {len(chosen):,} air stations, {args.messages:,} messages per "
        f"throughput phase, {args.rounds} interleaved rounds; a message is an IOC JSON batch of "
        f"{docs} documents x 8 metrics = {8 * docs} readings = {docs} InfluxDB points"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {_versions(settings)}"
    )
    print(
        "publisher: a separate process (raw MQTT 3.1.1, QoS 1); receivers: MQTT 5, QoS 1; "
        "collectors: `ioc ingest` processes with the default settings"
        + (f"; baseline collector: {args.baseline_tree}" if args.baseline_tree else "")
        + "\n"
    )
    rounds = _collector_rounds(settings, services, args, chosen)
    rows: list[Row] = []
    for r in rounds:
        rows += [r.raw, r.one] + ([r.base] if r.base is not None else [])
    if not args.no_extra:
        alone = influx_alone(
            settings, services, chosen, burst_plan(args.messages, len(chosen), docs)
        )
        rows.append(alone)
        print(f"  measured {alone.label}: {alone.rate:,.0f} msg/s", flush=True)
        two = collector_throughput(
            settings,
            services,
            chosen,
            burst_plan(args.messages, len(chosen), docs),
            label="two collectors, shared subscription",
            names=["two-1", "two-2"],
        )
        rows.append(two)
        print(f"  measured {two.label}: {two.rate:,.0f} msg/s", flush=True)
    ceiling = statistics.median(r.raw.rate for r in rounds)
    print()
    _print_rows(rows, ceiling)
    print(
        "\n(÷ raw: msg/s over the median raw ceiling of the rounds; pub msg/s: what the "
        "publisher achieved in that phase; a collector rate ends when the last point is "
        "queryable; InfluxDB alone: the collectors' points, encoded beforehand, written by this "
        "process: what the database costs, in messages' worth)"
    )
    _print_cpu(rows, os.cpu_count() or 1)
    if args.latency_seconds > 0:
        _print_latency(rounds, args)
    ones = [r.one.rate / r.raw.rate for r in rounds]
    print(
        "\nratio one collector / raw ceiling of the same round, median (min-max) of "
        f"{len(rounds)} rounds: {_spread(ones)}"
    )
    bases = [r.base.rate / r.raw.rate for r in rounds if r.base is not None]
    if bases:
        print(f"ratio baseline collector / raw ceiling, same rounds: {_spread(bases)}")
    cpu_one = [
        sum(v for k, v in r.one.cpu.items() if k.startswith("one-")) / r.one.messages * 1e6
        for r in rounds
    ]
    print(f"collector CPU per message (us, all its threads): {_spread(cpu_one, 0)}", end="")
    if bases:
        cpu_base = [
            sum(v for k, v in r.base.cpu.items() if k.startswith("base-")) / r.base.messages * 1e6
            for r in rounds
            if r.base is not None
        ]
        print(f"; baseline: {_spread(cpu_base, 0)}", end="")
    print()


# --- soak: memory over a long steady run ----------------------------------------------------------


def soak(settings: Settings, chosen: list[Station], args: argparse.Namespace) -> None:
    """One collector at a steady rate for ``--soak`` seconds: its RSS at start, each minute, end."""
    seconds, rate, docs = args.soak, args.soak_rate, args.docs
    print(
        f"IOC ingest soak: one collector, {rate:,.0f} msg/s offered for {seconds:,.0f} s "
        f"({len(chosen):,} stations, {8 * docs} readings per message); machine: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; {_versions(settings)}"
    )
    db = "bench_soak"
    job = {"mode": "paced", "docs": docs, "rate": rate, "seconds": seconds, "sampled": [0]}
    samples: list[tuple[float, int]] = []
    with _database(settings, db) as store:
        try:
            with collectors(settings, db, ["soak-1"], group="bench-soak") as pids:
                pid = pids[0]
                _warm_up(settings, store, chosen, docs)
                publisher = Publisher(settings, chosen, job)
                start_ms = time.time_ns() // _MS - 1000
                publisher.go()
                began = time.monotonic()
                samples.append((0.0, rss_kib(pid)))
                print(f"  t=   0 s  VmRSS {samples[-1][1] / 1024:8.1f} MiB (start)", flush=True)
                next_at = 60.0
                while not publisher.finished():
                    time.sleep(0.5)
                    elapsed = time.monotonic() - began
                    if elapsed >= next_at:
                        samples.append((elapsed, rss_kib(pid)))
                        print(
                            f"  t={elapsed:4.0f} s  VmRSS {samples[-1][1] / 1024:8.1f} MiB",
                            flush=True,
                        )
                        next_at += 60.0
                result = publisher.result()
                expected = result["count"] * docs
                deadline = time.monotonic() + 60
                while (seen := _count(store, start_ms)) < expected:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                samples.append((time.monotonic() - began, rss_kib(pid)))
                print(
                    f"  t={samples[-1][0]:4.0f} s  VmRSS {samples[-1][1] / 1024:8.1f} MiB (end, "
                    f"all points written)",
                    flush=True,
                )
                dead = _dead_letters(store)
        finally:
            store.command(f'DROP DATABASE "{db}"')
    offered = result["count"] / (result["published"] - result["began"])
    first_minute = next((kib for t, kib in samples if t >= 60.0), samples[-1][1])
    print(
        f"\n{result['count']:,} messages at {offered:,.0f} msg/s offered; {seen:,} of "
        f"{expected:,} documents queryable; {dead} dead letters"
    )
    print(
        f"collector VmRSS: start {samples[0][1] / 1024:.1f} MiB, after 1 min "
        f"{first_minute / 1024:.1f} MiB, end {samples[-1][1] / 1024:.1f} MiB; growth from minute "
        f"1 to the end: {(samples[-1][1] - first_minute) / 1024:+.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3000, help="air stations, one per ward")
    parser.add_argument("--messages", type=int, default=200_000, help="per throughput phase")
    parser.add_argument("--docs", type=int, default=2, help="documents (x 8 metrics) per message")
    parser.add_argument("--rate", type=float, default=2000.0, help="latency phase msg/s offered")
    parser.add_argument(
        "--latency-seconds", type=float, default=20.0, help="per round (0: no latency phase)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument(
        "--baseline-tree",
        help="also run, in every round, the collector of this source tree (the code before a "
        "change, e.g. `git archive HEAD | tar -x -C /tmp/base`): before and after in one run",
    )
    parser.add_argument(
        "--no-extra", action="store_true", help="skip the InfluxDB-alone and two-collector phases"
    )
    parser.add_argument(
        "--soak",
        type=float,
        nargs="?",
        const=600.0,
        default=None,
        metavar="SECONDS",
        help="only a soak: one collector at --soak-rate for SECONDS (600 if not given), "
        "its RSS every minute",
    )
    parser.add_argument("--soak-rate", type=float, default=2000.0)
    parser.add_argument(
        "--sample", type=int, default=20, help="stations timed for latency (1 message in 10)"
    )
    parser.add_argument("--poll-ms", type=float, default=25.0)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.devices, args.messages, args.latency_seconds, args.rounds = 300, 20_000, 5.0, 2
    if args.docs < 1 or args.messages < 1 or args.rounds < 1:
        parser.error("--docs, --messages and --rounds must be >= 1")
    chosen = stations(args.devices)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as var:
        registry = Path(var) / "registry.toml"
        registry.write_text(registry_toml(chosen), encoding="utf-8")
        mqtt_port, influx, rpc = free_ports(3)
        settings = load_settings(
            {
                "IOC_VAR_DIR": str(Path(var)),
                "IOC_MQTT_PORT": str(mqtt_port),
                "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
                "IOC_INFLUX_RPC_PORT": str(rpc),
                "IOC_INFLUX_DB": "ioc_bench",
                "IOC_REGISTRY_FILE": str(registry),
                "IOC_LOG_LEVEL": "WARNING",
            }
        )
        with LocalStack(settings).running(services=("mosquitto", "influxdb")) as statuses:
            services = {s.name: s.pid for s in statuses if s.pid is not None}
            if args.soak is not None:
                soak(settings, chosen, args)
            else:
                measure(settings, services, args, chosen)


if __name__ == "__main__":
    main()
