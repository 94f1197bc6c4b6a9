"""The writer's message-count trigger: a batch of ``batch_messages`` messages is written at once.

The collector writes a batch when ``BATCH_MESSAGES`` messages have gathered instead of waiting out
the clock (the broker sends no more than its Receive Maximum unacknowledged). Against the real
InfluxDB: below the count nothing is written or acknowledged before the (long) clock; at the
count the batch is written, and acknowledged only once its points are queryable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from pathlib import Path

from ingest.spool import Spool
from ingest.writer import Writer
from ioc.settings import Settings
from ioc.store import Point, Store, encode_point

T0 = time.time_ns() - 3_600_000_000_000


def _line(i: int) -> str:
    return encode_point(Point("air", {"pm25": float(i)}, T0 + i, {"source": "w", "province": "01"}))


def _count(store: Store) -> int:
    series = store.query('SELECT count("pm25") FROM "raw"."air"', epoch=None)
    return int(series[0].values[0][1]) if series and series[0].values else 0


def test_a_batch_is_written_when_it_holds_batch_messages(
    own_database: Settings, tmp_path: Path
) -> None:
    durable: list[Hashable] = []
    stored_at_ack: list[int] = []
    with (
        Store(own_database) as store,
        Store(own_database) as reader,
        Spool.open(tmp_path / "spool", max_bytes=1 << 20) as spool,
    ):

        def on_durable(tokens: Sequence[Hashable]) -> None:
            stored_at_ack.append(_count(reader))  # what InfluxDB holds when the ack is given
            durable.extend(tokens)

        writer = Writer(store, spool, on_durable, batch_seconds=30.0, batch_messages=5)
        stop = threading.Event()
        thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
        thread.start()
        try:
            for i in range(4):
                writer.submit([_line(i)], (), token=i)
            time.sleep(1.0)
            assert durable == []  # 4 < 5 messages and the 30 s clock has not run out
            assert _count(reader) == 0
            writer.submit([_line(4)], (), token=4)
            deadline = time.monotonic() + 10
            while len(durable) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert durable == [0, 1, 2, 3, 4]
            assert stored_at_ack == [5]  # durable first, acknowledged after
            assert writer.pending == 0
        finally:
            stop.set()
            thread.join(timeout=30)
