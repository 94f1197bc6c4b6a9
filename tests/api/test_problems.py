"""A 400 names every invalid parameter: its location, name, value and message, in plain text."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.conftest import Keys

pytestmark = pytest.mark.services

PROBLEM = "application/problem+json"


def bad_request(response: Any) -> dict[str, Any]:
    """The 400 problem document, checked to read as one line of plain text."""
    assert response.status_code == 400, response.data
    assert response.mimetype == PROBLEM
    document: dict[str, Any] = response.get_json()
    detail = document["detail"]
    assert "\n" not in detail
    assert "['" not in detail and "{'" not in detail, detail  # no Python list or dict repr
    for entry in document["errors"]:
        assert set(entry) == {"location", "parameter", "value", "message"}, entry
        assert isinstance(entry["message"], str) and entry["message"], entry
        assert "['" not in entry["message"], entry
    return document


def listed(document: dict[str, Any]) -> set[tuple[str, str, Any]]:
    return {(e["location"], e["parameter"], e["value"]) for e in document["errors"]}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/api/v1/indicators/vn_aqi/values?level=district&page_size=9999&province=1",
            {
                ("query", "level", "district"),
                ("query", "page_size", "9999"),
                ("query", "province", "1"),
            },
        ),
        (
            "/api/v1/indicators/vn_aqi/series?interval=fast&agg=avg",
            {("query", "place", None), ("query", "interval", "fast"), ("query", "agg", "avg")},
        ),
        ("/api/v1/feeds?state=dead&page=0", {("query", "state", "dead"), ("query", "page", "0")}),
        (
            "/api/v1/indicators/vn_aqi/ranking?levl=ward&page_size=0",
            {("query", "levl", "ward"), ("query", "page_size", "0")},
        ),
    ],
)
def test_every_invalid_query_parameter_is_listed_with_its_value(
    client: FlaskClient, keys: Keys, url: str, expected: set[tuple[str, str, Any]]
) -> None:
    document = bad_request(client.get(url, headers={"X-API-Key": keys.read}))
    assert listed(document) == expected
    assert len(document["errors"]) == len(expected)
    for _, name, _ in expected:
        assert f"'{name}'" in document["detail"], document["detail"]
    first = document["errors"][0]
    assert (document["parameter"], document["value"]) == (first["parameter"], first["value"])


def test_every_invalid_body_field_is_listed_with_its_value(client: FlaskClient, keys: Keys) -> None:
    silence = {
        "matchers": {"colour": "red", "province": "Huế"},
        "duration": "2 hours",
        "comment": "   ",
    }
    response = client.post(
        "/api/v1/alerts/silences", headers={"X-API-Key": keys.operator}, json=silence
    )
    document = bad_request(response)
    assert listed(document) == {
        ("body", "matchers.colour", "red"),
        ("body", "matchers.province", "Huế"),
        ("body", "duration", "2 hours"),
        ("body", "comment", "   "),
    }
    messages = {e["parameter"]: e["message"] for e in document["errors"]}
    assert messages["matchers.colour"].startswith("not a label a silence can match")
    assert messages["matchers.province"] == "must be a 2-digit province code, e.g. 01"
    assert messages["comment"] == "must not be blank"
    for name in ("matchers.colour", "matchers.province", "duration", "comment"):
        assert f"'{name}'" in document["detail"], document["detail"]
    assert document["detail"].startswith("4 invalid parameters: ")


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"{", "Invalid JSON body."), (b"[]", "Invalid input type.")],
)
def test_a_body_that_is_not_a_json_object_is_named_as_the_body(
    client: FlaskClient, keys: Keys, data: bytes, message: str
) -> None:
    response = client.post(
        "/api/v1/alerts/silences",
        headers={"X-API-Key": keys.operator, "Content-Type": "application/json"},
        data=data,
    )
    document = bad_request(response)
    assert document["errors"] == [
        {"location": "body", "parameter": "body", "value": None, "message": message}
    ]
    assert document["detail"] == f"request body: {message.rstrip('.')}"


@pytest.mark.parametrize(
    ("url", "parameter", "value"),
    [
        ("/api/v1/indicators/vn_aqi/series?place=01&interval=1s", "interval", "1s"),
        ("/api/v1/dead-letters?since=90d", "since", "90d"),
    ],
)
def test_a_parameter_refused_by_the_view_is_listed_too(
    client: FlaskClient, keys: Keys, url: str, parameter: str, value: str
) -> None:
    document = bad_request(client.get(url, headers={"X-API-Key": keys.operator}))
    [entry] = document["errors"]
    assert (entry["location"], entry["parameter"], entry["value"]) == ("query", parameter, value)
    assert (document["parameter"], document["value"]) == (parameter, value)
