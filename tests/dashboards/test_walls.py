"""Every panel query of the generated walls, run for real against InfluxDB seeded with the demo.

Grafana cannot be installed here, so the boards in ``deploy/grafana/dashboards/`` are proven by
doing what Grafana does with them (dashboards/expand.py): resolve the template variables,
expand the macros for the last 24 h with each panel's interval, and send the text to a real
InfluxDB. The database holds what ``make run`` produces (ioc/run.py): the demo fleet's 12 h of
history published by the simulator through the real Mosquitto into a real collector, then one
engine backfill, one engine cycle and one evaluation of the alert rules (Hà Nội's departments
that never reported fire at once: the Alerts row and the annotations have changes). Two things
are added to the plain demo, which has neither, so that the panels showing them have something
to show: one of Nghệ An's 130 commune data feeds falls silent 3 h before now (a stale feed), and
two bad messages are sent (dead letters).

Every query must parse and return values. A province-filtered panel may be empty only where the
registry has no source it could read in that province (:func:`no_source_for`), and then it must
be empty; the alert changes must be exactly those the history query of the API reads. Every stat
and gauge must show what the indicator API answers for the same indicator, place and time, in the
same band colour.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest

from alerts.command import write_self_metrics
from alerts.evaluate import Evaluator
from alerts.rules import load_rules
from alerts.state import StateStore
from dashboards.build import DASHBOARDS_DIR
from dashboards.expand import (
    DEFAULT_MAX_DATA_POINTS,
    Interval,
    PanelQuery,
    expand,
    interval_for,
    panel_queries,
    resolve_variables,
    run_variable_query,
)
from ingest.collector import Collector
from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.catalog import Catalog, get_catalog, parse_period
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.simulate.fleet import DEFAULT_PROVINCES, build_fleet
from ioc.simulate.pm25 import DEFAULT_FILES, Pm25Record
from ioc.simulate.publisher import Publisher
from ioc.simulate.runner import Simulation
from ioc.simulate.signals import FloodEvent, SignalModel
from ioc.store import Series, Store, influxql, quote_ident

pytestmark = pytest.mark.services

log = logging.getLogger(__name__)

NS = 1_000_000_000
HISTORY = timedelta(hours=12)
"""What ``make run`` publishes (ioc/run.py, DEFAULT_HISTORY)."""
RANGE = timedelta(hours=24)
"""The boards' time range (``now-24h`` to ``now``)."""
HUE, HANOI = "46", "01"
SILENCED_FEED = "40-data-16681"
"""A Nghệ An commune's hourly data feed that stops 3 h before now: stale after 2 h."""
SILENT_FOR = timedelta(hours=3)
METRICS_INTERVAL_S = 1.0
"""The collector's self-metrics interval here (10 s in production)."""
BAD_MESSAGES = (
    ("ioc/v1/46/46-air-unregistered/air", b'{"pm25": 12.5}'),  # unknown source
    ("ioc/v1/46/46-air-phu-xuan/air", b"pm25=12.5"),  # not JSON
)


# --- the boards and their targets -------------------------------------------------------------

BOARD_FILES = sorted(DASHBOARDS_DIR.glob("*/*.json"))
MODELS: dict[str, dict[str, Any]] = {
    path.stem: json.loads(path.read_text(encoding="utf-8")) for path in BOARD_FILES
}


def _provinces(model: Mapping[str, Any]) -> list[str | None]:
    """Huế and Hà Nội (which has a source of every kind) on boards with a province variable."""
    names = {v.get("name") for v in model.get("templating", {}).get("list", [])}
    return [HUE, HANOI] if "province" in names else [None]


def _ascii(text: str) -> str:
    """Vietnamese without diacritics, for readable test ids."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return re.sub(r"\W+", "_", plain.encode("ascii", "ignore").decode()).strip("_")


@dataclass(frozen=True, slots=True)
class Case:
    """One panel target of one board, for one choice of the ``province`` variable."""

    board: str
    province: str | None
    target: PanelQuery

    @property
    def id(self) -> str:
        where = f"[{self.province}]" if self.province else ""
        panel = f"{self.target.panel_id}-{_ascii(self.target.panel_title)}"
        return f"{self.board}{where}:{panel}:{self.target.ref_id}"

    @property
    def panel(self) -> dict[str, Any]:
        """The panel's JSON (rows' panels included)."""
        stack = list(MODELS[self.board]["panels"])
        while stack:
            panel = stack.pop()
            if panel.get("id") == self.target.panel_id:
                found: dict[str, Any] = panel
                return found
            stack += panel.get("panels") or []
        raise LookupError(self.target.panel_id)


CASES = [
    Case(board, province, target)
    for board, model in MODELS.items()
    for province in _provinces(model)
    for target in panel_queries(model)
]
CASES.sort(key=lambda c: c.board == "operations")  # last: its rates need the collector's time
CURRENT = [c for c in CASES if c.target.panel_type in ("stat", "gauge")]


def test_every_board_is_checked() -> None:
    families = {path.parent.name for path in BOARD_FILES}
    assert families == {"national", "province", "domains", "operations"}
    assert all(any(c.board == board for c in CASES) for board in MODELS)
    assert {c.province for c in CASES if c.board == "province-wall"} == {HUE, HANOI}


# --- the seeded database ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    """The seeded database, its store and catalog; the collector is still running."""

    settings: Settings
    store: Store
    catalog: Catalog
    collector_started: float  # Unix seconds


def _board_database() -> str:
    """The database the committed boards name (``FROM "db"."rp"."measurement"``)."""
    names: set[str] = {
        name
        for model in MODELS.values()
        for target in panel_queries(model)
        for name in re.findall(r'FROM "([^"]+)"\."[^"]+"\."', target.query)
    }
    assert len(names) == 1, f"the boards read more than one database: {names}"
    return names.pop()


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def seeded(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The demo fleet's history through broker and collector, then a backfill and one cycle.

    The database is the one the boards name, on the session's InfluxDB, dropped at the end. The
    collector keeps running (and writing its self-metrics) until the module's tests are done.
    """
    began = time.monotonic()
    settings = dataclasses.replace(
        services,
        influx_db=_board_database(),
        var_dir=tmp_path_factory.mktemp("walls"),
        ingest_id=f"walls-{uuid.uuid4().hex[:6]}",
        ingest_group=None,
    )
    catalog = get_catalog(settings.registry_file)
    with Store(settings) as store:
        store.ensure_schema()
        collector = Collector(settings, catalog, metrics_interval=METRICS_INTERVAL_S)
        stop = threading.Event()
        thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
        started = time.time()
        thread.start()
        try:
            assert collector.connected.wait(20), "the collector did not connect"
            time.sleep(0.3)  # SUBACK
            published = _publish_history(settings, catalog)
            _wait_for(lambda: collector.counters["acked"] >= published, "every message stored")
            engine = Engine(settings, catalog, store)
            end_ns = time.time_ns()
            engine.backfill(
                end_ns - int((HISTORY + timedelta(hours=1)).total_seconds() * NS), end_ns
            )
            engine.run_cycle()
            state = StateStore(settings.var_dir / "alerts.sqlite")
            rules = load_rules(catalog, None)
            cycle = Evaluator(settings, catalog, rules, store, state).evaluate()
            write_self_metrics(store, settings, cycle, 0.5)
            state.close()
            log.info("walls: demo seeded in %.1f s", time.monotonic() - began)
            yield Seeded(settings, store, catalog, started)
        finally:
            stop.set()
            thread.join(timeout=60)
            store.command(f"DROP DATABASE {quote_ident(settings.influx_db)}")


def _publish_history(settings: Settings, catalog: Catalog) -> int:
    """``ioc simulate --once --history 12h`` (ioc/simulate/command.py), but with
    :data:`SILENCED_FEED` silent for the last 3 h, then :data:`BAD_MESSAGES`. Returns the
    number of messages published."""
    fleet = build_fleet(catalog, DEFAULT_PROVINCES, seed=1)
    end_ns = time.time_ns()
    start_ns = end_ns - int(HISTORY.total_seconds() * NS)
    pm25 = Pm25Record.from_csv() if all(path.is_file() for path in DEFAULT_FILES) else None
    model = SignalModel(1, FloodEvent.over(end_ns, HISTORY.total_seconds()), pm25)
    silenced = tuple(d for d in fleet.devices if d.source.id == SILENCED_FEED)
    assert silenced, f"{SILENCED_FEED} is not in the demo fleet"
    others = tuple(d for d in fleet.devices if d.source.id != SILENCED_FEED)
    stop = threading.Event()
    with Publisher(settings) as publisher:
        demo = Simulation(catalog, dataclasses.replace(fleet, devices=others), model)
        published = demo.publish_history(publisher, start_ns, end_ns, stop)
        until = end_ns - int(SILENT_FOR.total_seconds() * NS)
        quiet = Simulation(catalog, dataclasses.replace(fleet, devices=silenced), model)
        published += quiet.publish_history(publisher, start_ns, until, stop)
        for topic, payload in BAD_MESSAGES:
            assert publisher.publish(topic, payload, stop)
            published += 1
        assert publisher.flush(60.0), "the broker did not acknowledge every message"
    return published


# --- what a panel may show --------------------------------------------------------------------


def _reads(catalog: Catalog, query: str) -> tuple[str | None, str | None]:
    """The source kind a target reads (None: every kind) and the level it reads, if any."""
    indicator = re.search(r""""indicator" = '([^']+)'""", query)
    level = re.search(r""""level" = '([^']+)'""", query)
    if indicator is not None:
        kind = catalog.indicators[indicator.group(1)].kind
        return kind, level.group(1) if level else None
    raw = re.search(r'FROM "[^"]+"\."raw"\."([^"]+)"', query)
    if raw is not None:
        return next(k.key for k in catalog.kinds.values() if k.measurement == raw.group(1)), None
    return None, None


def no_source_for(catalog: Catalog, case: Case) -> str | None:
    """Why the panel cannot have data for the chosen province; None when it must have some.

    Only when the registry has no source the panel could read there: none of the indicator's
    kind (of any kind, for live-ness), or none with a ward for a ward table. In the demo
    registry Huế has no traffic counter and no data-sharing feed, and departments' feeds
    (public services, tasks, Hà Nội's data platform) belong to a province, not to a ward.
    """
    if case.province is None or "$province" not in case.target.query:
        return None
    kind, level = _reads(catalog, case.target.query)
    registry = catalog.registry
    members = [
        source
        for source in (registry.of_kind(kind) if kind else registry.sources)
        if source.province == case.province and (level != "ward" or source.ward)
    ]
    if members:
        return None
    ward = " with a ward" if level == "ward" else ""
    return f"the registry has no {kind or ''} source{ward} in province {case.province}"


# --- running a target as Grafana does ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ran:
    """A panel target as Grafana sends it, and what InfluxDB answered."""

    case: Case
    text: str
    series: tuple[Series, ...]

    def rows(self) -> list[dict[str, Any]]:
        """Every row with its series' tags as columns (as Grafana's table format shows them)."""
        return [{**s.tags, **row} for s in self.series for row in s.rows()]

    def has_values(self, *columns: str) -> bool:
        """A row has a value in every one of ``columns`` (by default: in any field)."""
        for s in self.series:
            fields = [c for c in s.columns if c != "time"]
            for row in s.rows():
                if columns and all(({**s.tags, **row}).get(c) is not None for c in columns):
                    return True
                if not columns and any(row[c] is not None for c in fields):
                    return True
        return False

    def __str__(self) -> str:
        answer = [f"{dict(s.tags)} {s.columns} {list(s.values[:3])}" for s in self.series[:5]]
        target = self.case.target
        return (
            f"board {self.case.board}, province {self.case.province}, panel {target.panel_id} "
            f"{target.panel_title!r} ({target.panel_type}), target {target.ref_id}\n"
            f"query: {self.text}\nanswer: {answer or 'no series'}"
        )


def _interval(case: Case, start: datetime, end: datetime) -> Interval:
    """The panel's ``$__interval`` for the range (500 points: Grafana without a panel width)."""
    return interval_for(
        start,
        end,
        max_data_points=case.target.max_data_points or DEFAULT_MAX_DATA_POINTS,
        min_interval=case.target.min_interval,
    )


def _run(seeded: Seeded, case: Case) -> Ran:
    """Resolve the board's variables with their own queries, expand the last 24 h, run it."""
    end = datetime.now(UTC)
    start = end - RANGE
    variables = resolve_variables(
        MODELS[case.board],
        partial(run_variable_query, seeded.store),
        start=start,
        end=end,
        chosen={"province": case.province} if case.province else None,
    )
    interval = _interval(case, start, end)
    text = expand(case.target.query, start=start, end=end, interval=interval, variables=variables)
    return Ran(case, text, seeded.store.query(text, epoch="ms"))


def _rate_wait(seeded: Seeded, case: Case) -> float:
    """Seconds until the collector has reported in two of the panel's interval buckets.

    A rate (``non_negative_derivative`` per ``$__interval``) needs two buckets: on a system
    that has just started, the rate panels stay empty for up to two intervals (2 min for 24 h).
    """
    if "non_negative_derivative" not in case.target.query:
        return 0.0
    end = datetime.now(UTC)
    step = _interval(case, end - RANGE, end).ms / 1000
    first_report = seeded.collector_started + METRICS_INTERVAL_S
    second_bucket = (math.floor(first_report / step) + 1) * step
    return max(0.0, second_bucket + 2 * METRICS_INTERVAL_S - time.time())


def _organized_columns(panel: Mapping[str, Any]) -> list[str]:
    """The columns an ``organize`` transformation keeps (they must exist in the answer)."""
    names: list[str] = []
    for transformation in panel.get("transformations") or []:
        if transformation.get("id") == "organize":
            names += list(transformation["options"].get("includeByName") or {})
    return names


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_panel_query_runs_and_shows_values(seeded: Seeded, case: Case) -> None:
    time.sleep(_rate_wait(seeded, case))
    ran = _run(seeded, case)
    if f'"{influxql.ALERT_MEASUREMENT}"' in case.target.query:
        assert ran.rows() == _alert_changes(seeded, case.province), f"not the history\n{ran}"
        assert case.province != HANOI or ran.has_values(), f"no alert change\n{ran}"
        return
    reason = no_source_for(seeded.catalog, case)
    if reason is not None:
        assert not ran.has_values(), f"values although {reason}\n{ran}"
        return
    assert ran.has_values(), f"no value\n{ran}"
    if case.target.result_format == "table":
        columns = {"Time" if c == "time" else c for s in ran.series for c in (*s.columns, *s.tags)}
        missing = [c for c in _organized_columns(case.panel) if c not in columns]
        assert not missing, f"columns {missing} shown by the panel are not in the answer\n{ran}"
    if case.target.panel_type == "geomap":
        assert ran.has_values("latitude", "longitude"), f"no station with a location\n{ran}"


def _alert_changes(seeded: Seeded, province: str | None) -> list[dict[str, Any]]:
    """The province's alert changes of the last 24 h as the API's history reads them."""
    end = datetime.now(UTC)
    text = influxql.alert_history(seeded.settings.influx_db, province=True, limit=200)
    params = {
        "province": province or "",
        "start": (end - RANGE).isoformat(),
        "end": end.isoformat(),
    }
    series = seeded.store.query(text, params, epoch="ms")
    return [{**s.tags, **row} for s in series for row in s.rows()]


ANNOTATIONS = [
    (board, annotation)
    for board, model in MODELS.items()
    for annotation in model["annotations"]["list"]
    if annotation.get("datasource", {}).get("type") == "influxdb"
]


@pytest.mark.parametrize(("board", "annotation"), ANNOTATIONS, ids=[b for b, _ in ANNOTATIONS])
def test_annotation_queries_show_the_alert_changes(
    seeded: Seeded, board: str, annotation: Mapping[str, Any]
) -> None:
    """Each InfluxQL annotation runs as Grafana sends it and gives the changes with a text."""
    assert annotation["target"]["rawQuery"] is True
    end = datetime.now(UTC)
    start = end - RANGE
    variables = resolve_variables(
        MODELS[board],
        partial(run_variable_query, seeded.store),
        start=start,
        end=end,
        chosen={"province": HANOI},
    )
    interval = interval_for(start, end, max_data_points=DEFAULT_MAX_DATA_POINTS)
    text = expand(
        annotation["target"]["query"], start=start, end=end, interval=interval, variables=variables
    )
    rows = [row for s in seeded.store.query(text, epoch="ms") for row in s.rows()]
    assert len(rows) == len(_alert_changes(seeded, HANOI)) > 0, text
    mapped = {m["value"] for m in annotation["mappings"].values() if m["source"] == "field"}
    assert mapped <= set(rows[0]), (mapped, rows[0])
    assert all(row["text"] for row in rows)


# --- stats and gauges against the API ---------------------------------------------------------


@pytest.fixture(scope="module")
def api(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """GET on the indicator API (Flask's test client) with a read key, over the seeded data."""
    folder = tmp_path_factory.mktemp("walls-api")
    settings = dataclasses.replace(
        seeded.settings,
        var_dir=folder / "var",
        api_keys_file=folder / "keys.json",
        api_cache_seconds=0.0,
        api_rate_limit=100_000,
    )
    key = KeyStore(settings.api_keys_path).create("walls", "read")[1]
    client = create_app({"TESTING": True}, settings=settings).test_client()

    def get(url: str) -> Any:
        response = client.get(url, headers={"X-API-Key": key})
        assert response.status_code == 200, response.data
        return orjson.loads(response.data)

    return get


def _colour(panel: Mapping[str, Any], value: float) -> str:
    """The colour Grafana gives ``value`` with the panel's absolute thresholds."""
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    colour: str = steps[0]["color"]
    for step in steps[1:]:
        if value >= step["value"]:
            colour = step["color"]
    return colour


def _rfc3339_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.mark.parametrize("case", CURRENT, ids=[c.id for c in CURRENT])
def test_stats_show_what_the_api_answers(
    seeded: Seeded, api: Callable[[str], Any], case: Case
) -> None:
    ran = _run(seeded, case)
    indicator = re.search(r""""indicator" = '([^']+)'""", case.target.query)
    assert indicator is not None and case.province is not None, ran
    key = indicator.group(1)
    answer = api(f"/api/v1/indicators/{key}/values?level=province&province={case.province}")
    rows = [row for row in ran.rows() if row["value"] is not None]
    if no_source_for(seeded.catalog, case) is not None:
        assert rows == [] and answer["items"] == [], ran
        return
    assert len(rows) == 1, f"one current value expected\n{ran}"
    (row,) = rows
    (item,) = answer["items"]
    shown = {
        "value": row["value"],
        "time": row["time"],
        "coverage": row["coverage"],
        "expected": row["expected"],
        "origin": row["origin"],
        "band": row["band"],
    }
    served = {
        "value": item["value"],
        "time": _rfc3339_ms(item["time"]),
        "coverage": item["coverage"],
        "expected": item["expected"],
        "origin": item["origin"]["source"] if item["origin"] else None,
        "band": item["band"]["key"] if item["band"] else None,
    }
    assert shown == served, f"the API answers {served}\n{ran}"
    assert item["age_s"] < 1.5 * parse_period(seeded.catalog.indicators[key].period), item
    if item["band"] is not None:
        assert _colour(case.panel, row["value"]) == item["band"]["colour"], (
            f"colour of {row['value']} on the panel differs from the API's band {item['band']}"
        )
