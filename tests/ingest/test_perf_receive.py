"""The collector's cheaper MQTT read path sees what stock paho sees, and acknowledges the same way.

``ioc.mqtt.ReceivingClient`` reads the socket in large chunks and hands QoS 0/1 PUBLISHes to
``on_message`` without paho's per-message objects; ``ack_many`` writes a batch of PUBACKs at
once. Both run here against the real Mosquitto, next to a stock paho client subscribed to the
same traffic: the topics, payloads and QoS each callback sees must be the same, in the same
order, for MQTT 5 and 3.1.1, and a message is acknowledged (not redelivered to the persistent
session) exactly when ``ack_many`` was called for it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc.mqtt import Received, ReceivingClient, ack_many, make_client, session_properties
from ioc.settings import MqttProtocol, Settings

pytestmark = pytest.mark.services

Seen = tuple[str, bytes, int]


class Listener:
    """A subscribed client that records (topic, payload, qos) of what reaches on_message."""

    def __init__(
        self,
        settings: Settings,
        prefix: str,
        *,
        fast: bool,
        manual_ack: bool = False,
        client_id: str = "",
        persistent: bool = False,
    ) -> None:
        self.seen: list[Seen] = []
        self.mids: list[int] = []
        self.kinds: set[type] = set()
        self.subscribed = threading.Event()
        self.client = make_client(
            settings,
            client_id or f"t-{uuid.uuid4().hex[:8]}",
            persistent=persistent,
            manual_ack=manual_ack,
            fast_receive=fast,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.prefix = prefix
        options: dict[str, Any] = {}
        properties = session_properties(settings, receive_maximum=1000) if persistent else None
        if properties is not None:
            options.update(clean_start=False, properties=properties)
        self.client.connect(settings.mqtt_host, settings.mqtt_port, **options)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK"
        time.sleep(0.2)

    def _on_connect(self, client: mqtt.Client, *_args: object) -> None:
        client.subscribe(f"{self.prefix}/#", qos=1)
        client.on_subscribe = lambda *_a: self.subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage | Received) -> None:
        self.kinds.add(type(msg))
        self.seen.append((msg.topic, bytes(msg.payload), msg.qos))
        self.mids.append(msg.mid)

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _publish_all(settings: Settings, messages: list[tuple[str, bytes, int]]) -> None:
    publisher = make_client(settings, f"pub-{uuid.uuid4().hex[:8]}")
    publisher.connect(settings.mqtt_host, settings.mqtt_port)
    publisher.loop_start()
    try:
        infos = []
        for i, (topic, payload, qos) in enumerate(messages):
            properties = None
            if settings.mqtt_protocol == "5" and i % 3 == 0:  # properties the fast path skips
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.UserProperty = [("k", "v" * (i % 200))]
                properties.ContentType = "application/json"
            infos.append(publisher.publish(topic, payload, qos=qos, properties=properties))
        for info in infos:
            info.wait_for_publish(20)
    finally:
        publisher.disconnect()
        publisher.loop_stop()


def _corpus(prefix: str) -> list[tuple[str, bytes, int]]:
    """Small, empty, binary, non-ASCII and large (> one socket read) messages, QoS 0 and 1."""
    out: list[tuple[str, bytes, int]] = []
    for i in range(400):
        topic = f"{prefix}/{i % 7}/air"
        payload = b'{"v":1,"n":%d}' % i
        out.append((topic, payload, 1))
    out += [
        (f"{prefix}/empty", b"", 1),
        (f"{prefix}/qos0", b"zero", 0),
        (f"{prefix}/ph\u01b0\u1eddng/h\u00e0-n\u1ed9i", "Hà Nội".encode(), 1),
        (f"{prefix}/binary", bytes(range(256)) * 4, 1),
        (f"{prefix}/large", b"x" * 300_000, 1),  # larger than one read of the buffer
        (f"{prefix}/large2", bytes(range(256)) * 2000, 0),
    ]
    out += [(f"{prefix}/tail/{i}", b"t%d" % i, 1) for i in range(200)]
    return out


@pytest.fixture(params=["5", "3.1.1"])
def protocol_settings(request: pytest.FixtureRequest, services: Settings) -> Iterator[Settings]:
    yield dataclasses.replace(services, mqtt_protocol=request.param)


def test_fast_receive_sees_what_stock_paho_sees(protocol_settings: Settings) -> None:
    prefix = f"perf/{uuid.uuid4().hex[:8]}"
    corpus = _corpus(prefix)
    stock = Listener(protocol_settings, prefix, fast=False)
    fast = Listener(protocol_settings, prefix, fast=True)
    try:
        _publish_all(protocol_settings, corpus)
        stock.wait_for(len(corpus))
        fast.wait_for(len(corpus))
    finally:
        stock.close()
        fast.close()
    # The broker keeps each QoS level's order; QoS 0 may overtake queued QoS 1 messages.
    for qos in (0, 1):
        sent = [m for m in corpus if m[2] == qos]
        assert [m for m in stock.seen if m[2] == qos] == sent
        assert [m for m in fast.seen if m[2] == qos] == sent
    assert len(fast.seen) == len(stock.seen) == len(corpus)
    assert fast.kinds == {Received}  # the fast path took every message
    assert stock.kinds == {mqtt.MQTTMessage}
    assert isinstance(fast.client, ReceivingClient)


def _redelivered(settings: Settings, prefix: str, client_id: str, count: int) -> list[Seen]:
    """Reconnect the persistent session and collect what the broker sends again."""
    again = Listener(
        settings, prefix, fast=True, manual_ack=True, client_id=client_id, persistent=True
    )
    try:
        again.wait_for(count, timeout=3.0)
        ack_many(again.client, again.mids)  # leave the session clean
        time.sleep(0.3)
        return list(again.seen)
    finally:
        again.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_ack_many_acknowledges_exactly_the_given_messages(
    services: Settings, protocol: MqttProtocol
) -> None:
    settings = dataclasses.replace(services, mqtt_protocol=protocol)
    prefix = f"perf/{uuid.uuid4().hex[:8]}"
    client_id = f"t-ack-{uuid.uuid4().hex[:8]}"
    corpus = [(f"{prefix}/{i}", b"m%d" % i, 1) for i in range(300)]
    listener = Listener(
        settings, prefix, fast=True, manual_ack=True, client_id=client_id, persistent=True
    )
    # Fewer than 20 left unacknowledged: a 3.1.1 session gets at most 20 in flight from Mosquitto.
    kept = {i for i in range(300) if i % 30 == 7}
    acked_upto = 0
    publishing = threading.Thread(target=_publish_all, args=(settings, corpus))
    try:
        publishing.start()
        deadline = time.monotonic() + 30
        while acked_upto < len(corpus) and time.monotonic() < deadline:
            seen = len(listener.seen)
            batch = [
                listener.mids[j]
                for j in range(acked_upto, seen)
                if int(listener.seen[j][1][1:]) not in kept
            ]
            ack_many(listener.client, batch)  # batches of whatever arrived meanwhile
            acked_upto = seen
            time.sleep(0.02)
        publishing.join(30)
        assert listener.seen == corpus
        ack_many(listener.client, [])  # nothing to send: no packet
        time.sleep(0.5)
    finally:
        listener.close()
    again = _redelivered(settings, prefix, client_id, len(kept))
    assert sorted(again, key=lambda s: int(s[1][1:])) == [corpus[i] for i in sorted(kept)]


def test_ack_many_falls_back_to_paho_ack(services: Settings) -> None:
    """A client without manual acks: ack_many does what client.ack does (nothing, no error)."""
    client = make_client(services, f"t-{uuid.uuid4().hex[:8]}")
    ack_many(client, [1, 2, 3])
    assert not client.want_write()
