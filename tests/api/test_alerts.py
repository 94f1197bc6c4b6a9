"""``/api/v1/alerts``: active alerts, history and silences against a real Alertmanager.

Every test has its own Alertmanager (``tests/alerts/conftest.py``) notifying a real webhook and
SMTP receiver; alerts reach it from the real evaluator or the client, and the history is what the
evaluator wrote to ``derived.alert`` of the test's own database.
"""

# The Alertmanager fixtures of tests/alerts/conftest.py are imported and requested by name.
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from alerts.alertmanager import PostableAlert
from alerts.evaluate import Evaluator
from alerts.rules import Rule, catalog_rules
from alerts.state import StateStore
from ioc.api import create_app
from ioc.catalog import Catalog, get_catalog
from ioc.engine.values import IndicatorValue, Level
from ioc.settings import Settings
from ioc.stack import free_ports
from ioc.store import Store, time_ns
from tests.alerts.conftest import LocalAlertmanager, alertmanager, smtp, webhook  # noqa: F401
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

PROBLEM = "application/problem+json"
KIM_LONG = ("46-water-kim-long", "46", "19810")  # source, province, ward (Huế)
LONG_BIEN = ("01-water-long-bien", "01", "00148")  # Hà Nội


@pytest.fixture
def api_settings(api_settings: Settings, alertmanager: LocalAlertmanager) -> Settings:
    """The API's settings, pointed at this test's Alertmanager."""
    return dataclasses.replace(api_settings, alertmanager_url=alertmanager.url)


@pytest.fixture
def store(api_settings: Settings) -> Iterator[Store]:
    with Store(api_settings) as s:
        yield s


@pytest.fixture
def catalog(api_settings: Settings) -> Catalog:
    return get_catalog(api_settings.registry_file)


@pytest.fixture
def flood_evaluator(
    api_settings: Settings, catalog: Catalog, store: Store, alertmanager: LocalAlertmanager
) -> Evaluator:
    """The real evaluator with the catalog's critical flood rule (firing at the first breach),
    delivering to the test's Alertmanager and writing its history to the test's database."""
    (rule,) = [r for r in catalog_rules(catalog) if r.key == "flood-alarm:critical"]
    fast: Rule = dataclasses.replace(rule, for_s=0.0)
    state = StateStore(api_settings.alerts_state_dir / f"{api_settings.alerts_id}.sqlite")
    return Evaluator(api_settings, catalog, [fast], store, state, sink=alertmanager.client)


def flood(store: Store, at: datetime, level: float, station: tuple[str, str, str]) -> None:
    """The engine's station-level flood value, stamped just before ``at``."""
    source, province, ward = station
    value = IndicatorValue(
        indicator="flood_level",
        unit="level",
        level=Level.SOURCE,
        time_ns=time_ns(at - timedelta(seconds=1)),
        value=level,
        band=None,
        province=province,
        ward=ward,
        source=source,
    )
    store.write([value.to_point()], rp="derived")


def unique_name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def alert(name: str, **labels: str) -> PostableAlert:
    now = datetime.now(UTC)
    return PostableAlert(
        labels={"alertname": name, "severity": "critical", **labels},
        annotations={"summary_en": f"{name} at {labels.get('ward', 'VN')}"},
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(minutes=10),
    )


def get(client: FlaskClient, key: str, path: str, **query: str) -> Any:
    return client.get(path, headers={"X-API-Key": key}, query_string=query)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    return body


# --- active alerts ---------------------------------------------------------------------------


def test_alerts_the_evaluator_posts_are_listed_with_their_labels_and_annotations(
    client: FlaskClient,
    keys: Keys,
    store: Store,
    flood_evaluator: Evaluator,
    alertmanager: LocalAlertmanager,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    flood(store, now, 3.4, KIM_LONG)
    flood(store, now, 2.0, LONG_BIEN)  # below the critical threshold of 3: no alert
    cycle = flood_evaluator.evaluate(now)
    assert cycle.firing == 1 and cycle.delivered

    response = get(client, keys.read, "/api/v1/alerts")
    assert response.status_code == 200, response.get_data(as_text=True)
    (item,) = response.get_json()["items"]
    (held,) = alertmanager.client.alerts({"alertname": "flood-alarm"})
    assert item["fingerprint"] == held.fingerprint
    assert {k: item[k] for k in ("alertname", "severity", "state", "rule")} == {
        "alertname": "flood-alarm",
        "severity": "critical",
        "state": "active",
        "rule": "flood-alarm:critical",
    }
    assert (item["source"], item["province"], item["ward"]) == KIM_LONG
    assert (item["indicator"], item["level"]) == ("flood_level", "source")
    assert item["silenced_by"] == [] and item["inhibited_by"] == []
    assert item["labels"] == dict(held.labels)
    annotations = item["annotations"]
    assert "Kim Long" in annotations["summary_vi"] and "Kim Long" in annotations["summary_en"]
    assert annotations["value"] == "3.4"
    assert annotations["wall"].endswith("/d/ioc-province-wall?var-province=46")
    assert annotations["condition"].startswith("value >= 3")
    assert item["starts_at"] == now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert item["generator_url"] == annotations["wall"]


def test_a_province_key_sees_only_alerts_of_its_provinces(
    client: FlaskClient, keys: Keys, alertmanager: LocalAlertmanager
) -> None:
    name = unique_name()
    alertmanager.client.post_alerts(
        [
            alert(name, province="01", ward="00070"),
            alert(name, province="46", ward="19768"),
            alert(name, province="96"),
            alert(name),  # no province label: national, or posted by another tool
        ]
    )

    def provinces(key: str, **query: str) -> list[str | None]:
        response = get(client, key, "/api/v1/alerts", alertname=name, **query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return sorted((i["province"] for i in response.get_json()["items"]), key=str)

    assert provinces(keys.read) == ["01", "46", "96", None]
    assert provinces(keys.operator, province="46") == ["46"]
    assert provinces(keys.hanoi) == ["01"]
    assert provinces(keys.hue_camau) == ["46", "96"]
    assert provinces(keys.hue_camau, province="96") == ["96"]
    for key, other in ((keys.hanoi, "46"), (keys.hue_camau, "01"), (keys.read, "99")):
        body = assert_problem(get(client, key, "/api/v1/alerts", province=other), 404)
        assert other in body["detail"]


def test_alerts_are_filtered_by_severity_and_alertname(
    client: FlaskClient, keys: Keys, alertmanager: LocalAlertmanager
) -> None:
    name, other = unique_name(), unique_name()
    warning = dataclasses.replace(
        alert(name, province="46", ward="19810"),
        labels={"alertname": name, "severity": "warning", "province": "46", "ward": "19810"},
    )
    alertmanager.client.post_alerts([alert(name, province="46"), warning, alert(other)])
    items = get(client, keys.read, "/api/v1/alerts", alertname=name).get_json()["items"]
    assert [i["severity"] for i in items] == ["critical", "warning"]  # critical first
    warnings = get(client, keys.read, "/api/v1/alerts", severity="warning").get_json()["items"]
    assert [(i["alertname"], i["ward"]) for i in warnings] == [(name, "19810")]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"severity": "urgent"}, "severity"),
        ({"province": "1"}, "province"),
        ({"silenced": "maybe"}, "silenced"),
        ({"alertname": "flood alarm"}, "alertname"),
        ({"provnce": "01"}, "provnce"),
    ],
)
def test_bad_alert_filters_are_400_naming_the_parameter(
    client: FlaskClient, keys: Keys, query: dict[str, str], parameter: str
) -> None:
    body = assert_problem(get(client, keys.read, "/api/v1/alerts", **query), 400)
    assert body["parameter"] == parameter
    assert parameter in body["detail"]


def test_an_unreachable_alertmanager_is_a_503_naming_its_url(
    api_settings: Settings, keys: Keys
) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    app = create_app(
        {"TESTING": True}, settings=dataclasses.replace(api_settings, alertmanager_url=url)
    )
    client = app.test_client()
    operator = {"X-API-Key": keys.operator}
    answers = [
        client.get("/api/v1/alerts", headers={"X-API-Key": keys.read}),
        client.get("/api/v1/alerts/silences", headers=operator),
        client.post(
            "/api/v1/alerts/silences",
            headers=operator,
            json={"matchers": {"province": "46"}, "duration": "1h", "comment": "storm"},
        ),
        client.delete(f"/api/v1/alerts/silences/{uuid.uuid4()}", headers=operator),
    ]
    for response in answers:
        body = assert_problem(response, 503)
        assert body["detail"] == f"Alertmanager at {url} not reachable; try again shortly"
        assert response.headers["Retry-After"] == "5" and body["retry_after"] == 5
    # The history does not need Alertmanager.
    assert get(client, keys.read, "/api/v1/alerts/history").status_code == 200


# --- history ---------------------------------------------------------------------------------


@pytest.fixture
def history(store: Store, flood_evaluator: Evaluator) -> datetime:
    """The evaluator's changes: Huế fires at t0 and resolves at t0+60 s, Hà Nội fires at t0+30 s.

    Returns t0 (ten minutes ago)."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    for offset, station, level in ((0, KIM_LONG, 3.2), (30, LONG_BIEN, 3.1), (60, KIM_LONG, 2.0)):
        at = t0 + timedelta(seconds=offset)
        flood(store, at, level, station)
        assert len(flood_evaluator.evaluate(at).transitions) == 1
    return t0


def changes(client: FlaskClient, key: str, **query: str) -> list[tuple[str, str, str]]:
    """(province, previous, state) of each change, in the order served."""
    response = get(client, key, "/api/v1/alerts/history", **query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return [(i["province"], i["previous"], i["state"]) for i in response.get_json()["items"]]


HUE_RESOLVED = ("46", "firing", "resolved")
HANOI_FIRED = ("01", "inactive", "firing")
HUE_FIRED = ("46", "inactive", "firing")


def test_history_lists_the_evaluators_changes_newest_first(
    client: FlaskClient, keys: Keys, history: datetime
) -> None:
    response = get(client, keys.read, "/api/v1/alerts/history")
    items = response.get_json()["items"]
    assert [(i["province"], i["previous"], i["state"]) for i in items] == [
        HUE_RESOLVED,
        HANOI_FIRED,
        HUE_FIRED,
    ]
    resolved, _, fired = items
    assert fired["time"].startswith(history.strftime("%Y-%m-%dT%H:%M:%S."))
    assert {k: fired[k] for k in ("alertname", "rule", "severity", "source", "ward")} == {
        "alertname": "flood-alarm",
        "rule": "flood-alarm:critical",
        "severity": "critical",
        "source": "46-water-kim-long",
        "ward": "19810",
    }
    assert (fired["value"], fired["threshold"], resolved["value"]) == (3.2, 3.0, 2.0)
    assert "Kim Long" in fired["summary_vi"] and "Kim Long" in fired["summary_en"]
    assert fired["fingerprint"] == resolved["fingerprint"]

    assert changes(client, keys.read, limit="1") == [HUE_RESOLVED]
    assert changes(client, keys.read, province="46") == [HUE_RESOLVED, HUE_FIRED]
    assert changes(client, keys.read, since="585s") == [HUE_RESOLVED, HANOI_FIRED]
    assert changes(client, keys.read, since="5m") == []


def test_history_holds_only_the_provinces_of_a_province_key(
    client: FlaskClient, keys: Keys, history: datetime
) -> None:
    assert changes(client, keys.hanoi) == [HANOI_FIRED]
    assert changes(client, keys.hue_camau) == [HUE_RESOLVED, HUE_FIRED]
    assert changes(client, keys.hue_camau, limit="1") == [HUE_RESOLVED]
    assert changes(client, keys.hue_camau, province="96") == []
    body = assert_problem(get(client, keys.hanoi, "/api/v1/alerts/history", province="46"), 404)
    assert "'46'" in body["detail"]


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ({"since": "31d"}, "since", "at most 30d"),
        ({"since": "yesterday"}, "since", "duration"),
        ({"limit": "0"}, "limit", "1"),
        ({"province": "VN"}, "province", "2-digit"),
    ],
)
def test_bad_history_parameters_are_400_naming_them(
    client: FlaskClient, keys: Keys, query: dict[str, str], parameter: str, says: str
) -> None:
    body = assert_problem(get(client, keys.read, "/api/v1/alerts/history", **query), 400)
    assert body["parameter"] == parameter
    assert says in body["detail"]


# --- silences --------------------------------------------------------------------------------

SILENCE = {"matchers": {"province": "46"}, "duration": "2h", "comment": "storm drill"}


@pytest.mark.parametrize(
    "call",
    [
        ("GET", "/api/v1/alerts/silences", None),
        ("GET", "/api/v1/alerts/silences?state=bogus", None),  # 403 before the parameters
        ("POST", "/api/v1/alerts/silences", SILENCE),
        ("POST", "/api/v1/alerts/silences", {"matchers": {}}),
        ("DELETE", f"/api/v1/alerts/silences/{uuid.uuid4()}", None),
    ],
)
def test_silences_are_for_operator_keys_only(
    client: FlaskClient,
    keys: Keys,
    alertmanager: LocalAlertmanager,
    call: tuple[str, str, dict[str, Any] | None],
) -> None:
    method, path, body = call
    for key in (keys.read, keys.hanoi):
        response = client.open(path, method=method, headers={"X-API-Key": key}, json=body)
        assert "operator" in assert_problem(response, 403)["detail"]
    assert alertmanager.client.silences() == ()


def test_a_silence_made_through_the_api_mutes_matching_alerts_until_it_is_expired(
    client: FlaskClient, keys: Keys, alertmanager: LocalAlertmanager
) -> None:
    name = unique_name()
    operator = {"X-API-Key": keys.operator}
    created = client.post(
        "/api/v1/alerts/silences",
        headers=operator,
        json={
            "matchers": {"alertname": name, "ward": "19768"},
            "duration": "1h",
            "comment": "gauge under maintenance",
        },
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    silence = created.get_json()
    silence_id = silence["id"]
    assert silence["state"] == "active"
    assert silence["created_by"] == "ops"  # the operator key's name
    assert silence["comment"] == "gauge under maintenance"
    assert sorted(silence["matchers"], key=lambda m: m["name"]) == [
        {"name": "alertname", "value": name, "operator": "="},
        {"name": "ward", "value": "19768", "operator": "="},
    ]
    starts, ends = (
        datetime.fromisoformat(silence[k].replace("Z", "+00:00")) for k in ("starts_at", "ends_at")
    )
    assert abs(ends - starts - timedelta(hours=1)) < timedelta(seconds=1)  # starts on arrival
    assert alertmanager.client.silence(silence_id).state == "active"

    # The silenced alert and a control in the same group (same alertname and province).
    alertmanager.client.post_alerts(
        [alert(name, province="46", ward="19768"), alert(name, province="46", ward="19810")]
    )
    alertmanager.webhook.wait_for(lambda n: n.has("firing", ward="19810"))
    alertmanager.wait_for_flushes(2)
    notified = [a.labels["ward"] for n in alertmanager.webhook.of(name) for a in n.alerts]
    assert notified and set(notified) == {"19810"}, "the silenced alert was notified"

    items = get(client, keys.read, "/api/v1/alerts", alertname=name).get_json()["items"]
    by_ward = {i["ward"]: i for i in items}
    assert by_ward["19768"]["state"] == "suppressed"
    assert by_ward["19768"]["silenced_by"] == [silence_id]
    assert by_ward["19810"]["state"] == "active"
    unsilenced = get(client, keys.read, "/api/v1/alerts", alertname=name, silenced="false")
    assert [i["ward"] for i in unsilenced.get_json()["items"]] == ["19810"]

    def listed(**query: str) -> list[str]:
        response = get(client, keys.operator, "/api/v1/alerts/silences", **query)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [s["id"] for s in response.get_json()["items"]]

    assert listed() == [silence_id]
    assert listed(state="active") == [silence_id]
    assert listed(state="expired") == []

    deleted = client.delete(f"/api/v1/alerts/silences/{silence_id}", headers=operator)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert alertmanager.client.silence(silence_id).state == "expired"
    assert listed(state="expired") == [silence_id] and listed(state="active") == []
    again = client.delete(f"/api/v1/alerts/silences/{silence_id}", headers=operator)
    assert again.status_code == 204  # already expired: nothing to do
    # Expired, it mutes nothing: the next notification of the group holds both alerts.
    alertmanager.webhook.wait_for(lambda n: n.alertname == name and n.has("firing", ward="19768"))

    missing = str(uuid.uuid4())
    body = assert_problem(
        client.delete(f"/api/v1/alerts/silences/{missing}", headers=operator), 404
    )
    assert missing in body["detail"]
    assert_problem(client.delete("/api/v1/alerts/silences/not-a-uuid", headers=operator), 404)


def test_a_silence_names_its_author_when_given(
    client: FlaskClient, keys: Keys, alertmanager: LocalAlertmanager
) -> None:
    response = client.post(
        "/api/v1/alerts/silences",
        headers={"X-API-Key": keys.operator},
        json={**SILENCE, "created_by": "Trực ban Huế", "matchers": {"indicator": "flood_level"}},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    (stored,) = alertmanager.client.silences()
    assert stored.created_by == "Trực ban Huế"
    assert stored.comment == "storm drill"
    assert stored.id == response.get_json()["id"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"duration": "2h", "comment": "x"}, ("matchers", "Missing")),
        ({**SILENCE, "matchers": {}}, ("matchers", "at least one of alertname")),
        ({**SILENCE, "matchers": {"colour": "red"}}, ("matchers.colour", "not a label")),
        ({**SILENCE, "matchers": {"province": "Huế"}}, ("matchers.province", "2-digit")),
        ({**SILENCE, "matchers": {"severity": "urgent"}}, ("matchers.severity", "one of")),
        ({**SILENCE, "duration": "2 hours"}, ("duration", "duration such as")),
        ({**SILENCE, "duration": "31d"}, ("duration", "at most 30d")),
        ({"matchers": {"province": "46"}, "comment": "x"}, ("duration", "Missing")),
        ({"matchers": {"province": "46"}, "duration": "2h"}, ("comment", "Missing")),
        ({**SILENCE, "comment": "   "}, ("comment", "blank")),
        ({**SILENCE, "ends_at": "2030-01-01T00:00:00Z"}, ("ends_at", "Unknown")),
    ],
)
def test_a_silence_that_is_not_valid_is_400_naming_the_field(
    client: FlaskClient,
    keys: Keys,
    alertmanager: LocalAlertmanager,
    body: dict[str, Any],
    expected: tuple[str, str],
) -> None:
    parameter, says = expected
    response = client.post(
        "/api/v1/alerts/silences", headers={"X-API-Key": keys.operator}, json=body
    )
    problem = assert_problem(response, 400)
    assert problem["parameter"] == parameter
    assert parameter in problem["detail"] and says in problem["detail"]
    assert alertmanager.client.silences() == ()


@pytest.mark.parametrize(
    ("matchers", "parameter"),
    [
        ({"province": "99"}, "place"),
        ({"ward": "99999"}, "place"),
        ({"province": "01", "ward": "19768"}, "matchers.ward"),
        ({"source": "46-water-nowhere"}, "matchers.source"),
        ({"province": "01", "source": "46-water-kim-long"}, "matchers.source"),
        ({"indicator": "rainfall"}, "indicator"),
    ],
)
def test_a_silence_of_an_unknown_place_source_or_indicator_is_404(
    client: FlaskClient,
    keys: Keys,
    alertmanager: LocalAlertmanager,
    matchers: dict[str, str],
    parameter: str,
) -> None:
    response = client.post(
        "/api/v1/alerts/silences",
        headers={"X-API-Key": keys.operator},
        json={**SILENCE, "matchers": matchers},
    )
    assert assert_problem(response, 404)["parameter"] == parameter
    assert alertmanager.client.silences() == ()
