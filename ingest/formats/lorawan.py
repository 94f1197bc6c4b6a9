"""LoRaWAN network-server messages: The Things Stack v3 uplinks and ChirpStack v4 events.

The Things Stack v3 (MQTT ``v3/{app}@{tenant}/devices/{device}/up``; fields from "Data Formats"
of the TTS documentation): an ``ApplicationUp`` object whose ``uplink_message.decoded_payload``
holds what the payload formatter made of the frame. Device: ``end_device_ids.device_id``. Time:
the top-level ``received_at`` (RFC 3339, ns), set when the Application Server received the
uplink; ``uplink_message.received_at`` is not used because simulated uplinks carry the zero time
``0001-01-01T00:00:00Z`` there. A message without ``uplink_message`` but with one of the other
``ApplicationUp`` kinds (``join_accept``, ``downlink_ack``, ``location_solved``...) is ignored.

ChirpStack v4 (MQTT ``application/{app_id}/device/{dev_eui}/event/{type}``; "Event types" of the
ChirpStack documentation): only ``up`` events carry readings, in ``object`` (what the codec
decoded). Device: ``deviceInfo.devEui``. Time: ``time`` (RFC 3339). The caller passes the topic's
``{type}`` as ``event``; without it (a file or HTTP export of several events) an event is an
``up`` when it has ``fCnt`` (ack and txack events use ``fCntDown``), and the kind of the others is
inferred for the counter (``log``, ``status``, ``join``, ``ack``, ``txack``, ``location``,
``integration``, else ``unknown``).

Not-up events are not errors: they come back in ``LorawanResult.ignored`` (one kind per event)
with no readings, so the caller can count them. Both parsers take one message or a non-empty
JSON array of messages (storage-integration exports, event logs); ``[]`` is ``empty_batch``.

Decoded objects are flattened into metrics: nested objects join their keys with ``.``
(``{"soil": {"temp": 4}}`` gives ``soil.temp``), at most 8 levels (``too_deep``). Numbers become
floats, booleans stay bools; strings, nulls and arrays are not readings and are skipped (they are
labels such as ``"type": "parking status"``, not telemetry). Two paths flattening to one name
(``{"a.b": 1, "a": {"b": 2}}``) are ``duplicate_metric``; an empty key is ``invalid_name``. An
uplink without a decoded object is ``not_decoded`` (the payload formatter or codec is missing or
failed); one whose decoded object yields nothing is ``no_readings``. Units are None: decoders do
not state them, the device profile in the catalog does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.formats.model import (
    DEFAULT_MAX_BYTES,
    RawReading,
    Value,
    decode_json,
    number,
    obj,
    required,
    rfc3339_ns,
    show,
    text,
)
from ioc.errors import PayloadError

MAX_DECODED_DEPTH = 8
TTS_OTHER_KINDS = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
    "uplink_normalized",
)
# ChirpStack v4 event kinds recognised by a field only that kind has, in the order tried.
_CHIRPSTACK_MARKERS = (
    ("code", "log"),
    ("batteryLevel", "status"),
    ("margin", "status"),
    ("acknowledged", "ack"),
    ("gatewayId", "txack"),
    ("location", "location"),
    ("integrationName", "integration"),
    ("devAddr", "join"),
)


@dataclass(frozen=True, slots=True)
class LorawanResult:
    """Readings from the uplinks of a message, and the kind of each event that had none to give."""

    readings: tuple[RawReading, ...]
    ignored: tuple[str, ...]


def parse_tts(payload: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> LorawanResult:
    """Parse a The Things Stack v3 ApplicationUp message (or an array of them)."""
    readings: list[RawReading] = []
    ignored: list[str] = []
    for message, where in _messages(payload, max_bytes):
        if "uplink_message" not in message:
            kind = next((key for key in TTS_OTHER_KINDS if key in message), None)
            if kind is None:
                raise PayloadError("missing_field", f"{where}.uplink_message: required")
            ignored.append(kind)
            continue
        ids = obj(
            required(message, "end_device_ids", f"{where}.end_device_ids"),
            f"{where}.end_device_ids",
        )
        device = _identifier(ids, "device_id", f"{where}.end_device_ids.device_id")
        time_ns = rfc3339_ns(
            required(message, "received_at", f"{where}.received_at"), f"{where}.received_at"
        )
        uplink = obj(message["uplink_message"], f"{where}.uplink_message")
        field = f"{where}.uplink_message.decoded_payload"
        if "decoded_payload" not in uplink:
            raise PayloadError("not_decoded", f"{field}: absent (no payload formatter?)")
        readings.extend(_readings(device, time_ns, uplink["decoded_payload"], field))
    return LorawanResult(tuple(readings), tuple(ignored))


def parse_chirpstack(
    payload: bytes, *, event: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> LorawanResult:
    """Parse ChirpStack v4 event(s); ``event`` is the topic's event type when there is one."""
    if event is not None and event != "up":
        return LorawanResult((), (event,))
    readings: list[RawReading] = []
    ignored: list[str] = []
    for message, where in _messages(payload, max_bytes):
        kind = "up" if event == "up" or "fCnt" in message else _chirpstack_kind(message)
        if kind != "up":
            ignored.append(kind)
            continue
        info = obj(required(message, "deviceInfo", f"{where}.deviceInfo"), f"{where}.deviceInfo")
        device = _identifier(info, "devEui", f"{where}.deviceInfo.devEui")
        time_ns = rfc3339_ns(required(message, "time", f"{where}.time"), f"{where}.time")
        field = f"{where}.object"
        if "object" not in message:
            raise PayloadError("not_decoded", f"{field}: absent (no device-profile codec?)")
        readings.extend(_readings(device, time_ns, message["object"], field))
    return LorawanResult(tuple(readings), tuple(ignored))


def _messages(payload: bytes, max_bytes: int) -> list[tuple[dict[str, object], str]]:
    """Decode a message or an array of messages, each with its path for error messages."""
    decoded = decode_json(payload, max_bytes)
    if isinstance(decoded, dict):
        return [(decoded, "$")]
    if isinstance(decoded, list):
        if not decoded:
            raise PayloadError("empty_batch", "$: the batch is an empty array")
        return [(obj(item, f"$[{i}]"), f"$[{i}]") for i, item in enumerate(decoded)]
    raise PayloadError("wrong_type", f"$: expected an object or an array, got {show(decoded)}")


def _chirpstack_kind(message: dict[str, object]) -> str:
    """Name the kind of a ChirpStack event that is not an uplink, from a field unique to it."""
    return next((kind for key, kind in _CHIRPSTACK_MARKERS if key in message), "unknown")


def _identifier(container: dict[str, object], key: str, field: str) -> str:
    """Return a non-empty device identifier."""
    value = text(required(container, key, field), field)
    if not value:
        raise PayloadError("invalid_name", f"{field}: empty device identifier")
    return value


def _readings(device: str, time_ns: int, decoded: object, field: str) -> list[RawReading]:
    """Turn a decoded object into readings, in the object's key order."""
    flat: dict[str, Value] = {}
    _flatten(obj(decoded, field), "", 1, flat, field)
    if not flat:
        raise PayloadError("no_readings", f"{field}: no numeric or boolean value")
    return [RawReading(device, metric, value, None, time_ns) for metric, value in flat.items()]


def _flatten(
    decoded: dict[str, object], prefix: str, depth: int, out: dict[str, Value], field: str
) -> None:
    """Collect numbers and booleans of a nested object under dotted names."""
    if depth > MAX_DECODED_DEPTH:
        raise PayloadError("too_deep", f"{field}.{prefix}: more than {MAX_DECODED_DEPTH} levels")
    for key, raw in decoded.items():
        if not key:
            raise PayloadError("invalid_name", f"{field}.{prefix}: empty key")
        name = prefix + key
        if isinstance(raw, dict):
            _flatten(raw, name + ".", depth + 1, out, field)
            continue
        if isinstance(raw, bool):
            value: Value = raw
        elif isinstance(raw, int | float):
            value = number(raw, f"{field}.{name}")
        else:
            continue  # strings, nulls and arrays are not readings (module docstring)
        if name in out:
            raise PayloadError("duplicate_metric", f"{field}.{name}: two values for one metric")
        out[name] = value
