"""The local stack and the ``ioc`` command, with real Mosquitto, InfluxDB and Alertmanager
processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from ioc import stack as stack_module
from ioc.errors import StackError
from ioc.mqtt import connack, make_client
from ioc.settings import Settings, load_settings
from ioc.stack import AlertTimings, LocalStack, port_is_free, render_alertmanager_config
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
    assert statuses["alertmanager"].state == "healthy"
    assert "1.6" in statuses["influxdb"].detail
    assert "version 0.25" in statuses["alertmanager"].detail
    assert "cluster disabled" in statuses["alertmanager"].detail
    assert statuses["mosquitto"].address == f"127.0.0.1:{services.mqtt_port}"
    assert f"http://{statuses['alertmanager'].address}" == services.alertmanager_url
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


def test_up_refuses_a_non_loopback_alertmanager(tmp_path: Path) -> None:
    env = {**stack_environment(tmp_path), "IOC_ALERTMANAGER_URL": "http://alerts.example:9093"}
    with pytest.raises(
        StackError, match=r"IOC_ALERTMANAGER_URL points at 'alerts.example'.*loopback only"
    ):
        LocalStack(load_settings(env)).up()
    assert not (tmp_path / "run").exists()


def test_up_names_the_alertmanager_port_that_is_taken(services: Settings, tmp_path: Path) -> None:
    env = {**stack_environment(tmp_path), "IOC_ALERTMANAGER_URL": services.alertmanager_url}
    port = services.alertmanager_url.rsplit(":", 1)[1]
    with pytest.raises(StackError, match=rf"cannot start alertmanager: port {port} on 127.0.0.1"):
        LocalStack(load_settings(env)).up(services=("alertmanager",))


def test_a_missing_alertmanager_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine without the package: neither on PATH nor at the Debian path.
    monkeypatch.setitem(
        stack_module._BINARIES,
        "alertmanager",
        ("no-such-alertmanager", str(tmp_path / "absent"), "prometheus-alertmanager"),
    )
    stack = LocalStack(load_settings(stack_environment(tmp_path)))
    with pytest.raises(
        StackError,
        match=r"no-such-alertmanager is not installed: run `make setup` "
        r"\(installs the Debian package prometheus-alertmanager\)",
    ):
        stack.up(services=("alertmanager",))
    assert not (tmp_path / "run" / "alertmanager.pid").exists()


RECEIVERS = {
    "none": {},
    "webhook": {"IOC_ALERTS_WEBHOOK_URL": "http://127.0.0.1:9/hook?token=a'b\"c: d"},
    "email on loopback": {
        "IOC_ALERTS_EMAIL_TO": "ops@ioc.example, duty@ioc.example",
        "IOC_SMTP_HOST": "127.0.0.1",
        "IOC_SMTP_PORT": "2525",
    },
    "both, remote relay with login": {
        "IOC_ALERTS_WEBHOOK_URL": "https://hooks.example/ioc",
        "IOC_ALERTS_EMAIL_TO": "ops@ioc.example",
        "IOC_SMTP_HOST": "smtp.example.gov.vn",
        "IOC_SMTP_PORT": "587",
        "IOC_SMTP_FROM": "canh-bao@ioc.example",
        "IOC_SMTP_USERNAME": "ioc",
        "IOC_SMTP_PASSWORD": "p@ss: 'w\"ord' # not a comment",
    },
}


@pytest.mark.parametrize("case", list(RECEIVERS))
def test_the_alertmanager_config_follows_the_settings_and_passes_amtool(
    tmp_path: Path, case: str
) -> None:
    settings = load_settings({**stack_environment(tmp_path), **RECEIVERS[case]})
    timings = AlertTimings(group_wait="10s", group_interval="2m", repeat_interval="3h")
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager_config(settings, tmp_path, timings))
    config = yaml.safe_load(path.read_text())

    route = config["route"]
    assert route["group_by"] == ["alertname", "province"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == (
        "10s",
        "2m",
        "3h",
    )
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="critical"']
    assert inhibit["target_matchers"] == ['severity="warning"']
    receivers = {r["name"]: r for r in config["receivers"]}
    if case == "none":
        assert route["receiver"] == "null"
        assert set(receivers) == {"null"}
    else:
        assert route["receiver"] == "ioc"
        ioc = receivers["ioc"]
        hooks = [w["url"] for w in ioc.get("webhook_configs", [])]
        assert hooks == ([settings.alerts_webhook_url] if settings.alerts_webhook_url else [])
        mails = ioc.get("email_configs", [])
        assert len(mails) == (1 if settings.alerts_email_to else 0)
        for mail in mails:
            assert mail["to"] == settings.alerts_email_to
            assert mail["from"] == settings.smtp_from
            assert mail["smarthost"] == f"{settings.smtp_host}:{settings.smtp_port}"
            assert mail["require_tls"] is (settings.smtp_host != "127.0.0.1")
            assert mail.get("auth_password") == settings.smtp_password
            assert mail["send_resolved"] is True
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    checked = subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 inhibit rules" in checked.stdout and " - 1 templates" in checked.stdout


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

    alertmanager = services["alertmanager"]
    assert alertmanager["address"] == env["IOC_ALERTMANAGER_URL"].removeprefix("http://")
    assert Path(alertmanager["log_file"]) == tmp_path / "log" / "alertmanager.log"
    config = tmp_path / "run" / "alertmanager.yml"
    assert config.stat().st_mode & 0o777 == 0o600  # it may hold the SMTP password
    assert yaml.safe_load(config.read_text())["route"]["receiver"] == "null"

    down = _ioc(env, "stack", "down")
    assert down.returncode == 0
    assert down.stdout.strip() == "stopped: alertmanager, influxdb, mosquitto"
    assert not any(_alive(pid) for pid in pids)
    # Alertmanager saved its notification log and silences in its data directory on the way out.
    assert {p.name for p in Path(alertmanager["data_dir"]).iterdir()} >= {"nflog", "silences"}
    stopped = _ioc(env, "stack", "status")
    assert stopped.returncode == 3
    assert stopped.stdout.count("stopped") == 3
    ports = (
        int(env["IOC_MQTT_PORT"]),
        int(env["IOC_INFLUX_URL"].rsplit(":", 1)[1]),
        int(env["IOC_ALERTMANAGER_URL"].rsplit(":", 1)[1]),
    )
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
    assert len(records) == 3
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    assert "stopped: mosquitto, influxdb, alertmanager" in out
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
