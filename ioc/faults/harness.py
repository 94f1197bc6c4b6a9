"""The fault suite's harness: real servers and collectors, a numbered publisher, a checker.

* :class:`Harness` starts a private Mosquitto and InfluxDB (the project's own
  :class:`~ioc.stack.LocalStack`) on free loopback ports under a work directory, and collectors
  (``python -m ioc.cli ingest``) as child processes, each with its own ``IOC_INGEST_ID`` and
  spool. It can SIGKILL, SIGSTOP, stop and restart each of them.
* :class:`NumberedPublisher` sends numbered readings at QoS 1: reading ``n`` comes from source
  ``SOURCES[n % 3]`` with device time ``base_ms + n`` and ``pm25`` derived from ``n``, so each
  stored point says which reading it is. It records exactly which numbers got a PUBACK (paho's
  ``on_publish`` with the message id; an MQTT 5 reason code >= 0x80 is a refusal, not an ack).
* :func:`check` reads InfluxDB and counts, among what was acknowledged only, what is lost,
  stored twice, stored but never published, and the gaps; :func:`wait_until_stored` measures
  the recovery time.

Only acknowledged readings count: a reading published while the broker was down and never
acknowledged may be lost without breaking any promise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from types import TracebackType
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ioc.errors import StackError
from ioc.faults import Profile, Trial
from ioc.mqtt import make_client, session_properties
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack, stack_environment, terminate_with_parent
from ioc.store import Store

log = logging.getLogger(__name__)

SOURCES = ("01-air-hoan-kiem", "01-air-cau-giay", "01-air-long-bien")
"""Registered air stations of the demo registry (province 01): the publisher's devices."""

_SERVICES = ("mosquitto", "influxdb")


class Unavailable(RuntimeError):
    """This machine cannot inject the fault (e.g. no permission to mount a tmpfs)."""


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 0.1 s; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- collectors -------------------------------------------------------------------------------


class CollectorProcess:
    """One ``ioc ingest`` child process; restartable under the same id (same session, spool)."""

    def __init__(self, env: dict[str, str], ingest_id: str, log_file: Path) -> None:
        self.env = {**env, "IOC_INGEST_ID": ingest_id}
        self.ingest_id = ingest_id
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, timeout: float = 60.0) -> None:
        """Start it and wait until it has subscribed."""
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ioc.cli", "ingest"],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=terminate_with_parent,  # noqa: PLW1509
            )
        self.starts += 1
        wait_for(
            lambda: self.log_text().count("subscribed to") >= self.starts,
            timeout,
            f"collector {self.ingest_id} to subscribe (start {self.starts}; see {self.log_file})",
        )

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"collector {self.ingest_id} is not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM (it drains), SIGKILL after ``timeout``; its exit code."""
        if self.process is None:
            return None
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)


# --- the harness ------------------------------------------------------------------------------


class Harness:
    """A private Mosquitto + InfluxDB under ``workdir`` and the collectors of one trial."""

    def __init__(self, workdir: Path, **env_extra: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        # One collector by default: no shared subscription unless a scenario names a group.
        self.env = stack_environment(
            workdir / "var", "ioc_faults", **{"IOC_INGEST_GROUP": "", **env_extra}
        )
        self.settings: Settings = load_settings(self.env)
        self.stack = LocalStack(self.settings)
        self.collectors: list[CollectorProcess] = []
        self.last_publisher: NumberedPublisher | None = None
        self._closers = ExitStack()
        self._started = False

    def __enter__(self) -> Harness:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def up(self, services: Sequence[str] = _SERVICES) -> None:
        """Start (or restart) the servers and wait until they answer.

        On the first start only, a port that another process took since it was chosen means
        new ports (``env`` and ``settings`` change): read them after ``up``.
        """
        for attempt in range(5):
            try:
                self.stack.up(die_with_parent=True, services=tuple(services), timeout=90)
                break
            except StackError as error:
                if self._started or "already in use" not in str(error) or attempt == 4:
                    raise
                log.info("%s; choosing other ports", error)
                self.stack.down(timeout=10)
                fresh = stack_environment(self.settings.var_dir, self.settings.influx_db)
                self.env.update({k: v for k, v in fresh.items() if k != "IOC_VAR_DIR"})
                self.settings = load_settings(self.env)
                self.stack = LocalStack(self.settings)
        self._started = True

    def down(self, service: str) -> None:
        """Stop one server gracefully (SIGTERM: Mosquitto saves its database first)."""
        self.stack.down(services=(service,))

    def pid(self, service: str) -> int:
        """The pid of a running server of this stack (from the stack's pid file)."""
        doc = json.loads((self.stack.run_dir / f"{service}.pid").read_text())
        return int(doc["pid"])

    def kill(self, service: str) -> None:
        """SIGKILL one server and wait until it is gone (no chance to save anything)."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{service} (pid {pid}) survived SIGKILL")

    def collector(self, name: str = "", **env: str) -> CollectorProcess:
        """A collector (not started) with its own id; ``env`` overrides settings for it alone."""
        ingest_id = name or f"c{len(self.collectors) + 1}-{uuid.uuid4().hex[:6]}"
        process = CollectorProcess(
            {**self.env, **env}, ingest_id, self.workdir / f"collector-{ingest_id}.log"
        )
        self.collectors.append(process)
        return process

    def spool_dir(self, collector: CollectorProcess) -> Path:
        return self.settings.var_dir / "spool" / collector.ingest_id

    def store(self) -> Store:
        return self._closers.enter_context(Store(self.settings))

    def publisher(self, count: int) -> NumberedPublisher:
        publisher = NumberedPublisher(self.settings, count)
        self._closers.callback(publisher.close)
        self.last_publisher = publisher
        return publisher

    def broker_dropped(self) -> int:
        """What Mosquitto says it refused or dropped (log lines), since the stack started."""
        try:
            text = self.stack.log_file("mosquitto").read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return len(_BROKER_DROPS.findall(text))

    def close(self) -> None:
        """Stop every collector and server this harness started (idempotent)."""
        for collector in self.collectors:
            with contextlib.suppress(Exception):
                collector.stop(timeout=20)
        self._closers.close()
        self.stack.down(timeout=10)


_BROKER_DROPS = re.compile(
    r"oversize packet|messages are being dropped|Outgoing messages are being dropped|"
    r"disconnected due to malformed packet"
)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


# --- the numbered publisher -------------------------------------------------------------------


def topic_of(n: int) -> str:
    source = SOURCES[n % len(SOURCES)]
    return f"ioc/v1/01/{source}/air"


def pm25_of(n: int) -> float:
    """The reading's pm25, derived from its number so that a stored point names its reading."""
    return (n % 4000) / 8


class NumberedPublisher:
    """Publishes readings ``0..count-1`` at QoS 1 and records which the broker acknowledged.

    Device times are ``base_ms + n``: ``base_ms`` lies ``count`` ms plus a minute in the past, so
    every reading is recent and unique per source. A persistent session keeps unacknowledged
    publishes across a broker restart (paho sends them again on reconnect).
    """

    def __init__(self, settings: Settings, count: int) -> None:
        self.count = count
        self.base_ms = time.time_ns() // 10**6 - count - 60_000
        self._lock = threading.Lock()
        self._mids: dict[int, int] = {}  # in-flight message id -> reading number
        self._early: dict[int, int] = {}  # message id -> reason code, acknowledged before mapped
        self.published: set[int] = set()
        self.acked: set[int] = set()
        self.refused: dict[int, int] = {}  # reading number -> MQTT 5 reason code >= 0x80
        self.last_ack_at = 0.0
        self.client = make_client(settings, f"faults-pub-{uuid.uuid4().hex[:8]}", persistent=True)
        self.client.max_inflight_messages_set(200)
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        options: dict[str, Any] = {"keepalive": 10}
        properties = session_properties(settings, receive_maximum=1000)
        if properties is not None:
            options.update(clean_start=False, properties=properties)
        self.client.connect(settings.mqtt_host, settings.mqtt_port, **options)
        self.client.loop_start()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def payload(self, n: int) -> bytes:
        source = SOURCES[n % len(SOURCES)]
        return orjson.dumps(
            {
                "v": 1,
                "source": source,
                "time_ms": self.base_ms + n,
                "metrics": {"pm25": pm25_of(n), "pm10": 51},
            }
        )

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, reason: Any, _props: object
    ) -> None:
        code = int(getattr(reason, "value", 0) or 0)
        with self._lock:
            n = self._mids.pop(mid, None)
            if n is None:  # the PUBACK came before publish() returned: publish() records it
                self._early[mid] = code
                return
            self._record(n, code)

    def _record(self, n: int, code: int) -> None:
        if code >= 0x80:
            self.refused[n] = code
        else:
            self.acked.add(n)
            self.last_ack_at = time.monotonic()

    def publish(self, n: int) -> None:
        # Not under self._lock: paho may call on_publish (which takes it) while publish() waits
        # for paho's own locks.
        info = self.client.publish(topic_of(n), self.payload(n), qos=1)
        with self._lock:
            self.published.add(n)
            code = self._early.pop(info.mid, None)
            if code is None:
                self._mids[info.mid] = n
            else:
                self._record(n, code)

    def publish_range(self, start: int, stop: int, rate: float) -> None:
        """Publish ``start..stop-1`` at ``rate`` per second (paced, not bursty)."""
        began = time.monotonic()
        for i, n in enumerate(range(start, stop)):
            due = began + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.publish(n)

    def stream(self, rate: float, start: int = 0, stop: int | None = None) -> None:
        """Publish in a background thread; :meth:`join` waits for it."""

        def body() -> None:
            try:
                self.publish_range(start, self.count if stop is None else stop, rate)
            except BaseException as exc:  # reported by join()
                self.error = exc

        self._thread = threading.Thread(target=body, name="faults-publisher", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 600.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError("the publisher did not finish")
        if self.error is not None:
            raise self.error

    def outstanding(self) -> int:
        with self._lock:
            return len(self._mids)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until every publish is acknowledged or refused (or ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: self.outstanding() == 0, timeout, "PUBACKs")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the checker ------------------------------------------------------------------------------


@dataclass(slots=True)
class Count:
    """What the checker found for one publisher's readings."""

    acknowledged: int
    stored: int
    lost: list[int] = field(default_factory=list)
    duplicates: int = 0
    unexpected: int = 0

    @property
    def gaps(self) -> int:
        """Runs of consecutive lost numbers."""
        runs, previous = 0, None
        for n in self.lost:
            if previous is None or n != previous + 1:
                runs += 1
            previous = n
        return runs


def stored_readings(store: Store, publisher: NumberedPublisher) -> Counter[int]:
    """How many points InfluxDB holds per reading number (any tag set of the three sources)."""
    first, last = publisher.base_ms, publisher.base_ms + publisher.count
    found: Counter[int] = Counter()
    unexpected = 0
    for index, source in enumerate(SOURCES):
        answer = store.query(
            f'SELECT "pm25" FROM "raw"."air" WHERE "source" = $s AND time >= {first}ms '
            f"AND time < {last}ms GROUP BY *",
            {"s": source},
            epoch="ms",
        )
        for series in answer:
            for row in series.values:
                n = int(row[0]) - publisher.base_ms
                if n % len(SOURCES) != index or row[1] != pm25_of(n):
                    unexpected += 1
                    n = -1 - unexpected  # counted apart from the numbered readings
                found[n] += 1
    return found


def check(store: Store, publisher: NumberedPublisher) -> Count:
    """Lost (= acknowledged and not stored), duplicates, unexpected, of one publisher."""
    found = stored_readings(store, publisher)
    with publisher._lock:
        acked = set(publisher.acked)
        published = set(publisher.published)
    numbered = {n: c for n, c in found.items() if n >= 0}
    return Count(
        acknowledged=len(acked),
        stored=len(numbered),
        lost=sorted(acked - numbered.keys()),
        duplicates=sum(c - 1 for c in numbered.values() if c > 1),
        unexpected=sum(c for n, c in found.items() if n < 0 or n not in published),
    )


def wait_until_stored(
    store: Store, publisher: NumberedPublisher, *, since: float, timeout: float
) -> tuple[Count, float | None]:
    """Poll until every acknowledged reading is stored; the count and seconds from ``since``.

    The recovery time is None when some acknowledged reading is still missing at ``timeout``.
    A last count a second later catches a redelivery that would store something twice.
    """
    deadline = time.monotonic() + timeout
    recovered: float | None = None
    while True:
        try:
            count = check(store, publisher)
        except Exception as exc:  # InfluxDB may still be starting: keep polling
            log.debug("check failed: %s", exc)
            count = None
        if count is not None and not count.lost:
            recovered = time.monotonic() - since
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    return check(store, publisher), recovered


def fill(trial: Trial, count: Count, recovery_s: float | None, *, zero_loss: bool = True) -> Trial:
    """Copy a count into a trial and add the standard checks (zero lost, zero duplicates)."""
    trial.acknowledged = count.acknowledged
    trial.stored = count.stored
    trial.lost = len(count.lost)
    trial.duplicates = count.duplicates
    trial.unexpected = count.unexpected
    trial.gaps = count.gaps
    trial.recovery_s = recovery_s
    trial.checks["readings acknowledged"] = count.acknowledged > 0
    if zero_loss:
        trial.checks["zero lost"] = not count.lost
    trial.checks["zero duplicates"] = count.duplicates == 0
    trial.checks["nothing unexpected"] = count.unexpected == 0
    if count.lost:
        shown = ", ".join(map(str, count.lost[:10]))
        trial.notes += f" lost readings (first): {shown}."
    return trial


# --- running trials ---------------------------------------------------------------------------


def run_trials(
    profile: Profile,
    rng: Random,
    workdir: Path,
    body: Callable[[Random, Path], Trial],
    *,
    concurrent: int = 1,
    trials: int | None = None,
) -> list[Trial]:
    """Run ``trials`` (default ``profile.trials``) trials of ``body``, each in its own directory.

    Each trial gets its own generator seeded from ``rng`` in trial order, so a seed reproduces
    the same fault moments however the threads interleave. ``concurrent`` > 1 runs independent
    trials (each with its own stack) at the same time. A trial that raises is a failed trial
    carrying the error, not a crashed suite.
    """
    total = profile.trials if trials is None else trials
    seeds = [rng.getrandbits(64) for _ in range(total)]

    def one(index: int) -> Trial:
        started = time.monotonic()
        try:
            trial = body(Random(seeds[index]), workdir / f"trial-{index + 1:02d}")  # noqa: S311
        except Unavailable:
            raise
        except Exception as exc:
            log.exception("trial %d failed", index + 1)
            trial = Trial(notes=f"trial raised {type(exc).__name__}: {exc}")
            trial.checks["trial completed"] = False
        log.info("trial %d done in %.0f s: %s", index + 1, time.monotonic() - started, trial.checks)
        return trial

    if concurrent <= 1:
        return [one(i) for i in range(total)]
    with ThreadPoolExecutor(max_workers=concurrent, thread_name_prefix="trial") as pool:
        return list(pool.map(one, range(total)))
