"""The generated boards: valid against Grafana's JSON Schema, deterministic, from the catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dashboards import build
from dashboards.boards import stale_after_s
from dashboards.build import build_boards, build_playlists, build_province_boards, render
from dashboards.model import DATASOURCE_UID, Board
from ioc.catalog import Catalog, get_catalog
from ioc.catalog.loader import INDICATORS_FILE, SOURCES_FILE, load_catalog
from tests.conftest import SHARED

SCHEMAS = SHARED / "data" / "grafana" / "dashboard-jsonschema"
PANEL_SCHEMAS = ("stat", "gauge", "geomap", "table", "timeseries")
REPO = Path(__file__).resolve().parents[2]


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.jsonschema.json").read_text())
    return loaded


def panels_of(model: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel of a board, rows' panels included."""
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def schema_errors(board: Board) -> list[str]:
    """Errors of the board against the dashboard schema and of each panel's options and custom
    field config against its panel plugin's schema (where the shared folder has one)."""
    errors = [
        f"{board.uid}: {e.json_path}: {e.message}"
        for e in jsonschema.Draft7Validator(_schema("dashboard")).iter_errors(board.model)
    ]
    for panel in panels_of(board.model):
        if panel["type"] not in PANEL_SCHEMAS:
            continue
        plugin = _schema(panel["type"])
        parts = {
            "Options": panel.get("options", {}),
            "FieldConfig": panel.get("fieldConfig", {}).get("defaults", {}).get("custom"),
        }
        for definition, instance in parts.items():
            if instance is None or definition not in plugin["definitions"]:
                continue
            schema = {**plugin, "$ref": f"#/definitions/{definition}"}
            errors += [
                f"{board.uid} panel {panel['id']} {definition}: {e.json_path}: {e.message}"
                for e in jsonschema.Draft7Validator(schema).iter_errors(instance)
            ]
    return errors


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return get_catalog()


@pytest.fixture(scope="module")
def boards(catalog: Catalog) -> list[Board]:
    return build_boards(catalog, "ioc") + build_province_boards(catalog, "ioc", "46")


def test_every_board_validates_against_the_grafana_dashboard_schema(boards: list[Board]) -> None:
    assert len(boards) >= 10
    errors = [error for board in boards for error in schema_errors(board)]
    assert errors == []


def test_the_schema_check_rejects_what_grafana_would_reject(boards: list[Board]) -> None:
    """The validation is not vacuous: an unknown key, a bad threshold, a bad stat option fail."""
    board = boards[0]
    broken = json.loads(json.dumps(board.model))
    broken["panels"][1]["colour"] = "red"
    assert schema_errors(Board(board.key, board.uid, board.title, board.folder, broken))
    stat_board = next(b for b in boards if any(p["type"] == "stat" for p in panels_of(b.model)))
    broken = json.loads(json.dumps(stat_board.model))
    next(p for p in broken["panels"] if p["type"] == "stat")["options"]["textMode"] = "loud"
    errors = schema_errors(
        Board(stat_board.key, stat_board.uid, stat_board.title, stat_board.folder, broken)
    )
    assert any("textMode" in e for e in errors)


def test_boards_are_deterministic_with_stable_unique_uids_and_panel_ids(catalog: Catalog) -> None:
    first, second = build_boards(catalog, "ioc"), build_boards(catalog, "ioc")
    assert [render(b) for b in first] == [render(b) for b in second]
    uids = [b.uid for b in first] + [b.uid for b in build_province_boards(catalog, "ioc", "01")]
    assert len(set(uids)) == len(uids)
    assert all(len(uid) <= 40 for uid in uids)
    assert {b.uid for b in first} >= {
        "ioc-national-overview",
        "ioc-province-wall",
        "ioc-operations",
        "ioc-domain-air-quality",
    }
    for board in first:
        assert board.model["uid"] == board.uid
        ids = [p["id"] for p in panels_of(board.model)]
        assert len(ids) == len(set(ids)), board.uid
        assert render(board).endswith("}\n")


def test_every_panel_reads_the_one_provisioned_datasource(boards: list[Board]) -> None:
    provisioned = (REPO / "deploy/grafana/provisioning/datasources").glob("*.yaml")
    text = "\n".join(path.read_text() for path in provisioned)
    assert f"uid: {DATASOURCE_UID}" in text
    assert build.datasource_reference(boards) == {DATASOURCE_UID}
    for board in boards:
        for panel in panels_of(board.model):
            for target in panel.get("targets", []):
                assert target["rawQuery"] is True
                assert target["datasource"]["uid"] == DATASOURCE_UID


def test_one_domain_board_per_dashboard_key_with_each_of_its_indicators(
    catalog: Catalog, boards: list[Board]
) -> None:
    keys = {i.dashboard for i in catalog.indicators.values() if i.dashboard}
    by_uid = {b.uid: b for b in boards}
    for key in keys:
        board = by_uid[f"ioc-domain-{key}"]
        text = render(board)
        for indicator in (i for i in catalog.indicators.values() if i.dashboard == key):
            assert f"'{indicator.key}'" in text, (key, indicator.key)
            assert indicator.title_vi in text


def test_stats_use_catalog_bands_and_hide_stale_values(
    catalog: Catalog, boards: list[Board]
) -> None:
    wall = next(b for b in boards if b.uid == "ioc-province-wall")
    stats = [p for p in panels_of(wall.model) if p["type"] == "stat"]
    on_boards = [i for i in catalog.indicators.values() if i.dashboard]
    assert len(stats) == len(on_boards)
    for indicator, panel in zip(on_boards, stats, strict=True):
        assert panel["title"] == indicator.title_vi
        assert indicator.title_en in panel["description"]
        query = panel["targets"][0]["query"]
        assert f"now() - {stale_after_s(indicator)}s" in query
        assert "$timeFilter" not in query
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        if indicator.bands:
            assert [s["color"] for s in steps] == [b.colour for b in indicator.bands]
            assert [s["value"] for s in steps[1:]] == [b.low for b in indicator.bands[1:]]
        assert "stale" in panel["fieldConfig"]["defaults"]["noValue"]
        organize = panel["transformations"][0]["options"]["renameByName"]
        assert {"coverage", "expected", "Time"} <= set(organize)


def test_a_new_catalog_indicator_appears_on_its_board_without_code_changes(tmp_path: Path) -> None:
    extra = """
[[indicator]]
key = "pm10_hourly"
title_vi = "Bụi PM10 trung bình giờ"
title_en = "Hourly mean PM10"
domain = "air"
unit = "µg/m³"
min = 0
period = "1h"
method = "metric"
metric = "pm10"
aggregate = "mean"
kind = "air"
rollup = "max"
direction = "lower_is_better"
thresholds = { warning = 100, critical = 150 }
dashboard = "air-quality"
reference = "test indicator"

[[indicator]]
key = "noise_level"
title_vi = "Độ ồn"
title_en = "Noise level"
domain = "air"
unit = "dB"
min = 0
period = "1h"
method = "metric"
metric = "humidity"
aggregate = "mean"
kind = "air"
rollup = "max"
direction = "lower_is_better"
dashboard = "noise"
reference = "test indicator on a board of its own"
"""
    indicators = tmp_path / "indicators.toml"
    indicators.write_text(INDICATORS_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    catalog = load_catalog(indicators, SOURCES_FILE)
    boards = {b.uid: b for b in build_boards(catalog, "ioc")}
    air = render(boards["ioc-domain-air-quality"])
    assert "'pm10_hourly'" in air and "Bụi PM10 trung bình giờ" in air
    assert "ioc-domain-noise" in boards  # a new dashboard key is a new board
    assert "'noise_level'" in render(boards["ioc-domain-noise"])
    wall = render(boards["ioc-province-wall"])
    assert "'pm10_hourly'" in wall and "'noise_level'" in wall
    assert "'pm10_hourly'" not in render(build_boards(get_catalog(), "ioc")[2])


def test_province_boards_show_only_their_province(catalog: Catalog) -> None:
    own = build_province_boards(catalog, "ioc", "46")
    assert own and all(b.province == "46" and b.uid.endswith("-46") for b in own)
    assert not any(b.key in ("national-overview", "operations") for b in own)
    for board in own:
        [variable] = [v for v in board.model["templating"]["list"] if v["name"] == "province"]
        assert variable["type"] == "constant" and variable["query"] == "46"
        for link in board.model.get("links", []):
            assert link["url"].endswith("-46")
    playlists = build_playlists(build_boards(catalog, "ioc") + own)
    [national, hue] = playlists
    assert hue.province == "46" and set(hue.board_uids) == {b.uid for b in own}
    assert not set(national.board_uids) & set(hue.board_uids)
    assert "ioc-operations" not in national.board_uids


def test_committed_files_are_current_and_check_notices_a_stale_one(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boards = build_boards(catalog, "ioc")
    assert not build.check(boards).stale, "run `ioc dashboards build` and commit"
    # the same check on a copy: one edited file, one missing, one left over
    copy = tmp_path / "dashboards"
    provisioning = tmp_path / "ioc.yaml"
    monkeypatch.setattr(build, "DASHBOARDS_DIR", copy)
    monkeypatch.setattr(build, "PROVISIONING_FILE", provisioning)
    build.write(boards)
    assert not build.check(boards).stale
    (copy / boards[0].file_name).write_text("{}\n")
    (copy / boards[1].file_name).unlink()
    (copy / "domains" / "old-board.json").write_text("{}\n")
    staleness = build.check(boards)
    assert staleness.changed == (copy / boards[0].file_name,)
    assert staleness.missing == (copy / boards[1].file_name,)
    assert staleness.extra == (copy / "domains" / "old-board.json",)
    build.write(boards)
    assert not build.check(boards).stale
    assert not (copy / "domains" / "old-board.json").exists()


def test_ioc_dashboards_check_exits_zero_on_the_committed_files() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "dashboards", "check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
