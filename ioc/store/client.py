"""The one client of InfluxDB: line-protocol writes and InfluxQL queries.

Writes go to v1 ``/write`` (db, rp, user/password) or, with ``IOC_INFLUX_API=v2``, to
``/api/v2/write`` through influxdb-client (org, token; the bucket of retention policy ``rp`` is
named ``<db>/<rp>``, which InfluxDB 2.x maps to that database and retention policy for InfluxQL).
Queries always go to ``/query`` as InfluxQL (POSTed as a form), on 1.x natively and on 2.x
through its v1 compatibility API.

A rejected write (400/422) is resolved line by line: lines the server names as unparseable are
rejected with its reason; when the server does not say which lines it dropped, the batch is split
in halves and re-sent until every rejected line is isolated. Every point carries its timestamp,
so re-sending an accepted line rewrites the same point (idempotent). The caller gets the number
of lines written, or a :class:`PartialWriteError` carrying the rejected lines and how many were
written.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import orjson
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from ioc.errors import (
    AuthError,
    NotFoundError,
    PartialWriteError,
    QueryError,
    RejectedLine,
    ServerError,
    StoreError,
    ThrottledError,
    UnreachableError,
)
from ioc.settings import Settings
from ioc.store.influxql import quote_ident
from ioc.store.lineprotocol import Point, encode_points

log = logging.getLogger(__name__)

ParamValue = str | int | float | bool
Epoch = Literal["ns", "u", "ms", "s"]

_UNPARSEABLE = re.compile(
    r"unable to parse '(.*?)': (.*?)(?=\nunable to parse '| dropped=\d+$|$)", re.S
)
_DROPPED = re.compile(r"dropped=(\d+)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(w|d|h|m|s)")
_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


@dataclass(frozen=True, slots=True)
class Series:
    """One series of an InfluxQL result: name, group-by tags, columns and rows."""

    name: str
    tags: Mapping[str, str]
    columns: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dictionaries keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    headers: Mapping[str, str]


class _Rejected(Exception):
    """Internal: the server refused the batch as a whole or in part (400, 413, 422)."""

    def __init__(self, answer: _Answer, message: str) -> None:
        super().__init__(message)
        self.answer = answer
        self.message = message


def _error_message(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace").strip()
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or doc)
    return str(doc)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _raise_for(answer: _Answer, what: str) -> None:
    """Map a non-2xx answer to the typed error tree; 400/413/422 become ``_Rejected``."""
    status = answer.status
    if 200 <= status < 300:
        return
    message = _error_message(answer.body)
    text = f"{what}: HTTP {status}: {message}"
    if status in (400, 413, 422):
        raise _Rejected(answer, message)
    if status in (401, 403):
        raise AuthError(text, status=status)
    if status == 404 or "not found" in message:
        raise NotFoundError(text, status=status)
    if status == 429 or (status == 503 and _retry_after(answer.headers) is not None):
        raise ThrottledError(text, status=status, retry_after=_retry_after(answer.headers))
    if status >= 500:
        raise ServerError(text, status=status)
    raise StoreError(text, status=status)


def duration_seconds(text: str) -> float:
    """Seconds in an InfluxQL or Go duration (``90d``, ``9600h0m0s``); ``INF`` and ``0s`` are 0."""
    if text.upper() == "INF":
        return 0.0
    return sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


@lru_cache(maxsize=512)
def _form_prefix(db: str, text: str) -> str:
    """``db=...&q=...`` of a query form. The API sends a handful of query texts (the values are
    bound parameters), and percent-encoding a 1 kB text character by character is not free."""
    return urlencode({"db": db, "q": text})


_STALE = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.BadStatusLine)
"""What sending on a kept-alive connection that the server has since closed raises."""


class _QueryConnection(threading.local):
    """Each thread's kept-alive HTTP connection for queries (``POST /query``).

    The API answers most requests with one query, so the query's own client cost counts. A
    GET through urllib3's pool manager cost ~0.45 ms of CPU per query, most of it re-encoding
    the URL's query string character by character (four passes over ~1 kB of InfluxQL) and
    managing the pool; the same query POSTed as a form on one ``http.client`` connection kept
    open costs ~0.17 ms (process CPU time over 300 queries). A connection the server closed
    while idle is replaced and the query sent once more (reads are idempotent); any other
    failure is :class:`UnreachableError` at once.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port
        self.path = parts.path.rstrip("/") + "/query"
        self.timeout = timeout
        self.url = url
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, body: bytes, headers: Mapping[str, str]) -> _Answer:
        """Send one query form; the answer's status, body and headers."""
        for attempt in (1, 2):
            reused = self.connection is not None
            connection = self.connection or self._connect()
            self.connection = connection
            try:
                connection.request("POST", self.path, body=body, headers=dict(headers))
                response = connection.getresponse()
                data = response.read()
            except _STALE as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise UnreachableError(f"InfluxDB at {self.url} did not answer: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise UnreachableError(f"InfluxDB at {self.url} did not answer: {exc}") from exc
            if response.will_close:
                self.close()
            return _Answer(response.status, data, dict(response.getheaders()))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        """Close this thread's connection (the next query opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Store:
    """Writes points and runs InfluxQL against the configured InfluxDB."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._base = settings.influx_url
        self._timeout = urllib3.Timeout(total=settings.influx_timeout)
        self._http = urllib3.PoolManager(maxsize=4, retries=False, timeout=self._timeout)
        self._headers: dict[str, str] = {}
        if settings.influx_token:
            self._headers["Authorization"] = f"Token {settings.influx_token}"
        elif settings.influx_username:
            pair = f"{settings.influx_username}:{settings.influx_password or ''}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self._query = _QueryConnection(settings.influx_url, settings.influx_timeout)
        self._v2_write: Any = None
        self._v2_client: Any = None
        if settings.influx_api == "v2":
            from influxdb_client.client.influxdb_client import InfluxDBClient  # noqa: PLC0415  (only the v2 path needs it)
            from influxdb_client.client.write_api import SYNCHRONOUS  # noqa: PLC0415

            self._v2_client = InfluxDBClient(
                url=settings.influx_url,
                token=settings.influx_token or "",
                org=settings.influx_org or "",
                timeout=int(settings.influx_timeout * 1000),
            )
            self._v2_write = self._v2_client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        """Release connections (the query connection of the calling thread too)."""
        self._http.clear()
        self._query.close()
        if self._v2_write is not None:
            self._v2_write.close()
            self._v2_client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        fields: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> _Answer:
        url = f"{self._base}{path}"
        headers = dict(self._headers)
        if fields is not None and method == "GET":
            url = f"{url}?{urlencode(fields)}"
        elif fields is not None:
            body = urlencode(fields).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = self._http.request(method, url, body=body, headers=headers)
        except Urllib3Error as exc:
            raise UnreachableError(f"InfluxDB at {self._base} did not answer: {exc}") from exc
        return _Answer(response.status, response.data, dict(response.headers))

    def _send_lines(self, lines: Sequence[str], rp: str) -> None:
        body = ("\n".join(lines) + "\n").encode("utf-8")
        if self._v2_write is None:
            params = {"db": self.settings.influx_db, "rp": rp, "precision": "ns"}
            answer = self._request("POST", "/write?" + urlencode(params), body=body)
        else:
            answer = self._send_v2(body, rp)
        _raise_for(answer, f"write to {self.settings.influx_db}/{rp}")

    def _send_v2(self, body: bytes, rp: str) -> _Answer:
        from influxdb_client.rest import ApiException  # noqa: PLC0415

        try:
            self._v2_write.write(
                bucket=f"{self.settings.influx_db}/{rp}",
                org=self.settings.influx_org,
                record=body,
                write_precision="ns",
            )
        except ApiException as exc:
            return _Answer(int(exc.status or 0), exc.body or b"", dict(exc.headers or {}))
        except Urllib3Error as exc:
            raise UnreachableError(f"InfluxDB at {self._base} did not answer: {exc}") from exc
        return _Answer(204, b"", {})

    # --- writes ------------------------------------------------------------------------------

    def write(self, points: Sequence[Point], *, rp: str = "raw") -> int:
        """Write points into retention policy ``rp``; return how many were written."""
        return self.write_lines(encode_points(points), rp=rp)

    def write_lines(self, lines: Sequence[str], *, rp: str = "raw") -> int:
        """Write lines of line protocol (each with a timestamp); return how many were written."""
        if not lines:
            return 0
        rejected: list[RejectedLine] = []
        written = self._write_isolating(list(lines), rp, rejected)
        if rejected:
            raise PartialWriteError(
                f"{len(rejected)} of {len(lines)} lines rejected by InfluxDB "
                f"(first: {rejected[0].reason})",
                rejected=tuple(rejected),
                accepted=written,
            )
        return written

    def _write_isolating(self, lines: list[str], rp: str, rejected: list[RejectedLine]) -> int:
        try:
            self._send_lines(lines, rp)
        except _Rejected as refusal:
            return self._resolve_refusal(lines, rp, refusal, rejected)
        return len(lines)

    def _resolve_refusal(
        self, lines: list[str], rp: str, refusal: _Rejected, rejected: list[RejectedLine]
    ) -> int:
        if len(lines) == 1:
            rejected.append(RejectedLine(lines[0], refusal.message))
            return 0
        named = {line: reason.strip() for line, reason in _UNPARSEABLE.findall(refusal.message)}
        present = set(lines)
        named = {line: reason for line, reason in named.items() if line in present}
        dropped = _DROPPED.search(refusal.message)
        rest = [line for line in lines if line not in named]
        rejected.extend(
            RejectedLine(line, f"unable to parse: {named[line]}") for line in lines if line in named
        )
        if (
            named
            and refusal.message.startswith("partial write")
            and dropped
            and dropped.group(1) == "0"
        ):
            return len(rest)  # the server wrote every line it did not name
        if not rest:
            return 0
        half = len(rest) // 2 or 1
        return self._write_isolating(rest[:half], rp, rejected) + self._write_isolating(
            rest[half:], rp, rejected
        )

    # --- queries -----------------------------------------------------------------------------

    def query(
        self,
        text: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        epoch: Epoch | None = "ns",
    ) -> tuple[Series, ...]:
        """Run one read-only InfluxQL statement with bound ``$params``; return its series."""
        # POSTed as a form on this thread's kept-alive connection (see _QueryConnection); the
        # form is urlencode({"db", "q", "params", "epoch"}), with the text's part cached
        form = _form_prefix(self.settings.influx_db, text)
        if params:
            form += "&" + urlencode({"params": orjson.dumps(dict(params)).decode()})
        if epoch is not None:
            form += "&" + urlencode({"epoch": epoch})
        headers = {**self._headers, "Content-Type": "application/x-www-form-urlencoded"}
        answer = self._query.post(form.encode(), headers)
        results = self._statements(answer, text)
        if len(results) != 1:
            raise QueryError(f"query() runs exactly one statement, got {len(results)}: {text}")
        return results[0]

    def command(self, text: str) -> None:
        """Run administrative InfluxQL (CREATE, ALTER, DROP) with POST."""
        fields = {"db": self.settings.influx_db, "q": text}
        self._statements(self._request("POST", "/query", fields=fields), text)

    def _statements(self, answer: _Answer, text: str) -> list[tuple[Series, ...]]:
        try:
            _raise_for(answer, "query")
        except _Rejected as refusal:
            raise QueryError(
                f"query rejected: {refusal.message}: {text}", status=answer.status
            ) from None
        try:
            doc = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise ServerError(f"query answer is not JSON: {answer.body[:200]!r}") from exc
        if "error" in doc:
            raise QueryError(f"query rejected: {doc['error']}: {text}", status=answer.status)
        out: list[tuple[Series, ...]] = []
        for result in doc.get("results", []):
            if "error" in result:
                message = result["error"]
                kind = NotFoundError if "not found" in message else QueryError
                raise kind(f"query rejected: {message}: {text}", status=answer.status)
            out.append(
                tuple(
                    Series(
                        name=s.get("name", ""),
                        tags=s.get("tags") or {},
                        columns=tuple(s.get("columns", ())),
                        values=tuple(tuple(row) for row in s.get("values", ())),
                    )
                    for s in result.get("series", ())
                )
            )
        return out or [()]

    # --- server ------------------------------------------------------------------------------

    def ping(self) -> str:
        """Check that InfluxDB answers; return its version."""
        answer = self._request("GET", "/ping")
        _raise_for(answer, "ping")
        return answer.headers.get("X-Influxdb-Version", "unknown")

    def ensure_schema(self) -> None:
        """Create the database and retention policies (``raw`` default, ``derived``, ``ops``).

        Idempotent: existing policies whose duration differs from the settings are altered.
        Only for InfluxDB 1.x; on 2.x the buckets ``<db>/<rp>`` are created by the deployment.
        """
        if self.settings.influx_api != "v1":
            raise StoreError(
                "ensure_schema manages InfluxDB 1.x databases; on 2.x create the buckets "
                f"{self.settings.influx_db}/raw, /derived and /ops (see deploy/)"
            )
        db = quote_ident(self.settings.influx_db)
        self.command(f"CREATE DATABASE {db}")
        series = self.query(f"SHOW RETENTION POLICIES ON {db}", epoch=None)
        existing = {row["name"]: row for s in series for row in s.rows()}
        for name, duration in self.settings.retention_policies().items():
            default = " DEFAULT" if name == "raw" else ""
            clause = f"{quote_ident(name)} ON {db} DURATION {duration} REPLICATION 1{default}"
            if name not in existing:
                self.command(f"CREATE RETENTION POLICY {clause}")
                log.info("created retention policy %s (%s)", name, duration)
            elif duration_seconds(existing[name]["duration"]) != duration_seconds(duration) or (
                default and not existing[name]["default"]
            ):
                self.command(f"ALTER RETENTION POLICY {clause}")
                log.info("altered retention policy %s to %s", name, duration)
