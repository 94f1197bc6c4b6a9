"""Scenarios 1-8 of the fault suite, CI profile (3 trials each), inside ``make test``.

Each scenario starts its own Mosquitto, InfluxDB and collectors per trial (docs/faults.md), so
these tests do not use the session's servers. The fault moments are random; the seed is in every
failure message and ``IOC_FAULTS_SEED`` repeats it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import pytest

from ioc.faults import Profile, ScenarioResult, Trial, scenario
from ioc.faults.harness import Unavailable
from ioc.faults.process import autosave_bound
from ioc.faults.proxy import Proxy
from ioc.faults.report import END, START, Run, write
from ioc.settings import PROJECT_ROOT

SEED = int(os.environ.get("IOC_FAULTS_SEED") or Random().getrandbits(32))


def _describe(result: ScenarioResult) -> str:
    lines = [f"scenario {result.number} ({result.name}), seed {SEED} (IOC_FAULTS_SEED):"]
    for index, trial in enumerate(result.trials, 1):
        failed = [name for name, ok in trial.checks.items() if not ok]
        lines.append(
            f"  trial {index}: failed {failed}; acknowledged {trial.acknowledged}, "
            f"lost {trial.lost}, duplicates {trial.duplicates}, unexpected {trial.unexpected}. "
            f"{trial.notes}"
        )
    return "\n".join(lines)


def _run(number: int, tmp_path: Path) -> ScenarioResult:
    try:
        result = scenario(number)(Profile.ci(), Random(SEED + number), tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))
    assert len(result.trials) >= Profile.ci().trials >= 3
    assert result.passed, _describe(result)
    for trial in result.trials:
        assert trial.acknowledged > 0 and trial.stored >= trial.acknowledged - trial.lost
    return result


@pytest.mark.services
@pytest.mark.parametrize("number", [1, 2, 3, 5, 6, 8])
def test_no_acknowledged_reading_is_lost_or_doubled(number: int, tmp_path: Path) -> None:
    result = _run(number, tmp_path)
    assert all(t.lost == 0 and t.duplicates == 0 for t in result.trials), _describe(result)
    assert all(t.recovery_s is not None for t in result.trials)


@pytest.mark.services
def test_influxdb_down_60_and_300_s_is_replayed_from_the_spool(tmp_path: Path) -> None:
    result = _run(4, tmp_path)
    assert len(result.trials) == 2 * Profile.ci().trials  # each trial at 60 s and at 300 s
    assert all(t.lost == 0 and t.duplicates == 0 for t in result.trials), _describe(result)
    assert all(t.checks["spool replayed"] for t in result.trials)
    assert "drain rate after 60 s" in result.figures
    assert "drain rate after 300 s" in result.figures


@pytest.mark.services
def test_broker_restart_loses_nothing_and_a_broker_kill_stays_within_the_bound(
    tmp_path: Path,
) -> None:
    result = _run(7, tmp_path)
    bound, words = autosave_bound(PROJECT_ROOT / "deploy" / "mosquitto" / "mosquitto.conf")
    n = Profile.ci().trials
    graceful, killed = result.trials[:n], result.trials[n:]
    assert all(t.lost == 0 for t in graceful), _describe(result)
    assert killed and all(t.lost <= bound for t in killed), _describe(result)
    assert all(t.duplicates == 0 for t in result.trials)
    assert words in result.bound  # the report states the bound the configuration implies


def test_deploy_and_local_broker_configs_state_the_same_small_autosave_bound() -> None:
    deploy, _ = autosave_bound(PROJECT_ROOT / "deploy" / "mosquitto" / "mosquitto.conf")
    local, _ = autosave_bound(PROJECT_ROOT / "deploy" / "local" / "mosquitto.conf.in")
    assert deploy == local <= 1000


# --- the proxy ----------------------------------------------------------------------------------


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A loopback TCP echo server; its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join()
    server.close()


def _roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(4096)


def test_the_proxy_forwards_delays_stalls_and_resumes(echo_server: int) -> None:
    with Proxy("127.0.0.1", echo_server) as proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert _roundtrip(client, b"plain") == b"plain"
        proxy.set_latency(0.3)
        started = time.monotonic()
        assert _roundtrip(client, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.6  # both directions delayed
        proxy.set_latency(0)
        proxy.stall()
        client.sendall(b"held")
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.recv(4096)
        late = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        late.sendall(b"late")  # a new connection during the stall is accepted and held too
        proxy.resume()
        client.settimeout(5)
        assert client.recv(4096) == b"held"
        assert late.recv(4096) == b"late"
        client.close()
        late.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).recv(1)
    with pytest.raises(ValueError, match="latency"):
        Proxy("127.0.0.1", echo_server).set_latency(-1)


# --- the report ---------------------------------------------------------------------------------


def test_the_report_replaces_only_its_marked_part(tmp_path: Path) -> None:
    page = tmp_path / "faults.md"
    page.write_text(f"# Faults\n\nprose before\n\n{START}\nold table\n{END}\n\nprose after\n")
    ok = Trial(acknowledged=10, stored=10, recovery_s=1.5, checks={"zero lost": True})
    bad = Trial(acknowledged=10, stored=9, lost=1, recovery_s=None, checks={"zero lost": False})
    results = [
        ScenarioResult(1, "collector SIGKILL", [ok, ok]),
        ScenarioResult(7, "broker", [bad], bound="at most 100", figures={"rate": "5/s"}),
    ]
    run = Run("ci", 3, 42, datetime(2026, 1, 2, tzinfo=UTC), 60.0, "2 cores")
    write(page, results, run)
    text = page.read_text()
    assert text.startswith("# Faults\n\nprose before\n") and text.endswith("prose after\n")
    assert "old table" not in text and text.count(START) == 1
    assert "| 1 | collector SIGKILL | 2 | 20 | 0 | 0 | 1.5 s / 1.5 s | pass |" in text
    assert "| 7 | broker | 1 | 10 | 1 | 0 | - | **FAIL** |" in text
    assert "- bound: at most 100" in text and "seed `42`" in text
