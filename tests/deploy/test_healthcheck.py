"""deploy/healthcheck.py: the container health checks read the service's own settings."""

from __future__ import annotations

import importlib.util
import socket
from types import ModuleType

from ioc.settings import load_settings
from tests.deploy.conftest import DEPLOY


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ioc_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mqtt_check_sees_an_established_connection_to_the_port() -> None:
    healthcheck = load()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        settings = load_settings({"IOC_MQTT_PORT": str(port)})
        assert "no established connection" in healthcheck.check("mqtt", settings)
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            with accepted:
                assert healthcheck.check("mqtt", settings) is None


def test_http_checks_report_what_failed() -> None:
    healthcheck = load()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = load_settings(
        {"IOC_INFLUX_URL": f"http://127.0.0.1:{port}", "IOC_API_PORT": str(port)}
    )
    assert f"127.0.0.1:{port}/health" in healthcheck.check("influxdb", settings)
    assert "/api/v1/health/ready" in healthcheck.check("api", settings)
    assert "unknown check" in healthcheck.check("disk", settings)
