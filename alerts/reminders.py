"""Reminder digests to the units that are late: overdue and soon-due tasks, feeds not updated.

Provinces send "reminder forms" to units whose tasks run late or whose data is not updated. Here
the form is one e-mail per *responsible unit*, once a day at ``IOC_REMINDERS_AT`` (the scheduler
in ``alerts/command.py`` calls :func:`build_digests` then :func:`send_digests`):

* The responsible unit of a registered source is its commune or ward when the registry gives
  one (named from :mod:`ioc.places`), else its department (province-level feeds), else the
  province itself. Unit ids: the 5-digit ward code; ``<province>-<department folded>`` such as
  ``01-so-khoa-hoc-va-cong-nghe``; the 2-digit province code.
* A unit's **task registers** (sources of kind ``tasks``) with overdue tasks, or with tasks due
  within ``IOC_REMINDERS_SOON``: each register's last counts (``tasks_overdue``,
  ``tasks_total``, ``tasks_completed``, ``tasks_due_soon``; per-task due dates are not sent, the
  register counts its own soon-due tasks).
* A unit's **feeds** that are ``stale`` or ``never_reported`` according to the engine's newest
  ``feed_live_share`` value per source (the same state the walls and the feeds API show).
* A unit with nothing late (no overdue task, no stale or never-connected feed) gets no digest;
  soon-due tasks are listed in a digest but do not cause one on their own.

Everything is read through :mod:`ioc.store.influxql`. Sending never raises into a loop: units
without a contact address and SMTP failures are counted in the :class:`SendReport` and logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from alerts.evaluate import STALE_PERIODS, VIETNAM
from alerts.rules import LIVENESS_GRACE
from ioc.catalog import Catalog, Source, parse_period
from ioc.engine.formulas import LIVENESS
from ioc.places import Places, fold, get_places
from ioc.settings import Settings, is_loopback
from ioc.store import Store, time_ns
from ioc.store.influxql import last_received, latest_detail_values, latest_readings

log = logging.getLogger(__name__)

__all__ = [
    "Digest",
    "FeedLine",
    "RegisterLine",
    "SendReport",
    "Unit",
    "build_digests",
    "render",
    "send_digests",
    "subject",
    "unit_of",
    "units",
]

TASK_KIND = "tasks"
TASK_FIELDS = ("tasks_total", "tasks_completed", "tasks_overdue", "tasks_due_soon")
LOOKBACK = timedelta(days=30)
"""How far back a register's last counts, or a silent feed's last record, are looked for."""
LATE_STATES = ("stale", "never_reported")
SMTP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit responsible for sources: a commune or ward, a department, or the province."""

    id: str
    name: str
    level: str  # "ward", "department" or "province"
    province: str
    province_name: str
    ward: str | None = None


@dataclass(frozen=True, slots=True)
class RegisterLine:
    """A task register's last counts, as its source reported them."""

    source: str
    name: str
    total: int
    completed: int
    overdue: int
    due_soon: int
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class FeedLine:
    """A feed that is not live: ``stale`` since ``since`` or ``never_reported``."""

    source: str
    name: str
    kind: str
    state: str
    last_record: datetime | None
    age_s: float | None
    since: datetime | None


@dataclass(frozen=True, slots=True)
class Digest:
    """What one unit is reminded of at ``at``: its late and soon-due registers, its silent feeds."""

    unit: str
    unit_name: str
    unit_level: str
    province: str
    province_name: str
    ward: str | None
    at: datetime
    soon_window: str
    registers: tuple[RegisterLine, ...]
    feeds: tuple[FeedLine, ...]
    contacts: tuple[str, ...]
    sender: str  # From of render(); send_digests uses its own IOC_SMTP_FROM
    wall_url: str

    @property
    def late_registers(self) -> tuple[RegisterLine, ...]:
        """Registers with overdue tasks."""
        return tuple(r for r in self.registers if r.overdue > 0)

    @property
    def soon_registers(self) -> tuple[RegisterLine, ...]:
        """Registers with tasks due within the reminder window."""
        return tuple(r for r in self.registers if r.due_soon > 0)

    @property
    def overdue_tasks(self) -> int:
        """Overdue tasks over all the unit's registers."""
        return sum(r.overdue for r in self.registers)

    @property
    def due_soon_tasks(self) -> int:
        """Tasks due soon over all the unit's registers."""
        return sum(r.due_soon for r in self.registers)


@dataclass(frozen=True, slots=True)
class SendReport:
    """What :func:`send_digests` did: unit ids sent, without an address, failed with why."""

    sent: tuple[str, ...] = ()
    no_contact: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = field(default=())

    def __str__(self) -> str:
        """One line for logs and the command line."""
        text = f"{len(self.sent)} sent, {len(self.no_contact)} without address"
        if self.failed:
            text += f", {len(self.failed)} failed ({self.failed[0][1]})"
        return text


# --- units -------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return fold(text).replace(" ", "-")


def unit_of(source: Source, places: Places) -> Unit:
    """The unit responsible for ``source``: its ward, else its department, else its province."""
    try:
        province_name = places.province(source.province).name
    except KeyError:
        province_name = source.province
    if source.ward is not None:
        try:
            ward_name = places.ward(source.ward).name
        except KeyError:
            ward_name = source.ward
        return Unit(
            source.ward, ward_name, "ward", source.province, province_name, ward=source.ward
        )
    if source.department:
        return Unit(
            f"{source.province}-{_slug(source.department)}",
            source.department,
            "department",
            source.province,
            province_name,
        )
    return Unit(source.province, province_name, "province", source.province, province_name)


def units(catalog: Catalog, places: Places | None = None) -> dict[str, Unit]:
    """Every responsible unit of the registry, by id."""
    places = places or get_places()
    found: dict[str, Unit] = {}
    for source in catalog.registry.sources:
        unit = unit_of(source, places)
        found.setdefault(unit.id, unit)
    return found


# --- reading -----------------------------------------------------------------------------------


def _at(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=VIETNAM)


def _registers(
    settings: Settings, catalog: Catalog, store: Store, now: datetime
) -> dict[str, RegisterLine]:
    """Each registered task register's last counts in the window before ``now``."""
    if TASK_KIND not in catalog.kinds:
        return {}
    text = latest_readings(
        settings.influx_db,
        catalog.kind(TASK_KIND).measurement,
        fields=TASK_FIELDS,
        filters=(),
        group_by=("source",),
    )
    params = {"start": time_ns(now - LOOKBACK), "end": time_ns(now)}
    found = {}
    for series in store.query(text, params):
        source = catalog.registry.get(series.tags.get("source", ""))
        if source is None or source.kind != TASK_KIND:
            continue
        for row in series.rows():
            counts = {name: int(row.get(name) or 0) for name in TASK_FIELDS}
            found[source.id] = RegisterLine(
                source.id,
                source.name,
                total=counts["tasks_total"],
                completed=counts["tasks_completed"],
                overdue=counts["tasks_overdue"],
                due_soon=counts["tasks_due_soon"],
                reported_at=_at(int(row["time"])),
            )
    return found


def _silent_feeds(
    settings: Settings, catalog: Catalog, store: Store, now: datetime
) -> dict[str, FeedLine]:
    """Sources whose newest live-ness value (computed by the engine) is stale or never reported."""
    liveness = next((i for i in catalog.indicators.values() if i.formula == LIVENESS), None)
    if liveness is None:
        return {}
    text = latest_detail_values(
        settings.influx_db,
        fields=("state", "age_s"),
        filters=("indicator", "level"),
        group_by=("source",),
    )
    window = timedelta(seconds=STALE_PERIODS * parse_period(liveness.period))
    params: dict[str, str | int] = {
        "indicator": liveness.key,
        "level": "source",
        "start": time_ns(now - window),
        "end": time_ns(now),
    }
    found = {}
    for series in store.query(text, params):
        source = catalog.registry.get(series.tags.get("source", ""))
        if source is None:
            continue
        for row in series.rows():
            if row.get("state") not in LATE_STATES:
                continue
            last = None
            if row.get("age_s") is not None:  # age at the end of the engine's period
                last = _at(int(row["time"])) - timedelta(seconds=float(row["age_s"]))
            found[source.id] = _feed_line(source, str(row["state"]), last, now)
    # The engine looks back only a few intervals: a feed silent for longer is "never_reported"
    # there. Its last record (if any in the lookback) makes it stale, with its true age.
    never = [catalog.registry.source(s) for s, f in found.items() if f.state == "never_reported"]
    for last_id, last in _last_records(settings, catalog, store, never, now).items():
        found[last_id] = _feed_line(catalog.registry.source(last_id), "stale", last, now)
    return found


def _feed_line(source: Source, state: str, last: datetime | None, now: datetime) -> FeedLine:
    if last is not None:
        since = last + timedelta(seconds=source.expected_interval_s * LIVENESS_GRACE)
        return FeedLine(
            source.id, source.name, source.kind, state, last, (now - last).total_seconds(), since
        )
    registered = None
    if source.registered:
        registered = datetime.fromisoformat(source.registered).replace(tzinfo=VIETNAM)
    return FeedLine(source.id, source.name, source.kind, state, None, None, registered)


def _last_records(
    settings: Settings, catalog: Catalog, store: Store, sources: Sequence[Source], now: datetime
) -> dict[str, datetime]:
    """The time of each source's last record in the lookback, for those that have one."""
    wanted = {source.id for source in sources}
    params = {"start": time_ns(now - LOOKBACK), "end": time_ns(now)}
    found = {}
    for kind in sorted({source.kind for source in sources}):
        text = last_received(settings.influx_db, catalog.kind(kind).measurement)
        for series in store.query(text, params):
            source_id = series.tags.get("source", "")
            if source_id in wanted and series.values:
                found[source_id] = _at(int(series.values[0][0]))
    return found


def build_digests(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    now: datetime,
    *,
    provinces: Collection[str] | None = None,
) -> list[Digest]:
    """One digest per unit with overdue tasks or a feed not updated, at ``now`` (aware).

    ``provinces`` limits the units to those provinces (None: all). Raises StoreError when
    InfluxDB cannot answer (the scheduler logs it and tries again; the API answers 503).
    """
    places = get_places()
    registers = _registers(settings, catalog, store, now)
    feeds = _silent_feeds(settings, catalog, store, now)
    by_unit: dict[str, list[Source]] = defaultdict(list)
    found_units: dict[str, Unit] = {}
    for source in catalog.registry.sources:
        if provinces is not None and source.province not in provinces:
            continue
        unit = unit_of(source, places)
        found_units.setdefault(unit.id, unit)
        by_unit[unit.id].append(source)
    digests = []
    for unit_id, sources in by_unit.items():
        unit = found_units[unit_id]
        listed = tuple(
            registers[s.id]
            for s in sources
            if s.id in registers and (registers[s.id].overdue > 0 or registers[s.id].due_soon > 0)
        )
        silent = tuple(feeds[s.id] for s in sources if s.id in feeds)
        if not silent and not any(r.overdue > 0 for r in listed):
            continue
        contacts = tuple(dict.fromkeys(a for s in sources for a in s.contact))
        digests.append(
            Digest(
                unit=unit.id,
                unit_name=unit.name,
                unit_level=unit.level,
                province=unit.province,
                province_name=unit.province_name,
                ward=unit.ward,
                at=now.astimezone(VIETNAM),
                soon_window=settings.reminders_soon,
                registers=listed,
                feeds=silent,
                contacts=contacts,
                sender=settings.smtp_from,
                wall_url=(
                    f"{settings.wall_base_url}/d/ioc-province-wall?var-province={unit.province}"
                ),
            )
        )
    digests.sort(key=lambda d: (d.province, d.unit_level != "department", d.unit))
    return digests


# --- rendering ---------------------------------------------------------------------------------

_SPAN_VI = (("ngày", 86400), ("giờ", 3600), ("phút", 60))
_SPAN_EN = (("d", 86400), ("h", 3600), ("min", 60))


def _span(seconds: float, words: Sequence[tuple[str, int]]) -> str:
    """``2 ngày 3 giờ`` / ``2 d 3 h``: the two largest parts, at least minutes."""
    left = max(0, int(seconds))
    parts: list[str] = []
    for word, size in words:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count} {word}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0 ")) or f"0 {words[-1][0]}"


def _window(text: str) -> tuple[str, str]:
    seconds = parse_period(text)
    return _span(seconds, _SPAN_VI), _span(
        seconds, (("days", 86400), ("hours", 3600), ("minutes", 60))
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def _when_en(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M")


def subject(digest: Digest) -> str:
    """``[IOC] Nhắc việc / Reminder: <unit> — 12 nhiệm vụ quá hạn, 1 nguồn dữ liệu ...``."""
    parts = []
    if digest.overdue_tasks:
        parts.append(f"{digest.overdue_tasks} nhiệm vụ quá hạn")
    if digest.feeds:
        parts.append(f"{len(digest.feeds)} nguồn dữ liệu không cập nhật")
    return f"[IOC] Nhắc việc / Reminder: {digest.unit_name} — {', '.join(parts)}"


def _feed_vi(feed: FeedLine) -> str:
    if feed.state == "never_reported":
        since = f" (đăng ký từ {feed.since:%d/%m/%Y})" if feed.since else ""
        return f"- {feed.name}: chưa từng kết nối{since}"
    text = f"- {feed.name}: không cập nhật"
    if feed.since is not None:
        text += f" từ {_when(feed.since)}"
    if feed.age_s is not None:
        text += f" (bản ghi cuối cách đây {_span(feed.age_s, _SPAN_VI)})"
    return text


def _feed_en(feed: FeedLine) -> str:
    if feed.state == "never_reported":
        since = f" (registered {feed.since:%Y-%m-%d})" if feed.since else ""
        return f"- {feed.name}: never reported{since}"
    text = f"- {feed.name}: stale"
    if feed.since is not None:
        text += f" since {_when_en(feed.since)}"
    if feed.age_s is not None:
        text += f" (last record {_span(feed.age_s, _SPAN_EN)} ago)"
    return text


def _body(digest: Digest) -> str:
    window_vi, window_en = _window(digest.soon_window)
    place = digest.unit_name
    if digest.unit_level != "province":
        place += f" ({digest.province_name})"
    vi = [
        f"Kính gửi: {place}",
        "",
        f"Trung tâm Điều hành thông minh (IOC) nhắc việc lúc {_when(digest.at)} (giờ Việt Nam).",
    ]
    en = [
        f"Dear {place},",
        "",
        f"Reminder from the Intelligent Operations Centre (IOC), {_when_en(digest.at)} "
        "(Vietnam time).",
    ]
    if digest.late_registers:
        vi += ["", f"Nhiệm vụ quá hạn ({digest.overdue_tasks}):"]
        en += ["", f"Overdue tasks ({digest.overdue_tasks}):"]
        for r in digest.late_registers:
            vi.append(
                f"- {r.name}: {r.overdue} quá hạn / {r.total} nhiệm vụ, {r.completed} hoàn thành, "
                f"{r.due_soon} sắp đến hạn"
            )
            en.append(
                f"- {r.name}: {r.overdue} overdue of {r.total} tasks, {r.completed} completed, "
                f"{r.due_soon} due soon"
            )
    if digest.soon_registers:
        vi += ["", f"Nhiệm vụ sắp đến hạn trong {window_vi} tới ({digest.due_soon_tasks}):"]
        en += ["", f"Tasks due within {window_en} ({digest.due_soon_tasks}):"]
        for r in digest.soon_registers:
            vi.append(f"- {r.name}: {r.due_soon} nhiệm vụ")
            en.append(f"- {r.name}: {r.due_soon} tasks")
    if digest.feeds:
        vi += ["", f"Nguồn dữ liệu không cập nhật ({len(digest.feeds)}):"]
        en += ["", f"Feeds not updated ({len(digest.feeds)}):"]
        vi += [_feed_vi(feed) for feed in digest.feeds]
        en += [_feed_en(feed) for feed in digest.feeds]
    vi += ["", f"Bảng điều hành của tỉnh: {digest.wall_url}"]
    en += ["", f"Province wall: {digest.wall_url}"]
    return "\n".join([*vi, "", "-" * 72, "", *en, ""])


def render(digest: Digest) -> EmailMessage:
    """The digest as an e-mail: Vietnamese first, English after, plain UTF-8 text."""
    message = EmailMessage()
    message["Subject"] = subject(digest)
    message["From"] = digest.sender
    if digest.contacts:
        message["To"] = ", ".join(digest.contacts)
    message["Date"] = format_datetime(digest.at)
    message["Message-ID"] = make_msgid(domain=digest.sender.rpartition("@")[2] or "localhost")
    message["X-IOC-Unit"] = digest.unit
    message.set_content(_body(digest), charset="utf-8", cte="quoted-printable")
    return message


# --- sending -----------------------------------------------------------------------------------


def _connect(settings: Settings) -> smtplib.SMTP:
    host = settings.smtp_host or ""
    client = smtplib.SMTP(host, settings.smtp_port, timeout=SMTP_TIMEOUT_S)
    try:
        client.ehlo()
        if client.has_extn("starttls") and not is_loopback(host):
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
    except BaseException:
        client.close()
        raise
    return client


def send_digests(settings: Settings, digests: Sequence[Digest]) -> SendReport:
    """E-mail each digest to its unit's contact addresses over one SMTP session; never raises.

    A unit without an address is counted and logged; an SMTP failure fails that digest (or, when
    the server cannot be reached, every digest still to send) with the reason in the report.
    """
    no_contact = tuple(d.unit for d in digests if not d.contacts)
    for digest in digests:
        if not digest.contacts:
            log.warning("reminder for %s (%s): no contact address", digest.unit_name, digest.unit)
    to_send = [d for d in digests if d.contacts]
    if to_send and not settings.smtp_host:
        log.warning("%d reminder digests not sent: IOC_SMTP_HOST is not set", len(to_send))
        return SendReport(
            (), no_contact, tuple((d.unit, "IOC_SMTP_HOST is not set") for d in to_send)
        )
    sent, failed = _deliver(settings, to_send)
    return SendReport(tuple(sent), no_contact, tuple(failed))


def _deliver(
    settings: Settings, digests: Sequence[Digest]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Send over one session, reconnecting after a dropped connection; (sent, failed)."""
    sent: list[str] = []
    failed: list[tuple[str, str]] = []
    client: smtplib.SMTP | None = None
    try:
        for index, digest in enumerate(digests):
            if client is None:
                try:
                    client = _connect(settings)
                except (smtplib.SMTPException, OSError) as error:
                    reason = f"SMTP {settings.smtp_host}:{settings.smtp_port}: {_why(error)}"
                    failed.extend((d.unit, reason) for d in digests[index:])
                    log.warning("%d reminder digests not sent: %s", len(digests) - index, reason)
                    break
            try:
                client.send_message(render(replace(digest, sender=settings.smtp_from)))
            except (smtplib.SMTPException, OSError) as error:
                failed.append((digest.unit, _why(error)))
                log.warning("reminder for %s not sent: %s", digest.unit, _why(error))
                if isinstance(error, smtplib.SMTPServerDisconnected | OSError):
                    client.close()
                    client = None  # reconnect for the next digest
            else:
                sent.append(digest.unit)
                log.info("reminder for %s sent to %s", digest.unit, ", ".join(digest.contacts))
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    return sent, failed


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
