"""Alert states pushed to walls and sirens over MQTT: retained, so a display that connects late
still gets the current state of every alert without polling.

Topic: ``<IOC_ALERTS_TOPIC>/<province | VN>/<alertname>/<severity>/<fingerprint>``, QoS 1,
retained (the warning and the critical of one place are two alerts, two topics). Payload:
JSON ``{state, previous, at, since, labels, annotations, value, fingerprint}``; ``state`` is
``pending``, ``firing``, ``resolved`` or ``inactive`` (a pending alert that did not last). A
display subscribes to ``ioc/alerts/v1/46/#`` for Huế, or ``ioc/alerts/v1/+/flood-alarm/#`` for
every flood alarm (``.../flood-alarm/critical/#``: level III only).
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ioc.errors import IocError
from ioc.mqtt import make_client
from ioc.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["MqttPublisher", "PublishError"]


class PublishError(IocError, OSError):
    """An alert state could not be handed to the broker."""


class MqttPublisher:
    """A connected MQTT client that publishes retained alert states (reconnects by itself)."""

    def __init__(self, settings: Settings, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._connected = threading.Event()
        self._acks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self.client = make_client(settings, f"ioc-{settings.alerts_id}")
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(settings.mqtt_host, settings.mqtt_port, keepalive=30)
        self.client.loop_start()

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        if not reason.is_failure:
            self._connected.set()
        else:
            log.warning("alert publisher: broker refused the connection: %s", reason)

    def _on_disconnect(self, *_args: object) -> None:
        self._connected.clear()

    def _on_publish(
        self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object
    ) -> None:
        with self._lock:
            self._acks[mid] = reason

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish retained at QoS 1 and wait for the broker's PUBACK; PublishError when none
        comes or the broker refuses it (a PUBACK with a failure reason, e.g. its ACL)."""
        if not self._connected.wait(self.timeout):
            raise PublishError(f"MQTT broker not connected; {topic} not published")
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as error:
            raise PublishError(f"{topic}: {error}") from None
        if not info.is_published():
            raise PublishError(f"{topic}: no PUBACK within {self.timeout:g} s")
        with self._lock:
            reason = self._acks.pop(info.mid, None)
        if reason is not None and reason.is_failure:
            # MQTT 5: the broker acknowledged but refused it (0x87: not authorized by its ACL)
            raise PublishError(f"{topic}: refused by the broker: {reason}")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()
