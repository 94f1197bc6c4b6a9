"""The fault suite: real faults injected into real processes, and what they cost.

Every scenario is a function ``run(profile, rng, workdir) -> ScenarioResult`` registered in
:data:`SCENARIOS` under its number (1-12, as in docs/faults.md). A scenario starts its own
processes on free loopback ports under ``workdir``, injects its fault at a moment drawn from
``rng`` in each of ``profile.trials`` trials, and reports per trial only what the system
acknowledged: ``lost`` = acknowledged and not stored, ``duplicates`` = stored more than once.

``ioc verify faults [--full] [--report PATH]`` (``ioc/faults/command.py``) runs them all;
``tests/faults/`` runs the CI profile inside ``make test``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random


@dataclass(frozen=True, slots=True)
class Profile:
    """How hard to try: ``ci`` (inside ``make test``) or ``full`` (``--full``)."""

    name: str
    trials: int

    @classmethod
    def ci(cls) -> Profile:
        return cls("ci", 3)

    @classmethod
    def full(cls) -> Profile:
        return cls("full", 20)


@dataclass(slots=True)
class Trial:
    """One trial of one scenario. Counts are readings (numbered messages) unless ``unit`` says."""

    acknowledged: int = 0
    """Readings whose PUBACK the publisher received."""
    stored: int = 0
    lost: int = 0
    """Acknowledged, never stored: must be 0 except where a scenario states a bound."""
    duplicates: int = 0
    """Stored more than once (same device and sequence number at two timestamps or points)."""
    unexpected: int = 0
    """Stored but never published (or a new series hostile input created)."""
    gaps: int = 0
    """Runs of consecutive missing sequence numbers among the acknowledged."""
    broker_dropped: int = 0
    """What the broker refused or dropped, from its own log/counters."""
    recovery_s: float | None = None
    """From the end of the fault to the last acknowledged reading being queryable."""
    checks: dict[str, bool] = field(default_factory=dict)
    """Named pass/fail checks beyond the counts (e.g. ``"503 with Retry-After": True``)."""
    notes: str = ""

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


@dataclass(slots=True)
class ScenarioResult:
    number: int
    name: str
    trials: list[Trial] = field(default_factory=list)
    bound: str = ""
    """The stated loss bound, for scenarios that have one (7), in words with its figure."""
    figures: dict[str, str] = field(default_factory=dict)
    """Other figures worth publishing (e.g. ``"drain rate": "41,000 points/s"``)."""

    @property
    def passed(self) -> bool:
        return bool(self.trials) and all(t.passed for t in self.trials)


Scenario = Callable[[Profile, Random, Path], ScenarioResult]

SCENARIOS: dict[int, tuple[str, str]] = {
    1: ("ioc.faults.process", "collector_sigkill"),
    2: ("ioc.faults.process", "collector_sigstop"),
    3: ("ioc.faults.process", "influxdb_sigkill"),
    4: ("ioc.faults.process", "influxdb_down"),
    5: ("ioc.faults.process", "influxdb_slow"),
    6: ("ioc.faults.process", "influxdb_refusing"),
    7: ("ioc.faults.process", "broker_restart"),
    8: ("ioc.faults.process", "spool_full"),
    9: ("ioc.faults.hostile", "hostile_input"),
    10: ("ioc.faults.hostile", "acl_abuse"),
    11: ("ioc.faults.hostile", "api_influxdb_down"),
    12: ("ioc.faults.hostile", "api_abuse"),
}
"""Scenario number -> (module, function). Modules are imported only when their scenario runs."""


def scenario(number: int) -> Scenario:
    module, name = SCENARIOS[number]
    function: Scenario = getattr(importlib.import_module(module), name)
    return function
