"""What each simulated source measures or reports at a given time: deterministic value models.

Every value is a pure function of (seed, source, metric, time): the same seed gives the same
readings whether they are published as history or live, in any order. Randomness comes from a
hash of those inputs (:func:`unit`), never from a shared generator. Values are in the catalog's
canonical units (µg/m³, m, Cel, %RH, vehicles, km/h, counts); the payload encoders convert to
the units a device states.

Models (docs/simulate.md):

* air: PM2.5 replays the real Hanoi record (:mod:`ioc.simulate.pm25`) with its gaps; stations in
  other provinces get a scaled copy shifted by some days. PM10 follows PM2.5; NO2, CO and SO2
  have rush-hour peaks, O3 an early-afternoon peak; temperature and humidity a daily cycle.
* water: a flood event over the history window (:class:`FloodEvent`); each station rises from
  below alarm level I to the level its scenario names (:data:`FLOOD_SCENARIO`), using the
  station's levels in :mod:`ioc.formulas.flood`. Cà Mau's tidal stations add a 12.42 h tide.
* traffic: vehicles per interval with two rush hours, speed falling as traffic grows.
* service: dossiers received in office hours (online ones around the clock), on time at the
  province's rate, part of them fully online, part filled from shared data at the province's
  reuse rate (Decision 766 inputs).
* tasks: the Resolution 57 registers of INDICATORS.md §7 (:data:`TASKS`), constant stocks;
  the tasks due soon (within the reminder window) are part of those on schedule; the current
  year's tasks (:data:`TASKS_THIS_YEAR`) as ``tasks_year_*``.
* data: data-sharing transactions with a working-day profile.
* probe: the results ``ioc probe`` publishes for a shared system (issue 17, item 4): up at
  about 97% of checks (status 200, some tens of ms), else down with status 503; ``probe_up``
  is a bool.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from ioc.catalog import Source
from ioc.formulas.flood import StationLevels, station_by_id
from ioc.formulas.tasks import Task, group_deployment
from ioc.places import get_places
from ioc.simulate.pm25 import RECORD_TZ, Pm25Record

__all__ = [
    "FLOOD_SCENARIO",
    "LOCAL",
    "MODELLED_KINDS",
    "TASKS",
    "TASKS_THIS_YEAR",
    "FloodEvent",
    "SignalModel",
    "TaskRegister",
    "Values",
    "unit",
]

LOCAL = RECORD_TZ
"""Vietnam time (UTC+7): daily cycles and office hours follow it."""

NS = 1_000_000_000
HOUR_S = 3600

Values = dict[str, float]
"""One reading set: canonical metric key -> value in the canonical unit (counts are whole)."""

MODELLED_KINDS = ("air", "water", "traffic", "service", "tasks", "task_groups", "data", "probe")
"""Source kinds the simulator has a model for (probes: what ``ioc probe`` would publish)."""


def unit(seed: int, *key: object) -> float:
    """A uniform number in [0, 1) determined by the seed and the key (no shared state)."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _spread(seed: int, *key: object, width: float) -> float:
    """A factor in [1 - width, 1 + width]."""
    return 1.0 + width * (2.0 * unit(seed, *key) - 1.0)


def _local(time_ns: int) -> datetime:
    return datetime.fromtimestamp(time_ns / NS, tz=LOCAL)


def _hour_of_day(moment: datetime) -> float:
    return moment.hour + moment.minute / 60 + moment.second / 3600


def _bump(hour: float, centre: float, width: float) -> float:
    """A daily Gaussian bump around ``centre`` o'clock (wrapping at midnight)."""
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-((distance / width) ** 2))


def _rush(hour: float) -> float:
    """Traffic-driven daily profile: morning and evening rush hours, 0..~1."""
    return _bump(hour, 7.75, 1.4) + 0.9 * _bump(hour, 17.75, 1.6)


def _office(moment: datetime) -> float:
    """Share of a public office's capacity at work: 7:30-11:30 and 13:30-17:00, Mon-Fri."""
    day = moment.weekday()
    hour = _hour_of_day(moment)
    open_hours = 7.5 <= hour < 11.5 or 13.5 <= hour < 17.0
    if day < 5:
        return 1.0 if open_hours else 0.0
    if day == 5:  # many one-stop shops open on Saturday morning
        return 0.3 if 7.5 <= hour < 11.5 else 0.0
    return 0.0


# --- air ------------------------------------------------------------------------------------

# province -> (PM scale against Hà Nội, days the replayed record is shifted by)
_AIR_PROVINCE: Mapping[str, tuple[float, int]] = MappingProxyType(
    {"01": (1.0, 0), "40": (0.75, 3), "46": (0.55, 7), "48": (0.5, 11), "96": (0.45, 17)}
)
# province -> monthly mean temperatures (°C), January first: north, centre, south
_NORTH = (17, 18, 21, 25, 28, 30, 30, 29, 28, 25, 22, 18)
_CENTRE = (20, 21, 23, 26, 28, 29, 29, 29, 27, 25, 23, 21)
_SOUTH = (26, 27, 28, 29, 29, 28, 28, 28, 27, 27, 27, 26)
_CLIMATE: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"01": _NORTH, "40": _NORTH, "46": _CENTRE, "48": _CENTRE, "96": _SOUTH}
)


# --- water ----------------------------------------------------------------------------------

FLOOD_SCENARIO: Mapping[str, int] = MappingProxyType(
    {
        "huong-kim-long": 3,
        "bo-phu-oc": 3,
        "thu-bon-hoi-an": 3,
        "thu-bon-cau-lau": 2,
        "han-cam-le": 2,
        "vu-gia-ai-nghia": 2,
        "ca-nam-dan": 1,
        "hong-ha-noi": 0,
        "ganh-hao-tp-ca-mau": 3,
        "ong-doc-song-doc": 2,
        "cua-lon-nam-can": 1,
    }
)
"""The alarm level each station's flood peaks at (0: rises, stays below I). Central Vietnam's
rivers flood in the autumn (Huế, Đà Nẵng); Cà Mau has a spring-tide surge like the one of its
16 Dec 2024 bulletin (TP Cà Mau 107 cm, above BĐIII); the Red River at Hà Nội rises without
alarm. Stations not listed rise to level I."""

TIDE_PERIOD_S = 12.42 * HOUR_S  # principal lunar semi-diurnal tide (M2)


@dataclass(frozen=True, slots=True)
class FloodEvent:
    """When the flood of the simulation rises and peaks: fixed by the history window.

    Before ``start_ns`` rivers run at their base level; they rise smoothly to their scenario
    peak at ``peak_ns`` (70 % into the history window) and recede exponentially after it, so the
    event is in the history that is published at start and still receding in live mode.
    """

    start_ns: int
    peak_ns: int
    decay_s: float

    @classmethod
    def over(cls, end_ns: int, history_s: float) -> FloodEvent:
        """The event of a history window ending at ``end_ns``."""
        span = max(history_s, 600.0)
        start = end_ns - int(span * NS)
        return cls(start, start + int(0.7 * span * NS), max(0.6 * span, 3.0 * HOUR_S))

    def shape(self, time_ns: int) -> float:
        """0 at base level, 1 at the peak."""
        if time_ns <= self.start_ns:
            return 0.0
        if time_ns <= self.peak_ns:
            s = (time_ns - self.start_ns) / (self.peak_ns - self.start_ns)
            return s * s * (3.0 - 2.0 * s)
        return math.exp(-(time_ns - self.peak_ns) / NS / self.decay_s)


def _alarm_levels(station: StationLevels) -> tuple[float, float, float]:
    """BĐI, BĐII, BĐIII in the station's unit; levels the text does not give are extrapolated."""
    known = [None if v is None else float(v) for v in (station.bd_i, station.bd_ii, station.bd_iii)]
    i, ii, iii = known
    if i is None and ii is not None and iii is not None:
        i = ii - (iii - ii)
    if iii is None and i is not None and ii is not None:
        iii = ii + (ii - i)
    if ii is None and i is not None and iii is not None:
        ii = (i + iii) / 2
    if i is None or ii is None or iii is None:
        return (1.0, 2.0, 3.0)  # no level known at all: a nominal scale
    return (i, ii, iii)


# --- departmental feeds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskRegister:
    """A task register's buckets at the as-of time (INDICATORS.md §6.2): they sum to ``total``."""

    total: int
    completed: int
    on_schedule: int
    overdue: int

    def __post_init__(self) -> None:
        """The three buckets must sum to the total (§6.2)."""
        if self.completed + self.on_schedule + self.overdue != self.total:
            raise ValueError(f"task buckets do not sum to the total: {self}")


TASKS: Mapping[str, TaskRegister] = MappingProxyType(
    {
        # §7 Hà Nội, Nov 2025: 18 overdue city tasks and 12 overdue tasks assigned by central
        # bodies; the totals and the other buckets are not published [D].
        "01-tasks": TaskRegister(120, 72, 30, 18),
        "01-tasks-central": TaskRegister(40, 20, 8, 12),
        # §7 Nghệ An to 15 Nov 2025: 100 tasks, 51 completed, 49 on schedule.
        "40-tasks": TaskRegister(100, 51, 49, 0),
        # §7 Cà Mau, Sept 2025: 66 of 123 completed, no overdue task.
        "96-tasks": TaskRegister(123, 66, 57, 0),
        # Huế and Đà Nẵng: no published figures, plausible registers [D].
        "46-tasks": TaskRegister(90, 52, 35, 3),
        "48-tasks": TaskRegister(110, 74, 33, 3),
    }
)
"""The Resolution 57 registers of INDICATORS.md §7, by source id. Other task sources get a
register derived from the seed."""

TASKS_THIS_YEAR: Mapping[str, TaskRegister] = MappingProxyType(
    {
        # §7 Cà Mau, Sept 2025: of which the year's tasks 38 of 65 (58.46%), none overdue.
        "96-tasks": TaskRegister(65, 38, 27, 0),
        # The others publish no year split: plausible parts of their registers [D].
        "01-tasks": TaskRegister(60, 30, 20, 10),
        "01-tasks-central": TaskRegister(16, 6, 6, 4),
        "40-tasks": TaskRegister(48, 22, 26, 0),
    }
)
"""The same registers' tasks of the current year (``tasks_year_*``, docs/payloads.md): the
simulator stamps them with the reading's time, so they count for whichever year that is. Other
task sources get a share of their register derived from it."""

PLAN_GROUPS = 16
"""Plan 02-KH/BCĐTW phase 1's task groups (INDICATORS.md §7, Nghệ An: "all 16 task groups")."""

PLAN_DONE: Mapping[str, float] = MappingProxyType({"40-plan02": 1.0})
"""Share of a plan register's (task group, commune) tasks completed, by source id. §7 Nghệ An
to 15 Nov 2025: all 130 communes and wards completed all 16 groups. Other plan registers get a
share derived from the seed [D]."""

# province -> (dossiers per hour at full office capacity, share handled on time)
_REUSE: Mapping[str, float] = MappingProxyType(
    {"01": 0.68, "40": 0.74, "46": 0.81, "48": 0.83, "96": 0.62}
)
"""Share of dossiers filled from shared data (data reuse rate, 766 sub-indicator 4.3);
Nghệ An's 74% is INDICATORS.md §7, the others are demo values."""

_DOSSIERS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "01": (420.0, 0.972),
        "40": (130.0, 0.985),
        "46": (110.0, 0.991),
        "48": (160.0, 0.995),
        "96": (90.0, 0.978),
    }
)
# province -> data-sharing transactions per hour at full office capacity
_TRANSACTIONS: Mapping[str, float] = MappingProxyType(
    {"01": 16000.0, "40": 6000.0, "46": 3500.0, "48": 5000.0, "96": 2500.0}
)
_COMMUNE_TRANSACTIONS = 60.0  # a commune's systems, per hour at full office capacity


def this_year(register: TaskRegister) -> TaskRegister:
    """The current year's part of a register without published year figures: about half."""
    total = register.total // 2
    completed = register.completed * total // register.total if register.total else 0
    overdue = min(register.overdue, total - completed)
    return TaskRegister(total, completed, total - completed - overdue, overdue)


def _buckets(register: TaskRegister) -> dict[str, int]:
    return {
        "total": register.total,
        "completed": register.completed,
        "on_schedule": register.on_schedule,
        "overdue": register.overdue,
    }


class SignalModel:
    """The value models of one simulation: seed, the replayed PM2.5 record and the flood."""

    def __init__(self, seed: int, flood: FloodEvent, pm25: Pm25Record | None = None) -> None:
        self.seed = seed
        self.flood = flood
        self.pm25 = pm25

    def values(self, source: Source, time_ns: int) -> Values:
        """The reading set ``source`` reports at ``time_ns`` (empty for unmodelled kinds)."""
        model = {
            "air": self.air,
            "water": self.water,
            "traffic": self.traffic,
            "service": self.service,
            "tasks": self.tasks,
            "task_groups": self.task_groups,
            "data": self.data,
            "probe": self.probe,
        }.get(source.kind)
        return {} if model is None else model(source, time_ns)

    # --- devices ------------------------------------------------------------------------------

    def pm25_at(self, source: Source, time_ns: int) -> float | None:
        """The station's hourly PM2.5 level (µg/m³) before reading noise; None in a gap."""
        scale, shift_days = _AIR_PROVINCE.get(
            source.province, (0.6, int(source.province or "0") % 23)
        )
        station = _spread(self.seed, source.id, "station", width=0.12)
        hour = _local(time_ns) - timedelta(days=shift_days)
        if self.pm25 is None:
            modelled = 45.0 * (0.7 + 0.5 * _rush(_hour_of_day(hour)))
            return modelled * scale * station
        value = self.pm25.at(hour)
        return None if value is None else value * scale * station

    def air(self, source: Source, time_ns: int) -> Values:
        """An air-quality station's reading (µg/m³, °C, %RH)."""
        moment = _local(time_ns)
        hour = _hour_of_day(moment)
        scale = _AIR_PROVINCE.get(source.province, (0.6, 0))[0]

        def noisy(metric: str, value: float, width: float = 0.06, digits: int = 1) -> float:
            return round(
                max(0.0, value * _spread(self.seed, source.id, metric, time_ns, width=width)),
                digits,
            )

        values: Values = {}
        pm25 = self.pm25_at(source, time_ns)
        if pm25 is not None:
            values["pm25"] = noisy("pm25", pm25)
        # PM10 has its own analyser: it keeps reporting through a PM2.5 gap
        base = pm25
        if base is None and self.pm25 is not None:
            shift = _AIR_PROVINCE.get(source.province, (0.6, 0))[1]
            near = self.pm25.near(moment - timedelta(days=shift))
            base = None if near is None else near * scale
        ratio = 1.45 + 0.25 * unit(self.seed, source.id, "pm10-ratio")
        values["pm10"] = noisy("pm10", (base if base is not None else 40.0 * scale) * ratio)
        traffic = 0.6 + math.sqrt(scale) * 0.4
        values["no2"] = noisy("no2", (18.0 + 42.0 * _rush(hour)) * traffic)
        values["co"] = noisy("co", (650.0 + 1600.0 * _rush(hour)) * traffic, digits=0)
        values["so2"] = noisy("so2", (7.0 + 12.0 * _rush(hour)) * traffic)
        sun = max(0.0, math.sin(math.pi * (hour - 7.0) / 12.0)) if 7.0 <= hour <= 19.0 else 0.0
        values["o3"] = noisy("o3", 14.0 + 95.0 * sun**1.5)
        climate = _CLIMATE.get(source.province, _CENTRE)[moment.month - 1]
        daily = math.cos(2 * math.pi * (hour - 14.5) / 24.0)  # warmest mid-afternoon
        spread = 3.5 if climate < 24 else 3.0
        values["temperature"] = round(
            climate + spread * daily + 0.6 * (2 * unit(self.seed, source.id, "t", time_ns) - 1), 1
        )
        humidity = 78.0 - 14.0 * daily + 4.0 * (2 * unit(self.seed, source.id, "h", time_ns) - 1)
        values["humidity"] = round(min(98.0, max(35.0, humidity)), 1)
        return values

    def water_level(self, station: StationLevels, source_id: str, time_ns: int) -> float:
        """The stage at ``station`` in the station's own unit (m, or cm at tidal stations)."""
        i, ii, iii = _alarm_levels(station)
        target = FLOOD_SCENARIO.get(station.station_id, 1)
        peak = {
            0: i - 0.25 * (ii - i),
            1: i + 0.4 * (ii - i),
            2: ii + 0.4 * (iii - ii),
            3: iii + 0.35 * (iii - ii),
        }[target]
        noise = 0.004 * (iii - i) * (2 * unit(self.seed, source_id, "stage", time_ns) - 1)
        shape = self.flood.shape(time_ns)
        if station.tidal:
            amplitude = 0.6 * (ii - i) + 0.25 * i
            mean = i - amplitude - 0.5 * (ii - i)
            phase = 2 * math.pi * (time_ns - self.flood.peak_ns) / NS / TIDE_PERIOD_S
            surge = peak - (mean + amplitude)
            return mean + amplitude * math.cos(phase) + surge * shape + noise
        base = i - (2.5 if target == 0 else 0.8) * (ii - i)
        return base + (peak - base) * shape + noise

    def water(self, source: Source, time_ns: int) -> Values:
        """A river or tide gauge's stage, in metres (the canonical unit)."""
        if source.station is None:
            station_levels = station_by_id("hong-ha-noi")  # an unnamed gauge: a generic river
        else:
            station_levels = station_by_id(source.station)
        stage = self.water_level(station_levels, source.id, time_ns)
        metres = stage / 100.0 if station_levels.unit.value == "cm" else stage
        return {"water_level": round(metres, 3)}

    def traffic(self, source: Source, time_ns: int) -> Values:
        """Vehicles counted in the last interval and their mean speed."""
        moment = _local(time_ns)
        peak_per_minute = 40.0 + 80.0 * unit(self.seed, source.id, "capacity")
        weekend = 0.75 if moment.weekday() >= 5 else 1.0
        night = 0.08 + 0.25 * _bump(_hour_of_day(moment), 13.0, 5.0)
        load = min(1.0, (night + 0.8 * _rush(_hour_of_day(moment))) * weekend)
        minutes = source.expected_interval_s / 60
        vehicles = round(
            peak_per_minute
            * minutes
            * load
            * _spread(self.seed, source.id, "n", time_ns, width=0.15)
        )
        speed = (52.0 - 30.0 * load) * _spread(self.seed, source.id, "v", time_ns, width=0.08)
        return {"vehicles": float(vehicles), "speed": round(speed, 1)}

    # --- departmental feeds -------------------------------------------------------------------

    def service(self, source: Source, time_ns: int) -> Values:
        """Dossiers received, handled on time and submitted fully online in the last interval."""
        per_hour, on_time_rate = _DOSSIERS.get(source.province, (80.0, 0.98))
        if source.ward is not None:  # a commune's one-stop shop
            per_hour /= 25.0
        hours = source.expected_interval_s / HOUR_S
        moment = _local(time_ns - source.expected_interval_s * NS // 2)  # middle of the interval
        office = _office(moment)
        jitter = _spread(self.seed, source.id, "dossiers", time_ns, width=0.2)
        online_share = 0.5 + 0.2 * unit(self.seed, source.id, "online-share")
        at_desk = per_hour * hours * office * (1 - online_share) * jitter
        online = per_hour * hours * (0.08 + office) * online_share * jitter
        received = round(at_desk + online)
        late_share = (1 - on_time_rate) * 2 * unit(self.seed, source.id, "late", time_ns)
        on_time = received - min(received, round(received * late_share))
        # rounded up or down at random in proportion (unbiased: a night's few dossiers still
        # average the province's reuse rate)
        reuse = received * _REUSE.get(source.province, 0.6) + unit(
            self.seed, source.id, "reuse", time_ns
        )
        return {
            "dossiers_received": float(received),
            "dossiers_on_time": float(on_time),
            "dossiers_online": float(min(received, round(online))),
            "dossiers_reused": float(min(received, math.floor(reuse))),
        }

    def tasks(self, source: Source, time_ns: int) -> Values:
        """The task register's buckets (stocks: the same until tasks change state)."""
        register = TASKS.get(source.id) or self.derived_register(source)
        return {
            "tasks_total": float(register.total),
            "tasks_completed": float(register.completed),
            "tasks_on_schedule": float(register.on_schedule),
            "tasks_overdue": float(register.overdue),
            "tasks_due_soon": float(self.due_soon(source, register)),
            **{
                f"tasks_year_{bucket}": float(count)
                for bucket, count in _buckets(
                    TASKS_THIS_YEAR.get(source.id) or this_year(register)
                ).items()
            },
        }

    def task_groups(self, source: Source, time_ns: int) -> Values:
        """A plan register's task groups in the province's communes (stocks), computed from one
        task per (group, commune) as the plan's tracking system would count them."""
        communes = [ward.code for ward in get_places().wards_of(source.province)]
        groups = [f"group-{g:02d}" for g in range(1, PLAN_GROUPS + 1)]
        share = PLAN_DONE.get(source.id)
        if share is None:
            share = 0.6 + 0.39 * unit(self.seed, source.id, "plan")
        as_of = _local(time_ns)
        tasks = [
            Task(
                task_id=group,
                unit=commune,
                deadline=None,
                completed_on=as_of if unit(self.seed, source.id, group, commune) < share else None,
            )
            for group in groups
            for commune in communes
        ]
        deployment = group_deployment(tasks, as_of, groups=groups, communes=communes)
        return {
            "task_groups_total": float(deployment.groups),
            "task_groups_completed": float(deployment.groups_completed),
            "task_groups_communes_completed": float(deployment.communes_completed),
        }

    def due_soon(self, source: Source, register: TaskRegister) -> int:
        """Open tasks due within the reminder window: a tenth to a quarter of those on schedule."""
        return round(register.on_schedule * (0.1 + 0.15 * unit(self.seed, source.id, "due_soon")))

    def derived_register(self, source: Source) -> TaskRegister:
        """A plausible register for a task source §7 gives no figures for."""
        total = 60 + int(80 * unit(self.seed, source.id, "tasks"))
        completed = int(total * (0.4 + 0.3 * unit(self.seed, source.id, "done")))
        overdue = int(total * 0.05 * unit(self.seed, source.id, "late"))
        return TaskRegister(total, completed, total - completed - overdue, overdue)

    def data(self, source: Source, time_ns: int) -> Values:
        """Data-sharing transactions in the last interval."""
        if source.ward is not None:
            per_hour = _COMMUNE_TRANSACTIONS
        else:
            per_hour = _TRANSACTIONS.get(source.province, 2000.0)
        hours = source.expected_interval_s / HOUR_S
        moment = _local(time_ns - source.expected_interval_s * NS // 2)
        load = 0.12 + _office(moment)
        jitter = _spread(self.seed, source.id, "tx", time_ns, width=0.25)
        return {"data_transactions": float(round(per_hour * hours * load * jitter))}

    # --- shared systems -----------------------------------------------------------------------

    def probe(self, source: Source, time_ns: int) -> Values:
        """One availability check of a shared system, as ``ioc probe`` publishes it."""
        up = unit(self.seed, source.id, "probe-up", time_ns) >= _PROBE_DOWN_SHARE
        latency = 20.0 + 180.0 * unit(self.seed, source.id, "probe-ms", time_ns) ** 3
        return {
            "probe_up": up,  # a bool metric: published as JSON true/false
            "probe_status": 200.0 if up else 503.0,
            "probe_latency_ms": round(latency, 1),
        }


_PROBE_DOWN_SHARE = 0.03
"""Share of checks that find a simulated shared system down."""
