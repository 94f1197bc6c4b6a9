"""The real Hanoi PM2.5 series (US Embassy Hanoi via AirNow), replayed onto any hour of the year.

The record (``shared/data/opendata/Hanoi_PM2.5_*_YTD.csv``, data/INDEX.md) runs from
2019-10-07 21:00 to 2020-08-01 00:00 local time (UTC+7), one row per hour, with gaps: hours with
no row, rows whose raw concentration is -999 (QC "Missing") and rows QC-flagged "Invalid". Every
gap stays a gap: :meth:`Pm25Record.at` returns None and the simulated station sends no PM2.5 for
that hour.

Alignment: a local hour is looked up at the same month, day and hour of the record year that
holds it (October to December from 2019, January to July from 2020). Days the record does not
cover (1 August to 7 October) are shifted back by 70 days, into the same rainy season (late May to
July), which the record covers.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

from ioc.settings import PROJECT_ROOT

__all__ = ["DEFAULT_FILES", "RECORD_TZ", "UNCOVERED_SHIFT", "Pm25Record"]

log = logging.getLogger(__name__)

OPENDATA = PROJECT_ROOT.parent / "shared" / "data" / "opendata"
DEFAULT_FILES = (OPENDATA / "Hanoi_PM2.5_2019_YTD.csv", OPENDATA / "Hanoi_PM2.5_2020_YTD.csv")
"""The record's files, as data/INDEX.md lists them."""

UNCOVERED_SHIFT = timedelta(days=70)
"""How far back a day outside the record is moved to find a covered day of the same season."""

RECORD_TZ = timezone(timedelta(hours=7), "ICT")
"""The record's local time (Date (LT) of the AirNow export)."""

_MISSING = -999.0
_SHIFTS = 5  # 5 × 70 days: enough to leave any gap of the record's calendar


class Pm25Record:
    """Hourly PM2.5 concentrations (µg/m³) by local hour; None marks a gap of the record."""

    def __init__(self, hours: Mapping[datetime, float | None]) -> None:
        if not hours:
            raise ValueError("the PM2.5 record has no rows")
        self.hours: Mapping[datetime, float | None] = MappingProxyType(dict(hours))
        self.start = min(hours)
        self.end = max(hours)
        self.years = tuple(range(self.start.year, self.end.year + 1))

    @classmethod
    def from_csv(cls, paths: Iterable[Path] = DEFAULT_FILES) -> Pm25Record:
        """Read AirNow CSV exports (columns Year, Month, Day, Hour, Raw Conc., QC Name)."""
        hours: dict[datetime, float | None] = {}
        for path in paths:
            with path.open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    at = datetime(  # noqa: DTZ001 - the record's own local time (UTC+7)
                        int(row["Year"]), int(row["Month"]), int(row["Day"]), int(row["Hour"])
                    )
                    value = float(row["Raw Conc."])
                    valid = value != _MISSING and value >= 0 and row["QC Name"] != "Invalid"
                    hours[at] = value if valid else None
        record = cls(hours)
        log.debug("PM2.5 record: %d hours from %s to %s", len(hours), record.start, record.end)
        return record

    def at(self, hour: datetime) -> float | None:
        """The concentration of this hour replayed from the record (naive: local, UTC+7)."""
        if hour.tzinfo is not None:
            hour = hour.astimezone(RECORD_TZ).replace(tzinfo=None)
        moment = hour.replace(minute=0, second=0, microsecond=0)
        for _ in range(_SHIFTS):
            for year in self.years:
                try:
                    candidate = moment.replace(year=year)
                except ValueError:  # 29 February in a year without it
                    continue
                if self.start <= candidate <= self.end:
                    return self.hours.get(candidate)
            moment -= UNCOVERED_SHIFT
        return None

    def near(self, hour: datetime, hours: int = 48) -> float | None:
        """The concentration of this hour or, in a gap, of the closest earlier valid hour."""
        for back in range(hours + 1):
            value = self.at(hour - timedelta(hours=back))
            if value is not None:
                return value
        return None
