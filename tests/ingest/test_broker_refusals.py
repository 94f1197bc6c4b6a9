"""Issue 15, defect 2: what the broker refuses is counted and findable with the device's source.

Through the real Mosquitto of the test session (the local stack's config: ``max_packet_size``,
its log published on ``$SYS/broker/log/N``) into the real InfluxDB. A registered device sends
what Mosquitto drops before any subscriber sees it: a packet above ``max_packet_size``, a topic
with a control character or invalid UTF-8, a wildcard in a PUBLISH topic. The collector must
count each by cause in its ``ingest`` self-metrics, store it as a ``broker_refused`` dead letter
with the device's source and province, and the API must show it on ``/api/v1/health/feeds`` and
``/api/v1/dead-letters``, while good readings published alongside are stored.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.settings import Settings
from ioc.store import Store
from tests.ingest.test_collector import (
    SOURCE,
    TOPIC,
    Publisher,
    reading,
    running,
    stored_times,
    wait_for,
)

pytestmark = pytest.mark.services

OVERSIZE = 1_100_000
"""Payload bytes above the broker's ``max_packet_size`` (1 MiB, deploy/local/mosquitto.conf.in)."""


@pytest.fixture
def settings(own_database: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        own_database,
        var_dir=tmp_path / "var",
        ingest_id=f"t{uuid.uuid4().hex[:8]}",
        ingest_group=None,
        api_keys_file=tmp_path / "api" / "keys.json",
        api_cache_seconds=0.0,
        api_rate_limit=100_000,
    )


@dataclasses.dataclass(frozen=True)
class OperatorApi:
    client: FlaskClient
    key: str

    def get(self, path: str) -> Any:
        answer = self.client.get(path, headers={"X-API-Key": self.key})
        assert answer.status_code == 200, answer.data
        return orjson.loads(answer.data)

    def refusals(self, query: str = "") -> list[dict[str, Any]]:
        """The broker refusals among the dead letters, once there are any. A refusal is stamped
        within the broker's second of it (ingest/brokerlog.py), up to a second ahead of now."""
        path = f"/api/v1/dead-letters?reason=broker_refused{query}"
        wait_for(lambda: self.get(path)["items"], timeout=5, what="a broker_refused dead letter")
        items: list[dict[str, Any]] = self.get(path)["items"]
        return items


@pytest.fixture
def api(settings: Settings) -> OperatorApi:
    key = KeyStore(settings.api_keys_path).create("ops", "operator")[1]
    return OperatorApi(create_app({"TESTING": True}, settings=settings).test_client(), key)


@pytest.fixture
def publisher(services: Settings) -> Iterator[Publisher]:
    p = Publisher(services)
    yield p
    p.close()


# --- devices that misbehave -------------------------------------------------------------------


def paho_send(
    settings: Settings, client_id: str, username: str, topic: str, payload: bytes, *, v5: bool
) -> str:
    """Publish once at QoS 1 with paho (no reconnect) and say how it ended."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        reconnect_on_failure=False,
    )
    client.username_pw_set(username)
    ended = threading.Event()
    outcome: list[str] = []

    def on_publish(_c: mqtt.Client, _u: object, _mid: int, rc: ReasonCode, _p: object) -> None:
        outcome.append(f"puback {rc}")
        ended.set()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        outcome.append(f"disconnected: {rc}")
        ended.set()

    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        ended.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else "no answer"


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def _packet(kind: int, body: bytes) -> bytes:
    length, encoded = len(body), bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes([kind]) + bytes(encoded) + body


def raw_send(settings: Settings, client_id: str, username: str, topic: bytes) -> str:
    """An MQTT 3.1.1 CONNECT and one QoS 1 PUBLISH with ``topic`` as raw bytes (paho sends only
    valid UTF-8 and refuses wildcards); how the broker answered."""
    connect = _string(b"MQTT") + bytes([4, 0x82]) + struct.pack("!H", 30)
    connect += _string(client_id.encode()) + _string(username.encode())
    publish = _string(topic) + struct.pack("!H", 1) + b"{}"
    with socket.create_connection((settings.mqtt_host, settings.mqtt_port), timeout=5) as sock:
        sock.sendall(_packet(0x10, connect))
        assert sock.recv(4) == b"\x20\x02\x00\x00", "no CONNACK"
        sock.sendall(_packet(0x32, publish))
        try:
            answer = sock.recv(16)
        except ConnectionResetError:
            answer = b""
    return "closed" if not answer else f"answered {answer.hex()}"


@dataclasses.dataclass(frozen=True)
class Misbehaviour:
    """One way to send what the broker drops, the cause it must be counted under, and how the
    device may see the broker's refusal (observed with Mosquitto 2.0.11)."""

    cause: str
    send: Callable[[Settings, str, str], str]
    device_sees: frozenset[str]


# The broker closes the socket right after refusing an oversize packet, while the device may
# still be writing it: the device then sees its own write fail, not the DISCONNECT.
CLOSED = "disconnected: Unspecified error"


MISBEHAVIOURS = {
    "oversize, MQTT 5": Misbehaviour(
        "packet_too_large",
        lambda s, cid, user: paho_send(s, cid, user, TOPIC, b"x" * OVERSIZE, v5=True),
        frozenset({"disconnected: Packet too large", CLOSED}),  # DISCONNECT 0x95
    ),
    "oversize, MQTT 3.1.1": Misbehaviour(
        "packet_too_large",
        lambda s, cid, user: paho_send(s, cid, user, TOPIC, b"x" * OVERSIZE, v5=False),
        frozenset({CLOSED}),  # MQTT 3.1.1 has no DISCONNECT from the server
    ),
    "control character in the topic": Misbehaviour(
        "malformed_packet",
        lambda s, cid, user: paho_send(s, cid, user, f"{TOPIC}\x01", b"{}", v5=False),
        frozenset({CLOSED}),
    ),
    "DEL in the topic, MQTT 5": Misbehaviour(
        "malformed_packet",
        lambda s, cid, user: paho_send(s, cid, user, f"{TOPIC}\x7f", b"{}", v5=True),
        frozenset({"disconnected: Malformed packet"}),  # DISCONNECT 0x81
    ),
    "invalid UTF-8 in the topic": Misbehaviour(
        "malformed_packet",
        lambda s, cid, user: raw_send(s, cid, user, TOPIC.encode() + b"\xc3\x28"),
        frozenset({"closed"}),
    ),
    "wildcard in the topic": Misbehaviour(
        "protocol_error",
        lambda s, cid, user: raw_send(s, cid, user, b"ioc/v1/01/+/air"),
        frozenset({"closed"}),
    ),
}


def ops_counter(store: Store, collector_id: str, field: str) -> float:
    """The newest value of one of the collector's ``ingest`` self-metrics (0 if none)."""
    answer = store.query(
        f'SELECT last("{field}") FROM "ops"."ingest" WHERE "collector" = $c', {"c": collector_id}
    )
    return float(answer[0].values[0][1]) if answer and answer[0].values else 0.0


@pytest.mark.parametrize("case", MISBEHAVIOURS.values(), ids=MISBEHAVIOURS.keys())
def test_a_refused_message_is_counted_and_found_with_the_devices_source(
    settings: Settings, publisher: Publisher, api: OperatorApi, case: Misbehaviour
) -> None:
    client_id = f"dev-{uuid.uuid4().hex[:8]}"
    now_ms = time.time_ns() // 10**6
    with running(settings) as collector, Store(settings) as store:
        publisher.publish(TOPIC, reading(now_ms - 2000))
        assert case.send(settings, client_id, SOURCE) in case.device_sees
        publisher.publish(TOPIC, reading(now_ms - 1000))
        wait_for(
            lambda: collector.counters[f"broker_refused.{case.cause}"] >= 1,
            timeout=10,
            what=f"the collector to count the broker's refusal ({case.cause})",
        )
        wait_for(
            lambda: ops_counter(store, settings.ingest_id, f"broker_refused.{case.cause}") >= 1,
            timeout=10,
            what="the count in the collector's ops self-metrics",
        )
        wait_for(lambda: stored_times(store) == [now_ms - 2000, now_ms - 1000], what="readings")
        assert collector.counters["broker_refused"] == 1
    # findable with the device's source: the dead letters of its province...
    (letter,) = api.refusals("&province=01")
    assert (letter["source"], letter["province"]) == (SOURCE, "01")
    assert client_id in letter["message"] and client_id in letter["excerpt"]
    assert api.get("/api/v1/dead-letters?reason=broker_refused&province=96")["items"] == []
    # ...and feed health: "device X is sending oversize (malformed...) messages"
    health = api.get("/api/v1/health/feeds")
    (feed,) = health["sources"]
    assert (feed["source"], feed["province"], feed["refused"]) == (SOURCE, "01", 1)
    assert feed["causes"] == {case.cause: 1}
    assert feed["clients"] == [client_id]
    assert feed["last_cause"] == case.cause
    assert SOURCE in feed["summary"] and case.cause in feed["summary"]
    assert health["refused"] == 1 and health["unattributed"] == []


def test_a_refusal_from_an_unregistered_client_is_counted_without_a_source(
    settings: Settings, api: OperatorApi
) -> None:
    client_id = f"stranger-{uuid.uuid4().hex[:8]}"
    with running(settings) as collector:
        paho_send(settings, client_id, "nobody", TOPIC, b"x" * OVERSIZE, v5=True)
        wait_for(
            lambda: collector.counters["broker_refused.packet_too_large"] >= 1,
            timeout=10,
            what="the refusal",
        )
    (letter,) = api.refusals()
    assert (letter["source"], letter["province"]) == (None, None)
    health = api.get("/api/v1/health/feeds")
    assert health["sources"] == []
    (stranger,) = health["unattributed"]
    assert (stranger["client_id"], stranger["username"]) == (client_id, "nobody")
    assert stranger["causes"] == {"packet_too_large": 1}


def test_a_payload_between_the_two_limits_reaches_the_collector_as_too_large(
    settings: Settings, publisher: Publisher, api: OperatorApi
) -> None:
    """300,000 bytes: under the broker's max_packet_size (1 MiB), over the collector's 256 KiB.
    The broker delivers it, the collector dead-letters it with its source; nothing is refused."""
    with running(settings) as collector:
        publisher.publish(TOPIC, b'{"v": 1, "metrics": {"pm25": ' + b" " * 300_000 + b"1}}")
        wait_for(lambda: collector.counters["acked"] == 1, what="the acknowledgement")
        assert collector.counters["dead_letters.too_large"] == 1
        assert collector.counters["broker_refused"] == 0
    (letter,) = api.get("/api/v1/dead-letters?province=01")["items"]
    assert (letter["reason"], letter["source"]) == ("too_large", SOURCE)


def test_two_collectors_store_each_refusal_once(settings: Settings, api: OperatorApi) -> None:
    """Both read every line of the broker's log (it reaches no shared subscription): each counts
    every refusal, and their letters are the same points, stored once."""
    group = f"g{uuid.uuid4().hex[:8]}"
    first = dataclasses.replace(settings, ingest_group=group)
    second = dataclasses.replace(settings, ingest_group=group, ingest_id=f"{settings.ingest_id}b")
    client_id = f"dev-{uuid.uuid4().hex[:8]}"
    with running(first) as one, running(second) as two:
        for _ in range(3):  # the same line three times, most likely within one second
            paho_send(settings, client_id, SOURCE, f"{TOPIC}\x01", b"{}", v5=False)
        wait_for(
            lambda: [c.counters["broker_refused.malformed_packet"] for c in (one, two)] == [3, 3],
            timeout=10,
            what="each collector to count the three refusals",
        )
    time.sleep(1.1)  # both writers have flushed; every stamp (within its second) is past
    assert len(api.refusals("&province=01")) == 3
    (feed,) = api.get("/api/v1/health/feeds")["sources"]
    assert (feed["source"], feed["refused"]) == (SOURCE, 3)
