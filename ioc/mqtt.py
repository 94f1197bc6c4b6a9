"""MQTT clients built from settings: the one place that knows protocol version and credentials."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ioc.settings import Settings


def make_client(
    settings: Settings, client_id: str = "", *, persistent: bool = False, manual_ack: bool = False
) -> mqtt.Client:
    """A paho client (callback API v2) for the configured broker, not yet connected.

    ``persistent`` keeps the session (subscriptions, queued QoS 1 messages) across disconnects:
    MQTT 3.1.1 ``clean_session=False`` here; for MQTT 5 pass :func:`session_properties` and
    ``clean_start=False`` to ``connect``. ``manual_ack`` leaves PUBACKs to ``client.ack``.
    """
    v5 = settings.mqtt_protocol == "5"
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    return client


SESSION_EXPIRY_S = 14 * 24 * 3600
"""How long the broker keeps a persistent session of a client that is away (MQTT 5)."""


def session_properties(settings: Settings, *, receive_maximum: int) -> Properties | None:
    """MQTT 5 CONNECT properties of a persistent session; None for MQTT 3.1.1."""
    if settings.mqtt_protocol != "5":
        return None
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = SESSION_EXPIRY_S
    properties.ReceiveMaximum = receive_maximum
    return properties


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
