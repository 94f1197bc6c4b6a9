"""MQTT clients built from settings: the one place that knows protocol version and credentials.

Also the collector's cheaper receive path (:class:`ReceivingClient`) and batched PUBACKs
(:func:`ack_many`): the two places that lean on paho-mqtt 2.x internals (pinned in
constraints.txt), tested against stock paho on the real broker (tests/ingest/test_perf_receive.py).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ioc.settings import Settings


def make_client(
    settings: Settings,
    client_id: str = "",
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    fast_receive: bool = False,
) -> mqtt.Client:
    """A paho client (callback API v2) for the configured broker, not yet connected.

    ``persistent`` keeps the session (subscriptions, queued QoS 1 messages) across disconnects:
    MQTT 3.1.1 ``clean_session=False`` here; for MQTT 5 pass :func:`session_properties` and
    ``clean_start=False`` to ``connect``. ``manual_ack`` leaves PUBACKs to ``client.ack``.
    ``fast_receive`` gives a :class:`ReceivingClient` (a subscriber's cheaper read path).
    """
    v5 = settings.mqtt_protocol == "5"
    protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    client = (ReceivingClient if fast_receive else mqtt.Client)(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    return client


_PUBACK = struct.Struct("!BBH")  # MQTT 3.1.1 and 5: type 4, remaining length 2, packet id
_PUBACK_TYPE = 0x40


def ack_many(client: mqtt.Client, mids: Sequence[int]) -> None:
    """Acknowledge QoS 1 messages (manual acks): the PUBACKs paho's ``ack`` would send, at once.

    ``client.ack`` queues one packet per message, and each wakes paho's network thread (a
    socketpair write) and costs it a socket send: about a tenth of a collector's CPU at a few
    thousand messages a second. Here the same bytes (a 2-byte PUBACK per message id, as paho
    itself sends them for MQTT 3.1.1 and 5) go in one queued packet: one wake-up and one send
    for a whole batch. Order and content of what the broker receives are unchanged. A paho
    without the queue this relies on (a future major version) gets ``client.ack`` per message.
    """
    if not mids:
        return
    queue = getattr(client, "_packet_queue", None)
    if queue is None or not getattr(client, "_manual_ack", False):
        for mid in mids:
            client.ack(mid, 1)
        return
    pack = _PUBACK.pack
    packet = b"".join([pack(_PUBACK_TYPE, 2, mid) for mid in mids])
    queue(_PUBACK_TYPE, packet, 0, 0)


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


# --- a cheaper read path for subscribers ------------------------------------------------------

_READ_SIZE = 256 * 1024
"""Bytes asked of the socket at once (a few hundred messages of telemetry)."""


class Received:
    """An incoming PUBLISH as the collector needs it (what it reads of paho's ``MQTTMessage``)."""

    __slots__ = ("mid", "payload", "qos", "topic")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self.topic = topic
        self.payload = payload
        self.mid = mid
        self.qos = qos


class ReceivingClient(mqtt.Client):
    """paho's client with a read path for a subscriber that receives thousands of messages/s.

    Stock paho reads each packet with three ``recv`` calls (type, length, rest) and goes back to
    ``select`` after every packet, decodes each PUBLISH's MQTT 5 properties into objects, and
    builds an ``MQTTMessage`` (with a condition variable) per message: about 40 us of CPU per
    message, as much as the collector's own work. Here:

    * ``recv`` asks for up to 256 KiB at once and paho's packet reader is served from that
      buffer; ``loop_read`` goes on while the buffer holds bytes (``select`` cannot see them);
    * a QoS 0 or 1 PUBLISH with a UTF-8 topic, when no per-topic callback is registered, goes to
      ``on_message`` as a :class:`Received` (topic, payload, mid, qos); its MQTT 5 properties
      are skipped, not decoded (nobody here reads them). Anything else (QoS 2, a topic that is
      not UTF-8, a malformed packet, every other packet type) takes paho's own path.

    What goes over the wire is unchanged: the same packets are read in the same order, and
    acknowledgements stay as configured (with ``manual_ack`` nothing is acknowledged here).
    tests/ingest/test_perf_receive.py runs the same broker traffic through this client and a
    stock one and compares what the callbacks see.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._rbuf = b""
        self._rpos = 0

    # paho reads through _sock_recv(n): serve it from one large recv.
    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(max(bufsize, _READ_SIZE))
            if not data:
                return data  # the peer closed: paho sees the end of the connection
            self._rbuf, self._rpos = data, 0
        start = self._rpos
        chunk = self._rbuf[start : start + bufsize]
        self._rpos = start + len(chunk)
        return chunk

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0  # bytes of a closed connection are never read on
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (
            rc is MQTTErrorCode.MQTT_ERR_SUCCESS
            and self._rpos < len(self._rbuf)
            and self._sock is not None
        ):
            rc = super().loop_read(max_packets)
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        on_message = self.on_message
        filtered = self._on_message_filtered._root._children  # message_callback_add in use
        message = None if on_message is None or filtered else self._lean_publish()
        if on_message is None or message is None:
            return super()._handle_publish()
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)  # type: ignore[arg-type]
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise
        if message.qos == 1 and not self._manual_ack:
            return self._send_puback(message.mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _lean_publish(self) -> Received | None:
        """The PUBLISH being read as a :class:`Received`, or None to leave it to paho."""
        header: int = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if qos > 1:
            return None
        packet = self._in_packet["packet"]
        size = len(packet)
        topic_end = 2 + int.from_bytes(packet[0:2], "big")
        pos = topic_end + 2 if qos else topic_end
        if topic_end == 2 or pos > size:
            return None  # paho says what is wrong with it
        mid = int.from_bytes(packet[topic_end:pos], "big") if qos else 0
        if self._protocol == MQTTProtocolVersion.MQTTv5:
            length, shift = 0, 0
            while True:  # the properties' length, a variable byte integer: skip them
                if pos >= size or shift > 21:
                    return None
                byte = packet[pos]
                pos += 1
                length |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            pos += length
            if pos > size:
                return None
        try:
            topic = packet[2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Received(topic, bytes(packet[pos:]), mid, qos)
