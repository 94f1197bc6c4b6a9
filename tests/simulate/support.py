"""A simulation of the demo fleet at a fixed moment, and the collector's router to check it."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from ingest.router import Router
from ingest.validate import Validator
from ioc.catalog import Catalog, get_catalog
from ioc.simulate.fleet import DEFAULT_PROVINCES, build_fleet
from ioc.simulate.pm25 import Pm25Record
from ioc.simulate.runner import Simulation
from ioc.simulate.signals import LOCAL, FloodEvent, SignalModel

NS = 1_000_000_000
HISTORY_S = 26 * 3600
END = datetime(2025, 11, 20, 9, 0, 5, tzinfo=LOCAL)  # a Thursday morning in Vietnam
END_NS = int(END.timestamp()) * NS


@cache
def record() -> Pm25Record:
    """The real Hanoi PM2.5 record (read once per test session)."""
    return Pm25Record.from_csv()


def simulation(
    end_ns: int = END_NS,
    history_s: float = HISTORY_S,
    *,
    seed: int = 1,
    provinces: tuple[str, ...] = DEFAULT_PROVINCES,
    catalog: Catalog | None = None,
) -> Simulation:
    """The demo fleet of ``provinces`` with a flood over the window ending at ``end_ns``."""
    catalog = catalog or get_catalog()
    model = SignalModel(seed, FloodEvent.over(end_ns, history_s), record())
    return Simulation(catalog, build_fleet(catalog, provinces, seed=seed), model)


def router(catalog: Catalog | None = None) -> Router:
    """The collector's router with its default time window (7 days back, 5 minutes ahead)."""
    catalog = catalog or get_catalog()
    validator = Validator(catalog, max_age_s=7 * 86400, max_future_s=300)
    return Router(catalog, validator, max_bytes=262144)
