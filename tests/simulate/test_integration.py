"""The simulator through the real Mosquitto into a real collector and InfluxDB."""

from __future__ import annotations

import dataclasses
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest.collector import Collector
from ioc.catalog import INDICATORS_FILE, Catalog, get_catalog, load_catalog
from ioc.cli import main
from ioc.settings import Settings
from ioc.store import Store

pytestmark = pytest.mark.services

KINDS = ("air", "water", "traffic", "service", "tasks", "data")


@pytest.fixture
def environment(
    own_database: Settings, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """``IOC_*`` variables of the session's services and this test's database, for ``main``."""
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IOC_INFLUX_DB", own_database.influx_db)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield own_database
    for signum, handler in handlers.items():  # the command installs its own
        signal.signal(signum, handler)


@contextmanager
def collector(settings: Settings, tmp_path: Path, catalog: Catalog) -> Iterator[Collector]:
    """A collector in a thread, subscribed, stopped (drained) at the end."""
    settings = dataclasses.replace(
        settings, var_dir=tmp_path, ingest_id=f"t{uuid.uuid4().hex[:8]}", ingest_group=None
    )
    running = Collector(settings, catalog, metrics_interval=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert running.connected.wait(20), "collector did not connect"
        time.sleep(0.3)  # SUBACK
        yield running
    finally:
        stop.set()
        thread.join(timeout=60)


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def count(store: Store, measurement: str, field: str = "received_ms") -> int:
    answer = store.query(f'SELECT count("{field}") FROM "raw"."{measurement}"')
    return sum(int(row[1]) for series in answer for row in series.values)


def dead_letters(store: Store) -> list[dict[str, object]]:
    return [row for s in store.query('SELECT * FROM "ops"."dead_letter"') for row in s.rows()]


def test_two_hours_of_history_reach_influxdb_without_a_dead_letter(
    environment: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with collector(environment, tmp_path, get_catalog()) as running, Store(environment) as store:
        assert main(["simulate", "--history", "2h", "--provinces", "01,96", "--once"]) == 0
        out = capsys.readouterr().out
        found = re.search(r"history: (\d+) messages .* (\d+) acked, 0 refused", out)
        assert found, out
        published = int(found.group(1))
        assert published == int(found.group(2)) > 300
        wait_for(lambda: running.counters["acked"] >= published, what="every message stored")
        assert running.counters["received"] == published
        for kind in KINDS:
            assert count(store, kind) > 0, kind
        assert dead_letters(store) == []
        silent = store.query(
            'SELECT count("data_transactions") FROM "raw"."data" WHERE "source" = $s',
            {"s": "01-data-health"},
        )
        assert silent == () or all(not s.values for s in silent)
        assert "never connecting: 01-data-health, 01-data-industry-trade, 01-data-justice" in out


def test_the_load_profile_is_stored_with_its_registry(
    environment: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "load.toml"
    assert main(["simulate", "load", "--devices", "20", "--write-registry", str(registry)]) == 0
    catalog = load_catalog(INDICATORS_FILE, registry)
    with collector(environment, tmp_path, catalog) as running, Store(environment) as store:
        argv = ["simulate", "load", "--devices", "20", "--metrics", "4"]
        assert main([*argv, "--rate", "400", "--duration", "1s"]) == 0
        assert "400 messages" in capsys.readouterr().out
        wait_for(lambda: running.counters["acked"] >= 400, what="400 messages stored")
        wait_for(lambda: count(store, "air", "pm25") == 400, what="400 points")
        assert count(store, "air", "so2") == 0  # 4 metrics: pm25, pm10, o3, no2
        assert dead_letters(store) == []
