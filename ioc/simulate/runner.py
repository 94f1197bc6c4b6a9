"""Run the fleet: publish the history window as fast as the broker acknowledges, then live.

History: every report slot of every device in (end - history, end], in time order, with the
slots' past timestamps. Live: each device at its registry interval, stamped with its slot time,
until ``stop`` is set or the duration is over. Values come from :class:`SignalModel`, so a slot
carries the same values in both phases.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ioc.catalog import Catalog
from ioc.simulate.fleet import Device, Fleet
from ioc.simulate.formats import Message, encode
from ioc.simulate.publisher import Counts
from ioc.simulate.signals import SignalModel

__all__ = ["Progress", "Simulation", "Sink"]

log = logging.getLogger(__name__)

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run is: for the command to print."""

    phase: str  # "history" or "live"
    published: int
    total: int | None  # messages planned in this phase (None: live, open-ended)
    counts: Counts
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]


class Sink(Protocol):
    """Where messages go: :class:`ioc.simulate.publisher.Publisher`, or a test's recorder."""

    def publish(self, topic: str, payload: bytes, stop: threading.Event | None = None) -> bool:
        """Publish one message; False if ``stop`` was set while waiting."""

    def counts(self) -> Counts:
        """Messages sent, acknowledged and refused so far."""


class Simulation:
    """A fleet, its value models and the catalog its payloads are encoded against."""

    def __init__(self, catalog: Catalog, fleet: Fleet, model: SignalModel) -> None:
        self.catalog = catalog
        self.fleet = fleet
        self.model = model
        self._frames: dict[str, int] = {}

    def message(self, device: Device, slot_s: int) -> Message | None:
        """The message ``device`` publishes for its slot at ``slot_s`` (None: nothing to say)."""
        time_ns = slot_s * NS
        values = self.model.values(device.source, time_ns)
        if not values:
            return None
        frame = self._frames.get(device.source.id, 0) + 1
        self._frames[device.source.id] = frame
        return encode(self.catalog, device, time_ns, values, frame)

    def history(self, start_ns: int, end_ns: int) -> Iterator[Message]:
        """Every message of the window (start_ns, end_ns], in time order."""
        slots = [
            (slot, index)
            for index, device in enumerate(self.fleet.devices)
            for slot in device.slots(start_ns, end_ns)
        ]
        slots.sort()
        for slot, index in slots:
            message = self.message(self.fleet.devices[index], slot)
            if message is not None:
                yield message

    def history_size(self, start_ns: int, end_ns: int) -> int:
        """How many slots the window holds (an upper bound of its messages)."""
        return sum(len(device.slots(start_ns, end_ns)) for device in self.fleet.devices)

    def publish_history(
        self,
        publisher: Sink,
        start_ns: int,
        end_ns: int,
        stop: threading.Event,
        *,
        progress: ProgressCallback | None = None,
        progress_every: float = 5.0,
    ) -> int:
        """Publish the window; return how many messages were published."""
        total = self.history_size(start_ns, end_ns)
        began = last = time.monotonic()
        published = 0
        for message in self.history(start_ns, end_ns):
            if not publisher.publish(message.topic, message.payload, stop):
                break
            published += 1
            now = time.monotonic()
            if progress is not None and now - last >= progress_every:
                last = now
                progress(Progress("history", published, total, publisher.counts(), now - began))
        return published

    def run_live(
        self,
        publisher: Sink,
        after_ns: int,
        stop: threading.Event,
        *,
        until_ns: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        progress: ProgressCallback | None = None,
        progress_every: float = 30.0,
    ) -> int:
        """Publish each device at its slots after ``after_ns`` as they come due, until ``stop``.

        ``until_ns`` ends the run at that (wall-clock) time. Returns the messages published.
        """
        queue: list[tuple[int, int]] = []
        horizon = until_ns if until_ns is not None else 2**62
        for index, device in enumerate(self.fleet.devices):
            upcoming = device.slots(after_ns, after_ns + device.interval_s * NS)
            if upcoming:
                heapq.heappush(queue, (upcoming[0], index))
        began = time.monotonic()
        last = began
        published = 0
        while queue and not stop.is_set():
            slot, index = queue[0]
            if slot * NS > horizon:
                break
            wait_s = (slot * NS - clock()) / NS
            if wait_s > 0:
                if progress is not None and time.monotonic() - last >= progress_every:
                    last = time.monotonic()
                    progress(Progress("live", published, None, publisher.counts(), last - began))
                stop.wait(min(wait_s, 1.0))
                continue
            heapq.heapreplace(queue, (slot + self.fleet.devices[index].interval_s, index))
            message = self.message(self.fleet.devices[index], slot)
            if message is None:
                continue
            if not publisher.publish(message.topic, message.payload, stop):
                break
            published += 1
        return published
