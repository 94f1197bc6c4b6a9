"""Which registered source publishes what, how often and in which payload format.

The fleet is derived from the source registry the collector uses, so that everything the
simulator publishes belongs to a registered source. Format assignment follows each source's
``device_refs`` (the names a device has in payloads that don't carry our id):

* ``urn:dev:...`` (an RFC 8428 SenML base name): SenML on ``ioc/v1/{province}/{id}/{kind}/senml``;
* 16 hex digits (a DevEUI, which ChirpStack v4 puts in ``deviceInfo.devEui``): ChirpStack;
* any other ref (a The Things Stack device id such as ``hn-aqi-hoankiem`` or TTS's default
  ``eui-<deveui>``): a The Things Stack v3 uplink;
* no ref: IOC JSON on ``ioc/v1/{province}/{id}/{kind}``.

Sources that are registered but never connect (INDICATORS.md §7: Hà Nội's Health, Industry &
Trade and Justice departments) are part of the registry and deliberately silent here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from ioc.catalog import Catalog, Source
from ioc.formulas.flood import LengthUnit, station_by_id
from ioc.simulate.signals import MODELLED_KINDS, unit

__all__ = [
    "DEFAULT_PROVINCES",
    "NEVER_CONNECTED",
    "Device",
    "Fleet",
    "Format",
    "build_fleet",
    "payload_format",
]

DEFAULT_PROVINCES = ("01", "40", "96", "46", "48")
"""Hà Nội, Nghệ An, Cà Mau, Huế, Đà Nẵng."""

NEVER_CONNECTED = ("01-data-health", "01-data-industry-trade", "01-data-justice")
"""INDICATORS.md §7, Hà Nội (Nov 2025): the Health, Industry & Trade and Justice departments had
not opened their data for connection; their feeds are registered and never publish."""

_DEV_EUI = re.compile(r"[0-9A-Fa-f]{16}")
_TTS_ID = re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}")


class Format(StrEnum):
    """The payload formats the collector accepts (docs/payloads.md)."""

    IOC_JSON = "ioc-json"
    SENML = "senml"
    TTS = "tts"
    CHIRPSTACK = "chirpstack"


@dataclass(frozen=True, slots=True)
class Device:
    """One publishing source: its payload format, the name it uses, its reporting slots."""

    source: Source
    format: Format
    ref: str  # the device name in the payload: a device ref, or the source id
    interval_s: int
    phase_s: int  # the source reports at phase_s + k * interval_s (Unix seconds)
    units: Mapping[str, str] = field(default_factory=dict)  # metric -> unit stated (not LoRaWAN)

    def slots(self, after_ns: int, until_ns: int) -> range:
        """Report times (Unix seconds) in (after_ns, until_ns]."""
        step = self.interval_s
        lowest = after_ns // 1_000_000_000 + 1  # the first whole second after after_ns
        first = self.phase_s + -(-(lowest - self.phase_s) // step) * step
        return range(first, until_ns // 1_000_000_000 + 1, step)


@dataclass(frozen=True, slots=True)
class Fleet:
    """The simulated devices and feeds, and the registered sources kept silent on purpose."""

    devices: tuple[Device, ...]
    silent: tuple[Source, ...]
    provinces: tuple[str, ...]

    def by_format(self) -> Mapping[Format, tuple[Device, ...]]:
        """The devices of each payload format."""
        grouped: dict[Format, list[Device]] = {f: [] for f in Format}
        for device in self.devices:
            grouped[device.format].append(device)
        return MappingProxyType({f: tuple(d) for f, d in grouped.items()})


def payload_format(source: Source) -> tuple[Format, str]:
    """The format a source publishes in and the device name it uses there (module docstring)."""
    for ref in source.device_refs:
        if ref.startswith("urn:dev:"):
            return Format.SENML, ref
        if _DEV_EUI.fullmatch(ref):
            return Format.CHIRPSTACK, ref
        if _TTS_ID.fullmatch(ref):
            return Format.TTS, ref
    return Format.IOC_JSON, source.id


def _stated_units(source: Source, fmt: Format) -> dict[str, str]:
    """Units a device writes in its payload (LoRaWAN decoders state none: canonical units)."""
    if fmt in (Format.TTS, Format.CHIRPSTACK):
        return {}
    if source.kind == "water" and source.station is not None:
        if station_by_id(source.station).unit is LengthUnit.CENTIMETRE:
            return {"water_level": "cm"}  # tide gauges read centimetres (INDICATORS.md §3)
        return {"water_level": "m"}
    if source.kind == "air":
        units = dict.fromkeys(("pm25", "pm10", "o3", "no2", "so2"), "ug/m3")
        units.update(temperature="Cel", humidity="%RH")
        units["co"] = "mg/m3" if fmt is Format.IOC_JSON else "ug/m3"  # station analysers: mg/m³
        return units
    return {}


def build_fleet(
    catalog: Catalog,
    provinces: Sequence[str] = DEFAULT_PROVINCES,
    *,
    seed: int = 0,
    silent: Iterable[str] = NEVER_CONNECTED,
) -> Fleet:
    """The devices and feeds of ``provinces`` in the catalog's registry.

    Raises ValueError naming a province with no registered source to simulate.
    """
    quiet = frozenset(silent)
    devices: list[Device] = []
    kept_silent: list[Source] = []
    for province in provinces:
        found = [s for s in catalog.registry.sources if s.province == province]
        simulated = [s for s in found if s.kind in MODELLED_KINDS]
        if not simulated:
            raise ValueError(
                f"province {province!r}: no registered air, water, traffic, service, tasks or "
                f"data source in {catalog.registry.path}"
            )
        for source in simulated:
            if source.id in quiet:
                kept_silent.append(source)
                continue
            fmt, ref = payload_format(source)
            interval = max(1, source.expected_interval_s)
            phase = int(unit(seed, source.id, "phase") * min(interval, 60))
            devices.append(
                Device(
                    source, fmt, ref, interval, phase, MappingProxyType(_stated_units(source, fmt))
                )
            )
    return Fleet(tuple(devices), tuple(kept_silent), tuple(provinces))
