"""The Grafana alerting export: Grafana 11.4's published format, staleness, the very same queries.

Grafana cannot be installed here, so the export is proven the way the walls are:

* every group and rule validates against the definitions of Grafana 11.4's HTTP API description
  (``shared/data/grafana/grafana-http-api-11.4.swagger2.json``), both as the provisioning file
  (``AlertingFileExport`` ...) and as the API objects Grafana's file reader turns it into
  (``ProvisionedAlertRule``, ``AlertRuleGroup``), with unknown keys refused;
* the expressions are evaluated here as Grafana evaluates them, so a rule fires and recovers at
  exactly the evaluator's levels;
* every rule's InfluxQL, with Grafana's macros expanded by dashboards/expand.py, runs against
  the real InfluxDB and returns what ``Evaluator.observe`` sees in the same data at the same time.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator

from alerts.evaluate import Evaluator, Observation
from alerts.grafana import (
    EXPORT_FILE,
    FOLDER,
    check_export,
    grafana_rule_groups,
    render_export,
    rule_uid,
    write_export,
)
from alerts.rules import RuleKind, catalog_rules, load_rules
from alerts.state import StateStore
from dashboards.expand import expand
from dashboards.model import DATASOURCE_UID
from ioc.catalog import INDICATORS_FILE, SOURCES_FILE, Catalog, get_catalog, load_catalog
from ioc.engine.values import IndicatorValue, Level
from ioc.settings import Settings
from ioc.store import Point, Store, time_ns

from ..conftest import SHARED

SWAGGER = SHARED / "data" / "grafana" / "grafana-http-api-11.4.swagger2.json"
DATASOURCES = EXPORT_FILE.parents[1] / "provisioning" / "datasources" / "influxdb.yaml"
# prometheus/common model.ParseDuration, what Grafana's file reader applies to `for`/`interval`.
PROM_DURATION = (
    r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
)
FOLDER_UID = "ioc-alerts"  # any folder uid: the file names its folder by title
ON = date(2026, 12, 4)


# --- Grafana 11.4's definitions ---------------------------------------------------------------


def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = json.loads(SWAGGER.read_text(encoding="utf-8"))["definitions"]
    return definitions


def _closed(definitions: dict[str, Any], *names: str) -> None:
    """No key beyond the definition's properties (a misspelt key is an error, not ignored)."""
    for name in names:
        definitions[name]["additionalProperties"] = False


def file_validator(name: str) -> Draft4Validator:
    """The provisioning file's form of the export definitions, strict.

    Two adjustments, both from Grafana's file reader (pkg/services/provisioning/alerting/
    rules_types.go): ``for`` and ``interval`` are Prometheus duration strings there (the
    swagger's ``Duration`` describes the Go type, an int64), and the fields the reader refuses
    to do without are required.
    """
    definitions = _definitions()
    _closed(
        definitions,
        "AlertingFileExport",
        "AlertRuleGroupExport",
        "AlertRuleExport",
        "AlertQueryExport",
        "RelativeTimeRangeExport",
    )
    duration = {"type": "string", "pattern": PROM_DURATION}
    definitions["AlertRuleExport"]["properties"]["for"] = duration
    definitions["AlertRuleGroupExport"]["properties"]["interval"] = duration
    definitions["AlertingFileExport"]["required"] = ["apiVersion", "groups"]
    definitions["AlertRuleGroupExport"]["required"] = [
        "orgId",
        "name",
        "folder",
        "interval",
        "rules",
    ]
    definitions["AlertRuleExport"]["required"] = ["uid", "title", "condition", "data"]
    definitions["AlertRuleExport"]["properties"]["data"]["minItems"] = 1
    definitions["AlertQueryExport"]["required"] = [
        "refId",
        "datasourceUid",
        "model",
        "relativeTimeRange",
    ]
    definitions["RelativeTimeRangeExport"]["required"] = ["from", "to"]
    return Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": definitions})


def api_validator(name: str) -> Draft4Validator:
    """The API definitions as published (their own ``required``), with unknown keys refused."""
    definitions = _definitions()
    _closed(definitions, "ProvisionedAlertRule", "AlertRuleGroup", "AlertQuery")
    definitions["RelativeTimeRange"]["additionalProperties"] = False
    definitions["RelativeTimeRange"]["required"] = ["from", "to"]
    return Draft4Validator({"$ref": f"#/definitions/{name}", "definitions": definitions})


def errors(validator: Draft4Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def as_provisioned(group: Mapping[str, Any], rule: Mapping[str, Any]) -> dict[str, Any]:
    """The file rule as Grafana's file reader maps it to the API's ``ProvisionedAlertRule``."""
    query_keys = ("refId", "queryType", "datasourceUid", "relativeTimeRange", "model")
    rule_keys = (
        "uid",
        "title",
        "condition",
        "noDataState",
        "execErrState",
        "for",
        "labels",
        "annotations",
        "isPaused",
    )
    provisioned = {key: rule[key] for key in rule_keys if key in rule}
    provisioned["data"] = [
        {"queryType": ""} | {key: q[key] for key in query_keys if key in q} for q in rule["data"]
    ]
    return provisioned | {
        "orgID": group["orgId"],
        "folderUID": FOLDER_UID,
        "ruleGroup": group["name"],
    }


def seconds(duration: str) -> int:
    units = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhms])", duration))


# --- Grafana's expressions, evaluated as Grafana does -----------------------------------------


def grafana_math(expression: str, values: Mapping[str, float]) -> float:
    """A math expression of the subset the export uses: ``$X``, numbers, ``+ -``, comparisons."""
    tree = ast.parse(re.sub(r"\$([A-Za-z]\w*)", r"\1", expression), mode="eval")
    compare: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
        ast.GtE: operator.ge,
        ast.Gt: operator.gt,
        ast.Lt: operator.lt,
        ast.LtE: operator.le,
    }

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return value(node.body)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
            left, right = value(node.left), value(node.right)
            return left + right if isinstance(node.op, ast.Add) else left - right
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            test = compare[type(node.ops[0])]
            return 1.0 if test(value(node.left), value(node.comparators[0])) else 0.0
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        raise ValueError(f"not a Grafana math expression of the export: {expression!r}")

    return value(tree)


def threshold(evaluator: Mapping[str, Any], value: float) -> bool:
    """Grafana 11.4's threshold functions (expr/threshold.go): gt, lt, within/outside range."""
    params = [float(p) for p in evaluator["params"]]
    kind = evaluator["type"]
    if kind == "gt":
        return value > params[0]
    if kind == "lt":
        return value < params[0]
    if kind == "within_range":
        return params[0] < value < params[1]
    if kind == "outside_range":
        return value < params[0] or value > params[1]
    raise AssertionError(f"{kind!r} is not a threshold function of Grafana 11.4")


def verdicts(rule: Mapping[str, Any], values: Mapping[str, float]) -> tuple[bool, bool]:
    """(fires when not yet firing, recovers when firing) for one instance's reduced values."""
    steps = {q["refId"]: q["model"] for q in rule["data"]}
    condition = steps[rule["condition"]]
    assert condition["type"] == "threshold"
    known = dict(values)
    source = condition["expression"]
    if steps[source]["type"] == "math":
        known[source] = grafana_math(steps[source]["expression"], values)
    (first,) = condition["conditions"]
    fires = threshold(first["evaluator"], known[source])
    recovers = "unloadEvaluator" in first and threshold(first["unloadEvaluator"], known[source])
    return fires, recovers


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return get_catalog()


@pytest.fixture(scope="module")
def document(catalog: Catalog) -> dict[str, Any]:
    return grafana_rule_groups(load_rules(catalog, None), catalog, "ioc", on=ON)


def all_rules(document: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for group in document["groups"]:
        for rule in group["rules"]:
            yield group, rule


# --- (a) Grafana's published format -----------------------------------------------------------


def test_the_export_validates_against_grafana_11_4_definitions(document: dict[str, Any]) -> None:
    committed = yaml.safe_load(EXPORT_FILE.read_text(encoding="utf-8"))
    assert errors(file_validator("AlertingFileExport"), committed) == []
    assert errors(file_validator("AlertingFileExport"), document) == []
    rule_check, group_check = api_validator("ProvisionedAlertRule"), api_validator("AlertRuleGroup")
    problems = []
    for group in document["groups"]:
        assert errors(file_validator("AlertRuleGroupExport"), group) == []
        provisioned = [as_provisioned(group, rule) for rule in group["rules"]]
        for rule in provisioned:
            problems += [f"{rule['title']}: {e}" for e in errors(rule_check, rule)]
        api_group = {
            "title": group["name"],
            "folderUid": FOLDER_UID,
            "interval": seconds(group["interval"]),
            "rules": provisioned,
        }
        problems += [f"group {group['name']}: {e}" for e in errors(group_check, api_group)]
    assert problems == []


@pytest.mark.parametrize(
    ("where", "change", "expected"),
    [
        ("rule", lambda r: r.pop("condition"), "'condition' is a required property"),
        ("rule", lambda r: r.update(noDataState="KeepLast"), "'KeepLast' is not one of"),
        ("rule", lambda r: r.update(folderUid="x"), "Additional properties are not allowed"),
        ("rule", lambda r: r.update(uid="ioc/flood"), "does not match"),
        ("rule", lambda r: r.update(uid="x" * 41), "is too long"),
        ("rule", lambda r: r.update(labels={"n": 1}), "1 is not of type 'string'"),
        ("rule", lambda r: r["data"][0].pop("datasourceUid"), "'datasourceUid' is a required"),
        ("query", lambda q: q["relativeTimeRange"].update({"from": "10m"}), "is not of type"),
        ("group", lambda g: g.update(interval=60), "60 is not of type 'string'"),
    ],
)
def test_the_validation_rejects_what_grafana_would_reject(
    document: dict[str, Any], where: str, change: Any, expected: str
) -> None:
    broken = copy.deepcopy(document)
    group = broken["groups"][0]
    rule = group["rules"][0]
    change({"rule": rule, "query": rule["data"][0], "group": group}[where])
    found = errors(file_validator("AlertingFileExport"), broken)
    found += errors(api_validator("ProvisionedAlertRule"), as_provisioned(group, rule))
    assert any(expected in e for e in found), found


def test_rules_are_well_formed_for_grafana(document: dict[str, Any]) -> None:
    """What Grafana checks beyond the schema: references, uniqueness, interpolation, time ranges."""
    provisioned_uid = re.search(r"uid:\s*(\S+)", DATASOURCES.read_text(encoding="utf-8"))
    assert provisioned_uid is not None and provisioned_uid.group(1) == DATASOURCE_UID
    titles: set[str] = set()
    uids: set[str] = set()
    for group, rule in all_rules(document):
        assert group["folder"] == FOLDER and group["interval"] == "1m"
        assert rule["title"] not in titles, "Grafana 11.4: titles are unique in a folder"
        assert rule["uid"] not in uids
        titles.add(rule["title"])
        uids.add(rule["uid"])
        # Grafana expands $VAR in these fields from its environment (annotations and query
        # models are read raw): none may contain a dollar.
        interpolated = [rule["uid"], rule["title"], rule["condition"], group["name"]]
        assert not any("$" in text for text in [*interpolated, *rule["labels"].values()])
        assert "alertname" not in rule["labels"]  # Grafana sets it from the title
        refs = [q["refId"] for q in rule["data"]]
        assert len(refs) == len(set(refs)) and rule["condition"] in refs
        for query in rule["data"]:
            model = query["model"]
            assert model["refId"] == query["refId"]
            if query["datasourceUid"] == "__expr__":
                assert model["datasource"] == {"type": "__expr__", "uid": "__expr__"}
                used = re.findall(r"\$(\w+)", model["expression"]) or [model["expression"]]
                assert set(used) <= set(refs[: refs.index(query["refId"])]), model
                continue
            assert query["datasourceUid"] == DATASOURCE_UID == model["datasource"]["uid"]
            assert model["rawQuery"] is True and model["resultFormat"] == "time_series"
            window = query["relativeTimeRange"]
            assert window["from"] > window["to"] >= 0
            # Only Grafana's macro is left: every bound parameter was given a literal.
            assert re.findall(r"\$\w+", model["query"]) == ["$timeFilter"]


def test_uids_are_stable_short_and_distinct() -> None:
    assert rule_uid("flood-alarm:critical") == "ioc-flood-alarm-critical"
    long_a, long_b = "a" * 60 + ":warning", "a" * 60 + ":critical"
    assert len(rule_uid(long_a)) == 40 and rule_uid(long_a) != rule_uid(long_b)
    assert rule_uid(long_a) == rule_uid(long_a)
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", rule_uid("feed-silent:warning 01-xã/ô"))


def test_conditions_fire_and_recover_at_the_evaluators_levels(
    catalog: Catalog, document: dict[str, Any]
) -> None:
    """Grafana 11.4 has no ``>=``: the exported expressions must still be exact at the edges."""
    rules = {rule.key: rule for rule in load_rules(catalog, None)}
    checked = 0
    for _, exported in all_rules(document):
        rule = rules[exported["labels"]["rule"]]
        if rule.kind is RuleKind.NO_DATA:
            assert exported["noDataState"] == "Alerting"
            assert verdicts(exported, {"B": 1.7e12}) == (False, False)  # a record: not silent
            continue
        if rule.kind is RuleKind.EXCEEDANCE:
            limit = float(exported["annotations"]["limit"])
            rule = dataclasses.replace(rule, threshold=limit, clear=0.95 * limit)
        for value in {
            rule.threshold,
            rule.clear,
            rule.threshold - 0.01,
            rule.threshold + 0.01,
            rule.clear - 0.01,
            rule.clear + 0.01,
            (rule.threshold + rule.clear) / 2,
        }:
            values = {"B": value}
            if rule.kind is RuleKind.INCREASE:
                values = {"B": value + 5.0, "F": 5.0}
            assert verdicts(exported, values) == (rule.breaches(value), rule.clears(value)), (
                rule.key,
                value,
            )
            checked += 1
        assert exported["for"] == ("0s" if rule.for_s == 0 else f"{int(rule.for_s // 60)}m")
    assert checked > 50
    flood = next(r for _, r in all_rules(document) if r["title"] == "flood-alarm:critical")
    assert verdicts(flood, {"B": 3.0}) == (True, False)  # exactly level III fires


def test_qcvn_limits_are_those_in_force_on_the_export_day(catalog: Catalog) -> None:
    rules = [r for r in catalog_rules(catalog) if r.key == "qcvn05-exceedance-pm25:warning"]

    def limit(on: date) -> str:
        (group,) = grafana_rule_groups(rules, catalog, "ioc", on=on)["groups"]
        return str(group["rules"][0]["annotations"]["limit"])

    assert limit(date(2025, 12, 31)) == "50"
    assert limit(date(2026, 1, 1)) == "45"


# --- (b) the committed file --------------------------------------------------------------------


def test_the_committed_file_is_a_fresh_export_and_check_notices_a_stale_one(
    catalog: Catalog, tmp_path: Path
) -> None:
    rules = load_rules(catalog, None)
    assert check_export(rules, catalog, "ioc") is None
    assert EXPORT_FILE.read_text(encoding="utf-8") == render_export(
        grafana_rule_groups(rules, catalog, "ioc")
    )
    copy_path = tmp_path / "ioc-rules.yaml"
    assert check_export(rules, catalog, "ioc", path=copy_path) == f"{copy_path} is missing"
    assert write_export(rules, catalog, "ioc", path=copy_path) == copy_path
    assert check_export(rules, catalog, "ioc", path=copy_path) is None
    fewer = [r for r in rules if r.alertname != "flood-alarm"]
    assert check_export(fewer, catalog, "ioc", path=copy_path) is not None
    assert render_export(grafana_rule_groups(rules, catalog, "ioc")) == copy_path.read_text(
        encoding="utf-8"
    )  # deterministic


# --- (d) a new indicator with an alert key ------------------------------------------------------


def test_a_new_catalog_indicator_with_an_alert_key_is_exported_without_code_changes(
    tmp_path: Path,
) -> None:
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
alert = "pm10-high"
reference = "test indicator"
"""
    indicators = tmp_path / "indicators.toml"
    indicators.write_text(INDICATORS_FILE.read_text(encoding="utf-8") + extra, encoding="utf-8")
    catalog = load_catalog(indicators, SOURCES_FILE)
    document = grafana_rule_groups(catalog_rules(catalog), catalog, "ioc", on=ON)
    (group,) = [g for g in document["groups"] if g["name"] == "pm10-high"]
    assert [r["title"] for r in group["rules"]] == ["pm10-high:critical", "pm10-high:warning"]
    critical = group["rules"][0]
    assert "'pm10_hourly'" in critical["data"][0]["model"]["query"]
    assert 'GROUP BY "province", "ward", "source"' in critical["data"][0]["model"]["query"]
    assert critical["labels"]["alertgroup"] == "pm10-high"
    assert "Bụi PM10 trung bình giờ" in critical["annotations"]["summary_vi"]
    assert errors(file_validator("AlertingFileExport"), document) == []


# --- (c) the same rows as the evaluator, from the real InfluxDB --------------------------------

REGISTRY = """
[[source]]
id = "01-air-hoan-kiem"
kind = "air"
province = "01"
ward = "00070"
name = "Trạm quan trắc không khí Hoàn Kiếm"
expected_interval = "5m"

[[source]]
id = "46-water-kim-long"
kind = "water"
province = "46"
ward = "19810"
name = "Trạm thủy văn Kim Long (sông Hương)"
expected_interval = "10m"
station = "huong-kim-long"

[[source]]
id = "46-dvc"
kind = "service"
province = "46"
name = "Hệ thống thủ tục hành chính Huế"
department = "Văn phòng UBND tỉnh"
expected_interval = "15m"

[[source]]
id = "46-tasks"
kind = "tasks"
province = "46"
name = "Hệ thống theo dõi nhiệm vụ Huế"
department = "Văn phòng UBND tỉnh"
expected_interval = "1h"

[[source]]
id = "01-sxd"
kind = "data"
province = "01"
name = "Sở Xây dựng Hà Nội"
department = "Sở Xây dựng"
expected_interval = "1h"
"""


def _indicator(
    store: Store,
    at: datetime,
    indicator: str,
    unit: str,
    *,
    level: Level,
    value: float,
    **place: str,
) -> None:
    point = IndicatorValue(
        indicator=indicator,
        unit=unit,
        level=level,
        time_ns=time_ns(at),
        value=value,
        band=None,
        **place,  # type: ignore[arg-type]
    )
    store.write([point.to_point()], rp="derived")


def _raw(
    store: Store, at: datetime, measurement: str, fields: dict[str, float], **tags: str
) -> None:
    received = {"received_ms": int(at.timestamp() * 1000)}
    store.write([Point(measurement, {**fields, **received}, time_ns(at), tags)])


def seed(store: Store, now: datetime) -> None:
    """A few indicator values and raw records: breaches, quiet places, stale and silent feeds."""

    def minutes(count: int) -> datetime:
        return now - timedelta(minutes=count)

    air = {"province": "01", "ward": "00070", "source": "01-air-hoan-kiem"}
    kim_long = {"province": "46", "ward": "19810", "source": "46-water-kim-long"}
    _indicator(store, minutes(10), "vn_aqi", "AQI", level=Level.SOURCE, value=150, **air)
    _indicator(store, minutes(20), "flood_level", "level", level=Level.SOURCE, value=3, **kim_long)
    _indicator(
        store,
        minutes(30),
        "dossier_on_time_rate",
        "%",
        level=Level.PROVINCE,
        value=70,
        province="46",
    )
    _indicator(
        store,
        minutes(30),
        "dossier_on_time_rate",
        "%",
        level=Level.PROVINCE,
        value=99,
        province="01",
    )
    _indicator(
        store, minutes(5), "feed_live_share", "%", level=Level.PROVINCE, value=40, province="46"
    )
    _indicator(
        store, minutes(40), "feed_live_share", "%", level=Level.PROVINCE, value=95, province="01"
    )
    tasks = {"province": "46", "source": "46-tasks"}
    _indicator(store, minutes(10), "tasks_overdue", "tasks", level=Level.SOURCE, value=3, **tasks)
    _indicator(
        store, minutes(24 * 60 + 10), "tasks_overdue", "tasks", level=Level.SOURCE, value=1, **tasks
    )
    _indicator(
        store, minutes(10), "tasks_overdue", "tasks", level=Level.PROVINCE, value=3, province="46"
    )
    for age, pm25 in ((2, 55.0), (30, 60.0), (300, 50.0), (23 * 60, 55.0), (25 * 60, 500.0)):
        _raw(store, minutes(age), "air", {"pm25": pm25, "no2": 40.0, "pm10": 30.0}, **air)
    _raw(store, minutes(10), "service", {"dossiers_received": 4.0}, province="46", source="46-dvc")
    _raw(store, minutes(30), "water", {"water_level": 2.1}, **kim_long)
    _raw(store, minutes(5), "tasks", {"tasks_overdue": 3.0}, **tasks)


def grafana_rows(store: Store, query: Mapping[str, Any], now: datetime) -> dict[Any, float]:
    """What Grafana's query returns, keyed by its instance labels (empty tags dropped, as
    Grafana's Alertmanager drops empty label values), one reduced number per instance."""
    window = query["relativeTimeRange"]
    text = expand(
        query["model"]["query"],
        start=now - timedelta(seconds=window["from"]),
        end=now - timedelta(seconds=window["to"]),
        interval="1s",
        variables={},
    )
    found: dict[Any, float] = {}
    for series in store.query(text):
        labels = frozenset((k, v) for k, v in series.tags.items() if v)
        numbers = [v for row in series.rows() for k, v in row.items() if k != "time"]
        assert len(series.columns) == 2, series.columns  # one value column: one series in Grafana
        if numbers and numbers[-1] is not None:
            found[labels] = float(numbers[-1])
    return found


def evaluator_rows(seen: Mapping[str, Observation]) -> dict[Any, float]:
    return {frozenset(o.labels.items()): float(o.value or 0) for o in seen.values()}


@pytest.mark.services
def test_every_rule_query_returns_what_the_evaluator_sees(
    own_database: Settings, tmp_path: Path
) -> None:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    catalog = load_catalog(INDICATORS_FILE, registry)
    rules = {rule.key: rule for rule in catalog_rules(catalog)}
    now = datetime.now(UTC).replace(microsecond=0)
    document = grafana_rule_groups(list(rules.values()), catalog, own_database.influx_db)
    settings = dataclasses.replace(own_database, var_dir=tmp_path / "var")
    with Store(settings) as store:
        seed(store, now)
        state = StateStore(settings.alerts_state_dir / "state.sqlite")
        evaluator = Evaluator(settings, catalog, list(rules.values()), store, state)
        firing: set[str] = set()
        for _, exported in all_rules(document):
            rule = evaluator.effective(rules[exported["labels"]["rule"]], now)
            seen = evaluator.observe(rule, now)
            queries = {q["refId"]: q for q in exported["data"] if q["datasourceUid"] != "__expr__"}
            if rule.kind is RuleKind.NO_DATA:
                labels = {
                    k: exported["labels"][k]
                    for k in ("province", "ward", "source")
                    if k in exported["labels"]
                }
                (observation,) = [o for o in seen.values() if dict(o.labels) == labels]
                has_data = bool(grafana_rows(store, queries["A"], now))
                assert has_data == (observation.value == 0.0), labels  # no data: Alerting
                if not has_data:
                    firing.add(exported["title"])
                continue
            rows = grafana_rows(store, queries["A"], now)
            values = {key: {"B": value} for key, value in rows.items()}
            if rule.kind is RuleKind.INCREASE:
                before = grafana_rows(store, queries["E"], now)
                rows = {k: v - before[k] for k, v in rows.items() if k in before}
                values = {k: {"B": v + before[k], "F": before[k]} for k, v in rows.items()}
            assert rows == evaluator_rows(seen), exported["title"]
            for key, reduced in values.items():
                fires, _ = verdicts(exported, reduced)
                assert fires == rule.breaches(rows[key]), (exported["title"], key)
                if fires:
                    firing.add(exported["title"])
    assert firing == {
        "air-quality-poor:warning",  # AQI 150 at Hoàn Kiếm
        "flood-alarm:critical",  # level III at Kim Long
        "flood-alarm:warning",
        "dossiers-late:critical",  # 70 % on time in Huế
        "dossiers-late:warning",
        "feed-stale:critical",  # 40 % of Huế's feeds live
        "feed-stale:warning",
        "tasks-overdue:warning",
        "tasks-overdue-increase:warning",  # 1 → 3 in a day
        "qcvn05-exceedance-pm25:warning",  # 24 h mean 55 µg/m³ > 45
        "feed-silent:warning 46-water-kim-long",  # last record 30 min ago, expected every 10
        "feed-silent:warning 01-sxd",  # never reported
    }
