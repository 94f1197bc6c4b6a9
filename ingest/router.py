"""From an MQTT (or HTTP) message to raw points and dead letters: topic, parser, source, rules.

Topics (docs/ingest.md):

* ``ioc/v1/{province}/{source_id}/{kind}``: IOC JSON; ``.../{kind}/senml``: SenML. The source
  must be registered with that province and kind, and an IOC JSON document must name the same
  source: a device cannot write for another one or for another province.
* ``v3/{application}@{tenant}/devices/{device_id}/up``: The Things Stack v3 uplinks.
* ``application/{application}/device/{dev_eui}/event/{event}``: ChirpStack v4 events; only
  ``up`` carries readings, other events are counted as ignored.

LoRaWAN devices are found by their device id or DevEUI in the registry's ``device_refs``. The
ward, province and tags always come from the registry. Nothing here does I/O or raises for bad
input: every message yields points, dead letters (with reason and a payload excerpt), or an
"ignored" note. A dead letter carries the source its topic names whenever the registry knows
it, even when the payload does not parse, so that it is found by province.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.deadletter import DeadLetter
from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.lorawan import parse_chirpstack, parse_tts
from ingest.formats.model import RawReading
from ingest.formats.senml import parse_senml
from ingest.validate import Validator
from ioc.catalog import Catalog, Source
from ioc.errors import PayloadError
from ioc.store import Point

__all__ = ["SUBSCRIPTIONS", "Routed", "Router"]

SUBSCRIPTIONS = (
    "ioc/v1/#",
    "v3/+/devices/+/up",
    "application/+/device/+/event/+",
)
"""Topic filters a collector subscribes to (behind ``$share/<group>/`` when grouped)."""

_RESOLVED_MAX = 65_536
"""Resolved topics remembered at most (about one per registered source)."""


@dataclass(frozen=True, slots=True)
class Routed:
    """What one message became: points to write, dead letters, and ignored LoRaWAN events."""

    points: tuple[Point, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    ignored: tuple[str, ...] = ()
    readings: int = 0


class Router:
    """Routes messages by topic to a parser, the registry and the catalog's rules."""

    def __init__(self, catalog: Catalog, validator: Validator, *, max_bytes: int) -> None:
        self.catalog = catalog
        self.validator = validator
        self.max_bytes = max_bytes
        # Topics of ours already resolved to their registered source (and whether SenML): a
        # device publishes on one topic for ever, and the registry does not change while a
        # collector runs, so the split, the look-up and the checks are done once per topic.
        # Only topics that passed every check are kept; bounded (cleared when full).
        self._resolved: dict[str, tuple[Source, bool]] = {}

    def route(self, topic: str, payload: bytes, received_ns: int) -> Routed:
        """Points and dead letters for one message; never raises for bad input."""
        resolved = self._resolved.get(topic)
        if resolved is not None:
            return self._remembered(resolved, topic, payload, received_ns)
        parts = topic.split("/")
        try:
            if parts[:2] == ["ioc", "v1"] and len(parts) in (5, 6):
                return self._ours(parts, topic, payload, received_ns)
            if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
                result = parse_tts(payload, max_bytes=self.max_bytes)
                return self._lorawan(
                    result.readings, result.ignored, topic, payload, received_ns, device=parts[3]
                )
            if len(parts) == 6 and parts[0] == "application" and parts[2] == "device":
                result = parse_chirpstack(payload, event=parts[5], max_bytes=self.max_bytes)
                return self._lorawan(
                    result.readings, result.ignored, topic, payload, received_ns, device=parts[3]
                )
        except PayloadError as error:
            # The payload did not parse, but the topic still says whose it is.
            source = self._topic_source(parts)
            return self._dead(topic, payload, received_ns, error.reason, str(error), source=source)
        return self._dead(
            topic,
            payload,
            received_ns,
            "unknown_topic",
            f"topic {topic!r} is not ioc/v1/{{province}}/{{source}}/{{kind}}[/senml], "
            "v3/+/devices/+/up or application/+/device/+/event/+",
        )

    def _remembered(
        self, resolved: tuple[Source, bool], topic: str, payload: bytes, received_ns: int
    ) -> Routed:
        """A message on a topic resolved before: straight to parsing and validation."""
        source, senml = resolved
        try:
            return self._readings_of(source, senml, topic, payload, received_ns)
        except PayloadError as error:  # as in route: the topic still says whose it is
            return self._dead(topic, payload, received_ns, error.reason, str(error), source=source)

    def _topic_source(self, parts: list[str]) -> Source | None:
        """The registered source a routable topic names, if it is registered as the topic says."""
        if parts[0] == "ioc":
            source = self.catalog.registry.get(parts[3])
            if source is None or (source.province, source.kind) != (parts[2], parts[4]):
                return None
            return source
        return self.catalog.registry.by_device_ref(parts[3])  # the LoRaWAN topic's device

    def _ours(self, parts: list[str], topic: str, payload: bytes, received_ns: int) -> Routed:
        province, source_id, kind = parts[2], parts[3], parts[4]
        senml = len(parts) == 6
        if senml and parts[5] != "senml":
            return self._dead(
                topic, payload, received_ns, "unknown_topic", f"unknown format {parts[5]!r}"
            )
        source = self.catalog.registry.get(source_id)
        if source is None:
            return self._dead(
                topic,
                payload,
                received_ns,
                "unknown_source",
                f"source {source_id!r} is not registered",
            )
        if source.province != province or source.kind != kind:
            return self._dead(
                topic,
                payload,
                received_ns,
                "topic_mismatch",
                f"source {source_id!r} is registered as {source.kind!r} in province "
                f"{source.province!r}, the topic says {kind!r} in {province!r}",
                source=source,
            )
        if len(self._resolved) >= _RESOLVED_MAX:
            self._resolved.clear()
        self._resolved[topic] = (source, senml)
        return self._readings_of(source, senml, topic, payload, received_ns)

    def _readings_of(
        self, source: Source, senml: bool, topic: str, payload: bytes, received_ns: int
    ) -> Routed:
        """Parse and validate a message on a topic of ours that names ``source``."""
        if senml:
            readings = parse_senml(payload, now_ns=received_ns, max_bytes=self.max_bytes)
            # the topic names the device; a record's name is its metric
            readings = tuple(
                RawReading(source.id, r.metric or r.device_ref, r.value, r.unit, r.time)
                for r in readings
            )
        else:
            readings = parse_ioc_json(payload, max_bytes=self.max_bytes)
            for reading in readings:
                if reading.device_ref != source.id:
                    return self._dead(
                        topic,
                        payload,
                        received_ns,
                        "topic_mismatch",
                        f"the document names source {reading.device_ref!r}, the topic "
                        f"{source.id!r}",
                        source=source,
                    )
        return self._validated(source, readings, topic, payload, received_ns)

    def _lorawan(
        self,
        readings: Sequence[RawReading],
        ignored: Sequence[str],
        topic: str,
        payload: bytes,
        received_ns: int,
        *,
        device: str,
    ) -> Routed:
        by_device: dict[str, list[RawReading]] = {}
        for reading in readings:
            by_device.setdefault(reading.device_ref, []).append(reading)
        # The topic names the device (the broker's ACL lets a network server publish only for
        # registered devices); a payload naming another device must not write for it.
        strangers = [d for d in by_device if d.lower() != device.lower()]
        if strangers:
            return self._dead(
                topic,
                payload,
                received_ns,
                "topic_mismatch",
                f"the payload names device {strangers[0]!r}, the topic {device!r}",
                source=self.catalog.registry.by_device_ref(device),
            )
        points: list[Point] = []
        dead: list[DeadLetter] = []
        for named, group in by_device.items():
            source = self.catalog.registry.by_device_ref(named)
            if source is None:
                dead.extend(
                    self._dead(
                        topic,
                        payload,
                        received_ns,
                        "unknown_source",
                        f"device {named!r} is not in any source's device_refs",
                    ).dead_letters
                )
                continue
            routed = self._validated(source, group, topic, payload, received_ns)
            points.extend(routed.points)
            dead.extend(routed.dead_letters)
        return Routed(tuple(points), tuple(dead), tuple(ignored), len(readings))

    def _validated(
        self,
        source: Source,
        readings: Sequence[RawReading],
        topic: str,
        payload: bytes,
        received_ns: int,
    ) -> Routed:
        result = self.validator.validate(source, readings, received_ns)
        dead = tuple(
            DeadLetter.of(
                topic, payload, received_ns, rejection.reason, rejection.message, source=source
            )
            for rejection in result.rejections
        )
        return Routed(result.points, dead, (), len(readings))

    @staticmethod
    def _dead(
        topic: str,
        payload: bytes,
        received_ns: int,
        reason: str,
        message: str,
        *,
        source: Source | None = None,
    ) -> Routed:
        letter = DeadLetter.of(topic, payload, received_ns, reason, message, source=source)
        return Routed(dead_letters=(letter,))
