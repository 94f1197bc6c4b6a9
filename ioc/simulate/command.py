"""The ``ioc simulate`` command: build, run and report; the only module here that prints."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from ioc.catalog import get_catalog, parse_period
from ioc.places import get_places
from ioc.settings import Settings
from ioc.simulate.fleet import build_fleet
from ioc.simulate.load import LoadProfile, registry_toml, run_load
from ioc.simulate.pm25 import DEFAULT_FILES, Pm25Record
from ioc.simulate.publisher import Publisher
from ioc.simulate.runner import Progress, Simulation
from ioc.simulate.signals import FloodEvent, SignalModel

__all__ = ["run_fleet", "run_load_profile"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
NS = 1_000_000_000
_AGE_MARGIN_S = 600  # history stays this far inside IOC_INGEST_MAX_AGE (publishing takes time)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping the simulator", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def _print_progress(progress: Progress) -> None:
    counts = progress.counts
    rate = progress.published / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
    of = f"/{progress.total}" if progress.total is not None else ""
    print(
        f"{progress.phase}: {progress.published}{of} published, {counts.acked} acked, "
        f"{counts.in_flight} in flight, {rate:.0f} msg/s",
        flush=True,
    )


def _pm25(args: argparse.Namespace) -> Pm25Record | None:
    paths = [Path(p) for p in args.pm25_csv] if args.pm25_csv else list(DEFAULT_FILES)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        log.warning("PM2.5 record not found (%s): PM2.5 follows a modelled daily cycle", missing)
        return None
    return Pm25Record.from_csv(paths)


def run_fleet(settings: Settings, args: argparse.Namespace) -> int:
    """History, then live mode (unless --once), for the chosen provinces."""
    max_age_s = parse_period(settings.ingest_max_age)
    if args.history > max_age_s - _AGE_MARGIN_S:
        print(
            f"ioc simulate: --history {args.history:.0f} s is beyond what the collector keeps "
            f"(IOC_INGEST_MAX_AGE={settings.ingest_max_age}, less {_AGE_MARGIN_S} s)"
        )
        return EXIT_USAGE
    catalog = get_catalog(settings.registry_file)
    try:
        fleet = build_fleet(catalog, args.provinces, seed=args.seed)
    except ValueError as exc:
        print(f"ioc simulate: {exc}")
        return EXIT_USAGE
    end_ns = time.time_ns()
    start_ns = end_ns - int(args.history * NS)
    model = SignalModel(args.seed, FloodEvent.over(end_ns, args.history), _pm25(args))
    simulation = Simulation(catalog, fleet, model)
    formats = Counter(device.format.value for device in fleet.devices)
    print(
        f"fleet: {len(fleet.devices)} sources in provinces {', '.join(fleet.provinces)} "
        f"({', '.join(f'{n} {f}' for f, n in sorted(formats.items()))}); "
        f"never connecting: {', '.join(s.id for s in fleet.silent) or 'none'}",
        flush=True,
    )
    stop = _stop_on_signals()
    with Publisher(settings) as publisher:
        began = time.monotonic()
        sent = simulation.publish_history(
            publisher, start_ns, end_ns, stop, progress=_print_progress
        )
        publisher.flush(60.0)
        counts = publisher.counts()
        print(
            f"history: {sent} messages from {_utc(start_ns)} to {_utc(end_ns)} published, "
            f"{counts.acked} acked, {counts.refused} refused in {time.monotonic() - began:.1f} s",
            flush=True,
        )
        if args.once or stop.is_set():
            return EXIT_OK
        until = None if args.duration is None else time.time_ns() + int(args.duration * NS)
        print("live: publishing each source at its expected interval; Ctrl-C stops", flush=True)
        live = simulation.run_live(
            publisher, end_ns, stop, until_ns=until, progress=_print_progress
        )
        publisher.flush(30.0)
        counts = publisher.counts()
        print(f"live: {live} messages published; total {counts.acked} acked", flush=True)
    return EXIT_OK


def run_load_profile(settings: Settings, args: argparse.Namespace) -> int:
    """Write the load registry, or publish the load profile."""
    try:
        profile = LoadProfile(args.devices, args.metrics, args.rate, args.load_duration)
    except ValueError as exc:
        print(f"ioc simulate load: {exc}")
        return EXIT_USAGE
    if args.write_registry:
        wards = tuple(w.code for w in get_places().wards_of(profile.province))
        path = Path(args.write_registry)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(registry_toml(profile, wards), encoding="utf-8")
        except OSError as exc:
            print(f"ioc simulate load: cannot write {path}: {exc.strerror}")
            return EXIT_USAGE
        print(f"wrote {profile.devices} load-test sources to {path}")
        print(f"start the collector with IOC_REGISTRY_FILE={path.resolve()}")
        return EXIT_OK
    registry = get_catalog(settings.registry_file).registry
    if registry.get(profile.device_id(0)) is None:
        log.warning(
            "%s is not in the registry %s: the collector will dead-letter the load "
            "(write one with --write-registry)",
            profile.device_id(0),
            registry.path,
        )
    stop = _stop_on_signals()
    print(
        f"load: {profile.devices} devices, {profile.metrics} metrics/message, "
        f"{profile.rate:g} msg/s for {profile.duration_s:g} s",
        flush=True,
    )
    with Publisher(settings, max_inflight=args.max_inflight) as publisher:
        began = time.monotonic()
        sent = run_load(profile, publisher, stop, progress=_print_progress)
        publisher.flush(60.0)
        elapsed = time.monotonic() - began
        counts = publisher.counts()
    print(
        f"load: {sent} messages in {elapsed:.1f} s ({sent / elapsed:.0f} msg/s), "
        f"{counts.acked} acked, {counts.refused} refused",
        flush=True,
    )
    return EXIT_OK if counts.refused == 0 else EXIT_ERROR


def _utc(time_ns: int) -> str:
    return f"{datetime.fromtimestamp(time_ns / NS, tz=UTC):%Y-%m-%d %H:%M:%S}Z"
