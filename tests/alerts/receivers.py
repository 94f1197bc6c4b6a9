"""Real notification receivers for the tests: an HTTP webhook and an SMTP server (aiosmtpd).

Both listen on a free loopback port in a thread of the test process, record what arrives, and let
a test wait for a condition with a deadline (never a fixed sleep).
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, Generic, Self, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ioc.stack import free_ports

T = TypeVar("T")


class _Recorder(Generic[T]):
    """A thread-safe list of received things that a test can wait on."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> tuple[T, ...]:
        with self._changed:
            return tuple(self._items)

    def wait_for(
        self, predicate: Callable[[T], bool], *, count: int = 1, timeout: float = 15.0
    ) -> list[T]:
        """The first ``count`` items matching ``predicate``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [item for item in self._items if predicate(item)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(found)} of {count} expected items after {timeout}s; "
                        f"received {len(self._items)}: {self._items!r}"
                    )
                self._changed.wait(left)


# --- webhook -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotifiedAlert:
    """One alert inside a webhook notification."""

    status: str  # "firing" or "resolved"
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str
    generator_url: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class WebhookNotification:
    """One POST of Alertmanager's webhook (payload version 4)."""

    status: str  # of the group: "firing" while any alert fires
    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    common_labels: Mapping[str, str]
    alerts: tuple[NotifiedAlert, ...]
    received_at: float  # time.monotonic() when it arrived
    body: Mapping[str, Any]

    @classmethod
    def from_body(cls, body: Mapping[str, Any], received_at: float) -> WebhookNotification:
        return cls(
            status=body["status"],
            receiver=body["receiver"],
            group_key=body["groupKey"],
            group_labels=MappingProxyType(body.get("groupLabels") or {}),
            common_labels=MappingProxyType(body.get("commonLabels") or {}),
            alerts=tuple(
                NotifiedAlert(
                    status=a["status"],
                    labels=MappingProxyType(a.get("labels") or {}),
                    annotations=MappingProxyType(a.get("annotations") or {}),
                    starts_at=a["startsAt"],
                    ends_at=a["endsAt"],
                    generator_url=a.get("generatorURL", ""),
                    fingerprint=a.get("fingerprint", ""),
                )
                for a in body.get("alerts") or ()
            ),
            received_at=received_at,
            body=MappingProxyType(dict(body)),
        )

    @property
    def alertname(self) -> str:
        """The group's alertname (Alertmanager groups by alertname and province)."""
        return self.group_labels.get("alertname", "")

    def has(self, status: str, **labels: str) -> bool:
        """True if an alert of this notification has ``status`` and every given label."""
        return any(
            a.status == status and all(a.labels.get(k) == v for k, v in labels.items())
            for a in self.alerts
        )


class WebhookReceiver:
    """An HTTP server that records every POSTed Alertmanager notification and answers 200."""

    def __init__(self) -> None:
        self.received: _Recorder[WebhookNotification] = _Recorder()
        self.errors: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    notification = WebhookNotification.from_body(json.loads(raw), time.monotonic())
                except (ValueError, KeyError, TypeError) as exc:
                    receiver.errors.append(f"{exc!r}: {raw[:200]!r}")
                    self.send_response(400)
                else:
                    receiver.received.add(notification)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    @property
    def notifications(self) -> tuple[WebhookNotification, ...]:
        """Every notification received so far, oldest first."""
        return self.received.snapshot()

    def of(self, alertname: str) -> tuple[WebhookNotification, ...]:
        """The notifications of one alertname's groups, oldest first."""
        return tuple(n for n in self.notifications if n.alertname == alertname)

    def wait_for(
        self,
        predicate: Callable[[WebhookNotification], bool],
        *,
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[WebhookNotification]:
        """The first ``count`` notifications matching; AssertionError after ``timeout``."""
        return self.received.wait_for(predicate, count=count, timeout=timeout)


# --- SMTP --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the SMTP server accepted: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """Every text part (plain and HTML) of the message, decoded, joined."""
        parts = []
        for part in self.message.walk():
            if part.get_content_maintype() == "text":
                parts.append(str(part.get_content()))
        return "\n".join(parts)

    @property
    def plain(self) -> str:
        """The text/plain body ("" if none)."""
        body = self.message.get_body(("plain",))
        return str(body.get_content()) if body is not None else ""


class _RecordingHandler:
    def __init__(self, received: _Recorder[ReceivedMail]) -> None:
        self.received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.add(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(r) for r in envelope.rcpt_tos),
                message=message,
            )
        )
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on a free loopback port that records every message."""

    def __init__(self) -> None:
        self.received: _Recorder[ReceivedMail] = _Recorder()
        (self.port,) = free_ports(1)
        self.host = "127.0.0.1"
        self._controller = Controller(
            _RecordingHandler(self.received), hostname=self.host, port=self.port
        )

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def messages(self) -> tuple[ReceivedMail, ...]:
        """Every message received so far, oldest first."""
        return self.received.snapshot()

    def wait_for(
        self, predicate: Callable[[ReceivedMail], bool], *, count: int = 1, timeout: float = 15.0
    ) -> list[ReceivedMail]:
        """The first ``count`` messages matching; AssertionError after ``timeout``."""
        return self.received.wait_for(predicate, count=count, timeout=timeout)
