"""The evaluator's memory: each alert instance's state, kept in SQLite so a restart loses nothing.

One row per (rule, fingerprint). A restarted evaluator reads the rows back and goes on: a firing
alert stays firing with its original start time (Alertmanager sees the same alert, not a new
one), a pending one keeps counting its ``for`` from when it began. A resolution that could not be
delivered to Alertmanager stays marked ``undelivered`` and is sent again next cycle.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType

__all__ = ["AlertState", "Instance", "StateStore"]


class AlertState(Enum):
    """Where an alert instance is in its life: inactive -> pending -> firing -> resolved."""

    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Instance:
    """One alert instance (a rule at one place or source) as last evaluated."""

    rule: str
    fingerprint: str
    labels: Mapping[str, str]
    state: AlertState
    since: float  # when the current state began (Unix seconds)
    active_at: float | None = None  # when the condition first held (pending or firing)
    value: float | None = None
    updated: float = 0.0
    undelivered: bool = False  # a resolution Alertmanager has not acknowledged yet
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS instance (
    rule TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    labels TEXT NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    active_at REAL,
    value REAL,
    updated REAL NOT NULL,
    undelivered INTEGER NOT NULL DEFAULT 0,
    annotations TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (rule, fingerprint)
)
"""


class StateStore:
    """Alert instances of one evaluator in ``<var>/alerts/<id>.sqlite``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def load(self) -> dict[tuple[str, str], Instance]:
        """Every remembered instance, by (rule, fingerprint)."""
        rows = self._db.execute(
            "SELECT rule, fingerprint, labels, state, since, active_at, value, updated, "
            "undelivered, annotations FROM instance"
        ).fetchall()
        found = {}
        for row in rows:
            instance = Instance(
                rule=row[0],
                fingerprint=row[1],
                labels=MappingProxyType(json.loads(row[2])),
                state=AlertState(row[3]),
                since=row[4],
                active_at=row[5],
                value=row[6],
                updated=row[7],
                undelivered=bool(row[8]),
                annotations=MappingProxyType(json.loads(row[9])),
            )
            found[(instance.rule, instance.fingerprint)] = instance
        return found

    def save(self, instances: Iterable[Instance], forget: Iterable[tuple[str, str]] = ()) -> None:
        """Write these instances and drop the forgotten ones, in one durable transaction."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "DELETE FROM instance WHERE rule = ? AND fingerprint = ?", list(forget)
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO instance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        i.rule,
                        i.fingerprint,
                        json.dumps(dict(i.labels), sort_keys=True),
                        i.state.value,
                        i.since,
                        i.active_at,
                        i.value,
                        i.updated,
                        int(i.undelivered),
                        json.dumps(dict(i.annotations), sort_keys=True, ensure_ascii=False),
                    )
                    for i in instances
                ],
            )
