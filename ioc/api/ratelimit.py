"""Per-key rate limiting shared by every API worker on the host (GCRA over one SQLite file).

gunicorn runs several worker processes; a limiter in each would multiply the limit by the
worker count, so the state lives in SQLite (``<api_state_dir>/ratelimit.sqlite3``, WAL mode) and
each check is one short ``BEGIN IMMEDIATE`` transaction.

The algorithm is GCRA (the generic cell rate algorithm, a token bucket written as one number):
with ``per_minute`` = N, one request "costs" T = 60/N seconds, and each key stores its
theoretical arrival time (TAT), the instant its bucket would be full again. A request at ``now``
is allowed when ``max(TAT, now) + T - now <= burst * T``, and then TAT becomes
``max(TAT, now) + T``. So an idle key may send ``burst`` requests at once (default N), then one
every T seconds; a row whose TAT is in the past means the same as no row, which makes pruning
exact.

When the database cannot be used (locked beyond the busy timeout, unwritable, disk full) the
limiter fails OPEN by default: it logs (at most once a minute) and allows, with
``Decision.enforced`` False. The limit protects capacity against a runaway client; it is not an
access control (keys are, and they fail closed), and a broken state file must not take the
read API away from every operations room. ``fail_open=False`` refuses instead.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ioc.settings import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "ratelimit.sqlite3"
BUSY_TIMEOUT_S = 0.2
PRUNE_EVERY_S = 600.0
_WARN_EVERY_S = 60.0
_SLACK_S = 1e-3  # epoch seconds as floats carry ~1e-7 s of rounding: never let it cost a request

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tat (key_id TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID"
)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether one request may proceed, and what to tell the client about its quota."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_s: int
    """Seconds to wait before the next request can succeed (>= 1 when refused, else 0)."""
    reset_s: int
    """Seconds until the quota is full again."""
    enforced: bool = True
    """False when the limiter could not reach its database and let the request through."""

    def headers(self) -> dict[str, str]:
        """``RateLimit-Limit/Remaining/Reset`` and, when refused, ``Retry-After``."""
        headers: dict[str, str] = {}
        if self.enforced:
            headers["RateLimit-Limit"] = str(self.limit)
            headers["RateLimit-Remaining"] = str(self.remaining)
            headers["RateLimit-Reset"] = str(self.reset_s)
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def _seconds(duration: float) -> int:
    """Whole seconds, rounded up (ignoring float noise), for a header."""
    return max(0, math.ceil(duration - _SLACK_S))


class RateLimiter:
    """``per_minute`` requests per key, bursts up to ``burst``, counted across processes."""

    def __init__(
        self,
        path: Path,
        per_minute: int,
        burst: int | None = None,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        fail_open: bool = True,
    ) -> None:
        """Nothing is opened until the first check (so a fork after this is safe)."""
        if per_minute < 1:
            raise ValueError(f"per_minute must be >= 1, got {per_minute}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.path = path
        self.per_minute = per_minute
        self.burst = per_minute if burst is None else burst
        self.fail_open = fail_open
        self._interval = 60.0 / per_minute
        self._tolerance = self._interval * self.burst
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._pruned_at: float | None = None
        self._warned_at: float | None = None
        self._failures = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """``IOC_API_RATE_LIMIT`` per minute, in ``<api_state_dir>/ratelimit.sqlite3``."""
        return cls(settings.api_state_dir / DATABASE_NAME, settings.api_rate_limit)

    @property
    def failures(self) -> int:
        """Checks that could not reach the database since this limiter was made."""
        return self._failures

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        # A connection inherited through fork() must not be used (nor closed) by the child.
        self._connection = None
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
        except sqlite3.Error:
            connection.close()
            raise
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _admit(self, connection: sqlite3.Connection, key_id: str, now: float) -> Decision:
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute("SELECT tat FROM tat WHERE key_id = ?", (key_id,)).fetchone()
            # A TAT beyond now + tolerance can only come from a clock that went back: clamp it.
            tat = min(float(row[0]), now + self._tolerance) if row else now
            start = max(tat, now)
            new_tat = start + self._interval
            allowed = new_tat - now <= self._tolerance + _SLACK_S
            if allowed:
                connection.execute(
                    "INSERT INTO tat (key_id, tat) VALUES (?, ?) "
                    "ON CONFLICT (key_id) DO UPDATE SET tat = excluded.tat",
                    (key_id, new_tat),
                )
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S:
                connection.execute("DELETE FROM tat WHERE tat < ?", (now,))
                self._pruned_at = now
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        if allowed:
            spare = self._tolerance - (new_tat - now) + _SLACK_S
            remaining = max(0, math.floor(spare / self._interval))
            return Decision(True, self.burst, remaining, 0, _seconds(new_tat - now))
        wait = new_tat - self._tolerance - now
        return Decision(False, self.burst, 0, max(1, _seconds(wait)), _seconds(start - now))

    def check(self, key_id: str, now: float | None = None) -> Decision:
        """Count one request of ``key_id`` at ``now`` (epoch seconds); never raises."""
        now = time.time() if now is None else now
        with self._lock:
            try:
                return self._admit(self._connect(), key_id, now)
            except (sqlite3.Error, OSError) as exc:
                return self._unavailable(exc, now)

    def _unavailable(self, exc: Exception, now: float) -> Decision:
        self._failures += 1
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None  # reopen next time: the file may have been repaired
        if self._warned_at is None or now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "rate limiter database %s unusable (%s); %s requests (%d failures so far)",
                self.path,
                exc,
                "allowing" if self.fail_open else "refusing",
                self._failures,
            )
        if self.fail_open:
            return Decision(True, self.burst, self.burst, 0, 0, enforced=False)
        return Decision(False, self.burst, 0, 1, 1, enforced=False)

    def close(self) -> None:
        """Close this process's connection (the next check reopens it)."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
