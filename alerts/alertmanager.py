"""A small typed client of Prometheus Alertmanager's v2 API (``/api/v2``), over ``requests``.

Alertmanager does the grouping, deduplication, inhibition, silences, repeat intervals and the
receivers; the evaluator only posts what is firing (and resolutions) every cycle. Everything that
crosses this boundary is an immutable value: :class:`PostableAlert` going in, :class:`Alert`,
:class:`Silence` and :class:`AlertmanagerStatus` coming back. Every failure, refused or
unreachable, is one :class:`~ioc.errors.AlertmanagerError` naming the URL and the status/body.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Protocol, Self

import requests

from ioc.errors import AlertmanagerError

log = logging.getLogger(__name__)

__all__ = [
    "Alert",
    "AlertLike",
    "Alertmanager",
    "AlertmanagerSink",
    "AlertmanagerStatus",
    "Matcher",
    "PostableAlert",
    "Silence",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})
_BODY_EXCERPT = 300
_FRACTION = re.compile(r"\.(\d+)")


class AlertLike(Protocol):
    """Anything shaped like an alert to post (``PostableAlert``, the evaluator's notifications)."""

    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def starts_at(self) -> datetime | None: ...
    @property
    def ends_at(self) -> datetime | None: ...
    @property
    def generator_url(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PostableAlert:
    """One alert as ``POST /api/v2/alerts`` takes it; ``ends_at`` in the past resolves it."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    generator_url: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as Alertmanager holds it (``GET /api/v2/alerts``)."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime
    generator_url: str
    state: Literal["active", "suppressed", "unprocessed"]
    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()
    receivers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher of a silence or a filter: ``name = value`` (or ``!=``, ``=~``, ``!~``)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def operator(self) -> str:
        """The matcher's operator in Alertmanager's filter syntax."""
        if self.is_regex:
            return "=~" if self.is_equal else "!~"
        return "=" if self.is_equal else "!="

    def filter_text(self) -> str:
        """The matcher as a ``filter`` query value: ``name="value"`` (value JSON-quoted)."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.operator}"{escaped}"'

    def document(self) -> dict[str, Any]:
        """The matcher as the v2 API's JSON object."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence (``GET /api/v2/silences``): who muted what, from when until when, and why."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime
    created_by: str
    comment: str
    state: Literal["active", "pending", "expired"]


@dataclass(frozen=True, slots=True)
class AlertmanagerStatus:
    """What ``GET /api/v2/status`` says: version, uptime and cluster state."""

    version: str
    uptime: datetime
    cluster_status: str
    peers: tuple[str, ...] = field(default=())


def matchers_of(filters: Mapping[str, str] | Iterable[Matcher]) -> tuple[Matcher, ...]:
    """Equality matchers from a label mapping, or the given matchers as they are."""
    if isinstance(filters, Mapping):
        return tuple(Matcher(name, value) for name, value in filters.items())
    return tuple(filters)


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r}: Alertmanager times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    """RFC 3339 from Go (``Z``, up to nanoseconds) as an aware datetime (microseconds)."""
    trimmed = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    return datetime.fromisoformat(trimmed.replace("Z", "+00:00"))


def _alert_document(alert: AlertLike) -> dict[str, Any]:
    document: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
    }
    if alert.starts_at is not None:
        document["startsAt"] = _timestamp(alert.starts_at)
    if alert.ends_at is not None:
        document["endsAt"] = _timestamp(alert.ends_at)
    if alert.generator_url:
        document["generatorURL"] = alert.generator_url
    return document


def _alert(document: Mapping[str, Any]) -> Alert:
    status = document.get("status") or {}
    return Alert(
        fingerprint=str(document["fingerprint"]),
        labels=MappingProxyType(dict(document.get("labels") or {})),
        annotations=MappingProxyType(dict(document.get("annotations") or {})),
        starts_at=_parse_time(document["startsAt"]),
        ends_at=_parse_time(document["endsAt"]),
        updated_at=_parse_time(document["updatedAt"]),
        generator_url=str(document.get("generatorURL") or ""),
        state=status.get("state", "unprocessed"),
        silenced_by=tuple(status.get("silencedBy") or ()),
        inhibited_by=tuple(status.get("inhibitedBy") or ()),
        receivers=tuple(r["name"] for r in document.get("receivers") or ()),
    )


def _silence(document: Mapping[str, Any]) -> Silence:
    return Silence(
        id=str(document["id"]),
        matchers=tuple(
            Matcher(
                name=m["name"],
                value=m["value"],
                is_regex=bool(m.get("isRegex", False)),
                is_equal=bool(m.get("isEqual", True)),
            )
            for m in document.get("matchers") or ()
        ),
        starts_at=_parse_time(document["startsAt"]),
        ends_at=_parse_time(document["endsAt"]),
        updated_at=_parse_time(document["updatedAt"]),
        created_by=str(document.get("createdBy", "")),
        comment=str(document.get("comment", "")),
        state=(document.get("status") or {}).get("state", "active"),
    )


class Alertmanager:
    """One Alertmanager, by its base URL (``IOC_ALERTMANAGER_URL``); usable as a context manager."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # --- requests ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: object = None,
    ) -> requests.Response:
        url = f"{self.url}{path}"
        try:
            answer = self._session.request(
                method, url, params=list(params), json=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise AlertmanagerError(
                f"Alertmanager {method} {url}: unreachable: {exc}",
                url=url,
                status=None,
                body=str(exc),
            ) from exc
        if answer.status_code >= 400:
            text = answer.text.strip()[:_BODY_EXCERPT]
            raise AlertmanagerError(
                f"Alertmanager {method} {url}: {answer.status_code} {answer.reason}: {text}",
                url=url,
                status=answer.status_code,
                body=text,
            )
        return answer

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self._request(method, path, **kwargs)
        try:
            return answer.json()
        except ValueError as exc:
            raise AlertmanagerError(
                f"Alertmanager {method} {answer.url}: {answer.status_code} but not JSON: "
                f"{answer.text[:_BODY_EXCERPT]!r}",
                url=answer.url,
                status=answer.status_code,
                body=answer.text[:_BODY_EXCERPT],
            ) from exc

    # --- health ------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when ``GET /-/ready`` answers 200 (configuration loaded, cluster settled)."""
        try:
            self._request("GET", "/-/ready")
        except AlertmanagerError:
            return False
        return True

    def status(self) -> AlertmanagerStatus:
        """Version, uptime and cluster state (``GET /api/v2/status``)."""
        document = self._json("GET", "/api/v2/status")
        cluster = document.get("cluster") or {}
        return AlertmanagerStatus(
            version=str((document.get("versionInfo") or {}).get("version", "")),
            uptime=_parse_time(document["uptime"]),
            cluster_status=str(cluster.get("status", "")),
            peers=tuple(str(p.get("address", "")) for p in cluster.get("peers") or ()),
        )

    # --- alerts ------------------------------------------------------------------------------

    def post_alerts(self, alerts: Sequence[AlertLike]) -> None:
        """Post alerts; identical label sets are one alert in Alertmanager (deduplicated)."""
        if not alerts:
            return
        self._request("POST", "/api/v2/alerts", body=[_alert_document(a) for a in alerts])
        log.debug("posted %d alerts to %s", len(alerts), self.url)

    def post_notifications(self, notifications: Sequence[AlertLike]) -> None:
        """The evaluator's sink (``alerts.evaluate.AlertSink``): post every notification."""
        self.post_alerts(notifications)

    def alerts(
        self,
        filters: Mapping[str, str] | Iterable[Matcher] = (),
        *,
        active: bool = True,
        silenced: bool = True,
        inhibited: bool = True,
        unprocessed: bool = True,
        receiver: str | None = None,
    ) -> tuple[Alert, ...]:
        """The alerts Alertmanager holds that match every filter, in the chosen states."""
        params = [("filter", m.filter_text()) for m in matchers_of(filters)]
        params += [
            ("active", str(active).lower()),
            ("silenced", str(silenced).lower()),
            ("inhibited", str(inhibited).lower()),
            ("unprocessed", str(unprocessed).lower()),
        ]
        if receiver is not None:
            params.append(("receiver", receiver))
        return tuple(_alert(d) for d in self._json("GET", "/api/v2/alerts", params=params))

    # --- silences ----------------------------------------------------------------------------

    def create_silence(
        self,
        matchers: Mapping[str, str] | Iterable[Matcher],
        *,
        ends_at: datetime | None = None,
        duration: timedelta | None = None,
        starts_at: datetime | None = None,
        created_by: str,
        comment: str,
    ) -> str:
        """Silence the alerts matching every matcher; return the new silence's id.

        Give ``ends_at`` or ``duration`` (from ``starts_at``, default now).
        """
        chosen = matchers_of(matchers)
        if not chosen:
            raise ValueError("a silence needs at least one matcher")
        start = starts_at or datetime.now(UTC)
        if (ends_at is None) == (duration is None):
            raise ValueError("give exactly one of ends_at and duration")
        end = ends_at if ends_at is not None else start + (duration or timedelta())
        document = self._json(
            "POST",
            "/api/v2/silences",
            body={
                "matchers": [m.document() for m in chosen],
                "startsAt": _timestamp(start),
                "endsAt": _timestamp(end),
                "createdBy": created_by,
                "comment": comment,
            },
        )
        return str(document["silenceID"])

    def silences(self, filters: Mapping[str, str] | Iterable[Matcher] = ()) -> tuple[Silence, ...]:
        """Every silence (active, pending and expired) whose matchers match the filters."""
        params = [("filter", m.filter_text()) for m in matchers_of(filters)]
        return tuple(_silence(d) for d in self._json("GET", "/api/v2/silences", params=params))

    def silence(self, silence_id: str) -> Silence:
        """One silence by id."""
        return _silence(self._json("GET", f"/api/v2/silence/{silence_id}"))

    def expire_silence(self, silence_id: str) -> None:
        """End a silence now (it stays listed as expired)."""
        self._request("DELETE", f"/api/v2/silence/{silence_id}")


AlertmanagerSink = Alertmanager
"""What ``ioc alerts`` builds to deliver its notifications (the same client)."""
