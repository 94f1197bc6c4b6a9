"""Session fixtures: a real Mosquitto, InfluxDB and Alertmanager on free loopback ports in a
temp dir.

They reuse the project's own stack code (``LocalStack``), so the tests also prove that
``ioc stack up`` works. The servers die with the test process even if it is killed.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc import stack
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack, find_binary, free_ports
from ioc.store import Store, quote_ident

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def stack_environment(var_dir: Path, **extra: str) -> dict[str, str]:
    """``IOC_*`` variables for a private stack of the tests in ``var_dir`` on fresh free ports."""
    return stack.stack_environment(var_dir, "ioc_test", **extra)


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"not runnable: {exc}"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        mosquitto, influxd = find_binary("mosquitto"), find_binary("influxdb")
    except Exception as exc:  # a header must never fail the run
        return [f"services: {exc}"]
    return [
        f"services: {_version([mosquitto, '-h'])}; {_version([influxd, 'version'])}",
        f"shared data: {SHARED} ({'present' if SHARED.is_dir() else 'MISSING'})",
    ]


@pytest.fixture(scope="session")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The ``IOC_*`` variables of the session's services (copy it to vary a setting)."""
    return stack_environment(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def services(service_env: dict[str, str]) -> Iterator[Settings]:
    """Settings pointing at a real Mosquitto and InfluxDB started for this test session."""
    settings = load_settings(service_env)
    with LocalStack(settings).running():
        yield settings


@pytest.fixture(scope="session")
def store(services: Settings) -> Iterator[Store]:
    """A store connected to the session's InfluxDB (database and retention policies exist)."""
    with Store(services) as s:
        yield s


@pytest.fixture
def own_database(services: Settings) -> Iterator[Settings]:
    """Settings for a database of this test's own on the session's InfluxDB (dropped after)."""
    settings = dataclasses.replace(services, influx_db=f"t_{uuid.uuid4().hex[:12]}")
    with Store(settings) as s:
        s.ensure_schema()
        yield settings
        s.command(f"DROP DATABASE {quote_ident(settings.influx_db)}")


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real VictoriaMetrics (implements InfluxDB's /api/v2/write) on loopback."""
    binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
    (port,) = free_ports(1)
    data = tmp_path_factory.mktemp("vm")
    log = (data / "vm.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={data}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/health", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310  (loopback URL)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")
