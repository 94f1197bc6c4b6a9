"""The durable writer: batches points, writes them, and says when each message may be acknowledged.

A batch is written when it holds ``batch_lines`` lines or ``batch_messages`` messages, or when
its first message has waited ``batch_seconds``. A message's points are durable once InfluxDB
answered 2xx, or once they were appended to the fsynced local spool. Only then is
``on_durable`` called with the message's token (the collector acknowledges it to the broker).
While the spool holds anything, new batches go to the spool too and a replay loop writes them
back in order with capped, jittered exponential backoff. A 400 "partial write" is not retried:
its rejected lines become dead letters and the rest counts as written. When the spool is full
the batch is held in memory and nothing is acknowledged; once ``max_pending`` messages wait,
``submit`` blocks, which stops the MQTT loop from reading (the broker then keeps the messages).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from ingest.deadletter import DeadLetter
from ingest.spool import Spool, SpoolBatch
from ioc.errors import PartialWriteError, SpoolFullError, StoreError
from ioc.store import Store, encode_point

__all__ = ["Backoff", "Writer", "WriterStats"]

log = logging.getLogger(__name__)

RAW, OPS = "raw", "ops"


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt (and count this failure)."""
        ceiling = min(self.cap_s, self.base_s * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        """A success: start again from the base delay."""
        self.attempt = 0


@dataclass
class WriterStats:
    """Counters of the writer, read by the collector's self-metrics."""

    points_written: int = 0
    batches_written: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0
    influx_rejected: int = 0
    write_errors: int = 0
    last_write_ms: float = 0.0
    last_batch_ms: float = 0.0
    held: bool = False


@dataclass
class _Batch:
    raw: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    tokens: list[Hashable] = field(default_factory=list)
    first_at: float = 0.0


class Writer:
    """Collects lines from many messages and makes them durable in batches (one thread)."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        on_durable: Callable[[Sequence[Hashable]], None],
        *,
        batch_lines: int = 5000,
        batch_seconds: float = 0.05,
        batch_messages: int | None = None,
        max_pending: int = 20000,
        backoff: Backoff | None = None,
        collector: str | None = None,
    ) -> None:
        self.store = store
        self.collector = collector  # the tag of the dead letters it writes itself
        self.spool = spool
        self.on_durable = on_durable
        self.batch_lines = batch_lines
        self.batch_seconds = batch_seconds
        # A batch is also due once it holds this many messages: the broker sends at most its
        # Receive Maximum unacknowledged messages, so waiting for more would only wait out the
        # clock with the stream stopped (None: no such bound).
        self.batch_messages = batch_messages or max_pending
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self.stats = WriterStats()
        self._batch = _Batch()
        self._held: _Batch | None = None
        self._pending = 0  # messages submitted, not yet durable
        self._cond = threading.Condition()
        self._retry_at = 0.0

    @property
    def pending(self) -> int:
        """Messages submitted whose points are not durable yet."""
        return self._pending

    @property
    def degraded(self) -> bool:
        """InfluxDB is not taking writes: batches go to the spool (or are held)."""
        return self.spool.pending_count > 0 or self._held is not None

    def oldest_pending_age_s(self) -> float:
        """Seconds the oldest message not yet durable has waited (0 when none waits)."""
        with self._cond:
            batches = [b for b in (self._held, self._batch) if b is not None and b.tokens]
            if not batches:
                return 0.0
            return max(0.0, time.monotonic() - min(b.first_at for b in batches))

    def submit(
        self,
        raw: Sequence[str],
        ops: Sequence[str] = (),
        token: Hashable | None = None,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        """Queue one message's lines; ``token`` comes back through ``on_durable``.

        Blocks while ``max_pending`` messages wait (backpressure), until ``stop`` is set.
        """
        with self._cond:
            while self._pending >= self.max_pending and not (stop and stop.is_set()):
                self._cond.wait(0.5)
            batch = self._batch
            if not batch.tokens and not batch.raw and not batch.ops:
                batch.first_at = time.monotonic()
                self._cond.notify_all()  # the writer idles in 0.2 s waits: start the 50 ms clock
            batch.raw.extend(raw)
            batch.ops.extend(ops)
            if token is not None:
                batch.tokens.append(token)
                self._pending += 1
            if (
                len(batch.raw) + len(batch.ops) >= self.batch_lines
                or len(batch.tokens) >= self.batch_messages
            ):
                self._cond.notify_all()

    def run(self, stop: threading.Event) -> None:
        """The writer thread: flush batches, replay the spool; drains what it can on stop."""
        while not stop.is_set():
            try:
                self._step(stop)
            except Exception:  # one bad batch must not stop the collector
                log.exception("writer step failed; continuing")
                stop.wait(1.0)
        try:
            self._step(stop, final=True)
        except Exception:
            log.exception("final flush failed; unacknowledged messages will be redelivered")

    def _step(self, stop: threading.Event, *, final: bool = False) -> None:
        if self._held is not None or self.spool.pending_count:
            self._recover(stop)
            if self._held is not None and not final:
                return
        with self._cond:
            batch = self._batch
            size = len(batch.raw) + len(batch.ops)
            due = batch.first_at + self.batch_seconds
            full = size >= self.batch_lines or len(batch.tokens) >= self.batch_messages
            if not final and not full and (size == 0 or time.monotonic() < due):
                timeout = 0.2 if size == 0 else max(0.0, due - time.monotonic())
                self._cond.wait(timeout)
                return
            self._batch = _Batch()
        if size or batch.tokens:
            self._persist(batch)

    def _persist(self, batch: _Batch) -> None:
        """Make one batch durable (InfluxDB, else spool, else hold it) and release its tokens."""
        started = time.monotonic()
        if not self.degraded:
            try:
                self._write(RAW, batch.raw)
                batch.raw = []
                self._write(OPS, batch.ops)
                batch.ops = []
            except StoreError as error:
                self.stats.write_errors += 1
                log.warning("InfluxDB write failed (%s); spooling", error)
                self._retry_at = time.monotonic() + self.backoff.next_delay()
        if batch.raw or batch.ops:
            try:
                self._spool(batch)
            except SpoolFullError as error:
                if not self.stats.held:
                    log.error("%s: holding messages unacknowledged until InfluxDB is back", error)
                self.stats.held = True
                self._held = batch
                return
        self.stats.last_batch_ms = (time.monotonic() - started) * 1000
        self._release(batch.tokens)

    def _write(self, rp: str, lines: list[str]) -> None:
        if not lines:
            return
        started = time.monotonic()
        try:
            written = self.store.write_lines(lines, rp=rp)
        except PartialWriteError as error:
            written = error.accepted
            self._rejected(error)
        self.stats.last_write_ms = (time.monotonic() - started) * 1000
        self.stats.points_written += written
        self.stats.batches_written += 1

    def _rejected(self, error: PartialWriteError) -> None:
        """InfluxDB refused some lines for good: dead letters, not retries."""
        self.stats.influx_rejected += len(error.rejected)
        now = time.time_ns()
        letters = [
            DeadLetter.of("", line.line.encode(), now, "influx_rejected", line.reason).to_point(
                collector=self.collector
            )
            for line in error.rejected
        ]
        lines = [encode_point(point) for point in letters]
        try:
            self.store.write_lines(lines, rp=OPS)
        except StoreError as failure:
            log.warning("could not store %d dead letters: %s", len(lines), failure)

    def _spool(self, batch: _Batch) -> None:
        for rp, lines in ((RAW, batch.raw), (OPS, batch.ops)):
            if lines:
                self.spool.append(SpoolBatch(rp, tuple(lines)))
                self.stats.spooled_batches += 1
                if rp == RAW:
                    batch.raw = []
                else:
                    batch.ops = []

    def _recover(self, stop: threading.Event) -> None:
        """Replay the spool in order, then retry a held batch; back off while InfluxDB fails."""
        if time.monotonic() < self._retry_at:
            stop.wait(min(0.2, self._retry_at - time.monotonic()))
            return
        try:
            for seq, record in self.spool.pending(limit=16):
                self._write(record.rp, list(record.lines))
                self.spool.commit(seq)
                self.stats.replayed_batches += 1
            if self._held is not None and not self.spool.pending_count:
                held, self._held = self._held, None
                self.stats.held = False
                self._persist(held)
        except StoreError as error:
            delay = self.backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            log.info("InfluxDB still failing (%s); next attempt in %.1f s", error, delay)
            return
        if self.spool.pending_count == 0 and self._held is None:
            if self.backoff.attempt:
                log.info("InfluxDB is back; spool replayed")
            self.backoff.reset()

    def _release(self, tokens: list[Hashable]) -> None:
        if not tokens:
            return
        self.on_durable(tokens)
        with self._cond:
            self._pending -= len(tokens)
            self._cond.notify_all()
