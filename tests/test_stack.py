"""The local stack and the ``ioc`` command, with real Mosquitto and InfluxDB processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from ioc.errors import StackError
from ioc.mqtt import connack, make_client
from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack, port_is_free
from ioc.store import Store
from tests.conftest import stack_environment

pytestmark = pytest.mark.services


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_session_services_report_healthy(services: Settings) -> None:
    statuses = {s.name: s for s in LocalStack(services).status()}
    assert statuses["mosquitto"].state == "healthy"
    assert statuses["influxdb"].state == "healthy"
    assert "1.6" in statuses["influxdb"].detail
    assert statuses["mosquitto"].address == f"127.0.0.1:{services.mqtt_port}"
    assert all(s.pid is not None and _alive(s.pid) for s in statuses.values())


def test_publish_and_receive_qos1_through_the_real_broker(services: Settings) -> None:
    received: list[mqtt.MQTTMessage] = []
    subscribed, got = threading.Event(), threading.Event()
    sub = make_client(services, "test-sub")
    sub.on_subscribe = lambda *_args: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(message)
        got.set()

    sub.on_message = on_message
    sub.connect(services.mqtt_host, services.mqtt_port)
    sub.loop_start()
    try:
        sub.subscribe("ioc/v1/01/+/air", qos=1)
        assert subscribed.wait(5)
        pub = make_client(services, "test-pub")
        pub.connect(services.mqtt_host, services.mqtt_port)
        pub.loop_start()
        info = pub.publish("ioc/v1/01/aqi-0001/air", b'{"pm25": 35.2}', qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        assert got.wait(5)
        pub.disconnect()
        pub.loop_stop()
    finally:
        sub.disconnect()
        sub.loop_stop()
    (message,) = received
    assert (message.topic, message.payload, message.qos) == (
        "ioc/v1/01/aqi-0001/air",
        b'{"pm25": 35.2}',
        1,
    )


def test_connack_reports_why_when_no_broker_listens(service_env: dict[str, str]) -> None:
    settings = load_settings({**service_env, "IOC_MQTT_PORT": str(_closed_port())})
    assert "cannot connect" in (connack(settings, timeout=1.0) or "")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_up_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    settings = load_settings({**stack_environment(tmp_path), "IOC_MQTT_HOST": "10.1.2.3"})
    with pytest.raises(StackError, match=r"IOC_MQTT_HOST points at '10.1.2.3'.*loopback only"):
        LocalStack(settings).up()
    assert not (tmp_path / "run").exists()


def test_up_names_the_port_that_is_taken(services: Settings, tmp_path: Path) -> None:
    env = {**stack_environment(tmp_path), "IOC_MQTT_PORT": str(services.mqtt_port)}
    with pytest.raises(
        StackError, match=rf"port {services.mqtt_port} on 127.0.0.1 is already in use"
    ):
        LocalStack(load_settings(env)).up()


def test_down_never_signals_a_process_it_did_not_start(tmp_path: Path) -> None:
    stack = LocalStack(load_settings(stack_environment(tmp_path)))
    stack.run_dir.mkdir(parents=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # A pid file whose pid now belongs to another process (different start time).
        record = {"pid": bystander.pid, "start_ticks": 1, "argv": ["mosquitto"]}
        (stack.run_dir / "mosquitto.pid").write_text(json.dumps(record))
        assert stack.down() == []
        assert bystander.poll() is None
        assert not (stack.run_dir / "mosquitto.pid").exists()  # the stale record is gone
    finally:
        bystander.kill()
        bystander.wait()


def _ioc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_stack_up_status_down_leaves_no_process_behind(tmp_path: Path) -> None:
    env = stack_environment(tmp_path)
    up = _ioc(env, "stack", "up")
    assert up.returncode == 0, up.stderr
    status = _ioc(env, "stack", "status", "--json")
    assert status.returncode == 0, status.stderr
    services = {s["name"]: s for s in json.loads(status.stdout)}
    assert {s["state"] for s in services.values()} == {"healthy"}
    assert services["influxdb"]["address"] == env["IOC_INFLUX_URL"].removeprefix("http://")
    assert Path(services["influxdb"]["data_dir"], "data").is_dir()
    pids = [s["pid"] for s in services.values()]
    assert all(_alive(pid) for pid in pids)

    again = _ioc(env, "stack", "up")  # idempotent: nothing new is started
    assert again.returncode == 0
    assert "already runs" in again.stderr

    down = _ioc(env, "stack", "down")
    assert down.returncode == 0
    assert down.stdout.strip() == "stopped: influxdb, mosquitto"
    assert not any(_alive(pid) for pid in pids)
    stopped = _ioc(env, "stack", "status")
    assert stopped.returncode == 3
    assert stopped.stdout.count("stopped") == 2
    ports = (int(env["IOC_MQTT_PORT"]), int(env["IOC_INFLUX_URL"].rsplit(":", 1)[1]))
    assert all(port_is_free("127.0.0.1", p) for p in ports)


def test_foreground_stack_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    env = stack_environment(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "ioc.cli", "stack", "up", "--foreground"],
        env={"PATH": os.environ["PATH"], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    assert any("healthy" in line for line in lines), "".join(lines)
    records = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("*.pid")]
    assert len(records) == 2
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    assert "stopped: mosquitto, influxdb" in out
    deadline = time.monotonic() + 10
    while any(_alive(r["pid"]) for r in records) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(r["pid"]) for r in records)


def test_cli_reports_invalid_settings_with_exit_code_2(tmp_path: Path) -> None:
    result = _ioc({"IOC_VAR_DIR": str(tmp_path), "IOC_MQTT_PORT": "eighty"}, "stack", "status")
    assert result.returncode == 2
    assert "IOC_MQTT_PORT='eighty': must be an integer" in result.stderr


def test_cli_db_init_creates_the_schema_on_a_fresh_database(
    service_env: dict[str, str], services: Settings
) -> None:
    env = {**service_env, "IOC_INFLUX_DB": "ioc_init_test", "IOC_RETENTION_RAW": "10d"}
    result = _ioc(env, "db", "init")
    assert result.returncode == 0, result.stderr
    assert "raw 10d, derived INF, ops 30d" in result.stdout
    with Store(load_settings(env)) as store:
        (series,) = store.query('SHOW RETENTION POLICIES ON "ioc_init_test"', epoch=None)
    assert {(r["name"], r["duration"], r["default"]) for r in series.rows()} >= {
        ("raw", "240h0m0s", True),
        ("derived", "0s", False),
        ("ops", "720h0m0s", False),
    }
