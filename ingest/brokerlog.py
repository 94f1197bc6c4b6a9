"""What the broker refused, read from its own log on ``$SYS/broker/log/N``.

Mosquitto drops some messages before any subscriber sees them: a packet above
``max_packet_size``, a topic that is not valid UTF-8 or holds a control character, a wildcard in
a PUBLISH topic. Mosquitto 2.0.11 then disconnects the client and logs one NOTICE line that
names the client id only; no ``$SYS`` counter moves. With ``log_dest topic`` it publishes each
log line (QoS 0) on ``$SYS/broker/log/<level>``, NOTICE being ``N``; the user name is in the
line logged when the client connected (``connection_messages true``). docs/ingest.md records
the lines as observed.

:class:`BrokerLog` remembers which user each client id connected as, and turns each refusal
line into a :class:`BrokerRefusal`, stored as a dead letter of reason ``broker_refused`` with the
source and province its user name (else its client id) names in the registry.

Mosquitto 2.0.11 delivers ``$SYS`` log lines to plain subscriptions only (a ``$share/...``
subscription gets nothing), so every collector reads every line. A refusal's point identity
(tags and timestamp) is therefore derived from the line alone: the broker's time stamp, a hash
of the line and its repetition within that second. Collectors that read the same line write the
same point, and InfluxDB keeps it once.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime

from ingest.deadletter import DEAD_LETTER_MEASUREMENT
from ioc.catalog import Registry, Source
from ioc.store import Point

__all__ = ["BROKER_LOG_TOPIC", "CAUSES", "REFUSED", "BrokerLog", "BrokerRefusal"]

BROKER_LOG_TOPIC = "$SYS/broker/log/N"
"""Where Mosquitto publishes its NOTICE lines (``log_dest topic``, ``log_type notice``)."""
REFUSED = "broker_refused"
"""The dead-letter reason of a broker refusal."""

CAUSES = {
    "packet_too_large": "a packet above the broker's max_packet_size",
    "payload_too_large": "a payload above the broker's message_size_limit",
    "malformed_packet": "a malformed packet, such as a topic with a control character or "
    "invalid UTF-8",
    "protocol_error": "a protocol error, such as a wildcard in a PUBLISH topic",
    "not_supported": "a QoS or retain flag the broker does not allow",
    "not_authorised": "a login with a wrong user name or password",
}
"""Each refusal cause and what the client sent."""
_WHY = {
    "oversize packet": "packet_too_large",
    "oversize payload": "payload_too_large",
    "malformed packet": "malformed_packet",
    "protocol error": "protocol_error",
    "QoS too high or retain not supported": "not_supported",
}
# The client id is greedy: whatever a client puts in its id, the broker's own text ends the line.
_REFUSAL = re.compile(rf"Client (?P<client>.*) disconnected due to (?P<why>{'|'.join(_WHY)})\.")
_NOT_AUTHORISED = re.compile(r"Client (?P<client>.*) disconnected, not authorised\.")
_CONNECTED = re.compile(
    r"New client connected from \S+ as (?P<client>.*) \(p\d+, c\d+, k\d+(?:, u'(?P<user>.*)')?\)\."
)
_NS = 1_000_000_000
_BUCKETS = 1_000_000
"""Lines of one second are spread over this many microsecond slots by their hash."""
_REPEATS = 1000
"""Identical lines within one second get consecutive nanoseconds of their slot (at most this
many; a client refused more often in one second overwrites its last point)."""


@dataclass(frozen=True, slots=True)
class BrokerRefusal:
    """One message (or login) the broker refused, as its log told it."""

    time_ns: int
    cause: str
    client_id: str
    username: str | None
    source: str | None
    province: str | None
    line: str

    @property
    def message(self) -> str:
        """What happened, for the dead letter's ``message``."""
        user = "no user name" if self.username is None else f"user {self.username!r}"
        return (
            f"the broker refused {CAUSES[self.cause]} ({self.cause}) from client "
            f"{self.client_id!r} ({user}), dropped it and disconnected the client"
        )

    def to_point(self) -> Point:
        """A dead letter (policy ``ops``), without a ``collector`` tag: every collector writes
        the same point for the same line."""
        tags = {"reason": REFUSED}
        if self.province is not None:
            tags["province"] = self.province
        fields: dict[str, str | int] = {
            "topic": "",  # the broker does not log it
            "excerpt": self.line,
            "message": self.message,
            "received_ms": self.time_ns // 1_000_000,
            "cause": self.cause,
            "client_id": self.client_id,
        }
        if self.username is not None:
            fields["username"] = self.username
        if self.source is not None:
            fields["source"] = self.source
        return Point(DEAD_LETTER_MEASUREMENT, fields, self.time_ns, tags)


def broker_time_s(stamp: str) -> int | None:
    """Unix seconds of a log line's time stamp: Mosquitto's default (Unix seconds) or ISO 8601
    (``log_timestamp_format %Y-%m-%dT%H:%M:%S%z``; without an offset, this host's local time);
    None for any other format."""
    if stamp.isdigit():
        return int(stamp)
    try:
        return int(datetime.fromisoformat(stamp).timestamp())
    except ValueError:
        return None


class BrokerLog:
    """Reads the broker's NOTICE lines in order (one instance per collector, paho's thread)."""

    def __init__(self, registry: Registry, *, max_clients: int = 100_000) -> None:
        self.registry = registry
        self.max_clients = max_clients
        self._users: OrderedDict[str, str | None] = OrderedDict()
        self._second: int | None = None
        self._seen: Counter[str] = Counter()

    def read(self, payload: bytes, received_ns: int) -> BrokerRefusal | None:
        """The refusal a log line reports, or None (a connect line is remembered)."""
        line = payload.decode("utf-8", errors="replace")
        stamp, sep, text = line.partition(": ")
        if not sep:
            return None
        connected = _CONNECTED.fullmatch(text)
        if connected is not None:
            self._remember(connected["client"], connected["user"])
            return None
        refusal = _REFUSAL.fullmatch(text)
        if refusal is not None:
            cause = _WHY[refusal["why"]]
        else:
            refusal = _NOT_AUTHORISED.fullmatch(text)
            if refusal is None:
                return None
            cause = "not_authorised"
        client_id = refusal["client"]
        username = self._users.get(client_id)
        source = self._source(client_id, username)
        return BrokerRefusal(
            time_ns=self._stamp(line, broker_time_s(stamp), received_ns),
            cause=cause,
            client_id=client_id,
            username=username,
            source=source.id if source else None,
            province=source.province if source else None,
            line=line,
        )

    def _remember(self, client_id: str, username: str | None) -> None:
        self._users[client_id] = username
        self._users.move_to_end(client_id)
        while len(self._users) > self.max_clients:
            self._users.popitem(last=False)

    def _source(self, client_id: str, username: str | None) -> Source | None:
        """The source of the user name; only a client without a known user name (anonymous, or
        connected before this collector started) is taken by its client id."""
        if username is not None:
            return self.registry.get(username)
        return self.registry.get(client_id)

    def _stamp(self, line: str, second: int | None, received_ns: int) -> int:
        """The broker's second, plus a slot from the line's hash, plus its repetition count."""
        if second is None:  # an unknown stamp format: this collector's clock
            second = received_ns // _NS
        if second != self._second:
            self._second, self._seen = second, Counter()
        repeat = min(self._seen[line], _REPEATS - 1)
        self._seen[line] += 1
        digest = hashlib.blake2b(line.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest, "big") % _BUCKETS
        return second * _NS + slot * _REPEATS + repeat
