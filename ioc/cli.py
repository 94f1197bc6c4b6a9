"""The ``ioc`` command: one console script, one subcommand per process or task."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, ModuleType

from ioc import __version__
from ioc.catalog import get_catalog
from ioc.engine import CycleReport, Engine
from ioc.errors import IocError, SettingsError
from ioc.settings import VARIABLES, Settings, load_settings
from ioc.stack import LocalStack, ServiceStatus
from ioc.store import Store, time_ns

log = logging.getLogger("ioc")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNHEALTHY = 0, 1, 2, 3

MODULE_COMMANDS: dict[str, str] = {
    "api": "ioc.api.serve",
    "keys": "ioc.api.keys",
    "simulate": "ioc.simulate",
    "devices": "ioc.devices",
    "bootstrap": "ioc.bootstrap",
    "run": "ioc.run",
    "dashboards": "dashboards.command",
    "alerts": "alerts.command",
    "verify": "ioc.faults.command",
}
"""Subcommands that live with their concept. Each module defines ``HELP`` (one line),
``configure(parser)`` (adds its arguments) and ``run(settings, args) -> exit code``; it must be
cheap to import (heavy imports go inside ``run``)."""


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(MODULE_COMMANDS[name])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ioc", description="IOC backend: local stack, collectors, engine, API."
    )
    parser.add_argument(
        "--env-file", type=Path, help="read IOC_* settings from this file (environment wins)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("version", help="print the version")
    commands.add_parser("settings", help="print the effective settings (secrets hidden)")

    db = commands.add_parser("db", help="the configured InfluxDB")
    db_actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_actions.add_parser(
        "init", help="create the database and retention policies (InfluxDB 1.x; idempotent)"
    )

    engine = commands.add_parser("engine", help="compute the catalog's indicators")
    engine_actions = engine.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = engine_actions.add_parser(
        "run", help="a cycle every IOC_ENGINE_INTERVAL seconds until Ctrl-C (or --once)"
    )
    run.add_argument("--once", action="store_true", help="run one cycle, print it and exit")
    backfill = engine_actions.add_parser(
        "backfill", help="compute every period ending in (FROM, TO]; idempotent"
    )
    backfill.add_argument(
        "start", metavar="FROM", type=_moment, help="RFC 3339, e.g. 2025-11-01T00:00:00+07:00"
    )
    backfill.add_argument("end", metavar="TO", type=_moment, nargs="?", help="default: now")

    commands.add_parser(
        "ingest", help="the MQTT collector: store every reading durably, then acknowledge it"
    )

    probe = commands.add_parser(
        "probe", help="check the registry's shared systems (HTTP/S) and publish the results"
    )
    probe.add_argument("--once", action="store_true", help="one round, then exit")
    probe.add_argument("--interval", type=float, default=60.0, help="seconds between rounds")

    for name in MODULE_COMMANDS:
        module = _command_module(name)
        module.configure(commands.add_parser(name, help=module.HELP, description=module.HELP))

    stack = commands.add_parser("stack", help="the local Mosquitto, InfluxDB and Alertmanager")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start Mosquitto, InfluxDB and Alertmanager; wait for all")
    up.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached; Ctrl-C (or SIGTERM) stops what this command started",
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for both")
    actions.add_parser("down", help="stop the processes `stack up` started")
    status = actions.add_parser("status", help="what runs where; exit 3 unless all healthy")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +07:00)")
    return moment


def _print_status(statuses: Sequence[ServiceStatus]) -> None:
    print(f"{'SERVICE':<12} {'STATE':<10} {'PID':>7}  {'ADDRESS':<23} DETAIL")
    for s in statuses:
        pid = str(s.pid) if s.pid else "-"
        print(f"{s.name:<12} {s.state:<10} {pid:>7}  {s.address:<23} {s.detail}")
    for s in statuses:
        print(f"  {s.name}: data {s.data_dir}, log {s.log_file}")


def _status_json(statuses: Sequence[ServiceStatus]) -> str:
    return json.dumps(
        [
            {
                "name": s.name,
                "state": s.state,
                "pid": s.pid,
                "address": s.address,
                "detail": s.detail,
                "data_dir": str(s.data_dir),
                "log_file": str(s.log_file),
            }
            for s in statuses
        ],
        indent=2,
    )


def _wait_for_stop(stack: LocalStack, stop: threading.Event) -> int:
    """Block until ``stop`` is set (SIGINT/SIGTERM) or a service dies; return the exit code."""
    while not stop.wait(1.0):
        stopped = [s.name for s in stack.status() if s.state == "stopped"]
        if stopped:
            log.error("%s stopped unexpectedly; see %s", ", ".join(stopped), stack.log_dir)
            return EXIT_ERROR
    return EXIT_OK


def _stack(settings: Settings, args: argparse.Namespace) -> int:
    stack = LocalStack(settings)
    if args.action == "up":
        if not args.foreground:
            statuses = stack.up(timeout=args.timeout)
            _print_status(statuses)
            return EXIT_OK if all(s.healthy for s in statuses) else EXIT_UNHEALTHY
        # Handlers first: a Ctrl-C while the servers start must stop them too, not crash.
        stop = _stop_on_signals("the stack")
        with stack.running(timeout=args.timeout) as statuses:
            _print_status(statuses)
            print(f"MQTT broker: mqtt://{settings.mqtt_host}:{settings.mqtt_port}")
            print(f"InfluxDB:    {settings.influx_url} (database {settings.influx_db!r})")
            print("Press Ctrl-C to stop.", flush=True)
            code = _wait_for_stop(stack, stop)
        print("stopped: " + (", ".join(stack.started_now) or "nothing (it was already running)"))
        return code
    if args.action == "down":
        stopped = stack.down()
        print("stopped: " + (", ".join(stopped) or "nothing was running"))
        return EXIT_OK
    statuses = stack.status()
    if args.json:
        print(_status_json(statuses))
    else:
        _print_status(statuses)
    return EXIT_OK if all(s.healthy for s in statuses) else EXIT_UNHEALTHY


def _settings(settings: Settings, _args: argparse.Namespace) -> int:
    shown = settings.redacted()
    for spec in VARIABLES:
        print(f"{spec.name}={shown[spec.name]}")
    return EXIT_OK


def _db(settings: Settings, _args: argparse.Namespace) -> int:
    with Store(settings) as store:
        version = store.ping()
        store.ensure_schema()
    policies = ", ".join(f"{k} {v}" for k, v in settings.retention_policies().items())
    print(f"InfluxDB {version} at {settings.influx_url}: database {settings.influx_db!r}")
    print(f"retention policies: {policies}")
    return EXIT_OK


def _print_cycle(report: CycleReport) -> None:
    lag = "-" if report.lag_s is None else f"{report.lag_s:.0f} s"
    print(
        f"{report.periods} periods, {report.points} points written in {report.seconds:.2f} s; "
        f"lag {lag}; skipped {dict(report.skipped) or 'nothing'}"
    )


def _engine(settings: Settings, args: argparse.Namespace) -> int:
    catalog = get_catalog(settings.registry_file)
    with Store(settings) as store:
        engine = Engine(settings, catalog, store)
        if args.action == "backfill":
            end = args.end or datetime.now(UTC)
            _print_cycle(engine.backfill(time_ns(args.start), time_ns(end)))
            return EXIT_OK
        if args.once:
            _print_cycle(engine.run_cycle())
            return EXIT_OK
        stop = _stop_on_signals("the engine after this cycle")
        log.info(
            "engine: %d indicators, %d sources; a cycle every %.0f s over the last %s",
            len(catalog.indicators),
            len(catalog.registry.sources),
            settings.engine_interval,
            settings.engine_lookback,
        )
        engine.run_forever(stop)
    return EXIT_OK


def _stop_on_signals(what: str) -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping %s", signal.Signals(signum).name, what)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _ingest(settings: Settings, _args: argparse.Namespace) -> int:
    from ingest.collector import Collector  # noqa: PLC0415 - only this command needs paho loops

    catalog = get_catalog(settings.registry_file)
    collector = Collector(settings, catalog)
    stop = _stop_on_signals("the collector")
    log.info(
        "collector %s: %d registered sources, topics %s",
        collector.client_id,
        len(catalog.registry.sources),
        ", ".join(collector.topics),
    )
    collector.run(stop)
    return EXIT_OK


def _probe(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.probing import run_probes  # noqa: PLC0415 - only this command needs it

    catalog = get_catalog(settings.registry_file)
    stop = _stop_on_signals("the probes")
    published = run_probes(settings, catalog, stop, interval=args.interval, once=args.once)
    print(f"{published} probe results published")
    return EXIT_OK


_HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "settings": _settings,
    "db": _db,
    "engine": _engine,
    "ingest": _ingest,
    "probe": _probe,
    "stack": _stack,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ioc`` console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"ioc {__version__}")
        return EXIT_OK
    try:
        settings = load_settings(env_file=args.env_file)
    except SettingsError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command in MODULE_COMMANDS:
            code: int = _command_module(args.command).run(settings, args)
            return code
        return _HANDLERS[args.command](settings, args)
    except IocError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
