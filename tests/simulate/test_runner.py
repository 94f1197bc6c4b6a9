"""History in time order, then live slots as they come due, until stopped or over."""

from __future__ import annotations

import threading

import orjson

from ioc.simulate.runner import Progress
from tests.simulate.recorder import Recorder
from tests.simulate.support import END_NS, NS, simulation


def _time_ns(topic: str, payload: bytes) -> int:
    if topic.startswith("ioc/") and not topic.endswith("/senml"):
        return int(orjson.loads(payload)["time_ms"]) * 1_000_000
    return -1


def test_history_is_published_in_time_order_within_the_window() -> None:
    sim = simulation(provinces=("01",))
    sink = Recorder()
    seen: list[Progress] = []
    start = END_NS - 2 * 3600 * NS
    count = sim.publish_history(
        sink, start, END_NS, threading.Event(), progress=seen.append, progress_every=0
    )
    assert count == len(sink.messages) == sim.history_size(start, END_NS)
    times = [t for t in (_time_ns(*m) for m in sink.messages) if t >= 0]
    assert times == sorted(times)
    assert start < times[0] and times[-1] <= END_NS
    assert seen and seen[-1].phase == "history" and seen[-1].total == count


def test_live_publishes_the_slots_after_the_history_until_the_end() -> None:
    sim = simulation(provinces=("96",))
    sink = Recorder()
    hour_later = END_NS + 3600 * NS
    count = sim.run_live(
        sink, END_NS, threading.Event(), until_ns=hour_later, clock=lambda: hour_later
    )
    expected = sum(len(d.slots(END_NS, hour_later)) for d in sim.fleet.devices)
    assert count == len(sink.messages) == expected
    times = [t for t in (_time_ns(*m) for m in sink.messages) if t >= 0]
    assert times and all(END_NS < t <= hour_later for t in times)


def test_live_stops_when_told() -> None:
    sim = simulation(provinces=("96",))
    stop = threading.Event()
    stop.set()
    assert sim.run_live(Recorder(), END_NS, stop, clock=lambda: END_NS + 10**15) == 0
