"""The evaluator end to end with the real Alertmanager as its sink (issue 14's "Done when").

Indicator values go to the real InfluxDB as the engine writes them; the evaluator runs with
explicit ``now`` values in the last minute, so `for` durations are exact and the ``endsAt`` of a
firing alert is still ahead of Alertmanager's clock. What counts is what reaches the webhook and
the SMTP server. "Nothing more was sent" is proven as in test_alertmanager.py: after Alertmanager
has flushed the group again (``wait_for_flushes``), or by a later notification of the same group.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from alerts.alertmanager import Alertmanager
from alerts.command import _ReminderSchedule
from alerts.evaluate import VIETNAM, AlertSink, Evaluator
from alerts.rules import Rule, catalog_rules, load_rules
from alerts.state import AlertState, StateStore
from ioc import cli
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine.values import IndicatorValue, Level
from ioc.settings import Settings, load_settings
from ioc.stack import free_ports
from ioc.store import Point, Store, time_ns
from tests.alerts.conftest import EMAIL_TO, LocalAlertmanager
from tests.alerts.receivers import (
    ReceivedMail,
    SmtpReceiver,
    WebhookNotification,
    _Recorder,
    _RecordingHandler,
)

pytestmark = pytest.mark.services

KIM_LONG = "46-water-kim-long"
PHU_OC = "46-water-phu-oc"
REGISTRY = f"""
[[source]]
id = "{KIM_LONG}"
kind = "water"
province = "46"
ward = "19810"
name = "Trạm thủy văn Kim Long (sông Hương)"
expected_interval = "10m"
station = "huong-kim-long"

[[source]]
id = "{PHU_OC}"
kind = "water"
province = "46"
ward = "19996"
name = "Trạm thủy văn Phú Ốc (sông Bồ)"
expected_interval = "10m"
station = "bo-phu-oc"
"""
WARDS = {KIM_LONG: "19810", PHU_OC: "19996"}
WALL = "https://wall.hue.example"
FLOOD_CRITICAL = "flood-alarm:critical"
SUMMARY_VI = (
    "Cấp báo động lũ: 3 level (Báo động III) tại Trạm thủy văn Kim Long (sông Hương), "
    "Phường Kim Long, Thành phố Huế"
)
SUMMARY_EN = (
    "Flood alarm level: 3 level (Alarm III) at Trạm thủy văn Kim Long (sông Hương), "
    "Phường Kim Long, Thành phố Huế"
)
LABELS = {"alertname", "severity", "rule", "indicator", "level", "province", "ward", "source"}
"""Every label of a flood alarm: the rule and the place, nothing of the evaluator that sent it."""

MakeEvaluator = Callable[..., Evaluator]


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


@pytest.fixture
def catalog(registry_file: Path) -> Catalog:
    return load_catalog(INDICATORS_FILE, registry_file)


@pytest.fixture
def settings(own_database: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        own_database, var_dir=tmp_path / "var", alerts_interval=30.0, wall_url=WALL
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings) as s:
        yield s


@pytest.fixture
def t0() -> datetime:
    """A minute ago, in whole seconds: every evaluation of a test happens before the real now."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


@pytest.fixture
def make_evaluator(settings: Settings, catalog: Catalog, store: Store) -> Iterator[MakeEvaluator]:
    """Evaluators of the critical flood alarm, with this `for`, state in <var>/alerts/<id>."""
    opened: list[StateStore] = []

    def make(
        for_s: float, *, sink: AlertSink | None, alerts_id: str = "alerts-1", **changes: object
    ) -> Evaluator:
        own = dataclasses.replace(settings, alerts_id=alerts_id, **changes)  # type: ignore[arg-type]
        state = StateStore(own.alerts_state_dir / f"{alerts_id}.sqlite")
        opened.append(state)
        rule = rule_of(catalog, FLOOD_CRITICAL, for_s=for_s)
        return Evaluator(own, catalog, [rule], store, state, sink=sink)

    yield make
    for state in opened:
        state.close()


def rule_of(catalog: Catalog, key: str, **changes: object) -> Rule:
    (rule,) = [r for r in catalog_rules(catalog) if r.key == key]
    return dataclasses.replace(rule, **changes)  # type: ignore[arg-type]


def flood(store: Store, at: datetime, level: float, *, source: str = KIM_LONG) -> None:
    """The engine's source-level flood value (and its band) at a station, a second before ``at``."""
    band = ("below_alarm", "alarm_1", "alarm_2", "alarm_3")[int(level)]
    value = IndicatorValue(
        indicator="flood_level",
        unit="level",
        level=Level.SOURCE,
        time_ns=time_ns(at - timedelta(seconds=1)),
        value=level,
        band=band,
        province="46",
        ward=WARDS[source],
        source=source,
    )
    store.write([value.to_point()], rp="derived")


def water_reading(store: Store, source: str, at: datetime) -> None:
    """A raw stage reading: the feed is live (no ``feed-silent``)."""
    point = Point(
        "water",
        {"water_level": 1.2, "received_ms": int(at.timestamp() * 1000)},
        time_ns(at),
        {"source": source, "province": "46", "ward": WARDS[source]},
    )
    store.write([point])


def flood_alarms(notification: WebhookNotification) -> bool:
    return notification.alertname == "flood-alarm"


def received(alertmanager: LocalAlertmanager, status: str) -> float:
    """How many alerts of this status Alertmanager was sent (every post, deduplicated or not)."""
    return alertmanager.metric("alertmanager_alerts_received_total", status=status)


# --- firing and resolving -----------------------------------------------------------------------


def test_a_crossing_notifies_once_after_for_and_resolves_once_past_the_clear_level(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    store: Store,
    t0: datetime,
) -> None:
    webhook = alertmanager.webhook
    evaluator = make_evaluator(20.0, sink=alertmanager.client)
    for offset in (0, 10):  # breached, but not yet for 20 s: pending, nothing posted
        at = t0 + timedelta(seconds=offset)
        flood(store, at, 3)
        cycle = evaluator.evaluate(at)
        assert (cycle.instances, cycle.firing, cycle.delivered) == (1, 0, True)
    assert alertmanager.client.alerts() == ()

    flood(store, t0 + timedelta(seconds=20), 3)
    cycle = evaluator.evaluate(t0 + timedelta(seconds=20))
    assert (cycle.firing, cycle.delivered) == (1, True)
    (firing,) = webhook.wait_for(flood_alarms)
    assert firing.status == "firing"
    (alert,) = firing.alerts
    assert (alert.labels["source"], alert.labels["severity"]) == (KIM_LONG, "critical")
    (held,) = alertmanager.client.alerts({"alertname": "flood-alarm"})
    assert held.starts_at == t0  # the alert began when the condition first held

    # Posted again next cycle, held between the clear level (2.94) and the threshold: no message.
    flood(store, t0 + timedelta(seconds=30), 2.96)
    cycle = evaluator.evaluate(t0 + timedelta(seconds=30))
    assert (cycle.firing, cycle.transitions, cycle.delivered) == (1, (), True)
    alertmanager.wait_for_flushes(2)
    assert webhook.of("flood-alarm") == (firing,)

    flood(store, t0 + timedelta(seconds=40), 2)
    cycle = evaluator.evaluate(t0 + timedelta(seconds=40))
    assert [(t.previous, t.instance.state) for t in cycle.transitions] == [
        (AlertState.FIRING, AlertState.RESOLVED)
    ]
    (resolved,) = webhook.wait_for(lambda n: flood_alarms(n) and n.status == "resolved")
    (alert,) = resolved.alerts
    assert alert.status == "resolved"
    assert alert.fingerprint == firing.alerts[0].fingerprint

    flood(store, t0 + timedelta(seconds=50), 2)
    cycle = evaluator.evaluate(t0 + timedelta(seconds=50))
    assert cycle.instances == 0  # forgotten once its resolution was delivered
    assert [n.status for n in webhook.of("flood-alarm")] == ["firing", "resolved"]
    assert (received(alertmanager, "firing"), received(alertmanager, "resolved")) == (2, 1)
    assert alertmanager.client.alerts() == ()


def test_a_restarted_evaluator_sends_no_second_notification(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    store: Store,
    t0: datetime,
) -> None:
    first = make_evaluator(10.0, sink=alertmanager.client)
    for offset in (0, 10):
        flood(store, t0 + timedelta(seconds=offset), 3)
        first.evaluate(t0 + timedelta(seconds=offset))
    (notification,) = alertmanager.webhook.wait_for(flood_alarms)
    first.state.close()

    second = make_evaluator(10.0, sink=alertmanager.client)  # the same state file, reopened
    assert [i.state for i in second.instances.values()] == [AlertState.FIRING]
    flood(store, t0 + timedelta(seconds=20), 3)
    cycle = second.evaluate(t0 + timedelta(seconds=20))
    assert (cycle.firing, cycle.transitions, cycle.delivered) == (1, (), True)
    alertmanager.wait_for_flushes(2)
    assert alertmanager.webhook.of("flood-alarm") == (notification,)
    assert received(alertmanager, "firing") == 2  # it did post again: Alertmanager deduplicated
    (held,) = alertmanager.client.alerts({"alertname": "flood-alarm"})
    assert held.state == "active"
    assert held.starts_at == t0  # the same alert, not a new one started by the restart
    assert held.ends_at > datetime.now(UTC)


def test_two_evaluators_on_the_same_data_give_one_notification(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    settings: Settings,
    store: Store,
    t0: datetime,
) -> None:
    """Two stations of one province, two evaluators ("a" and "b", b two seconds behind)."""
    webhook = alertmanager.webhook
    with Alertmanager(alertmanager.url) as sink_a, Alertmanager(alertmanager.url) as sink_b:
        evaluators = {
            "a": make_evaluator(10.0, sink=sink_a, alerts_id="a"),
            "b": make_evaluator(10.0, sink=sink_b, alerts_id="b"),
        }

        def cycle(offset: int, kim_long: float, phu_oc: float) -> None:
            at = t0 + timedelta(seconds=offset)
            flood(store, at, kim_long)
            flood(store, at, phu_oc, source=PHU_OC)
            for lag, evaluator in enumerate(evaluators.values()):
                assert evaluator.evaluate(at + timedelta(seconds=2 * lag)).delivered

        cycle(0, 3, 3)
        cycle(10, 3, 3)
        (first,) = webhook.wait_for(flood_alarms)
        assert first.status == "firing"
        assert sorted(a.labels["source"] for a in first.alerts) == [KIM_LONG, PHU_OC]
        cycle(20, 3, 3)
        alertmanager.wait_for_flushes(2)
        assert webhook.of("flood-alarm") == (first,)
        assert received(alertmanager, "firing") == 8  # 2 evaluators × 2 cycles × 2 stations

        held = alertmanager.client.alerts({"alertname": "flood-alarm"})
        assert len(held) == 2
        assert {a.starts_at for a in held} == {t0}  # a's start, the earlier one
        for labels in [dict(a.labels) for a in held] + [dict(a.labels) for a in first.alerts]:
            assert set(labels) == LABELS
            assert (labels["alertname"], labels["rule"]) == ("flood-alarm", FLOOD_CRITICAL)
        by_evaluator = [
            sorted(dict(i.labels).items() for i in e.instances.values())
            for e in evaluators.values()
        ]
        assert by_evaluator[0] == by_evaluator[1]
        assert {p.name for p in settings.alerts_state_dir.iterdir()} >= {"a.sqlite", "b.sqlite"}

        # Kim Long clears; both evaluators post its resolution: one message says so.
        cycle(30, 2, 3)
        (second,) = webhook.wait_for(lambda n: n.has("resolved", source=KIM_LONG))
        assert second.has("firing", source=PHU_OC)
        alertmanager.wait_for_flushes(2)
        assert webhook.of("flood-alarm") == (first, second)
        assert received(alertmanager, "resolved") == 2


# --- what the notifications say -------------------------------------------------------------------


def test_the_email_carries_the_vietnamese_and_english_summaries(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    store: Store,
    t0: datetime,
) -> None:
    evaluator = make_evaluator(0.0, sink=alertmanager.client)
    flood(store, t0, 3)
    assert evaluator.evaluate(t0).firing == 1

    (mail,) = alertmanager.smtp.wait_for(lambda m: "flood-alarm" in m.subject)
    assert mail.subject == "[IOC FIRING:1] flood-alarm · 46"
    assert mail.rcpt_tos == (EMAIL_TO,)
    lines = mail.plain.splitlines()
    for line in (
        "FIRING flood-alarm (critical)",
        f"summary_vi: {SUMMARY_VI}",
        f"summary_en: {SUMMARY_EN}",
        "value: 3",
        "band: alarm_3",
        f"wall: {WALL}/d/ioc-province-wall?var-province=46",
    ):
        assert line in lines, (line, lines)
    assert f"source={KIM_LONG}" in mail.plain


@pytest.mark.parametrize(
    "walls",
    [
        (WALL, f"{WALL}/d/ioc-province-wall?var-province=46"),  # IOC_WALL_URL
        (None, "http://127.0.0.1:13000/d/ioc-province-wall?var-province=46"),  # local Grafana
    ],
)
def test_the_annotations_carry_value_band_and_wall_link(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    store: Store,
    t0: datetime,
    walls: tuple[str | None, str],
) -> None:
    wall_url, wall = walls
    evaluator = make_evaluator(0.0, sink=alertmanager.client, wall_url=wall_url)
    flood(store, t0, 3)
    assert evaluator.evaluate(t0).delivered

    (held,) = alertmanager.client.alerts({"alertname": "flood-alarm"})
    assert dict(held.annotations) == {
        "summary_vi": SUMMARY_VI,
        "summary_en": SUMMARY_EN,
        "condition": "value >= 3 (clears < 2.94)",
        "value": "3",
        "band": "alarm_3",
        "coverage": "1",
        "expected": "1",
        "wall": wall,
    }
    assert held.generator_url == wall
    (notification,) = alertmanager.webhook.wait_for(flood_alarms)
    assert dict(notification.alerts[0].annotations) == dict(held.annotations)


# --- Alertmanager away ----------------------------------------------------------------------------


def test_while_alertmanager_is_away_nothing_raises_and_the_resolution_waits_for_it(
    alertmanager: LocalAlertmanager,
    make_evaluator: MakeEvaluator,
    store: Store,
    t0: datetime,
) -> None:
    webhook = alertmanager.webhook
    with Alertmanager(alertmanager.url, timeout=2) as sink:
        evaluator = make_evaluator(0.0, sink=sink)
        flood(store, t0, 3)
        assert evaluator.evaluate(t0).delivered
        webhook.wait_for(flood_alarms)

        with alertmanager.stopped():
            flood(store, t0 + timedelta(seconds=10), 3)
            cycle = evaluator.evaluate(t0 + timedelta(seconds=10))  # does not raise
            assert (cycle.firing, cycle.delivered) == (1, False)
            for offset in (20, 30):  # cleared during the outage, and one more cycle
                flood(store, t0 + timedelta(seconds=offset), 2)
                cycle = evaluator.evaluate(t0 + timedelta(seconds=offset))
                assert not cycle.delivered
                (instance,) = evaluator.instances.values()
                assert (instance.state, instance.undelivered) == (AlertState.RESOLVED, True)
            # kept on disk too: a restart during the outage would still send it
            on_disk = StateStore(evaluator.state.path)
            try:
                assert [i.undelivered for i in on_disk.load().values()] == [True]
            finally:
                on_disk.close()

        flood(store, t0 + timedelta(seconds=40), 2)
        cycle = evaluator.evaluate(t0 + timedelta(seconds=40))
        assert cycle.delivered
        (instance,) = evaluator.instances.values()
        assert (instance.state, instance.undelivered) == (AlertState.RESOLVED, False)
        (resolved,) = webhook.wait_for(lambda n: flood_alarms(n) and n.status == "resolved")
        assert resolved.alerts[0].labels["source"] == KIM_LONG

        flood(store, t0 + timedelta(seconds=50), 2)
        assert evaluator.evaluate(t0 + timedelta(seconds=50)).instances == 0
    assert [n.status for n in webhook.of("flood-alarm")] == ["firing", "resolved"]


# --- the command line -----------------------------------------------------------------------------

OPERATOR_RULES = """
[[rule]]
key = "flood-kim-long"
indicator = "flood_level"
level = "source"
above = 3
clear = 2.5
for = "0s"
severity = "critical"
provinces = ["46"]
"""


def use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Exactly these ``IOC_*`` variables for an in-process ``ioc`` command."""
    for name in list(os.environ):
        if name.startswith("IOC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def rules_env(registry_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The environment of ``ioc alerts rules`` with an operator rules file; its path."""
    rules_file = tmp_path / "rules.toml"
    use_environment(
        monkeypatch,
        {
            "IOC_VAR_DIR": str(tmp_path / "var"),
            "IOC_REGISTRY_FILE": str(registry_file),
            "IOC_ALERTS_RULES_FILE": str(rules_file),
        },
    )
    return rules_file


@pytest.fixture
def cli_settings(
    rules_env: Path,
    alertmanager: LocalAlertmanager,
    service_env: dict[str, str],
    own_database: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """The settings ``ioc alerts run`` reads: the session's services, this test's database,
    Alertmanager and var directory, the operator's rules file."""
    rules_env.write_text(OPERATOR_RULES, encoding="utf-8")
    env = {
        **service_env,
        "IOC_INFLUX_DB": own_database.influx_db,
        "IOC_VAR_DIR": os.environ["IOC_VAR_DIR"],
        "IOC_ALERTMANAGER_URL": alertmanager.url,
        "IOC_ALERTS_ID": "cli",
        "IOC_ALERTS_TOPIC": f"t/notify/{uuid.uuid4().hex[:8]}",
        "IOC_WALL_URL": WALL,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_ioc_alerts_run_once_notifies_and_prints_the_counts(
    cli_settings: Settings,
    alertmanager: LocalAlertmanager,
    catalog: Catalog,
    store: Store,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    flood(store, now, 3)  # Kim Long at alarm III, a second ago
    for source in (KIM_LONG, PHU_OC):
        water_reading(store, source, now - timedelta(minutes=1))  # both feeds live
    rules = load_rules(catalog, cli_settings.alerts_rules_file)

    # flood-alarm warning and critical wait for their 2 min; the operator's rule fires at once
    assert cli.main(["alerts", "run", "--once"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"{len(rules)} rules: 3 active instances, 1 firing, 3 changes"
    (notification,) = alertmanager.webhook.wait_for(lambda n: n.alertname == "flood-kim-long")
    (alert,) = notification.alerts
    assert alert.labels["rule"] == "flood-kim-long:critical"
    assert alert.annotations["wall"] == f"{WALL}/d/ioc-province-wall?var-province=46"

    # a second run goes on from the state file: no change, no second notification
    assert cli.main(["alerts", "run", "--once"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"{len(rules)} rules: 3 active instances, 1 firing, 0 changes"
    alertmanager.wait_for_flushes(2)
    assert alertmanager.webhook.of("flood-kim-long") == (notification,)
    assert (cli_settings.alerts_state_dir / "cli.sqlite").is_file()
    (series,) = store.query(
        'SELECT "instances", "firing", "changes", "delivered" FROM "ops"."alerts" '
        "WHERE \"source\" = 'cli'"
    )
    assert [row[1:] for row in series.values] == [(3, 1, 3, True), (3, 1, 0, True)]


def test_ioc_alerts_rules_lists_the_catalog_and_operator_rules(
    rules_env: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_env.write_text(OPERATOR_RULES, encoding="utf-8")
    assert cli.main(["alerts", "rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(catalog_rules(catalog)) + 1} rules"
    (mine,) = [line for line in lines if line.startswith("flood-kim-long:critical ")]
    assert mine.split()[1:4] == ["critical", "flood_level", "@"]
    assert mine.endswith("value >= 3 (clears < 2.5); for 0 s")
    assert any(line.startswith(f"{FLOOD_CRITICAL} ") for line in lines)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('severity = "urgent"', "rules.toml: rule 'bad': severity: Must be one of: "),
        ('above = "high"', "rules.toml: rule 'bad': above: Not a valid number."),
        ('for = "soon"', "rules.toml: rule 'bad': for: 'soon' is not a duration"),
        ('level = "street"', "rules.toml: rule 'bad': level: Must be one of: "),
    ],
)
def test_ioc_alerts_rules_refuses_a_bad_rules_file_naming_the_field(
    rules_env: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    fields = {"above": "above = 3", "for": 'for = "5m"'}
    key = line.split(" = ", maxsplit=1)[0]
    body = "\n".join(v for k, v in fields.items() if k != key)
    rules_env.write_text(
        f'[[rule]]\nkey = "bad"\nindicator = "flood_level"\n{body}\n{line}\n', encoding="utf-8"
    )
    assert cli.main(["alerts", "rules"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ioc: invalid alert rules:")
    assert message in captured.err


# --- the daily reminder schedule ------------------------------------------------------------------

SCIENCE = "skhcn@hue.example.vn"
HOME_AFFAIRS = "snv@hue.example.vn"
REMINDER_REGISTRY = f"""
[[source]]
id = "46-tasks-skhcn"
kind = "tasks"
province = "46"
name = "Theo dõi nhiệm vụ Nghị quyết 57 Huế"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"
contact = ["{SCIENCE}"]

[[source]]
id = "46-tasks-snv"
kind = "tasks"
province = "46"
name = "Theo dõi nhiệm vụ cải cách hành chính Huế"
department = "Sở Nội vụ"
expected_interval = "1h"
contact = ["{HOME_AFFAIRS}"]
"""


@pytest.mark.parametrize(
    ("at", "now", "marker", "due"),
    [
        ("08:00", "2025-03-01T00:59:00+00:00", None, None),  # 07:59 in Vietnam
        ("08:00", "2025-03-01T01:00:00+00:00", None, date(2025, 3, 1)),  # 08:00
        ("08:00", "2025-03-01T16:59:00+00:00", None, date(2025, 3, 1)),  # 23:59
        ("08:00", "2025-03-01T17:30:00+00:00", None, None),  # 00:30 on the 2nd
        ("00:00", "2025-03-01T17:30:00+00:00", None, date(2025, 3, 2)),  # Vietnam's date
        ("08:00", "2025-03-01T02:00:00+00:00", "2025-03-01", None),  # sent today already
        ("08:00", "2025-03-02T02:00:00+00:00", "2025-03-01", date(2025, 3, 2)),  # yesterday's
        # some units reached today, some not: still due (for those not reached)
        (
            "08:00",
            "2025-03-01T02:00:00+00:00",
            "2025-03-01 partial\n46-so-noi-vu",
            date(2025, 3, 1),
        ),
    ],
)
def test_reminders_are_due_after_their_time_in_vietnam_once_a_day(
    tmp_path: Path, at: str, now: str, marker: str | None, due: date | None
) -> None:
    path = tmp_path / "alerts-1.reminders"
    if marker is not None:
        path.write_text(f"{marker}\n")
    schedule = _ReminderSchedule(load_settings({"IOC_REMINDERS_AT": at}), path)
    assert schedule.due(datetime.fromisoformat(now)) == due


@pytest.fixture
def reminder_catalog(tmp_path: Path) -> Catalog:
    registry = tmp_path / "reminder-sources.toml"
    registry.write_text(REMINDER_REGISTRY, encoding="utf-8")
    return load_catalog(INDICATORS_FILE, registry)


def overdue_tasks(store: Store) -> None:
    """Both registers report overdue tasks: both departments are due a reminder."""
    at = datetime.now(UTC) - timedelta(minutes=10)
    fields = {
        "tasks_total": 40.0,
        "tasks_completed": 20.0,
        "tasks_on_schedule": 15.0,
        "tasks_overdue": 5.0,
        "tasks_due_soon": 2.0,
        "received_ms": int(at.timestamp() * 1000),
    }
    store.write(
        [
            Point("tasks", fields, time_ns(at), {"source": source, "province": "46"})
            for source in ("46-tasks-skhcn", "46-tasks-snv")
        ]
    )


def test_the_reminders_are_sent_once_a_day_and_a_failure_leaves_no_marker(
    settings: Settings, reminder_catalog: Catalog, store: Store, smtp: SmtpReceiver
) -> None:
    overdue_tasks(store)
    marker = settings.alerts_state_dir / "alerts-1.reminders"
    marker.parent.mkdir(parents=True)
    always = dataclasses.replace(settings, reminders_at="00:00", smtp_port=smtp.port)

    # no SMTP server configured: nothing tried, nothing remembered
    _ReminderSchedule(dataclasses.replace(always, smtp_host=None), marker).maybe_send(
        store, reminder_catalog
    )
    assert not marker.exists()

    # the server cannot be reached: the failure leaves no marker, so the next cycle retries
    (closed,) = free_ports(1)
    down = dataclasses.replace(always, smtp_host="127.0.0.1", smtp_port=closed)
    _ReminderSchedule(down, marker).maybe_send(store, reminder_catalog)
    assert not marker.exists()
    assert [m.subject for m in smtp.messages] == []

    schedule = _ReminderSchedule(dataclasses.replace(always, smtp_host=smtp.host), marker)
    schedule.maybe_send(store, reminder_catalog)
    assert sorted(m.rcpt_tos for m in smtp.messages) == [(SCIENCE,), (HOME_AFFAIRS,)]
    assert all("5 nhiệm vụ quá hạn" in m.subject for m in smtp.messages)
    today = datetime.now(UTC).astimezone(VIETNAM).date()
    assert marker.read_text() == today.isoformat()
    schedule.maybe_send(store, reminder_catalog)  # same day: not again
    assert len(smtp.messages) == 2


class _RefusingHandler(_RecordingHandler):
    """Records messages, refusing one mailbox at RCPT TO as a real server does (550)."""

    def __init__(self, received: _Recorder[ReceivedMail], refused: str) -> None:
        super().__init__(received)
        self.refused = refused

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address == self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def refusing_smtp(settings: Settings) -> Iterator[tuple[Settings, _Recorder[ReceivedMail]]]:
    """Settings sending to an SMTP server that refuses Sở Nội vụ's mailbox; what it accepted."""
    received: _Recorder[ReceivedMail] = _Recorder()
    (port,) = free_ports(1)
    controller = Controller(
        _RefusingHandler(received, HOME_AFFAIRS), hostname="127.0.0.1", port=port
    )
    controller.start()
    try:
        yield dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port), received
    finally:
        controller.stop()


def test_after_a_refused_digest_the_retry_does_not_repeat_the_sent_ones(
    refusing_smtp: tuple[Settings, _Recorder[ReceivedMail]],
    reminder_catalog: Catalog,
    store: Store,
) -> None:
    sending, received = refusing_smtp
    overdue_tasks(store)
    marker = sending.alerts_state_dir / "alerts-1.reminders"
    marker.parent.mkdir(parents=True)
    schedule = _ReminderSchedule(dataclasses.replace(sending, reminders_at="00:00"), marker)
    for _cycle in range(3):  # the refused digest is retried every cycle...
        schedule.maybe_send(store, reminder_catalog)
        assert schedule.due(datetime.now(UTC)) is not None
    (mail,) = received.snapshot()  # ...but Sở Khoa học và Công nghệ got its digest once
    assert mail.rcpt_tos == (SCIENCE,)
    today = datetime.now(UTC).astimezone(VIETNAM).date()
    assert marker.read_text().splitlines() == [f"{today} partial", "46-so-khoa-hoc-va-cong-nghe"]
