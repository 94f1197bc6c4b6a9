"""dashboards.push against an in-memory Grafana 11 on a real HTTP server.

Every request push sends, in every test, is checked against Grafana's published HTTP API
description (the ``grafana`` fixture does it when the test ends), and so is every answer of the
fake server, so the fake cannot drift from Grafana's shapes either.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from dashboards.model import DATASOURCE_UID, Board, Folder, Playlist
from dashboards.push import (
    InfluxDatasource,
    PushReport,
    _Target,
    configure_push,
    push,
    run_push,
)
from ioc.errors import GrafanaError, IocError
from ioc.settings import load_settings
from tests.dashboards.grafana_server import FakeGrafana, Recorded
from tests.dashboards.swagger import Swagger, check_requests

NATIONAL = Folder("ioc-national", "IOC · quốc gia", "national")
PROVINCE = Folder("ioc-province", "IOC · tỉnh", "province")
INFLUX_TOKEN = "influx-grafana-read-token-s3cret"
SOURCE = InfluxDatasource(url="http://influxdb:8086", database="ioc", token=INFLUX_TOKEN)


def make_board(
    uid: str,
    title: str,
    folder: Folder = NATIONAL,
    province: str | None = None,
    query: str = "SELECT last(value) FROM derived.indicator",
) -> Board:
    model: dict[str, Any] = {
        "uid": uid,
        "title": title,
        "tags": ["ioc"],
        "time": {"from": "now-24h", "to": "now"},
        "panels": [
            {
                "id": 1,
                "type": "stat",
                "title": "VN_AQI",
                "gridPos": {"h": 6, "w": 8, "x": 0, "y": 0},
                "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
                "targets": [{"refId": "A", "rawQuery": True, "query": query}],
            }
        ],
        "schemaVersion": 39,
        "templating": {"list": []},
        "annotations": {"list": []},
    }
    return Board(uid.removeprefix("ioc-"), uid, title, folder, model, province)


def retitle(board: Board, title: str) -> Board:
    return dataclasses.replace(board, title=title, model={**board.model, "title": title})


BOARDS = (
    make_board("ioc-overview", "Tổng quan quốc gia"),
    make_board("ioc-air", "Không khí"),
    make_board("ioc-province", "Tỉnh", PROVINCE),
)
WALL = Playlist("ioc-wall", "IOC · tường quốc gia", "2m", ("ioc-overview", "ioc-air"))


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with FakeGrafana() as server:
        yield server
        problems = check_requests(server.requests)
    assert not server.crashes, server.crashes
    assert not problems, "requests or answers that Grafana's API does not describe:\n" + "\n".join(
        problems
    )


def push_to(grafana: FakeGrafana, boards: Any = BOARDS, playlists: Any = (WALL,), **kw: Any):
    kw.setdefault("datasource", SOURCE)
    kw.setdefault("auth", grafana.token)
    return push(boards, playlists, url=grafana.url, **kw)


def writes(grafana: FakeGrafana) -> list[str]:
    return [f"{r.method} {r.path}" for r in grafana.writes()]


def counts(requests: list[Recorded]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in requests:
        out[r.method] = out.get(r.method, 0) + 1
    return out


# --- the contract checker itself -----------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> Swagger:
    return Swagger.grafana()


def test_checker_accepts_what_grafana_documents(spec: Swagger) -> None:
    body = {"dashboard": {"uid": "x", "title": "X"}, "folderUid": "f", "overwrite": True}
    assert spec.check_request("POST", "/api/dashboards/db", body) == []
    assert spec.check_request("GET", "/api/dashboards/uid/ioc-air") == []
    assert spec.check_request("GET", "/api/orgs/name/IOC%2001%20H%C3%A0%20N%E1%BB%99i") == []
    assert spec.check_request("GET", "/api/playlists?query=wall") == []


def test_checker_rejects_a_wrong_path(spec: Swagger) -> None:
    (problem,) = spec.check_request("GET", "/api/dashboard/uid/ioc-air")
    assert "no path of the API description matches '/dashboard/uid/ioc-air'" in problem
    (problem,) = spec.check_request("GET", "/dashboards/uid/ioc-air")
    assert "outside the API's base path" in problem


def test_checker_rejects_a_wrong_method(spec: Swagger) -> None:
    (problem,) = spec.check_request("PUT", "/api/dashboards/db", {"dashboard": {}})
    assert "method not defined for /dashboards/db (defined: POST)" in problem
    (problem,) = spec.check_request("POST", "/api/user/using/three")
    assert "path parameter 'org_id' must be an integer" in problem


def test_checker_rejects_a_missing_required_field(spec: Swagger) -> None:
    (problem,) = spec.check_request("POST", "/api/snapshots", {"name": "no dashboard"})
    assert "required property 'dashboard' is missing" in problem
    (problem,) = spec.check_request("POST", "/api/dashboards/db")
    assert "a JSON body is required" in problem


def test_checker_rejects_undefined_properties_and_types(spec: Swagger) -> None:
    # Grafana's legacy playlist API takes no uid: a client-chosen uid would be dropped silently.
    body: dict[str, Any] = {"uid": "ioc-wall", "name": "w", "interval": "2m", "items": []}
    (problem,) = spec.check_request("POST", "/api/playlists", body)
    assert "properties not in the schema: uid" in problem
    body = {"name": "w", "interval": "2m", "items": [{"type": "dashboard_by_uid", "value": 7}]}
    (problem,) = spec.check_request("POST", "/api/playlists", body)
    assert "body.items[0].value: expected string" in problem
    (problem,) = spec.check_request("GET", "/api/playlists?uid=x")
    assert "query parameter 'uid' is not defined" in problem


def test_checker_checks_answers_too(spec: Swagger) -> None:
    (problem,) = spec.check_response("POST", "/api/orgs", 200, {"orgId": 2})
    assert "required property 'message' is missing" in problem


# --- one organisation ------------------------------------------------------------------------


def test_first_push_creates_everything_and_the_second_writes_nothing(
    grafana: FakeGrafana,
) -> None:
    first = push_to(grafana)
    assert counts(grafana.requests) == {"GET": 7, "POST": 7}
    assert writes(grafana) == [
        "POST /api/folders",
        "POST /api/folders",
        "POST /api/datasources",
        "POST /api/dashboards/db",
        "POST /api/dashboards/db",
        "POST /api/dashboards/db",
        "POST /api/playlists",
    ]
    assert first.changed
    assert first.summary() == "0 unchanged, 7 created, 0 updated"
    assert ("dashboard", "ioc-air", "created") in first.created

    main = grafana.org("Main Org.")
    assert {uid: f["title"] for uid, f in main.folders.items()} == {
        "ioc-national": NATIONAL.title,
        "ioc-province": PROVINCE.title,
    }
    assert {uid: d["folderUid"] for uid, d in main.dashboards.items()} == {
        "ioc-overview": "ioc-national",
        "ioc-air": "ioc-national",
        "ioc-province": "ioc-province",
    }
    stored = main.dashboards["ioc-air"]["dashboard"]
    assert stored["version"] == 1
    assert {k: v for k, v in stored.items() if k not in ("id", "version")} == BOARDS[1].model
    source = main.datasources[DATASOURCE_UID]
    assert source["type"] == "influxdb"
    assert source["access"] == "proxy"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"] == {
        "version": "InfluxQL",
        "dbName": "ioc",
        "httpMode": "POST",
        "timeInterval": "1m",
        "httpHeaderName1": "Authorization",
    }
    assert source["secureJsonData"] == {"httpHeaderValue1": f"Token {INFLUX_TOKEN}"}
    (playlist,) = main.playlists.values()
    assert playlist["name"] == WALL.name
    assert playlist["interval"] == "2m"
    assert playlist["items"] == [
        {"type": "dashboard_by_uid", "value": "ioc-overview"},
        {"type": "dashboard_by_uid", "value": "ioc-air"},
    ]

    grafana.clear()
    second = push_to(grafana)
    assert counts(grafana.requests) == {"GET": 8}  # + GET /api/playlists/{uid}: its items
    assert grafana.writes() == []
    assert not second.changed
    assert second.summary() == "7 unchanged, 0 created, 0 updated"
    assert second.created == second.updated == []
    assert main.dashboards["ioc-air"]["dashboard"]["version"] == 1


def test_a_changed_title_is_exactly_one_dashboard_write(grafana: FakeGrafana) -> None:
    push_to(grafana)
    grafana.clear()
    boards = (BOARDS[0], retitle(BOARDS[1], "Chất lượng không khí"), BOARDS[2])
    report = push_to(grafana, boards)
    (write,) = grafana.writes()
    assert (write.method, write.path) == ("POST", "/api/dashboards/db")
    assert write.body["dashboard"]["uid"] == "ioc-air"
    assert write.body["dashboard"]["title"] == "Chất lượng không khí"
    assert "id" not in write.body["dashboard"]
    assert write.body["folderUid"] == "ioc-national"
    assert write.body["overwrite"] is True
    assert write.body["message"] == "ioc dashboards push"
    assert report.updated == [("dashboard", "ioc-air", "updated")]
    assert report.summary() == "6 unchanged, 0 created, 1 updated"
    assert grafana.org("Main Org.").dashboards["ioc-air"]["dashboard"]["version"] == 2


def test_a_board_moved_to_another_folder_is_saved_again(grafana: FakeGrafana) -> None:
    push_to(grafana)
    grafana.clear()
    moved = dataclasses.replace(BOARDS[1], folder=PROVINCE)
    push_to(grafana, (BOARDS[0], moved, BOARDS[2]))
    assert writes(grafana) == ["POST /api/dashboards/db"]
    assert grafana.org("Main Org.").dashboards["ioc-air"]["folderUid"] == "ioc-province"


def test_a_renamed_folder_is_one_put_with_its_version(grafana: FakeGrafana) -> None:
    push_to(grafana)
    grafana.clear()
    renamed = Folder("ioc-province", "IOC · tỉnh và thành phố", "province")
    report = push_to(grafana, (*BOARDS[:2], dataclasses.replace(BOARDS[2], folder=renamed)))
    (write,) = grafana.writes()
    assert (write.method, write.path) == ("PUT", "/api/folders/ioc-province")
    assert write.body == {"title": renamed.title, "version": 1}
    assert report.updated == [("folder", "ioc-province", "updated")]


def test_playlists_are_found_by_name_and_updated_only_when_they_differ(
    grafana: FakeGrafana,
) -> None:
    push_to(grafana)
    (made_up_uid,) = grafana.org("Main Org.").playlists  # Grafana chose the uid
    assert made_up_uid != WALL.uid
    grafana.clear()
    faster = dataclasses.replace(WALL, interval="1m", board_uids=("ioc-air", "ioc-overview"))
    report = push_to(grafana, playlists=(faster,))
    (write,) = grafana.writes()
    assert (write.method, write.path) == ("PUT", f"/api/playlists/{made_up_uid}")
    assert write.body["interval"] == "1m"
    assert [i["value"] for i in write.body["items"]] == ["ioc-air", "ioc-overview"]
    assert report.updated == [("playlist", WALL.name, "updated")]
    assert len(grafana.org("Main Org.").playlists) == 1


def test_datasource_changes_and_secrets(grafana: FakeGrafana) -> None:
    push_to(grafana)
    main = grafana.org("Main Org.")

    grafana.clear()  # another InfluxDB URL: one PUT, with the version read and the secret
    moved = dataclasses.replace(SOURCE, url="http://influx.ioc.internal:8086")
    push_to(grafana, datasource=moved)
    (write,) = grafana.writes()
    assert (write.method, write.path) == ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}")
    assert write.body["url"] == "http://influx.ioc.internal:8086"
    assert write.body["version"] == 1
    assert main.datasources[DATASOURCE_UID]["version"] == 2

    grafana.clear()  # a rotated token cannot be seen: nothing is sent ...
    rotated = dataclasses.replace(moved, token="rotated-token")
    assert push_to(grafana, datasource=rotated).summary() == "7 unchanged, 0 created, 0 updated"
    assert grafana.writes() == []
    grafana.clear()  # ... unless asked to
    report = push_to(grafana, datasource=rotated, update_secrets=True)
    (write,) = grafana.writes()
    assert write.body["secureJsonData"] == {"httpHeaderValue1": "Token rotated-token"}
    assert report.updated == [("datasource", DATASOURCE_UID, "updated")]
    assert main.datasources[DATASOURCE_UID]["secureJsonData"]["httpHeaderValue1"] == (
        "Token rotated-token"
    )

    grafana.clear()  # a secret that is not set in Grafana at all is detected
    main.datasources[DATASOURCE_UID]["secureJsonData"] = {}
    push_to(grafana, datasource=rotated)
    assert writes(grafana) == [f"PUT /api/datasources/uid/{DATASOURCE_UID}"]


def test_a_provisioned_datasource_is_left_alone(grafana: FakeGrafana) -> None:
    push_to(grafana)
    grafana.org("Main Org.").datasources[DATASOURCE_UID]["readOnly"] = True
    grafana.clear()
    other = dataclasses.replace(SOURCE, database="other")
    report = push_to(grafana, datasource=other)
    assert grafana.writes() == []
    assert report.skipped == [("datasource", DATASOURCE_UID, "skipped")]
    assert report.summary().endswith(", 1 skipped (provisioned from files)")


def test_secrets_are_never_logged_nor_shown(
    grafana: FakeGrafana, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    report = push_to(grafana, update_secrets=True)
    push_to(grafana, update_secrets=True)
    text = caplog.text + repr(report) + repr(SOURCE) + str(report.items)
    assert INFLUX_TOKEN not in text
    assert grafana.token not in text
    assert "ioc-air" in caplog.text


def test_dry_run_only_reads(grafana: FakeGrafana) -> None:
    report = push_to(grafana, dry_run=True)
    assert grafana.writes() == []
    assert grafana.requests  # it did look
    assert report.summary() == "dry run: 0 unchanged, 7 to create, 0 to update"
    assert grafana.org("Main Org.").dashboards == {}


def test_without_datasource_data_sources_are_not_touched(grafana: FakeGrafana) -> None:
    push_to(grafana, datasource=None)
    assert not any("datasources" in r.path for r in grafana.requests)


def test_bad_input_is_refused_before_any_request(grafana: FakeGrafana) -> None:
    stray = Playlist("ioc-x", "x", "2m", ("ioc-overview", "ioc-nowhere"))
    with pytest.raises(ValueError, match="not pushed with it: ioc-nowhere"):
        push_to(grafana, playlists=(stray,))
    with pytest.raises(ValueError, match="given twice"):
        push_to(grafana, (BOARDS[0], BOARDS[0]))
    wrong = dataclasses.replace(BOARDS[0], uid="ioc-other")
    with pytest.raises(ValueError, match="model uid"):
        push_to(grafana, (wrong,), ())
    assert grafana.requests == []


# --- one organisation per province -------------------------------------------------------------

HANOI, HUE = "01", "46"
HANOI_ORG, HUE_ORG = "IOC 01 Thành phố Hà Nội", "IOC 46 Thành phố Huế"


def province_input() -> tuple[list[Board], list[Playlist]]:
    boards = [BOARDS[0]]  # a national board: the current organisation only
    for code in (HANOI, HUE):
        boards += [
            make_board(f"ioc-province-{code}", f"Tỉnh {code}", PROVINCE, code),
            make_board(f"ioc-air-{code}", f"Không khí {code}", NATIONAL, code),
        ]
    playlists = [
        Playlist("ioc-wall", "national", "2m", ("ioc-overview",)),
        *(
            Playlist(f"ioc-wall-{c}", f"wall {c}", "2m", (f"ioc-province-{c}", f"ioc-air-{c}"), c)
            for c in (HANOI, HUE)
        ),
    ]
    return boards, playlists


def get_as(grafana: FakeGrafana, path: str, org_id: int) -> int:
    """Status of a GET as the admin inside one organisation (what a member of it sees)."""
    credential = base64.b64encode(":".join(grafana.admin).encode()).decode()
    headers = {"X-Grafana-Org-Id": str(org_id), "Authorization": f"Basic {credential}"}
    request = urllib.request.Request(grafana.url + path, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_org_per_province_isolates_each_province(grafana: FakeGrafana) -> None:
    boards, playlists = province_input()
    report = push_to(grafana, boards, playlists, auth=grafana.admin, org_per_province=True)

    assert sorted(o.name for o in grafana.iter_orgs()) == [HANOI_ORG, HUE_ORG, "Main Org."]
    assert set(grafana.dashboards_of("Main Org.")) == {"ioc-overview"}
    assert set(grafana.dashboards_of(HANOI_ORG)) == {"ioc-province-01", "ioc-air-01"}
    assert set(grafana.dashboards_of(HUE_ORG)) == {"ioc-province-46", "ioc-air-46"}
    for name, code in ((HANOI_ORG, HANOI), (HUE_ORG, HUE)):
        org = grafana.org(name)
        assert set(org.folders) == {"ioc-province", "ioc-national"}
        assert list(org.datasources) == [DATASOURCE_UID]
        assert org.datasources[DATASOURCE_UID]["secureJsonData"]
        (playlist,) = org.playlists.values()
        assert [i["value"] for i in playlist["items"]] == [
            f"ioc-province-{code}",
            f"ioc-air-{code}",
        ]
    assert [p["name"] for p in grafana.org("Main Org.").playlists.values()] == ["national"]
    assert ("org", HANOI_ORG, "created") in report.created
    assert {i.org for i in report.items if i.name == "ioc-air-46"} == {HUE_ORG}

    # A user of Huế's organisation cannot read Hà Nội's boards, and the reverse.
    hanoi, hue = grafana.org(HANOI_ORG).id, grafana.org(HUE_ORG).id
    assert get_as(grafana, "/api/dashboards/uid/ioc-air-01", hanoi) == 200
    assert get_as(grafana, "/api/dashboards/uid/ioc-air-01", hue) == 404
    assert get_as(grafana, "/api/dashboards/uid/ioc-air-46", hanoi) == 404
    assert get_as(grafana, "/api/dashboards/uid/ioc-overview", hue) == 404

    # Every request into a province's organisation said so; the user's org was never switched.
    pushed = [r for r in grafana.requests if r.headers.get("User-Agent", "").startswith("ioc")]
    assert not any(r.path.startswith("/api/user/using") for r in pushed)
    assert grafana.users["admin"].current_org == 1
    for r in pushed:
        if r.path.startswith("/api/orgs"):
            assert r.org_id == 1
    into = {r.org_id for r in pushed if "ioc-air-46" in json.dumps(r.body) or "-46" in r.path}
    assert into == {hue}

    grafana.clear()
    again = push_to(grafana, boards, playlists, auth=grafana.admin, org_per_province=True)
    assert grafana.writes() == []
    assert not again.changed
    assert ("org", HUE_ORG, "unchanged") in again.unchanged


def test_org_per_province_dry_run_into_a_new_organisation(grafana: FakeGrafana) -> None:
    boards, playlists = province_input()
    report = push_to(
        grafana, boards, playlists, auth=grafana.admin, org_per_province=True, dry_run=True
    )
    assert grafana.writes() == []
    assert len(grafana.orgs) == 1
    assert report.summary() == "dry run: 0 unchanged, 18 to create, 0 to update"


def test_org_per_province_with_a_token_says_what_is_needed(grafana: FakeGrafana) -> None:
    boards, playlists = province_input()
    with pytest.raises(GrafanaError) as caught:
        push_to(grafana, boards[1:], playlists[1:], org_per_province=True)
    assert caught.value.status == 403
    assert caught.value.request.startswith("GET /api/orgs/name/IOC%2001")
    assert "server admin with basic auth" in str(caught.value)


# --- errors ----------------------------------------------------------------------------------


def test_a_wrong_token_is_one_clear_error(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaError) as caught:
        push_to(grafana, auth="glsa_wrong")
    error = caught.value
    assert isinstance(error, IocError)
    assert error.status == 401
    assert error.request == "GET /api/folders/ioc-national"
    assert error.detail == "invalid API key"
    assert str(error) == (
        f"Grafana at {grafana.url} answered 401 to GET /api/folders/ioc-national: invalid API key"
    )
    assert "glsa_wrong" not in str(error)
    assert grafana.writes() == []


def test_a_wrong_password_is_one_clear_error(grafana: FakeGrafana) -> None:
    with pytest.raises(GrafanaError, match=r"401 .*invalid username or password"):
        push_to(grafana, auth=("admin", "wrong"))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "Permission denied"),
        (404, "folder not found"),
        (409, "a folder with the same name already exists"),
        (412, "The dashboard has been changed by someone else"),
        (500, "Failed to save dashboard"),
        (503, "database is locked"),
    ],
)
def test_grafana_refusing_a_write_names_request_and_message(
    grafana: FakeGrafana, status: int, message: str
) -> None:
    grafana.fail("POST", "/api/dashboards/db", status, message)
    with pytest.raises(GrafanaError) as caught:
        push_to(grafana)
    assert caught.value.status == status
    assert caught.value.request == "POST /api/dashboards/db"
    assert caught.value.detail == message
    assert f"answered {status} to POST /api/dashboards/db: {message}" in str(caught.value)
    assert caught.value.retryable == (status >= 500)


def test_grafana_down_is_one_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GrafanaError) as caught:
        push(BOARDS, (WALL,), url=f"http://127.0.0.1:{port}", auth="t", timeout=2)
    assert caught.value.status is None
    assert caught.value.retryable
    assert str(caught.value).startswith(
        f"Grafana at http://127.0.0.1:{port} is unreachable (GET /api/folders/ioc-national): "
    )


def test_credentials_in_the_url_are_refused() -> None:
    with pytest.raises(ValueError, match="credentials in the URL"):
        push(BOARDS, url="http://admin:pw@127.0.0.1:3000", auth="t")


def test_a_url_with_a_path_prefix() -> None:
    target = _Target.parse("https://ioc.example.vn/grafana/")
    assert (target.protocol, target.host, target.port) == ("https", "ioc.example.vn", None)
    assert target.prefix == "grafana/"  # grafana-client appends "api"
    assert target.shown == "https://ioc.example.vn/grafana"
    assert _Target.parse("http://127.0.0.1:3000").prefix == ""


# --- the command line --------------------------------------------------------------------------


def test_push_options() -> None:
    parser = argparse.ArgumentParser()
    configure_push(parser)
    args = parser.parse_args(["--org-per-province", "--user", "admin", "--province", "01"])
    assert args.org_per_province
    assert args.user == "admin"
    assert args.password_env == "GRAFANA_PASSWORD"
    assert args.token_env == "GRAFANA_TOKEN"
    assert args.province == ["01"]
    assert args.url is None
    assert not args.dry_run


def test_report_is_frozen() -> None:
    report = PushReport()
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.dry_run = True  # type: ignore[misc]
    assert report.summary() == "0 unchanged, 0 created, 0 updated"
    assert not report.changed


def push_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_push(parser)
    return parser.parse_args(argv)


def test_run_push_pushes_the_generated_boards(
    grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRAFANA_URL", grafana.url)
    monkeypatch.setenv("GRAFANA_TOKEN", grafana.token)
    monkeypatch.setenv("GRAFANA_INFLUX_TOKEN", INFLUX_TOKEN)
    settings = load_settings({"IOC_INFLUX_URL": "http://influxdb:8086"})
    assert run_push(settings, push_args()) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("0 unchanged, ")
    main = grafana.org("Main Org.")
    assert main.dashboards
    assert all(uid.startswith("ioc-") for uid in main.dashboards)
    assert main.datasources[DATASOURCE_UID]["url"] == "http://influxdb:8086"
    assert INFLUX_TOKEN not in out

    grafana.clear()
    assert run_push(settings, push_args("--dry-run")) == 0
    assert capsys.readouterr().out.startswith("dry run: ")
    assert grafana.writes() == []


def test_run_push_without_credentials_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    monkeypatch.delenv("GRAFANA_PASSWORD", raising=False)
    settings = load_settings({})
    assert run_push(settings, push_args()) == 2
    assert "GRAFANA_TOKEN is not set" in capsys.readouterr().err
    assert run_push(settings, push_args("--user", "admin")) == 2
    assert "GRAFANA_PASSWORD is not set" in capsys.readouterr().err


def test_a_provisioned_dashboard_is_left_alone(grafana: FakeGrafana) -> None:
    push_to(grafana)
    grafana.org("Main Org.").dashboards["ioc-air"]["provisioned"] = True
    grafana.clear()
    report = push_to(grafana, (BOARDS[0], retitle(BOARDS[1], "changed"), BOARDS[2]))
    assert grafana.writes() == []
    assert report.skipped == [("dashboard", "ioc-air", "skipped")]
