"""Dead letters: messages (or readings) that can never be stored, kept with the reason why.

Stored in measurement ``dead_letter`` of retention policy ``ops``: tag ``reason`` (a stable code
from docs/payloads.md or docs/ingest.md), ``province`` when the source is known and
``collector`` when a collector wrote it; fields ``topic``, ``excerpt`` (the first bytes of the
payload), ``message``, ``source`` and ``received_ms``. Topic, source and excerpt are free text
from outside, so they are fields, never tags (DESIGN.md: free text never becomes a tag).

Identity: InfluxDB keeps one point per measurement, tag set and timestamp, so every letter needs
a stamp of its own. A :class:`DeadLetterClock` (one per process) stamps the receive time, moved
past the previous stamp, so that no two letters of a process share a timestamp; the
``collector`` tag (its ``IOC_INGEST_ID``, unique among connected collectors because it is the
MQTT client id) keeps two collectors that stamp the same nanosecond in separate series.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import orjson

from ioc.catalog import Source
from ioc.store import Point

__all__ = ["DEAD_LETTER_MEASUREMENT", "EXCERPT_BYTES", "DeadLetter", "DeadLetterClock"]

DEAD_LETTER_MEASUREMENT = "dead_letter"
EXCERPT_BYTES = 512


class DeadLetterClock:
    """Dead-letter timestamps that never repeat: each is the receive time or 1 ns past the last.

    Thread-safe (paho's thread and the writer's both stamp). A burst runs ahead of the receive
    time by one nanosecond per letter, so stamps stay within microseconds of it.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def stamp(self, received_ns: int) -> int:
        """A timestamp at or after ``received_ns``, later than every one this clock gave."""
        with self._lock:
            self._last = max(received_ns, self._last + 1)
            return self._last


PROCESS_CLOCK = DeadLetterClock()
"""The clock of this process's dead letters."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message or reading: where it came from, what it looked like, and why."""

    time_ns: int
    topic: str
    excerpt: str
    reason: str
    message: str
    source: str | None
    province: str | None

    @classmethod
    def of(
        cls,
        topic: str,
        payload: bytes,
        received_ns: int,
        reason: str,
        message: str,
        *,
        source: Source | None = None,
        clock: DeadLetterClock = PROCESS_CLOCK,
    ) -> DeadLetter:
        """A dead letter stamped with the receive time, made unique by ``clock``."""
        stamp = clock.stamp(received_ns)
        excerpt = payload[:EXCERPT_BYTES].decode("utf-8", errors="backslashreplace")
        if len(payload) > EXCERPT_BYTES:
            excerpt += f"... ({len(payload)} bytes)"
        return cls(
            time_ns=stamp,
            topic=topic,
            excerpt=excerpt,
            reason=reason,
            message=message,
            source=source.id if source else None,
            province=source.province if source else None,
        )

    def to_point(self, *, collector: str | None = None) -> Point:
        """The line-protocol point (policy ``ops``); ``collector``: the collector writing it."""
        tags = {"reason": self.reason}
        if self.province is not None:
            tags["province"] = self.province
        if collector is not None:
            tags["collector"] = collector
        fields: dict[str, str | int] = {
            "topic": self.topic,
            "excerpt": self.excerpt,
            "message": self.message,
            "received_ms": self.time_ns // 1_000_000,
        }
        if self.source is not None:
            fields["source"] = self.source
        return Point(DEAD_LETTER_MEASUREMENT, fields, self.time_ns, tags)

    def to_json(self) -> bytes:
        """The dead letter as JSON, for republishing on the dead-letter topic."""
        return orjson.dumps(
            {
                "time_ns": self.time_ns,
                "topic": self.topic,
                "reason": self.reason,
                "message": self.message,
                "source": self.source,
                "province": self.province,
                "excerpt": self.excerpt,
            }
        )
