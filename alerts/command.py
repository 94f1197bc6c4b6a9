"""``ioc alerts run|rules|export|reminders``: the alert evaluator and what it generates.

``run`` evaluates every rule each ``IOC_ALERTS_INTERVAL`` seconds (``--once``: one cycle), posts
to Alertmanager, publishes retained states over MQTT, writes the history, writes its own figures
to ``ops.alerts`` and, once a day at ``IOC_REMINDERS_AT`` (Vietnam time), sends the reminder
digests to late units. It never crashes on a failed cycle; Ctrl-C stops it after the cycle.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ioc.settings import Settings

if TYPE_CHECKING:
    from alerts.evaluate import Cycle
    from alerts.rules import Rule
    from ioc.catalog import Catalog
    from ioc.store import Store

log = logging.getLogger(__name__)

HELP = "alert rules: evaluate (run), list (rules), Grafana export, reminder digests"


def configure(parser: argparse.ArgumentParser) -> None:
    """The subcommand's arguments."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="evaluate the rules on a schedule, notify Alertmanager")
    run.add_argument("--once", action="store_true", help="one evaluation cycle, then exit")
    actions.add_parser("rules", help="list every rule (catalog and operator file) and exit")
    export = actions.add_parser(
        "export", help="write the rules as Grafana alerting provisioning files"
    )
    export.add_argument(
        "--check", action="store_true", help="exit 1 if the committed export is stale"
    )
    reminders = actions.add_parser(
        "reminders", help="print the reminder digests of late units (--send: e-mail them)"
    )
    reminders.add_argument("--send", action="store_true", help="send them by e-mail now")
    reminders.add_argument("--unit", help="only this unit")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one action; the exit code."""
    from alerts.rules import load_rules  # noqa: PLC0415 - heavy imports only when run
    from ioc.catalog import get_catalog  # noqa: PLC0415

    catalog = get_catalog(settings.registry_file)
    rules = load_rules(catalog, settings.alerts_rules_file)
    if args.action == "rules":
        for rule in rules:
            where = f"{rule.indicator or rule.metric or 'feeds'} @ {rule.level}"
            print(
                f"{rule.key:40} {rule.severity:8} {where:30} {rule.condition}; for {rule.for_s:g} s"
            )
        print(f"{len(rules)} rules")
        return 0
    if args.action == "export":
        from alerts.grafana import check_export, write_export  # noqa: PLC0415

        if args.check:
            stale = check_export(rules, catalog, settings.influx_db)
            if stale:
                print(f"stale: {stale}; run `ioc alerts export` and commit the result")
                return 1
            print("Grafana alerting export up to date")
            return 0
        print(f"written: {write_export(rules, catalog, settings.influx_db)}")
        return 0
    if args.action == "reminders":
        return _reminders(settings, catalog, send=args.send, unit=args.unit)
    return _run(settings, catalog, rules, once=args.once)


def _reminders(settings: Settings, catalog: Catalog, *, send: bool, unit: str | None) -> int:
    from alerts.reminders import build_digests, render, send_digests  # noqa: PLC0415
    from ioc.store import Store  # noqa: PLC0415

    with Store(settings) as store:
        digests = build_digests(settings, catalog, store, datetime.now(UTC))
    if unit is not None:
        digests = [d for d in digests if unit in (d.unit, d.unit_name)]
    for digest in digests:
        message = render(digest)
        print(f"--- {message['To'] or '(no address)'}: {message['Subject']}")
        body = message.get_body(("plain",))
        print(body.get_content() if body is not None else "")
    print(f"{len(digests)} units with something late")
    if send:
        print(send_digests(settings, digests))
    return 0


def _run(settings: Settings, catalog: Catalog, rules: tuple[Rule, ...], *, once: bool) -> int:
    from alerts.alertmanager import AlertmanagerSink  # noqa: PLC0415
    from alerts.evaluate import Evaluator  # noqa: PLC0415
    from alerts.publish import MqttPublisher  # noqa: PLC0415
    from alerts.state import StateStore  # noqa: PLC0415
    from ioc.cli import _stop_on_signals  # noqa: PLC0415
    from ioc.store import Store  # noqa: PLC0415

    state = StateStore(settings.alerts_state_dir / f"{settings.alerts_id}.sqlite")
    publisher = MqttPublisher(settings)
    sink = AlertmanagerSink(settings.alertmanager_url)
    stop = threading.Event() if once else _stop_on_signals("the alert evaluator after this cycle")
    try:
        with Store(settings) as store:
            evaluator = Evaluator(
                settings, catalog, rules, store, state, sink=sink, publisher=publisher
            )
            log.info(
                "alerts %s: %d rules, every %.0f s, Alertmanager %s, %d remembered instances",
                settings.alerts_id,
                len(evaluator.rules),
                settings.alerts_interval,
                settings.alertmanager_url,
                len(evaluator.instances),
            )
            reminders = _ReminderSchedule(settings, state.path.with_suffix(".reminders"))
            while True:
                started = time.monotonic()
                try:
                    cycle = evaluator.evaluate()
                except Exception:
                    log.exception("alert cycle failed; retrying at the next interval")
                else:
                    seconds = time.monotonic() - started
                    failed = ", ".join(cycle.failed_rules)
                    log.info(
                        "alerts: %d instances, %d firing, %d changes in %.2f s%s%s",
                        cycle.instances,
                        cycle.firing,
                        len(cycle.transitions),
                        seconds,
                        "" if cycle.delivered else "; Alertmanager not reached",
                        f"; rules failed: {failed}" if failed else "",
                    )
                    write_self_metrics(store, settings, cycle, seconds)
                    if once:
                        print(
                            f"{len(evaluator.rules)} rules: {cycle.instances} active instances, "
                            f"{cycle.firing} firing, {len(cycle.transitions)} changes"
                        )
                if not once:
                    reminders.maybe_send(store, catalog)
                if once or stop.wait(
                    max(0.0, settings.alerts_interval - (time.monotonic() - started))
                ):
                    break
    finally:
        publisher.close()
        state.close()
    return 0


def write_self_metrics(store: Store, settings: Settings, cycle: Cycle, seconds: float) -> None:
    """The evaluator's own figures in ``ops.alerts`` (the operations board reads them)."""
    from ioc.errors import IocError  # noqa: PLC0415
    from ioc.store import Point  # noqa: PLC0415

    fields: dict[str, float | int | bool] = {
        "cycle_seconds": seconds,
        "instances": cycle.instances,
        "firing": cycle.firing,
        "changes": len(cycle.transitions),
        "failed_rules": len(cycle.failed_rules),
        "delivered": bool(cycle.delivered),
    }
    at = int(cycle.at.timestamp() * 1e9)
    try:
        store.write([Point("alerts", fields, at, {"source": settings.alerts_id})], rp="ops")
    except IocError as error:
        log.warning("alerts self-metrics not written: %s", error)


class _ReminderSchedule:
    """Sends the reminder digests once a day at ``IOC_REMINDERS_AT``, remembering the last day.

    After a partial failure the marker reads ``<day> partial`` and the units already sent that
    day, one a line: the retry next cycle sends only to the others, never twice to one unit.
    """

    def __init__(self, settings: Settings, marker: Path) -> None:
        self.settings = settings
        self.marker = marker
        hours, minutes = settings.reminders_at.split(":")
        self.at_minutes = int(hours) * 60 + int(minutes)

    def due(self, now: datetime) -> date | None:
        """Today's date (Vietnam) when today's digests are due and not yet sent."""
        from alerts.evaluate import VIETNAM  # noqa: PLC0415

        local = now.astimezone(VIETNAM)
        if local.hour * 60 + local.minute < self.at_minutes:
            return None
        try:
            last = self.marker.read_text().strip()
        except OSError:
            last = ""
        return None if last == local.date().isoformat() else local.date()

    def _reached(self, today: date) -> set[str]:
        """The units that got today's digest before a failure (a partial marker), else none."""
        try:
            first, *units = self.marker.read_text().splitlines()
        except (OSError, ValueError):
            return set()
        return set(units) if first == f"{today.isoformat()} partial" else set()

    def maybe_send(self, store: Store, catalog: Catalog) -> None:
        """Send today's digests if due; a failure is logged and retried next cycle."""
        today = self.due(datetime.now(UTC))
        if today is None or not self.settings.smtp_host:
            return
        from alerts.reminders import build_digests, send_digests  # noqa: PLC0415

        try:
            digests = build_digests(self.settings, catalog, store, datetime.now(UTC))
            reached = self._reached(today)
            report = send_digests(self.settings, [d for d in digests if d.unit not in reached])
        except Exception:
            log.exception("reminder digests failed; retrying next cycle")
            return
        log.info("reminders %s: %s", today, report)
        if report.failed:
            log.warning("reminders %s: %d not sent; retrying next cycle", today, len(report.failed))
            if report.sent:
                sent = sorted(reached | set(report.sent))
                self.marker.write_text("\n".join([f"{today.isoformat()} partial", *sent]))
            return
        self.marker.write_text(today.isoformat())
