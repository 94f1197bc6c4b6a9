"""Publish QoS 1 messages through the broker with bounded in-flight and PUBACK accounting.

One paho client (network loop in its own thread) stands for the whole fleet. ``publish`` blocks
while ``max_inflight`` messages await their PUBACK (backpressure), and while the broker is away:
paho reconnects by itself (1 s doubling to 30 s) and resends unacknowledged QoS 1 messages, the
publisher waits and logs every ``log_every`` seconds, and gives up only when ``stop`` is set.
Nothing here raises on a disconnect.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from ioc.errors import IocError
from ioc.mqtt import make_client
from ioc.settings import Settings

__all__ = ["Counts", "Publisher", "PublisherError"]

log = logging.getLogger(__name__)


class PublisherError(IocError):
    """The broker could not be reached at start."""


@dataclass(frozen=True, slots=True)
class Counts:
    """Messages handed to the client, acknowledged by the broker, refused by it."""

    sent: int
    acked: int
    refused: int

    @property
    def in_flight(self) -> int:
        """Messages sent and not yet acknowledged (or refused)."""
        return self.sent - self.acked - self.refused


class Publisher:
    """A QoS 1 publisher with backpressure; use as a context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        max_inflight: int = 500,
        log_every: float = 10.0,
    ) -> None:
        self.settings = settings
        self.client_id = client_id or f"ioc-simulate-{uuid.uuid4().hex[:8]}"
        self.max_inflight = max_inflight
        self.log_every = log_every
        self.connected = threading.Event()
        self._lock = threading.Condition()
        self._sent = 0
        self._acked = 0
        self._refused = 0
        self._client: mqtt.Client | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect (paho keeps reconnecting afterwards); PublisherError if no CONNACK in time."""
        client = make_client(self.settings, self.client_id)
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)  # the in-flight bound below limits the queue
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30)
        client.loop_start()
        if not self.connected.wait(timeout):
            self.close(flush_timeout=0)
            raise PublisherError(
                f"no MQTT connection to {self.settings.mqtt_host}:{self.settings.mqtt_port} "
                f"within {timeout:.0f} s (is the broker running? `ioc stack up`)"
            )

    def close(self, flush_timeout: float = 30.0) -> None:
        """Wait up to ``flush_timeout`` s for outstanding PUBACKs, then disconnect."""
        if self._client is None:
            return
        if flush_timeout > 0:
            self.flush(flush_timeout)
        self._client.disconnect()
        self._client.loop_stop()
        self._client = None

    def __enter__(self) -> Publisher:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- publishing --------------------------------------------------------------------------

    def counts(self) -> Counts:
        """The counters so far."""
        with self._lock:
            return Counts(self._sent, self._acked, self._refused)

    def publish(self, topic: str, payload: bytes, stop: threading.Event | None = None) -> bool:
        """Publish with QoS 1 once the broker is there and the in-flight window has room.

        Returns False (nothing published) only when ``stop`` was set while waiting.
        """
        client = self._client
        if client is None:
            raise RuntimeError("publisher not started")
        waited_since = time.monotonic()
        logged = waited_since
        with self._lock:
            while not self.connected.is_set() or self._in_flight() >= self.max_inflight:
                if stop is not None and stop.is_set():
                    return False
                self._lock.wait(0.2)
                now = time.monotonic()
                if now - logged >= self.log_every:
                    logged = now
                    why = "broker away" if not self.connected.is_set() else "window full"
                    log.warning(
                        "waiting %.0f s to publish (%s; %d messages await their PUBACK)",
                        now - waited_since,
                        why,
                        self._in_flight(),
                    )
            self._sent += 1
        # paho queues the message (and resends it after a reconnect) even if the socket just
        # dropped; its return code says so, the PUBACK accounting stays right either way.
        info = client.publish(topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            with self._lock:
                self._refused += 1
                self._lock.notify_all()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every sent message is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._in_flight() > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    log.warning("%d messages still await their PUBACK", self._in_flight())
                    return False
                self._lock.wait(min(remaining, 0.2))
        return True

    def _in_flight(self) -> int:
        return self._sent - self._acked - self._refused

    # --- paho callbacks (never raise: an exception would kill paho's loop) -----------------

    def _on_connect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected to %s:%d", self.settings.mqtt_host, self.settings.mqtt_port)
        with self._lock:
            self.connected.set()
            self._lock.notify_all()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        self.connected.clear()
        if reason.is_failure:
            log.warning("disconnected from the broker (%s); paho reconnects", reason)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        with self._lock:
            if reason.is_failure:
                self._refused += 1
                log.warning("the broker refused a message: %s", reason)
            else:
                self._acked += 1
            self._lock.notify_all()
