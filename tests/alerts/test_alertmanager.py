"""alerts/alertmanager.py against a real Alertmanager 0.25 that notifies real receivers.

Every wait polls with a deadline. Where a test proves that something was *not* sent, it waits
until Alertmanager has flushed the group again (its notification log was asked and said no), or
until a later notification of the same group shows what that flush contained.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from alerts.alertmanager import Alertmanager, Matcher, PostableAlert
from ioc.errors import AlertmanagerError
from ioc.stack import free_ports
from tests.alerts.conftest import EMAIL_TO, LocalAlertmanager

pytestmark = pytest.mark.services


def unique_name() -> str:
    return f"test_{uuid.uuid4().hex[:10]}"


def flood_alert(
    alertname: str, *, ward: str = "19768", ends_in: timedelta = timedelta(minutes=5)
) -> PostableAlert:
    now = datetime.now(UTC)
    return PostableAlert(
        labels={
            "alertname": alertname,
            "severity": "critical",
            "province": "46",
            "ward": ward,
            "source": "46-water-kim-long",
        },
        annotations={
            "summary_vi": "Sông Hương tại Kim Long vượt báo động III: 4,2 m",
            "summary_en": "Huong river at Kim Long above alarm level III: 4.2 m",
        },
        starts_at=now - timedelta(minutes=1),
        ends_at=now + ends_in,
        generator_url="http://127.0.0.1:13000/d/ioc-province-wall?var-province=46",
    )


def test_one_alert_gives_exactly_one_webhook_notification_with_our_labels(
    alertmanager: LocalAlertmanager,
) -> None:
    name = unique_name()
    alert = flood_alert(name)
    alertmanager.client.post_alerts([alert])

    (notification,) = alertmanager.webhook.wait_for(lambda n: n.alertname == name)
    assert notification.status == "firing"
    assert notification.receiver == "ioc"
    assert dict(notification.group_labels) == {"alertname": name, "province": "46"}
    (notified,) = notification.alerts
    assert dict(notified.labels) == dict(alert.labels)
    assert dict(notified.annotations) == dict(alert.annotations)
    assert notified.generator_url == alert.generator_url
    assert notified.status == "firing"

    alertmanager.wait_for_flushes(2)
    assert len(alertmanager.webhook.of(name)) == 1
    (held,) = alertmanager.client.alerts({"alertname": name})
    assert held.state == "active"
    assert held.receivers == ("ioc",)
    assert held.fingerprint == notified.fingerprint
    assert alert.starts_at is not None
    assert abs(held.starts_at - alert.starts_at) < timedelta(milliseconds=1)  # sent in ms


def test_the_same_label_set_from_two_evaluators_is_one_notification(
    alertmanager: LocalAlertmanager,
) -> None:
    name = unique_name()
    alert = flood_alert(name)
    # Two evaluators, each with its own client, post the same alert in the same cycle...
    with (
        Alertmanager(alertmanager.url) as first,
        Alertmanager(alertmanager.url) as second,
    ):
        first.post_alerts([alert])
        second.post_alerts([alert])
        alertmanager.webhook.wait_for(lambda n: n.alertname == name)
        # ...and again in their next cycles, after the notification went out.
        later = PostableAlert(
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.starts_at,
            ends_at=datetime.now(UTC) + timedelta(minutes=5),
            generator_url=alert.generator_url,
        )
        first.post_alerts([later])
        second.post_alerts([later])

    alertmanager.wait_for_flushes(2)
    notifications = alertmanager.webhook.of(name)
    assert len(notifications) == 1, notifications
    assert len(notifications[0].alerts) == 1
    assert len(alertmanager.client.alerts({"alertname": name})) == 1
    assert alertmanager.metric("alertmanager_alerts_received_total", status="firing") == 4


def test_a_resolved_alert_gives_a_resolved_notification(alertmanager: LocalAlertmanager) -> None:
    name = unique_name()
    alert = flood_alert(name)
    alertmanager.client.post_alerts([alert])
    alertmanager.webhook.wait_for(lambda n: n.alertname == name and n.status == "firing")

    ended = datetime.now(UTC) - timedelta(seconds=1)
    resolution = PostableAlert(
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=ended,
        generator_url=alert.generator_url,
    )
    alertmanager.client.post_alerts([resolution])

    (notification,) = alertmanager.webhook.wait_for(
        lambda n: n.alertname == name and n.status == "resolved"
    )
    (notified,) = notification.alerts
    assert notified.status == "resolved"
    assert datetime.fromisoformat(notified.ends_at.replace("Z", "+00:00")) <= datetime.now(UTC)
    assert [n.status for n in alertmanager.webhook.of(name)] == ["firing", "resolved"]
    assert alertmanager.client.alerts({"alertname": name}) == ()  # active ones only: none


def test_a_silence_stops_the_notification_and_expiring_it_lets_the_next_one_through(
    alertmanager: LocalAlertmanager,
) -> None:
    name = unique_name()
    client = alertmanager.client
    silence_id = client.create_silence(
        {"alertname": name, "ward": "19768"},
        duration=timedelta(hours=1),
        created_by="operator@46",
        comment="gauge under maintenance",
    )
    (silence,) = client.silences({"alertname": name})
    assert silence.id == silence_id
    assert silence.state == "active"
    assert set(silence.matchers) == {Matcher("alertname", name), Matcher("ward", "19768")}

    # The silenced alert and a control in the same group (same alertname and province).
    silenced, control = flood_alert(name, ward="19768"), flood_alert(name, ward="19753")
    client.post_alerts([silenced, control])

    (first,) = alertmanager.webhook.wait_for(lambda n: n.has("firing", ward="19753"))
    assert first.alertname == name
    assert not first.has("firing", ward="19768"), "the silenced alert was notified"
    (held,) = client.alerts({"alertname": name, "ward": "19768"})
    assert held.state == "suppressed"
    assert held.silenced_by == (silence_id,)
    assert client.alerts({"alertname": name}, silenced=False) == tuple(
        a for a in client.alerts({"alertname": name}) if a.labels["ward"] == "19753"
    )

    client.expire_silence(silence_id)
    assert client.silence(silence_id).state == "expired"
    (after,) = alertmanager.webhook.wait_for(
        lambda n: n.alertname == name and n.has("firing", ward="19768")
    )
    assert after.has("firing", ward="19753")  # the group's notification holds both now
    notifications = alertmanager.webhook.of(name)
    assert notifications.index(after) == 1 and notifications[0] is first


def test_email_reaches_the_smtp_server_with_the_alert(alertmanager: LocalAlertmanager) -> None:
    name = unique_name()
    alertmanager.client.post_alerts([flood_alert(name)])

    (mail,) = alertmanager.smtp.wait_for(lambda m: name in m.subject)
    assert mail.rcpt_tos == (EMAIL_TO,)
    assert mail.mail_from == "ioc-alerts@ioc.example"
    assert mail.subject == f"[IOC FIRING:1] {name} · 46"
    plain = mail.plain
    assert f"FIRING {name} (critical)" in plain
    assert "summary_vi: Sông Hương tại Kim Long vượt báo động III: 4,2 m" in plain
    assert "province=46" in plain and "ward=19768" in plain
    assert "wall: http://127.0.0.1:13000/d/ioc-province-wall?var-province=46" in plain
    assert f"Alertmanager: {alertmanager.url}" in plain
    assert mail.message.get_body(("html",)) is not None  # Alertmanager's own HTML as well


def test_filters_select_alerts_by_label_and_regex(alertmanager: LocalAlertmanager) -> None:
    name = unique_name()
    alerts = [flood_alert(name, ward=ward) for ward in ("19753", "19768", "20001")]
    alertmanager.client.post_alerts(alerts)
    wards = {
        a.labels["ward"]
        for a in alertmanager.client.alerts(
            [Matcher("alertname", name), Matcher("ward", "197.*", is_regex=True)]
        )
    }
    assert wards == {"19753", "19768"}
    others = alertmanager.client.alerts(
        [Matcher("alertname", name), Matcher("ward", "19753", is_equal=False)]
    )
    assert {a.labels["ward"] for a in others} == {"19768", "20001"}


def test_status_says_version_and_that_clustering_is_off(alertmanager: LocalAlertmanager) -> None:
    status = alertmanager.client.status()
    assert status.version == "0.25.0"
    assert status.cluster_status == "disabled"
    assert status.peers == ()
    assert status.uptime <= datetime.now(UTC)
    assert alertmanager.client.ready()


def test_a_refused_request_names_the_url_and_alertmanagers_answer(
    alertmanager: LocalAlertmanager,
) -> None:
    with pytest.raises(AlertmanagerError) as caught:
        alertmanager.client.post_alerts([PostableAlert(labels={})])
    error = caught.value
    assert error.status == 400
    assert error.url == f"{alertmanager.url}/api/v2/alerts"
    assert str(error).startswith(f"Alertmanager POST {alertmanager.url}/api/v2/alerts: 400")
    assert "label" in error.body.lower()
    assert not error.retryable

    with pytest.raises(AlertmanagerError, match="404") as missing:
        alertmanager.client.silence(str(uuid.uuid4()))
    assert missing.value.status == 404


def test_an_unreachable_alertmanager_is_one_retryable_error() -> None:
    (port,) = free_ports(1)
    with Alertmanager(f"http://127.0.0.1:{port}", timeout=2) as client:
        assert not client.ready()
        with pytest.raises(AlertmanagerError, match=rf"127\.0\.0\.1:{port}.*unreachable") as caught:
            client.post_alerts([flood_alert("x")])
    assert caught.value.status is None
    assert caught.value.retryable


def test_times_must_be_timezone_aware(alertmanager: LocalAlertmanager) -> None:
    naive = PostableAlert(labels={"alertname": "x"}, starts_at=datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        alertmanager.client.post_alerts([naive])
