"""Fixtures of the alert tests: real receivers and a real Alertmanager pointed at them.

``alertmanager`` is started by the project's own stack code (``LocalStack`` with only the
``alertmanager`` service), from the same config template as ``ioc stack up``, with the receivers
set through the same settings (``IOC_ALERTS_WEBHOOK_URL``, ``IOC_ALERTS_EMAIL_TO``,
``IOC_SMTP_*``) and short timings. One per test: it starts in about 0.1 s and keeps no state
between tests.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from alerts.alertmanager import Alertmanager
from ioc.settings import Settings, load_settings
from ioc.stack import AlertTimings, LocalStack
from tests.alerts.receivers import SmtpReceiver, WebhookReceiver
from tests.conftest import stack_environment

TEST_TIMINGS = AlertTimings(group_wait="1s", group_interval="1s", repeat_interval="1h")
"""A new group is notified after 1 s, a changed one 1 s after the change; no repeats in a test."""

EMAIL_TO = "operators@ioc.example"
_METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


@dataclass(frozen=True)
class LocalAlertmanager:
    """A running Alertmanager of one test and what it notifies."""

    url: str
    settings: Settings  # its IOC_* settings: alertmanager_url, receivers, SMTP
    client: Alertmanager
    webhook: WebhookReceiver
    smtp: SmtpReceiver
    timings: AlertTimings
    log_file: Path

    def metric(self, name: str, **labels: str) -> float:
        """One counter or gauge of its ``/metrics`` (summed over series matching ``labels``)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as answer:  # noqa: S310
            text = answer.read().decode()
        total = 0.0
        wanted = {f'{k}="{v}"' for k, v in labels.items()}
        for line in text.splitlines():
            match = _METRIC.match(line)
            series = set((match["labels"] or "").split(",")) if match else set()
            if match and match["name"] == name and wanted <= series:
                total += float(match["value"])
        return total

    def wait_for_flushes(self, count: int = 2, timeout: float = 15.0) -> None:
        """Wait until the notification pipeline has decided ``count`` more times per integration.

        Each flush of a group asks the notification log whether anything must be sent (one query
        per integration): once they increased, Alertmanager has seen the current alerts and
        decided, so a notification that has not come by now is one it chose not to send.
        """
        integrations = 1 + (self.settings.alerts_email_to is not None)
        target = self.metric("alertmanager_nflog_queries_total") + count * integrations
        deadline = time.monotonic() + timeout
        while self.metric("alertmanager_nflog_queries_total") < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"Alertmanager did not flush {count} times in {timeout}s")
            time.sleep(0.05)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Alertmanager down (unreachable) for a ``with`` block, then up again on the same port.

        It keeps its data directory: the notification log and silences survive the restart (as
        in production), the alerts it held do not (senders re-post them).
        """
        stack = LocalStack(self.settings, alert_timings=self.timings)
        stack.down(services=("alertmanager",))
        try:
            yield
        finally:
            # The fixture's own stack stops this process at the end (same pid file).
            stack.up(timeout=30, die_with_parent=True, services=("alertmanager",))


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """An HTTP server recording every Alertmanager webhook notification (``.url``)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    """An SMTP server (aiosmtpd) recording every message (``.host``, ``.port``)."""
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def alertmanager(
    tmp_path: Path, webhook: WebhookReceiver, smtp: SmtpReceiver
) -> Iterator[LocalAlertmanager]:
    """A real Alertmanager that notifies ``webhook`` and, by e-mail, ``smtp``."""
    env = stack_environment(
        tmp_path / "alertmanager-var",
        IOC_ALERTS_WEBHOOK_URL=webhook.url,
        IOC_ALERTS_EMAIL_TO=EMAIL_TO,
        IOC_SMTP_HOST=smtp.host,
        IOC_SMTP_PORT=str(smtp.port),
        IOC_SMTP_FROM="ioc-alerts@ioc.example",
    )
    settings = load_settings(env)
    stack = LocalStack(settings, alert_timings=TEST_TIMINGS)
    with (
        stack.running(timeout=30, services=("alertmanager",)),
        Alertmanager(settings.alertmanager_url) as client,
    ):
        yield LocalAlertmanager(
            url=settings.alertmanager_url,
            settings=settings,
            client=client,
            webhook=webhook,
            smtp=smtp,
            timings=TEST_TIMINGS,
            log_file=stack.log_file("alertmanager"),
        )
