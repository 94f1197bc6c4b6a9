"""``ioc ingest``: the MQTT collector. Subscribes, routes, writes durably, then acknowledges.

* paho-mqtt 2.x, QoS 1, a persistent session under the fixed client id ``ioc-<IOC_INGEST_ID>``
  (MQTT 5 session expiry 14 days, or 3.1.1 ``clean_session=False``), manual acknowledgements,
  and a shared subscription (``$share/<IOC_INGEST_GROUP>/...``) so several collectors split
  the load. It subscribes again on every connect; paho reconnects by itself.
* Each message is routed (:mod:`ingest.router`) on paho's network thread; its points and dead
  letters go to the :class:`~ingest.writer.Writer`, which calls back when they are durable, and
  only then is the message acknowledged. Nothing raises into paho's loop.
* The hot path is cheap because a collector is one core's worth of Python: messages arrive
  through :class:`ioc.mqtt.ReceivingClient` (large socket reads, no per-message paho objects),
  the PUBACKs of a durable batch leave in one write (:func:`ioc.mqtt.ack_many`), and a batch is
  written when ``BATCH_MESSAGES`` messages or ``BATCH_SECONDS`` have gathered. What is
  acknowledged, and when, is unchanged: after the batch is durable, never before.
* It also reads the broker's own log (``$SYS/broker/log/N``, a plain subscription: the broker
  delivers it to no shared one): what the broker refused (oversize packets, malformed topics)
  never arrives as a message, so each refusal is counted (``broker_refused.<cause>``) and
  stored as a ``broker_refused`` dead letter with the device's source (:mod:`ingest.brokerlog`).
* Every ``metrics_interval`` seconds the collector writes its own figures (measurement
  ``ingest``, policy ``ops``, tag ``collector``) through the same writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ingest.brokerlog import BROKER_LOG_TOPIC, BrokerLog
from ingest.deadletter import DeadLetter
from ingest.formats.model import DEFAULT_MAX_BYTES
from ingest.router import SUBSCRIPTIONS, Router
from ingest.spool import Spool
from ingest.validate import Validator
from ingest.writer import Writer
from ioc.catalog import Catalog, parse_period
from ioc.errors import LineProtocolError
from ioc.memory import keep_large_blocks_mapped, release_free_memory, rss_kib
from ioc.mqtt import Received, ack_many, make_client, session_properties
from ioc.settings import Settings
from ioc.store import Point, Store, encode_point

__all__ = ["Collector"]

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 1000
"""MQTT 5 Receive Maximum announced to the broker; the writer's ``max_pending`` bounds memory."""

BATCH_SECONDS = 0.025
"""How long the first message of a batch waits for others before the batch is written.

Half of the 50 ms it used to be: a message waits 12 ms on average for its batch instead of 25
(bench.ingest at 2,000 msg/s: publish-to-queryable p50 46 ms instead of 66), for at most 40
clock-driven writes a second; under load batches fill by ``BATCH_MESSAGES`` first."""

BATCH_MESSAGES = RECEIVE_MAXIMUM // 2
"""A batch is written once it holds this many messages, without waiting out ``batch_seconds``.

The broker stops sending when ``RECEIVE_MAXIMUM`` messages wait for their PUBACK: a batch that
waited for the clock with the stream stopped would cap a collector near RECEIVE_MAXIMUM per
(batch_seconds + write time), about 14,000 msg/s. Writing at half of it keeps the other half
arriving while a batch is written."""


class Collector:
    """One collector process: broker session, router, durable writer, self-metrics."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        metrics_interval: float = 10.0,
        batch_seconds: float = BATCH_SECONDS,
        max_pending: int = 20000,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.client_id = f"ioc-{settings.ingest_id}"
        self.metrics_interval = metrics_interval
        self.batch_seconds = batch_seconds
        self.max_pending = max_pending
        validator = Validator(
            catalog,
            max_age_s=parse_period(settings.ingest_max_age),
            max_future_s=parse_period(settings.ingest_max_future),
        )
        self.router = Router(catalog, validator, max_bytes=DEFAULT_MAX_BYTES)
        self.broker_log = BrokerLog(catalog.registry)
        self.counters: Counter[str] = Counter()
        self.connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._writer: Writer | None = None
        self._stop = threading.Event()

    @property
    def topics(self) -> list[str]:
        """The topic filters, behind the shared-subscription prefix when grouped."""
        group = self.settings.ingest_group
        return [f"$share/{group}/{t}" if group else t for t in SUBSCRIPTIONS]

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set; then drain what can be written and disconnect."""
        self._stop = stop
        # Large write bodies mapped on their own and freed pages handed back each metrics
        # interval: the RSS stays flat over days (ioc/memory.py says what grew without).
        keep_large_blocks_mapped()
        spool_dir = self.settings.var_dir / "spool" / self.settings.ingest_id
        max_bytes = self.settings.ingest_spool_max_mb * 1024 * 1024
        with Store(self.settings) as store, Spool.open(spool_dir, max_bytes=max_bytes) as spool:
            writer = Writer(
                store,
                spool,
                self._ack,
                batch_seconds=self.batch_seconds,
                batch_messages=BATCH_MESSAGES,
                max_pending=self.max_pending,
                collector=self.settings.ingest_id,
            )
            self._writer = writer
            writer_stop = threading.Event()
            thread = threading.Thread(
                target=writer.run, args=(writer_stop,), name="ingest-writer", daemon=True
            )
            thread.start()
            client = self._connect()
            try:
                while not stop.wait(self.metrics_interval):
                    release_free_memory()
                    self._self_metrics(writer, spool)
            finally:
                client.disconnect()
                client.loop_stop()
                writer_stop.set()
                thread.join(timeout=30)
        log.info("collector %s stopped", self.client_id)

    # --- MQTT ---------------------------------------------------------------------------------

    def _connect(self) -> mqtt.Client:
        client = make_client(
            self.settings, self.client_id, persistent=True, manual_ack=True, fast_receive=True
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        # One callback for everything: paho's per-topic callbacks (message_callback_add) would
        # match every message's topic against a filter tree first; one string comparison is
        # enough to tell the broker's log from telemetry.
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client = client
        properties = session_properties(self.settings, receive_maximum=RECEIVE_MAXIMUM)
        options: dict[str, Any] = {"keepalive": 30}
        if properties is not None:
            options.update(clean_start=False, properties=properties)
        client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, **options)
        client.loop_start()
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        # Subscribe on every connect: a broker that lost the session (or a 3.1.1 clean one)
        # must not leave the collector connected and deaf.
        # The broker's log is QoS 0 and goes to plain subscriptions only: every collector reads it.
        wanted = [(topic, 1) for topic in self.topics] + [(BROKER_LOG_TOPIC, 0)]
        result, _ = client.subscribe(wanted)
        if result is not MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.error("subscribe failed: %s", result)
        if self.counters["connects"] and not flags.session_present:
            # A reconnect should find the persistent session the broker kept for us; without it
            # the broker dropped what arrived while we were away (a broker killed before it
            # saved the session, docs/faults.md). Nothing here can recover it: say so.
            self.counters["sessions_lost"] += 1
            log.warning(
                "the broker did not keep this collector's session (%s): readings published "
                "while it was disconnected were not queued for it and may be lost",
                self.client_id,
            )
        self.counters["connects"] += 1
        self.connected.set()
        log.info(
            "connected to %s:%d as %s (session present: %s), subscribed to %s",
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            self.client_id,
            flags.session_present,
            ", ".join(self.topics),
        )

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _properties: object,
    ) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(
        self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage | Received
    ) -> None:
        topic = msg.topic  # a property that decodes the topic on every read: read it once
        if topic == BROKER_LOG_TOPIC:
            self._on_broker_log(client, userdata, msg)
            return
        qos = msg.qos
        token: Hashable | None = (msg.mid, qos) if qos > 0 else None
        received_ns = time.time_ns()
        payload = bytes(msg.payload)
        try:
            raw, ops = self.handle(topic, payload, received_ns)
        except Exception:  # a bug must not kill paho's loop (STYLE.md); keep the message
            log.exception("routing %s failed", topic)
            letter = DeadLetter.of(
                topic, payload, received_ns, "internal_error", "see the collector's log"
            )
            raw, ops = [], [encode_point(letter.to_point(collector=self.settings.ingest_id))]
            self.counters["dead_letters.internal_error"] += 1
        writer = self._writer
        if writer is not None:
            writer.submit(raw, ops, token, stop=self._stop)

    def _on_broker_log(
        self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage | Received
    ) -> None:
        try:
            ops = self.read_broker_log(bytes(msg.payload), time.time_ns())
        except Exception:  # a bug must not kill paho's loop (STYLE.md)
            log.exception("reading the broker's log line %r failed", msg.payload[:200])
            return
        writer = self._writer
        if ops and writer is not None:
            writer.submit([], ops, None, stop=self._stop)

    def read_broker_log(self, payload: bytes, received_ns: int) -> list[str]:
        """One line of the broker's log: the ops line of the refusal it reports, if any."""
        self.counters["broker_log_lines"] += 1
        refusal = self.broker_log.read(payload, received_ns)
        if refusal is None:
            return []
        self.counters["broker_refused"] += 1
        self.counters[f"broker_refused.{refusal.cause}"] += 1
        log.info("%s", refusal.message)
        return [encode_point(refusal.to_point())]

    def handle(self, topic: str, payload: bytes, received_ns: int) -> tuple[list[str], list[str]]:
        """Route one message: the raw lines and the ops lines (dead letters) it produces."""
        counters = self.counters
        counters["received"] += 1
        routed = self.router.route(topic, payload, received_ns)
        counters["readings"] += routed.readings
        for kind in routed.ignored:
            counters[f"ignored.{kind}"] += 1
        raw: list[str] = []
        letters: Sequence[DeadLetter] = routed.dead_letters
        for point in routed.points:
            try:
                raw.append(encode_point(point))
            except LineProtocolError as error:
                letters = [
                    *letters,
                    DeadLetter.of(topic, payload, received_ns, "unencodable", str(error)),
                ]
        counters["points"] += len(raw)
        if not letters:
            return raw, []
        collector = self.settings.ingest_id
        ops = [encode_point(letter.to_point(collector=collector)) for letter in letters]
        for letter in letters:
            counters[f"dead_letters.{letter.reason}"] += 1
        if self.settings.ingest_dead_letter_topic and self._client is not None:
            for letter in letters:
                self._client.publish(
                    f"{self.settings.ingest_dead_letter_topic}/{letter.reason}",
                    letter.to_json(),
                    qos=1,
                )
        return raw, ops

    def _ack(self, tokens: Sequence[Hashable]) -> None:
        client = self._client
        if client is None:
            return
        # QoS 1 (all telemetry) in one write; anything else one by one, as paho does it.
        mids: list[int] = []
        for token in tokens:
            mid, qos = cast("tuple[int, int]", token)
            if qos == 1:
                mids.append(mid)
            else:
                client.ack(mid, qos)
        ack_many(client, mids)
        self.counters["acked"] += len(tokens)

    # --- self-metrics ---------------------------------------------------------------------------

    def figures(self, writer: Writer, spool: Spool) -> dict[str, float | int | bool]:
        """The collector's figures now: counters, writer state, spool state."""
        stats = writer.stats
        fields: dict[str, float | int | bool] = {
            "received": self.counters["received"],
            "readings": self.counters["readings"],
            "points": self.counters["points"],
            "acked": self.counters["acked"],
            "connects": self.counters["connects"],
            "sessions_lost": self.counters["sessions_lost"],
            "points_written": stats.points_written,
            "spooled_batches": stats.spooled_batches,
            "replayed_batches": stats.replayed_batches,
            "influx_rejected": stats.influx_rejected,
            "write_errors": stats.write_errors,
            "write_ms": stats.last_write_ms,
            "batch_ms": stats.last_batch_ms,
            "pending": writer.pending,
            "lag_ms": writer.oldest_pending_age_s() * 1000,
            "spool_bytes": spool.size_bytes,
            "spool_batches": spool.pending_count,
            "held": stats.held,
            "connected": self.connected.is_set(),
            "healthy": self.connected.is_set() and not stats.held,
            "rss_kib": rss_kib(),
        }
        fields["broker_log_lines"] = self.counters["broker_log_lines"]
        fields["broker_refused"] = self.counters["broker_refused"]
        dead = {
            k: v
            for k, v in self.counters.items()
            if k.startswith(("dead_letters.", "ignored.", "broker_refused."))
        }
        fields["dead_letters"] = sum(v for k, v in dead.items() if k.startswith("dead_letters."))
        fields.update(dead)
        return fields

    def _self_metrics(self, writer: Writer, spool: Spool) -> None:
        point = Point(
            "ingest",
            self.figures(writer, spool),
            time.time_ns(),
            {"collector": self.settings.ingest_id},
        )
        writer.submit([], [encode_point(point)], None, stop=self._stop)
