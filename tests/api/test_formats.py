"""Formats: ``?format=`` or Accept that a resource cannot serve is refused, never ignored."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.settings import Settings
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

PROBLEM = "application/problem+json"
JSON_ONLY = ["json"]
JSON_OR_CSV = ["json", "csv"]
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM
    document: dict[str, Any] = response.get_json()
    return document


@pytest.mark.parametrize(
    ("url", "formats"),
    [
        ("/api/v1/indicators?format=csv", JSON_ONLY),
        ("/api/v1/indicators/vn_aqi?format=xml", JSON_ONLY),
        ("/api/v1/places/provinces?format=csv", JSON_ONLY),
        ("/api/v1/places/wards/00070?format=csv", JSON_ONLY),
        ("/api/v1/places/search?q=hue&format=csv", JSON_ONLY),
        ("/api/v1/reminders?format=csv", JSON_ONLY),
        ("/api/v1/alerts/history?format=csv", JSON_ONLY),
        ("/api/v1/openapi.json?format=yaml", JSON_ONLY),
        ("/api/v1/indicators/vn_aqi/values?format=xml", JSON_OR_CSV),
        ("/api/v1/indicators/vn_aqi/ranking?format=xlsx", JSON_OR_CSV),
        ("/api/v1/indicators/vn_aqi/series?place=01&format=xml", JSON_OR_CSV),
        ("/api/v1/provinces/01/scorecard?format=xml", JSON_OR_CSV),
        ("/api/v1/feeds?format=xml", JSON_OR_CSV),
    ],
)
def test_a_format_the_resource_does_not_serve_is_400_naming_the_formats(
    client: FlaskClient, keys: Keys, url: str, formats: list[str]
) -> None:
    document = problem(client.get(url, headers={"X-API-Key": keys.operator}), 400)
    asked = url.rsplit("format=", 1)[1]
    assert (document["parameter"], document["value"]) == ("format", asked)
    assert document["formats"] == formats
    assert document["errors"][0]["parameter"] == "format"
    assert "'format'" in document["detail"]
    assert f"'{asked}'" in document["detail"]
    for name in formats:
        assert name in document["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/indicators?format=json",
        "/api/v1/indicators/vn_aqi?format=json",
        "/api/v1/places/provinces/46?format=json",
        "/api/v1/places/search?q=hue&format=json",
        "/api/v1/places/provinces/01/wards?format=json",
    ],
)
def test_format_json_is_accepted_by_every_resource(
    client: FlaskClient, keys: Keys, url: str
) -> None:
    response = client.get(url, headers={"X-API-Key": keys.read})
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(
    ("url", "accept", "formats"),
    [
        ("/api/v1/indicators", "text/csv", JSON_ONLY),
        ("/api/v1/places/provinces", "application/xml", JSON_ONLY),
        ("/api/v1/places/search?q=hue", "text/*", JSON_ONLY),
        ("/api/v1/indicators/vn_aqi/values", "application/xml", JSON_OR_CSV),
        ("/api/v1/provinces/01/scorecard", "application/vnd.ms-excel", JSON_OR_CSV),
    ],
)
def test_an_accept_header_no_offered_format_satisfies_is_406(
    client: FlaskClient, keys: Keys, url: str, accept: str, formats: list[str]
) -> None:
    response = client.get(url, headers={"X-API-Key": keys.read, "Accept": accept})
    document = problem(response, 406)
    assert (document["parameter"], document["value"]) == ("Accept", accept)
    assert document["formats"] == formats
    assert "Accept" in document["detail"] and "application/json" in document["detail"]


@pytest.mark.parametrize(
    ("url", "accept", "mimetype"),
    [
        ("/api/v1/indicators", BROWSER, "application/json"),
        ("/api/v1/indicators", "*/*", "application/json"),
        ("/api/v1/indicators", "application/*", "application/json"),
        ("/api/v1/indicators/vn_aqi/values", "text/*", "text/csv"),
        ("/api/v1/indicators/vn_aqi/values?format=json", "text/csv", "application/json"),
        ("/api/v1/indicators/vn_aqi/values?format=csv", "application/xml", "text/csv"),
    ],
)
def test_accept_is_negotiated_and_format_wins(
    client: FlaskClient, keys: Keys, url: str, accept: str, mimetype: str
) -> None:
    response = client.get(url, headers={"X-API-Key": keys.read, "Accept": accept})
    assert response.status_code == 200, response.data
    assert response.mimetype == mimetype


def test_a_cached_answer_is_not_served_to_an_accept_it_does_not_satisfy(
    api_settings: Settings, keys: Keys
) -> None:
    cached = create_app(
        {"TESTING": True}, settings=dataclasses.replace(api_settings, api_cache_seconds=60)
    )
    client = cached.test_client()
    url = "/api/v1/indicators"
    first = client.get(url, headers={"X-API-Key": keys.read})
    assert (first.status_code, first.headers["X-Cache"]) == (200, "miss")
    refused = client.get(url, headers={"X-API-Key": keys.read, "Accept": "text/csv"})
    problem(refused, 406)
    again = client.get(url, headers={"X-API-Key": keys.read, "Accept": "application/json"})
    assert (again.status_code, again.headers["X-Cache"]) == (200, "hit")
