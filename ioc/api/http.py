"""HTTP niceties in one place: CSV output, ETag / If-None-Match, Cache-Control, a short cache.

* **CSV**: series, rankings, values, feeds and dead letters as ``text/csv`` when asked with
  ``?format=csv`` or ``Accept: text/csv`` (nested members flattened as ``place.code``...).
  Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``...) get a
  leading ``'``; numbers are written as numbers.
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

from flask import Response, request

CSV_TYPE = "text/csv"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(format_arg: str | None) -> bool:
    """True if the request asks for CSV (``format=csv`` wins over the Accept header)."""
    if format_arg is not None:
        return format_arg == "csv"
    best = request.accept_mimetypes.best_match(["application/json", CSV_TYPE])
    return best == CSV_TYPE


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
    accept = "csv" if wants_csv(request.args.get("format")) else "json"
    return f"{request.path}?{query}|{accept}|{scope_signature}"


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
