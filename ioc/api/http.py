"""HTTP niceties in one place: formats, CSV output, ETag / If-None-Match, Cache-Control, a cache.

* **Formats**: every resource is JSON; a view class with ``formats = JSON_OR_CSV`` (values,
  series, rankings, scorecards, feeds, dead letters) is also ``text/csv``. ``?format=`` chooses
  (400 naming the formats if the resource has no such format), else the Accept header (406 if
  it allows none of them); ``format=json`` is accepted by every resource.
* **CSV**: nested members flattened as ``place.code``...; text cells that a spreadsheet would
  run as a formula (``=``, ``+``, ``-``, ``@``...) get a leading ``'``; numbers are written as
  numbers.
* **ETag**: every 200 answer to a GET carries a strong ETag (a hash of the body); a request whose
  ``If-None-Match`` matches gets 304 with no body.
* **Cache-Control**: ``private, max-age=<IOC_API_CACHE_SECONDS>`` (answers depend on the key).
* **Server cache**: identical GETs (path, query, format, the key's scope) within
  ``IOC_API_CACHE_SECONDS`` are answered from this worker's memory, without querying InfluxDB.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, request
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from ioc.api.problems import InvalidParameter, bad_request, invalid_parameters
from ioc.errors import ApiProblem

CSV_TYPE = "text/csv"
MEDIA_TYPES = {"json": "application/json", "csv": CSV_TYPE}
"""Every format a resource may be served in, by its ``?format=`` name."""
JSON_ONLY = ("json",)
JSON_OR_CSV = ("json", "csv")
OPENAPI_ENDPOINT = "api-docs.openapi_json"
"""flask-smorest's endpoint of the OpenAPI document."""
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def offered_formats() -> tuple[str, ...] | None:
    """The formats of the resource the request reaches: its view class's ``formats``.

    JSON for the OpenAPI document; None for what is neither (the docs page, an unknown route).
    """
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return JSON_ONLY if request.endpoint == OPENAPI_ENDPOINT else None
    formats: tuple[str, ...] = getattr(view_class, "formats", JSON_ONLY)
    return formats


def negotiate(offered: Sequence[str]) -> str:
    """The format to answer in: ``?format=`` if given, else the best one Accept allows.

    Raises a 400 problem for a ``format`` the resource does not offer and a 406 when the Accept
    header allows none of its media types; no Accept header (or an empty one) means JSON.
    """
    asked = request.args.get("format")
    if asked is not None:
        if asked not in offered:
            message = f"this resource is served as {' or '.join(offered)}"
            invalid = InvalidParameter("query", "format", asked, message)
            # This check runs before the view parses its arguments: list theirs too, so that a
            # request with several invalid parameters learns of every one at once.
            raise bad_request([invalid, *_other_invalid_query()], formats=list(offered))
        return asked
    accept = request.headers.get("Accept", "").strip()
    if not accept:
        return offered[0]
    best = request.accept_mimetypes.best_match([MEDIA_TYPES[name] for name in offered])
    if best is None:
        types = " or ".join(MEDIA_TYPES[name] for name in offered)
        raise ApiProblem(
            406,
            "Not Acceptable",
            f"header Accept = {accept!r}: this resource is served as {types} "
            f"(or ask with ?format={'|'.join(offered)})",
            extra={"parameter": "Accept", "value": accept, "formats": list(offered)},
        )
    return next(name for name in offered if MEDIA_TYPES[name] == best)


def _other_invalid_query() -> list[InvalidParameter]:
    """The invalid query parameters other than ``format``, by the view's own query schema.

    flask-smorest records each view method's argument schemas in its ``_apidoc``; the view has
    not run yet, so they are validated here exactly as webargs would (multi-valued fields too).
    """
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    method = getattr(view_class, request.method.lower(), None)
    arguments = getattr(method, "_apidoc", {}).get("arguments", {})
    found: list[InvalidParameter] = []
    for parameter in arguments.get("parameters", ()):
        if parameter.get("in") != "query":
            continue
        schema = parameter["schema"]
        schema = schema() if isinstance(schema, type) else schema
        kept = MultiDict([(k, v) for k, v in request.args.items(multi=True) if k != "format"])
        messages = schema.validate(MultiDictProxy(kept, schema))
        messages.pop("format", None)
        found.extend(invalid_parameters({"querystring": messages}))
    return found


def response_format() -> str:
    """The format negotiated for this request (by the app's hook; JSON outside a resource)."""
    chosen = g.get("format")
    if chosen is None:
        offered = offered_formats()
        chosen = g.format = "json" if offered is None else negotiate(offered)
    return str(chosen)


def wants_csv() -> bool:
    """True if the request is to be answered in CSV (``format=csv`` wins over Accept)."""
    return response_format() == "csv"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_response(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], name: str) -> Response:
    """Rows as a CSV attachment with a header line; ``columns`` are flattened member names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        flat: dict[str, Any] = {}
        _flatten("", row, flat)
        writer.writerow([_cell(flat.get(column)) for column in columns])
    response = Response(buffer.getvalue(), mimetype=CSV_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class ResponseCache:
    """A small time-bounded LRU of whole responses, per worker process."""

    def __init__(
        self, seconds: float, *, size: int = 512, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """False when IOC_API_CACHE_SECONDS is 0."""
        return self.seconds > 0

    def get(self, key: str) -> Response | None:
        """A copy of the cached response, or None if absent or expired."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        response = Response(entry.body, status=entry.status)
        response.headers.clear()
        for header, value in entry.headers:
            response.headers.add(header, value)
        response.headers["X-Cache"] = "hit"
        return response

    def put(self, key: str, response: Response) -> None:
        """Keep a 200 answer for ``seconds``."""
        if not self.enabled or response.status_code != 200 or response.direct_passthrough:
            return
        entry = _Entry(
            self.clock() + self.seconds,
            response.status_code,
            response.get_data(),
            tuple((k, v) for k, v in response.headers.items() if k.lower() != "x-cache"),
        )
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def cache_key(scope_signature: str) -> str:
    """What makes two GETs identical: path, sorted query, wanted format, the caller's scope."""
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    return f"{request.path}?{query}|{response_format()}|{scope_signature}"


def finish(response: Response, *, max_age: float) -> Response:
    """ETag, Cache-Control and the conditional 304 for a successful GET."""
    if request.method not in ("GET", "HEAD") or response.status_code != 200:
        response.headers.setdefault("Cache-Control", "no-store")
        return response
    if response.direct_passthrough:  # pragma: no cover - no streamed answers today
        return response
    if "ETag" not in response.headers:
        digest = hashlib.blake2b(response.get_data(), digest_size=16).hexdigest()
        response.set_etag(digest)
    response.headers["Cache-Control"] = f"private, max-age={int(max_age)}"
    response.vary.update(("Accept", "X-API-Key", "Authorization"))
    response.make_conditional(request)  # turns it into a 304 in place when the ETag matches
    return response
