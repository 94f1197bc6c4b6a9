"""A sink that records what would have been published."""

from __future__ import annotations

import threading

from ioc.simulate.publisher import Counts


class Recorder:
    """Keeps (topic, payload) pairs; every message counts as acknowledged."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        self.messages.append((topic, payload))
        return True

    def counts(self) -> Counts:
        return Counts(len(self.messages), len(self.messages), 0)
