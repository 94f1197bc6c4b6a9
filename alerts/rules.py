"""Alert rules: generated from the catalog, plus an operator's own rules file (TOML).

A rule watches one kind of observation and fires per *instance* (one place or source):

* ``threshold``: an indicator's latest value at one level (source, ward or province) against a
  threshold, with a separate clear level (hysteresis) and a ``for`` duration;
* ``increase``: an indicator's latest value minus its value ``window`` ago (overdue tasks that
  grew);
* ``exceedance``: the mean of a raw metric over its QCVN 05:2023 averaging period against the
  limit in force that day (ioc/formulas/qcvn05.py);
* ``no_data``: a registered feed whose last record is older than its expected interval × grace,
  or that never reported: "no data" is its own rule, per feed.

Catalog rules: each indicator with an ``alert`` key gives one threshold rule per severity of its
``thresholds``; the side follows its ``direction`` (lower is better: fires at or above the
threshold). Worst-of indicators (roll-up ``max``: AQI, flood level) are watched per station
(level ``source``, labelled with its ward and province), the others per province. The clear
level is the threshold moved back by 2 % of the indicator's range (5 % of the threshold when the
range is open), so a value hovering at the threshold does not flap. Both severities of one alert
share the alertname, so Alertmanager's inhibition keeps the warning quiet while the critical
fires. Operators add or override rules in ``IOC_ALERTS_RULES_FILE`` (docs/alerts.md).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ioc.catalog.loader import parse_period
from ioc.catalog.model import Catalog, Direction, Indicator, Rollup
from ioc.errors import CatalogError
from ioc.formulas.qcvn05 import AveragingPeriod, Parameter

__all__ = [
    "EXCEEDANCES",
    "LIVENESS_GRACE",
    "Rule",
    "RuleKind",
    "catalog_rules",
    "load_operator_rules",
    "load_rules",
]

Side = Literal["above", "below"]
Severity = Literal["warning", "critical"]
LIVENESS_GRACE = 2.0
"""A feed is silent after expected interval × this (the engine's live-ness uses the same)."""
DEFAULT_FOR_S = 120.0
"""How long a condition must hold before a catalog rule fires (one evaluation is not enough)."""

EXCEEDANCES: Mapping[str, tuple[Parameter, AveragingPeriod]] = MappingProxyType(
    {
        "pm25": (Parameter.PM2_5, AveragingPeriod.HOUR_24),
        "pm10": (Parameter.PM10, AveragingPeriod.HOUR_24),
        "no2": (Parameter.NO2, AveragingPeriod.HOUR_1),
        "so2": (Parameter.SO2, AveragingPeriod.HOUR_1),
        "o3": (Parameter.O3, AveragingPeriod.HOUR_1),
        "co": (Parameter.CO, AveragingPeriod.HOUR_1),
    }
)
"""Metrics of the catalog (µg/m³) checked against QCVN 05:2023, with their averaging period."""


class RuleKind(Enum):
    """What a rule observes."""

    THRESHOLD = "threshold"
    INCREASE = "increase"
    EXCEEDANCE = "exceedance"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule; ``key`` is unique, ``alertname`` is the label Alertmanager groups by."""

    key: str
    alertname: str
    kind: RuleKind
    severity: Severity
    title_vi: str
    title_en: str
    indicator: str | None = None
    level: str = "province"
    side: Side = "above"
    threshold: float = 0.0
    clear: float = 0.0
    for_s: float = DEFAULT_FOR_S
    window_s: float = 0.0
    unit: str = ""
    metric: str | None = None
    provinces: tuple[str, ...] = ()
    source: str = "catalog"
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def breaches(self, value: float) -> bool:
        """The firing condition: at or above the threshold, or strictly below it."""
        return value >= self.threshold if self.side == "above" else value < self.threshold

    def clears(self, value: float) -> bool:
        """The clear condition: back past the clear level (hysteresis)."""
        return value < self.clear if self.side == "above" else value >= self.clear

    def watches(self, province: str | None) -> bool:
        """Whether an instance in ``province`` is evaluated (empty ``provinces``: all)."""
        return not self.provinces or province in self.provinces

    @property
    def condition(self) -> str:
        """The condition as text: ``value >= 101 (clears < 91)``."""
        if self.kind is RuleKind.NO_DATA:
            return f"no record for longer than expected interval × {LIVENESS_GRACE:g}"
        what = {
            RuleKind.THRESHOLD: "value",
            RuleKind.INCREASE: f"increase over {self.window_s:g} s",
            RuleKind.EXCEEDANCE: f"mean {self.metric}",
        }[self.kind]
        fire, clear = (">=", "<") if self.side == "above" else ("<", ">=")
        if self.kind is RuleKind.EXCEEDANCE and not self.threshold:
            return f"{what} >= the QCVN 05:2023 limit of the day (clears < 95 % of it)"
        return f"{what} {fire} {self.threshold:g} (clears {clear} {self.clear:g})"


def _clear_level(indicator: Indicator, threshold: float, side: Side) -> float:
    if indicator.minimum is not None and indicator.maximum is not None:
        margin = 0.02 * (indicator.maximum - indicator.minimum)
    else:
        margin = 0.05 * abs(threshold) or 1.0
    return threshold - margin if side == "above" else threshold + margin


def _side(indicator: Indicator) -> Side:
    return "above" if indicator.direction is Direction.LOWER_IS_BETTER else "below"


def catalog_rules(catalog: Catalog) -> tuple[Rule, ...]:
    """The rules the catalog implies: thresholds, increases, QCVN exceedances, feed silence."""
    rules: list[Rule] = []
    for indicator in catalog.indicators.values():
        if indicator.alert is None:
            continue
        side = _side(indicator)
        level = "source" if indicator.rollup is Rollup.MAX else "province"
        for severity in ("warning", "critical"):
            if severity not in indicator.thresholds:
                continue
            threshold = float(indicator.thresholds[severity])
            rules.append(
                Rule(
                    key=f"{indicator.alert}:{severity}",
                    alertname=indicator.alert,
                    kind=RuleKind.THRESHOLD,
                    severity=severity,
                    title_vi=indicator.title_vi,
                    title_en=indicator.title_en,
                    indicator=indicator.key,
                    level=level,
                    side=side,
                    threshold=threshold,
                    clear=_clear_level(indicator, threshold, side),
                    unit=indicator.unit,
                )
            )
        if indicator.rollup is Rollup.SUM and side == "above" and "warning" in indicator.thresholds:
            # A count that should stay at zero (overdue tasks): also say when it grows.
            rules.append(
                Rule(
                    key=f"{indicator.alert}-increase:warning",
                    alertname=f"{indicator.alert}-increase",
                    kind=RuleKind.INCREASE,
                    severity="warning",
                    title_vi=f"{indicator.title_vi} tăng",
                    title_en=f"{indicator.title_en} increased",
                    indicator=indicator.key,
                    level="source",
                    threshold=1.0,
                    clear=1.0,
                    for_s=0.0,
                    window_s=86_400.0,
                    unit=indicator.unit,
                )
            )
    for metric, (parameter, period) in EXCEEDANCES.items():
        if metric not in catalog.metrics:
            continue
        window = 86_400.0 if period is AveragingPeriod.HOUR_24 else 3_600.0
        rules.append(
            Rule(
                key=f"qcvn05-exceedance-{metric}:warning",
                alertname="qcvn05-exceedance",
                kind=RuleKind.EXCEEDANCE,
                severity="warning",
                title_vi=f"Vượt QCVN 05:2023 ({parameter.value}, trung bình {period.value})",
                title_en=f"QCVN 05:2023 exceeded ({parameter.value}, {period.value} mean)",
                metric=metric,
                level="source",
                window_s=window,
                unit=catalog.metric(metric).unit,
                labels=MappingProxyType({"parameter": metric, "averaging": period.value}),
            )
        )
    rules.append(
        Rule(
            key="feed-silent:warning",
            alertname="feed-silent",
            kind=RuleKind.NO_DATA,
            severity="warning",
            title_vi="Nguồn dữ liệu không cập nhật",
            title_en="Feed silent (no data)",
            level="source",
            for_s=0.0,
        )
    )
    return tuple(rules)


# --- the operator's rules file ---------------------------------------------------------------


class _OperatorRule(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,62}$"))
    indicator = fields.String(required=True)
    level = fields.String(
        load_default="province", validate=validate.OneOf(["source", "ward", "province"])
    )
    above = fields.Float(load_default=None, allow_nan=False)  # fires at or above
    below = fields.Float(load_default=None, allow_nan=False)  # fires strictly below
    clear = fields.Float(load_default=None, allow_nan=False)
    for_ = fields.String(data_key="for", load_default="2m")
    severity = fields.String(
        load_default="warning", validate=validate.OneOf(["warning", "critical"])
    )
    provinces = fields.List(fields.String(validate=validate.Regexp(r"^\d{2}$")), load_default=[])
    title_vi = fields.String(load_default=None)
    title_en = fields.String(load_default=None)

    @validates_schema
    def _one_side(self, data: dict[str, Any], **_: Any) -> None:
        if (data["above"] is None) == (data["below"] is None):
            raise ValidationError("give exactly one of 'above' or 'below'", "above")
        threshold = data["above"] if data["above"] is not None else data["below"]
        clear = data["clear"]
        if clear is not None:
            if data["above"] is not None and clear > threshold:
                raise ValidationError(f"must not be above the threshold {threshold:g}", "clear")
            if data["below"] is not None and clear < threshold:
                raise ValidationError(f"must not be below the threshold {threshold:g}", "clear")


def _duration_s(text: str, where: str) -> float:
    if text.strip("0") in ("s", "m", "h", "d", ""):
        return 0.0  # "0s", "0m": fire at the first breach
    try:
        return float(parse_period(text))
    except (ValueError, KeyError, TypeError):
        raise CatalogError(
            f"{where}: for: {text!r} is not a duration such as 0s, 5m or 1h"
        ) from None


def load_operator_rules(path: Path, catalog: Catalog) -> tuple[Rule, ...]:
    """Rules from the operator's TOML file (``[[rule]]`` tables); every problem named at once."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"rule"})
    problems = [f"{path.name}: unknown table {name!r} (only [[rule]])" for name in unknown]
    rules: list[Rule] = []
    seen: set[str] = set()
    entries: Sequence[Any] = raw.get("rule", [])
    for number, entry in enumerate(entries, start=1):
        where = f"{path.name}: rule {entry.get('key', number)!r}" if isinstance(entry, dict) else ""
        try:
            data = _OperatorRule().load(entry)
        except ValidationError as error:
            messages = error.messages if isinstance(error.messages, dict) else {"": error.messages}
            for name, text in sorted(messages.items()):
                shown = " ".join(text) if isinstance(text, list) else str(text)
                problems.append(f"{where}: {name}: {shown}")
            continue
        indicator = catalog.indicators.get(data["indicator"])
        if indicator is None:
            known = ", ".join(sorted(catalog.indicators))
            problems.append(f"{where}: indicator: {data['indicator']!r} is not one of {known}")
            continue
        if data["key"] in seen:
            problems.append(f"{where}: key: used twice")
            continue
        seen.add(data["key"])
        side: Side = "above" if data["above"] is not None else "below"
        threshold = float(data[side])
        try:
            for_s = _duration_s(data["for_"], where)
        except CatalogError as error:
            problems.append(str(error))
            continue
        rules.append(
            Rule(
                key=f"{data['key']}:{data['severity']}",
                alertname=data["key"],
                kind=RuleKind.THRESHOLD,
                severity=data["severity"],
                title_vi=data["title_vi"] or indicator.title_vi,
                title_en=data["title_en"] or indicator.title_en,
                indicator=indicator.key,
                level=data["level"],
                side=side,
                threshold=threshold,
                clear=(
                    float(data["clear"])
                    if data["clear"] is not None
                    else _clear_level(indicator, threshold, side)
                ),
                for_s=for_s,
                unit=indicator.unit,
                provinces=tuple(data["provinces"]),
                source=str(path),
            )
        )
    if problems:
        raise CatalogError("invalid alert rules:\n  " + "\n  ".join(problems))
    return tuple(rules)


def load_rules(catalog: Catalog, rules_file: Path | None) -> tuple[Rule, ...]:
    """The catalog's rules, then the operator's (an operator rule with the same key replaces)."""
    rules = {rule.key: rule for rule in catalog_rules(catalog)}
    if rules_file is not None:
        for rule in load_operator_rules(rules_file, catalog):
            rules[rule.key] = rule
    return tuple(rules.values())
