"""The collector through the real Mosquitto into the real InfluxDB.

In-process collectors run in a thread; the crash test runs ``ioc ingest`` as a process and
kills it with SIGKILL. Every published reading has its own timestamp, so "nothing lost, nothing
doubled" is "exactly the published timestamps are in the database".
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from ingest.collector import Collector
from ioc.catalog import get_catalog
from ioc.mqtt import make_client
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack
from ioc.store import Series, Store
from tests.conftest import stack_environment

pytestmark = pytest.mark.services

SOURCE = "01-air-hoan-kiem"  # demo registry: air station in ward 00070 of Hà Nội
TOPIC = f"ioc/v1/01/{SOURCE}/air"


def _settings(base: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        base, var_dir=tmp_path, ingest_id=f"t{uuid.uuid4().hex[:8]}", ingest_group=None
    )


@contextmanager
def running(settings: Settings) -> Iterator[Collector]:
    """A collector in a thread, connected and subscribed, stopped (drained) at the end."""
    collector = Collector(settings, get_catalog(), metrics_interval=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert collector.connected.wait(20), "collector did not connect"
        time.sleep(0.3)  # SUBACK
        yield collector
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK."""

    def __init__(self, settings: Settings) -> None:
        self.client = make_client(settings, f"pub-{uuid.uuid4().hex[:8]}")
        self.client.connect(settings.mqtt_host, settings.mqtt_port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=20)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(services: Settings) -> Iterator[Publisher]:
    p = Publisher(services)
    yield p
    p.close()


def reading(t_ms: int, pm25: float = 35.2, source: str = SOURCE) -> bytes:
    return orjson.dumps(
        {"v": 1, "source": source, "time_ms": t_ms, "metrics": {"pm25": pm25, "pm10": 51}}
    )


def stored_times(store: Store, source: str = SOURCE) -> list[int]:
    series = store.query(
        'SELECT "pm25" FROM "raw"."air" WHERE "source" = $s', {"s": source}, epoch="ms"
    )
    return [row[0] for s in series for row in s.values]


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def dead_letters(store: Store) -> list[dict[str, object]]:
    series = store.query('SELECT * FROM "ops"."dead_letter"')
    return [row for s in series for row in s.rows()]


def test_readings_are_stored_with_registry_tags_and_bad_ones_dead_lettered(
    own_database: Settings, tmp_path: Path, publisher: Publisher
) -> None:
    settings = _settings(own_database, tmp_path)
    now_ms = time.time_ns() // 10**6
    with running(settings) as collector, Store(settings) as store:
        publisher.publish(TOPIC, reading(now_ms - 1000))
        publisher.publish(TOPIC, b'{"v": 1, "source": "01-air-hoan-kiem", "time_ms": ')
        publisher.publish("ioc/v1/01/nobody/air", reading(now_ms, source="nobody"))
        publisher.publish("ioc/v1/40/01-air-hoan-kiem/air", reading(now_ms))  # wrong province
        wait_for(lambda: len(dead_letters(store)) == 3, what="3 dead letters")
        wait_for(lambda: stored_times(store) == [now_ms - 1000], what="the reading")
        (row,) = store.query('SELECT * FROM "raw"."air"')[0].rows()
        assert (row["province"], row["ward"], row["source"]) == ("01", "00070", SOURCE)
        assert (row["pm25"], row["pm10"]) == (35.2, 51.0)
        assert abs(row["received_ms"] - now_ms) < 60_000
        reasons = sorted(str(letter["reason"]) for letter in dead_letters(store))
        assert reasons == ["invalid_json", "topic_mismatch", "unknown_source"]
        wait_for(lambda: collector.counters["acked"] == 4, what="4 acknowledgements")


def _air_series(answer: Sequence[Series]) -> list[object]:
    return [row for s in answer for row in s.values if "air" in str(row[0])]


def test_a_newline_in_a_tag_value_creates_no_series(
    own_database: Settings, tmp_path: Path, publisher: Publisher
) -> None:
    settings = _settings(own_database, tmp_path)
    now_ms = time.time_ns() // 10**6
    with running(settings), Store(settings) as store:
        publisher.publish(TOPIC, reading(now_ms))
        wait_for(lambda: len(stored_times(store)) == 1, what="the reading")
        before = store.query("SHOW SERIES")
        publisher.publish(TOPIC, reading(now_ms + 1, source="01-air-hoan-kiem\nprovince=99"))
        publisher.publish(
            TOPIC, orjson.dumps({"source": SOURCE, "time_ms": now_ms, "metrics": {"pm25\n": 1}})
        )
        wait_for(lambda: len(dead_letters(store)) == 2, what="2 dead letters")
        after = store.query("SHOW SERIES")
        assert _air_series(after) == _air_series(before)


def test_the_collector_resubscribes_after_a_broker_restart(tmp_path: Path) -> None:
    settings = _settings(load_settings(stack_environment(tmp_path / "stack")), tmp_path)
    stack = LocalStack(settings)
    stack.up(die_with_parent=True)
    try:
        now_ms = time.time_ns() // 10**6
        with running(settings) as collector, Store(settings) as store:
            publisher = Publisher(settings)
            publisher.publish(TOPIC, reading(now_ms))
            publisher.close()
            wait_for(lambda: len(stored_times(store)) == 1, what="first reading")
            stack.down(services=("mosquitto",))
            wait_for(lambda: not collector.connected.is_set(), what="the disconnect")
            stack.up(die_with_parent=True)
            wait_for(collector.connected.is_set, timeout=60, what="the reconnect")
            time.sleep(0.5)
            publisher = Publisher(settings)
            publisher.publish(TOPIC, reading(now_ms + 1000))
            publisher.close()
            wait_for(lambda: len(stored_times(store)) == 2, what="reading after the restart")
            assert collector.counters["connects"] >= 2
    finally:
        stack.down()


def test_a_reconnect_that_finds_no_session_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker SIGKILLed before it first saved (within autosave_interval of its start) restarts
    without the collector's session; one stopped gracefully saves it on exit and keeps it.

    The database file is removed after the kill, so "not yet saved" holds whatever the timing."""
    settings = _settings(load_settings(stack_environment(tmp_path / "stack")), tmp_path)
    stack = LocalStack(settings)
    stack.up(die_with_parent=True, services=("mosquitto", "influxdb"))

    def reconnect_after(stop: Callable[[], object], connects: int) -> None:
        stop()
        wait_for(lambda: not collector.connected.is_set(), what="the disconnect")
        stack.up(die_with_parent=True, services=("mosquitto",))
        wait_for(
            lambda: collector.counters["connects"] == connects, timeout=60, what="the reconnect"
        )

    def sigkill() -> None:
        (broker,) = stack.status(services=("mosquitto",))
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(broker.pid, 0)  # our child (stack.up): reap it
        (stack.data_dir("mosquitto") / "mosquitto.db").unlink(missing_ok=True)

    try:
        with caplog.at_level("WARNING", logger="ingest.collector"), running(settings) as collector:
            reconnect_after(sigkill, 2)
            assert collector.counters["sessions_lost"] == 1
            assert "did not keep this collector's session" in caplog.text
            reconnect_after(lambda: stack.down(services=("mosquitto",)), 3)  # saves on exit
            assert collector.counters["sessions_lost"] == 1
            writer = collector._writer
            assert writer is not None
            assert collector.figures(writer, writer.spool)["sessions_lost"] == 1
    finally:
        stack.down()


def _start_collector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "ioc.cli", "ingest"],
        env={"PATH": os.environ["PATH"], **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def _wait_connected(log: Path, times: int) -> None:
    wait_for(
        lambda: log.read_text(errors="replace").count("subscribed to") >= times,
        timeout=60,
        what=f"connect number {times} in {log}",
    )


def test_sigkill_mid_stream_loses_no_acknowledged_reading_and_doubles_none(
    service_env: dict[str, str], own_database: Settings, tmp_path: Path, publisher: Publisher
) -> None:
    env = {
        **service_env,
        "IOC_INFLUX_DB": own_database.influx_db,
        "IOC_VAR_DIR": str(tmp_path),
        "IOC_INGEST_ID": f"kill-{uuid.uuid4().hex[:6]}",
        "IOC_INGEST_GROUP": "",
    }
    log = tmp_path / "collector.log"
    base_ms = time.time_ns() // 10**6 - 60_000
    total, first = 20_000, 15_000  # enough in flight that the kill lands mid-stream on a fast box
    expected = [base_ms + i for i in range(total)]
    collector = _start_collector(env, log)
    try:
        _wait_connected(log, 1)
        with Store(own_database) as store:
            for t in expected[:first]:
                publisher.client.publish(TOPIC, reading(t), qos=1)
            wait_for(lambda: len(stored_times(store)) > 0, what="the first readings")
            collector.send_signal(signal.SIGKILL)  # mid-stream
            collector.wait(timeout=30)
            at_kill = len(stored_times(store))
            assert 0 < at_kill < first, at_kill  # killed with work in flight
            for t in expected[first:-1]:  # published while the collector is dead
                publisher.client.publish(TOPIC, reading(t), qos=1)
            publisher.publish(TOPIC, reading(expected[-1]))  # the broker has them all
            collector = _start_collector(env, log)
            _wait_connected(log, 2)
            wait_for(lambda: len(stored_times(store)) >= total, timeout=120, what="all readings")
            time.sleep(1.0)  # anything redelivered twice would show up now
            assert stored_times(store) == expected
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(timeout=60) == 0
    finally:
        collector.kill()
        collector.wait()


def test_influxdb_down_for_a_minute_loses_nothing(tmp_path: Path) -> None:
    settings = _settings(load_settings(stack_environment(tmp_path / "stack")), tmp_path)
    stack = LocalStack(settings)
    stack.up(die_with_parent=True)
    try:
        base_ms = time.time_ns() // 10**6 - 120_000
        expected = [base_ms + i for i in range(600)]
        with running(settings) as collector, Store(settings) as store:
            publisher = Publisher(settings)
            for t in expected[:100]:
                publisher.publish(TOPIC, reading(t))
            wait_for(lambda: len(stored_times(store)) == 100, what="readings before the outage")
            stack.down(services=("influxdb",))
            outage_started = time.monotonic()
            for t in expected[100:]:
                publisher.publish(TOPIC, reading(t))
            # acknowledged anyway: the points are in the fsynced spool
            wait_for(lambda: collector.counters["acked"] >= 600, what="acks during the outage")
            assert collector._writer is not None and collector._writer.degraded
            time.sleep(max(0.0, 60 - (time.monotonic() - outage_started)))
            stack.up(die_with_parent=True)
            wait_for(lambda: len(stored_times(store)) == 600, timeout=120, what="the replay")
            assert stored_times(store) == expected
            writer = collector._writer
            wait_for(lambda: not writer.degraded, what="spool drained")
            assert writer.stats.replayed_batches > 0
            publisher.close()
    finally:
        stack.down()


def test_a_full_spool_stops_acknowledgements_until_influxdb_is_back(tmp_path: Path) -> None:
    base = load_settings(stack_environment(tmp_path / "stack"))
    settings = dataclasses.replace(_settings(base, tmp_path), ingest_spool_max_mb=1)
    stack = LocalStack(settings)
    stack.up(die_with_parent=True)
    try:
        base_ms = time.time_ns() // 10**6 - 120_000
        expected = [base_ms + i for i in range(12_000)]  # ~1.8 MB of lines: more than the spool
        with running(settings) as collector, Store(settings) as store:
            stack.down(services=("influxdb",))
            publisher = Publisher(settings)
            for t in expected[:-1]:
                publisher.client.publish(TOPIC, reading(t), qos=1)
            publisher.publish(TOPIC, reading(expected[-1]))
            writer = collector._writer
            assert writer is not None
            wait_for(lambda: writer.stats.held, what="the spool to fill")
            time.sleep(1.0)
            acked = collector.counters["acked"]
            assert 0 < acked < len(expected)  # what is in the spool, and not one more
            assert collector.figures(writer, writer.spool)["healthy"] is False
            stack.up(die_with_parent=True)
            wait_for(lambda: len(stored_times(store)) == len(expected), timeout=180, what="all")
            assert stored_times(store) == expected
            wait_for(lambda: collector.counters["acked"] == len(expected), what="every ack")
            publisher.close()
    finally:
        stack.down()
