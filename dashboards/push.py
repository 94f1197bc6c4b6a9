"""Push the generated boards to a running Grafana over its HTTP API, idempotently.

``push(boards, playlists, url=..., auth=...)`` makes Grafana hold exactly what the generator
produced: the folders, the InfluxDB data source, the dashboards and the wall playlists. Every
request goes through grafana-client (3.11, requests-based): its element methods where it has one,
its low-level ``client.GET/POST/PUT`` for playlists, which 3.11 does not wrap. ``ioc dashboards
push`` is ``configure_push`` + ``run_push``.

Idempotency
    Every object is read before it is written, and written only when it differs, so a second push
    of the same input makes GET requests only (the report says "N unchanged, 0 created, 0
    updated").

    - folder: ``GET /api/folders/{uid}``; created when missing, ``PUT`` (with the version just read,
      so a concurrent edit fails instead of being lost) when its title differs.
    - dashboard: ``GET /api/dashboards/uid/{uid}``; unchanged when the stored JSON without the keys
      Grafana manages itself (``id``, ``version``) equals ours (compared after a JSON round trip,
      so tuples and lists, 1 and 1.0 compare equal) and ``meta.folderUid`` is the board's folder.
      Otherwise ``POST /api/dashboards/db`` with ``overwrite`` (Grafana bumps the version and keeps
      the old one in the dashboard's history). A dashboard provisioned from files cannot be saved
      over the API: it is reported ``skipped``.
    - playlist: ``GET /api/playlists``, matched by uid, else by name. Grafana's playlist API takes
      no uid on creation (it is not in ``CreatePlaylistCommand``; Grafana makes one up), so a
      playlist we created is found again by its name. ``GET /api/playlists/{uid}`` gives its items;
      ``POST``/``PUT`` only when name, interval or items (``dashboard_by_uid``, in order) differ.
    - data source: ``GET /api/datasources/uid/ioc-influxdb``; created when missing, ``PUT`` when a
      field we own differs (see Secrets). A data source provisioned from files (``readOnly``) is
      left alone and reported ``skipped``.

Organisations (``org_per_province=True``)
    Each distinct ``board.province`` gets the organisation ``IOC <code> <province name>``
    (``GET /api/orgs/name/{name}``, else ``POST /api/orgs``), and that organisation gets its own
    folders, data source, boards and playlists; a province's boards and playlists go into its own
    organisation only. Boards and playlists without a province go into the credentials' current
    organisation, never into a province's.

    Requests into an organisation carry the ``X-Grafana-Org-Id`` header (grafana-client's
    ``organization_id``: one client per organisation). We never switch the user's organisation
    (``POST /api/user/using/{id}``): that is persistent state of the account, shared with the
    user's browser sessions and any other script using it, so a crash or a concurrent run would
    leave it, or us, writing into the wrong organisation. The header is per request and cannot
    leak. Creating and finding organisations needs a Grafana server administrator with basic
    auth (``--user``/``--password-env``): a service-account token belongs to one organisation.
    Grafana makes the creator an Admin of a new organisation; for an organisation that existed
    before, the user must already be a member (Grafana answers 401 otherwise).

Secrets
    The data source's secret (the InfluxDB token, sent as ``Authorization: Token ...`` through
    ``httpHeaderName1``/``httpHeaderValue1`` as in deploy/grafana/provisioning, or an InfluxDB 1.x
    password) comes from the environment (``run_push`` reads the variables named by
    ``--influx-token-env``/``--influx-password-env``), never from a file or the command line, and
    is never logged nor shown in a repr. Grafana never gives a secret back, only which ones are set
    (``secureJsonFields``), so the comparison covers the non-secret fields plus "is every secret we
    hold set". A changed secret (a rotated token) is therefore not detected: pass
    ``update_secrets=True`` (``--update-secrets``), which sends the secrets (one ``PUT``) even when
    nothing else differs. Any update for another reason sends them too.

Errors
    Any refusal (401/403/404/409/412/5xx...) or no answer raises one ``GrafanaError`` that names
    the request (``POST /api/dashboards/db``), the status and Grafana's own message; a 404 is an
    answer only where it means "not there yet" (the GETs above). Nothing is written before the
    input has been checked (uids, folders, playlist items).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from dashboards.model import DATASOURCE_UID, Board, Folder, Playlist
from ioc.errors import GrafanaError

if TYPE_CHECKING:
    from ioc.settings import Settings

__all__ = [
    "DEFAULT_URL",
    "Auth",
    "InfluxDatasource",
    "PushItem",
    "PushReport",
    "configure_push",
    "province_org_name",
    "push",
    "run_push",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:3000"
PUSH_MESSAGE = "ioc dashboards push"
MANAGED_KEYS = ("id", "version")
"""Top-level dashboard keys Grafana sets itself; ignored when comparing."""

Kind = Literal["org", "folder", "datasource", "dashboard", "playlist"]
Action = Literal["created", "updated", "unchanged", "skipped"]
Auth = str | tuple[str, str]
"""A Grafana token (service account or API key), or (user, password) for basic auth."""

EXIT_OK, EXIT_USAGE = 0, 2


@dataclass(frozen=True, slots=True)
class PushItem:
    """What push did (or, in a dry run, would do) with one object."""

    kind: Kind
    name: str  # uid (folder, dashboard, data source) or name (organisation, playlist)
    action: Action
    org: str = ""  # the organisation's name; "" for the credentials' current organisation

    def __str__(self) -> str:
        where = f"  [{self.org}]" if self.org else ""
        return f"{self.action:<9} {self.kind:<10} {self.name}{where}"


@dataclass(frozen=True, slots=True)
class PushReport:
    """Every object push looked at, in the order it did, with what it did."""

    items: tuple[PushItem, ...] = ()
    dry_run: bool = False

    def _with(self, action: Action) -> list[tuple[Kind, str, Action]]:
        return [(i.kind, i.name, i.action) for i in self.items if i.action == action]

    @property
    def created(self) -> list[tuple[Kind, str, Action]]:
        """(kind, uid or name, action) of what was created."""
        return self._with("created")

    @property
    def updated(self) -> list[tuple[Kind, str, Action]]:
        """(kind, uid or name, action) of what was updated."""
        return self._with("updated")

    @property
    def unchanged(self) -> list[tuple[Kind, str, Action]]:
        """(kind, uid or name, action) of what already was as it should be."""
        return self._with("unchanged")

    @property
    def skipped(self) -> list[tuple[Kind, str, Action]]:
        """(kind, uid or name, action) of what Grafana's file provisioning owns."""
        return self._with("skipped")

    @property
    def changed(self) -> bool:
        """True when something was (or, in a dry run, would be) created or updated."""
        return any(i.action in ("created", "updated") for i in self.items)

    def summary(self) -> str:
        """One line, e.g. ``12 unchanged, 0 created, 0 updated``."""
        n = Counter(i.action for i in self.items)
        if self.dry_run:
            text = (
                f"dry run: {n['unchanged']} unchanged, {n['created']} to create, "
                f"{n['updated']} to update"
            )
        else:
            text = f"{n['unchanged']} unchanged, {n['created']} created, {n['updated']} updated"
        if n["skipped"]:
            text += f", {n['skipped']} skipped (provisioned from files)"
        return text


@dataclass(frozen=True, slots=True)
class InfluxDatasource:
    """The InfluxQL data source every panel refers to (uid ``ioc-influxdb``).

    ``url`` is InfluxDB as Grafana's server reaches it. Authentication is a token (InfluxDB 2.x
    v1-compatible /query: ``Authorization: Token ...``), a user and password (InfluxDB 1.x), or
    nothing. The secrets are kept out of ``repr``.
    """

    url: str
    database: str
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    uid: str = DATASOURCE_UID
    name: str = "IOC InfluxDB"
    time_interval: str = "1m"

    def __post_init__(self) -> None:
        if self.token and (self.user or self.password):
            raise ValueError("InfluxDatasource: give a token or a user and password, not both")
        if bool(self.user) != bool(self.password):
            raise ValueError(f"InfluxDatasource: user {self.user!r} needs a password (and back)")

    def settings(self) -> dict[str, Any]:
        """The fields Grafana gives back: everything but the secrets."""
        json_data: dict[str, Any] = {
            "version": "InfluxQL",
            "dbName": self.database,
            "httpMode": "POST",
            "timeInterval": self.time_interval,
        }
        if self.token:
            json_data["httpHeaderName1"] = "Authorization"
        return {
            "uid": self.uid,
            "name": self.name,
            "type": "influxdb",
            "access": "proxy",
            "url": self.url,
            "user": self.user or "",
            "basicAuth": False,
            "isDefault": True,
            "jsonData": json_data,
        }

    def secrets(self) -> dict[str, str]:
        """``secureJsonData``: write-only in Grafana."""
        if self.token:
            return {"httpHeaderValue1": f"Token {self.token}"}
        if self.password:
            return {"password": self.password}
        return {}


def province_org_name(code: str) -> str:
    """The Grafana organisation of a province: ``IOC 01 Thành phố Hà Nội``."""
    from ioc.places import get_places  # noqa: PLC0415  (vietnam-provinces is slow to import)

    province = get_places().province(code)
    return f"IOC {province.code} {province.name}"


# --- the connection to one organisation ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """Where Grafana is, split the way grafana-client wants it; ``shown`` is safe to print."""

    protocol: str
    host: str
    port: int | None
    prefix: str
    shown: str

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"Grafana URL {url!r}: expected http(s)://host[:port][/path]")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "Grafana URL: credentials in the URL are not accepted (use a token or --user)"
            )
        path = parts.path.strip("/")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(
            protocol=parts.scheme,
            host=host,
            port=parts.port,
            prefix=f"{path}/" if path else "",
            shown=f"{parts.scheme}://{parts.netloc}{'/' + path if path else ''}",
        )


class _Org:
    """grafana-client bound to one organisation (``X-Grafana-Org-Id``), with error translation."""

    def __init__(
        self,
        target: _Target,
        auth: Auth,
        *,
        org_id: int | None,
        label: str,
        timeout: float,
        dry_run: bool,
    ) -> None:
        from grafana_client import GrafanaApi  # noqa: PLC0415  (keeps `ioc` quick to start)

        from ioc import __version__  # noqa: PLC0415

        self.target = target
        self.label = label
        self.dry_run = dry_run
        self.api: Any = GrafanaApi(
            auth,
            host=target.host,
            port=target.port,
            url_path_prefix=target.prefix,
            protocol=target.protocol,
            timeout=timeout,
            user_agent=f"ioc-backend/{__version__} (grafana-client)",
            organization_id=org_id,
        )

    def close(self) -> None:
        self.api.client.s.close()

    def call(self, method: str, path: str, run: Callable[[], Any], *, missing: bool = False) -> Any:
        """Run one grafana-client call; None for a 404 when ``missing``; GrafanaError otherwise."""
        import requests  # noqa: PLC0415
        from grafana_client.client import GrafanaException  # noqa: PLC0415

        request = f"{method} /{self.target.prefix}api{path}"
        where = f" in organisation {self.label!r}" if self.label else ""
        try:
            return run()
        except GrafanaException as exc:
            if missing and exc.status_code == 404:
                return None
            detail = _grafana_message(exc.response, exc.message)
            hint = ""
            if exc.status_code in (401, 403) and path.startswith("/orgs"):
                hint = (
                    " (finding and creating organisations needs a Grafana server admin with"
                    " basic auth; a service-account token belongs to one organisation)"
                )
            raise GrafanaError(
                f"Grafana at {self.target.shown} answered {exc.status_code} to {request}{where}:"
                f" {detail}{hint}",
                request=request,
                status=exc.status_code,
                detail=detail,
            ) from None
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:400]
            if isinstance(exc, requests.exceptions.JSONDecodeError):
                detail = "the answer is not JSON (is this Grafana's URL?)"
                message = f"Grafana at {self.target.shown}: {request}{where}: {detail}"
            else:
                message = f"Grafana at {self.target.shown} is unreachable ({request}): {detail}"
            raise GrafanaError(message, request=request, status=None, detail=detail) from None

    def write(self, method: str, path: str, run: Callable[[], Any]) -> Any:
        """A request that changes something: not sent in a dry run."""
        if self.dry_run:
            log.info("dry run: would send %s /api%s%s", method, path, _in(self.label))
            return None
        log.debug("%s /api%s%s", method, path, _in(self.label))
        return self.call(method, path, run)


def _grafana_message(response: Any, fallback: str) -> str:
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    if isinstance(response, str) and response.strip():
        return response.strip()[:300]
    return fallback


def _in(label: str) -> str:
    return f" in {label!r}" if label else ""


# --- one object at a time ----------------------------------------------------------------------


def _ensure_org(main: _Org, name: str) -> tuple[PushItem, int | None]:
    """The organisation's id (None: it would be created, dry run) and what was done."""
    path = f"/orgs/name/{quote(name, safe='')}"
    found = main.call(
        "GET",
        path,
        lambda: main.api.organization.find_organization(quote(name, safe="")),
        missing=True,
    )
    if found is not None:
        return PushItem("org", name, "unchanged"), int(found["id"])
    made = main.write(
        "POST", "/orgs", lambda: main.api.organization.create_organization({"name": name})
    )
    return PushItem("org", name, "created"), None if made is None else int(made["orgId"])


def _ensure_folder(org: _Org, folder: Folder) -> PushItem:
    path = f"/folders/{quote(folder.uid, safe='')}"
    current = org.call("GET", path, lambda: org.api.folder.get_folder(folder.uid), missing=True)
    if current is None:
        org.write(
            "POST", "/folders", lambda: org.api.folder.create_folder(folder.title, uid=folder.uid)
        )
        return PushItem("folder", folder.uid, "created", org.label)
    if current.get("title") == folder.title:
        return PushItem("folder", folder.uid, "unchanged", org.label)
    version = current.get("version")
    org.write(
        "PUT",
        path,
        lambda: org.api.folder.update_folder(
            folder.uid, title=folder.title, version=version, overwrite=not version
        ),
    )
    return PushItem("folder", folder.uid, "updated", org.label)


def _ensure_datasource(org: _Org, source: InfluxDatasource, *, update_secrets: bool) -> PushItem:
    path = f"/datasources/uid/{quote(source.uid, safe='')}"
    current = org.call(
        "GET", path, lambda: org.api.datasource.get_datasource_by_uid(source.uid), missing=True
    )
    wanted = source.settings()
    secrets = source.secrets()
    if current is None:
        body = {**wanted, "secureJsonData": secrets} if secrets else wanted
        org.write("POST", "/datasources", lambda: org.api.datasource.create_datasource(body))
        return PushItem("datasource", source.uid, "created", org.label)
    differs = sorted(key for key, value in wanted.items() if current.get(key) != value)
    have = {k for k, v in (current.get("secureJsonFields") or {}).items() if v}
    missing_secrets = sorted(set(secrets) - have)
    if not differs and not missing_secrets and not (update_secrets and secrets):
        return PushItem("datasource", source.uid, "unchanged", org.label)
    if current.get("readOnly"):
        log.warning(
            "data source %s%s is provisioned from files (read-only): left as it is (differs: %s)",
            source.uid,
            _in(org.label),
            ", ".join(differs + missing_secrets) or "secrets",
        )
        return PushItem("datasource", source.uid, "skipped", org.label)
    log.info(
        "data source %s%s: updating %s",
        source.uid,
        _in(org.label),
        ", ".join(differs + [f"secureJsonData.{k}" for k in missing_secrets]) or "its secrets",
    )
    body = {**wanted, "version": current.get("version", 0)}
    if secrets:
        body["secureJsonData"] = secrets
    org.write("PUT", path, lambda: org.api.datasource.update_datasource_by_uid(source.uid, body))
    return PushItem("datasource", source.uid, "updated", org.label)


def _comparable(model: Mapping[str, Any]) -> dict[str, Any]:
    """Dashboard JSON as Grafana stores it, without the keys Grafana manages."""
    plain: dict[str, Any] = json.loads(json.dumps(model, allow_nan=False))
    for key in MANAGED_KEYS:
        plain.pop(key, None)
    return plain


def _ensure_dashboard(org: _Org, board: Board) -> PushItem:
    path = f"/dashboards/uid/{quote(board.uid, safe='')}"
    current = org.call(
        "GET", path, lambda: org.api.dashboard.get_dashboard(board.uid), missing=True
    )
    ours = _comparable(board.model)
    if current is not None:
        meta = current.get("meta") or {}
        if _comparable(current.get("dashboard") or {}) == ours and (
            meta.get("folderUid") == board.folder.uid
        ):
            return PushItem("dashboard", board.uid, "unchanged", org.label)
        if meta.get("provisioned"):
            log.warning(
                "dashboard %s%s is provisioned from files: Grafana does not let the API save it",
                board.uid,
                _in(org.label),
            )
            return PushItem("dashboard", board.uid, "skipped", org.label)
    body = {
        "dashboard": ours,
        "folderUid": board.folder.uid,
        "overwrite": True,
        "message": PUSH_MESSAGE,
    }
    org.write("POST", "/dashboards/db", lambda: org.api.dashboard.update_dashboard(body))
    return PushItem("dashboard", board.uid, "created" if current is None else "updated", org.label)


def _playlist_body(playlist: Playlist) -> dict[str, Any]:
    return {
        "name": playlist.name,
        "interval": playlist.interval,
        "items": [{"type": "dashboard_by_uid", "value": uid} for uid in playlist.board_uids],
    }


def _ensure_playlists(org: _Org, playlists: Sequence[Playlist]) -> list[PushItem]:
    if not playlists:
        return []
    client = org.api.client
    listed = org.call("GET", "/playlists", lambda: client.GET("/playlists")) or []
    by_uid = {p["uid"]: p for p in listed}
    by_name: dict[str, dict[str, Any]] = {}
    for p in sorted(listed, key=lambda p: p.get("id", 0)):
        by_name.setdefault(p["name"], p)
    items = []
    for playlist in playlists:
        body = _playlist_body(playlist)
        found = by_uid.get(playlist.uid) or by_name.get(playlist.name)
        if found is None:
            org.write("POST", "/playlists", partial(client.POST, "/playlists", json=body))
            items.append(PushItem("playlist", playlist.name, "created", org.label))
            continue
        path = f"/playlists/{quote(found['uid'], safe='')}"
        current = org.call("GET", path, partial(client.GET, path)) or {}
        have = {
            "name": current.get("name"),
            "interval": current.get("interval"),
            "items": [
                {"type": i.get("type"), "value": i.get("value")} for i in current.get("items") or []
            ],
        }
        if have == body:
            items.append(PushItem("playlist", playlist.name, "unchanged", org.label))
            continue
        org.write("PUT", path, partial(client.PUT, path, json=body))
        items.append(PushItem("playlist", playlist.name, "updated", org.label))
    return items


# --- the whole push ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Group:
    """What goes into one organisation; ``province`` None: the current organisation."""

    province: str | None
    boards: tuple[Board, ...]
    playlists: tuple[Playlist, ...]


def _groups(
    boards: Sequence[Board], playlists: Sequence[Playlist], *, org_per_province: bool
) -> list[_Group]:
    """Split the input by organisation and check it, before anything is sent."""
    for board in boards:
        if board.model.get("uid") != board.uid:
            raise ValueError(f"board {board.key!r}: model uid {board.model.get('uid')!r}")
        if "title" not in board.model:
            raise ValueError(f"board {board.key!r}: its model has no title")
    if not org_per_province:
        groups = [_Group(None, tuple(boards), tuple(playlists))]
    else:
        codes = sorted({b.province for b in boards if b.province is not None})
        codes += sorted({p.province for p in playlists if p.province is not None} - set(codes))
        groups = [
            _Group(
                code,
                tuple(b for b in boards if b.province == code),
                tuple(p for p in playlists if p.province == code),
            )
            for code in [None, *codes]
        ]
        groups = [g for g in groups if g.boards or g.playlists]
    for group in groups:
        where = f" (province {group.province})" if group.province else ""
        uids = Counter(b.uid for b in group.boards)
        if doubles := sorted(uid for uid, n in uids.items() if n > 1):
            raise ValueError(f"dashboard uids given twice{where}: {', '.join(doubles)}")
        titles: dict[str, str] = {}
        for board in group.boards:
            title = titles.setdefault(board.folder.uid, board.folder.title)
            if title != board.folder.title:
                raise ValueError(
                    f"folder {board.folder.uid!r}{where} has two titles: "
                    f"{title!r} and {board.folder.title!r}"
                )
        names = Counter(p.name for p in group.playlists)
        if doubles := sorted(name for name, n in names.items() if n > 1):
            raise ValueError(f"playlist names given twice{where}: {', '.join(doubles)}")
        for playlist in group.playlists:
            if unknown := [uid for uid in playlist.board_uids if uid not in uids]:
                raise ValueError(
                    f"playlist {playlist.name!r}{where} shows boards that are not pushed with "
                    f"it: {', '.join(unknown)}"
                )
    return groups


def _folders(boards: Iterable[Board]) -> list[Folder]:
    seen: dict[str, Folder] = {}
    for board in boards:
        seen.setdefault(board.folder.uid, board.folder)
    return list(seen.values())


def _push_group(
    org: _Org, group: _Group, datasource: InfluxDatasource | None, *, update_secrets: bool
) -> list[PushItem]:
    items = [_ensure_folder(org, folder) for folder in _folders(group.boards)]
    if datasource is not None:
        items.append(_ensure_datasource(org, datasource, update_secrets=update_secrets))
    items.extend(_ensure_dashboard(org, board) for board in group.boards)
    items.extend(_ensure_playlists(org, group.playlists))
    return items


def _all_new(group: _Group, datasource: InfluxDatasource | None, label: str) -> list[PushItem]:
    """A dry run into an organisation that does not exist yet: everything would be created."""
    items = [PushItem("folder", f.uid, "created", label) for f in _folders(group.boards)]
    if datasource is not None:
        items.append(PushItem("datasource", datasource.uid, "created", label))
    items += [PushItem("dashboard", b.uid, "created", label) for b in group.boards]
    items += [PushItem("playlist", p.name, "created", label) for p in group.playlists]
    return items


def _log_item(item: PushItem, dry_run: bool) -> None:
    if item.action == "unchanged":
        log.debug("%s", item)
    else:
        log.info("%s%s", "dry run: " if dry_run else "", item)


def push(
    boards: Iterable[Board],
    playlists: Iterable[Playlist] = (),
    *,
    url: str,
    auth: Auth,
    org_per_province: bool = False,
    datasource: InfluxDatasource | None = None,
    update_secrets: bool = False,
    dry_run: bool = False,
    timeout: float = 10.0,
    org_name: Callable[[str], str] = province_org_name,
) -> PushReport:
    """Make Grafana at ``url`` hold these boards and playlists; write only what differs.

    ``datasource`` None leaves data sources alone (provisioned from files, say). ``dry_run``
    sends GET requests only and reports what would be done. Raises ``GrafanaError`` when Grafana
    refuses a request or cannot be reached, ``ValueError`` (before any request) for input that
    cannot be pushed.
    """
    boards, playlists = tuple(boards), tuple(playlists)
    groups = _groups(boards, playlists, org_per_province=org_per_province)
    target = _Target.parse(url)
    items: list[PushItem] = []

    def connect(org_id: int | None, label: str) -> _Org:
        return _Org(target, auth, org_id=org_id, label=label, timeout=timeout, dry_run=dry_run)

    main = connect(None, "")
    try:
        for group in groups:
            if group.province is None:
                done = _push_group(main, group, datasource, update_secrets=update_secrets)
            else:
                name = org_name(group.province)
                org_item, org_id = _ensure_org(main, name)
                done = [org_item]
                if org_id is None:  # dry run, and the organisation does not exist yet
                    done += _all_new(group, datasource, name)
                else:
                    org = connect(org_id, name)
                    try:
                        done += _push_group(org, group, datasource, update_secrets=update_secrets)
                    finally:
                        org.close()
            for item in done:
                _log_item(item, dry_run)
            items.extend(done)
    finally:
        main.close()
    report = PushReport(tuple(items), dry_run=dry_run)
    log.info("grafana push to %s: %s", target.shown, report.summary())
    return report


# --- ioc dashboards push -----------------------------------------------------------------------


def configure_push(parser: argparse.ArgumentParser) -> None:
    """The options of ``ioc dashboards push``."""
    parser.add_argument(
        "--url", help=f"Grafana's base URL (default: $GRAFANA_URL, else {DEFAULT_URL})"
    )
    parser.add_argument(
        "--token-env",
        default="GRAFANA_TOKEN",
        metavar="NAME",
        help="environment variable holding a Grafana token (default: GRAFANA_TOKEN)",
    )
    parser.add_argument(
        "--user", help="basic auth as this Grafana user instead (needed for --org-per-province)"
    )
    parser.add_argument(
        "--password-env",
        default="GRAFANA_PASSWORD",
        metavar="NAME",
        help="environment variable holding --user's password (default: GRAFANA_PASSWORD)",
    )
    parser.add_argument(
        "--org-per-province",
        action="store_true",
        help="one organisation per province holding its own boards, playlists and data source",
    )
    parser.add_argument(
        "--province",
        action="append",
        metavar="CODE",
        help="with --org-per-province: only this province (repeatable; default: all 34)",
    )
    parser.add_argument(
        "--influx-url",
        help="InfluxDB as Grafana's server reaches it (default: IOC_INFLUX_URL)",
    )
    parser.add_argument(
        "--influx-token-env",
        default="GRAFANA_INFLUX_TOKEN",
        metavar="NAME",
        help="environment variable holding Grafana's read-only InfluxDB token "
        "(default: GRAFANA_INFLUX_TOKEN)",
    )
    parser.add_argument(
        "--influx-password-env",
        default="IOC_INFLUX_PASSWORD",
        metavar="NAME",
        help="without a token: environment variable holding the password of IOC_INFLUX_USERNAME "
        "(default: IOC_INFLUX_PASSWORD)",
    )
    parser.add_argument(
        "--no-datasource",
        action="store_true",
        help="leave the data source alone (it is provisioned from files)",
    )
    parser.add_argument(
        "--update-secrets",
        action="store_true",
        help="send the data source's secret even when nothing else changed (after a rotation)",
    )
    parser.add_argument("--dry-run", action="store_true", help="read only: print what would change")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each request"
    )


class _UsageError(Exception):
    pass


def _auth(args: argparse.Namespace, environ: Mapping[str, str]) -> Auth:
    if args.user:
        password = environ.get(args.password_env)
        if not password:
            raise _UsageError(f"{args.password_env} is not set (the password of {args.user!r})")
        return (args.user, password)
    token = environ.get(args.token_env)
    if not token:
        raise _UsageError(f"{args.token_env} is not set: give a Grafana token, or --user")
    return token


def _datasource(
    settings: Settings, args: argparse.Namespace, environ: Mapping[str, str]
) -> InfluxDatasource | None:
    if args.no_datasource:
        return None
    url = args.influx_url or settings.influx_url
    token = environ.get(args.influx_token_env)
    if token:
        return InfluxDatasource(url=url, database=settings.influx_db, token=token)
    if settings.influx_username:
        password = environ.get(args.influx_password_env)
        if not password:
            raise _UsageError(
                f"neither {args.influx_token_env} nor {args.influx_password_env} is set: "
                "Grafana's data source needs one to read InfluxDB"
            )
        return InfluxDatasource(
            url=url, database=settings.influx_db, user=settings.influx_username, password=password
        )
    return InfluxDatasource(url=url, database=settings.influx_db)


def run_push(settings: Settings, args: argparse.Namespace) -> int:
    """``ioc dashboards push``: generate the boards from the catalog and push them."""
    import sys  # noqa: PLC0415

    from ioc.catalog import get_catalog  # noqa: PLC0415

    environ = os.environ
    try:
        auth = _auth(args, environ)
        datasource = _datasource(settings, args, environ)
    except _UsageError as exc:
        print(f"ioc dashboards push: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from dashboards.build import (  # noqa: PLC0415  (the builders are slow to import)
        build_boards,
        build_playlists,
        build_province_boards,
    )

    catalog = get_catalog(settings.registry_file)
    boards = build_boards(catalog, settings.influx_db)
    if args.org_per_province:
        if args.province:
            codes = list(dict.fromkeys(args.province))
        else:
            from ioc.places import get_places  # noqa: PLC0415

            codes = [p.code for p in get_places().provinces()]
        for code in codes:
            boards.extend(build_province_boards(catalog, settings.influx_db, code))
    playlists = build_playlists(boards)
    report = push(
        boards,
        playlists,
        url=args.url or environ.get("GRAFANA_URL") or DEFAULT_URL,
        auth=auth,
        org_per_province=args.org_per_province,
        datasource=datasource,
        update_secrets=args.update_secrets,
        dry_run=args.dry_run,
        timeout=args.timeout,
    )
    for item in report.items:
        if item.action != "unchanged":
            print(item)
    print(report.summary())
    return EXIT_OK
