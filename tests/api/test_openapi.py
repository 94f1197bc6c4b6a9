"""The API against its own OpenAPI document: schemathesis with every default check.

Every operation of ``/api/v1/openapi.json`` is called in-process (WSGI) with generated valid and
invalid inputs, on a database seeded with indicator values, with an operator key (so operator
resources and pushing readings are exercised). Each answer must be no server error, use a
documented status code and media type, match its documented schema and headers; valid inputs
must be accepted, invalid ones refused, and the key must actually be required.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.config import SchemathesisConfig

from ioc.api import create_app
from ioc.engine import IndicatorValue, Level
from ioc.settings import Settings, load_settings
from ioc.store import Store
from tests.api.conftest import Keys

pytestmark = pytest.mark.services

DOCUMENT = "/api/v1/openapi.json"
HOUR_NS = 3600 * 10**9
SEED = 57  # one fixed seed: a failure is reproduced by running the file again


def _seed_values(settings: Settings) -> None:
    """A few hours of VN_AQI for some provinces, wards and the nation, task completion daily."""
    end = time.time_ns() // HOUR_NS * HOUR_NS
    points = []
    for hour in range(6):
        at = end - hour * HOUR_NS
        for n, province in enumerate(("01", "46", "79", "96")):
            points.append(
                IndicatorValue(
                    "vn_aqi",
                    "AQI",
                    Level.PROVINCE,
                    at,
                    40.0 + 30 * n + hour,
                    band=None,
                    province=province,
                    coverage=2,
                    expected=3,
                    sources=3,
                    sources_expected=3,  # coverage by kind of unit (ioc/api/coverage.py)
                    wards_reporting=2,
                    wards_expected=3,
                    departments_reporting=0,
                    departments_expected=0,
                    origin=f"{province}-air-x",
                    origin_province=province,
                ).to_point()
            )
        for ward, province in (("00070", "01"), ("00167", "01"), ("19768", "46")):
            points.append(
                IndicatorValue(
                    "vn_aqi", "AQI", Level.WARD, at, 90.0 + hour, None, province, ward
                ).to_point()
            )
        points.append(
            IndicatorValue(
                "vn_aqi",
                "AQI",
                Level.NATION,
                at,
                150.0 - hour,
                None,
                coverage=4,
                expected=5,
                sources=9,
                sources_expected=12,
                provinces_reporting=4,
                provinces_expected=5,
                wards_reporting=9,
                wards_expected=12,
                departments_reporting=0,
                departments_expected=0,
            ).to_point()
        )
    for province, rate in (("01", 40.0), ("96", 53.66), ("40", 51.0)):
        points.append(
            IndicatorValue(
                "task_completion_rate", "%", Level.PROVINCE, end, rate, None, province
            ).to_point()
        )
    with Store(settings) as store:
        store.write(points, rp="derived")


CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        # Schemathesis' defaults (every check, positive and negative data) but one: the statuses
        # positive_data_acceptance accepts for a schema-valid request. The document cannot say
        # which codes exist, so a valid-looking but unknown indicator, place, province, ward or
        # source is answered 404: the documented answer (a problem document naming the value),
        # not a refusal of valid data.
        "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404"]}},
        # The key is not generated (and negated) as a parameter: every request carries the test's
        # real operator key. Requests without a key or with a wrong one are ignored_auth's probes.
        "generation": {"with-security-parameters": False},
    }
)


class UnderTest:
    """The WSGI application schemathesis calls and the key it sends, installed by a fixture.

    The schema must exist when the module is collected (``schema.parametrize()``), before any
    database or key does; its requests go through this object to the current test's app, so no
    request can reach another app. (``schemathesis.pytest.from_fixture`` would avoid this but
    fails on pytest 9.2: it reads ``Function._nodeid``, which pytest no longer has.)
    """

    def __init__(self) -> None:
        self.app: Flask | None = None
        self.key: str | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self.app is None:
            raise RuntimeError("no app under test: use the seeded_app fixture")
        return self.app(environ, start_response)


def _document() -> dict[str, Any]:
    """The API's OpenAPI document, as an app with default settings serves it (no I/O needed)."""
    document: dict[str, Any] = (
        create_app(settings=load_settings({})).test_client().get(DOCUMENT).get_json()
    )
    return document


UNDER_TEST = UnderTest()
schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)
schema.app = UNDER_TEST


@pytest.fixture
def seeded_app(app: Flask, api_settings: Settings, keys: Keys) -> Iterator[Flask]:
    """The test's app, seeded and installed with its operator key; it serves the same document."""
    _seed_values(api_settings)
    assert app.test_client().get(DOCUMENT).get_json() == schema.raw_schema
    UNDER_TEST.app, UNDER_TEST.key = app, keys.operator
    yield app
    UNDER_TEST.app = UNDER_TEST.key = None


@schema.parametrize()
@hypothesis.settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
)
def test_every_operation_conforms_to_the_document(
    case: schemathesis.Case[Any], seeded_app: Flask
) -> None:
    case.call_and_validate(headers={"X-API-Key": UNDER_TEST.key})


def _now_rfc3339(offset_s: int = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_s))


# Generated path parameters are random text, so they almost never name a catalog indicator, a
# seeded place or a registered source: the generated run mostly sees the 404 of those resources.
# These requests reach their 200 answers on the seeded data and pass the same checks.
SEEDED_REQUESTS = [
    ("/api/v1/indicators/{key}", {"key": "vn_aqi"}, {}),
    ("/api/v1/indicators/{key}/values", {"key": "vn_aqi"}, {"level": "province"}),
    ("/api/v1/indicators/{key}/values", {"key": "vn_aqi"}, {"level": "ward", "province": "01"}),
    ("/api/v1/indicators/{key}/values", {"key": "vn_aqi"}, {"level": "nation", "format": "csv"}),
    ("/api/v1/indicators/{key}/ranking", {"key": "vn_aqi"}, {}),
    ("/api/v1/indicators/{key}/ranking", {"key": "task_completion_rate"}, {"format": "csv"}),
    ("/api/v1/indicators/{key}/ranking", {"key": "vn_aqi"}, {"level": "ward", "province": "01"}),
    ("/api/v1/indicators/{key}/series", {"key": "vn_aqi"}, {"place": "01", "interval": "1h"}),
    ("/api/v1/indicators/{key}/series", {"key": "vn_aqi"}, {"place": "VN", "agg": "max"}),
    ("/api/v1/indicators/{key}/series", {"key": "vn_aqi"}, {"place": "00070", "format": "csv"}),
    ("/api/v1/provinces/{code}/scorecard", {"code": "01"}, {}),
    ("/api/v1/provinces/{code}/scorecard", {"code": "01"}, {"format": "csv"}),
    ("/api/v1/places/provinces/{code}", {"code": "46"}, {}),
    ("/api/v1/places/provinces/{code}/wards", {"code": "01"}, {"q": "hoan kiem"}),
    ("/api/v1/places/wards/{code}", {"code": "00070"}, {}),
    ("/api/v1/places/search", {}, {"q": "hue"}),
    ("/api/v1/feeds", {}, {"province": "01", "format": "json"}),
    ("/api/v1/dead-letters", {}, {"since": "30d"}),
]


@pytest.mark.parametrize(("path", "path_parameters", "query"), SEEDED_REQUESTS)
def test_seeded_resources_conform_to_the_document(
    seeded_app: Flask, path: str, path_parameters: dict[str, str], query: dict[str, str]
) -> None:
    case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query)
    response = case.call_and_validate(headers={"X-API-Key": UNDER_TEST.key})
    assert response.status_code == 200, response.text


def test_a_pushed_reading_is_stored_and_its_answer_conforms(seeded_app: Flask) -> None:
    document: dict[str, Any] = {
        "v": 1,
        "source": "01-air-cau-giay",
        "time": _now_rfc3339(-60),
        "metrics": {"pm25": 35.2, "pm10": {"value": 51, "unit": "ug/m3"}},
    }
    case = schema["/api/v1/feeds/{source}/readings"]["POST"].Case(
        path_parameters={"source": "01-air-cau-giay"}, body=document, media_type="application/json"
    )
    response = case.call_and_validate(headers={"X-API-Key": UNDER_TEST.key})
    assert response.status_code == 200, response.text
    assert response.json()["points_written"] == 1
