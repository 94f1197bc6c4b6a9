"""The one exception tree of the project.

Every error the project raises on purpose derives from ``IocError``::

    IocError
    ├── SettingsError            a setting is missing or invalid (names the variable and the value)
    ├── StackError               the local stack could not start, answer or stop
    ├── CatalogError             a catalog or registry file is invalid (names file, entry, field)
    ├── LineProtocolError        a value cannot be written as line protocol without ambiguity
    ├── FormulaInputError        an official formula was given inputs it is not defined for
    ├── PayloadError             an MQTT/HTTP payload cannot be parsed; ``reason`` is a stable code
    ├── ApiProblem               an API request cannot be answered: status, title, detail (RFC 9457)
    ├── ApiKeyError              an API key request or the key file is invalid (``ioc keys``)
    ├── SpoolError               the collector's local spool cannot take or give back a batch
    │   ├── SpoolFullError       the size limit is reached: stop acknowledging (backpressure)
    │   ├── SpoolCorruptError    damage a crash cannot explain (names file and offset)
    │   └── SpoolLockedError     another process owns the spool directory
    ├── StoreError               InfluxDB refused or could not be reached
    │   ├── PartialWriteError    400/422: some (or all) lines rejected; carries them with reasons
    │   ├── QueryError           the InfluxQL statement was rejected
    │   ├── AuthError            401/403: credentials missing or not allowed
    │   ├── NotFoundError        database, retention policy, bucket or org does not exist
    │   ├── ThrottledError       429 (or 503 with Retry-After): try again later   [retryable]
    │   ├── ServerError          5xx                                               [retryable]
    │   └── UnreachableError     connection refused, DNS failure, timeout          [retryable]
    ├── GrafanaError             Grafana refused a request or is unreachable (names the request)
    └── AlertmanagerError        Alertmanager refused a request or is unreachable (URL, status)

``StoreError.retryable`` tells a caller whether the same request may succeed later.
"""

from __future__ import annotations

from dataclasses import dataclass


class IocError(Exception):
    """Base class of every error the project raises on purpose."""


class SettingsError(IocError):
    """A setting is missing or invalid; the message names the variable and the value."""


class StackError(IocError):
    """The local stack (Mosquitto, InfluxDB child processes) could not start, answer or stop."""


class CatalogError(IocError):
    """A catalog or source-registry file is invalid; the message names file, entry and field."""


class LineProtocolError(IocError, ValueError):
    """A measurement, key or value cannot be encoded as line protocol without ambiguity."""


class FormulaInputError(IocError, ValueError):
    """An official formula was called with inputs it is not defined for."""


class PayloadError(IocError, ValueError):
    """A message payload cannot be parsed.

    ``reason`` is a short, stable, snake_case code (``invalid_json``, ``not_finite``...) used as
    the dead-letter reason and counter label; the message says what was wrong, naming the field
    and the value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ApiProblem(IocError):
    """An API request that cannot be answered as asked; rendered as ``application/problem+json``.

    ``detail`` names the parameter and the value at fault; ``extra`` adds members to the problem
    document (``parameter``, ``value``, ``errors``...), ``headers`` adds response headers.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        extra: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers or {}


class ApiKeyError(IocError, ValueError):
    """An API key request is invalid (scope, province, expiry, key id) or the key file is bad."""


class SpoolError(IocError):
    """The collector's local spool (ingest/spool.py) cannot take or give back a batch."""


class SpoolFullError(SpoolError):
    """The spool has reached its size limit; nothing was written."""


class SpoolCorruptError(SpoolError):
    """A segment or the committed file is damaged somewhere a crash cannot explain."""


class SpoolLockedError(SpoolError):
    """Another process (or another open Spool) owns the spool directory."""


class StoreError(IocError):
    """InfluxDB refused a request or could not be reached."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RejectedLine:
    """One line of line protocol that the server refused, with the server's reason."""

    line: str
    reason: str


class PartialWriteError(StoreError):
    """The server rejected some lines (or all); the others are durable."""

    def __init__(self, message: str, *, rejected: tuple[RejectedLine, ...], accepted: int) -> None:
        super().__init__(message, status=400)
        self.rejected = rejected
        self.accepted = accepted


class QueryError(StoreError):
    """The InfluxQL statement was rejected (syntax, unknown function, bad parameter)."""


class AuthError(StoreError):
    """Credentials are missing, wrong, or not allowed to do this."""


class NotFoundError(StoreError):
    """The database, retention policy, bucket or organisation does not exist."""


class ThrottledError(StoreError):
    """The server asks us to slow down; ``retry_after`` is its hint in seconds, if any."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServerError(StoreError):
    """The server failed (5xx); the same request may succeed later."""

    retryable = True


class UnreachableError(StoreError):
    """No answer: connection refused, name not resolved, or timed out."""

    retryable = True


class GrafanaError(IocError):
    """Grafana refused a request (4xx/5xx) or could not be reached (``status`` None).

    ``request`` is the method and path (``POST /api/dashboards/db``), ``detail`` Grafana's own
    message (or the connection error); neither ever contains a credential.
    """

    def __init__(self, message: str, *, request: str, status: int | None, detail: str) -> None:
        super().__init__(message)
        self.request = request
        self.status = status
        self.detail = detail

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later (unreachable, 429 or 5xx)."""
        return self.status is None or self.status == 429 or self.status >= 500


class AlertmanagerError(IocError):
    """Alertmanager refused a request (4xx/5xx) or could not be reached (``status`` None).

    The message names the method, the URL, and the status with Alertmanager's own answer (or the
    connection error); ``body`` is that answer, shortened.
    """

    def __init__(self, message: str, *, url: str, status: int | None, body: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later (unreachable, 429 or 5xx)."""
        return self.status is None or self.status == 429 or self.status >= 500
