"""Encode one reading set of one device into its payload format and MQTT topic.

The shapes follow what the collector's parsers read (docs/payloads.md) and what the real
producers send (shared/data/payloads/): IOC JSON documents, SenML packs with a base name and
base time, The Things Stack v3 ``ApplicationUp`` uplinks and ChirpStack v4 ``up`` events. LoRaWAN
decoders name metrics their own way (catalog aliases such as ``pm2_5``) and state no units, so
their values are in the catalog's canonical units.
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

from ioc.catalog import Catalog
from ioc.simulate.fleet import Device, Format
from ioc.simulate.signals import Values

__all__ = ["DECODER_NAMES", "Message", "encode", "rfc3339"]

NS = 1_000_000_000

DECODER_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "pm25": "pm2_5",
        "water_level": "waterLevel",
        "vehicles": "vehicle_count",
        "speed": "avg_speed",
    }
)
"""How LoRaWAN payload decoders name metrics (catalog aliases); other metrics keep their key."""

_TTS_TENANT = "ttn"
_NAMESPACE = uuid.UUID("7d1f3c2e-9c4b-4f7e-8a61-5b0e2d9c1a40")  # stable ids of simulated objects


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message ready to publish."""

    topic: str
    payload: bytes
    time_ns: int  # the reading time it carries


def rfc3339(time_ns: int) -> str:
    """UTC RFC 3339 with nanoseconds, as network servers write it."""
    seconds, nanos = divmod(time_ns, NS)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def _stated(catalog: Catalog, metric: str, value: float, stated_unit: str | None) -> float:
    """``value`` (canonical unit) expressed in ``stated_unit``."""
    if stated_unit is None:
        return value
    factor = catalog.metric(metric).factor(stated_unit)
    if factor is None or factor == 1.0:
        return value
    return round(value / factor, 6)


def _number(value: float) -> float | int:
    """Whole numbers as JSON integers (counts), others as floats."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def encode(
    catalog: Catalog, device: Device, time_ns: int, values: Values, sequence: int
) -> Message:
    """The message ``device`` publishes for ``values`` read at ``time_ns``.

    ``sequence`` is the device's frame counter (LoRaWAN ``f_cnt``/``fCnt``).
    """
    source = device.source
    if device.format is Format.IOC_JSON:
        metrics: dict[str, object] = {}
        for metric, value in values.items():
            if isinstance(value, bool):  # a bool metric (probe_up) stays a JSON bool
                metrics[metric] = value
                continue
            stated_unit = device.units.get(metric)
            number = _number(_stated(catalog, metric, value, stated_unit))
            metrics[metric] = (
                number if stated_unit is None else {"value": number, "unit": stated_unit}
            )
        document = {
            "v": 1,
            "source": source.id,
            "time_ms": time_ns // 1_000_000,
            "metrics": metrics,
        }
        topic = f"ioc/v1/{source.province}/{source.id}/{source.kind}"
        return Message(topic, orjson.dumps(document), time_ns)
    if device.format is Format.SENML:
        records: list[dict[str, object]] = []
        for metric, value in values.items():
            record: dict[str, object] = {"n": metric}
            stated_unit = device.units.get(metric)
            if stated_unit is not None:
                record["u"] = stated_unit
            record["v"] = _number(_stated(catalog, metric, value, stated_unit))
            records.append(record)
        if records:
            seconds, nanos = divmod(time_ns, NS)
            records[0] = {
                "bn": device.ref,
                "bt": seconds if nanos == 0 else time_ns / NS,
            } | records[0]
        topic = f"ioc/v1/{source.province}/{source.id}/{source.kind}/senml"
        return Message(topic, orjson.dumps(records), time_ns)
    decoded = {
        DECODER_NAMES.get(metric, metric): _number(value) for metric, value in values.items()
    }
    frame = base64.b64encode(struct.pack(f">{len(values)}f", *values.values())).decode()
    if device.format is Format.TTS:
        return _tts(device, time_ns, decoded, frame, sequence)
    return _chirpstack(device, time_ns, decoded, frame, sequence)


def _tts(
    device: Device, time_ns: int, decoded: dict[str, float | int], frame: str, sequence: int
) -> Message:
    source = device.source
    application = f"ioc-{source.province}-{source.kind}"
    at = rfc3339(time_ns)
    uplink = {
        "end_device_ids": {
            "device_id": device.ref,
            "application_ids": {"application_id": application},
            "dev_eui": (
                device.ref.removeprefix("eui-")
                if device.ref.startswith("eui-")
                else uuid.uuid5(_NAMESPACE, device.ref).hex[:16]
            ).upper(),
        },
        "received_at": at,
        "uplink_message": {
            "f_port": 2,
            "f_cnt": sequence,
            "frm_payload": frame,
            "decoded_payload": decoded,
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": f"gw-{source.province}-01"},
                    "time": at,
                    "rssi": -97,
                    "channel_rssi": -97,
                    "snr": 7.5,
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9}},
                "frequency": "923200000",  # AS923, the plan used in Vietnam
            },
            "received_at": at,
        },
    }
    topic = f"v3/{application}@{_TTS_TENANT}/devices/{device.ref}/up"
    return Message(topic, orjson.dumps(uplink), time_ns)


def _chirpstack(
    device: Device, time_ns: int, decoded: dict[str, float | int], frame: str, sequence: int
) -> Message:
    source = device.source
    application = str(uuid.uuid5(_NAMESPACE, f"application/{source.province}/{source.kind}"))
    event = {
        "deduplicationId": str(uuid.uuid5(_NAMESPACE, f"{device.ref}/{time_ns}")),
        "time": rfc3339(time_ns),
        "deviceInfo": {
            "tenantId": str(uuid.uuid5(_NAMESPACE, f"tenant/{source.province}")),
            "tenantName": f"IOC {source.province}",
            "applicationId": application,
            "applicationName": f"ioc-{source.province}-{source.kind}",
            "deviceProfileId": str(uuid.uuid5(_NAMESPACE, f"profile/{source.kind}")),
            "deviceProfileName": f"{source.kind} sensor",
            "deviceName": source.id,
            "devEui": device.ref,
            "tags": {},
        },
        "devAddr": uuid.uuid5(_NAMESPACE, f"addr/{device.ref}").hex[:8],
        "adr": True,
        "dr": 3,
        "fCnt": sequence,
        "fPort": 2,
        "confirmed": False,
        "data": frame,
        "object": decoded,
    }
    topic = f"application/{application}/device/{device.ref}/event/up"
    return Message(topic, orjson.dumps(event), time_ns)
