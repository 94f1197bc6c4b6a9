"""The generated ACL and password files, loaded into the real Mosquitto with deploy/'s config.

The broker runs ``deploy/mosquitto/mosquitto.conf`` with only its paths, listener and user
rewritten for a temporary directory; the files come from ``ioc devices acl`` / ``passwd`` (the
real CLI) for the sample registry. Mosquitto 2.0 answers a QoS 1 PUBLISH the ACL refuses with an
MQTT 5 PUBACK reason code 0x87 (Not authorized) and drops the message; a bad login gets CONNACK
0x87 as well.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from ioc.cli import main
from ioc.faults.hostile import render_deploy_config
from ioc.settings import load_settings
from ioc.stack import find_binary, free_ports

pytestmark = pytest.mark.services

NOT_AUTHORIZED = 0x87
GROUP = "ioc-ingest"


@dataclass
class Broker:
    """A running Mosquitto with the generated files, and the cleartext passwords."""

    port: int
    passwords: dict[str, str]
    log: Path


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"mosquitto did not listen on {port} within {timeout}s")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, sample_registry: Path) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("mosquitto")
    passwd, acl, secrets = tmp / "passwd", tmp / "acl", tmp / "secrets.tsv"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IOC_REGISTRY_FILE", str(sample_registry))
        assert main(["devices", "acl", "--output", str(acl)]) == 0
        assert main(["devices", "passwd", "--output", str(passwd), "--secrets", str(secrets)]) == 0
    passwords = dict(
        line.split("\t") for line in secrets.read_text().splitlines() if not line.startswith("#")
    )
    (port,) = free_ports(1)
    config = render_deploy_config(tmp, port, passwd, acl)
    log = tmp / "mosquitto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, process)
            yield Broker(port, passwords, log)
        finally:
            process.terminate()
            process.wait(timeout=20)


@dataclass
class Session:
    """A connected MQTT 5 client that records PUBACK reason codes and received messages."""

    client: mqtt.Client
    connack: ReasonCode
    acks: dict[int, int] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)
    received: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)

    def publish(self, topic: str, payload: bytes = b"{}") -> int:
        """Publish with QoS 1 and return the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, timeout=5), topic
            return self.acks[info.mid]

    def subscribe(self, *filters: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_args: done.set()
        self.client.subscribe([(f, 1) for f in filters])
        assert done.wait(5)

    def wait_for(self, payload: bytes, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        """Messages received up to and including the one carrying ``payload``."""
        seen: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.received.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(message)
            if message[1] == payload:
                return seen
        raise AssertionError(f"{payload!r} not received; got {seen}")

    def drain(self, wait: float = 0.3) -> list[tuple[str, bytes]]:
        time.sleep(wait)
        seen = []
        while not self.received.empty():
            seen.append(self.received.get_nowait())
        return seen


def connect(broker: Broker, user: str | None, password: str | None = None) -> Session:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"t-{uuid.uuid4().hex[:10]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if user is not None:
        client.username_pw_set(user, broker.passwords.get(user) if password is None else password)
    answered = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        outcome.append(rc)
        answered.set()

    client.on_connect = on_connect
    session = Session(client, ReasonCode(2))  # placeholder until CONNACK

    def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        with session.acked:
            session.acks[mid] = rc.value
            session.acked.notify_all()

    client.on_publish = on_publish
    client.on_message = lambda _c, _u, m: session.received.put((m.topic, bytes(m.payload)))
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    assert answered.wait(5), "no CONNACK"
    session.connack = outcome[0]
    return session


@pytest.fixture
def sessions(broker: Broker) -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for s in opened:
        s.client.disconnect()
        s.client.loop_stop()


Opener = Callable[..., Session]


@pytest.fixture
def open_session(broker: Broker, sessions: list[Session]) -> Opener:
    def opener(user: str | None, password: str | None = None) -> Session:
        session = connect(broker, user, password)
        sessions.append(session)
        return session

    return opener


@pytest.fixture
def collector(open_session: Opener) -> Session:
    """The collectors' user on the shared subscriptions, as ``ioc ingest`` subscribes."""
    from ingest.router import SUBSCRIPTIONS

    session = open_session("ioc-ingest")
    assert not session.connack.is_failure
    session.subscribe(*(f"$share/{GROUP}/{topic}" for topic in SUBSCRIPTIONS))
    return session


def test_every_registry_user_and_service_user_has_a_password(broker: Broker) -> None:
    assert set(broker.passwords) == {
        "ioc-ingest",
        "ioc-probe",
        "ioc-health",
        "ioc-alerts",
        "alerts-reader",
        "lns-tts",
        "lns-chirpstack",
        "01-air-a",
        "46-dvc",
        "01-air-senml",
    }


def test_a_device_publishes_to_its_own_topics_and_the_collector_receives_them(
    open_session, collector: Session
) -> None:
    device = open_session("01-air-a")
    assert not device.connack.is_failure
    assert device.publish("ioc/v1/01/01-air-a/air", b"json") == 0
    assert device.publish("ioc/v1/01/01-air-a/air/senml", b"senml") == 0
    assert collector.wait_for(b"senml") == [
        ("ioc/v1/01/01-air-a/air", b"json"),
        ("ioc/v1/01/01-air-a/air/senml", b"senml"),
    ]


@pytest.mark.parametrize(
    "topic",
    [
        "ioc/v1/46/46-dvc/service",  # another source's topic
        "ioc/v1/46/01-air-a/air",  # its own id in another province
        "ioc/v1/01/01-air-a/water",  # another kind
        "ioc/v1/01/01-air-a/air/extra",
        "v3/app@tenant/devices/tts-air-1/up",  # pretending to be the network server
        "ioc/dead/x",
    ],
)
def test_a_device_cannot_publish_anywhere_else(
    open_session, collector: Session, topic: str
) -> None:
    device = open_session("01-air-a")
    assert device.publish(topic, b"forged") == NOT_AUTHORIZED
    assert device.publish("ioc/v1/01/01-air-a/air", b"sentinel") == 0
    assert collector.wait_for(b"sentinel") == [("ioc/v1/01/01-air-a/air", b"sentinel")]


def test_a_device_cannot_read_what_others_publish(open_session, collector: Session) -> None:
    spy = open_session("01-air-a")
    spy.subscribe("#", "ioc/v1/#", "ioc/v1/46/46-dvc/service")  # granted, but nothing delivered
    feed = open_session("46-dvc")
    assert feed.publish("ioc/v1/46/46-dvc/service", b"figures") == 0
    collector.wait_for(b"figures")
    assert spy.drain() == []


def test_wrong_password_and_anonymous_clients_are_refused(open_session) -> None:
    assert open_session("01-air-a", "not-the-password").connack.value == NOT_AUTHORIZED
    assert open_session("ioc-ingest", "").connack.is_failure
    assert open_session("no-such-user", "x").connack.is_failure
    assert open_session(None).connack.is_failure


def test_network_servers_publish_only_for_their_registered_devices(
    open_session, collector: Session
) -> None:
    tts = open_session("lns-tts")
    assert tts.publish("v3/app@tenant/devices/tts-air-1/up", b"tts-ok") == 0
    assert tts.publish("v3/app@tenant/devices/unregistered/up", b"x") == NOT_AUTHORIZED
    assert tts.publish("v3/app@tenant/devices/tts-air-1/join", b"x") == NOT_AUTHORIZED
    assert tts.publish("ioc/v1/01/01-air-lora/air", b"x") == NOT_AUTHORIZED
    chirpstack = open_session("lns-chirpstack")
    up = "application/7/device/0004a30b001c1234/event/up"
    assert chirpstack.publish(up, b"cs-ok") == 0
    assert chirpstack.publish("application/7/device/0004a30b001c9999/event/up", b"x") == (
        NOT_AUTHORIZED
    )
    assert chirpstack.publish("v3/app@tenant/devices/tts-air-1/up", b"x") == NOT_AUTHORIZED
    assert sorted(collector.wait_for(b"cs-ok") + collector.drain()) == [
        (up, b"cs-ok"),
        ("v3/app@tenant/devices/tts-air-1/up", b"tts-ok"),
    ]


def test_lorawan_sources_have_no_user_of_their_own(broker: Broker) -> None:
    assert "01-air-lora" not in broker.passwords
    assert "46-water-lora" not in broker.passwords


def test_collectors_and_probes_cannot_forge_readings(open_session, collector: Session) -> None:
    assert collector.publish("ioc/v1/01/01-air-a/air", b"x") == NOT_AUTHORIZED
    probe = open_session("ioc-probe")
    assert probe.publish("ioc/v1/01/01-air-a/air", b"x") == NOT_AUTHORIZED
    assert probe.publish("ioc/v1/01/01-portal-probe/probe", b"probe-ok") == 0
    assert collector.wait_for(b"probe-ok") == [("ioc/v1/01/01-portal-probe/probe", b"probe-ok")]


def test_the_health_user_reads_the_uptime_and_nothing_else(open_session) -> None:
    health = open_session("ioc-health")
    health.subscribe("$SYS/broker/uptime", "ioc/v1/#")
    deadline = time.monotonic() + 15
    topics: set[str] = set()
    while time.monotonic() < deadline and not topics:
        topics = {topic for topic, _ in health.drain(0.2)}
    assert topics == {"$SYS/broker/uptime"}
    assert health.publish("ioc/v1/01/01-air-a/air", b"x") == NOT_AUTHORIZED


ALERT_STATE = "ioc/alerts/v1/46/flood-alarm/critical/3f1c9a0d2b7e4c11"


def test_the_evaluator_publishes_retained_alert_states_that_readers_get(
    open_session, broker: Broker
) -> None:
    """The evaluator's own publisher, configured as the deployments configure it; a display that
    subscribes afterwards still gets the retained state; a device sees nothing of it."""
    from alerts.publish import MqttPublisher

    settings = load_settings(
        {
            "IOC_MQTT_HOST": "127.0.0.1",
            "IOC_MQTT_PORT": str(broker.port),
            "IOC_MQTT_USERNAME": "ioc-alerts",
            "IOC_MQTT_PASSWORD": broker.passwords["ioc-alerts"],
        }
    )
    publisher = MqttPublisher(settings)
    try:
        assert ALERT_STATE.startswith(f"{settings.alerts_topic}/")
        publisher.publish(ALERT_STATE, b"firing")
    finally:
        publisher.close()
    spy = open_session("01-air-a")
    spy.subscribe("ioc/alerts/v1/#")
    display = open_session("alerts-reader")
    display.subscribe("ioc/alerts/v1/46/#")
    assert display.wait_for(b"firing")[-1] == (ALERT_STATE, b"firing")
    assert spy.drain() == []
    assert display.publish(ALERT_STATE, b"forged") == NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("user", "topic"),
    [
        ("ioc-alerts", "ioc/v1/01/01-air-a/air"),  # a reading
        ("ioc-alerts", "ioc/alerts/v2/46/x"),
        ("ioc-alerts", "$SYS/broker/uptime"),
        ("alerts-reader", "ioc/v1/01/01-air-a/air"),
        ("01-air-a", ALERT_STATE),  # a device forging an alarm
        ("ioc-ingest", ALERT_STATE),
        ("ioc-probe", ALERT_STATE),
    ],
)
def test_only_the_evaluator_writes_alert_states_and_it_writes_nothing_else(
    open_session, collector: Session, user: str, topic: str
) -> None:
    display = open_session("alerts-reader")
    display.subscribe("ioc/alerts/#")
    assert open_session(user).publish(topic, b"forged") == NOT_AUTHORIZED
    device = open_session("01-air-a")
    assert device.publish("ioc/v1/01/01-air-a/air", b"sentinel") == 0
    assert collector.wait_for(b"sentinel") == [("ioc/v1/01/01-air-a/air", b"sentinel")]
    assert b"forged" not in {payload for _, payload in display.drain()}


def test_the_evaluators_publisher_reports_a_state_the_broker_refuses(broker: Broker) -> None:
    """A publish outside the evaluator's grant is acknowledged with 0x87 by the broker and
    dropped: the publisher must say so (the evaluator logs it), not count it as delivered."""
    from alerts.publish import MqttPublisher, PublishError

    settings = load_settings(
        {
            "IOC_MQTT_HOST": "127.0.0.1",
            "IOC_MQTT_PORT": str(broker.port),
            "IOC_MQTT_USERNAME": "ioc-alerts",
            "IOC_MQTT_PASSWORD": broker.passwords["ioc-alerts"],
        }
    )
    publisher = MqttPublisher(settings)
    try:
        with pytest.raises(PublishError, match="refused by the broker"):
            publisher.publish("ioc/v1/01/01-air-a/air", b"forged")
        publisher.publish(ALERT_STATE, b"firing")  # its own prefix still goes through
    finally:
        publisher.close()


# --- what the broker refuses: max_packet_size, and its log for the collectors only ------------

MAX_PACKET_SIZE = 1_048_576
BROKER_LOG = "$SYS/broker/log/N"


def misbehave(broker: Broker, user: str, topic: str, payload: bytes) -> tuple[str, int | None, str]:
    """A device that publishes once (QoS 1, no reconnect), until the broker disconnects it: its
    client id, the Maximum Packet Size the broker announced in CONNACK, and the DISCONNECT
    reason."""
    client_id = f"t-{uuid.uuid4().hex[:10]}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        reconnect_on_failure=False,
    )
    client.username_pw_set(user, broker.passwords[user])
    announced: list[int | None] = []
    gone: list[ReasonCode] = []
    connected, disconnected = threading.Event(), threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, props: Any) -> None:
        assert not rc.is_failure, rc
        announced.append(getattr(props, "MaximumPacketSize", None))
        connected.set()

    def on_disconnect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        gone.append(rc)
        disconnected.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    try:
        assert connected.wait(5), "no CONNACK"
        client.publish(topic, payload, qos=1)
        assert disconnected.wait(10), "the broker did not disconnect the device"
    finally:
        client.loop_stop()
    return client_id, announced[0], str(gone[0])


def wait_for_line(session: Session, ending: bytes, timeout: float = 5.0) -> list[bytes]:
    """The log lines received up to the one ending with ``ending`` (each starts with its time)."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, text = session.received.get(timeout=0.1)
        except queue.Empty:
            continue
        seen.append(text)
        if text.endswith(ending):
            return seen
    raise AssertionError(f"no log line ending {ending!r}; got {seen}")


@pytest.mark.parametrize(
    ("topic", "payload", "reasons", "logged"),
    [
        (
            "ioc/v1/46/46-dvc/service",
            b"x" * (MAX_PACKET_SIZE + 1),
            # MQTT 5 DISCONNECT 0x95, unless the device's own write of the rest of the packet
            # fails first (the broker closes the socket right after the DISCONNECT)
            {"Packet too large", "Unspecified error"},
            "disconnected due to oversize packet.",
        ),
        (
            "ioc/v1/46/46-dvc/service\x01",
            b"{}",
            {"Malformed packet"},  # MQTT 5 DISCONNECT 0x81
            "disconnected due to malformed packet.",
        ),
    ],
    ids=["oversize", "control character in the topic"],
)
def test_a_refused_packet_is_logged_for_the_collectors_and_nobody_else(
    *,
    broker: Broker,
    open_session: Opener,
    topic: str,
    payload: bytes,
    reasons: set[str],
    logged: str,
) -> None:
    collector = open_session("ioc-ingest")
    collector.subscribe(BROKER_LOG)
    spies = [open_session(user) for user in ("01-air-a", "ioc-health", "alerts-reader")]
    for spy in spies:
        spy.subscribe("$SYS/#", "$SYS/broker/log/#", BROKER_LOG)
    client_id, announced, disconnected = misbehave(broker, "46-dvc", topic, payload)
    assert announced == MAX_PACKET_SIZE  # deploy/ sets max_packet_size, not message_size_limit
    assert disconnected in reasons
    seen = wait_for_line(collector, f": Client {client_id} {logged}".encode())
    # the user name is in the connect line (connection_messages true): the collector's key
    assert any(text.endswith(f"as {client_id} (p5, c1, k10, u'46-dvc').".encode()) for text in seen)
    for spy in spies:  # the health user reads $SYS/broker/uptime and nothing of the log
        assert [t for t, _ in spy.drain() if t.startswith("$SYS/broker/log")] == []
