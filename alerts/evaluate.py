"""The evaluator: observe every rule through the one query module, move each instance's state.

One cycle at ``now``:

1. **Observe.** Each rule's query (ioc/store/influxql.py) gives one observation per instance
   (place or source): its value, or none when nothing current exists.
2. **Transition** (per instance, remembered in :class:`~alerts.state.StateStore`)::

       inactive --breach--> pending --breach held `for`--> firing --clear--> resolved -> inactive
                               \\--no breach--> inactive        (between threshold and clear:
                                                              stays firing: hysteresis)

   A firing instance without a current value stays firing and says so ("no current value"):
   data that stops never resolves an alert; the ``feed-silent`` rule reports the silence.
3. **Deliver.** Every firing instance is posted to Alertmanager each cycle (it expires alerts
   not re-sent; identical label sets from two evaluators are one alert), a resolution once with
   ``endsAt`` (again next cycle if Alertmanager did not take it). Every state change is
   published retained on ``<IOC_ALERTS_TOPIC>/<province>/<alertname>/<severity>/<fingerprint>``
   and written to ``derived.alert`` for the walls' annotations and the API's history.

Nothing here raises into the loop: a failed query skips that rule for this cycle (counted), a
failed delivery is retried next cycle.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, Protocol

from alerts.rules import EXCEEDANCES, LIVENESS_GRACE, Rule, RuleKind
from alerts.state import AlertState, Instance, StateStore
from ioc.catalog.loader import parse_period
from ioc.catalog.model import Catalog
from ioc.errors import IocError
from ioc.formulas import qcvn05
from ioc.places import get_places
from ioc.settings import Settings
from ioc.store import Point, Store
from ioc.store.influxql import (
    ALERT_MEASUREMENT,
    last_received,
    latest_values,
    metric_means,
)

log = logging.getLogger(__name__)

__all__ = ["AlertSink", "Cycle", "Evaluator", "Notification", "Observation", "Transition"]

VIETNAM = timezone(timedelta(hours=7))
_NS = 1_000_000_000
STALE_PERIODS = 1.5
"""A value is current while younger than 1.5 of its indicator's periods (as on the walls)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """What a rule sees at one place: its labels, value (None: nothing current) and details."""

    labels: Mapping[str, str]
    value: float | None
    band: str | None = None
    detail: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert as Alertmanager's v2 API takes it."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    generator_url: str


class AlertSink(Protocol):
    """Where notifications go (Alertmanager's client)."""

    def post_notifications(self, notifications: Sequence[Notification]) -> None: ...


class StatePublisher(Protocol):
    """Where state changes are announced (the retained MQTT alert topics)."""

    def publish(self, topic: str, payload: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of one instance during a cycle."""

    rule: Rule
    instance: Instance
    previous: AlertState


@dataclass(frozen=True, slots=True)
class Cycle:
    """What one evaluation did."""

    at: datetime
    instances: int
    firing: int
    transitions: tuple[Transition, ...]
    failed_rules: tuple[str, ...]
    delivered: bool


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable short id of a label set (the alert's identity in topics and history)."""
    text = json.dumps(dict(sorted(labels.items())), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _place_labels(tags: Mapping[str, str]) -> dict[str, str]:
    return {key: tags[key] for key in ("province", "ward", "source") if tags.get(key)}


class Evaluator:
    """Evaluates every rule on a schedule and owns the alert state of one ``IOC_ALERTS_ID``."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        rules: Sequence[Rule],
        store: Store,
        state: StateStore,
        *,
        sink: AlertSink | None = None,
        publisher: StatePublisher | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.rules = {rule.key: rule for rule in rules}
        self.store = store
        self.state = state
        self.sink = sink
        self.publisher = publisher
        self.clock = clock
        self.instances = state.load()
        self.db = settings.influx_db

    # --- observing --------------------------------------------------------------------------

    def _window(self, now: datetime, seconds: float, back: float = 0.0) -> dict[str, int]:
        end = now - timedelta(seconds=back)
        return {
            "start": int((end - timedelta(seconds=seconds)).timestamp() * _NS),
            "end": int(end.timestamp() * _NS),
        }

    def _latest(self, rule: Rule, now: datetime, back: float = 0.0) -> dict[str, Observation]:
        indicator = self.catalog.indicator(rule.indicator or "")
        text = latest_values(
            self.db, filters=("indicator", "level"), group_by=("province", "ward", "source")
        )
        params: dict[str, Any] = {"indicator": indicator.key, "level": rule.level}
        params |= self._window(now, STALE_PERIODS * parse_period(indicator.period), back)
        found = {}
        for series in self.store.query(text, params):
            labels = _place_labels(series.tags)
            if not rule.watches(labels.get("province")):
                continue
            for row in series.rows():
                if row.get("value") is None:
                    continue
                detail = {
                    k: str(row[k])
                    for k in ("origin", "origin_ward", "coverage", "expected")
                    if row.get(k) is not None
                }
                found[fingerprint(labels)] = Observation(
                    MappingProxyType(labels),
                    float(row["value"]),
                    row.get("band"),
                    MappingProxyType(detail),
                )
        return found

    def _increase(self, rule: Rule, now: datetime) -> dict[str, Observation]:
        current = self._latest(rule, now)
        before = self._latest(rule, now, back=rule.window_s)
        found = {}
        for key, seen in current.items():
            then = before.get(key)
            if then is None or seen.value is None or then.value is None:
                continue
            detail = dict(seen.detail) | {"before": f"{then.value:g}", "now": f"{seen.value:g}"}
            found[key] = replace(
                seen, value=seen.value - then.value, detail=MappingProxyType(detail)
            )
        return found

    def _exceedance_limit(self, rule: Rule, now: datetime) -> float:
        parameter, period = EXCEEDANCES[rule.metric or ""]
        return qcvn05.limit(parameter, period, on=now.astimezone(VIETNAM).date())

    def _exceedance(self, rule: Rule, now: datetime) -> dict[str, Observation]:
        metric = rule.metric or ""
        found = {}
        for kind in self.catalog.kinds.values():
            if metric not in kind.metrics:
                continue
            text = metric_means(self.db, kind.measurement, field=metric)
            for series in self.store.query(text, self._window(now, rule.window_s)):
                labels = _place_labels(series.tags)
                if not labels.get("source") or not rule.watches(labels.get("province")):
                    continue
                for row in series.rows():
                    if row.get("value") is None:
                        continue
                    found[fingerprint(labels)] = Observation(
                        MappingProxyType(labels),
                        float(row["value"]),
                        detail=MappingProxyType({"readings": str(row.get("n"))}),
                    )
        return found

    def _silence(self, rule: Rule, now: datetime) -> dict[str, Observation]:
        """Per registered source: 1 when silent (no record within interval × grace), else 0."""
        registry = self.catalog.registry
        today = now.astimezone(VIETNAM).date()
        found: dict[str, Observation] = {}
        for kind in self.catalog.kinds.values():
            sources = [
                s
                for s in registry.of_kind(kind.key)
                if rule.watches(s.province)
                and (s.registered is None or date.fromisoformat(s.registered) <= today)
            ]
            if not sources:
                continue
            horizon = max(s.expected_interval_s for s in sources) * LIVENESS_GRACE
            last: dict[str, int] = {}
            text = last_received(self.db, kind.measurement)
            for series in self.store.query(text, self._window(now, horizon)):
                source_id = series.tags.get("source", "")
                for row in series.rows():
                    last[source_id] = int(row["time"])
            now_ns = int(now.timestamp() * _NS)
            for source in sources:
                labels = {"province": source.province, "source": source.id}
                if source.ward:
                    labels["ward"] = source.ward
                limit_s = source.expected_interval_s * LIVENESS_GRACE
                seen = last.get(source.id)
                silent = seen is None or (now_ns - seen) / _NS > limit_s
                detail = {
                    "kind": source.kind,
                    "expected_interval_s": str(source.expected_interval_s),
                }
                if source.department:
                    detail["department"] = source.department
                if seen is not None:
                    detail["last_record"] = datetime.fromtimestamp(seen / _NS, UTC).isoformat()
                found[fingerprint(labels)] = Observation(
                    MappingProxyType(labels),
                    1.0 if silent else 0.0,
                    detail=MappingProxyType(detail),
                )
        return found

    def observe(self, rule: Rule, now: datetime) -> dict[str, Observation]:
        """Every instance the rule sees at ``now``, by fingerprint of its place labels."""
        if rule.kind is RuleKind.THRESHOLD:
            return self._latest(rule, now)
        if rule.kind is RuleKind.INCREASE:
            return self._increase(rule, now)
        if rule.kind is RuleKind.EXCEEDANCE:
            return self._exceedance(rule, now)
        return self._silence(rule, now)

    # --- transitions ------------------------------------------------------------------------

    def effective(self, rule: Rule, now: datetime) -> Rule:
        """The rule with thresholds that depend on the day (QCVN limits) filled in."""
        if rule.kind is RuleKind.EXCEEDANCE:
            limit = self._exceedance_limit(rule, now)
            return replace(rule, threshold=limit, clear=0.95 * limit)
        if rule.kind is RuleKind.NO_DATA:
            return replace(rule, side="above", threshold=1.0, clear=1.0)
        return rule

    def _labels(self, rule: Rule, place: Mapping[str, str]) -> dict[str, str]:
        labels = {"alertname": rule.alertname, "severity": rule.severity, "rule": rule.key}
        if rule.indicator:
            labels["indicator"] = rule.indicator
            labels["level"] = rule.level
        labels |= dict(rule.labels) | dict(place)
        return labels

    def _value_text(self, rule: Rule, seen: Observation | None) -> tuple[str, str]:
        """The observed value in words, Vietnamese and English."""
        if seen is None or seen.value is None:
            return "không có số liệu mới", "no current value"
        if rule.kind is RuleKind.NO_DATA:
            interval = int(seen.detail.get("expected_interval_s", "0")) // 60
            if "last_record" not in seen.detail:
                return "chưa từng gửi dữ liệu", "never reported"
            if seen.value == 0:
                return "đã cập nhật lại", "reporting again"
            return (
                f"không có bản ghi mới (kỳ vọng mỗi {interval} phút)",
                f"no record for over {LIVENESS_GRACE:g} × {interval} min",
            )
        band_vi = band_en = ""
        if seen.band and rule.indicator:
            for candidate in self.catalog.indicator(rule.indicator).bands:
                if candidate.key == seen.band:
                    band_vi, band_en = f" ({candidate.title_vi})", f" ({candidate.title_en})"
        text = f"{round(seen.value, 2):g} {rule.unit}".strip()
        return text + band_vi, text + band_en

    def _annotations(
        self, rule: Rule, labels: Mapping[str, str], seen: Observation | None
    ) -> dict[str, str]:
        places = get_places()
        where: list[str] = []
        if labels.get("source"):
            source = self.catalog.registry.get(labels["source"])
            where.append(source.name if source else labels["source"])
        if labels.get("ward"):
            try:
                where.append(places.ward(labels["ward"]).name)
            except KeyError:
                where.append(labels["ward"])
        if labels.get("province"):
            try:
                where.append(places.province(labels["province"]).name)
            except KeyError:
                where.append(labels["province"])
        place = ", ".join(where) or "toàn quốc"
        value_vi, value_en = self._value_text(rule, seen)
        annotations = {
            "summary_vi": f"{rule.title_vi}: {value_vi} tại {place}",
            "summary_en": f"{rule.title_en}: {value_en} at {place}",
            "condition": rule.condition,
        }
        if seen is not None and seen.value is not None:
            annotations["value"] = f"{seen.value:g}"
        if seen is not None and seen.band:
            annotations["band"] = seen.band
        if seen is not None:
            annotations.update({k: v for k, v in seen.detail.items() if k != "expected_interval_s"})
        if labels.get("province"):
            annotations["wall"] = (
                f"{self.settings.wall_base_url}/d/ioc-province-wall?var-province="
                f"{labels['province']}"
            )
        return annotations

    def _step(
        self, rule: Rule, key: str, seen: Observation | None, now_s: float
    ) -> tuple[Instance | None, AlertState | None]:
        """The instance's next state; the previous state when it changed, else None."""
        old = self.instances.get((rule.key, key))
        previous = old.state if old else AlertState.INACTIVE
        if old is None and seen is None:
            return None, None
        labels = (
            dict(old.labels)
            if old is not None
            else self._labels(rule, seen.labels if seen is not None else {})
        )
        value = None if seen is None else seen.value
        annotations = self._annotations(rule, labels, seen)
        breach = value is not None and rule.breaches(value)
        clear = value is not None and rule.clears(value)
        state, since, active_at = (
            previous,
            (old.since if old else now_s),
            (old.active_at if old else None),
        )
        if previous in (AlertState.INACTIVE, AlertState.RESOLVED):
            if breach:
                state, since, active_at = AlertState.PENDING, now_s, now_s
            elif previous is AlertState.RESOLVED and not (old and old.undelivered):
                state, since = AlertState.INACTIVE, now_s
        if state is AlertState.PENDING:
            if not breach:
                state, since, active_at = AlertState.INACTIVE, now_s, None
            elif now_s - (active_at or now_s) >= rule.for_s:
                state, since = AlertState.FIRING, now_s
        elif state is AlertState.FIRING and clear:
            state, since = AlertState.RESOLVED, now_s
        undelivered = state is AlertState.RESOLVED and (
            previous is not AlertState.RESOLVED or bool(old and old.undelivered)
        )
        if state is AlertState.INACTIVE and previous is AlertState.INACTIVE:
            return None, None  # nothing to remember about a quiet place
        instance = Instance(
            rule=rule.key,
            fingerprint=key,
            labels=MappingProxyType(labels),
            state=state,
            since=since,
            active_at=active_at if state is not AlertState.INACTIVE else None,
            value=value,
            updated=now_s,
            undelivered=undelivered,
            annotations=MappingProxyType(annotations),
        )
        return instance, (previous if state is not previous else None)

    def _evaluate_rule(
        self,
        rule: Rule,
        now: datetime,
        keep: dict[tuple[str, str], Instance],
        forget: list[tuple[str, str]],
        transitions: list[Transition],
    ) -> bool:
        """Observe one rule and step its instances; False (state kept) if it cannot observe."""
        effective = self.effective(rule, now)
        mine = [key for (rule_key, key) in self.instances if rule_key == rule.key]
        try:
            seen = self.observe(effective, now)
        except (IocError, ValueError, KeyError) as error:
            log.warning("alert rule %s: cannot observe: %s", rule.key, error)
            keep.update({(rule.key, key): self.instances[(rule.key, key)] for key in mine})
            return False
        for key in sorted(set(seen) | set(mine)):
            instance, previous = self._step(effective, key, seen.get(key), now.timestamp())
            if instance is None or instance.state is AlertState.INACTIVE:
                if (rule.key, key) in self.instances:
                    forget.append((rule.key, key))  # only active instances are remembered
            else:
                keep[(rule.key, key)] = instance
            if instance is not None and previous not in (None, AlertState.RESOLVED):
                transitions.append(Transition(effective, instance, previous))
        return True

    def evaluate(self, now: datetime | None = None) -> Cycle:
        """One cycle: observe, transition, deliver, remember. Never raises for one bad rule."""
        now = now or self.clock()
        transitions: list[Transition] = []
        failed: list[str] = []
        keep: dict[tuple[str, str], Instance] = {}
        forget: list[tuple[str, str]] = []
        for rule in self.rules.values():
            if not self._evaluate_rule(rule, now, keep, forget, transitions):
                failed.append(rule.key)
        for rule_key, key in self.instances:
            if rule_key not in self.rules and (rule_key, key) not in keep:
                forget.append((rule_key, key))  # the rule was removed from the catalog or file
        delivered = self._deliver(keep, now)
        if delivered:
            keep = {
                k: replace(i, undelivered=False) if i.undelivered else i for k, i in keep.items()
            }
        self._announce(transitions, now)
        self.state.save(keep.values(), forget)
        self.instances = keep
        firing = sum(1 for i in keep.values() if i.state is AlertState.FIRING)
        return Cycle(now, len(keep), firing, tuple(transitions), tuple(failed), delivered)

    # --- delivering -------------------------------------------------------------------------

    def notifications(
        self, instances: Mapping[tuple[str, str], Instance], now: datetime
    ) -> list[Notification]:
        """What Alertmanager must hold now: every firing alert, and undelivered resolutions."""
        keep_alive = timedelta(seconds=max(4 * self.settings.alerts_interval, 300))
        found = []
        for instance in instances.values():
            if instance.state is AlertState.FIRING:
                ends = now + keep_alive
            elif instance.state is AlertState.RESOLVED and instance.undelivered:
                ends = datetime.fromtimestamp(instance.since, UTC)
            else:
                continue
            started = datetime.fromtimestamp(instance.active_at or instance.since, UTC)
            found.append(
                Notification(
                    labels=instance.labels,
                    annotations=instance.annotations,
                    starts_at=started,
                    ends_at=ends,
                    generator_url=instance.annotations.get("wall", self.settings.wall_base_url),
                )
            )
        return found

    def _deliver(self, instances: Mapping[tuple[str, str], Instance], now: datetime) -> bool:
        if self.sink is None:
            return True  # notifications are off: nothing waits for delivery
        notifications = self.notifications(instances, now)
        if not notifications:
            return True
        try:
            self.sink.post_notifications(notifications)
        except (IocError, OSError) as error:
            log.warning(
                "alertmanager: %d alerts not delivered, retry next cycle: %s",
                len(notifications),
                error,
            )
            return False
        return True

    def _announce(self, transitions: Sequence[Transition], now: datetime) -> None:
        """Publish each state change retained over MQTT and write it to the history."""
        points = []
        stamp = int(now.timestamp() * _NS)
        for number, transition in enumerate(transitions):
            instance = transition.instance
            labels = instance.labels
            message = {
                "state": instance.state.value,
                "previous": transition.previous.value,
                "at": now.isoformat(),
                "since": datetime.fromtimestamp(
                    instance.active_at or instance.since, UTC
                ).isoformat(),
                "labels": dict(labels),
                "annotations": dict(instance.annotations),
                "value": instance.value,
                "fingerprint": instance.fingerprint,
            }
            if self.publisher is not None:
                topic = "/".join(
                    (
                        self.settings.alerts_topic,
                        labels.get("province", "VN"),
                        labels["alertname"],
                        labels.get("severity", "warning"),
                        instance.fingerprint,
                    )
                )
                try:
                    self.publisher.publish(topic, json.dumps(message, ensure_ascii=False).encode())
                except (IocError, OSError) as error:
                    log.warning("alert topic %s not published: %s", topic, error)
            tags = {
                k: labels[k]
                for k in ("indicator", "level", "province", "ward", "source")
                if k in labels
            }
            fields: dict[str, float | str] = {
                "alertname": labels["alertname"],
                "rule": instance.rule,
                "severity": labels.get("severity", ""),
                "state": instance.state.value,
                "previous": transition.previous.value,
                "threshold": transition.rule.threshold,
                "summary_vi": instance.annotations.get("summary_vi", ""),
                "summary_en": instance.annotations.get("summary_en", ""),
                "fingerprint": instance.fingerprint,
            }
            if instance.value is not None:
                fields["value"] = instance.value
            # One nanosecond apart: changes of one cycle never overwrite each other in a series.
            points.append(Point(ALERT_MEASUREMENT, fields, stamp + number, tags))
        if points:
            try:
                self.store.write(points, rp="derived")
            except IocError as error:
                log.warning("alert history: %d changes not written: %s", len(points), error)
