"""Scenarios 9-12 of the fault suite, CI profile (3 trials each), inside ``make test``.

Each scenario starts its own servers per trial: Mosquitto and InfluxDB (the local stack's, or
deploy/'s Mosquitto config with the generated ACL for 10), a collector and the API (gunicorn) as
child processes. The trials' random choices (hypothesis' seed in 9, the order of abuses and
faults, the invalid values) come from ``IOC_FAULTS_SEED``, printed in every failure.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from random import Random

import pytest
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.api.problems import gunicorn_problem
from ioc.faults import Profile, ScenarioResult, scenario
from ioc.faults.hostile import (
    FORMS,
    INJECTIONS,
    corpus,
    generated,
    get_operations,
    json_text,
)
from ioc.settings import load_settings

SEED = int(os.environ.get("IOC_FAULTS_SEED") or Random().getrandbits(32))


def _describe(result: ScenarioResult) -> str:
    lines = [f"scenario {result.number} ({result.name}), seed {SEED} (IOC_FAULTS_SEED):"]
    for index, trial in enumerate(result.trials, 1):
        failed = [name for name, ok in trial.checks.items() if not ok]
        lines.append(f"  trial {index}: failed {failed}. {trial.notes}")
    return "\n".join(lines)


def _run(number: int, tmp_path: Path) -> ScenarioResult:
    result = scenario(number)(Profile.ci(), Random(SEED + number), tmp_path)
    assert len(result.trials) >= Profile.ci().trials >= 3
    assert result.passed, _describe(result)
    return result


@pytest.mark.services
def test_hostile_input_is_dead_lettered_or_refused_and_good_traffic_is_untouched(
    tmp_path: Path,
) -> None:
    result = _run(9, tmp_path)
    for trial in result.trials:
        assert trial.lost == 0 and trial.duplicates == 0 and trial.unexpected == 0
        assert trial.broker_dropped >= 3  # oversize, control character, NUL: refused and counted


@pytest.mark.services
def test_every_acl_abuse_against_the_deploy_broker_is_denied(tmp_path: Path) -> None:
    result = _run(10, tmp_path)
    for trial in result.trials:
        assert sum(name.startswith("denied: ") for name in trial.checks) >= 10
        assert trial.stored == trial.acknowledged == 2  # the two controls, nothing forged


@pytest.mark.services
def test_the_api_answers_503_while_influxdb_is_down_or_slow_and_recovers(
    tmp_path: Path,
) -> None:
    result = _run(11, tmp_path)
    for trial in result.trials:
        assert trial.acknowledged >= 5, trial.notes  # data endpoints that answered 503


@pytest.mark.services
def test_a_flooding_key_is_limited_and_invalid_parameters_are_all_listed(
    tmp_path: Path,
) -> None:
    result = _run(12, tmp_path)
    print(result.figures)  # the other key's latency ratio, for the log


# --- the pieces, without servers ----------------------------------------------------------------


def test_generated_messages_are_reproducible_from_the_seed() -> None:
    now_ms = 1_760_000_000_000
    first, again = generated(7, 40, now_ms), generated(7, 40, now_ms)
    assert first == again
    assert len({(m.topic, m.payload) for m in first}) > 20
    assert generated(8, 40, now_ms) != first


def test_the_corpus_covers_every_form_registered_and_not_and_what_the_broker_refuses() -> None:
    messages = corpus(1_760_000_000_000)
    for form in FORMS:
        assert any(m.topic == form.registered for m in messages), form.name
        assert any(m.topic == form.unregistered for m in messages), form.name
    refused = [m for m in messages if m.refused]
    assert any(len(m.payload) > 1_048_576 for m in refused)
    assert any(any(ord(c) < 0x20 for c in m.topic) for m in refused)
    # every injection reaches a payload of every form, as an id and as a metric name
    for text in INJECTIONS:
        encoded = json_text(text)
        for form in FORMS:
            ident = form.template.replace(b"@ID@", encoded).split(b"@")[0]
            assert any(m.payload.startswith(ident) for m in messages), (text, form.name)
            assert sum(encoded in m.payload and m.topic == form.registered for m in messages) >= 2


@pytest.fixture
def client(tmp_path: Path) -> tuple[FlaskClient, str]:
    """The real app with no InfluxDB behind it: validation answers before any query."""
    settings = load_settings(
        {
            "IOC_VAR_DIR": str(tmp_path / "var"),
            "IOC_INFLUX_URL": "http://127.0.0.1:9",
            "IOC_API_CACHE_SECONDS": "0",
        }
    )
    key = KeyStore(settings.api_keys_path).create("walker", "operator")[1]
    return create_app({"TESTING": True}, settings=settings).test_client(), key


def test_an_invalid_format_is_listed_with_every_other_invalid_parameter(
    client: tuple[FlaskClient, str],
) -> None:
    """Regression: ``format`` was checked first and alone, hiding the other invalid parameters."""
    app, key = client
    answer = app.get(
        "/api/v1/feeds?format=xml&page=zero&state=sleeping&province=" + "x" * 600,
        headers={"X-API-Key": key},
    )
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    body = answer.get_json()
    assert [e["parameter"] for e in body["errors"]] == ["format", "page", "province", "state"]
    assert body["formats"] == ["json", "csv"]


def test_the_walk_finds_every_get_of_the_document(client: tuple[FlaskClient, str]) -> None:
    app, key = client
    document = app.get("/api/v1/openapi.json", headers={"X-API-Key": key}).get_json()
    operations, unfilled = get_operations(document)
    assert not unfilled
    gets = [path for path, item in document["paths"].items() if "get" in item]
    assert sorted(op.template for op in operations) == sorted(gets)
    assert sum(bool(op.query) for op in operations) >= 15
    for op in operations:  # a valid request path for each (no 404 from a wrong sample value)
        assert app.get("/api/v1" + op.path, headers={"X-API-Key": key}).status_code != 404, op


def test_a_10_kb_parameter_is_refused_and_echoed_only_in_part(
    client: tuple[FlaskClient, str],
) -> None:
    """The app refuses it naming it (under gunicorn, a request line that long is a 414 first)."""
    app, key = client
    answer = app.get("/api/v1/feeds?province=" + "x" * 10_240, headers={"X-API-Key": key})
    assert answer.status_code == 400
    body = answer.get_json()
    assert [e["parameter"] for e in body["errors"]] == ["province"]
    assert body["errors"][0]["value"].endswith("... (10240 characters)")
    assert len(answer.get_data()) < 2_000


def test_gunicorns_own_refusals_are_problems() -> None:
    left, right = socket.socketpair()
    with left, right:
        gunicorn_problem(left, 414, "URI Too Long", "Request Line is too large (10276 > 8190)")
        left.shutdown(socket.SHUT_WR)
        raw = b"".join(iter(lambda: right.recv(65536), b""))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 414
