"""An in-memory Grafana 11 behind a real HTTP server, for tests of code that talks to its HTTP API.

``FakeGrafana`` answers the parts of the API that provisioning uses the way Grafana 11.4 does
(shapes of ``grafana-http-api-11.4.swagger2.json``, Grafana's status codes and messages):
organisations, folders, dashboards (ids, versions that go up on every save), data sources (secrets
write-only: only ``secureJsonFields`` comes back), playlists (uids made up by the server) and the
user's current organisation. It records every request (``requests``), so a test can count writes
and check each request against the published API description (tests/dashboards/swagger.py).

Authentication as in Grafana: ``Authorization: Bearer <token>`` is a service-account token that
belongs to one organisation and is no server admin; basic auth is a user, by default the server
admin ``admin``. The organisation of a request is its ``X-Grafana-Org-Id`` header (the caller
must be a member: 401 otherwise), else the token's organisation or the user's current one
(``POST /api/user/using/{org_id}`` changes it, persistently, as in Grafana).

    with FakeGrafana() as grafana:
        push(..., url=grafana.url, auth=grafana.token)
        assert not grafana.writes()
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Failure", "FakeGrafana", "OrgState", "Recorded"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NOW = "2025-11-01T00:00:00Z"
ADDRESS = {"address1": "", "address2": "", "city": "", "zipCode": "", "state": "", "country": ""}


@dataclass
class Recorded:
    """One request as the server saw it, and its answer."""

    method: str
    path: str  # as sent (percent-encoded), without the query string
    query: str
    headers: dict[str, str]
    body: Any  # the decoded JSON body, None without one
    status: int = 0
    response: Any = None
    org_id: int | None = None  # the organisation it acted in (None: not authenticated)

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


@dataclass
class Failure:
    """Make matching requests fail: ``status`` and Grafana's ``message``."""

    method: str
    path_prefix: str
    status: int
    message: str


@dataclass
class OrgState:
    """Everything one Grafana organisation holds."""

    id: int
    name: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _User:
    login: str
    password: str
    server_admin: bool
    current_org: int
    orgs: dict[int, str]  # org id -> role


@dataclass(frozen=True)
class _Caller:
    user: _User | None  # None: a service-account token
    token_org: int | None
    org_id: int

    @property
    def server_admin(self) -> bool:
        return self.user is not None and self.user.server_admin


class _Answer(Exception):
    """Stop handling a request and answer this (Grafana's error bodies carry ``message``)."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


def _error(code: int, message: str, **extra: str) -> _Answer:
    return _Answer(code, {"message": message, **extra})


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "dashboard"


Route = tuple[str, re.Pattern[str], Callable[..., Any]]


class FakeGrafana:
    """Grafana 11 in memory, served on 127.0.0.1 on a free port."""

    def __init__(
        self,
        *,
        token: str = "glsa_test_token",  # noqa: S107
        admin: tuple[str, str] = ("admin", "admin-password"),
    ) -> None:
        self.token = token
        self.admin = admin
        self.orgs: dict[int, OrgState] = {1: OrgState(1, "Main Org.")}
        self.users = {admin[0]: _User(admin[0], admin[1], True, 1, {1: "Admin"})}
        self.tokens = {token: 1}  # service-account token -> its organisation
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.crashes: list[str] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._routes: list[Route] = [
            ("GET", re.compile(r"/api/health"), self._health),
            ("GET", re.compile(r"/api/org"), self._current_org),
            ("GET", re.compile(r"/api/orgs/name/([^/]+)"), self._org_by_name),
            ("POST", re.compile(r"/api/orgs"), self._create_org),
            ("POST", re.compile(r"/api/user/using/([^/]+)"), self._switch_org),
            ("GET", re.compile(r"/api/folders/([^/]+)"), self._get_folder),
            ("POST", re.compile(r"/api/folders"), self._create_folder),
            ("PUT", re.compile(r"/api/folders/([^/]+)"), self._update_folder),
            ("GET", re.compile(r"/api/dashboards/uid/([^/]+)"), self._get_dashboard),
            ("POST", re.compile(r"/api/dashboards/db"), self._save_dashboard),
            ("GET", re.compile(r"/api/datasources/uid/([^/]+)"), self._get_datasource),
            ("POST", re.compile(r"/api/datasources"), self._create_datasource),
            ("PUT", re.compile(r"/api/datasources/uid/([^/]+)"), self._update_datasource),
            ("GET", re.compile(r"/api/playlists"), self._list_playlists),
            ("GET", re.compile(r"/api/playlists/([^/]+)"), self._get_playlist),
            ("POST", re.compile(r"/api/playlists"), self._create_playlist),
            ("PUT", re.compile(r"/api/playlists/([^/]+)"), self._update_playlist),
        ]

    # --- serving -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeGrafana:
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = grafana.handle(self.command, self.path, dict(self.headers), raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGrafana:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- looking at what happened ----------------------------------------------------------------

    def writes(self) -> list[Recorded]:
        """The requests that would change something in a real Grafana."""
        return [r for r in self.requests if r.is_write]

    def clear(self) -> None:
        self.requests.clear()

    def org(self, name: str) -> OrgState:
        """The organisation with this name; KeyError if there is none."""
        for org in self.orgs.values():
            if org.name == name:
                return org
        raise KeyError(name)

    def fail(self, method: str, path_prefix: str, status: int, message: str) -> None:
        """Answer every matching request with ``status`` and ``message`` from now on."""
        self.failures.append(Failure(method, path_prefix, status, message))

    # --- the API -------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(target)
        record = Recorded(method, parts.path, parts.query, headers, None)
        with self.lock:
            self.requests.append(record)
            try:
                if raw:
                    try:
                        record.body = json.loads(raw)
                    except ValueError:
                        raise _error(400, "bad request data") from None
                status, payload = 200, self._dispatch(record)
            except _Answer as answer:
                status, payload = answer.status, answer.payload
            except Exception as exc:  # a bug of this fake: answer, and let the test see it
                self.crashes.append(f"{method} {target}: {exc!r}")
                status, payload = 500, {"message": f"fake Grafana crashed: {exc!r}"}
            record.status, record.response = status, copy.deepcopy(payload)
            return status, payload

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], list[str]]:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path.rstrip("/") or "/")
            if match and route_method == method:
                return handler, [unquote(g) for g in match.groups()]
        raise _error(404, "Not found")

    def _dispatch(self, record: Recorded) -> Any:
        handler, args = self._route(record.method, record.path)
        if handler == self._health:
            return handler()
        caller = self._authenticate(record.headers)
        record.org_id = caller.org_id
        for failure in self.failures:
            if record.method == failure.method and record.path.startswith(failure.path_prefix):
                raise _error(failure.status, failure.message)
        return handler(caller, self.orgs[caller.org_id], record, *args)

    def _authenticate(self, headers: dict[str, str]) -> _Caller:
        lowered = {k.lower(): v for k, v in headers.items()}
        scheme, _, credential = lowered.get("authorization", "").partition(" ")
        user: _User | None = None
        token_org: int | None = None
        if scheme.lower() == "bearer":
            if credential not in self.tokens:
                raise _error(401, "invalid API key")
            token_org = self.tokens[credential]
            default_org = token_org
        elif scheme.lower() == "basic":
            try:
                login, _, password = base64.b64decode(credential).decode().partition(":")
            except ValueError:
                raise _error(401, "invalid username or password") from None
            user = self.users.get(login)
            if user is None or user.password != password:
                raise _error(401, "invalid username or password")
            default_org = user.current_org
        else:
            raise _error(401, "Unauthorized")
        header = lowered.get("x-grafana-org-id")
        if header is None:
            return _Caller(user, token_org, default_org)
        if not header.isdigit():
            raise _error(400, "invalid X-Grafana-Org-Id header")
        org_id = int(header)
        member = org_id == token_org if user is None else org_id in user.orgs
        if not member or org_id not in self.orgs:
            raise _error(401, "user not a member of organization")
        return _Caller(user, token_org, org_id)

    def _health(self) -> Any:
        return {"commit": "fake", "database": "ok", "version": "11.4.0"}

    def _org_dto(self, org: OrgState) -> dict[str, Any]:
        return {"id": org.id, "name": org.name, "address": dict(ADDRESS)}

    # organisations

    def _current_org(self, _caller: _Caller, org: OrgState, _record: Recorded) -> Any:
        return self._org_dto(org)

    def _org_by_name(self, caller: _Caller, _org: OrgState, _record: Recorded, name: str) -> Any:
        if not caller.server_admin:
            raise _error(403, "Permission denied")
        for org in self.orgs.values():
            if org.name == name:
                return self._org_dto(org)
        raise _error(404, "Organization not found")

    def _create_org(self, caller: _Caller, _org: OrgState, record: Recorded) -> Any:
        if caller.user is None or not caller.server_admin:
            raise _error(403, "Permission denied")
        name = (record.body or {}).get("name")
        if not isinstance(name, str) or not name:
            raise _error(400, "bad request data")
        if any(org.name == name for org in self.orgs.values()):
            raise _error(409, "Organization name taken")
        org_id = max(self.orgs) + 1
        self.orgs[org_id] = OrgState(org_id, name)
        caller.user.orgs[org_id] = "Admin"  # Grafana makes the creator an Admin of the new org
        return {"message": "Organization created", "orgId": org_id}

    def _switch_org(self, caller: _Caller, _org: OrgState, _record: Recorded, org_id: str) -> Any:
        if caller.user is None:
            raise _error(403, "Permission denied")
        if not org_id.isdigit() or int(org_id) not in caller.user.orgs:
            raise _error(401, "Not a valid organization")
        caller.user.current_org = int(org_id)
        return {"message": "Active organization changed"}

    # folders

    def _folder_dto(self, org: OrgState, folder: dict[str, Any]) -> dict[str, Any]:
        uid = folder["uid"]
        return {
            "id": folder["id"],
            "uid": uid,
            "orgId": org.id,
            "title": folder["title"],
            "url": f"/dashboards/f/{uid}/{_slug(folder['title'])}",
            "hasAcl": False,
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canDelete": True,
            "createdBy": "admin",
            "created": NOW,
            "updatedBy": "admin",
            "updated": NOW,
            "version": folder["version"],
        }

    def _get_folder(self, _caller: _Caller, org: OrgState, _record: Recorded, uid: str) -> Any:
        if uid not in org.folders:
            raise _error(404, "folder not found", status="not-found")
        return self._folder_dto(org, org.folders[uid])

    def _create_folder(self, _caller: _Caller, org: OrgState, record: Recorded) -> Any:
        body = record.body or {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _error(400, "folder title cannot be empty")
        uid = body.get("uid") or f"f{next(self._ids)}"
        if uid in org.folders:
            raise _error(409, "a folder with the same uid already exists")
        if any(f["title"] == title for f in org.folders.values()):
            raise _error(409, "a folder with the same name already exists")
        org.folders[uid] = {"id": next(self._ids), "uid": uid, "title": title, "version": 1}
        return self._folder_dto(org, org.folders[uid])

    def _update_folder(self, _caller: _Caller, org: OrgState, record: Recorded, uid: str) -> Any:
        if uid not in org.folders:
            raise _error(404, "folder not found", status="not-found")
        folder, body = org.folders[uid], record.body or {}
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            raise _error(409, "the folder has been changed by someone else")
        if "title" in body:
            folder["title"] = body["title"]
        folder["version"] += 1
        return self._folder_dto(org, folder)

    # dashboards

    def _get_dashboard(self, _caller: _Caller, org: OrgState, _record: Recorded, uid: str) -> Any:
        stored = org.dashboards.get(uid)
        if stored is None:
            raise _error(404, "Dashboard not found")
        folder = org.folders.get(stored["folderUid"] or "")
        dashboard = stored["dashboard"]
        slug = _slug(dashboard["title"])
        meta: dict[str, Any] = {
            "type": "db",
            "canSave": True,
            "canEdit": True,
            "canAdmin": True,
            "canStar": True,
            "canDelete": True,
            "slug": slug,
            "url": f"/d/{uid}/{slug}",
            "expires": "0001-01-01T00:00:00Z",
            "created": NOW,
            "updated": NOW,
            "updatedBy": "admin",
            "createdBy": "admin",
            "version": dashboard["version"],
            "hasAcl": False,
            "isFolder": False,
            "folderId": folder["id"] if folder else 0,
            "folderUid": stored["folderUid"],
            "folderTitle": folder["title"] if folder else "General",
            "folderUrl": f"/dashboards/f/{folder['uid']}/" if folder else "",
            "provisioned": stored.get("provisioned", False),
            "provisionedExternalId": "",
        }
        return {"dashboard": copy.deepcopy(dashboard), "meta": meta}

    def _save_dashboard(self, _caller: _Caller, org: OrgState, record: Recorded) -> Any:
        body = record.body or {}
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict):
            raise _error(400, "bad request data")
        title = dashboard.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _error(400, "Dashboard title cannot be empty")
        folder_uid = body.get("folderUid") or ""
        if folder_uid and folder_uid not in org.folders:
            raise _error(400, "folder not found")
        uid = dashboard.get("uid") or f"d{next(self._ids)}"
        existing = org.dashboards.get(uid)
        overwrite = bool(body.get("overwrite"))
        if existing is not None and existing.get("provisioned"):
            raise _error(400, "Cannot save provisioned dashboard")
        if existing is not None and not overwrite:
            stored = existing["dashboard"]
            if dashboard.get("version") != stored["version"]:
                raise _error(
                    412,
                    "The dashboard has been changed by someone else",
                    status="version-mismatch",
                )
        if not overwrite:
            for other_uid, other in org.dashboards.items():
                if (
                    other_uid != uid
                    and other["folderUid"] == folder_uid
                    and other["dashboard"]["title"] == title
                ):
                    raise _error(
                        412,
                        "A dashboard with the same name in the folder already exists",
                        status="name-exists",
                    )
        saved = copy.deepcopy(dashboard)
        saved["uid"] = uid
        saved["id"] = existing["dashboard"]["id"] if existing else next(self._ids)
        saved["version"] = existing["dashboard"]["version"] + 1 if existing else 1
        org.dashboards[uid] = {"dashboard": saved, "folderUid": folder_uid}
        return {
            "id": saved["id"],
            "uid": uid,
            "title": title,
            "url": f"/d/{uid}/{_slug(title)}",
            "status": "success",
            "version": saved["version"],
            "folderUid": folder_uid,
        }

    # data sources

    def _datasource_dto(self, org: OrgState, source: dict[str, Any]) -> dict[str, Any]:
        dto = {k: copy.deepcopy(v) for k, v in source.items() if k != "secureJsonData"}
        dto["orgId"] = org.id
        dto["typeLogoUrl"] = f"public/app/plugins/datasource/{source['type']}/img/logo.svg"
        dto["secureJsonFields"] = dict.fromkeys(source.get("secureJsonData", {}), True)
        return dto

    _DATASOURCE_FIELDS = (
        "name",
        "type",
        "access",
        "url",
        "user",
        "database",
        "basicAuth",
        "basicAuthUser",
        "withCredentials",
        "isDefault",
        "jsonData",
    )

    def _get_datasource(self, _caller: _Caller, org: OrgState, _record: Recorded, uid: str) -> Any:
        if uid not in org.datasources:
            raise _error(404, "Data source not found")
        return self._datasource_dto(org, org.datasources[uid])

    def _create_datasource(self, _caller: _Caller, org: OrgState, record: Recorded) -> Any:
        body = record.body or {}
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _error(400, "Failed to add datasource: name is required")
        uid = body.get("uid") or f"ds{next(self._ids)}"
        if any(s["name"] == name for s in org.datasources.values()):
            raise _error(409, "data source with the same name already exists")
        if uid in org.datasources:
            raise _error(409, "data source with the same uid already exists")
        source: dict[str, Any] = {
            "id": next(self._ids),
            "uid": uid,
            "name": name,
            "type": body.get("type", ""),
            "access": body.get("access", "proxy"),
            "url": body.get("url", ""),
            "user": body.get("user", ""),
            "database": body.get("database", ""),
            "basicAuth": body.get("basicAuth", False),
            "basicAuthUser": body.get("basicAuthUser", ""),
            "withCredentials": body.get("withCredentials", False),
            "isDefault": body.get("isDefault", False),
            "jsonData": copy.deepcopy(body.get("jsonData") or {}),
            "readOnly": False,
            "version": 1,
            "secureJsonData": dict(body.get("secureJsonData") or {}),
        }
        org.datasources[uid] = source
        dto = self._datasource_dto(org, source)
        return {"datasource": dto, "id": source["id"], "message": "Datasource added", "name": name}

    def _update_datasource(
        self, _caller: _Caller, org: OrgState, record: Recorded, uid: str
    ) -> Any:
        source = org.datasources.get(uid)
        if source is None:
            raise _error(404, "Data source not found")
        if source["readOnly"]:
            raise _error(403, "Cannot update read-only data source")
        body = record.body or {}
        if body.get("version") and body["version"] < source["version"]:
            raise _error(409, "Datasource has already been updated by someone else")
        name = body.get("name", source["name"])
        if any(s["name"] == name and s["uid"] != uid for s in org.datasources.values()):
            raise _error(409, "data source with the same name already exists")
        for key in self._DATASOURCE_FIELDS:
            if key in body:
                source[key] = copy.deepcopy(body[key])
        # Secrets are merged: one not sent is kept, as Grafana does.
        source["secureJsonData"].update(body.get("secureJsonData") or {})
        source["version"] += 1
        dto = self._datasource_dto(org, source)
        return {
            "datasource": dto,
            "id": source["id"],
            "message": "Datasource updated",
            "name": name,
        }

    # playlists

    @staticmethod
    def _playlist_items(body: dict[str, Any]) -> list[dict[str, Any]]:
        items = body.get("items") or []
        kinds = {"dashboard_by_uid", "dashboard_by_tag", "dashboard_by_id"}
        if not isinstance(items, list) or any(
            not isinstance(i, dict) or i.get("type") not in kinds for i in items
        ):
            raise _error(400, "invalid playlist item")
        return [{"type": i["type"], "value": str(i.get("value", ""))} for i in items]

    def _list_playlists(self, _caller: _Caller, org: OrgState, record: Recorded) -> Any:
        query = parse_qs(record.query).get("query", [""])[0].lower()
        return [
            {k: p[k] for k in ("id", "uid", "name", "interval")}
            for p in org.playlists.values()
            if query in p["name"].lower()
        ]

    def _get_playlist(self, _caller: _Caller, org: OrgState, _record: Recorded, uid: str) -> Any:
        if uid not in org.playlists:
            raise _error(404, "Playlist not found")
        p = org.playlists[uid]
        return {k: copy.deepcopy(p[k]) for k in ("uid", "name", "interval", "items")}

    def _create_playlist(self, _caller: _Caller, org: OrgState, record: Recorded) -> Any:
        body = record.body or {}
        if not body.get("name"):
            raise _error(400, "playlist name is required")
        uid = f"pl{next(self._ids):06d}"  # Grafana makes the uid up; the legacy API takes none
        org.playlists[uid] = {
            "id": next(self._ids),
            "uid": uid,
            "name": body["name"],
            "interval": body.get("interval", "5m"),
            "items": self._playlist_items(body),
        }
        return {k: org.playlists[uid][k] for k in ("id", "uid", "name", "interval")}

    def _update_playlist(self, _caller: _Caller, org: OrgState, record: Recorded, uid: str) -> Any:
        if uid not in org.playlists:
            raise _error(404, "Playlist not found")
        body, p = record.body or {}, org.playlists[uid]
        p["name"] = body.get("name", p["name"])
        p["interval"] = body.get("interval", p["interval"])
        p["items"] = self._playlist_items(body)
        return {k: copy.deepcopy(p[k]) for k in ("uid", "name", "interval", "items")}

    # --- direct access for tests ---------------------------------------------------------------

    def dashboards_of(self, org_name: str) -> dict[str, dict[str, Any]]:
        """uid -> stored dashboard JSON of one organisation."""
        return {uid: d["dashboard"] for uid, d in self.org(org_name).dashboards.items()}

    def iter_orgs(self) -> Iterator[OrgState]:
        return iter(self.orgs.values())
