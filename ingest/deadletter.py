"""Dead letters: messages (or readings) that can never be stored, kept with the reason why.

Stored in measurement ``dead_letter`` of retention policy ``ops``: tag ``reason`` (a stable code
from docs/payloads.md or docs/ingest.md) and, when the source is known, ``province``; fields
``topic``, ``excerpt`` (the first bytes of the payload), ``message``, ``source`` and
``received_ms``. Topic, source and excerpt are free text from outside, so they are fields, never
tags (DESIGN.md: free text never becomes a tag).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import orjson

from ioc.catalog import Source
from ioc.store import Point

__all__ = ["DEAD_LETTER_MEASUREMENT", "EXCERPT_BYTES", "DeadLetter"]

DEAD_LETTER_MEASUREMENT = "dead_letter"
EXCERPT_BYTES = 512
_SEQUENCE = itertools.count()


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
    ) -> DeadLetter:
        """A dead letter stamped with the receive time (made unique within this process)."""
        # Two letters with the same reason and province in the same microsecond would be one
        # point in InfluxDB; the low nanosecond digits keep them apart.
        stamp = received_ns // 1000 * 1000 + next(_SEQUENCE) % 1000
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

    def to_point(self) -> Point:
        """The line-protocol point of this dead letter (policy ``ops``)."""
        tags = {"reason": self.reason}
        if self.province is not None:
            tags["province"] = self.province
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
