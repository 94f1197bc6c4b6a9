"""The house panels: one function per kind of panel, built with grafana-foundation-sdk.

Every panel reads the one datasource (:data:`~dashboards.model.DATASOURCE_UID`) with InfluxQL
in raw mode; the query text comes from :mod:`ioc.store.influxql` through
:func:`~ioc.store.influxql.grafana_query`. Units, colours and titles come from the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import (
    gauge,
    geomap,
    stat,
    statetimeline,
    table,
    text,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog import variants as cog_variants
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import geomap as geomap_models
from grafana_foundation_sdk.models import text as text_models

from dashboards.model import DATASOURCE_UID
from ioc.catalog import Indicator

__all__ = [
    "DATASOURCE",
    "InfluxQLTarget",
    "alert_table",
    "feed_states",
    "geomap_panel",
    "indicator_gauge",
    "indicator_stat",
    "indicator_table",
    "note",
    "series_panel",
    "thresholds_of",
    "unit_of",
]

DATASOURCE = dashboard_models.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
NEUTRAL = "#5794F2"
STALE_TEXT = "Không có số liệu mới (quá hạn) / no current value (stale)"
ResultFormat = Literal["table", "time_series"]
PanelT = TypeVar("PanelT")
LEGEND = (
    common_builders.VizLegendOptions()
    .display_mode(common_models.LegendDisplayMode.LIST)
    .placement(common_models.LegendPlacement.BOTTOM)
    .show_legend(True)
    .calcs([])
)
TOOLTIP = (
    common_builders.VizTooltipOptions()
    .mode(common_models.TooltipDisplayMode.MULTI)
    .sort(common_models.SortOrder.DESCENDING)
)


class _Target(cog_variants.Dataquery):
    """An InfluxDB datasource target in raw InfluxQL mode (the SDK has no InfluxDB builder)."""

    def __init__(self, ref_id: str, query: str, result_format: ResultFormat, alias: str) -> None:
        self.ref_id, self.query, self.result_format, self.alias = (
            ref_id,
            query,
            result_format,
            alias,
        )

    def to_json(self) -> dict[str, Any]:
        """The target as Grafana stores it."""
        out: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class InfluxQLTarget(cog_builder.Builder[cog_variants.Dataquery]):
    """Builder of one raw InfluxQL target."""

    def __init__(
        self,
        query: str,
        *,
        ref_id: str = "A",
        result_format: ResultFormat = "table",
        alias: str = "",
    ) -> None:
        self._target = _Target(ref_id, query, result_format, alias)

    def build(self) -> cog_variants.Dataquery:
        """The target."""
        return self._target


def unit_of(indicator_unit: str) -> str:
    """Grafana's unit id for a catalog unit (``%`` is Grafana's ``percent``; others a suffix)."""
    return "percent" if indicator_unit == "%" else f"suffix: {indicator_unit}"


def thresholds_of(indicator: Indicator) -> dashboard_builders.ThresholdsConfig:
    """The indicator's colour bands as absolute thresholds (or its alert thresholds, or neutral)."""
    steps: list[dashboard_models.Threshold] = []
    if indicator.bands:
        steps.append(dashboard_models.Threshold(value=None, color=indicator.bands[0].colour))
        steps.extend(
            dashboard_models.Threshold(value=band.low, color=band.colour)
            for band in indicator.bands[1:]
        )
    else:
        steps.append(dashboard_models.Threshold(value=None, color=NEUTRAL))
        warning, critical = (
            indicator.thresholds.get("warning"),
            indicator.thresholds.get("critical"),
        )
        if indicator.direction.value == "lower_is_better":
            if warning is not None:
                steps.append(dashboard_models.Threshold(value=warning, color="#FF9830"))
            if critical is not None:
                steps.append(dashboard_models.Threshold(value=critical, color="#F2495C"))
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps(steps)
    )


def _describe(indicator: Indicator, extra: str = "") -> str:
    target = (
        f" Target {indicator.target:g} {indicator.unit}." if indicator.target is not None else ""
    )
    return (
        f"{indicator.title_en} ({indicator.unit}, per {indicator.period}).{target} {extra}".strip()
    )


def by_names(
    panel: PanelT, names: Sequence[str], properties: Mapping[str, dict[str, Any]]
) -> PanelT:
    """An override for the named fields. Matched with ``byNames`` and given only properties
    whose value is an object: the dashboard JSON Schema we validate against (the one of
    grafana-foundation-sdk) allows nothing else in an override."""
    return panel.with_override(  # type: ignore[attr-defined, no-any-return]
        dashboard_models.MatcherConfig(
            id_val="byNames", options={"mode": "include", "names": list(names)}
        ),
        [
            dashboard_models.DynamicConfigValue(id_val=key, value=value)
            for key, value in properties.items()
        ],
    )


TEXT_COLOUR = {"color": {"mode": "fixed", "fixedColor": "text"}}


def organize(
    columns: Mapping[str, str], *, keep_time: bool = False
) -> dashboard_models.DataTransformerConfig:
    """Grafana's ``organize`` transformation: only ``columns``, in order, under their names."""
    return dashboard_models.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": {} if keep_time else {"Time": True},
            "includeByName": dict.fromkeys(columns, True),
            "renameByName": dict(columns),
            "indexByName": {name: index for index, name in enumerate(columns)},
        },
    )


def indicator_stat(
    indicator: Indicator,
    query: str,
    *,
    place: str,
    width: int = 6,
    height: int = 5,
    links: Sequence[dashboard_builders.DashboardLink] = (),
) -> stat.Panel:
    """The latest value in the indicator's colours, with its coverage, its age and (max) origin.

    The query only returns a value young enough to be current (``grafana_query(window_s=...)``),
    so an old value shows the stale text instead of passing for a current one.
    """
    columns = {
        "value": indicator.unit,
        "coverage": "đang báo cáo / reporting",
        "expected": "đã đăng ký / registered",
        "origin": "trạm / station",
        "Time": "cập nhật / updated",
    }
    panel = (
        stat.Panel()
        .title(indicator.title_vi)
        .description(
            _describe(
                indicator,
                f"Latest value for {place}, with the units reporting of those registered "
                "(coverage), the time of the value and, for worst-of values, the station it "
                "comes from. Shows 'stale' when no value is younger than 1.5 periods.",
            )
        )
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query))
        .with_transformation(organize(columns, keep_time=True))
        .unit("none")
        .decimals(2)
        .thresholds(thresholds_of(indicator))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields("/.*/")
        )
        .no_value(STALE_TEXT)
        .span(width)
        .height(height)
    )
    panel = by_names(
        panel, [columns[k] for k in ("coverage", "expected", "origin", "Time")], TEXT_COLOUR
    )
    if links:
        panel = panel.links(list(links))
    return panel


def indicator_gauge(indicator: Indicator, query: str, *, place: str, width: int = 6) -> gauge.Panel:
    """The latest value against the indicator's range and target (e.g. a 766 score out of 20)."""
    panel = (
        gauge.Panel()
        .title(f"{indicator.title_vi} / tối đa {indicator.maximum:g}")
        .description(_describe(indicator, f"Latest value for {place} against its maximum."))
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query))
        .unit(unit_of(indicator.unit))
        .thresholds(thresholds_of(indicator))
        .reduce_options(
            common_builders.ReduceDataOptions()
            .calcs(["lastNotNull"])
            .values(False)
            .fields("/^value$/")
        )
        .no_value(STALE_TEXT)
        .show_threshold_markers(True)
        .show_threshold_labels(False)
        .span(width)
        .height(6)
    )
    if indicator.minimum is not None:
        panel = panel.min(indicator.minimum)
    if indicator.maximum is not None:
        panel = panel.max(indicator.maximum)
    return panel


def series_panel(
    title: str,
    description: str,
    targets: Sequence[InfluxQLTarget],
    *,
    unit: str,
    indicator: Indicator | None = None,
    width: int = 12,
    height: int = 8,
    overrides: Sequence[tuple[Sequence[str], Mapping[str, dict[str, Any]]]] = (),
    bars: bool = False,
) -> timeseries.Panel:
    """A time series; with ``indicator`` its bands colour the line and are drawn as areas."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(targets))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(2)
        .fill_opacity(10)
        .span_nulls(False)
        .draw_style(
            common_models.GraphDrawStyle.BARS if bars else common_models.GraphDrawStyle.LINE
        )
        .legend(LEGEND)
        .tooltip(TOOLTIP)
    )
    if indicator is not None:
        panel = panel.thresholds(thresholds_of(indicator)).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common_models.GraphThresholdsStyleMode.LINE_AND_AREA
                if indicator.bands
                else common_models.GraphThresholdsStyleMode.DASHED
            )
        )
        if indicator.minimum is not None:
            panel = panel.min(indicator.minimum)
    for names, properties in overrides:
        panel = by_names(panel, names, properties)
    return panel


def indicator_table(
    title: str,
    description: str,
    query: str,
    *,
    indicator: Indicator,
    columns: Mapping[str, str],
    mappings: Mapping[str, str] | None = None,
    sort_by: str = "value",
    descending: bool = True,
    width: int = 12,
    height: int = 9,
    link: str | None = None,
    gauge_column: str | None = "value",
) -> table.Panel:
    """A table of latest values, the ``gauge_column`` as a bar in the indicator's colours.

    ``columns`` maps the query's columns to their headers (Vietnamese / English); others are
    hidden. ``mappings`` turns text values (band and state keys) into words; ``link`` is the URL
    a click on a row opens (a drill-down).
    """
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query))
        .with_transformation(organize(columns))
        .frame_index(0)
        .show_header(True)
        .cell_height(common_models.TableCellHeight.SM)
        .unit("none")
        .thresholds(thresholds_of(indicator))
        .sort_by(
            [
                common_builders.TableSortByFieldState()
                .display_name(columns[sort_by])
                .desc(descending)
            ]
        )
        .span(width)
        .height(height)
    )
    if indicator.maximum is not None and gauge_column is not None:
        panel = panel.max(indicator.maximum)
    if indicator.minimum is not None and gauge_column is not None:
        panel = panel.min(indicator.minimum)
    if gauge_column is not None:
        panel = by_names(
            panel,
            [columns[gauge_column]],
            {"custom.cellOptions": {"type": "gauge", "mode": "basic", "valueDisplayMode": "text"}},
        )
    if mappings:
        panel = panel.mappings(
            [
                dashboard_models.ValueMap(
                    options={
                        key: dashboard_models.ValueMappingResult(text=text, index=index)
                        for index, (key, text) in enumerate(sorted(mappings.items()))
                    }
                )
            ]
        )
    if link is not None:
        panel = panel.data_links(
            [
                dashboard_builders.DashboardLink("Mở / open")
                .type(dashboard_models.DashboardLinkType.LINK)
                .url(link)
                .icon("external link")
                .tooltip("Mở / open")
                .tags([])
                .as_dropdown(False)
                .target_blank(False)
                .include_vars(False)
                .keep_time(True)
            ]
        )
    return panel


def geomap_panel(
    indicator: Indicator, query: str, *, title: str, width: int = 12, height: int = 12
) -> geomap.Panel:
    """Stations on a map at their registered location, each marker in its band's colour."""
    layer = (
        common_builders.MapLayerOptions()
        .type("markers")
        .name(indicator.title_en)
        .tooltip(True)
        .location(
            common_builders.FrameGeometrySource()
            .mode(common_models.FrameGeometrySourceMode.COORDS)
            .latitude("latitude")
            .longitude("longitude")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "value", "fixed": NEUTRAL},
                    "size": {"fixed": 8, "min": 4, "max": 16},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                    "opacity": 0.9,
                },
            }
        )
    )
    return (
        geomap.Panel()
        .title(title)
        .description(
            f"{indicator.title_en}: the latest value of every station at its registered location "
            "(registry `location`, written by the engine as latitude/longitude fields)."
        )
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query))
        .unit(unit_of(indicator.unit))
        .thresholds(thresholds_of(indicator))
        .color_scheme(
            dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.THRESHOLDS)
        )
        .view(geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(5))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(False))
        .basemap(common_builders.MapLayerOptions().type("default").name("Basemap"))
        .layers([layer])
        .tooltip(geomap.TooltipOptions().mode(geomap_models.TooltipMode.DETAILS))
        .span(width)
        .height(height)
    )


FEED_STATES = {
    "live": ("Sống / live", "#73BF69"),
    "stale": ("Quá hạn / stale", "#FF9830"),
    "never_reported": ("Chưa kết nối / never connected", "#F2495C"),
    "future_timestamp": ("Giờ tương lai / future time", "#B877D9"),
}
"""Live-ness states of ioc/formulas/liveness.py with their wall text and colour."""


def feed_state_mappings() -> list[dashboard_models.ValueMapping]:
    """Value mappings: each live-ness state to its text and colour."""
    return [
        dashboard_models.ValueMap(
            options={
                state: dashboard_models.ValueMappingResult(text=label, color=colour, index=index)
                for index, (state, (label, colour)) in enumerate(FEED_STATES.items())
            }
        )
    ]


def feed_states(
    query: str, *, title: str, width: int = 24, height: int = 10
) -> statetimeline.Panel:
    """Each feed's live-ness state over time: when it turned stale shows as a change of colour."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(
            "State of every registered feed per engine period (live / stale / never connected): "
            "the start of a colour is when that state began."
        )
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query, result_format="time_series", alias="$tag_source"))
        .mappings(feed_state_mappings())
        .color_scheme(dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.FIXED))
        .show_value(common_models.VisibilityMode.NEVER)
        .merge_values(True)
        .row_height(0.8)
        .legend(LEGEND)
        .tooltip(TOOLTIP)
        .span(width)
        .height(height)
    )


ALERT_STATES = {
    "firing": ("đang cảnh báo / firing", "red"),
    "pending": ("chờ xác nhận / pending", "orange"),
    "resolved": ("đã hết / resolved", "green"),
    "inactive": ("không / inactive", "text"),
}
"""The evaluator's states (alerts/state.py) as the wall shows them."""


def alert_table(title: str, description: str, query: str, *, width: int = 24) -> table.Panel:
    """Alert state changes, newest first: when, severity, state (coloured), summary, value."""
    columns = {
        "Time": "Thời điểm / time",
        "severity": "Mức / severity",
        "state": "Trạng thái / state",
        "previous": "Trước đó / before",
        "summary_vi": "Nội dung / summary",
        "value": "Giá trị / value",
        "source": "Nguồn / source",
    }
    mappings = {key: text for key, (text, _colour) in ALERT_STATES.items()}
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(InfluxQLTarget(query))
        .with_transformation(organize(columns, keep_time=True))
        .frame_index(0)
        .show_header(True)
        .cell_height(common_models.TableCellHeight.SM)
        .unit("none")
        .sort_by([common_builders.TableSortByFieldState().display_name(columns["Time"]).desc(True)])
        .mappings(
            [
                dashboard_models.ValueMap(
                    options={
                        key: dashboard_models.ValueMappingResult(
                            text=mappings[key], color=ALERT_STATES[key][1], index=index
                        )
                        for index, key in enumerate(sorted(ALERT_STATES))
                    }
                )
            ]
        )
        .span(width)
        .height(9)
    )
    return by_names(
        panel,
        [columns["state"]],
        {"custom.cellOptions": {"type": "color-text"}},
    )


def note(title: str, content: str, *, width: int = 24, height: int = 3) -> text.Panel:
    """A text panel (no query)."""
    return (
        text.Panel()
        .title(title)
        .content(content)
        .mode(text_models.TextMode.MARKDOWN)
        .span(width)
        .height(height)
    )
