"""The boards: national overview, province wall, one board per catalog domain, operations.

Each board is a grafana-foundation-sdk ``Dashboard`` builder made from the catalog: a new
indicator with a ``dashboard`` key appears on its domain board and among the province wall's
headline stats with no code change. A board that shows one province (``province=...``, for a
province's own Grafana organisation) fixes the ``province`` variable as a hidden constant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards.model import DATASOURCE_UID, Folder
from dashboards.panels import (
    FEED_STATES,
    InfluxQLTarget,
    alert_table,
    feed_states,
    geomap_panel,
    indicator_gauge,
    indicator_stat,
    indicator_table,
    series_panel,
    unit_of,
)
from ioc.catalog import Catalog, Indicator
from ioc.catalog.loader import parse_period
from ioc.formulas import flood
from ioc.places import get_places
from ioc.store import influxql

__all__ = [
    "DOMAIN_TITLES",
    "FOLDERS",
    "BoardSpec",
    "board_specs",
    "stale_after_s",
]

FOLDERS = {
    "national": Folder("ioc-national", "IOC · Quốc gia / National", "national"),
    "province": Folder("ioc-province", "IOC · Tỉnh / Province", "province"),
    "domain": Folder("ioc-domains", "IOC · Lĩnh vực / Domains", "domains"),
    "operations": Folder("ioc-operations", "IOC · Vận hành / Operations", "operations"),
}
"""One folder per board family (provisioned and pushed alike)."""

DOMAIN_TITLES: Mapping[str, tuple[str, str]] = {
    "air-quality": ("Chất lượng không khí", "Air quality"),
    "water": ("Mực nước và báo động lũ", "River stage and flood alarms"),
    "traffic": ("Giao thông", "Traffic"),
    "public-services": ("Dịch vụ công (Quyết định 766)", "Public services (Decision 766)"),
    "digital-transformation": (
        "Chuyển đổi số (Nghị quyết 57)",
        "Digital transformation (Resolution 57)",
    ),
    "data": ("Dữ liệu và nguồn cấp", "Data sharing and feeds"),
}
"""Titles of the catalog's ``dashboard`` keys; a key not listed here is titled by its key."""

LEVEL_UNITS = {
    "ward": "nguồn / sources",
    "province": "phường, xã và đơn vị cấp tỉnh / wards and province-level units",
    "nation": "tỉnh / provinces",
}
"""What the coverage of a value at each level counts (docs/catalog.md, roll-ups)."""

REFRESH = "1m"
TIMEZONE = "Asia/Ho_Chi_Minh"
VARIABLE = "province"


def stale_after_s(indicator: Indicator) -> int:
    """Age after which a value no longer counts as current: 1.5 periods (the engine writes a
    period's value a few seconds after it ends, so a current value is at most one period old)."""
    return parse_period(indicator.period) * 3 // 2


def domain_title(key: str) -> tuple[str, str]:
    """The (Vietnamese, English) title of a domain board."""
    return DOMAIN_TITLES.get(key, (key, key))


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """A board before serialisation: key, family, title and its SDK builder."""

    key: str
    family: str
    title: str
    builder: dashboard_builders.Dashboard
    province: str | None = None
    annotations: tuple[Mapping[str, Any], ...] = ()
    """Annotation queries added after Grafana's built-in one (the SDK's type has no InfluxQL)."""


class _Queries:
    """The board's query text, all from :mod:`ioc.store.influxql`."""

    def __init__(self, db: str) -> None:
        self.db = db

    def latest(
        self,
        indicator: Indicator,
        level: str,
        *,
        group_by: Sequence[str] = (),
        in_province: bool = True,
        fields: Sequence[str] = (),
        current: bool = False,
    ) -> str:
        filters = ["indicator", "level"] + (["province"] if in_province else [])
        text = (
            influxql.latest_detail_values(
                self.db, fields=fields, filters=filters, group_by=group_by
            )
            if fields
            else influxql.latest_values(self.db, filters=filters, group_by=group_by)
        )
        return influxql.grafana_query(
            text,
            literals={"indicator": indicator.key, "level": level},
            variables={"province": VARIABLE} if in_province else None,
            window_s=stale_after_s(indicator) if current else None,
        )

    def series(
        self,
        indicator: Indicator,
        level: str,
        *,
        field: str = "value",
        function: str = "mean",
        group_by: Sequence[str] = (),
        in_province: bool = True,
    ) -> str:
        filters = ["indicator", "level"] + (["province"] if in_province else [])
        text = influxql.field_series(
            self.db,
            function=function,
            field=field,
            interval_s=parse_period(indicator.period),
            filters=filters,
            group_by=group_by,
        )
        return influxql.grafana_query(
            text,
            literals={"indicator": indicator.key, "level": level},
            variables={"province": VARIABLE} if in_province else None,
            interval=True,
        )

    def provinces(self) -> str:
        return influxql.grafana_query(
            influxql.tag_values(self.db, "province", filters=("level",)),
            literals={"level": "province"},
            timed=False,
        )


class _Layout:
    """Panel ids in order of appearance (Grafana requires them unique within a board)."""

    def __init__(self, board: dashboard_builders.Dashboard) -> None:
        self.board = board
        self.next_id = 1

    def row(self, title: str) -> None:
        self.board.with_row(dashboard_builders.Row(title).id(self._id()))

    def add(self, panel: cog_builder.Builder[dashboard_models.Panel]) -> None:
        self.board.with_panel(panel.id(self._id()))  # type: ignore[attr-defined]

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _board(title: str, description: str, tags: Sequence[str]) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .description(description)
        .tags(["ioc", *tags])
        .refresh(REFRESH)
        .time("now-24h", "now")
        .timezone(TIMEZONE)
        .readonly()
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
    )


def _province_variable(
    queries: _Queries, province: str | None
) -> cog_builder.Builder[dashboard_models.VariableModel]:
    if province is not None:
        return dashboard_builders.ConstantVariable(VARIABLE).value(
            province
        )  # Grafana never shows a constant variable
    del queries
    provinces = get_places().provinces()
    return (
        dashboard_builders.CustomVariable(VARIABLE)
        .label("Tỉnh / Province")
        .description("The 34 provinces by name; the value is the official code (01 Hà Nội...)")
        .values(", ".join(f"{p.name} : {p.code}" for p in provinces))
        .current(
            dashboard_models.VariableOption(
                selected=True, text=provinces[0].name, value=provinces[0].code
            )
        )
    )


def _province_names() -> dict[str, str]:
    return {p.code: p.name for p in get_places().provinces()}


def _board_link(
    title: str, uid: str, *, include_vars: bool = True
) -> dashboard_builders.DashboardLink:
    return (
        dashboard_builders.DashboardLink(title)
        .type(dashboard_models.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .icon("dashboard")
        .tooltip(title)
        .tags([])
        .as_dropdown(False)
        .target_blank(False)
        .include_vars(include_vars)
        .keep_time(True)
    )


def _uid(key: str, province: str | None) -> str:
    return f"ioc-{key}" if province is None else f"ioc-{key}-{province}"


def _indicators_on_boards(catalog: Catalog) -> list[Indicator]:
    return [i for i in catalog.indicators.values() if i.dashboard is not None]


def _has_ward_sources(catalog: Catalog, indicator: Indicator) -> bool:
    """Whether a registered source the indicator reads (any, for live-ness) is in a ward: only
    then can it have ward values (departments' feeds belong to the province)."""
    registry = catalog.registry
    sources = registry.of_kind(indicator.kind) if indicator.kind else registry.sources
    return any(source.ward for source in sources)


def _device_kinds(catalog: Catalog) -> set[str]:
    return {k.key for k in catalog.kinds.values() if k.source_class.value == "device"}


# --- the boards ---------------------------------------------------------------------------


def national_overview(catalog: Catalog, db: str) -> BoardSpec:
    """Provinces ranked for every banded indicator, station maps, overdue tasks, silent feeds."""
    queries = _Queries(db)
    board = _board(
        "Tổng quan quốc gia",
        "National overview: provinces ranked for the key indicators (those with colour bands), "
        "stations on the map, overdue tasks and feeds that are stale or never connected.",
        ["wall", "national"],
    )
    layout = _Layout(board)
    wall = _uid("province-wall", None)
    link = f"/d/{wall}?var-{VARIABLE}=${{__data.fields.province}}&${{__url_time_range}}"
    layout.row("Xếp hạng tỉnh / Province rankings")
    for indicator in (i for i in _indicators_on_boards(catalog) if i.bands):
        layout.add(
            indicator_table(
                indicator.title_vi,
                f"{indicator.title_en}: latest province values, "
                + (
                    "best first."
                    if indicator.direction.value == "higher_is_better"
                    else "best (lowest) first."
                )
                + " Coverage counts "
                + LEVEL_UNITS["province"]
                + ". Click a province for its wall.",
                queries.latest(indicator, "province", group_by=("province",), in_province=False),
                indicator=indicator,
                columns={
                    "province": "Mã tỉnh / province code",
                    "value": f"{indicator.unit}",
                    "coverage": "Báo cáo / reporting",
                    "expected": "Đăng ký / registered",
                },
                descending=indicator.direction.value == "higher_is_better",
                width=8,
                link=link,
            )
        )
    devices = _device_kinds(catalog)
    mapped = [i for i in _indicators_on_boards(catalog) if i.bands and i.kind in devices]
    if mapped:
        layout.row("Bản đồ trạm / Stations")
        for indicator in mapped:
            layout.add(
                geomap_panel(
                    indicator,
                    queries.latest(
                        indicator,
                        "source",
                        group_by=("province", "source"),
                        in_province=False,
                        fields=("band", "latitude", "longitude"),
                    ),
                    title=f"{indicator.title_vi} — bản đồ trạm / stations",
                )
            )
    layout.row("Nhiệm vụ và nguồn dữ liệu / Tasks and feeds")
    overdue = catalog.indicators.get("tasks_overdue")
    if overdue is not None:
        layout.add(
            indicator_table(
                overdue.title_vi,
                "Overdue tasks per province (Resolution 57 registers), most first.",
                queries.latest(overdue, "province", group_by=("province",), in_province=False),
                indicator=overdue,
                columns={"province": "Mã tỉnh / province code", "value": "Quá hạn / overdue"},
                width=8,
                link=link,
            )
        )
    liveness = catalog.indicators.get("feed_live_share")
    if liveness is not None:
        for state in ("stale", "never_reported"):
            label = FEED_STATES[state][0]
            text = influxql.grafana_query(
                influxql.latest_state_counts(db, indicator_filters=("indicator", "level")),
                literals={"indicator": liveness.key, "level": "source", "state": state},
            )
            layout.add(
                indicator_table(
                    f"Nguồn cấp {label}",
                    f"Registered feeds whose latest live-ness state is '{state}', per province.",
                    text,
                    indicator=liveness,
                    columns={"province": "Mã tỉnh / province code", "count": label},
                    sort_by="count",
                    gauge_column=None,
                    width=8,
                    link=link,
                )
            )
    return BoardSpec("national-overview", "national", "Tổng quan quốc gia", board)


def province_wall(catalog: Catalog, db: str, province: str | None = None) -> BoardSpec:
    """One province: headline stats, air, river stage, traffic, services, tasks, feeds, alerts."""
    queries = _Queries(db)
    name = _province_names()[province] if province else "$province"
    title = "Tường tỉnh" + (f" — {name}" if province else "")
    board = _board(
        title,
        "Province wall: every indicator of the catalog for one province (template variable "
        "'province'), drill-down to the domain boards and their ward tables.",
        ["wall", "province"],
    ).with_variable(_province_variable(queries, province))
    domains = sorted({i.dashboard for i in _indicators_on_boards(catalog) if i.dashboard})
    for key in domains:
        board = board.link(
            _board_link(
                f"{domain_title(key)[0]} (phường, xã / wards)", _uid(f"domain-{key}", province)
            )
        )
    layout = _Layout(board)
    layout.row("Chỉ số chính / Headline")
    for indicator in _indicators_on_boards(catalog):
        domain = indicator.dashboard or ""
        layout.add(
            indicator_stat(
                indicator,
                queries.latest(indicator, "province", group_by=("province",), current=True),
                place="the province",
                links=[
                    _board_link(
                        f"{domain_title(domain)[0]} →",
                        _uid(f"domain-{domain}", province),
                    )
                ],
            )
        )
    indicators = catalog.indicators
    if "vn_aqi" in indicators:
        aqi = indicators["vn_aqi"]
        layout.row("Không khí / Air")
        layout.add(
            series_panel(
                f"{aqi.title_vi} — theo trạm / by station",
                "Hourly VN_AQI of every station of the province in the official colours.",
                [
                    InfluxQLTarget(
                        queries.series(aqi, "source", function="max", group_by=("source",)),
                        result_format="time_series",
                        alias="$tag_source",
                    )
                ],
                unit=unit_of(aqi.unit),
                indicator=aqi,
            )
        )
        layout.add(
            indicator_table(
                f"{aqi.title_vi} — trạm / stations",
                "Latest VN_AQI of every station, the dominant pollutant and its band.",
                queries.latest(aqi, "source", group_by=("source",), fields=("band", "dominant")),
                indicator=aqi,
                columns={
                    "source": "Trạm / station",
                    "value": aqi.unit,
                    "dominant": "Chất chính / dominant",
                    "band": "Mức / band",
                },
                mappings={b.key: b.title_vi for b in aqi.bands},
            )
        )
    if "flood_level" in indicators:
        layout.row("Mực nước / River stage")
        layout.add(_river_stage(catalog, queries, indicators["flood_level"]))
        level = indicators["flood_level"]
        layout.add(
            indicator_table(
                f"{level.title_vi} — trạm / stations",
                "Latest alarm level of every gauge, its stage and the margin to the level that "
                "decided it.",
                queries.latest(
                    level, "source", group_by=("source",), fields=("station", "stage", "margin")
                ),
                indicator=level,
                columns={
                    "source": "Trạm / gauge",
                    "value": "Cấp / level",
                    "station": "Trạm thủy văn / station",
                    "stage": "Mực nước / stage",
                    "margin": "Cách mức / margin",
                },
            )
        )
    if "traffic_volume" in indicators:
        traffic = indicators["traffic_volume"]
        layout.row("Giao thông / Traffic")
        layout.add(
            series_panel(
                traffic.title_vi,
                "Vehicles counted per hour in the province, and per counter.",
                [
                    InfluxQLTarget(
                        queries.series(traffic, "province", function="sum"),
                        result_format="time_series",
                        alias="Tỉnh / province",
                    ),
                    InfluxQLTarget(
                        queries.series(traffic, "source", function="sum", group_by=("source",)),
                        ref_id="B",
                        result_format="time_series",
                        alias="$tag_source",
                    ),
                ],
                unit=unit_of(traffic.unit),
                width=24,
                bars=True,
            )
        )
    services = [i for i in _indicators_on_boards(catalog) if i.domain == "services"]
    if services:
        layout.row("Dịch vụ công (766) / Public services")
        for indicator in services:
            layout.add(
                indicator_gauge(
                    indicator,
                    queries.latest(indicator, "province", group_by=("province",), current=True),
                    place="the province",
                )
            )
    tasks = catalog.kinds.get("tasks")
    if tasks is not None:
        layout.row("Nhiệm vụ (Nghị quyết 57) / Tasks")
        completion = indicators.get("task_completion_rate")
        if completion is not None:
            layout.add(
                indicator_gauge(
                    completion,
                    queries.latest(completion, "province", group_by=("province",), current=True),
                    place="the province",
                    width=8,
                )
            )
        text = influxql.grafana_query(
            influxql.latest_readings(
                db,
                tasks.measurement,
                fields=("tasks_total", "tasks_completed", "tasks_on_schedule", "tasks_overdue"),
                filters=("province",),
                group_by=("source",),
            ),
            variables={"province": VARIABLE},
        )
        if completion is not None:
            layout.add(
                indicator_table(
                    "Sổ nhiệm vụ / Task registers",
                    "Each register's latest report: total, completed, on schedule and overdue "
                    "(against the target of completing every task).",
                    text,
                    indicator=completion,
                    columns={
                        "source": "Sổ / register",
                        "tasks_total": "Tổng / total",
                        "tasks_completed": "Hoàn thành / completed",
                        "tasks_on_schedule": "Đúng tiến độ / on schedule",
                        "tasks_overdue": "Quá hạn / overdue",
                    },
                    sort_by="tasks_overdue",
                    gauge_column=None,
                    width=16,
                )
            )
    if "feed_live_share" in indicators:
        live = indicators["feed_live_share"]
        layout.row("Nguồn dữ liệu / Feeds")
        layout.add(
            feed_states(
                queries.series(
                    live, "source", field="state", function="last", group_by=("source",)
                ),
                title="Trạng thái nguồn cấp / feed states",
            )
        )
        layout.add(
            indicator_table(
                "Nguồn cấp không sống / feeds not live",
                "Every feed's latest state and the age of its last record (seconds since it "
                "last reported; empty when it never did).",
                queries.latest(live, "source", group_by=("source",), fields=("state", "age_s")),
                indicator=live,
                columns={
                    "source": "Nguồn / feed",
                    "state": "Trạng thái / state",
                    "age_s": "Tuổi / age",
                    "value": "Sống / live %",
                },
                mappings={k: v[0] for k, v in FEED_STATES.items()},
                sort_by="value",
                descending=False,
                width=24,
            )
        )
    layout.row("Cảnh báo / Alerts")
    layout.add(
        alert_table(
            "Thay đổi trạng thái cảnh báo / alert state changes",
            "Every change of an alert of the province (pending, firing, resolved, no data), "
            "newest first, as `ioc alerts` wrote it (derived.alert). Active alerts, silences and "
            "notifications are in Alertmanager (data source ioc-alertmanager) and "
            "GET /api/v1/alerts.",
            influxql.grafana_query(
                influxql.alert_history(db, province=True, limit=200),
                variables={"province": VARIABLE},
            ),
        )
    )
    annotation = {
        "name": "Cảnh báo / alerts",
        "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "target": {
            "refId": "Anno",
            "rawQuery": True,
            "resultFormat": "table",
            "query": influxql.grafana_query(
                influxql.alert_annotations(db), variables={"province": VARIABLE}
            ),
        },
        "mappings": {
            "text": {"source": "field", "value": "text"},
            "tags": {"source": "field", "value": "state"},
        },
    }
    key = "province-wall"
    return BoardSpec(key, "province", title, board, province, (annotation,))


def _river_stage(
    catalog: Catalog, queries: _Queries, level: Indicator
) -> cog_builder.Builder[dashboard_models.Panel]:
    """Each gauge's hourly highest stage, with its own station's alarm levels I-III as lines."""
    overrides: list[tuple[Sequence[str], Mapping[str, dict[str, Any]]]] = []
    colours = [band.colour for band in level.bands[1:]] or ["#FADE2A", "#FF9830", "#F2495C"]
    for source in catalog.registry.of_kind(level.kind):
        if source.station is None:
            continue
        station = flood.station_by_id(source.station)
        steps = [dashboard_models.Threshold(value=None, color="transparent")]
        for colour, mark in zip(
            colours, (station.bd_i, station.bd_ii, station.bd_iii), strict=False
        ):
            if mark is not None:
                steps.append(dashboard_models.Threshold(value=float(mark), color=colour))
        overrides.append(
            (
                [source.id],
                {
                    "thresholds": {"mode": "absolute", "steps": steps},
                    "custom.thresholdsStyle": {"mode": "dashed"},
                },
            )
        )
    return series_panel(
        "Mực nước và báo động I-III / stage against alarm levels",
        "Hourly highest stage of every gauge (in its station's unit) with the station's alarm "
        "levels I, II and III (Decision 05/2020/QĐ-TTg) as dashed lines.",
        [
            InfluxQLTarget(
                queries.series(
                    level, "source", field="stage", function="max", group_by=("source",)
                ),
                result_format="time_series",
                alias="$tag_source",
            )
        ],
        unit="none",
        width=24,
        overrides=overrides,
    )


def domain_board(catalog: Catalog, db: str, key: str, province: str | None = None) -> BoardSpec:
    """Every indicator of one ``dashboard`` key: province stat, trend, and the ward table."""
    queries = _Queries(db)
    title_vi, title_en = domain_title(key)
    name = _province_names()[province] if province else None
    title = title_vi + (f" — {name}" if name else "")
    board = _board(
        title,
        f"{title_en}: each indicator of the catalog shown on this board, for the chosen "
        "province, its trend against the nation, and the latest value of every ward.",
        ["domain", key],
    ).with_variable(_province_variable(queries, province))
    board = board.link(_board_link("Tường tỉnh / province wall", _uid("province-wall", province)))
    layout = _Layout(board)
    devices = _device_kinds(catalog)
    for indicator in (i for i in _indicators_on_boards(catalog) if i.dashboard == key):
        layout.row(f"{indicator.title_vi} / {indicator.title_en}")
        layout.add(
            indicator_stat(
                indicator,
                queries.latest(indicator, "province", group_by=("province",), current=True),
                place="the province",
                width=6,
                height=8,
            )
        )
        function = "max" if indicator.rollup.value == "max" else "mean"
        layout.add(
            series_panel(
                f"{indicator.title_vi} — xu hướng / trend",
                f"{indicator.title_en} of the province and of the nation, per period.",
                [
                    InfluxQLTarget(
                        queries.series(indicator, "province", function=function),
                        result_format="time_series",
                        alias="Tỉnh / province",
                    ),
                    InfluxQLTarget(
                        queries.series(indicator, "nation", function=function, in_province=False),
                        ref_id="B",
                        result_format="time_series",
                        alias="Cả nước / nation",
                    ),
                ],
                unit=unit_of(indicator.unit),
                indicator=indicator,
                width=18,
                height=8,
            )
        )
        # a department's feed has no ward: the province is its smallest place
        if _has_ward_sources(catalog, indicator):
            layout.add(
                indicator_table(
                    f"{indicator.title_vi} — phường, xã / wards",
                    f"Latest {indicator.title_en} of every ward of the province; coverage counts "
                    + LEVEL_UNITS["ward"]
                    + ".",
                    queries.latest(indicator, "ward", group_by=("ward",)),
                    indicator=indicator,
                    columns={
                        "ward": "Phường, xã / ward",
                        "value": indicator.unit,
                        "coverage": "Báo cáo / reporting",
                        "expected": "Đăng ký / registered",
                    },
                    descending=indicator.direction.value != "higher_is_better",
                    width=12 if indicator.kind in devices and indicator.bands else 24,
                )
            )
        if indicator.kind in devices and indicator.bands:
            layout.add(
                geomap_panel(
                    indicator,
                    queries.latest(
                        indicator,
                        "source",
                        group_by=("source",),
                        fields=("band", "latitude", "longitude"),
                    ),
                    title=f"{indicator.title_vi} — bản đồ / map",
                    height=9,
                )
            )
    return BoardSpec(f"domain-{key}", "domain", title, board, province)


@dataclass(frozen=True, slots=True)
class _SelfMetric:
    """One self-metric series of the operations board (measurements of policy ``ops``)."""

    measurement: str
    field: str
    function: str
    unit: str
    rate: bool = False
    group_by: str | None = None


def operations(catalog: Catalog, db: str) -> BoardSpec:
    """The system itself: ingest rate, rejects by reason, spool, lag, write latency, engine."""
    del catalog
    board = _board(
        "Vận hành hệ thống",
        "Operations: the collectors' and the engine's own figures (retention policy ops).",
        ["operations"],
    )
    layout = _Layout(board)

    def ops(title: str, description: str, metric: _SelfMetric) -> None:
        text = influxql.grafana_query(
            influxql.self_metric_series(
                db,
                metric.measurement,
                function=metric.function,
                field=metric.field,
                interval_s=60,
                group_by=metric.group_by,
                rate=metric.rate,
            ),
            interval=True,
        )
        alias = f"$tag_{metric.group_by}" if metric.group_by else metric.field
        layout.add(
            series_panel(
                title,
                description,
                [InfluxQLTarget(text, result_format="time_series", alias=alias)],
                unit=metric.unit,
                width=8,
            )
        )

    collector = "collector"
    layout.row("Thu nhận / Ingest")
    ops(
        "Tin nhận / messages received",
        "MQTT messages per second, per collector.",
        _SelfMetric("ingest", "received", "last", "reqps", rate=True, group_by=collector),
    )
    ops(
        "Số đọc / readings stored",
        "Readings per second, per collector.",
        _SelfMetric("ingest", "readings", "last", "reqps", rate=True, group_by=collector),
    )
    layout.add(
        series_panel(
            "Thư lỗi theo lý do / rejects by reason",
            "Dead letters per interval by reason (docs/payloads.md, docs/ingest.md).",
            [
                InfluxQLTarget(
                    influxql.grafana_query(
                        influxql.dead_letter_counts(db, interval_s=60), interval=True
                    ),
                    result_format="time_series",
                    alias="$tag_reason",
                )
            ],
            unit="short",
            width=8,
            bars=True,
        )
    )
    ops(
        "Hàng đợi đĩa / spool size",
        "Bytes waiting in the collector's local spool.",
        _SelfMetric("ingest", "spool_bytes", "max", "bytes", group_by=collector),
    )
    ops(
        "Độ trễ xác nhận / ack lag",
        "Age of the oldest unacknowledged message.",
        _SelfMetric("ingest", "lag_ms", "max", "ms", group_by=collector),
    )
    ops(
        "Thời gian ghi / write latency",
        "Duration of the last InfluxDB write.",
        _SelfMetric("ingest", "write_ms", "max", "ms", group_by=collector),
    )
    layout.row("Tính toán / Engine")
    ops(
        "Chu kỳ / cycle time",
        "Seconds one engine cycle took.",
        _SelfMetric("engine", "cycle_seconds", "max", "s"),
    )
    ops(
        "Độ trễ / engine lag",
        "How far the newest computed period is behind now.",
        _SelfMetric("engine", "lag_seconds", "max", "s"),
    )
    ops(
        "Điểm ghi / points written",
        "Derived points written per cycle.",
        _SelfMetric("engine", "points_written", "max", "short"),
    )
    layout.row("Cảnh báo / Alerts")
    ops(
        "Cảnh báo đang kích hoạt / firing",
        "Alert instances firing after each evaluation, per evaluator (ioc alerts run).",
        _SelfMetric("alerts", "firing", "last", "short", group_by="source"),
    )
    ops(
        "Chu kỳ đánh giá / evaluation cycle",
        "Seconds one evaluation of every rule took, per evaluator.",
        _SelfMetric("alerts", "cycle_seconds", "max", "s", group_by="source"),
    )
    ops(
        "Thay đổi / state changes",
        "Alert state changes per evaluation, per evaluator.",
        _SelfMetric("alerts", "changes", "max", "short", group_by="source"),
    )
    return BoardSpec("operations", "operations", "Vận hành hệ thống", board)


def board_specs(catalog: Catalog, db: str, *, province: str | None = None) -> list[BoardSpec]:
    """Every board; with ``province``, the boards of that province's own organisation."""
    domains = sorted({i.dashboard for i in _indicators_on_boards(catalog) if i.dashboard})
    boards = [province_wall(catalog, db, province)]
    boards.extend(domain_board(catalog, db, key, province) for key in domains)
    if province is None:
        boards = [national_overview(catalog, db), *boards, operations(catalog, db)]
    return boards
