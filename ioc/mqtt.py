"""MQTT clients built from settings: the one place that knows protocol version and credentials."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from ioc.settings import Settings


def make_client(settings: Settings, client_id: str = "") -> mqtt.Client:
    """A paho client (callback API v2) for the configured broker, not yet connected."""
    v5 = settings.mqtt_protocol == "5"
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    return client


def connack(settings: Settings, timeout: float = 2.0) -> str | None:
    """Connect once and wait for CONNACK; return None on success, else why it failed."""
    client = make_client(settings)
    answered = threading.Event()
    outcome: list[str | None] = [f"no CONNACK within {timeout:.1f}s"]

    def on_connect(
        _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode, _props: object
    ) -> None:
        outcome[0] = None if not reason.is_failure else f"broker refused: {reason}"
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
    except OSError as exc:
        return f"cannot connect to {settings.mqtt_host}:{settings.mqtt_port}: {exc}"
    client.loop_start()
    try:
        answered.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0]
