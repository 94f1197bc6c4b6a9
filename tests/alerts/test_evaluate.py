"""The evaluator against the real InfluxDB: firing, hysteresis, no flapping, no data, restarts.

Indicator values are written to ``derived.indicator`` as the engine writes them (one end-to-end
test goes from raw readings through the real engine); the evaluator is driven with explicit
``now`` values so the ``for`` durations are exact.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from alerts.evaluate import Evaluator, Notification
from alerts.publish import MqttPublisher
from alerts.rules import Rule, RuleKind, catalog_rules, load_rules
from alerts.state import AlertState, StateStore
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine import Engine
from ioc.engine.values import IndicatorValue, Level
from ioc.mqtt import make_client
from ioc.settings import Settings
from ioc.store import Point, Store, time_ns

pytestmark = pytest.mark.services

REGISTRY = """
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
id = "01-sxd"
kind = "data"
province = "01"
name = "Sở Xây dựng Hà Nội"
department = "Sở Xây dựng"
expected_interval = "1h"
"""

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
FLOOD_CRITICAL = "flood-alarm:critical"


class RecordingSink:
    """Keeps what the evaluator would post to Alertmanager (the real one is tested separately)."""

    def __init__(self) -> None:
        self.posts: list[list[Notification]] = []

    def post_notifications(self, notifications: Sequence[Notification]) -> None:
        self.posts.append(list(notifications))


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return load_catalog(INDICATORS_FILE, registry)


@pytest.fixture
def settings(own_database: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(own_database, var_dir=tmp_path / "var", alerts_interval=30.0)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings) as s:
        yield s


def rule_of(catalog: Catalog, key: str, **changes: object) -> Rule:
    (rule,) = [r for r in catalog_rules(catalog) if r.key == key]
    return dataclasses.replace(rule, **changes)  # type: ignore[arg-type]


def make_evaluator(
    settings: Settings, catalog: Catalog, store: Store, *rules: Rule, sink: object = None
) -> Evaluator:
    state = StateStore(settings.alerts_state_dir / f"{settings.alerts_id}.sqlite")
    return Evaluator(settings, catalog, rules, store, state, sink=sink)  # type: ignore[arg-type]


def flood(store: Store, at: datetime, level: float) -> None:
    """The engine's source-level flood value at Kim Long, stamped just before ``at``."""
    value = IndicatorValue(
        indicator="flood_level",
        unit="level",
        level=Level.SOURCE,
        time_ns=time_ns(at - timedelta(seconds=1)),
        value=level,
        band=None,
        province="46",
        ward="19810",
        source="46-water-kim-long",
    )
    store.write([value.to_point()], rp="derived")


def states(evaluator: Evaluator, rule: str) -> list[AlertState]:
    return [i.state for (r, _), i in evaluator.instances.items() if r == rule]


def test_a_crossing_fires_once_after_for_and_resolves_once_with_hysteresis(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=60.0)
    sink = RecordingSink()
    evaluator = make_evaluator(settings, catalog, store, rule, sink=sink)
    seen: list[tuple[str, str]] = []
    # (seconds after T0, level): pending at 0, still pending at 30, firing at 60, held while the
    # level is between the clear level (2.94) and the threshold, resolved at 2, then forgotten.
    for offset, level in ((0, 3), (30, 3), (60, 3), (90, 3), (120, 2.96), (150, 2), (180, 2)):
        now = T0 + timedelta(seconds=offset)
        flood(store, now, level)
        cycle = evaluator.evaluate(now)
        seen += [(t.previous.value, t.instance.state.value) for t in cycle.transitions]
        if offset == 90:
            assert states(evaluator, rule.key) == [AlertState.FIRING]
    assert seen == [("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    assert states(evaluator, rule.key) == []  # forgotten once the resolution was delivered
    firing_posts = [
        n for post in sink.posts for n in post if n.ends_at > n.starts_at + timedelta(seconds=200)
    ]
    resolutions = [
        n for post in sink.posts for n in post if n.ends_at <= T0 + timedelta(seconds=150)
    ]
    assert len(resolutions) == 1
    (resolved,) = resolutions
    assert resolved.labels["alertname"] == "flood-alarm"
    assert resolved.labels["severity"] == "critical"
    assert resolved.labels["source"] == "46-water-kim-long"
    assert resolved.labels["province"] == "46" and resolved.labels["ward"] == "19810"
    assert resolved.starts_at == T0  # the alert began when the condition first held
    assert len(firing_posts) == 3  # re-sent at 60, 90 and 120 s so Alertmanager keeps it
    assert "Kim Long" in firing_posts[0].annotations["summary_vi"]
    assert firing_posts[0].annotations["wall"].endswith("/d/ioc-province-wall?var-province=46")


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        # around the threshold, never back past the clear level: fires once, never resolves
        ((3, 3, 3, 2.96, 3, 2.96, 3, 2.96), [("inactive", "pending"), ("pending", "firing")]),
        # breaches shorter than `for`: pending and back, never firing
        ((3, 2, 3, 2, 3, 2), [("inactive", "pending"), ("pending", "inactive")] * 3),
    ],
)
def test_a_value_oscillating_around_the_threshold_does_not_flap(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    levels: tuple[float, ...],
    expected: list[tuple[str, str]],
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=45.0)
    sink = RecordingSink()
    evaluator = make_evaluator(settings, catalog, store, rule, sink=sink)
    seen = []
    for step, level in enumerate(levels):
        now = T0 + timedelta(seconds=30 * step)
        flood(store, now, level)
        seen += [
            (t.previous.value, t.instance.state.value) for t in evaluator.evaluate(now).transitions
        ]
    assert seen == expected
    starts = {n.starts_at for post in sink.posts for n in post}
    assert len(starts) <= 1  # one alert, never a second one with a new start


def test_a_firing_alert_whose_data_stops_stays_firing_and_says_so(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=0.0)
    evaluator = make_evaluator(settings, catalog, store, rule)
    flood(store, T0, 3.2)
    assert [t.instance.state for t in evaluator.evaluate(T0).transitions] == [AlertState.FIRING]
    later = T0 + timedelta(hours=2)  # older than 1.5 periods: no current value
    assert evaluator.evaluate(later).transitions == ()
    (instance,) = evaluator.instances.values()
    assert instance.state is AlertState.FIRING
    assert instance.value is None
    assert "no current value" in instance.annotations["summary_en"]


def test_a_restart_neither_loses_a_firing_alert_nor_starts_it_again(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=30.0)
    first = make_evaluator(settings, catalog, store, rule, sink=RecordingSink())
    for offset in (0, 30):
        flood(store, T0 + timedelta(seconds=offset), 3.5)
        first.evaluate(T0 + timedelta(seconds=offset))
    assert states(first, rule.key) == [AlertState.FIRING]
    first.state.close()

    sink = RecordingSink()
    second = make_evaluator(settings, catalog, store, rule, sink=sink)  # same state file
    assert states(second, rule.key) == [AlertState.FIRING]
    flood(store, T0 + timedelta(seconds=60), 3.5)
    cycle = second.evaluate(T0 + timedelta(seconds=60))
    assert cycle.transitions == ()  # no new "firing": nothing to notify again
    (post,) = sink.posts
    (notification,) = post
    assert notification.starts_at == T0  # the same alert as before the restart


def test_a_pending_alert_keeps_counting_its_for_across_a_restart(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=60.0)
    first = make_evaluator(settings, catalog, store, rule)
    flood(store, T0, 3.5)
    first.evaluate(T0)
    first.state.close()
    second = make_evaluator(settings, catalog, store, rule)
    flood(store, T0 + timedelta(seconds=60), 3.5)
    transitions = second.evaluate(T0 + timedelta(seconds=60)).transitions
    assert [(t.previous, t.instance.state) for t in transitions] == [
        (AlertState.PENDING, AlertState.FIRING)
    ]


def raw(
    store: Store, measurement: str, source: str, province: str, at: datetime, **fields: float
) -> None:
    point = Point(
        measurement,
        {**fields, "received_ms": int(at.timestamp() * 1000)},
        time_ns(at),
        {"source": source, "province": province},
    )
    store.write([point])


def test_a_feed_that_stops_gives_no_data_after_its_expected_interval(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, "feed-silent:warning", provinces=("46",))
    evaluator = make_evaluator(settings, catalog, store, rule)
    raw(store, "service", "46-dvc", "46", T0, dossiers_received=10, dossiers_on_time=9)

    def state_of(source: str) -> AlertState | None:
        for instance in evaluator.instances.values():
            if instance.labels["source"] == source:
                return instance.state
        return None

    evaluator.evaluate(T0 + timedelta(minutes=10))
    assert state_of("46-dvc") is None  # reported 10 min ago; expected every 15 min
    evaluator.evaluate(T0 + timedelta(minutes=29))
    assert state_of("46-dvc") is None  # within interval × grace (30 min)
    cycle = evaluator.evaluate(T0 + timedelta(minutes=31))
    assert state_of("46-dvc") is AlertState.FIRING
    (change,) = [t for t in cycle.transitions if t.instance.labels["source"] == "46-dvc"]
    assert change.instance.labels["alertname"] == "feed-silent"
    assert change.instance.annotations["department"] == "Văn phòng UBND tỉnh"
    # Kim Long never reported at all: silent from the first cycle, said as such
    kim_long = [
        i for i in evaluator.instances.values() if i.labels["source"] == "46-water-kim-long"
    ]
    assert kim_long and "never reported" in kim_long[0].annotations["summary_en"]
    # Hà Nội's feed is not watched by this rule (provinces = 46)
    assert state_of("01-sxd") is None
    raw(store, "service", "46-dvc", "46", T0 + timedelta(minutes=32), dossiers_received=1)
    evaluator.evaluate(T0 + timedelta(minutes=33))
    assert state_of("46-dvc") is AlertState.RESOLVED
    evaluator.evaluate(T0 + timedelta(minutes=34))
    assert state_of("46-dvc") is None  # forgotten once resolved


def test_from_raw_readings_through_the_engine_to_a_firing_alert(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    """A stage reading above Kim Long's alarm level III fires the critical flood alarm."""
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for minutes in (10, 20, 30):
        raw(
            store,
            "water",
            "46-water-kim-long",
            "46",
            hour - timedelta(hours=1, minutes=-minutes),
            water_level=3.8,
        )
    Engine(settings, catalog, store).run_cycle()
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=0.0)
    warning = rule_of(catalog, "flood-alarm:warning", for_s=0.0)
    evaluator = make_evaluator(settings, catalog, store, rule, warning)
    cycle = evaluator.evaluate(hour + timedelta(minutes=1))
    fired = sorted(t.instance.labels["severity"] for t in cycle.transitions)
    assert fired == ["critical", "warning"]  # Alertmanager's inhibition keeps the warning quiet
    (critical,) = [
        t.instance for t in cycle.transitions if t.instance.labels["severity"] == "critical"
    ]
    assert critical.value == 3
    assert critical.annotations["band"] == "alarm_3"
    assert "Báo động III" in critical.annotations["summary_vi"]


def test_every_change_is_written_to_the_history(
    settings: Settings, catalog: Catalog, store: Store
) -> None:
    rule = rule_of(catalog, FLOOD_CRITICAL, for_s=0.0)
    evaluator = make_evaluator(settings, catalog, store, rule, sink=RecordingSink())
    for offset, level in ((0, 3), (30, 1)):
        flood(store, T0 + timedelta(seconds=offset), level)
        evaluator.evaluate(T0 + timedelta(seconds=offset))
    (series,) = store.query(
        'SELECT "state", "previous", "alertname", "value", "source" FROM "derived"."alert" '
        "WHERE time > $start",
        {"start": time_ns(T0 - timedelta(minutes=1))},
    )
    rows = series.rows()
    # with `for` 0 a breach fires in the same cycle: one change, not two
    assert [(r["previous"], r["state"]) for r in rows] == [
        ("inactive", "firing"),
        ("firing", "resolved"),
    ]
    assert {r["source"] for r in rows} == {"46-water-kim-long"}
    assert [r["value"] for r in rows] == [3, 1]


def test_state_changes_are_published_retained_per_province(
    services: Settings, settings: Settings, catalog: Catalog, store: Store
) -> None:
    settings = dataclasses.replace(settings, mqtt_port=services.mqtt_port, alerts_topic="t/alerts")
    publisher = MqttPublisher(settings)
    try:
        state = StateStore(settings.alerts_state_dir / "mqtt.sqlite")
        rule = rule_of(catalog, FLOOD_CRITICAL, for_s=0.0)
        evaluator = Evaluator(settings, catalog, [rule], store, state, publisher=publisher)
        flood(store, T0, 3)
        evaluator.evaluate(T0)
    finally:
        publisher.close()
    # a display that connects afterwards still gets the current state (retained)
    received: list[mqtt.MQTTMessage] = []
    got = threading.Event()
    client = make_client(settings, "test-display")

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(message)
        got.set()

    client.on_message = on_message
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.subscribe("t/alerts/46/#", qos=1)
    client.loop_start()
    try:
        assert got.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    (message,) = received
    assert message.retain
    assert message.topic.startswith("t/alerts/46/flood-alarm/critical/")
    body = json.loads(message.payload)
    assert body["state"] == "firing" and body["previous"] == "inactive"
    assert body["labels"]["source"] == "46-water-kim-long"


def test_operator_rules_file(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rule]]
key = "aqi-hue-hazardous"
indicator = "vn_aqi"
level = "ward"
above = 301
clear = 280
for = "10m"
severity = "critical"
provinces = ["46"]
""",
        encoding="utf-8",
    )
    rules = {r.key: r for r in load_rules(catalog, path)}
    mine = rules["aqi-hue-hazardous:critical"]
    assert (mine.threshold, mine.clear, mine.for_s, mine.level) == (301, 280, 600, "ward")
    assert mine.breaches(301) and not mine.breaches(300.9)
    assert mine.clears(279) and not mine.clears(281)
    assert mine.watches("46") and not mine.watches("01")
    assert "flood-alarm:critical" in rules  # the catalog's rules are kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\nkey = "x"\nindicator = "nope"\nabove = 1\n', "indicator: 'nope' is not one of"),
        ('[[rule]]\nkey = "x"\nindicator = "vn_aqi"\n', "give exactly one of 'above' or 'below'"),
        (
            '[[rule]]\nkey = "x"\nindicator = "vn_aqi"\nabove = 100\nclear = 120\n',
            "clear: must not be above",
        ),
        (
            '[[rule]]\nkey = "x"\nindicator = "vn_aqi"\nabove = 1\nfor = "soon"\n',
            "for: 'soon' is not a duration",
        ),
        (
            '[[rule]]\nkey = "x"\nindicator = "vn_aqi"\nabove = 1\ncolour = "red"\n',
            "colour: Unknown field",
        ),
        ('[[alert]]\nkey = "x"\n', "unknown table 'alert'"),
    ],
)
def test_bad_operator_rules_are_refused_naming_the_field(
    tmp_path: Path, catalog: Catalog, text: str, message: str
) -> None:
    from ioc.errors import CatalogError

    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"rules\.toml") as error:
        load_rules(catalog, path)
    assert message in str(error.value)


def test_catalog_rules_follow_the_catalog(catalog: Catalog) -> None:
    rules = {r.key: r for r in catalog_rules(catalog)}
    aqi = rules["air-quality-poor:warning"]
    assert (aqi.level, aqi.side, aqi.threshold) == ("source", "above", 101)  # worst-of: per station
    late = rules["dossiers-late:warning"]
    assert (late.level, late.side, late.threshold) == ("province", "below", 95)
    assert late.breaches(94.9) and not late.breaches(95)  # 95 % is in the "high" band
    assert rules["feed-silent:warning"].kind is RuleKind.NO_DATA
    assert rules["tasks-overdue-increase:warning"].kind is RuleKind.INCREASE
