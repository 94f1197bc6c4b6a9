"""Dead-letter identity: stamps that never repeat in a process, a tag per collector."""

from __future__ import annotations

import threading
import time

import pytest

from ingest.deadletter import DeadLetter, DeadLetterClock
from ioc.settings import Settings
from ioc.store import Store

TOPIC = "ioc/v1/01/01-air-hoan-kiem/air"


def test_the_clock_never_repeats_a_stamp_and_starts_at_the_receive_time() -> None:
    clock = DeadLetterClock()
    received_ns = time.time_ns()
    stamps = [clock.stamp(received_ns) for _ in range(5000)]
    stamps.append(clock.stamp(received_ns - 10**9))  # an earlier receive time (clock stepped back)
    assert stamps[0] == received_ns
    assert len(set(stamps)) == len(stamps)
    assert stamps == sorted(stamps)
    assert clock.stamp(received_ns + 10**9) == received_ns + 10**9  # catches up with time


def test_the_clock_never_repeats_a_stamp_across_threads() -> None:
    clock = DeadLetterClock()
    received_ns = time.time_ns()
    stamps: list[list[int]] = [[] for _ in range(4)]

    def stamp(out: list[int]) -> None:
        out.extend(clock.stamp(received_ns) for _ in range(20_000))

    threads = [threading.Thread(target=stamp, args=(out,)) for out in stamps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [s for out in stamps for s in out]
    assert len(set(every)) == len(every) == 80_000


def test_the_collector_tag_is_on_the_point_only_when_a_collector_writes_it() -> None:
    letter = DeadLetter.of(TOPIC, b"{", time.time_ns(), "invalid_json", "truncated")
    assert letter.to_point(collector="ingest-2").tags == {
        "reason": "invalid_json",
        "collector": "ingest-2",
    }
    assert letter.to_point().tags == {"reason": "invalid_json"}


@pytest.mark.services
def test_two_collectors_stamping_the_same_nanosecond_both_keep_their_letters(
    own_database: Settings,
) -> None:
    # Each process has a clock of its own, so two collectors can stamp the same nanosecond:
    # the collector tag puts their letters in separate series.
    received_ns = time.time_ns()
    points = [
        DeadLetter.of(
            TOPIC, b"{", received_ns, "invalid_json", "truncated", clock=DeadLetterClock()
        ).to_point(collector=collector)
        for collector in ("ingest-1", "ingest-2")
    ]
    assert points[0].time_ns == points[1].time_ns
    with Store(own_database) as store:
        store.write(points, rp="ops")
        answer = store.query('SELECT count("message") FROM "ops"."dead_letter"')
        assert answer[0].values[0][1] == 2
