"""A load profile for benchmarks: N synthetic air stations, M metrics a message, R messages/s.

The devices (``load-00001`` ...) are air stations spread over the wards of one province. The
collector accepts them only if its registry lists them: :func:`registry_toml` writes that
registry (start the collector with ``IOC_REGISTRY_FILE`` pointing at it). Messages are IOC JSON
stamped with the send time; device ``k % N`` sends message ``k``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ioc.simulate.runner import Progress, Sink

__all__ = ["LOAD_METRICS", "LoadProfile", "registry_toml", "run_load"]

LOAD_METRICS = ("pm25", "pm10", "o3", "no2", "so2", "co", "temperature", "humidity")
"""The metrics an air station may send (catalog kind ``air``), in the order a message uses them."""

_BASE = {
    "pm25": 35.0,
    "pm10": 55.0,
    "o3": 60.0,
    "no2": 40.0,
    "so2": 12.0,
    "co": 900.0,
    "temperature": 27.0,
    "humidity": 75.0,
}


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """How many devices, metrics per message, messages per second, for how long."""

    devices: int
    metrics: int
    rate: float
    duration_s: float
    province: str = "01"

    def __post_init__(self) -> None:
        """Reject a profile the catalog cannot accept, naming the option and value."""
        if self.devices < 1:
            raise ValueError(f"--devices {self.devices}: must be at least 1")
        if not 1 <= self.metrics <= len(LOAD_METRICS):
            raise ValueError(
                f"--metrics {self.metrics}: an air station sends 1 to {len(LOAD_METRICS)} "
                f"metrics ({', '.join(LOAD_METRICS)})"
            )
        if not self.rate > 0:
            raise ValueError(f"--rate {self.rate}: must be more than 0 messages per second")
        if not self.duration_s > 0:
            raise ValueError(f"--duration {self.duration_s}: must be more than 0 seconds")

    def device_id(self, index: int) -> str:
        """The source id of device ``index`` (0-based)."""
        return f"load-{index + 1:05d}"

    def message(self, sequence: int, time_ms: int) -> tuple[str, bytes]:
        """Topic and IOC JSON payload of message number ``sequence``."""
        source = self.device_id(sequence % self.devices)
        wobble = (sequence * 7919) % 100 / 100.0  # deterministic spread, no RNG needed
        metrics = {
            m: round(_BASE[m] * (0.8 + 0.4 * wobble), 2) for m in LOAD_METRICS[: self.metrics]
        }
        document = {"v": 1, "source": source, "time_ms": time_ms, "metrics": metrics}
        return f"ioc/v1/{self.province}/{source}/air", orjson.dumps(document)


def registry_toml(profile: LoadProfile, wards: tuple[str, ...]) -> str:
    """A source registry (docs/catalog.md format) listing the profile's devices."""
    if not wards:
        raise ValueError(f"province {profile.province!r} has no wards")
    lines = [
        f"# Load-test registry written by `ioc simulate load`: {profile.devices} air stations",
        f"# in province {profile.province}. Start the collector with",
        "# IOC_REGISTRY_FILE=<this file>.",
    ]
    for index in range(profile.devices):
        lines += [
            "",
            "[[source]]",
            f'id = "{profile.device_id(index)}"',
            'kind = "air"',
            f'province = "{profile.province}"',
            f'ward = "{wards[index % len(wards)]}"',
            f'name = "Load-test station {index + 1}"',
            'expected_interval = "1m"',
        ]
    return "\n".join(lines) + "\n"


def run_load(
    profile: LoadProfile,
    publisher: Sink,
    stop: threading.Event,
    *,
    progress: Callable[[Progress], None] | None = None,
    progress_every: float = 5.0,
) -> int:
    """Publish at the profile's rate for its duration (or until ``stop``); return messages sent.

    Message ``k`` is due at ``start + k / rate``; a publisher held back by the broker (full
    in-flight window) makes the run fall behind rather than burst past the window.
    """
    began = time.monotonic()
    last = began
    planned = int(profile.rate * profile.duration_s)
    sent = 0
    while sent < planned and not stop.is_set():
        due = began + sent / profile.rate
        now = time.monotonic()
        if due - now > 0.001:  # ahead of schedule (finer waits cost more than they gain)
            stop.wait(due - now)
            continue
        topic, payload = profile.message(sent, time.time_ns() // 1_000_000)
        if not publisher.publish(topic, payload, stop):
            break
        sent += 1
        if progress is not None and now - last >= progress_every:
            last = now
            progress(Progress("load", sent, planned, publisher.counts(), now - began))
    return sent
