"""The indicator catalog and source registry: the single source of truth (DESIGN.md "One catalog").

``get_catalog(registry_file)`` loads and validates the package's ``indicators.toml`` with the given
source registry (by default the packaged demo registry ``sources.toml``) once per process.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ioc.catalog.loader import (
    FORMULAS,
    INDICATORS_FILE,
    SOURCES_FILE,
    VIETNAM_LAT,
    VIETNAM_LON,
    load_catalog,
    parse_period,
)
from ioc.catalog.model import (
    Band,
    Catalog,
    Direction,
    Indicator,
    Kind,
    Location,
    Method,
    Metric,
    MetricType,
    Registry,
    Rollup,
    Source,
    SourceClass,
    TimeAggregate,
)

__all__ = [
    "FORMULAS",
    "INDICATORS_FILE",
    "SOURCES_FILE",
    "VIETNAM_LAT",
    "VIETNAM_LON",
    "Band",
    "Catalog",
    "Direction",
    "Indicator",
    "Kind",
    "Location",
    "Method",
    "Metric",
    "MetricType",
    "Registry",
    "Rollup",
    "Source",
    "SourceClass",
    "TimeAggregate",
    "get_catalog",
    "load_catalog",
    "parse_period",
]


@lru_cache(maxsize=4)
def get_catalog(registry_file: Path = SOURCES_FILE) -> Catalog:
    """The catalog with ``registry_file`` as its source registry, loaded once per process."""
    return load_catalog(INDICATORS_FILE, registry_file)
