"""Reminder digests end to end: raw readings, the real engine and InfluxDB, a real SMTP server.

Two departments of the same name in two provinces: Hà Nội's has overdue tasks and a data feed
silent for three hours, Nghệ An's has tasks due soon but none overdue and its feed is live. A ward
air station in Hà Nội is stale and its ward has no contact address. Only Hà Nội's department may
receive an e-mail, with the right lines; the ward is counted as without address.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.evaluate import VIETNAM
from alerts.reminders import Digest, build_digests, render, send_digests
from ioc.catalog import INDICATORS_FILE, Catalog, load_catalog
from ioc.engine import Engine
from ioc.settings import Settings
from ioc.stack import free_ports
from ioc.store import Point, Store, time_ns
from tests.alerts.receivers import SmtpReceiver

pytestmark = pytest.mark.services

HANOI = "01-so-khoa-hoc-va-cong-nghe"
NGHE_AN = "40-so-khoa-hoc-va-cong-nghe"
HANOI_ADDRESS = "skhcn@hanoi.example.vn"
NGHE_AN_ADDRESS = "skhcn@nghean.example.vn"

REGISTRY = f"""
[[source]]
id = "01-tasks"
kind = "tasks"
province = "01"
name = "Theo dõi nhiệm vụ Nghị quyết 57 Hà Nội"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"
contact = ["{HANOI_ADDRESS}"]

[[source]]
id = "01-data-platform"
kind = "data"
province = "01"
name = "Nền tảng chia sẻ dữ liệu Hà Nội"
department = "Sở Khoa học và Công nghệ"
expected_interval = "15m"

[[source]]
id = "01-air-hoan-kiem"
kind = "air"
province = "01"
ward = "00070"
name = "Trạm quan trắc không khí Hoàn Kiếm"
expected_interval = "5m"

[[source]]
id = "40-tasks"
kind = "tasks"
province = "40"
name = "Theo dõi nhiệm vụ Nghị quyết 57 Nghệ An"
department = "Sở Khoa học và Công nghệ"
expected_interval = "1h"
contact = ["{NGHE_AN_ADDRESS}"]

[[source]]
id = "40-data-platform"
kind = "data"
province = "40"
name = "Nền tảng chia sẻ dữ liệu Nghệ An"
department = "Sở Khoa học và Công nghệ"
expected_interval = "15m"
contact = ["{NGHE_AN_ADDRESS}"]
"""

QUARTER_S = 900
END = datetime.fromtimestamp(time.time() // QUARTER_S * QUARTER_S, tz=UTC)
"""The end of the engine's last 15-minute period; the digests are built a minute later."""
NOW = END + timedelta(minutes=1)
SILENT_SINCE = END - timedelta(hours=3)
"""The Hà Nội data feed's last record: far beyond the engine's horizon (it says never_reported)."""


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    registry = tmp_path / "sources.toml"
    registry.write_text(REGISTRY, encoding="utf-8")
    return load_catalog(INDICATORS_FILE, registry)


@pytest.fixture
def settings(own_database: Settings, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        own_database, var_dir=tmp_path / "var", wall_url="https://wall.example"
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store(settings) as s:
        yield s


def raw(store: Store, kind: str, source: str, province: str, at: datetime, **fields: float) -> None:
    point = Point(
        kind,
        {**fields, "received_ms": int(at.timestamp() * 1000)},
        time_ns(at),
        {"source": source, "province": province},
    )
    store.write([point])


def tasks(overdue: int, due_soon: int) -> dict[str, float]:
    return {
        "tasks_total": 120.0,
        "tasks_completed": 72.0,
        "tasks_on_schedule": 48.0 - overdue,
        "tasks_overdue": float(overdue),
        "tasks_due_soon": float(due_soon),
    }


@pytest.fixture
def digests(settings: Settings, catalog: Catalog, store: Store) -> list[Digest]:
    """The readings of both provinces, the engine's cycle at NOW, then the digests at NOW."""
    # Hà Nội: the register's newest report counts 18 overdue (an hour earlier it was 17).
    raw(store, "tasks", "01-tasks", "01", END - timedelta(minutes=70), **tasks(17, 4))
    raw(store, "tasks", "01-tasks", "01", END - timedelta(minutes=10), **tasks(18, 5))
    raw(store, "data", "01-data-platform", "01", SILENT_SINCE, data_transactions=40.0)
    raw(store, "air", "01-air-hoan-kiem", "01", END - timedelta(minutes=15), pm25=35.0)
    # Nghệ An: nothing overdue, six due soon, its feed reported five minutes ago.
    raw(store, "tasks", "40-tasks", "40", END - timedelta(minutes=10), **tasks(0, 6))
    raw(store, "data", "40-data-platform", "40", END - timedelta(minutes=5), data_transactions=9.0)
    Engine(settings, catalog, store).run_cycle(time_ns(NOW))
    return build_digests(settings, catalog, store, NOW)


def test_only_late_units_get_a_digest(digests: list[Digest]) -> None:
    assert [d.unit for d in digests] == [HANOI, "00070"]  # not Nghệ An: nothing late there
    hanoi = digests[0]
    assert (hanoi.unit_name, hanoi.contacts) == ("Sở Khoa học và Công nghệ", (HANOI_ADDRESS,))
    (register,) = hanoi.registers
    assert (register.overdue, register.total, register.completed, register.due_soon) == (
        18,
        120,
        72,
        5,
    )
    (feed,) = hanoi.feeds
    # the engine calls a feed silent beyond its horizon never_reported; it did report, 3 h ago
    assert (feed.source, feed.state, feed.last_record) == (
        "01-data-platform",
        "stale",
        SILENT_SINCE,
    )
    assert feed.since == SILENT_SINCE + timedelta(minutes=30)  # interval 15 min × grace 2
    ward = digests[1]
    assert (ward.unit_name, ward.unit_level, ward.contacts) == ("Phường Hoàn Kiếm", "ward", ())
    (station,) = ward.feeds
    assert (station.source, station.state) == ("01-air-hoan-kiem", "stale")
    assert station.age_s == 16 * 60


def test_the_digest_reaches_the_smtp_server_with_the_right_lines(
    settings: Settings, digests: list[Digest], smtp: SmtpReceiver
) -> None:
    sending = dataclasses.replace(
        settings, smtp_host=smtp.host, smtp_port=smtp.port, smtp_from="ioc@hanoi.example.vn"
    )
    report = send_digests(sending, digests)
    assert (report.sent, report.no_contact, report.failed) == ((HANOI,), ("00070",), ())
    (mail,) = smtp.messages  # accepted before send_digests returned; nothing for Nghệ An
    assert mail.rcpt_tos == (HANOI_ADDRESS,)
    assert mail.mail_from == "ioc@hanoi.example.vn"
    assert mail.subject == (
        "[IOC] Nhắc việc / Reminder: Sở Khoa học và Công nghệ — 18 nhiệm vụ quá hạn, "
        "1 nguồn dữ liệu không cập nhật"
    )
    since = (SILENT_SINCE + timedelta(minutes=30)).astimezone(VIETNAM)
    lines = mail.plain.splitlines()
    for line in (
        "Kính gửi: Sở Khoa học và Công nghệ (Thành phố Hà Nội)",
        "Nhiệm vụ quá hạn (18):",
        "- Theo dõi nhiệm vụ Nghị quyết 57 Hà Nội: 18 quá hạn / 120 nhiệm vụ, 72 hoàn thành, "
        "5 sắp đến hạn",
        "Nhiệm vụ sắp đến hạn trong 7 ngày tới (5):",
        "Nguồn dữ liệu không cập nhật (1):",
        f"- Nền tảng chia sẻ dữ liệu Hà Nội: không cập nhật từ {since:%H:%M %d/%m/%Y} "
        "(bản ghi cuối cách đây 3 giờ 1 phút)",
        "Overdue tasks (18):",
        "- Theo dõi nhiệm vụ Nghị quyết 57 Hà Nội: 18 overdue of 120 tasks, 72 completed, "
        "5 due soon",
        f"- Nền tảng chia sẻ dữ liệu Hà Nội: stale since {since:%Y-%m-%d %H:%M} "
        "(last record 3 h 1 min ago)",
        "Province wall: https://wall.example/d/ioc-province-wall?var-province=01",
    ):
        assert line in lines, (line, lines)
    assert "Hoàn Kiếm" not in mail.plain  # the ward's station is not the department's business


def test_an_unreachable_server_is_reported_not_raised(
    settings: Settings, digests: list[Digest]
) -> None:
    (port,) = free_ports(1)  # nothing listens there
    report = send_digests(
        dataclasses.replace(settings, smtp_host="127.0.0.1", smtp_port=port), digests
    )
    assert report.sent == ()
    assert report.no_contact == ("00070",)
    ((unit, reason),) = report.failed
    assert unit == HANOI
    assert f"127.0.0.1:{port}" in reason and "ConnectionRefusedError" in reason


def test_without_an_smtp_host_nothing_is_sent_and_it_says_why(
    settings: Settings, digests: list[Digest]
) -> None:
    report = send_digests(dataclasses.replace(settings, smtp_host=None), digests)
    assert report.failed == ((HANOI, "IOC_SMTP_HOST is not set"),)
    assert "0 sent, 1 without address, 1 failed" in str(report)


def test_the_e_mail_is_vietnamese_first_then_english(digests: list[Digest]) -> None:
    message = render(digests[0])
    assert message["To"] == HANOI_ADDRESS
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    vietnamese, english = text.split("-" * 72)
    assert "Nhiệm vụ quá hạn (18):" in vietnamese and "Overdue tasks (18):" in english
    assert "https://wall.example/d/ioc-province-wall?var-province=01" in english
    assert message["Date"].datetime.utcoffset() == timedelta(hours=7)  # Vietnam time
